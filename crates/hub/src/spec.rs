//! Parsing a `--model` spec: a local directory, or a Hugging Face repo id `org/name[@revision]`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The branch used when a repo id names no revision.
pub const DEFAULT_REVISION: &str = "main";

/// What a `--model` spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// A directory on this machine, `~` already expanded. Not checked for existence by `parse`.
    Local(PathBuf),
    /// A repository on the hub.
    Repo(RepoRef),
}

/// A Hugging Face model repository at a revision (branch, tag or commit sha).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    /// `org/name`.
    pub repo: String,
    /// Branch, tag or 40-hex commit sha; `main` when the spec named none.
    pub revision: String,
}

impl RepoRef {
    /// True when the revision is a full commit sha (then it needs no `refs/` lookup).
    pub fn is_commit(&self) -> bool {
        is_commit_sha(&self.revision)
    }
}

/// True for a 40-character lowercase hex string, the form of a git commit sha.
pub fn is_commit_sha(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ModelSpec {
    /// Parses a spec. Paths (`/…`, `./…`, `../…`, `~…`, `.`, `..`) and existing directories are
    /// local; anything else must be `org/name[@revision]`.
    pub fn parse(spec: &str) -> Result<ModelSpec> {
        if spec.is_empty() {
            return Err(bad(spec, "it is empty"));
        }
        if looks_like_path(spec) || Path::new(spec).is_dir() {
            return Ok(ModelSpec::Local(expand_tilde(spec)));
        }
        parse_repo(spec).map(ModelSpec::Repo)
    }
}

fn looks_like_path(spec: &str) -> bool {
    spec.starts_with('/')
        || spec.starts_with("./")
        || spec.starts_with("../")
        || spec.starts_with('~')
        || spec == "."
        || spec == ".."
        || (cfg!(windows) && (spec.contains('\\') || spec.get(1..2) == Some(":")))
}

fn expand_tilde(spec: &str) -> PathBuf {
    let home = || std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"));
    if spec == "~" {
        if let Some(h) = home() {
            return PathBuf::from(h);
        }
    } else if let Some(rest) = spec.strip_prefix("~/") {
        if let Some(h) = home() {
            return PathBuf::from(h).join(rest);
        }
    }
    PathBuf::from(spec)
}

fn parse_repo(spec: &str) -> Result<RepoRef> {
    let (repo, revision) = match spec.split_once('@') {
        Some((r, rev)) => (r, rev),
        None => (spec, DEFAULT_REVISION),
    };
    if revision.is_empty() {
        return Err(bad(spec, "the revision after @ is empty"));
    }
    // The revision names a file under refs/, so it must stay a plain relative path.
    if revision.contains("..")
        || !crate::cache::is_safe_repo_path(revision)
        || revision.chars().any(|c| c.is_control())
    {
        return Err(bad(
            spec,
            "the revision is not a valid branch, tag or commit",
        ));
    }
    let mut parts = repo.split('/');
    let (org, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(o), Some(n), None) => (o, n),
        _ => {
            return Err(bad(
                spec,
                "it is not an existing directory, and a repo id has exactly one '/'",
            ))
        }
    };
    for part in [org, name] {
        check_name_part(spec, part)?;
    }
    Ok(RepoRef {
        repo: repo.to_string(),
        revision: revision.to_string(),
    })
}

fn check_name_part(spec: &str, part: &str) -> Result<()> {
    if part.is_empty() || part.len() > 96 {
        return Err(bad(
            spec,
            "the organisation and the name must each be 1 to 96 characters",
        ));
    }
    if !part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad(
            spec,
            "a repo id may only hold letters, digits, '-', '_' and '.'",
        ));
    }
    if part.starts_with(['-', '.'])
        || part.ends_with(['-', '.'])
        || part.contains("--")
        || part.contains("..")
    {
        return Err(bad(
            spec,
            "a repo id part may not start or end with '-' or '.', nor hold '--' or '..'",
        ));
    }
    Ok(())
}

fn bad(spec: &str, reason: &str) -> Error {
    Error::BadSpec {
        spec: spec.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(spec: &str) -> RepoRef {
        match ModelSpec::parse(spec).unwrap() {
            ModelSpec::Repo(r) => r,
            other => panic!("{spec} parsed as {other:?}"),
        }
    }

    #[test]
    fn repo_ids_with_and_without_revision() {
        let r = repo("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice");
        assert_eq!(r.repo, "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice");
        assert_eq!(r.revision, "main");
        assert!(!r.is_commit());
        let r = repo("org/name@v1.0");
        assert_eq!((r.repo.as_str(), r.revision.as_str()), ("org/name", "v1.0"));
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let r = repo(&format!("org/name@{sha}"));
        assert!(r.is_commit());
        let r = repo("org/name@refs/pr/1");
        assert_eq!(r.revision, "refs/pr/1");
    }

    #[test]
    fn paths_are_local() {
        for p in ["/abs/dir", "./rel", "../up", ".", ".."] {
            assert_eq!(
                ModelSpec::parse(p).unwrap(),
                ModelSpec::Local(PathBuf::from(p)),
                "{p}"
            );
        }
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(
                ModelSpec::parse("~/models/x").unwrap(),
                ModelSpec::Local(PathBuf::from(home).join("models/x"))
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().to_str().unwrap();
        assert_eq!(
            ModelSpec::parse(s).unwrap(),
            ModelSpec::Local(dir.path().to_path_buf())
        );
    }

    #[test]
    fn bad_specs_are_explained() {
        for (spec, needle) in [
            ("", "empty"),
            ("justaname", "exactly one '/'"),
            ("a/b/c", "exactly one '/'"),
            ("org/name@", "revision after @ is empty"),
            ("org/name@../x", "not a valid branch"),
            ("org/name@a/./b", "not a valid branch"),
            ("org/name@/abs", "not a valid branch"),
            ("org/na me", "letters, digits"),
            ("org/-name", "may not start"),
            ("org/na--me", "'--'"),
        ] {
            match ModelSpec::parse(spec) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(needle), "{spec}: {msg}");
                    assert!(msg.contains(spec), "{spec}: {msg}");
                }
                Ok(other) => panic!("{spec} parsed as {other:?}"),
            }
        }
    }
}
