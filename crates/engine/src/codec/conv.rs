//! The decoder's causal convolutions, each able to run chunk by chunk with carried state:
//! [`CausalConv1d`] (left-pads `(k-1)·dilation` zeros; carries that many input samples),
//! [`CausalDepthwiseConv1d`] (the ConvNeXt depthwise conv, as k shifted multiply-adds) and
//! [`CausalConvTranspose1d`] (a transposed conv computed as one GEMM plus an overlap-add; the
//! `k − stride` samples past the chunk's end are carried and added to the next chunk, which is
//! exactly what the one-shot decode's right trim drops at the very end).
//!
//! Activations are `[1, channels, time]`. Weights keep PyTorch names under `<layer>.conv.*`.

use std::sync::Arc;

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use super::packed::{self, PackedWeights};
use super::stream::{DecoderState, SlotAlloc};
use crate::Result;

/// Causal Conv1d, stride 1: `y = conv(pad_left(x, (k-1)·d))`.
#[derive(Debug, Clone)]
pub(crate) struct CausalConv1d {
    weights: ConvWeights,
    bias: Tensor,
    bias_v: Vec<f32>,
    dilation: usize,
    context: usize,
    slot: usize,
}

/// A convolution's weights in the layout the device's kernel wants.
#[derive(Debug, Clone)]
enum ConvWeights {
    /// CPUs with AVX-512: panels for the packed kernel (`packed.rs`); nothing else is kept.
    Packed(Arc<PackedWeights>),
    /// Other CPUs and GPUs: the PyTorch weight for candle and, for the `gemm` kernel in
    /// `cpu.rs`, the same values as one `[C_out, C_in]` matrix per tap.
    Plain { weight: Tensor, taps: Tensor },
}

