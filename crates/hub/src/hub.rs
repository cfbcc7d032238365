//! `Hub`: turns a `--model` spec into a local directory, from the cache when it is complete
//! (no network at all), else by fetching what is missing from the hub.

use std::fs;
use std::path::PathBuf;

use crate::cache::{is_safe_repo_path, RepoCache};
use crate::download::fetch_blob;
use crate::error::{Error, NoNetwork, NotCached, Result};
use crate::files::{missing_in_snapshot, plan, shards_in_index, WEIGHTS_INDEX};
use crate::http::{FileMeta, Remote, RepoInfo, Unreachable};
use crate::progress::Progress;
use crate::settings::HubSettings;
use crate::spec::{ModelSpec, RepoRef};

/// Resolves model specs against the Hugging Face cache and hub.
pub struct Hub {
    settings: HubSettings,
    remote: Remote,
}

impl Hub {
    /// Reads `HF_HUB_CACHE`/`HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN` and `HF_HUB_OFFLINE`
    /// (see [`HubSettings::from_vars`]).
    pub fn from_env() -> Hub {
        Hub::new(HubSettings::from_env())
    }

    /// A hub with explicit settings.
    pub fn new(settings: HubSettings) -> Hub {
        let remote = Remote::new(&settings.endpoint, settings.token.clone());
        Hub { settings, remote }
    }

