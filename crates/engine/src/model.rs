//! The engine's public face: [`Model`] (load once, `Send + Sync`, cheap to clone) and
//! [`Session`] (one utterance: an iterator of audio chunks that owns its caches, RNG and decoder
//! state and checks a [`CancelToken`] every frame).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::code_predictor::CodePredictor;
use crate::codec::Codec;
use crate::config::{GenerationConfig, ModelConfig};
use crate::generate::{ForcedStep, Frame, GenerationParams, GenerationTrace, Generator};
use crate::plan::{Plan, Planner, VoicePlan};
use crate::prompt::{IclInputs, Prompt, PromptInputs, SpeakerSlot};
use crate::talker::Talker;
use crate::text_tokenizer::TextTokenizer;
use crate::transformer::WeightFormat;
use crate::voice_clone::{load_speaker_encoder, XVectorSource};
use crate::weights::{without_backtrace, WeightFiles};
use crate::{CancelToken, Error, Result, SynthesisRequest, SAMPLE_RATE};

use crate::session::SessionStart;
pub use crate::session::{Session, SessionStats};

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

    /// Parse `tts_model_type`.
    pub fn parse(s: &str) -> Option<Variant> {
        match s {
            "custom_voice" => Some(Variant::CustomVoice),
            "voice_design" => Some(Variant::VoiceDesign),
            "base" => Some(Variant::Base),
            _ => None,
        }
    }
}

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub device: Device,
    /// Compute dtype for the talker and code predictor (F32 or BF16). The codec stays F32.
    pub dtype: DType,
    /// How the talker's and code predictor's linear layers keep their weights: as `dtype`, or
    /// in 8 bits (with `dtype` F32 for everything else).
    pub weights: WeightFormat,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: DType::F32,
            weights: WeightFormat::Float,
        }
    }
}

/// Facts about a loaded model, for status replies, scripts and error messages.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub variant: Variant,
    /// "0.6B" or "1.7B" (from `tts_model_size`).
    pub size: String,
    /// "f32", "bf16", or "int8" (8-bit linear weights, f32 activations).
    pub dtype: String,
    /// Speaker names (lowercase), sorted; empty unless CustomVoice.
    pub speakers: Vec<String>,
    /// "auto" plus the checkpoint's non-dialect `codec_language_id` keys, sorted.
    pub languages: Vec<String>,
    /// The speaker used when a CustomVoice request names none.
    pub default_speaker: Option<String>,
    pub sample_rate: u32,
}

/// The pieces a [`Model`] is made of, for building one from weights that are not a directory on
/// disk (e.g. random weights with the real dimensions, for benchmarks).
pub struct ModelParts {
    /// Shown in [`ModelInfo::path`].
    pub path: PathBuf,
    pub config: ModelConfig,
    pub generation: GenerationConfig,
    pub tokenizer: TextTokenizer,
    /// The root of model.safetensors (`talker.*`, `speaker_encoder.*`).
    pub weights: VarBuilder<'static>,
    pub dtype: DType,
    /// Keep the text-embedding table in this dtype (the checkpoint's, when it is narrower than
    /// `dtype`) to save memory; `None` stores it in `dtype`.
    pub text_embedding_dtype: Option<DType>,
    /// How the linear layers keep their weights.
    pub weights_format: WeightFormat,
    pub codec: Codec,
}

/// A loaded Qwen3-TTS model. Cloning is cheap (shared weights).
#[derive(Clone)]
pub struct Model {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    info: ModelInfo,
    config: ModelConfig,
    generation: GenerationConfig,
    tokenizer: TextTokenizer,
    talker: Talker,
    code_predictor: CodePredictor,
    codec: Codec,
    speaker_encoder: Option<Box<dyn XVectorSource>>,
    weight_format: WeightFormat,
}