/// Whether `w`'s layer runs on the packed kernel (f32 weights on an AVX-512 CPU).
fn use_packed(w: &Tensor) -> bool {
    #[cfg(test)]
    if tests::PLAIN_ONLY.with(|p| p.get()) {
        return false;
    }
    w.device().is_cpu() && w.dtype() == DType::F32 && packed::available()
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
        let weights = if use_packed(&weight) {
            let w = weight.flatten_all()?.to_vec1::<f32>()?;
            ConvWeights::Packed(Arc::new(PackedWeights::from_conv(&w, c_out, c_in, kernel)))
        } else {
            let taps = weight.permute((2, 0, 1))?.contiguous()?;
            ConvWeights::Plain { weight, taps }
        };
        let bias = vb.get(c_out, "bias")?;
        Ok(Self {
            weights,
            bias_v: bias.to_dtype(DType::F32)?.to_vec1()?,
            bias,
            dilation,
            context: (kernel - 1) * dilation,
            slot: slots.next(),
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let xe = with_context(x, self.context, self.slot, st)?.contiguous()?;
        let (weight, taps) = match &self.weights {
            ConvWeights::Packed(p) => return packed_conv(p, &xe, &self.bias_v, self.dilation),
            ConvWeights::Plain { weight, taps } => (weight, taps),
        };
        if let Some(y) = super::cpu::conv1d(&xe, taps, &self.bias, self.dilation, 1) {
            return y;
        }
        let y = xe.conv1d(weight, 0, 1, self.dilation, 1)?;
        Ok(y.broadcast_add(&self.bias.reshape((1, (), 1))?)?)
    }
}

/// The valid dilated conv of `x` `[1, C_in, L]` on the packed kernel, plus the bias.
fn packed_conv(w: &PackedWeights, x: &Tensor, bias: &[f32], dilation: usize) -> Result<Tensor> {
    let (_, _, len) = x.dims3()?;
    let t = len - (w.taps() - 1) * dilation;
    let mut y = bias_rows(bias, t);
    let done = super::cpu::with_f32(x, |xs| w.matmul_acc(xs, len, dilation, &mut y, t));
    done.ok_or_else(|| internal("the packed conv needs a contiguous f32 CPU input"))?;
    Ok(Tensor::from_vec(y, (1, w.rows(), t), x.device())?)
}

/// One row of `len` floats per channel, each filled with its bias.
fn bias_rows(bias: &[f32], len: usize) -> Vec<f32> {
    let mut y = vec![0f32; bias.len() * len];
    for (row, &b) in y.chunks_mut(len.max(1)).zip(bias) {
        row.fill(b);
    }
    y
}

fn internal(what: &str) -> crate::Error {
    candle_core::Error::Msg(what.to_string()).into()
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
/// The kernel is zero-padded to `n·s` taps (`n = ceil(k / s)`), so each input frame writes `n`
/// whole output blocks of `s` samples: one GEMM gives every frame's blocks, an overlap-add
/// places them.
#[derive(Debug, Clone)]
pub(crate) struct CausalConvTranspose1d {
    weights: TransposeWeights,
    bias: Tensor,
    bias_v: Vec<f32>,
    c_out: usize,
    stride: usize,
    /// Output blocks one input frame touches (`ceil(k / s)`).
    blocks: usize,
    slot: usize,
}

#[derive(Debug, Clone)]
enum TransposeWeights {
    /// AVX-512 CPUs: rows `(c_out · n + block) · s + j` packed for the packed kernel.
    Packed(Arc<PackedWeights>),
    /// Elsewhere: `[C_out · n · s, C_in]`, one row per output tap.
    Rows(Tensor),
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
        let taps = blocks * stride;
        let weights = if use_packed(&w) {
            let w = w.flatten_all()?.to_vec1::<f32>()?;
            let at = |row: usize, ci: usize, _| {
                let (co, tap) = (row / taps, row % taps);
                if tap < kernel {
                    w[(ci * c_out + co) * kernel + tap]
                } else {
                    0.0
                }
            };
            TransposeWeights::Packed(Arc::new(PackedWeights::new(c_out * taps, c_in, 1, at)))
        } else {
            let w = w.pad_with_zeros(2, 0, taps - kernel)?;
            TransposeWeights::Rows(w.reshape((c_in, c_out * taps))?.t()?.contiguous()?)
        };
        let bias = vb.get(c_out, "bias")?;
        Ok(Self {
            weights,
            bias_v: bias.to_dtype(DType::F32)?.to_vec1()?,
            bias: bias.reshape((1, c_out, 1))?,
            c_out,
            stride,
            blocks,
            slot: slots.next(),
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        match &self.weights {
            TransposeWeights::Packed(w) => self.forward_packed(w, &x.contiguous()?, st),
            TransposeWeights::Rows(w) => self.forward_rows(w, x, st),
        }
    }

    /// The packed kernel's GEMM `z[(co·n + b)·s + j][t]`, then the overlap-add in place:
    /// output sample `(t + b)·s + j` of channel `co` gets `z[(co·n + b)·s + j][t]`; samples past
    /// the chunk's end are carried to the next chunk.
    fn forward_packed(
        &self,
        w: &PackedWeights,
        x: &Tensor,
        st: &mut DecoderState,
    ) -> Result<Tensor> {
        let (_, _, t) = x.dims3()?;
        let (n, s, co) = (self.blocks, self.stride, self.c_out);
        let mut z = vec![0f32; w.rows() * t];
        let done = super::cpu::with_f32(x, |xs| w.matmul_acc(xs, t, 1, &mut z, t));
        done.ok_or_else(|| internal("the packed conv needs a contiguous f32 CPU input"))?;
        // Each channel's samples of this chunk and the `tail` past its end, in one row.
        let (out_len, tail) = (t * s, (n - 1) * s);
        let row = out_len + tail;
        let mut ext = vec![0f32; co * row];
        for (er, &b) in ext.chunks_mut(row).zip(&self.bias_v) {
            er[..out_len].fill(b);
        }
        if let Some(prev) = st.take(self.slot) {
            let prev = prev.flatten_all()?.to_vec1::<f32>()?;
            for (er, pr) in ext.chunks_mut(row).zip(prev.chunks(tail.max(1))) {
                er[..tail].iter_mut().zip(pr).for_each(|(a, b)| *a += b);
            }
        }
        for (er, zc) in ext.chunks_mut(row).zip(z.chunks(n * s * t)) {
            for (r, zr) in zc.chunks(t).enumerate() {
                let (b, j) = (r / s, r % s);
                for (i, &v) in zr.iter().enumerate() {
                    er[(i + b) * s + j] += v;
                }
            }
        }
        let mut y = Vec::with_capacity(co * out_len);
        let mut carry = Vec::with_capacity(co * tail);
        for er in ext.chunks(row) {
            y.extend_from_slice(&er[..out_len]);
            carry.extend_from_slice(&er[out_len..]);
        }
        if n > 1 {
            st.put(self.slot, Tensor::from_vec(carry, (co, tail), x.device())?);
        }
        Ok(Tensor::from_vec(y, (1, co, out_len), x.device())?)
    }

    fn forward_rows(&self, w_rows: &Tensor, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let (_, _, t) = x.dims3()?;
        let (n, s, co) = (self.blocks, self.stride, self.c_out);
        let xt = x.squeeze(0)?.t()?.contiguous()?; // [T, C_in]
        let z = match super::cpu::linear_rows(&xt, w_rows, None) {
            Some(z) => z?,
            None => xt.matmul(&w_rows.t()?)?,
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
    use crate::test_util::max_abs_diff;
    use candle_core::{DType, Device};
    use candle_nn::VarBuilder;
    use std::cell::Cell;
    use std::collections::HashMap;

    thread_local! {
        /// Set by a test to load layers with the plain weights on any CPU.
        pub(super) static PLAIN_ONLY: Cell<bool> = const { Cell::new(false) };
    }

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
        let x = randn(&[1, ci, 40], 3);
        let want = x
            .pad_with_zeros(2, (k - 1) * d, 0)
            .unwrap()
            .conv1d(&w, 0, 1, d, 1)
            .unwrap()
            .broadcast_add(&b.reshape((1, co, 1)).unwrap())
            .unwrap();
        // The packed kernel (on AVX-512 CPUs) and the plain weights.
        for plain in [false, true] {
            PLAIN_ONLY.with(|p| p.set(plain));
            let mut slots = SlotAlloc::default();
            let conv = CausalConv1d::load(vb.clone(), ci, co, k, d, &mut slots).unwrap();
            for chunk in [1, 2, 7, 40] {
                let got = chunked(&x, chunk, slots.count(), |c, st| {
                    conv.forward(c, st).unwrap()
                });
                assert!(
                    max_abs_diff(&got, &want) < 1e-5,
                    "plain {plain} chunk {chunk}"
                );
            }
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
            let x = randn(&[1, ci, 13], 6);
            let full = x.conv_transpose1d(&w, 0, 0, s, 1, 1).unwrap();
            let want = full
                .narrow(2, 0, 13 * s)
                .unwrap()
                .broadcast_add(&b.reshape((1, co, 1)).unwrap())
                .unwrap();
            for plain in [false, true] {
                PLAIN_ONLY.with(|p| p.set(plain));
                let mut slots = SlotAlloc::default();
                let tc = CausalConvTranspose1d::load(vb.clone(), ci, co, k, s, &mut slots).unwrap();
                for chunk in [1, 2, 5, 13] {
                    let got = chunked(&x, chunk, slots.count(), |c, st| tc.forward(c, st).unwrap());
                    assert_eq!(got.dims(), &[1, co, 13 * s]);
                    assert!(
                        max_abs_diff(&got, &want) < 1e-5,
                        "plain {plain} k {k} s {s} chunk {chunk}"
                    );
                }
            }
        }
    }
}
