//! q3tts-engine: the Qwen3-TTS 12 Hz model family in Rust.
//!
//! This crate owns everything that touches tensors: configuration, weight loading, the text
//! tokenizer, the talker and code predictor, sampling, the speech tokenizer (decoder and encoder),
//! the speaker encoder, and the streaming synthesis [`Session`]. It knows nothing of sockets,
//! scripts or audio devices.
//!
//! Load once with [`Model::load`], then call [`Model::synthesize`] per request; the returned
//! [`Session`] is an iterator of [`AudioChunk`]s (24 kHz mono f32).
//!
//! ```no_run
//! use q3tts_engine::{CancelToken, LoadOptions, Model, SynthesisRequest};
//! let model = Model::load("Qwen3-TTS-12Hz-0.6B-CustomVoice".as_ref(), &LoadOptions::default())?;
//! let req = SynthesisRequest { speaker: Some("ryan".into()), language: "english".into(),
//!                              ..SynthesisRequest::new("Hello, world.") };
//! for chunk in model.synthesize(&req, CancelToken::new())? {
//!     let chunk = chunk?; // chunk_frames × 1920 samples, streamed as frames are generated
//! #   let _ = chunk;
//! }
//! # Ok::<(), q3tts_engine::Error>(())
//! ```
//!
//! The text side, one concept per module: [`config`] (config.json / generation_config.json),
//! [`weights`] (single or sharded safetensors), [`text_tokenizer`] (Qwen2 byte-level BPE),
//! [`transformer`] (the Qwen3 decoder stack), [`talker`], [`code_predictor`], [`plan`] (request
//! → ids, voice, parameters), [`prompt`] (the dual-track prefill of every prompt mode),
//! [`sampling`] (the reference's logits processors and warpers), [`generate`] (the frame loop),
//! [`voice_clone`] (speaker encoder wiring), [`presets`] (released dimensions, random weights).
//! The audio side: [`codec`] (12 Hz decoder and encoder) and [`speaker`] (x-vector).

pub mod bench;
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
pub mod sampling;
mod session;
pub mod speaker;
pub mod talker;
#[cfg(test)]
mod test_util;
pub mod text_tokenizer;
pub mod transformer;
pub mod voice_clone;
pub mod weights;

pub use cancel::CancelToken;
pub use chunk::AudioChunk;
pub use error::{Error, Result};
pub use generate::Frame;
pub use model::{LoadOptions, Model, ModelInfo, ModelParts, Session, SessionStats, Variant};
pub use request::{RefAudio, SamplingOptions, SynthesisRequest, DEFAULT_FIRST_CHUNK_FRAMES};
pub use transformer::WeightFormat;

/// Output sample rate of every released 12 Hz model.
pub const SAMPLE_RATE: u32 = 24_000;
/// Samples produced per codec frame (12.5 frames per second).
pub const SAMPLES_PER_FRAME: usize = 1920;
