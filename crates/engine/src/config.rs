//! Model configuration: serde mirrors of the checkpoint's `config.json` (top level,
//! `talker_config`, `code_predictor_config`) and `generation_config.json`, plus the checks that
//! turn a bad file into an error naming the file. Every dimension and id the engine uses is read
//! from here; nothing is tuned to a particular checkpoint.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::{Error, Result};

/// Codes per frame the engine and the 12 Hz codec exchange (1 semantic + 15 acoustic).
pub const CODE_GROUPS: usize = 16;

/// Top-level `config.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelConfig {
    pub tts_model_type: String,
    #[serde(default)]
    pub tts_model_size: Option<String>,
    pub im_start_token_id: u32,
    pub im_end_token_id: u32,
    pub tts_pad_token_id: u32,
    pub tts_bos_token_id: u32,
    pub tts_eos_token_id: u32,
    pub assistant_token_id: u32,
    pub talker_config: TalkerConfig,
    /// Present on Base checkpoints only; parsed by the speaker module.
    #[serde(default)]
    pub speaker_encoder_config: Option<serde_json::Value>,
}

/// A speaker's codec id: an int, or (as some checkpoints write it) a one-element list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum SpeakerId {
    One(u32),
    List(Vec<u32>),
}

impl SpeakerId {
    pub fn id(&self) -> Option<u32> {
        match self {
            SpeakerId::One(id) => Some(*id),
            SpeakerId::List(v) if v.len() == 1 => Some(v[0]),
            SpeakerId::List(_) => None,
        }
    }
}

/// `spk_is_dialect` values: `false`, or the dialect's `codec_language_id` key.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum DialectFlag {
    Flag(bool),
    Dialect(String),
}

impl DialectFlag {
    pub fn dialect(&self) -> Option<&str> {
        match self {
            DialectFlag::Dialect(d) => Some(d.as_str()),
            DialectFlag::Flag(_) => None,
        }
    }
}

/// The shape of one Qwen3 decoder stack (talker or code predictor).
#[derive(Clone, Debug, Deserialize)]
pub struct StackConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    #[serde(default)]
    pub head_dim: Option<usize>,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub attention_bias: bool,
    pub num_code_groups: usize,
}

fn default_act() -> String {
    "silu".into()
}

impl StackConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    fn check(&self, what: &str) -> std::result::Result<(), String> {
        if self.num_attention_heads == 0 || self.num_key_value_heads == 0 {
            return Err(format!(
                "{what}: num_attention_heads and num_key_value_heads must be > 0"
            ));
        }
        if self.num_attention_heads / self.num_key_value_heads * self.num_key_value_heads
            != self.num_attention_heads
        {
            return Err(format!(
                "{what}: num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.head_dim() == 0 || self.head_dim() & 1 == 1 {
            return Err(format!(
                "{what}: head_dim {} must be even and > 0 for RoPE",
                self.head_dim()
            ));
        }
        if self.hidden_act != "silu" {
            return Err(format!(
                "{what}: hidden_act {:?} is not supported (only silu)",
                self.hidden_act
            ));
        }
        if self.num_code_groups != CODE_GROUPS {
            return Err(format!(
                "{what}: num_code_groups is {}, this engine supports {CODE_GROUPS}",
                self.num_code_groups
            ));
        }
        Ok(())
    }
}

/// `talker_config`.
#[derive(Clone, Debug, Deserialize)]
pub struct TalkerConfig {
    #[serde(flatten)]
    pub stack: StackConfig,
    pub text_hidden_size: usize,
    pub text_vocab_size: usize,
    pub codec_pad_id: u32,
    pub codec_bos_id: u32,
    pub codec_eos_token_id: u32,
    pub codec_think_id: u32,
    pub codec_nothink_id: u32,
    pub codec_think_bos_id: u32,
    pub codec_think_eos_id: u32,
    #[serde(default)]
    pub codec_language_id: BTreeMap<String, u32>,
    #[serde(default)]
    pub spk_id: BTreeMap<String, SpeakerId>,
    #[serde(default)]
    pub spk_is_dialect: BTreeMap<String, DialectFlag>,
    pub code_predictor_config: StackConfig,
}

impl TalkerConfig {
    /// Codec id of a preset speaker (lowercase name).
    pub fn speaker_id(&self, name: &str) -> Option<u32> {
        self.spk_id.get(name).and_then(SpeakerId::id)
    }

