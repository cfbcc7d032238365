//! The released checkpoints' `config.json` and `generation_config.json` values (architecture
//! brief §2, quoted from the published checkpoints), for building random-weight models with the
//! real dimensions in memory (benchmarks) without a download.

use crate::config::{GenerationConfig, ModelConfig};

/// A released model size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealSize {
    /// Qwen3-TTS-12Hz-0.6B (talker hidden 1024, Identity code-predictor projection).
    B0_6,
    /// Qwen3-TTS-12Hz-1.7B (talker hidden 2048, with `small_to_mtp_projection`).
    B1_7,
}

impl RealSize {
    pub fn parse(s: &str) -> Option<RealSize> {
        match s.to_ascii_lowercase().as_str() {
            "0.6b" | "0b6" | "0.6" => Some(RealSize::B0_6),
            "1.7b" | "1b7" | "1.7" => Some(RealSize::B1_7),
            _ => None,
        }
    }
}

/// The CustomVoice `config.json` of a released size (speakers, languages, ids as published).
pub fn custom_voice_config(size: RealSize) -> ModelConfig {
    let (tag, hidden, intermediate) = match size {
        RealSize::B0_6 => ("0b6", 1024, 3072),
        RealSize::B1_7 => ("1b7", 2048, 6144),
    };
    let json = format!(
        r#"{{
  "tts_model_type": "custom_voice", "tts_model_size": "{tag}",
  "im_start_token_id": 151644, "im_end_token_id": 151645, "assistant_token_id": 77091,
  "tts_pad_token_id": 151671, "tts_bos_token_id": 151672, "tts_eos_token_id": 151673,
  "talker_config": {{
    "vocab_size": 3072, "hidden_size": {hidden}, "intermediate_size": {intermediate},
    "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
    "rms_norm_eps": 1e-6, "rope_theta": 1000000, "hidden_act": "silu", "attention_bias": false,
    "num_code_groups": 16, "text_vocab_size": 151936, "text_hidden_size": 2048,
    "codec_pad_id": 2148, "codec_bos_id": 2149, "codec_eos_token_id": 2150,
    "codec_think_id": 2154, "codec_nothink_id": 2155, "codec_think_bos_id": 2156, "codec_think_eos_id": 2157,
    "codec_language_id": {{"english": 2050, "german": 2053, "spanish": 2054, "chinese": 2055,
      "japanese": 2058, "french": 2061, "sichuan_dialect": 2062, "korean": 2064, "russian": 2069,
      "italian": 2070, "portuguese": 2071, "beijing_dialect": 2074}},
    "spk_id": {{"serena": 3066, "vivian": 3065, "uncle_fu": 3010, "ryan": 3061, "aiden": 2861,
      "ono_anna": 2873, "sohee": 2864, "eric": 2875, "dylan": 2878}},
    "spk_is_dialect": {{"serena": false, "vivian": false, "uncle_fu": false, "ryan": false,
      "aiden": false, "ono_anna": false, "sohee": false, "eric": "sichuan_dialect", "dylan": "beijing_dialect"}},
    "code_predictor_config": {{
      "vocab_size": 2048, "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 5,
      "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "rms_norm_eps": 1e-6,
      "rope_theta": 1000000, "hidden_act": "silu", "num_code_groups": 16
    }}
  }}
}}"#
    );
    serde_json::from_str(&json).expect("the built-in preset config parses")
}

/// The released checkpoints' `generation_config.json`.
pub fn generation_config() -> GenerationConfig {
    GenerationConfig { max_new_tokens: 8192, ..GenerationConfig::default() }
}
