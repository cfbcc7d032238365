//! What the user reads when there is no network, the repo does not exist, or a path is wrong:
//! one short message naming the missing file, where we looked, and how to fix it.

use std::net::TcpListener;

use crate::*;

/// An endpoint on 127.0.0.1 where nothing listens (the port was just freed).
pub fn dead_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

fn assert_short(msg: &str) {
    assert!(msg.lines().count() <= 2, "{msg}");
    for noise in ["panicked", "backtrace", "Error {", "Os {", "kind:"] {
        assert!(!msg.contains(noise), "{msg}");
    }
}

#[test]
fn offline_with_an_empty_cache_says_what_where_and_how() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[("HF_HUB_OFFLINE", "1")]);
    let msg = hub.resolve(CV, false).unwrap_err().to_string();
    assert_short(&msg);
    let looked = repo_dir(home.path(), CV);
    assert!(
        msg.contains("missing config.json and the rest of the model"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "model {CV}@main is not in the Hugging Face cache and HF_HUB_OFFLINE is set"
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("(looked in {})", looked.display())),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("run `q3tts pull {CV}` where there is network")),
        "{msg}"
    );
    assert!(msg.contains("--model DIR"), "{msg}");
    assert_eq!(server.requests(), 0);
    eprintln!("offline error as the user sees it:\n{msg}");
}

#[test]
fn offline_with_a_partial_snapshot_names_the_missing_file() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    hub_with_env(home.path(), &server.url, &[])
        .resolve(CV, false)
        .unwrap();
    let snap = repo_dir(home.path(), CV).join("snapshots").join(SHA1);
    std::fs::remove_file(snap.join("speech_tokenizer/model.safetensors")).unwrap();
    server.reset_counters();

    let hub = hub_with_env(home.path(), &server.url, &[("HF_HUB_OFFLINE", "1")]);
    let msg = hub.resolve(CV, false).unwrap_err().to_string();
    assert_short(&msg);
    assert!(
        msg.contains("missing speech_tokenizer/model.safetensors"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("(looked in {})", snap.display())),
        "{msg}"
    );
    assert_eq!(server.requests(), 0);

    // With the network back, only that file's link is remade (its blob is still cached).
    let dir = hub_with_env(home.path(), &server.url, &[])
        .resolve(CV, false)
        .unwrap();
    assert_same_files(&dir, &needed("tiny-custom-voice"));
    assert!(content_gets(&server).is_empty(), "{:?}", server.log());
}

#[test]
fn an_unreachable_endpoint_says_what_where_and_how() {
    let home = tempfile::tempdir().unwrap();
    let endpoint = dead_endpoint();
    let hub = hub_with_env(home.path(), &endpoint, &[]);
    let msg = hub.resolve(CV, false).unwrap_err().to_string();
    assert_short(&msg);
    assert!(msg.contains(&format!("cannot reach {endpoint} (")), "{msg}");
    assert!(
        msg.contains(&format!("model {CV}@main is not in the Hugging Face cache")),
        "{msg}"
    );
    assert!(
        msg.contains(&repo_dir(home.path(), CV).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains(&format!("q3tts pull {CV}")), "{msg}");
    eprintln!("unreachable error as the user sees it:\n{msg}");
    assert!(msg.contains("--model DIR"), "{msg}");
    let msg = hub
        .pull(&format!("{CV}@v2"), false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&format!("model {CV}@v2 is not")), "{msg}");
}

#[test]
fn unknown_repos_and_revisions_are_reported_as_not_found() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[]);
    let msg = hub
        .resolve("test-org/no-such-model", false)
        .unwrap_err()
        .to_string();
    assert_short(&msg);
    assert!(
        msg.contains("model test-org/no-such-model at revision main not found"),
        "{msg}"
    );
    assert!(msg.contains("RepoNotFound"), "{msg}");
    let msg = hub
        .resolve(&format!("{CV}@nope"), false)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&format!("model {CV} at revision nope not found")),
        "{msg}"
    );
    assert!(msg.contains("HF_TOKEN"), "{msg}");
}

#[test]
fn a_repo_that_is_not_a_tts_model_is_refused_before_any_download() {
    let server = start_hub();
    let mut files = served("tiny-custom-voice");
    files.remove("speech_tokenizer/model.safetensors");
    server.add_repo("test-org/not-tts", fake_hub::Repo::new(SHA2, files));
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[]);
    let msg = hub
        .resolve("test-org/not-tts", false)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(
            "does not look like a Qwen3-TTS model: it has no speech_tokenizer/model.safetensors"
        ),
        "{msg}"
    );
    assert!(content_gets(&server).is_empty());
}

#[test]
fn local_directories_are_returned_as_is_and_missing_ones_named() {
    let hub = hub_with_env(
        std::path::Path::new("/nonexistent-hf-home"),
        &dead_endpoint(),
        &[],
    );
    let dir = testdata("tiny-custom-voice");
    let spec = dir.to_str().unwrap();
    assert_eq!(hub.resolve(spec, false).unwrap(), dir);
    assert_eq!(hub.pull(spec, false).unwrap(), dir);
    let msg = hub
        .resolve("./no/such/model-dir", false)
        .unwrap_err()
        .to_string();
    assert_short(&msg);
    assert!(
        msg.contains("model directory ./no/such/model-dir does not exist"),
        "{msg}"
    );
    let file = dir.join("config.json");
    let msg = hub
        .resolve(file.to_str().unwrap(), false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("is not a directory"), "{msg}");
    let msg = hub.resolve("not a repo", false).unwrap_err().to_string();
    assert!(
        msg.contains("is not a model directory nor a Hugging Face repo id"),
        "{msg}"
    );
}
