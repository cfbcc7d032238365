//! CPU kernels for the decoder's hot loops, working on the tensors' memory directly:
//! a dilated Conv1d computed as one accumulating GEMM per kernel tap (no im2col buffer, output
//! already channel-major, bias folded into the initial accumulator) and a fused SnakeBeta
//! (one pass, parallel over channels). Each returns `None` for tensors that are not contiguous
//! f32 on the CPU, and the caller then uses the plain candle ops (CUDA and Metal builds).

use candle_core::{Storage, Tensor};
use rayon::prelude::*;

use crate::Result;

/// Runs `f` on the tensor's f32 data when it is a contiguous CPU tensor.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if !t.is_contiguous() {
        return None;
    }
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => {
            let data = cpu.as_slice::<f32>().ok()?;
            let start = layout.start_offset();
            Some(f(&data[start..start + t.elem_count()]))
        }
        _ => None,
    }
}

/// Valid dilated, strided Conv1d: `x` `[1, C_in, L]`, `taps` `[K, C_out, C_in]`, `bias`
/// `[C_out]` → `[1, C_out, (L − (K−1)·dilation − 1) / stride + 1]`.
pub(crate) fn conv1d(x: &Tensor, taps: &Tensor, bias: &Tensor, dilation: usize, stride: usize) -> Option<Result<Tensor>> {
    let (_, c_in, len) = x.dims3().ok()?;
    let (k, c_out, c_in_w) = taps.dims3().ok()?;
    let span = (k - 1) * dilation + 1;
    if c_in != c_in_w || len < span || stride == 0 {
        return None;
    }
    let t = (len - span) / stride + 1;
    let mut y = with_f32(bias, |b| {
        let mut y = vec![0f32; c_out * t];
        for (row, &bv) in y.chunks_mut(t).zip(b) {
            row.fill(bv);
        }
        y
    })?;
    let threads = candle_core::utils::get_num_threads();
    let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    with_f32(x, |xs| {
        with_f32(taps, |ws| {
            for tap in 0..k {
                // SAFETY: every pointer/stride pair addresses only elements inside its slice:
                // dst is c_out × t (row stride t), lhs is tap `tap`'s c_out × c_in block (row
                // stride c_in), rhs is c_in rows of t samples `stride` apart starting at
                // tap · dilation within rows of length `len` ((t−1)·stride + tap·dilation < len).
                unsafe {
                    gemm::gemm(
                        c_out,
                        t,
                        c_in,
                        y.as_mut_ptr(),
                        1,
                        t as isize,
                        true,
                        ws.as_ptr().add(tap * c_out * c_in),
                        1,
                        c_in as isize,
                        xs.as_ptr().add(tap * dilation),
                        stride as isize,
                        len as isize,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        par,
                    );
                }
            }
        })
    })??;
    Some(Tensor::from_vec(y, (1, c_out, t), x.device()).map_err(Into::into))
}

/// Fused SnakeBeta on `[1, C, T]`: `x + inv_beta[c] · sin²(alpha[c] · x)`.
pub(crate) fn snake(x: &Tensor, alpha: &[f32], inv_beta: &[f32]) -> Option<Result<Tensor>> {
    let (_, c, t) = x.dims3().ok()?;
    if alpha.len() != c || inv_beta.len() != c {
        return None;
    }
    let y = with_f32(x, |xs| {
        let mut y = vec![0f32; c * t];
        y.par_chunks_mut(t.max(1)).zip(xs.par_chunks(t.max(1))).enumerate().for_each(|(ch, (yr, xr))| {
            let (a, ib) = (alpha[ch], inv_beta[ch]);
            for (o, &v) in yr.iter_mut().zip(xr) {
                let s = (v * a).sin();
                *o = v + ib * (s * s);
            }
        });
        y
    })?;
    Some(Tensor::from_vec(y, (1, c, t), x.device()).map_err(Into::into))
}
