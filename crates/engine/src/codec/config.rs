//! `speech_tokenizer/config.json`: serde mirrors of the 12 Hz codec's top level, its
//! `decoder_config` and its `encoder_config` (a `transformers.MimiConfig`), with the checks that
//! turn an impossible configuration into an error before any weight is read. Missing optional
//! fields take the reference classes' defaults; every dimension the codec uses is read from here.

// `%` rather than `is_multiple_of`, which needs Rust 1.87 (the workspace supports 1.85).
#![allow(clippy::manual_is_multiple_of)]

use serde::Deserialize;

/// The whole `speech_tokenizer/config.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct CodecConfig {
    #[serde(default = "default_16")]
    pub encoder_valid_num_quantizers: usize,
    #[serde(default = "default_24000")]
    pub input_sample_rate: usize,
    #[serde(default = "default_24000")]
    pub output_sample_rate: usize,
    #[serde(default = "default_1920")]
    pub decode_upsample_rate: usize,
    #[serde(default = "default_1920")]
    pub encode_downsample_rate: usize,
    pub decoder_config: DecoderConfig,
    /// Needed only to encode reference audio (in-context voice cloning).
    #[serde(default)]
    pub encoder_config: Option<EncoderConfig>,
}

/// `decoder_config`: codes → 24 kHz waveform.
#[derive(Clone, Debug, Deserialize)]
pub struct DecoderConfig {
    pub codebook_size: usize,
    /// Width of the quantizer output; each codebook entry is `codebook_dim / 2` wide.
    pub codebook_dim: usize,
    pub latent_dim: usize,
    /// Pre-transformer width.
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Causal sliding window of every pre-transformer layer (the query counts itself);
    /// `null` means plain causal attention.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    #[serde(default = "default_16")]
    pub num_quantizers: usize,
    /// Leading code groups decoded by `rvq_first` (the rest by `rvq_rest`).
    #[serde(default = "default_1")]
    pub num_semantic_quantizers: usize,
    /// Pre-vocoder upsampling (transposed conv + ConvNeXt block per entry).
    pub upsampling_ratios: Vec<usize>,
    /// Vocoder block strides.
    pub upsample_rates: Vec<usize>,
    pub decoder_dim: usize,
    /// Must be false (the released decoder has no attention biases).
    #[serde(default)]
    pub attention_bias: bool,
    /// Must be "silu" (the pre-transformer's SwiGLU).
    #[serde(default = "default_silu")]
    pub hidden_act: String,
}

/// `encoder_config`: the Mimi encoder (SEANet, transformer, downsample, split RVQ).
#[derive(Clone, Debug, Deserialize)]
pub struct EncoderConfig {
    #[serde(default = "default_1")]
    pub audio_channels: usize,
    #[serde(default = "default_24000")]
    pub sampling_rate: usize,
    #[serde(default = "default_frame_rate")]
    pub frame_rate: f64,
    #[serde(default = "default_512")]
    pub hidden_size: usize,
    #[serde(default = "default_64")]
    pub num_filters: usize,
    #[serde(default = "default_1")]
    pub num_residual_layers: usize,
    /// Applied in reverse order as the SEANet encoder's strides.
    #[serde(default = "default_ratios")]
    pub upsampling_ratios: Vec<usize>,
    #[serde(default = "default_7")]
    pub kernel_size: usize,
    #[serde(default = "default_3")]
    pub last_kernel_size: usize,
    #[serde(default = "default_3")]
    pub residual_kernel_size: usize,
    #[serde(default = "default_2")]
    pub dilation_growth_rate: usize,
    #[serde(default = "default_true")]
    pub use_causal_conv: bool,
    #[serde(default = "default_pad_mode")]
    pub pad_mode: String,
    #[serde(default = "default_2")]
    pub compress: usize,
    #[serde(default)]
    pub use_conv_shortcut: bool,
    #[serde(default = "default_2048")]
    pub codebook_size: usize,
    #[serde(default = "default_256")]
    pub codebook_dim: usize,
    #[serde(default = "default_32")]
    pub num_quantizers: usize,
    #[serde(default = "default_1")]
    pub num_semantic_quantizers: usize,
    #[serde(default)]
    pub vector_quantization_hidden_dimension: Option<usize>,
    #[serde(default = "default_8")]
    pub num_hidden_layers: usize,
    #[serde(default = "default_2048")]
    pub intermediate_size: usize,
    #[serde(default = "default_8")]
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub sliding_window: Option<usize>,
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
}

