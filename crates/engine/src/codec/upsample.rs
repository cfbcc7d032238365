//! The pre-vocoder upsampler (`decoder.upsample.*`): per ratio, a causal transposed conv
//! (kernel = stride = ratio, latent → latent) and a ConvNeXt block — depthwise causal conv k 7,
//! LayerNorm over channels (eps 1e-6), Linear ×4, exact GELU, Linear back, per-channel `gamma`,
//! residual.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::linear::Linear;

use super::conv::{to_channel_major, to_time_major, CausalConvTranspose1d, CausalDepthwiseConv1d};
use super::stream::{DecoderState, SlotAlloc};
use crate::Result;

const DW_KERNEL: usize = 7;
const LN_EPS: f32 = 1e-6;

#[derive(Debug, Clone)]
struct ConvNeXtBlock {
    dwconv: CausalDepthwiseConv1d,
    norm_w: Tensor,
    norm_b: Tensor,
    pwconv1: Linear,
    pwconv2: Linear,
    gamma: Tensor,
}

impl ConvNeXtBlock {
    fn load(vb: VarBuilder, dim: usize, slots: &mut SlotAlloc) -> Result<Self> {
        Ok(Self {
            dwconv: CausalDepthwiseConv1d::load(vb.pp("dwconv"), dim, DW_KERNEL, slots)?,
            norm_w: vb.pp("norm").get(dim, "weight")?,
            norm_b: vb.pp("norm").get(dim, "bias")?,
            pwconv1: Linear::load(vb.pp("pwconv1"), dim, 4 * dim, true)?,
            pwconv2: Linear::load(vb.pp("pwconv2"), 4 * dim, dim, true)?,
            gamma: vb.get(dim, "gamma")?,
        })
    }

    fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let y = to_time_major(&self.dwconv.forward(x, st)?)?;
        let y = candle_nn::ops::layer_norm(&y, &self.norm_w, &self.norm_b, LN_EPS)?;
        let y = self.pwconv1.forward(&y)?.gelu_erf()?;
        let y = self.pwconv2.forward(&y)?.broadcast_mul(&self.gamma)?;
        Ok((x + to_channel_major(&y)?)?)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct UpsampleStage {
    up: CausalConvTranspose1d,
    block: ConvNeXtBlock,
}

impl UpsampleStage {
    /// `vb` at `decoder.upsample.{i}`.
    pub(crate) fn load(
        vb: VarBuilder,
        dim: usize,
        ratio: usize,
        slots: &mut SlotAlloc,
    ) -> Result<Self> {
        Ok(Self {
            up: CausalConvTranspose1d::load(vb.pp(0), dim, dim, ratio, ratio, slots)?,
            block: ConvNeXtBlock::load(vb.pp(1), dim, slots)?,
        })
    }

    /// `[1, dim, T]` → `[1, dim, T · ratio]`.
    pub(crate) fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let h = self.up.forward(x, st)?;
        self.block.forward(&h, st)
    }
}
