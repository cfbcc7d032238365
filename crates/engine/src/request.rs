//! What a caller asks the engine for: text, voice, language and sampling knobs.

/// Sampling knobs. `None` means "the checkpoint's `generation_config.json` default".
/// The talker and the code predictor ("subtalker") share these overrides, as the CLI exposes one set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplingOptions {
    /// Per-request seed; `None` picks a fresh random seed (reported by the session).
    pub seed: Option<u64>,
    pub temperature: Option<f64>,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    /// No sampling for both the talker and the code predictor (repetition penalty still applies).
    pub greedy: bool,
    pub max_new_tokens: Option<usize>,
}

/// Reference audio for voice cloning (Base models), already decoded to mono f32.
#[derive(Clone, Debug, PartialEq)]
pub struct RefAudio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

/// One synthesis request.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthesisRequest {
    pub text: String,
    /// A `codec_language_id` key of the checkpoint, or "auto" (the default).
    pub language: String,
    /// CustomVoice speaker name (case-insensitive); `None` uses the model's default speaker.
    pub speaker: Option<String>,
    /// Instruction (VoiceDesign: the voice description; 1.7B CustomVoice: style). Dropped on 0.6B
    /// CustomVoice exactly as the reference does.
    pub instruct: Option<String>,
    /// Reference audio for Base models.
    pub ref_audio: Option<RefAudio>,
    /// Transcript of the reference audio; with it, in-context cloning, without it x-vector only.
    pub ref_text: Option<String>,
    pub sampling: SamplingOptions,
    /// Frames per emitted audio chunk (1 frame = 1920 samples = 80 ms).
    pub chunk_frames: usize,
    /// Frames in the first chunk only (a small first chunk means early audio); `None` uses
    /// [`DEFAULT_FIRST_CHUNK_FRAMES`] (or `chunk_frames` where that is smaller).
    pub first_chunk_frames: Option<usize>,
    /// Prompt layout override. `None` keeps the reference's defaults per mode
    /// (non-streaming text for CustomVoice and VoiceDesign, streaming text for voice clone).
    pub non_streaming_mode: Option<bool>,
    /// Suppress EOS so that exactly `max_new_tokens - 1` frames are produced (benchmarks, tests).
    pub suppress_eos: bool,
}

/// Frames in the first audio chunk unless a request says otherwise: 160 ms of audio, so the
/// speakers start after the prefill and two frames (streaming decode of 2 + 4 + 4 … frames costs
/// no more than decoding in one pass; `q3tts bench` prints both).
pub const DEFAULT_FIRST_CHUNK_FRAMES: usize = 2;

impl Default for SynthesisRequest {
    fn default() -> Self {
        Self {
            text: String::new(),
            language: "auto".into(),
            speaker: None,
            instruct: None,
            ref_audio: None,
            ref_text: None,
            sampling: SamplingOptions::default(),
            chunk_frames: 4,
            first_chunk_frames: None,
            non_streaming_mode: None,
            suppress_eos: false,
        }
    }
}

impl SynthesisRequest {
    /// Frames in the first chunk this request gets.
    pub fn first_chunk(&self) -> usize {
        self.first_chunk_frames
            .unwrap_or(self.chunk_frames.min(DEFAULT_FIRST_CHUNK_FRAMES))
    }

    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}
