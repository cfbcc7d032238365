//! The speaker encoder of Base checkpoints: log-mel front end and ECAPA-TDNN → x-vector.
//!
//! [`SpeakerEncoder::embed`] takes 24 kHz mono audio and returns the `[enc_dim]` x-vector the
//! talker's prompt carries in its speaker slot (`enc_dim` equals the talker's hidden size).

mod ecapa;
mod mel;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

pub use mel::{log_mel, mel_spectrogram, num_frames, HOP, N_FFT, N_MELS, SAMPLE_RATE};

use crate::{Error, Result};

/// `speaker_encoder_config` in the model's config.json (defaults: the reference class's).
#[derive(Clone, Debug, Deserialize)]
pub struct SpeakerEncoderConfig {
    #[serde(default = "default_mel_dim")]
    pub mel_dim: usize,
    /// Output width; must equal the talker's hidden size.
    #[serde(default = "default_enc_dim")]
    pub enc_dim: usize,
    #[serde(default = "default_channels")]
    pub enc_channels: Vec<usize>,
    #[serde(default = "default_kernels")]
    pub enc_kernel_sizes: Vec<usize>,
    #[serde(default = "default_dilations")]
    pub enc_dilations: Vec<usize>,
    #[serde(default = "default_128")]
    pub enc_attention_channels: usize,
    #[serde(default = "default_scale")]
    pub enc_res2net_scale: usize,
    #[serde(default = "default_128")]
    pub enc_se_channels: usize,
    #[serde(default = "default_sr")]
    pub sample_rate: usize,
}

impl SpeakerEncoderConfig {
    /// Checks the numbers describe an ECAPA-TDNN this crate can build; says which field is wrong.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let n = self.enc_channels.len();
        if n < 3 || self.enc_kernel_sizes.len() != n || self.enc_dilations.len() != n {
            return Err(format!(
                "speaker_encoder_config: enc_channels, enc_kernel_sizes and enc_dilations need the same length (at least 3), got {}, {}, {}",
                n,
                self.enc_kernel_sizes.len(),
                self.enc_dilations.len()
            ));
        }
        if self.mel_dim != N_MELS {
            return Err(format!(
                "speaker_encoder_config.mel_dim is {}; the mel front end has {N_MELS} bins",
                self.mel_dim
            ));
        }
        if self.sample_rate != SAMPLE_RATE {
            return Err(format!(
                "speaker_encoder_config.sample_rate is {}; only {SAMPLE_RATE} Hz is supported",
                self.sample_rate
            ));
        }
        if self.enc_res2net_scale < 2 {
            return Err("speaker_encoder_config.enc_res2net_scale must be at least 2".into());
        }
        if self.enc_kernel_sizes.contains(&0)
            || self.enc_dilations.contains(&0)
            || self.enc_channels.contains(&0)
        {
            return Err(
                "speaker_encoder_config: channels, kernel sizes and dilations must be positive"
                    .into(),
            );
        }
        if let Some(c) = self.enc_channels[1..n - 1]
            .iter()
            .find(|c| *c % self.enc_res2net_scale != 0)
        {
            return Err(format!(
                "speaker_encoder_config: {c} channels do not split into enc_res2net_scale {} groups",
                self.enc_res2net_scale
            ));
        }
        let mfa_in: usize = self.enc_channels[1..n - 1].iter().sum();
        if mfa_in != self.enc_channels[n - 1] {
            return Err(format!(
                "speaker_encoder_config: the last enc_channels entry ({}) must equal the sum of the SE-Res2Net blocks' channels ({mfa_in})",
                self.enc_channels[n - 1]
            ));
        }
        Ok(())
    }
}

/// The loaded speaker encoder (`Send + Sync`).
#[derive(Debug, Clone)]
pub struct SpeakerEncoder {
    ecapa: ecapa::Ecapa,
    cfg: SpeakerEncoderConfig,
    device: Device,
}

impl SpeakerEncoder {
    /// `vb` already at the prefix `speaker_encoder`; weights are used in f32.
    pub fn load(vb: VarBuilder, cfg: &SpeakerEncoderConfig) -> Result<Self> {
        cfg.validate().map_err(Error::InvalidRequest)?;
        let vb = vb.set_dtype(DType::F32);
        Ok(Self {
            ecapa: ecapa::Ecapa::load(vb.clone(), cfg)?,
            cfg: cfg.clone(),
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &SpeakerEncoderConfig {
        &self.cfg
    }

    /// 24 kHz mono audio → x-vector `[enc_dim]` (f32).
    pub fn embed(&self, wav_24k: &[f32]) -> Result<Tensor> {
        let mel = mel_spectrogram(wav_24k, &self.device)?; // [frames, 128]
        self.embed_mel(&mel)
    }

    /// Log-mel `[frames, 128]` → x-vector `[enc_dim]`.
    pub fn embed_mel(&self, mel: &Tensor) -> Result<Tensor> {
        let x = mel.t()?.contiguous()?.unsqueeze(0)?; // [1, 128, frames]
        self.ecapa.forward(&x)
    }
}

fn default_mel_dim() -> usize {
    N_MELS
}
fn default_enc_dim() -> usize {
    1024
}
fn default_channels() -> Vec<usize> {
    vec![512, 512, 512, 512, 1536]
}
fn default_kernels() -> Vec<usize> {
    vec![5, 3, 3, 3, 1]
}
fn default_dilations() -> Vec<usize> {
    vec![1, 2, 3, 4, 1]
}
fn default_128() -> usize {
    128
}
fn default_scale() -> usize {
    8
}
fn default_sr() -> usize {
    SAMPLE_RATE
}
