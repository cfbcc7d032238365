//! Downloading into an empty cache: the exact huggingface_hub layout, only the needed files,
//! every shard, no second download, tokens, and `pull` following a moved branch.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::fake_hub::{sha256_hex, Repo};
use crate::*;

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Link(PathBuf),
}

/// Every file and symlink under `root`, by '/'-separated relative path.
fn tree(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Link(fs::read_link(&p).unwrap()));
            } else if meta.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, Entry::File(fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn download_makes_the_exact_cache_tree_with_identical_files() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[]);

    let dir = hub.resolve(CV, false).unwrap();
    let root = repo_dir(home.path(), CV);
    assert_eq!(dir, root.join("snapshots").join(SHA1));

    let served = server.repo(CV);
    let needed = needed("tiny-custom-voice");
    let mut want = BTreeMap::new();
    for (path, bytes) in &needed {
        let f = &served.files[path];
        if path.ends_with(".safetensors") {
            assert_eq!(f.etag, sha256_hex(bytes), "LFS blobs are named by sha256");
        }
        let ups = "../".repeat(path.matches('/').count() + 2);
        want.insert(format!("blobs/{}", f.etag), Entry::File(bytes.clone()));
        want.insert(
            format!("snapshots/{SHA1}/{path}"),
            Entry::Link(PathBuf::from(format!("{ups}blobs/{}", f.etag))),
        );
    }
    want.insert("refs/main".into(), Entry::File(SHA1.as_bytes().to_vec()));
    // The repo has no top-level preprocessor_config.json; like huggingface_hub we remember that.
    want.insert(
        format!(".no_exist/{SHA1}/preprocessor_config.json"),
        Entry::File(Vec::new()),
    );
    let got = tree(&root);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(
        got == want,
        "cache contents differ from the expected layout"
    );

    // The resolved directory reads as the source model, byte for byte.
    assert_same_files(&dir, &needed);
    assert_eq!(
        fake_hub::read_tree(&dir).len(),
        needed.len(),
        "nothing extra in the snapshot"
    );

    // Only the needed files were fetched: never the unrelated big file, README, etc.
    for s in server.log() {
        for unwanted in [
            "big_unrelated.bin",
            "README.md",
            ".gitattributes",
            "configuration.json",
        ] {
            assert!(!s.path.contains(unwanted), "fetched {unwanted}: {s:?}");
        }
    }
    assert!(server.served_bytes("big_unrelated.bin") == 0);
    let total: u64 = needed.values().map(|b| b.len() as u64).sum();
    let served_total: u64 = needed.keys().map(|p| server.served_bytes(p)).sum();
    assert_eq!(served_total, total, "each needed byte was sent once");
}

#[test]
fn a_second_resolve_makes_no_request_and_pull_only_checks_the_revision() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let first = hub_with_env(home.path(), &server.url, &[])
        .resolve(CV, false)
        .unwrap();
    server.reset_counters();

    // A new Hub, as a second run of the program would make.
    let hub = hub_with_env(home.path(), &server.url, &[]);
    assert_eq!(hub.resolve(CV, true).unwrap(), first);
    assert_eq!(hub.resolve(&format!("{CV}@main"), false).unwrap(), first);
    assert_eq!(hub.resolve(&format!("{CV}@{SHA1}"), false).unwrap(), first);
    assert_eq!(server.requests(), 0, "{:?}", server.log());

    assert_eq!(hub.pull(CV, false).unwrap(), first);
    let log = server.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].path, format!("/api/models/{CV}/revision/main"));
}

#[test]
fn sharded_weights_bring_every_shard_the_index_names() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[]);
    let dir = hub.resolve(SHARDED, false).unwrap();
    let needed = needed("tiny-0b6-like");
    assert!(needed.contains_key("model-00001-of-00002.safetensors"));
    assert!(needed.contains_key("model-00002-of-00002.safetensors"));
    assert_same_files(&dir, &needed);
    assert_eq!(fake_hub::read_tree(&dir).len(), needed.len());
    assert!(server.served_bytes("big_unrelated.bin") == 0);
    server.reset_counters();
    assert_eq!(hub.resolve(SHARDED, false).unwrap(), dir);
    assert_eq!(server.requests(), 0);
}

