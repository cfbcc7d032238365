//! The engine's public face: [`Model`] (load once, `Send + Sync`, cheap to clone) and
//! [`Session`] (one utterance: an iterator of audio chunks that owns its caches, RNG and decoder
//! state and checks a [`CancelToken`] every frame).
//!
//! NOTE(skeleton): signatures are fixed; the implementation is being filled in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};

use crate::{AudioChunk, CancelToken, Error, Result, SynthesisRequest};

/// Which released checkpoint family a directory holds (`tts_model_type` in config.json).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    CustomVoice,
    VoiceDesign,
    Base,
}

impl Variant {
    pub fn as_str(&self) -> &'static str {
        match self {
            Variant::CustomVoice => "custom_voice",
            Variant::VoiceDesign => "voice_design",
            Variant::Base => "base",
        }
    }
}

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub device: Device,
    /// Compute dtype for the talker and code predictor (F32 or BF16). The codec stays F32.
    pub dtype: DType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { device: Device::Cpu, dtype: DType::F32 }
    }
}

/// Facts about a loaded model, for status replies, scripts and error messages.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub variant: Variant,
    /// "0.6B" or "1.7B" (from `tts_model_size`).
    pub size: String,
    /// "f32" or "bf16".
    pub dtype: String,
    /// Speaker names (lowercase), sorted; empty unless CustomVoice.
    pub speakers: Vec<String>,
    /// "auto" plus the checkpoint's non-dialect `codec_language_id` keys, sorted.
    pub languages: Vec<String>,
    /// The speaker used when a CustomVoice request names none.
    pub default_speaker: Option<String>,
    pub sample_rate: u32,
}

/// Per-session timings, for the bench and status maps.
#[derive(Clone, Debug, Default)]
pub struct SessionStats {
    pub prefill_ms: f64,
    pub talker_ms: f64,
    pub code_predictor_ms: f64,
    pub decoder_ms: f64,
    pub frames: usize,
    pub first_chunk_s: Option<f64>,
}

/// A loaded Qwen3-TTS model. Cloning is cheap (shared weights).
#[derive(Clone)]
pub struct Model {
    inner: Arc<Inner>,
}

struct Inner {
    info: ModelInfo,
}

impl Model {
    /// Load a model directory in the Hugging Face layout.
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Model> {
        let _ = (dir, opts);
        Err(Error::InvalidRequest("engine not built yet".into()))
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// Start synthesising one utterance.
    pub fn synthesize(&self, req: &SynthesisRequest, cancel: CancelToken) -> Result<Session> {
        let _ = (req, cancel);
        Err(Error::InvalidRequest("engine not built yet".into()))
    }
}

/// One utterance in progress. Iterating pulls frames from the model and yields decoded chunks of
/// `chunk_frames` frames (the last may be shorter). Returns `Err(Error::Cancelled)` once if the
/// token is cancelled, then ends.
pub struct Session {
    model: Model,
    seed: u64,
    stats: SessionStats,
}

impl Session {
    /// The seed actually used (the request's, or the fresh one chosen for it).
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }
    pub fn model(&self) -> &Model {
        &self.model
    }
}

impl Iterator for Session {
    type Item = Result<AudioChunk>;
    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}
