//! The 12 Hz speech tokenizer (`speech_tokenizer/`): the decoder (codes → 24 kHz waveform,
//! exact streaming with carried state) and the Mimi encoder (waveform → codes, for ICL cloning).
//!
//! [`Codec`] is the public face: [`Codec::decode`] is the full one-shot causal decode (T frames →
//! exactly T · 1920 samples, clamped to [-1, 1]); [`Codec::new_stream`] and
//! [`Codec::decode_chunk`] give the same samples chunk by chunk for any chunk size, carrying every
//! causal conv's context, every transposed conv's overlap and the pre-transformer's windowed
//! key/value cache in a [`DecoderState`]; [`Codec::encode`] turns 24 kHz audio into codes.

mod config;
mod conv;
pub(crate) mod cpu;
mod decoder;
mod encoder;
mod linear;
mod packed;
mod quantizer;
pub mod random;
mod rope;
mod stream;
mod transformer;
mod upsample;
mod vocoder;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use config::{CodecConfig, DecoderConfig, EncoderConfig};
pub use decoder::DecodeTrace;
pub use stream::DecoderState;

use decoder::Decoder;
use encoder::Encoder;

use crate::{Error, Result};

/// Code groups per frame (1 semantic + 15 acoustic) for every 12 Hz model.
pub const NUM_QUANTIZERS: usize = 16;

/// Frames [`Codec::decode`] pushes through the decoder at a time. The result does not depend on
/// it (streaming is exact); it bounds the memory of long decodes (about 8 MB per frame at the
/// real model's widths) and the attention's per-chunk cost.
const ONE_SHOT_CHUNK: usize = 16;

static NEXT_CODEC_ID: AtomicU64 = AtomicU64::new(1);

/// A loaded speech tokenizer. `Send + Sync`; share it behind an `Arc` and decode many streams.
#[derive(Debug)]
pub struct Codec {
    cfg: CodecConfig,
    decoder: Decoder,
    encoder: Option<Encoder>,
    device: Device,
    id: u64,
}

impl Codec {
    /// Loads `<dir>/config.json` and `<dir>/model.safetensors` (f32 or bf16 weights, computed in
    /// f32). Errors name the file and what is wrong with it.
    pub fn load(speech_tokenizer_dir: &Path, device: &Device) -> Result<Codec> {
        let cfg_path = speech_tokenizer_dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::File {
            path: cfg_path.clone(),
            reason: format!("cannot read the speech tokenizer config ({e}); the model directory needs speech_tokenizer/config.json"),
        })?;
        let cfg: CodecConfig = serde_json::from_str(&text).map_err(|e| Error::Malformed {
            path: cfg_path.clone(),
            reason: format!("invalid speech tokenizer config: {e}"),
        })?;
        cfg.validate().map_err(|reason| Error::Malformed {
            path: cfg_path.clone(),
            reason,
        })?;

