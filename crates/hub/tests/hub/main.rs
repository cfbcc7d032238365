//! Integration tests for q3tts-hub against a fake hub on 127.0.0.1 (no real network).

mod downloads;
mod errors;
mod fake_hub;
mod faults;
mod listing;
mod reuse;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use fake_hub::{read_tree, FakeHub, Repo};
use q3tts_hub::{Hub, HubSettings};

pub const CV: &str = "test-org/tiny-cv";
pub const SHARDED: &str = "test-org/tiny-0b6-like";
pub const SHA1: &str = "1111111111111111111111111111111111111111";
pub const SHA2: &str = "2222222222222222222222222222222222222222";
/// Size of the unrelated file in the served repo: downloading it by mistake would show.
pub const BIG: usize = 3 << 20;

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(name)
}

/// The files of testdata/`name`: exactly the files the engine needs from the repo.
pub fn needed(name: &str) -> BTreeMap<String, Vec<u8>> {
    read_tree(&testdata(name))
}

/// What the fake hub serves: the needed files plus files q3tts must not fetch.
pub fn served(name: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = needed(name);
    files.insert("big_unrelated.bin".into(), vec![7u8; BIG]);
    files.insert("README.md".into(), b"# tiny\n".to_vec());
    files.insert(
        ".gitattributes".into(),
        b"*.safetensors filter=lfs\n".to_vec(),
    );
    files.insert("speech_tokenizer/configuration.json".into(), b"{}".to_vec());
    files
}

/// A fake hub serving the tiny CustomVoice model as `CV` and the sharded one as `SHARDED`.
pub fn start_hub() -> FakeHub {
    let hub = FakeHub::start();
    hub.add_repo(CV, Repo::new(SHA1, served("tiny-custom-voice")));
    hub.add_repo(SHARDED, Repo::new(SHA2, served("tiny-0b6-like")));
    hub
}

/// A `Hub` configured the way a user would: `HF_HOME` and `HF_ENDPOINT` (and maybe offline).
pub fn hub_with_env(hf_home: &Path, endpoint: &str, extra: &[(&str, &str)]) -> Hub {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("HF_HOME".into(), hf_home.to_string_lossy().into_owned());
    vars.insert("HF_ENDPOINT".into(), endpoint.to_string());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Hub::new(HubSettings::from_vars(|k| vars.get(k).cloned()))
}

/// The hub cache folder of a repo under `hf_home`.
pub fn repo_dir(hf_home: &Path, repo: &str) -> PathBuf {
    hf_home.join("hub").join(q3tts_hub::repo_folder_name(repo))
}

/// Asserts that `dir` holds byte-identical copies of every file in `want`.
pub fn assert_same_files(dir: &Path, want: &BTreeMap<String, Vec<u8>>) {
    for (path, bytes) in want {
        let got = std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            got == *bytes,
            "{path} differs from the source ({} vs {} bytes)",
            got.len(),
            bytes.len()
        );
    }
}

/// The content GETs (not HEADs, not the API) the fake hub saw.
pub fn content_gets(hub: &FakeHub) -> Vec<fake_hub::Seen> {
    hub.log()
        .into_iter()
        .filter(|s| s.method == "GET" && !s.path.starts_with("/api/"))
        .collect()
}

#[test]
fn hub_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Hub>();
    shareable::<q3tts_hub::Error>();
}
