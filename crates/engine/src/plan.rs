//! Request resolution: turns a [`SynthesisRequest`] into token ids, the codec language and
//! speaker slots, and the generation parameters, exactly as the reference wrapper would (speaker
//! and language lookup, dialect override, instruct dropped on 0.6B CustomVoice, per-mode
//! prompt-layout defaults), with errors that list the valid choices.

use crate::config::{GenerationConfig, ModelConfig};
use crate::generate::GenerationParams;
use crate::model::Variant;
use crate::sampling::{SamplerParams, TalkerRules};
use crate::text_tokenizer::TextTokenizer;
use crate::{Error, Result, SynthesisRequest, SAMPLE_RATE};

/// The minimum number of codebook-0 tokens before EOS may be chosen (reference: 2).
pub const MIN_NEW_TOKENS: usize = 2;

/// Which voice the prompt carries, before any audio is analysed.
#[derive(Clone, Debug, PartialEq)]
pub enum VoicePlan {
    /// CustomVoice preset (codec id) or VoiceDesign (none).
    Preset(Option<u32>),
    /// Base: x-vector from the reference audio; with ICL, also the reference transcript ids.
    Clone { ref_text_ids: Option<Vec<u32>> },
}

/// A resolved request.
#[derive(Clone, Debug)]
pub struct Plan {
    pub text_ids: Vec<u32>,
    pub instruct_ids: Option<Vec<u32>>,
    pub language_id: Option<u32>,
    pub voice: VoicePlan,
    pub non_streaming: bool,
    pub params: GenerationParams,
    /// Things the caller should be told (e.g. an instruct the model ignores).
    pub notes: Vec<String>,
}

/// The assistant template around the text to speak.
pub fn assistant_prompt(text: &str) -> String {
    format!("<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n")
}

/// The user template around an instruction.
pub fn instruct_prompt(instruct: &str) -> String {
    format!("<|im_start|>user\n{instruct}<|im_end|>\n")
}

/// The template around the reference transcript (ICL cloning).
pub fn ref_text_prompt(ref_text: &str) -> String {
    format!("<|im_start|>assistant\n{ref_text}<|im_end|>\n")
}

pub struct Planner<'a> {
    pub variant: Variant,
    pub size: &'a str,
    pub config: &'a ModelConfig,
    pub generation: &'a GenerationConfig,
    pub tokenizer: &'a TextTokenizer,
    pub default_speaker: Option<&'a str>,
}