        let weights = speech_tokenizer_dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(Error::File {
                path: weights,
                reason: "missing: the speech tokenizer weights are expected here (download the full model directory)".into(),
            });
        }
        let malformed = |reason: String| Error::Malformed {
            path: weights.clone(),
            reason,
        };
        // SAFETY: the file is memory-mapped read-only while the weights are copied out; it must not
        // be truncated meanwhile, as with every memory-mapped checkpoint loader.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, device) }
            .map_err(|e| malformed(format!("cannot read safetensors: {}", plain(e))))?;
        Codec::new(vb, &cfg).map_err(|e| match e {
            Error::Tensor(e) => malformed(format!(
                "speech tokenizer weights do not match config.json: {}",
                plain(e)
            )),
            other => other,
        })
    }

    /// Builds the codec from any weight source (`vb` at the file's root: `decoder.*`,
    /// `encoder.*`). The encoder is built when the config describes one and its weights exist.
    pub fn new(vb: VarBuilder, cfg: &CodecConfig) -> Result<Codec> {
        cfg.validate().map_err(Error::InvalidRequest)?;
        let vb = vb.set_dtype(DType::F32);
        let decoder = Decoder::load(vb.pp("decoder"), &cfg.decoder_config)?;
        let encoder = match &cfg.encoder_config {
            Some(ec) if vb.contains_tensor("encoder.downsample.conv.weight") => {
                Some(Encoder::load(vb.pp("encoder"), ec)?)
            }
            _ => None,
        };
        Ok(Codec {
            cfg: cfg.clone(),
            decoder,
            encoder,
            device: vb.device().clone(),
            id: NEXT_CODEC_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    pub fn config(&self) -> &CodecConfig {
        &self.cfg
    }

    /// Code groups per frame (16).
    pub fn num_quantizers(&self) -> usize {
        self.cfg.decoder_config.num_quantizers
    }

    /// Valid codes are `0..codebook_size`.
    pub fn codebook_size(&self) -> usize {
        self.cfg.decoder_config.codebook_size
    }

    /// Output samples per frame (1920).
    pub fn samples_per_frame(&self) -> usize {
        self.cfg.decoder_config.samples_per_frame()
    }

    pub fn sample_rate(&self) -> usize {
        self.cfg.output_sample_rate
    }

    /// Whether [`Codec::encode`] is available.
    pub fn has_encoder(&self) -> bool {
        self.encoder.is_some()
    }

    /// The full causal decode: T frames → exactly T · 1920 samples in [-1, 1].
    pub fn decode(&self, codes: &[[u32; NUM_QUANTIZERS]]) -> Result<Vec<f32>> {
        self.check_codes(codes)?;
        let mut st = self.new_stream();
        let mut out = Vec::with_capacity(codes.len() * self.samples_per_frame());
        for chunk in codes.chunks(ONE_SHOT_CHUNK) {
            out.extend(self.decode_chunk(&mut st, chunk)?);
        }
        Ok(out)
    }

    /// The one-shot decode of `codes` with every intermediate stage kept.
    pub fn decode_traced(&self, codes: &[[u32; NUM_QUANTIZERS]]) -> Result<DecodeTrace> {
        self.check_codes(codes)?;
        let mut st = self.new_stream();
        let mut trace = None;
        self.decoder
            .forward(&self.codes_tensor(codes)?, &mut st, Some(&mut trace))?;
        trace.ok_or_else(|| Error::InvalidRequest("decode_traced needs at least one frame".into()))
    }

    /// A fresh streaming state (nothing decoded yet).
    pub fn new_stream(&self) -> DecoderState {
        self.decoder.new_state(self.id)
    }

    /// Decodes the next frames of a stream: `codes.len()` frames → exactly that many × 1920
    /// samples, equal to the corresponding slice of the one-shot decode of the whole sequence.
    /// Codes are checked before anything runs, so a rejected chunk leaves the stream untouched;
    /// after any other error the stream's state is undefined and a new stream must be started.
    pub fn decode_chunk(
        &self,
        state: &mut DecoderState,
        codes: &[[u32; NUM_QUANTIZERS]],
    ) -> Result<Vec<f32>> {
        state.check_owner(self.id)?;
        self.check_codes(codes)?;
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let wav = self
            .decoder
            .forward(&self.codes_tensor(codes)?, state, None)?;
        Ok(wav.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Mimi-encodes 24 kHz mono audio into `ceil(len / 1920)` frames of 16 codes.
    pub fn encode(&self, wav_24k: &[f32]) -> Result<Vec<[u32; NUM_QUANTIZERS]>> {
        let enc = self.encoder.as_ref().ok_or_else(|| {
            Error::InvalidRequest(
                "this speech tokenizer has no encoder weights, so it cannot encode reference audio"
                    .into(),
            )
        })?;
        if wav_24k.is_empty() {
            return Err(Error::InvalidRequest("cannot encode empty audio".into()));
        }
        if let Some(i) = wav_24k.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidRequest(format!(
                "reference audio sample {i} is not a finite number"
            )));
        }
        let n_q = self.cfg.encoder_valid_num_quantizers;
        if n_q != NUM_QUANTIZERS {
            return Err(Error::InvalidRequest(format!(
                "encoder_valid_num_quantizers is {n_q}, but frames carry {NUM_QUANTIZERS} codes"
            )));
        }
        let groups = enc.encode(wav_24k, n_q, &self.device)?;
        let frames = wav_24k.len().div_ceil(self.cfg.encode_downsample_rate);
        let have = groups.first().map_or(0, |g| g.len());
        Ok((0..frames.min(have))
            .map(|t| std::array::from_fn(|g| groups[g][t]))
            .collect())
    }

    fn check_codes(&self, codes: &[[u32; NUM_QUANTIZERS]]) -> Result<()> {
        let n = self.codebook_size() as u32;
        for (t, frame) in codes.iter().enumerate() {
            if let Some((g, c)) = frame.iter().enumerate().find(|(_, &c)| c >= n) {
                return Err(Error::InvalidRequest(format!(
                    "code {c} (frame {t}, group {g}) is outside this codec's codebook 0..{n}"
                )));
            }
        }
        Ok(())
    }

    fn codes_tensor(&self, codes: &[[u32; NUM_QUANTIZERS]]) -> Result<Tensor> {
        let flat: Vec<u32> = codes.iter().flatten().copied().collect();
        Ok(Tensor::from_vec(
            flat,
            (codes.len(), NUM_QUANTIZERS),
            &self.device,
        )?)
    }
}

/// A candle error's message without the backtrace candle attaches when RUST_BACKTRACE is set.
pub(crate) fn plain(mut e: candle_core::Error) -> String {
    while let candle_core::Error::WithBacktrace { inner, .. } = e {
        e = *inner;
    }
    e.to_string()
}
