//! The one error type of q3tts-hub: every variant prints as a short message that says what went
//! wrong, where, and what to do next (no backtraces, no debug dumps).

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the network could not be used to complete a model that is not fully cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoNetwork {
    /// `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) is set.
    Offline,
    /// The endpoint could not be reached (connection refused, DNS, timeout, TLS).
    Unreachable { endpoint: String, detail: String },
}

/// Everything that can go wrong while resolving, downloading or listing models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec that names a local path, but nothing is there.
    #[error("model directory {} does not exist (give --model an existing directory, or a Hugging Face repo id such as Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice)", path.display())]
    LocalNotFound { path: PathBuf },

    /// A spec that names a local path that is a file, not a directory.
    #[error("{} is not a directory (give --model the directory that holds config.json)", path.display())]
    LocalNotDir { path: PathBuf },

    /// A spec that is neither an existing directory nor a valid `org/name[@revision]`.
    #[error("`{spec}` is not a model directory nor a Hugging Face repo id: {reason} (expected a directory, or org/name[@revision] such as Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice)")]
    BadSpec { spec: String, reason: String },

    /// The model is not (completely) in the cache and the network cannot be used.
    #[error("{0}")]
    NotCached(Box<NotCached>),

    /// The hub answered 404 for the repository or the revision.
    #[error("{what} not found on {endpoint}{}: check the spelling; for a private or gated repo set HF_TOKEN", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NotFound {
        what: String,
        endpoint: String,
        detail: Option<String>,
    },

    /// The hub refused access (401/403).
    #[error("access to {repo} was refused by {endpoint} (HTTP {status}): set HF_TOKEN to a token that can read it{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        repo: String,
        endpoint: String,
        status: u16,
        detail: Option<String>,
    },

    /// Any other unexpected HTTP answer.
    #[error("{url} answered HTTP {status}{}; try again later, or use --model DIR with a local copy", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Http {
        url: String,
        status: u16,
        detail: Option<String>,
    },

    /// The server's answer is not what a Hugging Face hub sends.
    #[error("unexpected answer from {url}: {reason} (is HF_ENDPOINT a Hugging Face hub?)")]
    Protocol { url: String, reason: String },

    /// The repository lacks files every Qwen3-TTS model has.
    #[error("{repo}@{revision} does not look like a Qwen3-TTS model: it has no {}", missing.join(", "))]
    NotAModel {
        repo: String,
        revision: String,
        missing: Vec<String>,
    },

    /// The connection broke during a download; the partial file is kept for the next run.
    #[error("download of {file} stopped at {got} of {size} bytes ({detail}); the partial file {} is kept: run the same command again to resume", partial.display())]
    Interrupted {
        file: String,
        got: u64,
        size: u64,
        detail: String,
        partial: PathBuf,
    },

    /// A downloaded file failed verification and was deleted.
    #[error("downloaded {file} is corrupt ({check}: expected {expected}, got {actual}); it was deleted, run the command again to download it afresh")]
    Corrupt {
        file: String,
        check: &'static str,
        expected: String,
        actual: String,
    },

    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what we were doing and on which path.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The details of [`Error::NotCached`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCached {
    /// `org/name`.
    pub repo: String,
    /// The revision asked for.
    pub revision: String,
    /// The files the cache lacks (or a description, when nothing of the repo is cached).
    pub missing: Vec<String>,
    /// The snapshot directory (or the repo's cache folder) we looked in.
    pub looked_in: PathBuf,
    /// Why the network could not be used.
    pub why: NoNetwork,
}

impl std::fmt::Display for NotCached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (because, unset) = match &self.why {
            NoNetwork::Offline => (
                "HF_HUB_OFFLINE is set".to_string(),
                " (without HF_HUB_OFFLINE)",
            ),
            NoNetwork::Unreachable { endpoint, detail } => {
                (format!("cannot reach {endpoint} ({detail})"), "")
            }
        };
        write!(
            f,
            "model {}@{} is not in the Hugging Face cache and {because}: missing {} (looked in {}).\n\
             Fix: run `q3tts pull {}` where there is network{unset}, or pass --model DIR with a local copy of the model.",
            self.repo,
            self.revision,
            self.missing.join(", "),
            self.looked_in.display(),
            self.repo
        )
    }
}
