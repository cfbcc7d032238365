//! The script API against the real tiny model: model facts, streaming sessions, native helpers,
//! and the default handler's sentence splitting.

use serde_json::json;

use crate::common::*;

const API_HANDLER: &str = r#"
fn handle(model, request) {
    let s = model.generate(request.text, #{ speaker: "ryan", language: "english",
                                           greedy: true, max_new_tokens: 12, chunk_frames: 2,
                                           first_chunk_frames: 3 });
    let parts = [];
    for chunk in s { parts.push(chunk); }
    let all = concat(parts);
    let louder = gain(all, 2.0);
    let padded = concat([silence(0.5), all]);
    save(all, request.output);
    #{
        rate: model.sample_rate, variant: model.variant, size: model.size, dtype: model.dtype,
        speakers: model.speakers, languages: model.languages,
        chunks: parts.len(), first_chunk: parts[0].len, samples: all.len, seconds: all.duration, seed: s.seed,
        peak_ratio: louder.peak / all.peak, padded: padded.len,
    }
}
"#;

#[test]
fn model_facts_sessions_and_helpers() {
    let s = Scratch::new();
    s.write("handlers.rhai", API_HANDLER);
    let d = Daemon::start(&s, &[]);
    let out = s.path("api.wav");
    let r = request(&d.socket, generate("Hello, world.", json!({"output": out})));
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["rate"], 24_000);
    assert_eq!(r["variant"], "custom_voice");
    assert_eq!(r["dtype"], "f32");
    assert!(
        r["speakers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "ryan"),
        "{r}"
    );
    assert!(
        r["languages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "auto"),
        "{r}"
    );
    // 11 frames: a first chunk of 3 frames, then chunks of 2 (4 of them).
    assert_eq!(r["chunks"], 5);
    assert_eq!(r["first_chunk"], 3 * 1920);
    assert_eq!(r["samples"], 21_120);
    assert_eq!(r["padded"], 21_120 + 12_000);
    assert!((r["peak_ratio"].as_f64().unwrap() - 2.0).abs() < 1e-6);
    // The streamed chunks, joined, are the one-shot reference.
    let reference = fixture_f32("text_to_wav_custom_voice.safetensors", "wav");
    assert!(max_diff(&read_audio(&out), &reference) <= 1.0 / 32768.0 + 1e-4);
}

#[test]
fn default_handler_speaks_long_text_sentence_by_sentence_with_one_seed() {
    let s = Scratch::new();
    let d = Daemon::start(&s, &[]);
    let out = s.path("long.wav");
    let text = "First sentence here. Second one follows! And a third, with a comma?";
    let r = request(
        &d.socket,
        generate(
            text,
            json!({"output": out, "options": {"max_new_tokens": 4, "temperature": 0.9}}),
        ),
    );
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["sentences"], 3, "{r}");
    let seed = r["seed"].as_u64().unwrap();
    // The reply's seed reproduces the request exactly.
    let again = s.path("again.wav");
    let r2 = request(
        &d.socket,
        generate(
            text,
            json!({"output": again, "options": {"max_new_tokens": 4, "temperature": 0.9, "seed": seed}}),
        ),
    );
    assert_eq!(r2["seed"], seed);
    assert_eq!(read_audio(&out), read_audio(&again));
    assert!(r["audio_seconds"].as_f64().unwrap() > 0.0 && r["rtf"].as_f64().unwrap() > 0.0);
}
