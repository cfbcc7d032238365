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
pub mod code_predictor;
pub mod codec;
pub mod config;
mod error;
pub mod generate;
mod model;
pub mod plan;
pub mod presets;
pub mod prompt;
mod request;
mod session;
pub mod sampling;
pub mod speaker;
pub mod talker;
pub mod text_tokenizer;
pub mod transformer;
pub mod voice_clone;
pub mod weights;

pub use cancel::CancelToken;
pub use chunk::AudioChunk;
pub use error::{Error, Result};
pub use request::{RefAudio, SamplingOptions, SynthesisRequest};
pub use model::{LoadOptions, Model, ModelInfo, ModelParts, Session, SessionStats, Variant};
pub use generate::Frame;

/// Output sample rate of every released 12 Hz model.
pub const SAMPLE_RATE: u32 = 24_000;
/// Samples produced per codec frame (12.5 frames per second).
pub const SAMPLES_PER_FRAME: usize = 1920;