impl DecoderConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    /// Output samples per code frame: the product of every upsampling stage.
    pub fn samples_per_frame(&self) -> usize {
        self.upsampling_ratios
            .iter()
            .chain(&self.upsample_rates)
            .product()
    }
}

impl EncoderConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    pub fn vq_dim(&self) -> usize {
        self.vector_quantization_hidden_dimension
            .unwrap_or(self.codebook_dim)
    }
    /// Frame rate after the SEANet strides, before the transformer's downsample (25 Hz).
    pub fn encodec_frame_rate(&self) -> usize {
        let hop: usize = self.upsampling_ratios.iter().product();
        self.sampling_rate.div_ceil(hop.max(1))
    }
    /// Kernel of the downsample conv (stride 2): `2 * (encodec_frame_rate / frame_rate)`.
    pub fn downsample_kernel(&self) -> usize {
        2 * (self.encodec_frame_rate() as f64 / self.frame_rate) as usize
    }
}

impl CodecConfig {
    /// Checks that the numbers describe a codec this crate can build; the message says which
    /// field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let d = &self.decoder_config;
        let positive = [
            ("codebook_size", d.codebook_size),
            ("codebook_dim", d.codebook_dim),
            ("latent_dim", d.latent_dim),
            ("hidden_size", d.hidden_size),
            ("intermediate_size", d.intermediate_size),
            ("num_attention_heads", d.num_attention_heads),
            ("decoder_dim", d.decoder_dim),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("decoder_config.{name} must be positive"));
            }
        }
        if d.codebook_dim % 2 != 0 {
            return Err(format!(
                "decoder_config.codebook_dim {} must be even",
                d.codebook_dim
            ));
        }
        if d.num_quantizers != crate::codec::NUM_QUANTIZERS {
            return Err(format!(
                "decoder_config.num_quantizers is {}, but the 12 Hz models use {} code groups",
                d.num_quantizers,
                crate::codec::NUM_QUANTIZERS
            ));
        }
        if d.num_semantic_quantizers == 0 || d.num_semantic_quantizers >= d.num_quantizers {
            return Err(
                "decoder_config.num_semantic_quantizers must be in 1..num_quantizers".into(),
            );
        }
        if d.num_attention_heads % d.num_kv_heads().max(1) != 0 || d.num_kv_heads() == 0 {
            return Err(
                "decoder_config.num_attention_heads must be a multiple of num_key_value_heads"
                    .into(),
            );
        }
        if d.head_dim() % 2 != 0 || d.head_dim() == 0 {
            return Err(format!(
                "decoder_config.head_dim {} must be even and positive",
                d.head_dim()
            ));
        }
        if d.attention_bias {
            return Err(
                "decoder_config.attention_bias is true; the 12 Hz decoder has no attention biases"
                    .into(),
            );
        }
        if d.hidden_act != "silu" {
            return Err(format!(
                "decoder_config.hidden_act {:?} is not supported (expected silu)",
                d.hidden_act
            ));
        }
        if d.sliding_window == Some(0) {
            return Err("decoder_config.sliding_window must be positive or null".into());
        }
        if d.upsampling_ratios.contains(&0) || d.upsample_rates.contains(&0) {
            return Err("decoder_config upsampling ratios and rates must be positive".into());
        }
        let halvings = 1usize << d.upsample_rates.len().min(30);
        if d.decoder_dim % halvings != 0 {
            return Err(format!(
                "decoder_config.decoder_dim {} must halve {} times",
                d.decoder_dim,
                d.upsample_rates.len()
            ));
        }
        if d.samples_per_frame() != self.decode_upsample_rate {
            return Err(format!(
                "decode_upsample_rate is {} but the decoder's ratios multiply to {}",
                self.decode_upsample_rate,
                d.samples_per_frame()
            ));
        }
        if let Some(e) = &self.encoder_config {
            e.validate()?;
            if self.encoder_valid_num_quantizers > e.num_quantizers {
                return Err(format!(
                    "encoder_valid_num_quantizers {} exceeds encoder_config.num_quantizers {}",
                    self.encoder_valid_num_quantizers, e.num_quantizers
                ));
            }
        }
        Ok(())
    }
}

