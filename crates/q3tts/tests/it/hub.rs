//! Getting the model end to end: `--model org/name` through a fake hub on loopback (the hub
//! crate's own test server), then synthesis from the downloaded snapshot, `q3tts models`, and an
//! offline second run that makes no request.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use crate::common::*;

#[path = "../../../hub/tests/hub/fake_hub.rs"]
#[allow(dead_code)]
mod fake_hub;

const REPO: &str = "test-org/tiny-cv";
const SHA: &str = "3333333333333333333333333333333333333333";

fn run(
    s: &Scratch,
    hf_home: &std::path::Path,
    endpoint: &str,
    extra_env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut cmd = Command::new(EXE);
    cmd.arg("--socket")
        .arg(s.path("none.sock"))
        .arg("--handlers")
        .arg(s.handler());
    cmd.args(args).stdin(Stdio::null());
    cmd.env("HF_HOME", hf_home).env("HF_ENDPOINT", endpoint);
    for var in [
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "Q3TTS_MODEL",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_repo_id_is_downloaded_then_synthesised_and_reused_offline() {
    let s = Scratch::new();
    let hf_home = s.path("hf");
    let hub = fake_hub::FakeHub::start();
    let mut files: BTreeMap<String, Vec<u8>> = fake_hub::read_tree(&tiny_model());
    files.insert("README.md".into(), b"# tiny\n".to_vec());
    hub.add_repo(REPO, fake_hub::Repo::new(SHA, files));

    let say = |out: &str| -> Vec<String> {
        [
            "--model",
            REPO,
            "-s",
            "ryan",
            "-l",
            "english",
            "--greedy",
            "--max-new-tokens",
            "12",
            "-o",
            out,
            "Hello, world.",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let first = s.path("first.wav");
    let args = say(first.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    let o = run(&s, &hf_home, &hub.url, &[], &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(hub.requests() > 0, "the first run must download");
    let snapshot = hf_home
        .join("hub/models--test-org--tiny-cv/snapshots")
        .join(SHA);
    assert!(snapshot.join("speech_tokenizer/model.safetensors").exists());
    assert!(
        !snapshot.join("README.md").exists(),
        "only the files the engine needs are fetched"
    );

    // Same audio as the reference fixture, from the downloaded copy.
    let reference = fixture_f32("text_to_wav_custom_voice.safetensors", "wav");
    let got = read_audio(&first);
    assert!(max_diff(&got, &reference) <= 1.0 / 32768.0 + 1e-4);

    // Offline, the cached snapshot is used with zero requests.
    hub.reset_counters();
    let second = s.path("second.wav");
    let args = say(second.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    let o = run(&s, &hf_home, &hub.url, &[("HF_HUB_OFFLINE", "1")], &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(hub.requests(), 0);
    assert_eq!(read_audio(&second), got);

    // `q3tts models` lists it with its variant.
    let o = run(
        &s,
        &hf_home,
        &hub.url,
        &[("HF_HUB_OFFLINE", "1")],
        &["models"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(REPO) && out.contains("custom_voice"), "{out}");
}

#[test]
fn a_missing_model_offline_says_what_is_missing_and_how_to_fix_it() {
    let s = Scratch::new();
    let hf_home = s.path("hf");
    let o = run(
        &s,
        &hf_home,
        "http://127.0.0.1:9",
        &[("HF_HUB_OFFLINE", "1")],
        &["--model", REPO, "hi"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("config.json") && err.contains("q3tts pull") && err.contains("--model DIR"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );
}