#[test]
fn the_token_is_sent_as_bearer_to_the_endpoint() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[("HF_TOKEN", "hf_secret")]);
    hub.resolve(CV, false).unwrap();
    let log = server.log();
    assert!(!log.is_empty());
    for s in log {
        assert_eq!(s.auth.as_deref(), Some("Bearer hf_secret"), "{s:?}");
    }
}

#[test]
fn pull_follows_a_moved_branch_and_reuses_unchanged_blobs() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[]);
    let old = hub.resolve(CV, false).unwrap();

    // main moves to a new commit that changes config.json only.
    let new_sha = "3333333333333333333333333333333333333333";
    let mut files = served("tiny-custom-voice");
    let mut config = files["config.json"].clone();
    config.extend_from_slice(b"\n");
    files.insert("config.json".into(), config.clone());
    server.add_repo(CV, Repo::new(new_sha, files));
    server.reset_counters();

    // resolve keeps using the complete cached snapshot without asking.
    assert_eq!(hub.resolve(CV, false).unwrap(), old);
    assert_eq!(server.requests(), 0);

    let new = hub.pull(CV, false).unwrap();
    assert_eq!(
        new,
        repo_dir(home.path(), CV).join("snapshots").join(new_sha)
    );
    assert_eq!(
        fs::read_to_string(repo_dir(home.path(), CV).join("refs/main")).unwrap(),
        new_sha
    );
    assert_eq!(fs::read(new.join("config.json")).unwrap(), config);
    let mut want = needed("tiny-custom-voice");
    want.insert("config.json".into(), config);
    assert_same_files(&new, &want);
    // Only config.json's content travelled again; the weights were linked from existing blobs.
    let gets = content_gets(&server);
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert!(gets[0].path.ends_with("/config.json"), "{gets:?}");
    // The old snapshot is untouched and still usable by commit.
    assert_eq!(hub.resolve(&format!("{CV}@{SHA1}"), false).unwrap(), old);
}

#[test]
fn concurrent_resolves_download_each_file_once() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| hub_with_env(home.path(), &server.url, &[]).resolve(CV, false)))
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap().unwrap())
            .collect()
    });
    assert!(dirs.iter().all(|d| *d == dirs[0]), "{dirs:?}");
    let needed = needed("tiny-custom-voice");
    assert_same_files(&dirs[0], &needed);
    for (path, bytes) in &needed {
        assert_eq!(
            server.served_bytes(path),
            bytes.len() as u64,
            "{path} downloaded once"
        );
    }
    // The locks live where huggingface_hub keeps them.
    let locks = home
        .path()
        .join("hub/.locks")
        .join(q3tts_hub::repo_folder_name(CV));
    assert!(
        fs::read_dir(&locks).unwrap().count() >= needed.len() - 1,
        "{locks:?}"
    );
}

#[test]
fn a_renamed_repo_is_followed_and_cached_under_the_name_asked_for() {
    let server = start_hub();
    server.rename("old-org/old-name", CV);
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[("HF_TOKEN", "hf_secret")]);
    let dir = hub.resolve("old-org/old-name", false).unwrap();
    assert_eq!(
        dir,
        repo_dir(home.path(), "old-org/old-name")
            .join("snapshots")
            .join(SHA1)
    );
    assert_same_files(&dir, &needed("tiny-custom-voice"));
    let log = server.log();
    assert!(log
        .iter()
        .any(|s| s.path.starts_with("/old-org/old-name/resolve/")));
    assert!(log
        .iter()
        .any(|s| s.path.starts_with(&format!("/{CV}/resolve/"))));
    // We follow HEAD redirects ourselves and keep the token for the same host.
    for s in log.iter().filter(|s| s.method == "HEAD") {
        assert_eq!(s.auth.as_deref(), Some("Bearer hf_secret"), "{s:?}");
    }
}
