//! ECAPA-TDNN (`speaker_encoder.*`): a TDNN block, SE-Res2Net blocks, multi-layer feature
//! aggregation, attentive statistics pooling and a final 1×1 conv to the x-vector. Every conv is
//! PyTorch `Conv1d(padding="same", padding_mode="reflect")` with bias; TDNN blocks add a ReLU.
//! Activations are `[1, channels, frames]`.

use candle_core::{Tensor, D};
use candle_nn::VarBuilder;

use super::SpeakerEncoderConfig;
use crate::{Error, Result};

/// Floor under the pooled variances.
const STAT_EPS: f64 = 1e-12;

/// Conv1d with "same" reflect padding (left `total / 2`, right the rest).
#[derive(Debug, Clone)]
struct SameConv {
    weight: Tensor,
    /// `[k, C_out, C_in]` for the CPU kernel.
    taps: Tensor,
    /// `[C_out]`.
    bias: Tensor,
    dilation: usize,
    left: usize,
    right: usize,
}

impl SameConv {
    fn load(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        dilation: usize,
    ) -> Result<Self> {
        let total = dilation * (kernel - 1);
        let weight = vb.get((c_out, c_in, kernel), "weight")?;
        Ok(Self {
            taps: weight.permute((2, 0, 1))?.contiguous()?,
            weight,
            bias: vb.get(c_out, "bias")?,
            dilation,
            left: total / 2,
            right: total - total / 2,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = reflect_pad(x, self.left, self.right)?.contiguous()?;
        if let Some(y) = crate::codec::cpu::conv1d(&x, &self.taps, &self.bias, self.dilation, 1) {
            return y;
        }
        Ok(x.conv1d(&self.weight, 0, 1, self.dilation, 1)?
            .broadcast_add(&self.bias.reshape((1, (), 1))?)?)
    }
}

/// Reflect padding along the last axis (no edge repeat); needs `pad < len`.
fn reflect_pad(x: &Tensor, left: usize, right: usize) -> Result<Tensor> {
    if left == 0 && right == 0 {
        return Ok(x.clone());
    }
    let n = x.dim(D::Minus1)?;
    if left >= n || right >= n {
        return Err(Error::InvalidRequest(format!(
            "reference audio is too short for the speaker encoder ({n} mel frames, a conv needs more than {})",
            left.max(right)
        )));
    }
    let idx: Vec<u32> = (0..left)
        .map(|i| (left - i) as u32)
        .chain((0..n).map(|i| i as u32))
        .chain((0..right).map(|j| (n - 2 - j) as u32))
        .collect();
    let idx = Tensor::new(idx.as_slice(), x.device())?;
    Ok(x.index_select(&idx, x.rank() - 1)?)
}

/// Conv + ReLU.
#[derive(Debug, Clone)]
struct Tdnn {
    conv: SameConv,
}

impl Tdnn {
    fn load(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        dilation: usize,
    ) -> Result<Self> {
        Ok(Self {
            conv: SameConv::load(vb.pp("conv"), c_in, c_out, kernel, dilation)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.conv.forward(x)?.relu()?)
    }
}

/// Res2Net: split channels into `scale` groups; group 0 passes through, group i > 0 goes
/// through its TDNN after adding the previous group's output (from group 2 on).
#[derive(Debug, Clone)]
struct Res2Net {
    blocks: Vec<Tdnn>,
    scale: usize,
}

impl Res2Net {
    fn load(
        vb: VarBuilder,
        channels: usize,
        scale: usize,
        kernel: usize,
        dilation: usize,
    ) -> Result<Self> {
        let part = channels / scale;
        let blocks = (0..scale - 1)
            .map(|i| Tdnn::load(vb.pp("blocks").pp(i), part, part, kernel, dilation))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { blocks, scale })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let parts = x.chunk(self.scale, 1)?;
        let mut outs: Vec<Tensor> = Vec::with_capacity(self.scale);
        for (i, p) in parts.iter().enumerate() {
            let o = match i {
                0 => p.clone(),
                1 => self.blocks[0].forward(p)?,
                _ => self.blocks[i - 1].forward(&(p + &outs[i - 1])?)?,
            };
            outs.push(o);
        }
        Ok(Tensor::cat(&outs, 1)?)
    }
}

/// Squeeze-excitation: channel gates from the time average.
#[derive(Debug, Clone)]
struct SqueezeExcite {
    conv1: SameConv,
    conv2: SameConv,
}

impl SqueezeExcite {
    fn load(vb: VarBuilder, channels: usize, se: usize) -> Result<Self> {
        Ok(Self {
            conv1: SameConv::load(vb.pp("conv1"), channels, se, 1, 1)?,
            conv2: SameConv::load(vb.pp("conv2"), se, channels, 1, 1)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let m = x.mean_keepdim(2)?;
        let g = candle_nn::ops::sigmoid(&self.conv2.forward(&self.conv1.forward(&m)?.relu()?)?)?;
        Ok(x.broadcast_mul(&g)?)
    }
}

/// `x + SE(TDNN2(Res2Net(TDNN1(x))))`.
#[derive(Debug, Clone)]
struct SeRes2NetBlock {
    tdnn1: Tdnn,
    res2net: Res2Net,
    tdnn2: Tdnn,
    se: SqueezeExcite,
}

impl SeRes2NetBlock {
    fn load(vb: VarBuilder, cfg: &SpeakerEncoderConfig, i: usize) -> Result<Self> {
        let (c_in, c) = (cfg.enc_channels[i - 1], cfg.enc_channels[i]);
        Ok(Self {
            tdnn1: Tdnn::load(vb.pp("tdnn1"), c_in, c, 1, 1)?,
            res2net: Res2Net::load(
                vb.pp("res2net_block"),
                c,
                cfg.enc_res2net_scale,
                cfg.enc_kernel_sizes[i],
                cfg.enc_dilations[i],
            )?,
            tdnn2: Tdnn::load(vb.pp("tdnn2"), c, c, 1, 1)?,
            se: SqueezeExcite::load(vb.pp("se_block"), c, cfg.enc_se_channels)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self
            .tdnn2
            .forward(&self.res2net.forward(&self.tdnn1.forward(x)?)?)?;
        Ok((self.se.forward(&h)? + x)?)
    }
}

/// Attentive statistics pooling: attention over time from `[x, mean, std]`, then the weighted
/// mean and std, concatenated → `[1, 2C, 1]`.
#[derive(Debug, Clone)]
struct AttentiveStatsPool {
    tdnn: Tdnn,
    conv: SameConv,
}

impl AttentiveStatsPool {
    fn load(vb: VarBuilder, channels: usize, attention: usize) -> Result<Self> {
        Ok(Self {
            tdnn: Tdnn::load(vb.pp("tdnn"), channels * 3, attention, 1, 1)?,
            conv: SameConv::load(vb.pp("conv"), attention, channels, 1, 1)?,
        })
    }

    /// Weighted mean and std over time; `w` sums to 1 along time.
    fn stats(x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor)> {
        let mean = x.broadcast_mul(w)?.sum_keepdim(2)?;
        let var = x
            .broadcast_sub(&mean)?
            .sqr()?
            .broadcast_mul(w)?
            .sum_keepdim(2)?;
        Ok((mean, var.clamp(STAT_EPS, f64::INFINITY)?.sqrt()?))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, t) = x.dims3()?;
        let uniform = Tensor::full(1.0 / t as f32, (b, 1, t), x.device())?;
        let (mean, std) = Self::stats(x, &uniform)?;
        let ctx = Tensor::cat(
            &[
                x.clone(),
                mean.broadcast_as((b, c, t))?,
                std.broadcast_as((b, c, t))?,
            ],
            1,
        )?;
        let a = self.conv.forward(&self.tdnn.forward(&ctx)?.tanh()?)?;
        let a = candle_nn::ops::softmax_last_dim(&a)?;
        let (mean, std) = Self::stats(x, &a)?;
        Ok(Tensor::cat(&[mean, std], 1)?)
    }
}

/// The whole ECAPA-TDNN: log-mel `[1, mel_dim, frames]` → `[enc_dim]`.
#[derive(Debug, Clone)]
pub(crate) struct Ecapa {
    first: Tdnn,
    blocks: Vec<SeRes2NetBlock>,
    mfa: Tdnn,
    asp: AttentiveStatsPool,
    fc: SameConv,
}

impl Ecapa {
    pub(crate) fn load(vb: VarBuilder, cfg: &SpeakerEncoderConfig) -> Result<Self> {
        let ch = &cfg.enc_channels;
        let n = ch.len();
        let first = Tdnn::load(
            vb.pp("blocks.0"),
            cfg.mel_dim,
            ch[0],
            cfg.enc_kernel_sizes[0],
            cfg.enc_dilations[0],
        )?;
        let blocks = (1..n - 1)
            .map(|i| SeRes2NetBlock::load(vb.pp("blocks").pp(i), cfg, i))
            .collect::<Result<Vec<_>>>()?;
        let mfa_in: usize = ch[1..n - 1].iter().sum();
        let mfa = Tdnn::load(
            vb.pp("mfa"),
            mfa_in,
            ch[n - 1],
            cfg.enc_kernel_sizes[n - 1],
            cfg.enc_dilations[n - 1],
        )?;
        let asp = AttentiveStatsPool::load(vb.pp("asp"), ch[n - 1], cfg.enc_attention_channels)?;
        let fc = SameConv::load(vb.pp("fc"), ch[n - 1] * 2, cfg.enc_dim, 1, 1)?;
        Ok(Self {
            first,
            blocks,
            mfa,
            asp,
            fc,
        })
    }

    pub(crate) fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let mut h = self.first.forward(mel)?;
        let mut outs = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            h = b.forward(&h)?;
            outs.push(h.clone());
        }
        let h = self.mfa.forward(&Tensor::cat(&outs, 1)?)?;
        let pooled = self.asp.forward(&h)?;
        Ok(self.fc.forward(&pooled)?.flatten_all()?)
    }
}