impl Planner<'_> {
    pub fn plan(&self, req: &SynthesisRequest) -> Result<Plan> {
        if req.text.trim().is_empty() {
            return Err(Error::InvalidRequest("the text to speak is empty".into()));
        }
        if req.chunk_frames == 0 || req.first_chunk_frames == Some(0) {
            return Err(Error::InvalidRequest(
                "chunk_frames and first_chunk_frames must be at least 1".into(),
            ));
        }
        let tc = &self.config.talker_config;
        let mut notes = Vec::new();
        let language = req.language.trim().to_lowercase();
        let languages = tc.languages();
        if !languages.contains(&language) {
            return Err(Error::InvalidRequest(format!(
                "unknown language {:?}; this model supports: {}",
                req.language,
                languages.join(", ")
            )));
        }
        let mut language_id = if language == "auto" {
            None
        } else {
            tc.codec_language_id.get(&language).copied()
        };
        let instruct = req
            .instruct
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());

        let (voice, instruct) = match self.variant {
            Variant::CustomVoice => {
                if req.ref_audio.is_some() || req.ref_text.is_some() {
                    return Err(Error::InvalidRequest(
                        "reference audio is for Base (voice clone) models; this is a CustomVoice model: pick a speaker instead".into(),
                    ));
                }
                let name = match req
                    .speaker
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    Some(s) => s.to_lowercase(),
                    None => self.default_speaker.map(str::to_owned).ok_or_else(|| {
                        Error::InvalidRequest(
                            "this model has no preset speakers (spk_id is empty)".into(),
                        )
                    })?,
                };
                let id = tc.speaker_id(&name).ok_or_else(|| {
                    let names: Vec<&str> = tc.spk_id.keys().map(String::as_str).collect();
                    Error::InvalidRequest(format!(
                        "unknown speaker {:?}; this model has: {}",
                        req.speaker.as_deref().unwrap_or(&name),
                        names.join(", ")
                    ))
                })?;
                if language == "chinese" || language == "auto" {
                    if let Some(d) = tc.speaker_dialect(&name) {
                        language_id = tc.codec_language_id.get(d).copied();
                    }
                }
                let instruct = match instruct {
                    Some(i) if self.size == "0b6" => {
                        notes.push(format!(
                            "instruct {i:?} ignored: 0.6B CustomVoice models do not take instructions (as in the reference)"
                        ));
                        None
                    }
                    other => other,
                };
                (VoicePlan::Preset(Some(id)), instruct)
            }
            Variant::VoiceDesign => {
                if req.speaker.is_some() {
                    return Err(Error::InvalidRequest(
                        "VoiceDesign models have no preset speakers; describe the voice with an instruct instead".into(),
                    ));
                }
                if req.ref_audio.is_some() || req.ref_text.is_some() {
                    return Err(Error::InvalidRequest(
                        "reference audio is for Base (voice clone) models; this is a VoiceDesign model".into(),
                    ));
                }
                (VoicePlan::Preset(None), instruct)
            }
            Variant::Base => {
                if req.speaker.is_some() {
                    return Err(Error::InvalidRequest(
                        "Base models clone a voice from reference audio; they have no preset speakers".into(),
                    ));
                }
                if instruct.is_some() {
                    return Err(Error::InvalidRequest(
                        "Base (voice clone) models take no instruct".into(),
                    ));
                }
                let audio = req.ref_audio.as_ref().ok_or_else(|| {
                    Error::InvalidRequest(
                        "Base models need reference audio to clone a voice".into(),
                    )
                })?;
                if audio.sample_rate != SAMPLE_RATE {
                    return Err(Error::InvalidRequest(format!(
                        "reference audio must be {SAMPLE_RATE} Hz mono (got {} Hz); resample it first",
                        audio.sample_rate
                    )));
                }
                if audio.samples.is_empty() {
                    return Err(Error::InvalidRequest("reference audio is empty".into()));
                }
                let ref_text_ids = match req
                    .ref_text
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    Some(t) => Some(self.tokenizer.encode(&ref_text_prompt(t))?),
                    None => None,
                };
                (VoicePlan::Clone { ref_text_ids }, None)
            }
        };
        let non_streaming = req
            .non_streaming_mode
            .unwrap_or(!matches!(self.variant, Variant::Base));
        Ok(Plan {
            text_ids: self.tokenizer.encode(&assistant_prompt(&req.text))?,
            instruct_ids: instruct
                .map(|i| self.tokenizer.encode(&instruct_prompt(i)))
                .transpose()?,
            language_id,
            voice,
            non_streaming,
            params: self.params(req)?,
            notes,
        })
    }

    /// Sampling parameters: request overrides (shared by talker and code predictor) over
    /// generation_config.json.
    pub fn params(&self, req: &SynthesisRequest) -> Result<GenerationParams> {
        let o = &req.sampling;
        let g = self.generation;
        let talker = SamplerParams {
            do_sample: g.do_sample && !o.greedy,
            temperature: o.temperature.unwrap_or(g.temperature) as f32,
            top_k: o.top_k.unwrap_or(g.top_k),
            top_p: o.top_p.unwrap_or(g.top_p) as f32,
        };
        let subtalker = SamplerParams {
            do_sample: g.subtalker_dosample && !o.greedy,
            temperature: o.temperature.unwrap_or(g.subtalker_temperature) as f32,
            top_k: o.top_k.unwrap_or(g.subtalker_top_k),
            top_p: o.top_p.unwrap_or(g.subtalker_top_p) as f32,
        };
        for p in [&talker, &subtalker] {
            if p.do_sample && !(p.temperature.is_finite() && p.temperature > 0.0) {
                return Err(Error::InvalidRequest(format!(
                    "temperature must be > 0 (got {})",
                    p.temperature
                )));
            }
            if !(p.top_p > 0.0 && p.top_p <= 1.0) {
                return Err(Error::InvalidRequest(format!(
                    "top_p must be in (0, 1] (got {})",
                    p.top_p
                )));
            }
        }
        let repetition_penalty = o.repetition_penalty.unwrap_or(g.repetition_penalty);
        if !(repetition_penalty.is_finite() && repetition_penalty > 0.0) {
            return Err(Error::InvalidRequest(format!(
                "repetition_penalty must be > 0 (got {repetition_penalty})"
            )));
        }
        let tc = &self.config.talker_config;
        Ok(GenerationParams {
            talker,
            subtalker,
            rules: TalkerRules {
                eos: tc.codec_eos_token_id,
                vocab: tc.stack.vocab_size,
                repetition_penalty: repetition_penalty as f32,
                min_new_tokens: MIN_NEW_TOKENS,
                suppress_eos: req.suppress_eos,
            },
            max_new_tokens: o.max_new_tokens.unwrap_or(g.max_new_tokens),
            seed: o.seed.unwrap_or_else(rand::random),
        })
    }
}
