//! Interrupted and corrupted downloads: resumed with Range from `blobs/<etag>.incomplete`, and a
//! file with the wrong sha256 is deleted, never linked into the snapshot.

use std::fs;

use crate::fake_hub::Faults;
use crate::*;

const WEIGHTS: &str = "model.safetensors";

#[test]
fn a_cut_connection_resumes_with_range_in_the_same_run() {
    let server = start_hub();
    server.set_faults(Faults {
        cut: Some((WEIGHTS.into(), 100_000, 1)),
        ..Faults::default()
    });
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[]);
    let dir = hub.resolve(CV, false).unwrap();
    let source = needed("tiny-custom-voice");
    assert_same_files(&dir, &source);

    let etag = &server.repo(CV).files[WEIGHTS].etag;
    let gets: Vec<_> = content_gets(&server)
        .into_iter()
        .filter(|s| s.path == format!("/cdn/{etag}"))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=100000-"));
    assert_eq!(
        server.served_bytes(WEIGHTS),
        source[WEIGHTS].len() as u64,
        "no byte sent twice"
    );
    assert!(!repo_dir(home.path(), CV)
        .join(format!("blobs/{etag}.incomplete"))
        .exists());
}

#[test]
fn a_partial_file_is_kept_and_resumed_by_the_next_run() {
    let server = start_hub();
    server.set_faults(Faults {
        cut: Some((WEIGHTS.into(), 50_000, usize::MAX)),
        ..Faults::default()
    });
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[]);
    let err = hub.resolve(CV, false).unwrap_err().to_string();
    assert!(
        err.contains("download of model.safetensors stopped"),
        "{err}"
    );
    assert!(
        err.contains("run the same command again to resume"),
        "{err}"
    );

    let root = repo_dir(home.path(), CV);
    let etag = server.repo(CV).files[WEIGHTS].etag.clone();
    let part = root.join(format!("blobs/{etag}.incomplete"));
    let kept = fs::metadata(&part).unwrap().len();
    let size = needed("tiny-custom-voice")[WEIGHTS].len() as u64;
    assert!(kept > 0 && kept < size, "kept {kept} of {size}");
    assert!(
        !root.join("blobs").join(&etag).exists(),
        "an unfinished blob is never in place"
    );
    assert!(!root.join("snapshots").join(SHA1).join(WEIGHTS).exists());
    assert!(
        !root.join("refs/main").exists(),
        "no ref to an incomplete snapshot"
    );

    // The next run, with the network healthy again, continues where the last one stopped.
    server.set_faults(Faults::default());
    server.reset_counters();
    let dir = hub.resolve(CV, false).unwrap();
    assert_same_files(&dir, &needed("tiny-custom-voice"));
    let gets: Vec<_> = content_gets(&server)
        .into_iter()
        .filter(|s| s.path == format!("/cdn/{etag}"))
        .collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].range, Some(format!("bytes={kept}-")));
    assert_eq!(server.served_bytes(WEIGHTS), size - kept);
    assert!(!part.exists());
}

#[test]
fn a_corrupted_download_is_rejected_and_deleted() {
    let server = start_hub();
    server.set_faults(Faults {
        corrupt: Some(WEIGHTS.into()),
        ..Faults::default()
    });
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[]);
    let err = hub.resolve(CV, false).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors is corrupt (sha256"),
        "{err}"
    );
    assert!(err.contains("deleted"), "{err}");

    let root = repo_dir(home.path(), CV);
    let etag = server.repo(CV).files[WEIGHTS].etag.clone();
    assert!(!root.join("blobs").join(&etag).exists());
    assert!(!root.join(format!("blobs/{etag}.incomplete")).exists());
    assert!(fs::symlink_metadata(root.join("snapshots").join(SHA1).join(WEIGHTS)).is_err());
    assert!(!root.join("refs/main").exists());
    // Offline, the half-made snapshot is not taken for a model.
    let offline = hub_with_env(home.path(), &server.url, &[("HF_HUB_OFFLINE", "1")]);
    assert!(offline.resolve(CV, false).is_err());

    // Once the hub serves good bytes, the next run downloads the file afresh.
    server.set_faults(Faults::default());
    let dir = hub.resolve(CV, false).unwrap();
    assert_same_files(&dir, &needed("tiny-custom-voice"));
}

/// Puts `bytes` in place as the partial download of `path`, as an interrupted run leaves it.
fn plant_partial(
    home: &std::path::Path,
    server: &fake_hub::FakeHub,
    path: &str,
    bytes: &[u8],
) -> std::path::PathBuf {
    let etag = server.repo(CV).files[path].etag.clone();
    let part = repo_dir(home, CV).join(format!("blobs/{etag}.incomplete"));
    fs::create_dir_all(part.parent().unwrap()).unwrap();
    fs::write(&part, bytes).unwrap();
    part
}

#[test]
fn a_server_that_ignores_range_restarts_the_file_cleanly() {
    let server = start_hub();
    server.set_faults(Faults {
        ignore_range: true,
        ..Faults::default()
    });
    let home = tempfile::tempdir().unwrap();
    let source = needed("tiny-custom-voice");
    let part = plant_partial(home.path(), &server, WEIGHTS, &source[WEIGHTS][..70_000]);
    let hub = hub_with_env(home.path(), &server.url, &[]);
    let dir = hub.resolve(CV, false).unwrap();
    assert_same_files(&dir, &source);
    assert!(!part.exists());
    let etag = &server.repo(CV).files[WEIGHTS].etag;
    let gets: Vec<_> = content_gets(&server)
        .into_iter()
        .filter(|s| s.path == format!("/cdn/{etag}"))
        .collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(
        gets[0].range.as_deref(),
        Some("bytes=70000-"),
        "we asked to resume"
    );
}

#[test]
fn a_bad_partial_file_is_caught_by_the_checksum_and_deleted() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let part = plant_partial(home.path(), &server, WEIGHTS, &vec![0u8; 70_000]);
    let hub = hub_with_env(home.path(), &server.url, &[]);
    let err = hub.resolve(CV, false).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors is corrupt (sha256"),
        "{err}"
    );
    assert!(!part.exists(), "the bad partial file is deleted");
    let dir = hub.resolve(CV, false).unwrap();
    assert_same_files(&dir, &needed("tiny-custom-voice"));
}
