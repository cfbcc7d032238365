//! The released checkpoints' `config.json` and `generation_config.json` values (architecture
//! brief §2, quoted from the published checkpoints), for building random-weight models with the
//! real dimensions in memory (benchmarks) without a download: configs, a byte-level tokenizer
//! with the real special ids, and [`random_custom_voice`].

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::AddedToken;

use crate::codec::random::random_var_builder;
use crate::codec::{Codec, CodecConfig};
use crate::config::{GenerationConfig, ModelConfig};
use crate::text_tokenizer::TextTokenizer;
use crate::transformer::WeightFormat;
use crate::{Model, ModelParts, Result};

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
    serde_json::from_str(&custom_voice_config_json(size))
        .expect("the built-in preset config parses")
}

/// [`custom_voice_config`] as JSON text (for writing a checkpoint to disk).
pub fn custom_voice_config_json(size: RealSize) -> String {
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
    json
}

/// The released checkpoints' `generation_config.json`.
pub fn generation_config() -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: 8192,
        ..GenerationConfig::default()
    }
}

/// The released speech tokenizer's decoder (`speech_tokenizer/config.json`, decoder part only:
/// the encoder is needed only to clone voices).
pub fn speech_tokenizer_config() -> CodecConfig {
    serde_json::from_str(SPEECH_TOKENIZER_CONFIG_JSON)
        .expect("the built-in speech tokenizer preset parses")
}

/// [`speech_tokenizer_config`] as JSON text.
pub const SPEECH_TOKENIZER_CONFIG_JSON: &str = r#"{
  "encoder_valid_num_quantizers": 16, "input_sample_rate": 24000, "output_sample_rate": 24000,
  "decode_upsample_rate": 1920, "encode_downsample_rate": 1920,
  "decoder_config": {
    "codebook_size": 2048, "codebook_dim": 512, "latent_dim": 1024, "hidden_size": 512,
    "intermediate_size": 1024, "num_hidden_layers": 8, "num_attention_heads": 16,
    "num_key_value_heads": 16, "head_dim": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000,
    "sliding_window": 72, "num_quantizers": 16, "num_semantic_quantizers": 1,
    "upsampling_ratios": [2, 2], "upsample_rates": [8, 5, 4, 3], "decoder_dim": 1536,
    "hidden_act": "silu", "attention_bias": false, "layer_scale_initial_scale": 0.01,
    "max_position_embeddings": 8000, "semantic_codebook_size": 4096,
    "vector_quantization_hidden_dimension": 512
  }
}"#;

/// A byte-level tokenizer with the released special-token ids (no merges, so every byte is a
/// token; "assistant", "user" and "\n" get their real ids 77091, 872 and 198). Enough to drive
/// random-weight models with the real prompt layout.
pub fn synthetic_tokenizer() -> TextTokenizer {
    let mut vocab: HashMap<String, u32> = HashMap::new();
    for (i, b) in gpt2_byte_order().into_iter().enumerate() {
        vocab.insert(byte_symbol(b).to_string(), i as u32);
    }
    let mut added = Vec::new();
    for (id, content, special) in [
        (77091, "assistant", false),
        (872, "user", false),
        (151643, "<|endoftext|>", true),
        (151644, "<|im_start|>", true),
        (151645, "<|im_end|>", true),
        (151671, "<tts_pad>", true),
        (151672, "<tts_text_bos>", true),
        (151673, "<tts_text_eod>", true),
    ] {
        vocab.insert(content.to_string(), id);
        added.push((id, AddedToken::from(content, special).normalized(false)));
    }
    let vocab: Vocab = vocab.into_iter().collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, Vec::new())
        .build()
        .expect("byte-level BPE builds");
    TextTokenizer::assemble(bpe, added).expect("synthetic tokenizer ids are consistent")
}

/// GPT-2's byte order: printable bytes first, then the rest (the order of the first 256 ids).
fn gpt2_byte_order() -> Vec<u8> {
    let mut bs: Vec<u8> = (b'!'..=b'~')
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    bs.extend((0..=255u8).filter(|b| !bs.contains(b)).collect::<Vec<_>>());
    bs
}

/// GPT-2's printable stand-in for a byte.
fn byte_symbol(b: u8) -> char {
    let printable: Vec<u8> = (b'!'..=b'~')
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    if printable.contains(&b) {
        char::from(b)
    } else {
        let n = (0..b).filter(|x| !printable.contains(x)).count() as u32;
        char::from_u32(256 + n).expect("valid code point")
    }
}

/// A CustomVoice model of a released size with seeded random weights, built in memory (nothing
/// read or written). For benchmarks: the real dimensions, the real prompt layout, random audio.
pub fn random_custom_voice(
    size: RealSize,
    dtype: DType,
    weights_format: WeightFormat,
    device: &Device,
    seed: u64,
) -> Result<Model> {
    let vb = random_var_builder(seed, device).set_dtype(dtype);
    let codec = Codec::new(
        random_var_builder(seed ^ 0x5eed, device),
        &speech_tokenizer_config(),
    )?;
    Model::from_parts(ModelParts {
        path: PathBuf::from(format!(
            "random:{}",
            if size == RealSize::B0_6 {
                "0.6B"
            } else {
                "1.7B"
            }
        )),
        config: custom_voice_config(size),
        generation: generation_config(),
        tokenizer: synthetic_tokenizer(),
        weights: vb,
        dtype,
        text_embedding_dtype: None,
        weights_format,
        codec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_tokenizer_gives_real_template_ids() {
        let t = synthetic_tokenizer();
        let ids = t.encode(&crate::plan::assistant_prompt("Hi")).unwrap();
        assert_eq!(&ids[..3], &[151644, 77091, 198]);
        assert_eq!(&ids[ids.len() - 5..], &[151645, 198, 151644, 77091, 198]);
        assert_eq!(ids.len(), 3 + 2 + 5, "one id per byte of the text");
        assert_eq!(t.encode("!").unwrap(), vec![0]);
    }

    #[test]
    fn presets_parse_with_real_dimensions() {
        let c = custom_voice_config(RealSize::B1_7);
        assert_eq!(c.talker_config.stack.hidden_size, 2048);
        assert_eq!(c.talker_config.speaker_id("ryan"), Some(3061));
        assert_eq!(
            speech_tokenizer_config().decoder_config.sliding_window,
            Some(72)
        );
    }
}
