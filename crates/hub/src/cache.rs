//! The on-disk layout of one repository in the Hugging Face hub cache, exactly as huggingface_hub
//! writes it:
//!
//! ```text
//! models--org--name/
//!   blobs/<etag>                 file contents, named by etag (sha256 for LFS files)
//!   blobs/<etag>.incomplete      a download in progress
//!   refs/<branch>                the commit sha the branch pointed to
//!   snapshots/<commit>/<path>    relative symlinks to ../../blobs/<etag> (one more ../ per dir)
//!   .no_exist/<commit>/<path>    empty marker: the file does not exist at that commit
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::spec::is_commit_sha;

/// One repository's folder in the hub cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    root: PathBuf,
}

/// The folder name huggingface_hub uses for a model repo: `models--org--name`.
pub fn repo_folder_name(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// The repo id for a folder name written by [`repo_folder_name`], if it is a model folder.
pub fn repo_from_folder_name(folder: &str) -> Option<String> {
    folder
        .strip_prefix("models--")
        .filter(|rest| !rest.is_empty())
        .map(|rest| rest.replace("--", "/"))
}

/// The link target, relative to the link's own directory, of `snapshots/<commit>/<path>` pointing
/// at `blobs/<etag>`: `../../blobs/<etag>` plus one `../` per directory level in `path`.
pub fn relative_blob_target(path: &str, etag: &str) -> PathBuf {
    let depth = path.split('/').count() - 1;
    let mut target = PathBuf::new();
    for _ in 0..depth + 2 {
        target.push("..");
    }
    target.join("blobs").join(etag)
}

/// True for a repo-relative path that stays inside the snapshot (no `..`, not absolute).
pub fn is_safe_repo_path(path: &str) -> bool {
    !path.contains('\\')
        && !path.contains(':')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

impl RepoCache {
    /// The folder of `repo` inside the hub cache directory `cache_dir`.
    pub fn new(cache_dir: &Path, repo: &str) -> RepoCache {
        RepoCache {
            root: cache_dir.join(repo_folder_name(repo)),
        }
    }

    /// `models--org--name/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/<etag>`.
    pub fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    /// `blobs/<etag>.incomplete`.
    pub fn incomplete(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{etag}.incomplete"))
    }

    /// `snapshots/<commit>`.
    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    /// `refs/<revision>` (a revision such as `refs/pr/1` nests, as in huggingface_hub).
    pub fn ref_path(&self, revision: &str) -> PathBuf {
        self.root.join("refs").join(revision)
    }

    /// The commit a revision names locally: itself if it is a commit sha, else `refs/<rev>`.
    pub fn commit_for(&self, revision: &str) -> Option<String> {
        if is_commit_sha(revision) {
            return Some(revision.to_string());
        }
        let sha = fs::read_to_string(self.ref_path(revision)).ok()?;
        let sha = sha.trim();
        is_commit_sha(sha).then(|| sha.to_string())
    }

    /// Records that `revision` points at `commit` (atomically: temp file, then rename).
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if revision == commit {
            return Ok(());
        }
        let path = self.ref_path(revision);
        if fs::read_to_string(&path).is_ok_and(|s| s.trim() == commit) {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let tmp = temp_name(&path);
        fs::write(&tmp, commit).map_err(|e| Error::io("cannot write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io("cannot write", &path, e))
    }

    /// True when `snapshots/<commit>/<path>` exists and leads to an existing file.
    pub fn has_file(&self, commit: &str, path: &str) -> bool {
        self.snapshot(commit).join(path).is_file()
    }

    /// True when `.no_exist/<commit>/<path>` says the file is absent at that commit.
    pub fn known_absent(&self, commit: &str, path: &str) -> bool {
        self.no_exist(commit, path).is_file()
    }

    /// Writes the `.no_exist/<commit>/<path>` marker (best effort: it only saves a request later).
    pub fn mark_absent(&self, commit: &str, path: &str) {
        let marker = self.no_exist(commit, path);
        if let Some(dir) = marker.parent() {
            if fs::create_dir_all(dir).is_ok() {
                let _ = fs::write(&marker, b"");
            }
        }
    }

    fn no_exist(&self, commit: &str, path: &str) -> PathBuf {
        self.root.join(".no_exist").join(commit).join(path)
    }

    /// Makes `snapshots/<commit>/<path>` a relative symlink to `blobs/<etag>`, replacing whatever
    /// was there. The link is made under a temporary name and renamed into place.
    pub fn link(&self, commit: &str, path: &str, etag: &str) -> Result<()> {
        let pointer = self.snapshot(commit).join(path);
        let dir = pointer.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let tmp = temp_name(&pointer);
        make_link(&relative_blob_target(path, etag), &self.blob(etag), &tmp)
            .map_err(|e| Error::io("cannot create link", &tmp, e))?;
        fs::rename(&tmp, &pointer).map_err(|e| Error::io("cannot create link", &pointer, e))
    }

    /// `.locks/models--org--name/<etag>.lock` next to the repo folder, as huggingface_hub has it.
    pub fn lock_path(&self, etag: &str) -> PathBuf {
        let cache_dir = self.root.parent().unwrap_or(&self.root);
        let folder = self.root.file_name().unwrap_or_default();
        cache_dir
            .join(".locks")
            .join(folder)
            .join(format!("{etag}.lock"))
    }
}

/// A sibling name unique to this process and call, for write-then-rename.
fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

#[cfg(unix)]
fn make_link(target: &Path, _blob: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Windows needs a privilege for symlinks; like huggingface_hub, fall back to a copy.
#[cfg(windows)]
fn make_link(target: &Path, blob: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link).or_else(|_| fs::copy(blob, link).map(|_| ()))
}

#[cfg(not(any(unix, windows)))]
fn make_link(_target: &Path, blob: &Path, link: &Path) -> std::io::Result<()> {
    fs::copy(blob, link).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_round_trip() {
        assert_eq!(
            repo_folder_name("Qwen/Qwen3-TTS"),
            "models--Qwen--Qwen3-TTS"
        );
        assert_eq!(
            repo_from_folder_name("models--Qwen--Qwen3-TTS").as_deref(),
            Some("Qwen/Qwen3-TTS")
        );
        assert_eq!(repo_from_folder_name("datasets--a--b"), None);
    }

    #[test]
    fn link_targets_climb_one_level_per_directory() {
        assert_eq!(
            relative_blob_target("config.json", "e1"),
            PathBuf::from("../../blobs/e1")
        );
        assert_eq!(
            relative_blob_target("speech_tokenizer/model.safetensors", "e2"),
            PathBuf::from("../../../blobs/e2")
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(is_safe_repo_path("speech_tokenizer/config.json"));
        for p in [
            "",
            "../x",
            "/etc/passwd",
            "a/../../b",
            "a\\b",
            "./a",
            "a/./b",
            "a//b",
            "c:x",
        ] {
            assert!(!is_safe_repo_path(p), "{p}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn refs_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let c = RepoCache::new(dir.path(), "o/n");
        let sha = "a".repeat(40);
        assert_eq!(c.commit_for("main"), None);
        assert_eq!(c.commit_for(&sha), Some(sha.clone()));
        c.write_ref("main", &sha).unwrap();
        assert_eq!(fs::read_to_string(c.ref_path("main")).unwrap(), sha);
        assert_eq!(c.commit_for("main"), Some(sha.clone()));
        fs::create_dir_all(c.blob("x").parent().unwrap()).unwrap();
        fs::write(c.blob("etag1"), b"hello").unwrap();
        c.link(&sha, "sub/f.txt", "etag1").unwrap();
        let link = c.snapshot(&sha).join("sub/f.txt");
        assert_eq!(
            fs::read_link(&link).unwrap(),
            PathBuf::from("../../../blobs/etag1")
        );
        assert_eq!(fs::read(&link).unwrap(), b"hello");
        assert!(c.has_file(&sha, "sub/f.txt"));
        assert!(!c.has_file(&sha, "other"));
        c.mark_absent(&sha, "pre.json");
        assert!(c.known_absent(&sha, "pre.json"));
    }
}
