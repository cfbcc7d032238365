//! A cache written by the Python tools (huggingface_hub's snapshot_download layout) is used as
//! is: no request, online, offline, or with the endpoint unreachable.

use std::fs;
use std::path::Path;

use crate::fake_hub::sha256_hex;
use crate::*;

/// Writes `models--org--name/{blobs,snapshots,refs}` the way huggingface_hub does for a full
/// snapshot download (every file of the repo, no `.no_exist` markers).
#[cfg(unix)]
fn python_cache(hf_home: &Path, repo: &str, sha: &str, files: &BTreeMap<String, Vec<u8>>) {
    let root = repo_dir(hf_home, repo);
    fs::create_dir_all(root.join("blobs")).unwrap();
    fs::create_dir_all(root.join("refs")).unwrap();
    for (path, bytes) in files {
        let etag = if path.ends_with(".safetensors") {
            sha256_hex(bytes)
        } else {
            sha256_hex(bytes)[..40].to_string()
        };
        fs::write(root.join("blobs").join(&etag), bytes).unwrap();
        let link = root.join("snapshots").join(sha).join(path);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        let ups = "../".repeat(path.matches('/').count() + 2);
        std::os::unix::fs::symlink(format!("{ups}blobs/{etag}"), &link).unwrap();
    }
    fs::write(root.join("refs/main"), sha).unwrap();
}

#[cfg(unix)]
#[test]
fn a_python_built_cache_is_used_without_any_request() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let files = served("tiny-custom-voice");
    python_cache(home.path(), CV, SHA1, &files);
    let want = repo_dir(home.path(), CV).join("snapshots").join(SHA1);

    let hub = hub_with_env(home.path(), &server.url, &[]);
    assert_eq!(hub.resolve(CV, true).unwrap(), want);
    assert_eq!(hub.resolve(&format!("{CV}@{SHA1}"), true).unwrap(), want);
    assert_eq!(server.requests(), 0, "{:?}", server.log());

    let offline = hub_with_env(home.path(), &server.url, &[("HF_HUB_OFFLINE", "1")]);
    assert_eq!(offline.resolve(CV, false).unwrap(), want);
    assert_eq!(offline.pull(CV, false).unwrap(), want);
    let away = hub_with_env(home.path(), &crate::errors::dead_endpoint(), &[]);
    assert_eq!(away.resolve(CV, false).unwrap(), want);
    assert_eq!(server.requests(), 0);
    assert_same_files(&want, &needed("tiny-custom-voice"));
}

#[cfg(unix)]
#[test]
fn a_python_cache_missing_a_file_is_completed_from_the_hub() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let mut files = needed("tiny-custom-voice");
    files.remove("speech_tokenizer/model.safetensors");
    python_cache(home.path(), CV, SHA1, &files);

    let offline = hub_with_env(home.path(), &server.url, &[("HF_HUB_OFFLINE", "1")]);
    let err = offline.resolve(CV, false).unwrap_err().to_string();
    assert!(
        err.contains("missing speech_tokenizer/model.safetensors"),
        "{err}"
    );

    let hub = hub_with_env(home.path(), &server.url, &[]);
    let dir = hub.resolve(CV, false).unwrap();
    assert_same_files(&dir, &needed("tiny-custom-voice"));
    let gets = content_gets(&server);
    assert_eq!(
        gets.len(),
        1,
        "only the missing file is downloaded: {gets:?}"
    );
    assert_eq!(
        server.served_bytes("speech_tokenizer/model.safetensors") as usize,
        needed("tiny-custom-voice")["speech_tokenizer/model.safetensors"].len()
    );
}
