//! q3tts-audio: where samples go (speakers, files, stdout) and how they are converted.
//! Knows nothing of the model or the daemon.

mod sink;

pub use sink::{Sink, SinkSummary};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Audio errors name the path or device and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("audio device lost: {0}")]
    DeviceLost(String),
    #[error("no audio output available: {0} (try --output file.wav)")]
    NoBackend(String),
    #[error("{0}")]
    Other(String),
}
