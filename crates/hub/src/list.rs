//! Listing the models in the hub cache: one entry per snapshot, with its size on disk and the
//! Qwen3-TTS variant read from its config.json.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::{repo_from_folder_name, RepoCache};
use crate::error::{Error, Result};
use crate::files::missing_in_snapshot;
use crate::hub::Hub;

/// One cached snapshot of a model repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    /// `org/name`.
    pub repo: String,
    /// The snapshot's commit sha.
    pub commit: String,
    /// The refs (branches, tags) pointing at this commit, e.g. `["main"]`.
    pub refs: Vec<String>,
    /// The snapshot directory (what [`Hub::resolve`] returns).
    pub path: PathBuf,
    /// Bytes on disk of the files in the snapshot (each blob counted once).
    pub size_bytes: u64,
    /// `tts_model_type` from config.json (`custom_voice`, `base`, `voice_design`), if any.
    pub variant: Option<String>,
    /// `tts_model_size` from config.json (e.g. `0b6`, `1b7`), if any.
    pub model_size: Option<String>,
    /// True when the snapshot holds every file the engine needs.
    pub complete: bool,
}

impl Hub {
    /// Every model snapshot in the cache, sorted by repo then commit. An absent cache is empty.
    pub fn list(&self) -> Result<Vec<CachedModel>> {
        let dir = &self.settings().cache_dir;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("cannot read", dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(repo) = repo_from_folder_name(&name) {
                out.extend(list_repo(dir, &repo));
            }
        }
        out.sort_by(|a, b| (&a.repo, &a.commit).cmp(&(&b.repo, &b.commit)));
        Ok(out)
    }
}

fn list_repo(cache_dir: &Path, repo: &str) -> Vec<CachedModel> {
    let cache = RepoCache::new(cache_dir, repo);
    let refs = read_refs(&cache.root().join("refs"));
    let Ok(snapshots) = fs::read_dir(cache.root().join("snapshots")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for snap in snapshots.flatten() {
        let path = snap.path();
        if !path.is_dir() {
            continue;
        }
        let commit = snap.file_name().to_string_lossy().into_owned();
        let (variant, model_size) = read_variant(&path.join("config.json"));
        let complete = missing_in_snapshot(
            &path,
            |f| cache.has_file(&commit, f),
            |f| cache.known_absent(&commit, f),
        )
        .is_empty();
        out.push(CachedModel {
            repo: repo.to_string(),
            refs: refs
                .iter()
                .filter(|(_, c)| *c == commit)
                .map(|(n, _)| n.clone())
                .collect(),
            size_bytes: size_on_disk(&path),
            commit,
            path,
            variant,
            model_size,
            complete,
        });
    }
    out
}

/// `(ref name, commit)` for every file under `refs/`, nested names (`refs/pr/1`) included.
fn read_refs(refs_dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![refs_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let (Ok(sha), Ok(rel)) = (fs::read_to_string(&p), p.strip_prefix(refs_dir)) {
                out.push((
                    rel.to_string_lossy().replace('\\', "/"),
                    sha.trim().to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn read_variant(config: &Path) -> (Option<String>, Option<String>) {
    let Some(json) = fs::read(config)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return (None, None);
    };
    let field = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
    (field("tts_model_type"), field("tts_model_size"))
}

/// Sum of the sizes of the files the snapshot's entries lead to, each distinct file once.
fn size_on_disk(snapshot: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![snapshot.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = fs::metadata(&p) else { continue };
            if meta.is_dir() {
                stack.push(p);
            } else if seen.insert(fs::canonicalize(&p).unwrap_or(p)) {
                total += meta.len();
            }
        }
    }
    total
}
