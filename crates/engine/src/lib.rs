//! q3tts-engine: the Qwen3-TTS 12 Hz model family in Rust.
//!
//! This crate owns everything that touches tensors: configuration, weight loading, the text
//! tokenizer, the talker and code predictor, sampling, the speech tokenizer (decoder and encoder),
//! the speaker encoder, and the streaming synthesis [`Session`]. It knows nothing of sockets,
//! scripts or audio devices.
//!
//! Load once with [`Model::load`], then call [`Model::synthesize`] per request; the returned
//! [`Session`] is an iterator of [`AudioChunk`]s (24 kHz mono f32).

mod cancel;
mod chunk;
pub mod codec;
pub mod speaker;
mod error;
mod request;
mod model;

pub use cancel::CancelToken;
pub use chunk::AudioChunk;
pub use error::{Error, Result};
pub use request::{RefAudio, SamplingOptions, SynthesisRequest};
pub use model::{LoadOptions, Model, ModelInfo, Session, SessionStats, Variant};

/// Output sample rate of every released 12 Hz model.
pub const SAMPLE_RATE: u32 = 24_000;
/// Samples produced per codec frame (12.5 frames per second).
pub const SAMPLES_PER_FRAME: usize = 1920;
