//! The vocoder half of the decoder (`decoder.decoder.*`): an input causal conv (latent →
//! decoder_dim, k 7), one [`VocoderBlock`] per upsample rate (SnakeBeta → causal transposed conv
//! halving the channels → residual units with dilations 1, 3, 9), a final SnakeBeta and a causal
//! conv to one channel. The clamp to [-1, 1] is applied by the decoder.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::conv::{CausalConv1d, CausalConvTranspose1d};
use super::stream::{DecoderState, SlotAlloc};
use super::DecoderConfig;
use crate::Result;

const KERNEL: usize = 7;
const DILATIONS: [usize; 3] = [1, 3, 9];

/// SnakeBeta: `x + sin²(x·e^α) / (e^β + 1e-9)`, α and β per channel, stored as logs.
#[derive(Debug, Clone)]
pub(crate) struct SnakeBeta {
    /// `[1, C, 1]`: e^α.
    alpha: Tensor,
    /// `[1, C, 1]`: 1 / (e^β + 1e-9).
    inv_beta: Tensor,
    alpha_v: Vec<f32>,
    inv_beta_v: Vec<f32>,
}

impl SnakeBeta {
    pub(crate) fn load(vb: VarBuilder, channels: usize) -> Result<Self> {
        let alpha = vb
            .get(channels, "alpha")?
            .exp()?
            .reshape((1, channels, 1))?;
        let beta = vb.get(channels, "beta")?.exp()?;
        let inv_beta = (beta + 1e-9)?.recip()?.reshape((1, channels, 1))?;
        let alpha_v = alpha.flatten_all()?.to_vec1::<f32>()?;
        let inv_beta_v = inv_beta.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self {
            alpha,
            inv_beta,
            alpha_v,
            inv_beta_v,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(y) = super::cpu::snake(&x.contiguous()?, &self.alpha_v, &self.inv_beta_v) {
            return y;
        }
        let s = x.broadcast_mul(&self.alpha)?.sin()?.sqr()?;
        Ok((x + s.broadcast_mul(&self.inv_beta)?)?)
    }
}

/// `x + conv2(snake2(conv1(snake1(x))))`, conv1 dilated k 7, conv2 k 1.
#[derive(Debug, Clone)]
struct ResidualUnit {
    act1: SnakeBeta,
    conv1: CausalConv1d,
    act2: SnakeBeta,
    conv2: CausalConv1d,
}

impl ResidualUnit {
    fn load(vb: VarBuilder, dim: usize, dilation: usize, slots: &mut SlotAlloc) -> Result<Self> {
        Ok(Self {
            act1: SnakeBeta::load(vb.pp("act1"), dim)?,
            conv1: CausalConv1d::load(vb.pp("conv1"), dim, dim, KERNEL, dilation, slots)?,
            act2: SnakeBeta::load(vb.pp("act2"), dim)?,
            conv2: CausalConv1d::load(vb.pp("conv2"), dim, dim, 1, 1, slots)?,
        })
    }

    fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let y = self.conv1.forward(&self.act1.forward(x)?, st)?;
        let y = self.conv2.forward(&self.act2.forward(&y)?, st)?;
        Ok((x + y)?)
    }
}

/// One upsampling block: `block.0` SnakeBeta, `block.1` transposed conv (k 2r, stride r),
/// `block.2..4` residual units.
#[derive(Debug, Clone)]
struct VocoderBlock {
    act: SnakeBeta,
    up: CausalConvTranspose1d,
    units: Vec<ResidualUnit>,
}

impl VocoderBlock {
    fn load(vb: VarBuilder, c_in: usize, rate: usize, slots: &mut SlotAlloc) -> Result<Self> {
        let vb = vb.pp("block");
        let c_out = c_in / 2;
        let act = SnakeBeta::load(vb.pp("0"), c_in)?;
        let up = CausalConvTranspose1d::load(vb.pp("1"), c_in, c_out, 2 * rate, rate, slots)?;
        let units = DILATIONS
            .iter()
            .enumerate()
            .map(|(i, &d)| ResidualUnit::load(vb.pp(i + 2), c_out, d, slots))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { act, up, units })
    }

    fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let mut h = self.up.forward(&self.act.forward(x)?, st)?;
        for u in &self.units {
            h = u.forward(&h, st)?;
        }
        Ok(h)
    }
}

/// `decoder.decoder`: latent `[1, latent, T]` → waveform `[1, 1, T · Π rates]` (before the clamp).
#[derive(Debug, Clone)]
pub(crate) struct Vocoder {
    input: CausalConv1d,
    blocks: Vec<VocoderBlock>,
    act: SnakeBeta,
    output: CausalConv1d,
}

impl Vocoder {
    pub(crate) fn load(vb: VarBuilder, cfg: &DecoderConfig, slots: &mut SlotAlloc) -> Result<Self> {
        let input =
            CausalConv1d::load(vb.pp(0), cfg.latent_dim, cfg.decoder_dim, KERNEL, 1, slots)?;
        let mut dim = cfg.decoder_dim;
        let mut blocks = Vec::with_capacity(cfg.upsample_rates.len());
        for (i, &rate) in cfg.upsample_rates.iter().enumerate() {
            blocks.push(VocoderBlock::load(vb.pp(i + 1), dim, rate, slots)?);
            dim /= 2;
        }
        let n = cfg.upsample_rates.len();
        let act = SnakeBeta::load(vb.pp(n + 1), dim)?;
        let output = CausalConv1d::load(vb.pp(n + 2), dim, 1, KERNEL, 1, slots)?;
        Ok(Self {
            input,
            blocks,
            act,
            output,
        })
    }

    /// Runs every stage; `trace` receives the output of each (input conv, each block, the final
    /// SnakeBeta, the output conv), in order.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        st: &mut DecoderState,
        mut trace: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        let mut record = |t: &Tensor| {
            if let Some(v) = trace.as_deref_mut() {
                v.push(t.clone());
            }
        };
        let mut h = self.input.forward(x, st)?;
        record(&h);
        for b in &self.blocks {
            h = b.forward(&h, st)?;
            record(&h);
        }
        h = self.act.forward(&h)?;
        record(&h);
        let y = self.output.forward(&h, st)?;
        record(&y);
        Ok(y)
    }
}
