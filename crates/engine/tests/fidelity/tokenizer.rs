//! The text tokenizer: the same ids from a `tokenizer.json` (HF format, written here from the
//! tiny vocab) as from `vocab.json` + `merges.txt` + `tokenizer_config.json`, and the ids of the
//! reference's text-to-wav fixtures.

use std::path::PathBuf;

use q3tts_engine::plan::assistant_prompt;
use q3tts_engine::text_tokenizer::TextTokenizer;
use serde_json::{json, Value};

use crate::common::{model_dir, Fixture};

/// Write a Qwen2-style `tokenizer.json` (as transformers' converter lays it out) for a model
/// directory's vocab/merges/added tokens into a fresh temp dir.
pub fn write_tokenizer_json(src: &std::path::Path) -> PathBuf {
    let vocab: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("vocab.json")).unwrap()).unwrap();
    let merges: Vec<String> = std::fs::read_to_string(src.join("merges.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("#version"))
        .map(str::to_owned)
        .collect();
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("tokenizer_config.json")).unwrap())
            .unwrap();
    let mut added: Vec<Value> = cfg["added_tokens_decoder"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, t)| {
            json!({"id": id.parse::<u64>().unwrap(), "content": t["content"], "single_word": false,
                   "lstrip": false, "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    added.sort_by_key(|t| t["id"].as_u64());
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split",
             "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": false},
            byte_level.clone()
        ]},
        "post_processor": byte_level.clone(),
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    });
    let dir =
        std::env::temp_dir().join(format!("q3tts-tokjson-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();
    dir
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

const SAMPLES: &[&str] = &[
    "Hello, world.",
    "Streaming must not click.",
    "HelloWorld and helloWORLD, camelCaseWords.",
    "I'm sure they'LL say it's fine, don't you think? We've, you'd, she's.",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\nnewlines\r\n\n\nend",
    "Numbers 1234567 and 3.14159, 1,000,000.",
    "Grüße aus München! Ça va? ¿Qué tal, señor?",
    "你好，世界。今天天气很好。",
    "こんにちは、世界。",
    "Привет, мир!",
    "안녕하세요 세계",
    "emoji 🎉🚀 and symbols ©®™ — “quotes” …",
    "e\u{301}cole vs école (NFC)",
    "<|im_start|>assistant\nassistants assistant user users<|im_end|>\n",
    "<tts_pad><tts_text_bos>mixed<tts_text_eod><|endoftext|>",
    "!!!???... ---",
];

#[test]
fn tokenizer_json_and_vocab_merges_agree() {
    let src = model_dir("tiny-custom-voice");
    let from_files = TextTokenizer::from_vocab_merges(&src).unwrap();
    let dir = write_tokenizer_json(&src);
    let from_json = TextTokenizer::load(&dir).unwrap();
    for s in SAMPLES {
        let a = from_files.encode(s).unwrap();
        let b = from_json.encode(s).unwrap();
        assert_eq!(a, b, "ids differ for {s:?}");
        assert!(!a.is_empty());
    }
    for (tok, id) in [
        ("<|im_start|>", 1000),
        ("<|im_end|>", 1001),
        ("<tts_pad>", 1002),
        ("<tts_text_eod>", 1004),
    ] {
        assert_eq!(from_files.token_id(tok), Some(id));
        assert_eq!(from_json.token_id(tok), Some(id));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ordinary_vocab_entries_are_not_split_out() {
    let t = TextTokenizer::from_vocab_merges(&model_dir("tiny-custom-voice")).unwrap();
    assert_eq!(t.encode("assistant").unwrap(), vec![1005]);
    assert_eq!(t.encode("\n").unwrap(), vec![1006]);
    assert_eq!(t.encode(" assistant").unwrap(), vec![561]);
    let a = t.encode("assistants").unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0], 1005);
}

#[test]
fn text_to_wav_fixture_ids() {
    for (fixture, dir) in [
        ("text_to_wav_custom_voice", "tiny-custom-voice"),
        ("text_to_wav_0b6_like", "tiny-0b6-like"),
    ] {
        let fx = Fixture::load(fixture);
        let text = fx.meta["text"].as_str().unwrap();
        let prompt = assistant_prompt(text);
        assert_eq!(prompt, fx.meta["prompt"].as_str().unwrap());
        let t = TextTokenizer::load(&model_dir(dir)).unwrap();
        assert_eq!(t.encode(&prompt).unwrap(), fx.ids("input_ids"), "{fixture}");
    }
}

#[test]
fn added_token_id_mismatch_is_an_error() {
    // A tokenizer_config.json whose added token ids disagree with the vocab must not load silently.
    let src = model_dir("tiny-custom-voice");
    let dir =
        std::env::temp_dir().join(format!("q3tts-tokbad-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["vocab.json", "merges.txt"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let cfg = std::fs::read_to_string(src.join("tokenizer_config.json"))
        .unwrap()
        .replace("\"1002\"", "\"1010\"");
    std::fs::write(dir.join("tokenizer_config.json"), cfg).unwrap();
    let err = TextTokenizer::from_vocab_merges(&dir)
        .err()
        .expect("mismatch must fail")
        .to_string();
    assert!(
        err.contains("tokenizer_config.json") && err.contains("<tts_pad>"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn special_ids_come_from_added_tokens_decoder() {
    // As in the released files, vocab.json lists no special tokens; here that leaves a gap
    // (999..1004) before ordinary ids, where a "next free id" rule would go wrong.
    let src = model_dir("tiny-custom-voice");
    let dir =
        std::env::temp_dir().join(format!("q3tts-tokgap-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["merges.txt", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut vocab: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(src.join("vocab.json")).unwrap()).unwrap();
    for special in [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<tts_pad>",
        "<tts_text_bos>",
        "<tts_text_eod>",
    ] {
        assert!(vocab.remove(special).is_some());
    }
    std::fs::write(
        dir.join("vocab.json"),
        serde_json::to_string(&vocab).unwrap(),
    )
    .unwrap();
    let t = TextTokenizer::from_vocab_merges(&dir).unwrap();
    let fx = Fixture::load("text_to_wav_custom_voice");
    let ids = t
        .encode(&assistant_prompt(fx.meta["text"].as_str().unwrap()))
        .unwrap();
    assert_eq!(ids, fx.ids("input_ids"));
    std::fs::remove_dir_all(dir).unwrap();
}