    /// A hub with explicit values: the hub cache directory (the one holding `models--*`), the
    /// endpoint URL, an optional token and offline mode.
    pub fn with(
        cache_dir: impl Into<PathBuf>,
        endpoint: &str,
        token: Option<String>,
        offline: bool,
    ) -> Hub {
        Hub::new(HubSettings {
            cache_dir: cache_dir.into(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            offline,
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// A local directory is returned as is (it must exist). A repo id resolves to its snapshot
    /// in the cache: with no network request at all when the snapshot already holds every file
    /// the engine needs; otherwise the missing files are downloaded (progress bar on a terminal
    /// when `progress`).
    pub fn resolve(&self, spec: &str, progress: bool) -> Result<PathBuf> {
        self.get(spec, progress, false)
    }

    /// Like [`Hub::resolve`], but when online always asks the hub which commit the revision is
    /// at now, and fetches what that commit needs.
    pub fn pull(&self, spec: &str, progress: bool) -> Result<PathBuf> {
        self.get(spec, progress, true)
    }

    fn get(&self, spec: &str, progress: bool, refresh: bool) -> Result<PathBuf> {
        match ModelSpec::parse(spec)? {
            ModelSpec::Local(path) => {
                if !path.exists() {
                    Err(Error::LocalNotFound { path })
                } else if !path.is_dir() {
                    Err(Error::LocalNotDir { path })
                } else {
                    Ok(path)
                }
            }
            ModelSpec::Repo(r) => self.get_repo(&r, progress, refresh),
        }
    }

    fn get_repo(&self, r: &RepoRef, progress: bool, refresh: bool) -> Result<PathBuf> {
        let cache = RepoCache::new(&self.settings.cache_dir, &r.repo);
        let local = cache.commit_for(&r.revision);
        let (missing, looked_in) = match &local {
            Some(commit) => (self.missing(&cache, commit), cache.snapshot(commit)),
            None if cache.root().is_dir() => (
                vec![format!(
                    "refs/{} (the commit of revision {})",
                    r.revision, r.revision
                )],
                cache.root().to_path_buf(),
            ),
            None => (
                vec!["config.json and the rest of the model".to_string()],
                cache.root().to_path_buf(),
            ),
        };
        let complete = local.is_some() && missing.is_empty();
        if complete && (!refresh || self.settings.offline || r.is_commit()) {
            return Ok(looked_in);
        }
        let not_cached = |why: NoNetwork| {
            Error::NotCached(Box::new(NotCached {
                repo: r.repo.clone(),
                revision: r.revision.clone(),
                missing: missing.clone(),
                looked_in: looked_in.clone(),
                why,
            }))
        };
        if self.settings.offline {
            return Err(not_cached(NoNetwork::Offline));
        }
        match self.remote.repo_info(&r.repo, &r.revision)? {
            Ok(info) => self.complete(&cache, r, &info, progress),
            // Like huggingface_hub: a complete cached snapshot is good enough when the hub is away.
            Err(_) if complete => Ok(looked_in),
            Err(Unreachable(detail)) => Err(not_cached(self.unreachable(detail))),
        }
    }

    /// Fetches whatever the snapshot of `info.sha` lacks, then points `refs/<rev>` at it.
    fn complete(
        &self,
        cache: &RepoCache,
        r: &RepoRef,
        info: &RepoInfo,
        progress: bool,
    ) -> Result<PathBuf> {
        let commit = info.sha.as_str();
        let plan = plan(&info.files).map_err(|missing| Error::NotAModel {
            repo: r.repo.clone(),
            revision: r.revision.clone(),
            missing,
        })?;
        for absent in &plan.absent {
            cache.mark_absent(commit, absent);
        }
        let mut files = plan.files;
        if plan.sharded {
            self.ensure(cache, r, commit, &[WEIGHTS_INDEX.to_string()], progress)?;
            files.extend(self.shards(cache, r, info)?);
        }
        self.ensure(cache, r, commit, &files, progress)?;
        cache.write_ref(&r.revision, commit)?;
        Ok(cache.snapshot(commit))
    }

    /// The shard files the downloaded index names, each checked to exist in the repository.
    fn shards(&self, cache: &RepoCache, r: &RepoRef, info: &RepoInfo) -> Result<Vec<String>> {
        let index_path = cache.snapshot(&info.sha).join(WEIGHTS_INDEX);
        let json = fs::read(&index_path).map_err(|e| Error::io("cannot read", &index_path, e))?;
        let shards = shards_in_index(&json).map_err(|reason| Error::Protocol {
            url: format!(
                "{}/{}/resolve/{}/{WEIGHTS_INDEX}",
                self.settings.endpoint, r.repo, info.sha
            ),
            reason,
        })?;
        let unlisted: Vec<String> = shards
            .iter()
            .filter(|s| !is_safe_repo_path(s) || !info.files.contains(s))
            .cloned()
            .collect();
        if !unlisted.is_empty() {
            return Err(Error::NotAModel {
                repo: r.repo.clone(),
                revision: r.revision.clone(),
                missing: unlisted
                    .into_iter()
                    .map(|s| format!("{s} (named by {WEIGHTS_INDEX})"))
                    .collect(),
            });
        }
        Ok(shards)
    }

    /// Makes every file of `files` present in `snapshots/<commit>/`: links blobs already cached,
    /// downloads the others.
    fn ensure(
        &self,
        cache: &RepoCache,
        r: &RepoRef,
        commit: &str,
        files: &[String],
        progress: bool,
    ) -> Result<()> {
        let todo: Vec<&String> = files
            .iter()
            .filter(|f| !cache.has_file(commit, f))
            .collect();
        let mut jobs: Vec<(&str, FileMeta)> = Vec::new();
        for (i, path) in todo.iter().enumerate() {
            let meta = match self.remote.file_meta(&r.repo, commit, path)? {
                Ok(meta) => meta,
                Err(Unreachable(detail)) => {
                    return Err(Error::NotCached(Box::new(NotCached {
                        repo: r.repo.clone(),
                        revision: r.revision.clone(),
                        missing: todo[i..].iter().map(|s| s.to_string()).collect(),
                        looked_in: cache.snapshot(commit),
                        why: self.unreachable(detail),
                    })))
                }
            };
            if cache.blob(&meta.etag).is_file() {
                cache.link(commit, path, &meta.etag)?;
            } else {
                jobs.push((path.as_str(), meta));
            }
        }
        if jobs.is_empty() {
            return Ok(());
        }
        let total = jobs.iter().map(|(_, m)| m.size).sum();
        let bar = if progress {
            Progress::new(true, total, &format!("downloading {}", r.repo))
        } else {
            Progress::hidden()
        };
        for (path, meta) in &jobs {
            fetch_blob(&self.remote, cache, path, meta, &bar)?;
            cache.link(commit, path, &meta.etag)?;
        }
        bar.finish();
        Ok(())
    }

    fn missing(&self, cache: &RepoCache, commit: &str) -> Vec<String> {
        missing_in_snapshot(
            &cache.snapshot(commit),
            |f| cache.has_file(commit, f),
            |f| cache.known_absent(commit, f),
        )
    }

    fn unreachable(&self, detail: String) -> NoNetwork {
        NoNetwork::Unreachable {
            endpoint: self.settings.endpoint.clone(),
            detail,
        }
    }
}