impl EncoderConfig {
    fn validate(&self) -> Result<(), String> {
        if self.audio_channels != 1 {
            return Err(format!(
                "encoder_config.audio_channels is {}; only mono is supported",
                self.audio_channels
            ));
        }
        if self.upsampling_ratios.is_empty() || self.upsampling_ratios.contains(&0) {
            return Err("encoder_config.upsampling_ratios must be non-empty and positive".into());
        }
        if self.num_attention_heads == 0
            || self.num_kv_heads() == 0
            || self.num_attention_heads % self.num_kv_heads() != 0
        {
            return Err(
                "encoder_config.num_attention_heads must be a multiple of num_key_value_heads"
                    .into(),
            );
        }
        if self.head_dim() % 2 != 0 || self.head_dim() == 0 {
            return Err(format!(
                "encoder_config.head_dim {} must be even and positive",
                self.head_dim()
            ));
        }
        if self.compress == 0 || self.num_filters == 0 || self.hidden_size == 0 {
            return Err(
                "encoder_config.compress, num_filters and hidden_size must be positive".into(),
            );
        }
        if self.frame_rate.is_nan() || self.frame_rate <= 0.0 || self.downsample_kernel() < 2 {
            return Err(format!(
                "encoder_config.frame_rate {} does not give a stride-2 downsample from {} Hz",
                self.frame_rate,
                self.encodec_frame_rate()
            ));
        }
        if !matches!(self.hidden_act.as_str(), "gelu" | "gelu_python") {
            return Err(format!(
                "encoder_config.hidden_act {:?} is not supported (expected gelu)",
                self.hidden_act
            ));
        }
        if !matches!(self.pad_mode.as_str(), "constant" | "zeros") {
            return Err(format!(
                "encoder_config.pad_mode {:?} is not supported (expected constant)",
                self.pad_mode
            ));
        }
        if self.num_semantic_quantizers == 0 || self.num_semantic_quantizers > self.num_quantizers {
            return Err(
                "encoder_config.num_semantic_quantizers must be in 1..=num_quantizers".into(),
            );
        }
        Ok(())
    }
}

fn default_1() -> usize {
    1
}
fn default_2() -> usize {
    2
}
fn default_3() -> usize {
    3
}
fn default_7() -> usize {
    7
}
fn default_8() -> usize {
    8
}
fn default_16() -> usize {
    16
}
fn default_32() -> usize {
    32
}
fn default_64() -> usize {
    64
}
fn default_256() -> usize {
    256
}
fn default_512() -> usize {
    512
}
fn default_1920() -> usize {
    1920
}
fn default_2048() -> usize {
    2048
}
fn default_24000() -> usize {
    24000
}
fn default_true() -> bool {
    true
}
fn default_rms_eps() -> f64 {
    1e-5
}
fn default_norm_eps() -> f64 {
    1e-5
}
fn default_rope_theta() -> f64 {
    10000.0
}
fn default_frame_rate() -> f64 {
    12.5
}
fn default_ratios() -> Vec<usize> {
    vec![8, 6, 5, 4]
}
fn default_pad_mode() -> String {
    "constant".into()
}
fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_silu() -> String {
    "silu".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/tiny-base/speech_tokenizer/config.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn tiny_config_parses_with_every_dimension() {
        let cfg: CodecConfig = serde_json::from_value(tiny()).unwrap();
        cfg.validate().unwrap();
        let d = &cfg.decoder_config;
        assert_eq!(
            (
                d.codebook_size,
                d.head_dim(),
                d.sliding_window,
                d.samples_per_frame()
            ),
            (64, 8, Some(8), 1920)
        );
        let e = cfg.encoder_config.as_ref().unwrap();
        assert_eq!(
            (e.encodec_frame_rate(), e.downsample_kernel(), e.vq_dim()),
            (25, 4, 16)
        );
    }

    #[test]
    fn impossible_configs_name_the_field() {
        let bad = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = tiny();
            f(&mut v);
            serde_json::from_value::<CodecConfig>(v)
                .unwrap()
                .validate()
                .unwrap_err()
        };
        assert!(
            bad(&|v| v["decoder_config"]["num_quantizers"] = 8.into()).contains("num_quantizers")
        );
        assert!(
            bad(&|v| v["decoder_config"]["upsample_rates"] = serde_json::json!([8, 5, 4]))
                .contains("decode_upsample_rate")
        );
        assert!(
            bad(&|v| v["decoder_config"]["num_key_value_heads"] = 3.into())
                .contains("num_key_value_heads")
        );
        assert!(
            bad(&|v| v["decoder_config"]["sliding_window"] = 0.into()).contains("sliding_window")
        );
        assert!(
            bad(&|v| v["decoder_config"]["attention_bias"] = true.into())
                .contains("attention_bias")
        );
        assert!(bad(&|v| v["encoder_config"]["hidden_act"] = "relu".into()).contains("hidden_act"));
        assert!(bad(&|v| v["encoder_valid_num_quantizers"] = 40.into())
            .contains("encoder_valid_num_quantizers"));
    }
}
