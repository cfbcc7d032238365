//! The engine's error type. Every message says what went wrong and, where it helps, what to do.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file is missing or unreadable.
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    /// A model file exists but its content is wrong (bad JSON, missing key, wrong tensor shape).
    #[error("{path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
    /// The request is invalid for this model (unknown speaker, language, empty text, ...).
    #[error("{0}")]
    InvalidRequest(String),
    /// The caller cancelled the session.
    #[error("cancelled")]
    Cancelled,
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The text tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}
