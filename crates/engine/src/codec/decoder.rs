//! The 12 Hz decoder (`decoder.*`): codes → RVQ latent → causal pre-conv → sliding-window
//! pre-transformer → upsample stages → vocoder → clamp to [-1, 1]. Every stage is causal and
//! carries its state in a [`DecoderState`], so one chunk of frames at a time gives exactly the
//! samples of the one-shot decode: T frames → T · samples_per_frame samples.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::conv::{to_channel_major, to_time_major, CausalConv1d};
use super::quantizer::DecoderQuantizer;
use super::stream::{DecoderState, SlotAlloc};
use super::transformer::PreTransformer;
use super::upsample::UpsampleStage;
use super::vocoder::Vocoder;
use super::DecoderConfig;
use crate::Result;

const PRE_CONV_KERNEL: usize = 3;

/// Every intermediate of one decode, in the reference's layouts (batch 1), for fidelity tests
/// and debugging.
#[derive(Debug, Clone)]
pub struct DecodeTrace {
    /// `[1, codebook_dim, T]`
    pub quantizer_out: Tensor,
    /// `[1, T, latent]`
    pub pre_conv_out: Tensor,
    /// `[1, T, latent]` (after `output_proj`)
    pub pre_transformer_out: Tensor,
    /// One `[1, latent, T·Π ratios so far]` per upsample stage.
    pub upsample_out: Vec<Tensor>,
    /// Vocoder stages: input conv, each block, final SnakeBeta, output conv (the waveform
    /// before the clamp, `[1, 1, samples]`).
    pub vocoder_out: Vec<Tensor>,
    /// `[1, 1, samples]`, clamped.
    pub wav: Tensor,
}

#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    quantizer: DecoderQuantizer,
    pre_conv: CausalConv1d,
    pre_transformer: PreTransformer,
    upsample: Vec<UpsampleStage>,
    vocoder: Vocoder,
    slots: usize,
}

impl Decoder {
    /// `vb` at `decoder`.
    pub(crate) fn load(vb: VarBuilder, cfg: &DecoderConfig) -> Result<Self> {
        let mut slots = SlotAlloc::default();
        let quantizer = DecoderQuantizer::load(vb.pp("quantizer"), cfg)?;
        let pre_conv = CausalConv1d::load(
            vb.pp("pre_conv"),
            cfg.codebook_dim,
            cfg.latent_dim,
            PRE_CONV_KERNEL,
            1,
            &mut slots,
        )?;
        let pre_transformer = PreTransformer::load(vb.pp("pre_transformer"), cfg)?;
        let upsample = cfg
            .upsampling_ratios
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                UpsampleStage::load(vb.pp("upsample").pp(i), cfg.latent_dim, r, &mut slots)
            })
            .collect::<Result<Vec<_>>>()?;
        let vocoder = Vocoder::load(vb.pp("decoder"), cfg, &mut slots)?;
        Ok(Self {
            quantizer,
            pre_conv,
            pre_transformer,
            upsample,
            vocoder,
            slots: slots.count(),
        })
    }

    pub(crate) fn new_state(&self, codec_id: u64) -> DecoderState {
        DecoderState::new(codec_id, self.slots, self.pre_transformer.num_layers())
    }

    /// Decodes the next `T` frames (`codes`: `[T, groups]` u32, range-checked) → `[1, 1, T · spf]`
    /// clamped samples, advancing `st`.
    pub(crate) fn forward(
        &self,
        codes: &Tensor,
        st: &mut DecoderState,
        trace: Option<&mut Option<DecodeTrace>>,
    ) -> Result<Tensor> {
        let t = codes.dim(0)?;
        let q = to_channel_major(&self.quantizer.decode(codes)?)?; // [1, codebook_dim, T]
        let pc = to_time_major(&self.pre_conv.forward(&q, st)?)?; // [T, latent]
        let pt = self.pre_transformer.forward(&pc, st)?; // [T, latent]
        let mut h = to_channel_major(&pt)?;
        let mut ups = Vec::with_capacity(self.upsample.len());
        for stage in &self.upsample {
            h = stage.forward(&h, st)?;
            ups.push(h.clone());
        }
        let mut stages = Vec::new();
        let want_trace = trace.is_some();
        let y = self
            .vocoder
            .forward(&h, st, want_trace.then_some(&mut stages))?;
        let wav = y.clamp(-1f32, 1f32)?;
        st.frames += t;
        if let Some(out) = trace {
            *out = Some(DecodeTrace {
                quantizer_out: q,
                pre_conv_out: pc.unsqueeze(0)?,
                pre_transformer_out: pt.unsqueeze(0)?,
                upsample_out: ups,
                vocoder_out: stages,
                wav: wav.clone(),
            });
        }
        Ok(wav)
    }
}