impl Model {
    /// Load a model directory in the Hugging Face layout.
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Model> {
        if !dir.is_dir() {
            return Err(Error::File {
                path: dir.into(),
                reason: "model directory not found".into(),
            });
        }
        if !matches!(opts.dtype, DType::F32 | DType::BF16 | DType::F16) {
            return Err(Error::InvalidRequest(format!(
                "unsupported compute dtype {:?}; use f32 or bf16",
                opts.dtype
            )));
        }
        if opts.weights == WeightFormat::Int8 && opts.dtype != DType::F32 {
            return Err(Error::InvalidRequest(
                "8-bit weights compute in f32: load them with dtype f32".into(),
            ));
        }
        let config = ModelConfig::load(&dir.join("config.json"))?;
        let generation = GenerationConfig::load(&dir.join("generation_config.json"))?;
        let tokenizer = TextTokenizer::load(dir)?;
        let files = WeightFiles::find(dir)?;
        let weights = files.var_builder(opts.dtype, &opts.device)?;
        let codec = Codec::load(&dir.join("speech_tokenizer"), &opts.device)?;
        let text_embedding_dtype = files
            .stored_dtype("talker.model.text_embedding.weight")
            .filter(|d| d.size_in_bytes() < opts.dtype.size_in_bytes());
        let parts = ModelParts {
            path: dir.into(),
            config,
            generation,
            tokenizer,
            weights,
            dtype: opts.dtype,
            text_embedding_dtype,
            weights_format: opts.weights,
            codec,
        };
        Model::from_parts(parts).map_err(|e| match e {
            Error::Tensor(e) => files.malformed(format!(
                "weights do not match config.json: {}",
                without_backtrace(e)
            )),
            other => other,
        })
    }

    /// Build a model from already loaded parts.
    pub fn from_parts(p: ModelParts) -> Result<Model> {
        let cfg = &p.config;
        let variant = Variant::parse(&cfg.tts_model_type).ok_or_else(|| Error::Malformed {
            path: p.path.join("config.json"),
            reason: format!(
                "tts_model_type {:?} is not one of custom_voice, voice_design, base",
                cfg.tts_model_type
            ),
        })?;
        let tc = &cfg.talker_config;
        let format = p.weights_format;
        let talker = Talker::load_with(tc, p.weights.pp("talker"), p.text_embedding_dtype, format)?;
        let code_predictor =
            CodePredictor::load(tc, p.weights.pp("talker").pp("code_predictor"), format)?;
        let cp_vocab = tc.code_predictor_config.vocab_size;
        if p.codec.codebook_size() != cp_vocab {
            return Err(Error::Malformed {
                path: p.path.join("speech_tokenizer/config.json"),
                reason: format!(
                    "codec codebook_size {} differs from the code predictor's vocab_size {cp_vocab}",
                    p.codec.codebook_size()
                ),
            });
        }
        let speaker_encoder = if variant == Variant::Base {
            let enc =
                load_speaker_encoder(cfg, &p.weights).map_err(|reason| Error::Malformed {
                    path: p.path.join("config.json"),
                    reason,
                })??;
            Some(enc)
        } else {
            None
        };
        let size = match cfg.tts_model_size.as_deref() {
            Some("0b6") => "0.6B".to_string(),
            Some("1b7") => "1.7B".to_string(),
            Some(other) => other.to_string(),
            None => "unknown".to_string(),
        };
        let speakers: Vec<String> = if variant == Variant::CustomVoice {
            tc.spk_id.keys().cloned().collect()
        } else {
            Vec::new()
        };
        let default_speaker = ["ryan", "vivian"]
            .iter()
            .find(|s| speakers.iter().any(|x| x == *s))
            .map(|s| s.to_string())
            .or_else(|| speakers.first().cloned());
        let info = ModelInfo {
            path: p.path.clone(),
            variant,
            size,
            dtype: match (p.weights_format, p.dtype) {
                (WeightFormat::Int8, _) => "int8".into(),
                (_, DType::BF16) => "bf16".into(),
                (_, DType::F16) => "f16".into(),
                _ => "f32".into(),
            },
            speakers,
            languages: tc.languages(),
            default_speaker,
            sample_rate: SAMPLE_RATE,
        };
        Ok(Model {
            inner: Arc::new(Inner {
                info,
                config: p.config,
                generation: p.generation,
                tokenizer: p.tokenizer,
                talker,
                code_predictor,
                codec: p.codec,
                speaker_encoder,
                weight_format: format,
            }),
        })
    }

