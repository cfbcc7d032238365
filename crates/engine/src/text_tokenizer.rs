//! The text tokenizer (Qwen2 byte-level BPE): loads `tokenizer.json` when present, otherwise
//! assembles the same pipeline from `vocab.json` + `merges.txt` + `tokenizer_config.json`
//! (NFC, Qwen split regex, byte-level, added tokens from `added_tokens_decoder`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::config::read_json;
use crate::{Error, Result};

/// The Qwen2 pre-tokenizer regex (the plain one, not transformers' "fixed Mistral" swap).
pub const QWEN2_SPLIT_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

#[derive(Deserialize)]
struct TokenizerConfigFile {
    #[serde(default)]
    added_tokens_decoder: BTreeMap<String, AddedTokenEntry>,
}

#[derive(Deserialize)]
struct AddedTokenEntry {
    content: String,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    normalized: bool,
    #[serde(default)]
    special: bool,
}

/// Text → token ids.
#[derive(Clone)]
pub struct TextTokenizer {
    tok: Tokenizer,
}

impl TextTokenizer {
    /// `dir/tokenizer.json` if present, else the vocab/merges/tokenizer_config trio.
    pub fn load(dir: &Path) -> Result<Self> {
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            let tok = Tokenizer::from_file(&json).map_err(|e| Error::Malformed {
                path: json.clone(),
                reason: e.to_string(),
            })?;
            return Ok(Self { tok });
        }
        Self::from_vocab_merges(dir)
    }

    /// Assemble the Qwen2 tokenizer from `vocab.json`, `merges.txt` and `tokenizer_config.json`.
    pub fn from_vocab_merges(dir: &Path) -> Result<Self> {
        let vocab = dir.join("vocab.json");
        let merges = dir.join("merges.txt");
        let config = dir.join("tokenizer_config.json");
        for p in [&vocab, &merges, &config] {
            if !p.is_file() {
                return Err(Error::File {
                    path: p.clone(),
                    reason: "not found (needed because there is no tokenizer.json)".into(),
                });
            }
        }
        let mut vocab_map: HashMap<String, u32> = read_json(&vocab)?;
        let merges_list = read_merges(&merges)?;
        let cfg: TokenizerConfigFile = read_json(&config)?;
        let mut added: Vec<(u32, AddedToken)> = Vec::new();
        for (id, e) in cfg.added_tokens_decoder {
            let id: u32 = id.parse().map_err(|_| Error::Malformed {
                path: config.clone(),
                reason: format!("added_tokens_decoder key {id:?} is not an integer id"),
            })?;
            // The id comes from added_tokens_decoder: put the token in the vocab at that id, so
            // it does not depend on the order tokens are added in.
            match vocab_map.get(&e.content) {
                Some(&v) if v != id => {
                    return Err(Error::Malformed {
                        path: config.clone(),
                        reason: format!(
                            "added token {:?} has id {id} here but {v} in vocab.json",
                            e.content
                        ),
                    })
                }
                _ => {
                    vocab_map.insert(e.content.clone(), id);
                }
            }
            let t = AddedToken::from(e.content, e.special)
                .lstrip(e.lstrip)
                .rstrip(e.rstrip)
                .single_word(e.single_word)
                .normalized(e.normalized);
            added.push((id, t));
        }
        let vocab_map: Vocab = vocab_map.into_iter().collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab_map, merges_list)
            .build()
            .map_err(|e| Error::Malformed {
                path: vocab.clone(),
                reason: format!("cannot build BPE from vocab.json + merges.txt: {e}"),
            })?;
        Self::assemble(bpe, added).map_err(|reason| Error::Malformed {
            path: config.clone(),
            reason,
        })
    }

    /// The Qwen2 pipeline (NFC, Qwen split regex, byte-level) around a BPE model, with added
    /// tokens that must come out with the given ids.
    pub fn assemble(
        bpe: BPE,
        mut added: Vec<(u32, AddedToken)>,
    ) -> std::result::Result<Self, String> {
        let mut tok = Tokenizer::new(bpe);
        tok.with_normalizer(Some(NFC));
        let split = Split::new(
            SplitPattern::Regex(QWEN2_SPLIT_REGEX.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| format!("split regex: {e}"))?;
        let pre = Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, false, false).into(),
        ]);
        tok.with_pre_tokenizer(Some(pre));
        tok.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));
        added.sort_by_key(|(id, _)| *id);
        for (_, t) in &added {
            if t.special {
                tok.add_special_tokens(std::slice::from_ref(t));
            } else {
                tok.add_tokens(std::slice::from_ref(t));
            }
        }
        for (id, t) in &added {
            let got = tok.token_to_id(&t.content);
            if got != Some(*id) {
                return Err(format!(
                    "added token {:?} should have id {id} (added_tokens_decoder) but the vocab gives {got:?}",
                    t.content
                ));
            }
        }
        Ok(Self { tok })
    }

    /// Token ids of `text`; special tokens such as `<|im_start|>` are recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tok
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The id of one token string (e.g. `<tts_pad>`), if known.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tok.token_to_id(token)
    }

    /// The underlying `tokenizers` object.
    pub fn inner(&self) -> &Tokenizer {
        &self.tok
    }

    /// Wrap an already built tokenizer (e.g. for random-weight benchmarks).
    pub fn from_tokenizer(tok: Tokenizer) -> Self {
        Self { tok }
    }
}

/// `merges.txt`: one "left right" pair per line after the `#version` header.
fn read_merges(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::File {
        path: path.into(),
        reason: format!("cannot read ({e})"),
    })?;
    let mut merges = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || (n == 0 && line.starts_with("#version")) {
            continue;
        }
        let (a, b) = line.split_once(' ').ok_or_else(|| Error::Malformed {
            path: path.into(),
            reason: format!(
                "line {}: expected two space-separated symbols, got {line:?}",
                n + 1
            ),
        })?;
        merges.push((a.to_string(), b.to_string()));
    }
    Ok(merges)
}
