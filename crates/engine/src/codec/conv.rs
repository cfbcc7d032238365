//! The decoder's causal convolutions, each able to run chunk by chunk with carried state:
//! [`CausalConv1d`] (left-pads `(k-1)·dilation` zeros; carries that many input samples),
//! [`CausalDepthwiseConv1d`] (the ConvNeXt depthwise conv, as k shifted multiply-adds) and
//! [`CausalConvTranspose1d`] (a transposed conv computed as one GEMM plus an overlap-add; the
//! `k − stride` samples past the chunk's end are carried and added to the next chunk, which is
//! exactly what the one-shot decode's right trim drops at the very end).
//!
//! Activations are `[1, channels, time]`. Weights keep PyTorch names under `<layer>.conv.*`.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::stream::{DecoderState, SlotAlloc};
use crate::Result;

/// Causal Conv1d, stride 1: `y = conv(pad_left(x, (k-1)·d))`.
#[derive(Debug, Clone)]
pub(crate) struct CausalConv1d {
    weight: Tensor,
    /// The weight as `[k, C_out, C_in]`, one matrix per tap, for the CPU kernel.
    taps: Tensor,
    bias: Tensor,
    dilation: usize,
    context: usize,
    slot: usize,
}

impl CausalConv1d {
    /// `vb` is the wrapper (`…pre_conv`); the weights live under `conv.`.
    pub(crate) fn load(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        dilation: usize,
        slots: &mut SlotAlloc,
    ) -> Result<Self> {
        let vb = vb.pp("conv");
        let weight = vb.get((c_out, c_in, kernel), "weight")?;
        let taps = weight.permute((2, 0, 1))?.contiguous()?;
        let bias = vb.get(c_out, "bias")?;
        Ok(Self { weight, taps, bias, dilation, context: (kernel - 1) * dilation, slot: slots.next() })
    }

    pub(crate) fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let xe = with_context(x, self.context, self.slot, st)?.contiguous()?;
        if let Some(y) = super::cpu::conv1d(&xe, &self.taps, &self.bias, self.dilation) {
            return y;
        }
        let y = xe.conv1d(&self.weight, 0, 1, self.dilation, 1)?;
        Ok(y.broadcast_add(&self.bias.reshape((1, (), 1))?)?)
    }
}

/// Depthwise causal Conv1d (`groups = channels`), weight `[C, 1, k]`.
#[derive(Debug, Clone)]
pub(crate) struct CausalDepthwiseConv1d {
    /// One `[1, C, 1]` column per tap.
    taps: Vec<Tensor>,
    bias: Tensor,
    slot: usize,
}

impl CausalDepthwiseConv1d {
    pub(crate) fn load(vb: VarBuilder, channels: usize, kernel: usize, slots: &mut SlotAlloc) -> Result<Self> {
        let vb = vb.pp("conv");
        let w = vb.get((channels, 1, kernel), "weight")?;
        let taps = (0..kernel)
            .map(|k| w.narrow(2, k, 1)?.reshape((1, channels, 1)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let bias = vb.get(channels, "bias")?.reshape((1, channels, 1))?;
        Ok(Self { taps, bias, slot: slots.next() })
    }

    pub(crate) fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let t = x.dim(2)?;
        let xe = with_context(x, self.taps.len() - 1, self.slot, st)?;
        let mut y = self.bias.broadcast_as(x.shape())?.contiguous()?;
        for (k, w) in self.taps.iter().enumerate() {
            y = (y + xe.narrow(2, k, t)?.broadcast_mul(w)?)?;
        }
        Ok(y)
    }
}

/// Prepends the carried left context (zeros on the first chunk) and stores the new context.
fn with_context(x: &Tensor, context: usize, slot: usize, st: &mut DecoderState) -> Result<Tensor> {
    if context == 0 {
        return Ok(x.clone());
    }
    let (b, c, _) = x.dims3()?;
    let prev = match st.take(slot) {
        Some(p) => p,
        None => Tensor::zeros((b, c, context), x.dtype(), x.device())?,
    };
    let xe = Tensor::cat(&[&prev, x], 2)?;
    let len = xe.dim(2)?;
    st.put(slot, xe.narrow(2, len - context, context)?.contiguous()?);
    Ok(xe)
}

/// Causal ConvTranspose1d (kernel k, stride s), PyTorch weight layout `[C_in, C_out, k]`:
/// the full transposed conv with its last `k − s` samples cut, so T inputs give T·s outputs.
#[derive(Debug, Clone)]
pub(crate) struct CausalConvTranspose1d {
    /// `[C_in, C_out · n · s]`: the kernel zero-padded to `n·s` taps, so each input frame writes
    /// `n` whole output blocks of `s` samples.
    w_mat: Tensor,
    bias: Tensor,
    c_out: usize,
    stride: usize,
    /// Output blocks one input frame touches (`ceil(k / s)`).
    blocks: usize,
    slot: usize,
}

impl CausalConvTranspose1d {
    /// `vb` is the wrapper; the weights live under `conv.`.
    pub(crate) fn load(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        slots: &mut SlotAlloc,
    ) -> Result<Self> {
        let vb = vb.pp("conv");
        let w = vb.get((c_in, c_out, kernel), "weight")?;
        let blocks = kernel.div_ceil(stride);
        let w = w.pad_with_zeros(2, 0, blocks * stride - kernel)?;
        let w_mat = w.reshape((c_in, c_out * blocks * stride))?.contiguous()?;
        let bias = vb.get(c_out, "bias")?.reshape((1, c_out, 1))?;
        Ok(Self { w_mat, bias, c_out, stride, blocks, slot: slots.next() })
    }

    pub(crate) fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let (_, _, t) = x.dims3()?;
        let (n, s, co) = (self.blocks, self.stride, self.c_out);
        let xt = x.squeeze(0)?.t()?.contiguous()?; // [T, C_in]
        let z = xt.matmul(&self.w_mat)?.reshape((t, co, n, s))?; // [T, C_out, n, s]
        // Block b of the output collects z[b - j, :, j, :] for every tap block j.
        let mut acc = z.narrow(2, 0, 1)?.squeeze(2)?.pad_with_zeros(0, 0, n - 1)?;
        for j in 1..n {
            let zj = z.narrow(2, j, 1)?.squeeze(2)?.pad_with_zeros(0, j, n - 1 - j)?;
            acc = (acc + zj)?;
        }
        if n > 1 {
            if let Some(tail) = st.take(self.slot) {
                acc = (acc + tail.pad_with_zeros(0, 0, t)?)?;
            }
            st.put(self.slot, acc.narrow(0, t, n - 1)?.contiguous()?);
        }
        let y = acc.narrow(0, 0, t)?.permute((1, 0, 2))?.reshape((1, co, t * s))?;
        Ok(y.broadcast_add(&self.bias)?)
    }
}

/// `[1, C, T]` → `[T, C]` (contiguous), for per-time-step layers.
pub(crate) fn to_time_major(x: &Tensor) -> Result<Tensor> {
    Ok(x.squeeze(0)?.t()?.contiguous()?)
}

/// `[T, C]` → `[1, C, T]` (contiguous).
pub(crate) fn to_channel_major(x: &Tensor) -> Result<Tensor> {
    Ok(x.t()?.contiguous()?.unsqueeze(0)?)
}