    /// How the talker's and code predictor's linear weights are kept.
    pub fn weight_format(&self) -> WeightFormat {
        self.inner.weight_format
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }
    pub fn config(&self) -> &ModelConfig {
        &self.inner.config
    }
    pub fn generation_config(&self) -> &GenerationConfig {
        &self.inner.generation
    }
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.inner.tokenizer
    }
    pub fn talker(&self) -> &Talker {
        &self.inner.talker
    }
    pub fn code_predictor(&self) -> &CodePredictor {
        &self.inner.code_predictor
    }
    pub fn codec(&self) -> &Codec {
        &self.inner.codec
    }

    /// The request resolver over this model's config, generation defaults and tokenizer.
    fn planner(&self) -> Planner<'_> {
        let i = &self.inner;
        Planner {
            variant: i.info.variant,
            size: i.config.tts_model_size.as_deref().unwrap_or(""),
            config: &i.config,
            generation: &i.generation,
            tokenizer: &i.tokenizer,
            default_speaker: i.info.default_speaker.as_deref(),
        }
    }

    /// Resolve a request: token ids, language and voice, generation parameters, notes.
    pub fn plan(&self, req: &SynthesisRequest) -> Result<Plan> {
        self.planner().plan(req)
    }

    /// The generation parameters a request resolves to (sampling overrides over
    /// generation_config.json, seed, max_new_tokens, EOS rules).
    pub fn generation_params(&self, req: &SynthesisRequest) -> Result<GenerationParams> {
        self.planner().params(req)
    }

    /// Turn a plan into prompt inputs, running the speaker encoder (x-vector) and the codec
    /// encoder (ICL reference codes) for Base models.
    pub fn prompt_inputs(&self, plan: &Plan, req: &SynthesisRequest) -> Result<PromptInputs> {
        let (speaker, icl) = match &plan.voice {
            VoicePlan::Preset(id) => (id.map_or(SpeakerSlot::None, SpeakerSlot::Preset), None),
            VoicePlan::Clone { ref_text_ids } => {
                let audio = req.ref_audio.as_ref().ok_or_else(|| {
                    Error::InvalidRequest(
                        "Base models need reference audio to clone a voice".into(),
                    )
                })?;
                let enc = self.inner.speaker_encoder.as_ref().ok_or_else(|| {
                    Error::InvalidRequest(
                        "this model has no speaker encoder, so it cannot clone a voice".into(),
                    )
                })?;
                let xvec = enc.embed(&audio.samples)?;
                let icl = match ref_text_ids {
                    Some(ids) => {
                        let ref_codes = self.inner.codec.encode(&audio.samples)?;
                        if ref_codes.is_empty() {
                            return Err(Error::InvalidRequest(
                                "reference audio is too short to encode".into(),
                            ));
                        }
                        Some(IclInputs {
                            ref_text_ids: ids.clone(),
                            ref_codes,
                        })
                    }
                    None => None,
                };
                (SpeakerSlot::XVector(xvec), icl)
            }
        };
        Ok(PromptInputs {
            text_ids: plan.text_ids.clone(),
            instruct_ids: plan.instruct_ids.clone(),
            language_id: plan.language_id,
            speaker,
            non_streaming: plan.non_streaming,
            icl,
        })
    }

    /// The prefill embeddings, trailing text and pad vector for prompt inputs.
    pub fn build_prompt(&self, inputs: &PromptInputs) -> Result<Prompt> {
        self.check_inputs(inputs)?;
        let i = &self.inner;
        Ok(Prompt::build(
            &i.config,
            &i.talker,
            &i.code_predictor,
            inputs,
        )?)
    }

    /// Ids and vectors that do not fit this model are request errors, not tensor failures.
    fn check_inputs(&self, inputs: &PromptInputs) -> Result<()> {
        let tc = &self.inner.config.talker_config;
        let bad = |msg: String| Err(Error::InvalidRequest(msg));
        if let SpeakerSlot::XVector(v) = &inputs.speaker {
            let h = self.inner.talker.hidden_size();
            if v.elem_count() != h {
                return bad(format!(
                    "speaker embedding has {} values, the talker expects {h}",
                    v.elem_count()
                ));
            }
        }
        if let Some(icl) = &inputs.icl {
            let n = tc.code_predictor_config.vocab_size as u32;
            if icl.ref_codes.iter().flatten().any(|&c| c >= n) {
                return bad(format!("reference codes must be below {n}"));
            }
        }
        let text_vocab = tc.text_vocab_size as u32;
        let mut text_ids = inputs
            .text_ids
            .iter()
            .chain(inputs.instruct_ids.iter().flatten());
        let ref_ids = inputs.icl.iter().flat_map(|i| i.ref_text_ids.iter());
        if let Some(id) = text_ids
            .by_ref()
            .chain(ref_ids)
            .copied()
            .find(|&id| id >= text_vocab)
        {
            return bad(format!(
                "text token id {id} is outside the talker's text vocab ({text_vocab}); tokenizer and model do not match"
            ));
        }
        let codec_vocab = tc.stack.vocab_size as u32;
        let preset = match inputs.speaker {
            SpeakerSlot::Preset(id) => Some(id),
            _ => None,
        };
        if let Some(id) = preset
            .into_iter()
            .chain(inputs.language_id)
            .find(|&id| id >= codec_vocab)
        {
            return bad(format!(
                "codec id {id} (speaker or language) is outside the codec vocab ({codec_vocab})"
            ));
        }
        Ok(())
    }

    /// Start a generator (runs the prefill).
    pub fn start_generation(
        &self,
        prompt: &Prompt,
        params: GenerationParams,
        trace: bool,
    ) -> Result<Generator> {
        Generator::new(&self.inner.talker, prompt, params, trace)
    }

    /// Teacher forcing: feed `frames` as the request's generated frames and return the raw
    /// logits the model gave at each step (see [`Generator::force_frame`]).
    pub fn forced_logits(
        &self,
        req: &SynthesisRequest,
        frames: &[Frame],
    ) -> Result<Vec<ForcedStep>> {
        let plan = self.plan(req)?;
        let prompt = self.build_prompt(&self.prompt_inputs(&plan, req)?)?;
        let mut g = self.start_generation(&prompt, plan.params, false)?;
        frames
            .iter()
            .map(|f| g.force_frame(&self.inner.talker, &self.inner.code_predictor, f))
            .collect()
    }

    /// Next frame of a generator started by this model.
    pub fn next_frame(&self, generator: &mut Generator) -> Result<Option<Frame>> {
        generator.next_frame(&self.inner.talker, &self.inner.code_predictor)
    }

    /// Generate all frames for a prompt, checking `cancel` every frame. With `trace`, the
    /// per-step logits are recorded.
    pub fn generate_from_prompt(
        &self,
        prompt: &Prompt,
        params: GenerationParams,
        cancel: &CancelToken,
        trace: bool,
    ) -> Result<(Vec<Frame>, Option<GenerationTrace>)> {
        let mut g = self.start_generation(prompt, params, trace)?;
        let mut frames = Vec::new();
        loop {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            match self.next_frame(&mut g)? {
                Some(f) => frames.push(f),
                None => break,
            }
        }
        Ok((frames, g.trace.take()))
    }

    /// The codes a request produces (no audio decode).
    pub fn generate_codes(
        &self,
        req: &SynthesisRequest,
        cancel: CancelToken,
    ) -> Result<Vec<Frame>> {
        let plan = self.plan(req)?;
        let prompt = self.build_prompt(&self.prompt_inputs(&plan, req)?)?;
        Ok(self
            .generate_from_prompt(&prompt, plan.params, &cancel, false)?
            .0)
    }

    /// Start synthesising one utterance.
    pub fn synthesize(&self, req: &SynthesisRequest, cancel: CancelToken) -> Result<Session> {
        let started = Instant::now();
        let plan = self.plan(req)?;
        let inputs = self.prompt_inputs(&plan, req)?;
        let prompt = self.build_prompt(&inputs)?;
        let seed = plan.params.seed;
        let generator = self.start_generation(&prompt, plan.params.clone(), false)?;
        let mut decoder = self.inner.codec.new_stream();
        let mut decoder_ms = 0.0;
        if let Some(icl) = &inputs.icl {
            // The reference decodes ref ++ generated codes and drops the reference part; with an
            // exact causal streaming decoder that is the same as priming the state with the
            // reference codes.
            let t0 = Instant::now();
            self.inner
                .codec
                .decode_chunk(&mut decoder, &icl.ref_codes)?;
            decoder_ms += t0.elapsed().as_secs_f64() * 1e3;
        }
        Session::start(SessionStart {
            model: self.clone(),
            generator,
            decoder,
            first_chunk_frames: req.first_chunk(),
            chunk_frames: req.chunk_frames,
            cancel,
            seed,
            notes: plan.notes,
            started,
            decoder_ms,
        })
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("info", &self.inner.info)
            .finish()
    }
}