    /// The dialect a speaker implies, if any.
    pub fn speaker_dialect(&self, name: &str) -> Option<&str> {
        self.spk_is_dialect.get(name).and_then(DialectFlag::dialect)
    }

    /// "auto" plus every non-dialect language key, sorted ("auto" first).
    pub fn languages(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .codec_language_id
            .keys()
            .filter(|k| !k.contains("dialect"))
            .cloned()
            .collect();
        v.sort();
        v.insert(0, "auto".into());
        v
    }
}

impl ModelConfig {
    /// Read and check `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let cfg: ModelConfig = read_json(path)?;
        cfg.check().map_err(|reason| Error::Malformed {
            path: path.into(),
            reason,
        })?;
        Ok(cfg)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let tc = &self.talker_config;
        tc.stack.check("talker_config")?;
        tc.code_predictor_config
            .check("talker_config.code_predictor_config")?;
        if tc.stack.vocab_size < 1024 {
            return Err(format!(
                "talker_config.vocab_size {} is below 1024",
                tc.stack.vocab_size
            ));
        }
        for (name, v) in &tc.spk_id {
            if v.id().is_none() {
                return Err(format!(
                    "talker_config.spk_id.{name}: expected an int or a one-element list"
                ));
            }
        }
        for (name, d) in &tc.spk_is_dialect {
            if let Some(d) = d.dialect() {
                if !tc.codec_language_id.contains_key(d) {
                    return Err(format!(
                        "talker_config.spk_is_dialect.{name} names {d:?}, which is not in codec_language_id"
                    ));
                }
            }
        }
        let v = tc.stack.vocab_size as u32;
        for (what, id) in [
            ("codec_pad_id", tc.codec_pad_id),
            ("codec_bos_id", tc.codec_bos_id),
            ("codec_eos_token_id", tc.codec_eos_token_id),
            ("codec_think_id", tc.codec_think_id),
            ("codec_nothink_id", tc.codec_nothink_id),
            ("codec_think_bos_id", tc.codec_think_bos_id),
            ("codec_think_eos_id", tc.codec_think_eos_id),
        ] {
            if id >= v {
                return Err(format!(
                    "talker_config.{what} {id} is outside the codec vocab ({v})"
                ));
            }
        }
        Ok(())
    }
}

/// `generation_config.json`. Missing fields take the reference wrapper's hard defaults.
#[derive(Clone, Debug, Deserialize)]
pub struct GenerationConfig {
    #[serde(default = "yes")]
    pub do_sample: bool,
    #[serde(default = "top_k")]
    pub top_k: usize,
    #[serde(default = "one")]
    pub top_p: f64,
    #[serde(default = "temperature")]
    pub temperature: f64,
    #[serde(default = "repetition_penalty")]
    pub repetition_penalty: f64,
    #[serde(default = "yes")]
    pub subtalker_dosample: bool,
    #[serde(default = "top_k")]
    pub subtalker_top_k: usize,
    #[serde(default = "one")]
    pub subtalker_top_p: f64,
    #[serde(default = "temperature")]
    pub subtalker_temperature: f64,
    #[serde(default = "max_new_tokens")]
    pub max_new_tokens: usize,
}

fn yes() -> bool {
    true
}
fn top_k() -> usize {
    50
}
fn one() -> f64 {
    1.0
}
fn temperature() -> f64 {
    0.9
}
fn repetition_penalty() -> f64 {
    1.05
}
fn max_new_tokens() -> usize {
    2048
}

impl Default for GenerationConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all GenerationConfig fields have defaults")
    }
}

impl GenerationConfig {
    /// Read `generation_config.json`; a checkpoint without one gets the wrapper defaults.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Self::default());
        }
        read_json(path)
    }
}

/// Read a JSON file into `T`, with errors that name the file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::File {
        path: path.into(),
        reason: format!("cannot read ({e}); is this a Qwen3-TTS model directory?"),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Malformed {
        path: path.into(),
        reason: format!("invalid JSON: {e}"),
    })
}
