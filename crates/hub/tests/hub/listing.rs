//! `Hub::list`: what is in the cache, with sizes and variants.

use crate::*;

#[test]
fn list_reports_each_snapshot_with_size_and_variant() {
    let server = start_hub();
    let home = tempfile::tempdir().unwrap();
    let hub = hub_with_env(home.path(), &server.url, &[]);
    assert!(hub.list().unwrap().is_empty(), "no cache yet");
    let cv = hub.resolve(CV, false).unwrap();
    let sharded = hub.resolve(SHARDED, false).unwrap();
    // An unrelated repo folder without snapshots is skipped; a dataset folder is not a model.
    std::fs::create_dir_all(home.path().join("hub/models--x--empty/blobs")).unwrap();
    std::fs::create_dir_all(home.path().join("hub/datasets--x--y/snapshots/abc")).unwrap();

    let models = hub.list().unwrap();
    assert_eq!(models.len(), 2, "{models:?}");
    let size = |name: &str| needed(name).values().map(|b| b.len() as u64).sum::<u64>();

    assert_eq!(models[0].repo, SHARDED);
    assert_eq!(models[0].commit, SHA2);
    assert_eq!(models[0].path, sharded);
    assert_eq!(models[0].size_bytes, size("tiny-0b6-like"));
    assert_eq!(models[0].variant.as_deref(), Some("custom_voice"));
    assert_eq!(models[0].model_size.as_deref(), Some("0b6"));
    assert!(models[0].complete);

    assert_eq!(models[1].repo, CV);
    assert_eq!(models[1].commit, SHA1);
    assert_eq!(models[1].refs, vec!["main".to_string()]);
    assert_eq!(models[1].path, cv);
    assert_eq!(models[1].size_bytes, size("tiny-custom-voice"));
    assert!(models[1].complete);

    std::fs::remove_file(cv.join("model.safetensors")).unwrap();
    let models = hub.list().unwrap();
    assert!(!models[1].complete);
    assert_eq!(
        models[1].size_bytes,
        size("tiny-custom-voice") - needed("tiny-custom-voice")["model.safetensors"].len() as u64
    );
}
