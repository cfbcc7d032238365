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
        Ok(Self {
            weight,
            taps,
            bias,
            dilation,
            context: (kernel - 1) * dilation,
            slot: slots.next(),
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let xe = with_context(x, self.context, self.slot, st)?.contiguous()?;
        if let Some(y) = super::cpu::conv1d(&xe, &self.taps, &self.bias, self.dilation, 1) {
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
    pub(crate) fn load(
        vb: VarBuilder,
        channels: usize,
        kernel: usize,
        slots: &mut SlotAlloc,
    ) -> Result<Self> {
        let vb = vb.pp("conv");
        let w = vb.get((channels, 1, kernel), "weight")?;
        let taps = (0..kernel)
            .map(|k| w.narrow(2, k, 1)?.reshape((1, channels, 1)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let bias = vb.get(channels, "bias")?.reshape((1, channels, 1))?;
        Ok(Self {
            taps,
            bias,
            slot: slots.next(),
        })
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
    /// `[C_out · n · s, C_in]`: the kernel zero-padded to `n·s` taps (so each input frame writes
    /// `n` whole output blocks of `s` samples), one row per output tap.
    w_rows: Tensor,
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
        let w_rows = w
            .reshape((c_in, c_out * blocks * stride))?
            .t()?
            .contiguous()?;
        let bias = vb.get(c_out, "bias")?.reshape((1, c_out, 1))?;
        Ok(Self {
            w_rows,
            bias,
            c_out,
            stride,
            blocks,
            slot: slots.next(),
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let (_, _, t) = x.dims3()?;
        let (n, s, co) = (self.blocks, self.stride, self.c_out);
        let xt = x.squeeze(0)?.t()?.contiguous()?; // [T, C_in]
        let z = match super::cpu::linear_rows(&xt, &self.w_rows, None) {
            Some(z) => z?,
            None => xt.matmul(&self.w_rows.t()?)?,
        };
        let z = z.reshape((t, co, n, s))?; // [T, C_out, n, s]
                                           // Block b of the output collects z[b - j, :, j, :] for every tap block j.
        let mut acc = z.narrow(2, 0, 1)?.squeeze(2)?.pad_with_zeros(0, 0, n - 1)?;
        for j in 1..n {
            let zj = z
                .narrow(2, j, 1)?
                .squeeze(2)?
                .pad_with_zeros(0, j, n - 1 - j)?;
            acc = (acc + zj)?;
        }
        if n > 1 {
            if let Some(tail) = st.take(self.slot) {
                acc = (acc + tail.pad_with_zeros(0, 0, t)?)?;
            }
            st.put(self.slot, acc.narrow(0, t, n - 1)?.contiguous()?);
        }
        let y = acc
            .narrow(0, 0, t)?
            .permute((1, 0, 2))?
            .reshape((1, co, t * s))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarBuilder;
    use std::collections::HashMap;

    fn randn(shape: &[usize], seed: u64) -> Tensor {
        // Deterministic values without a global RNG: a simple LCG mapped to [-1, 1).
        let n: usize = shape.iter().product();
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Runs `f` over `x` `[1, C, T]` in time chunks of `chunk` with one carried state.
    fn chunked(
        x: &Tensor,
        chunk: usize,
        slots: usize,
        mut f: impl FnMut(&Tensor, &mut DecoderState) -> Tensor,
    ) -> Tensor {
        let mut st = DecoderState::new(0, slots, 0);
        let t = x.dim(2).unwrap();
        let mut outs = Vec::new();
        let mut a = 0;
        while a < t {
            let b = (a + chunk).min(t);
            outs.push(f(&x.narrow(2, a, b - a).unwrap(), &mut st));
            a = b;
        }
        Tensor::cat(&outs, 2).unwrap()
    }

    #[test]
    fn causal_conv_streams_exactly_and_matches_candle() {
        let (ci, co, k, d) = (5, 3, 4, 3);
        let w = randn(&[co, ci, k], 1);
        let b = randn(&[co], 2);
        let vb = VarBuilder::from_tensors(
            HashMap::from([
                ("conv.weight".to_string(), w.clone()),
                ("conv.bias".to_string(), b.clone()),
            ]),
            DType::F32,
            &Device::Cpu,
        );
        let mut slots = SlotAlloc::default();
        let conv = CausalConv1d::load(vb, ci, co, k, d, &mut slots).unwrap();
        let x = randn(&[1, ci, 40], 3);
        let want = x
            .pad_with_zeros(2, (k - 1) * d, 0)
            .unwrap()
            .conv1d(&w, 0, 1, d, 1)
            .unwrap()
            .broadcast_add(&b.reshape((1, co, 1)).unwrap())
            .unwrap();
        for chunk in [1, 2, 7, 40] {
            let got = chunked(&x, chunk, slots.count(), |c, st| {
                conv.forward(c, st).unwrap()
            });
            assert!(max_diff(&got, &want) < 1e-5, "chunk {chunk}");
        }
    }

    #[test]
    fn causal_conv_transpose_streams_exactly_for_any_kernel() {
        // k = 2s (vocoder), k = s (upsampler) and k not a multiple of s.
        for (ci, co, k, s) in [(4, 3, 6, 3), (4, 4, 2, 2), (3, 2, 5, 2), (2, 2, 7, 3)] {
            let w = randn(&[ci, co, k], 4);
            let b = randn(&[co], 5);
            let vb = VarBuilder::from_tensors(
                HashMap::from([
                    ("conv.weight".to_string(), w.clone()),
                    ("conv.bias".to_string(), b.clone()),
                ]),
                DType::F32,
                &Device::Cpu,
            );
            let mut slots = SlotAlloc::default();
            let tc = CausalConvTranspose1d::load(vb, ci, co, k, s, &mut slots).unwrap();
            let x = randn(&[1, ci, 13], 6);
            let full = x.conv_transpose1d(&w, 0, 0, s, 1, 1).unwrap();
            let want = full
                .narrow(2, 0, 13 * s)
                .unwrap()
                .broadcast_add(&b.reshape((1, co, 1)).unwrap())
                .unwrap();
            for chunk in [1, 2, 5, 13] {
                let got = chunked(&x, chunk, slots.count(), |c, st| tc.forward(c, st).unwrap());
                assert_eq!(got.dims(), &[1, co, 13 * s]);
                assert!(max_diff(&got, &want) < 1e-5, "k {k} s {s} chunk {chunk}");
            }
        }
    }
}
