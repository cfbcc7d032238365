//! CPU kernels for the decoder's hot loops, working on the tensors' memory directly:
//! a dilated Conv1d computed as one accumulating GEMM per kernel tap (no im2col buffer, output
//! already channel-major, bias folded into the initial accumulator) and a fused SnakeBeta
//! (one pass, parallel over channels). Each returns `None` for tensors that are not contiguous
//! f32 on the CPU, and the caller then uses the plain candle ops (CUDA and Metal builds).

use candle_core::{Storage, Tensor};
use rayon::prelude::*;

use crate::Result;

/// Runs `f` on the tensor's f32 data when it is a contiguous CPU tensor.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
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

/// Output floats per column block of [`conv1d`] (32 K floats = 128 KB, L2-resident).
const COL_BLOCK_FLOATS: usize = 32 * 1024;
const MIN_COL_BLOCK: usize = 64;
/// Widest input for which the column-blocked schedule pays off.
const BLOCKED_MAX_C_IN: usize = 256;

/// A raw pointer shared by the tasks that write disjoint parts of one buffer.
#[derive(Clone, Copy)]
pub(crate) struct Ptr(pub(crate) *mut f32);
// SAFETY: used only to read shared inputs and to write disjoint output blocks (conv1d here,
// `packed::PackedWeights::matmul_acc`).
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}
impl Ptr {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Valid dilated, strided Conv1d: `x` `[1, C_in, L]`, `taps` `[K, C_out, C_in]`, `bias`
/// `[C_out]` → `[1, C_out, (L − (K−1)·dilation − 1) / stride + 1]`.
pub(crate) fn conv1d(
    x: &Tensor,
    taps: &Tensor,
    bias: &Tensor,
    dilation: usize,
    stride: usize,
) -> Option<Result<Tensor>> {
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
    let threads = rayon::current_num_threads();
    with_f32(x, |xs| {
        with_f32(taps, |ws| {
            let (xp, wp, yp) = (
                Ptr(xs.as_ptr() as *mut f32),
                Ptr(ws.as_ptr() as *mut f32),
                Ptr(y.as_mut_ptr()),
            );
            // Output columns [c0, c0 + n): all taps accumulate into that block of y.
            let block = |c0: usize, n: usize, par: gemm::Parallelism| {
                for tap in 0..k {
                    // SAFETY: every pointer/stride pair addresses only elements inside its slice:
                    // dst is columns c0..c0+n of the c_out × t output (row stride t); lhs is tap
                    // `tap`'s c_out × c_in block (row stride c_in); rhs is c_in rows of n samples
                    // `stride` apart, starting at tap·dilation + c0·stride within rows of length
                    // `len` ((c0+n−1)·stride + tap·dilation < len). Concurrent calls write
                    // disjoint column blocks.
                    unsafe {
                        gemm::gemm(
                            c_out,
                            n,
                            c_in,
                            yp.get().add(c0),
                            1,
                            t as isize,
                            true,
                            wp.get().add(tap * c_out * c_in),
                            1,
                            c_in as isize,
                            xp.get().add(tap * dilation + c0 * stride),
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
            };
            // Narrow convs (little work per output pass) run in column blocks small enough that
            // the output block stays in cache across the taps, one block per task (about 25 %
            // faster at 96 channels, measured); wide or short ones use the GEMM's own threading.
            let nb = (COL_BLOCK_FLOATS / c_out).max(MIN_COL_BLOCK);
            if threads > 1 && c_in <= BLOCKED_MAX_C_IN && t >= 2 * threads * nb {
                let blocks = t.div_ceil(nb);
                (0..blocks).into_par_iter().for_each(|b| {
                    let c0 = b * nb;
                    block(c0, nb.min(t - c0), gemm::Parallelism::None);
                });
            } else {
                let par = if threads > 1 {
                    gemm::Parallelism::Rayon(threads)
                } else {
                    gemm::Parallelism::None
                };
                block(0, t, par);
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
        y.par_chunks_mut(t.max(1))
            .zip(xs.par_chunks(t.max(1)))
            .enumerate()
            .for_each(|(ch, (yr, xr))| {
                snake_row(yr, xr, alpha[ch], inv_beta[ch]);
            });
        y
    })?;
    Some(Tensor::from_vec(y, (1, c, t), x.device()).map_err(Into::into))
}

/// One channel of SnakeBeta, `y = x + inv_beta · sin²(alpha · x)`; with AVX2/FMA where the CPU
/// has it (checked once), so the loop is 8 lanes wide with fused multiply-adds.
fn snake_row(y: &mut [f32], x: &[f32], alpha: f32, inv_beta: f32) {
    #[inline(always)]
    fn plain(y: &mut [f32], x: &[f32], alpha: f32, inv_beta: f32) {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = v + inv_beta * sin_squared(v * alpha);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fma(y: &mut [f32], x: &[f32], alpha: f32, inv_beta: f32) {
            plain(y, x, alpha, inv_beta)
        }
        use std::sync::OnceLock;
        static FMA: OnceLock<bool> = OnceLock::new();
        if *FMA.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { fma(y, x, alpha, inv_beta) };
        }
    }
    plain(y, x, alpha, inv_beta)
}

/// sin²(x) without branches, so the snake loop vectorises (libm's `sinf` is a call per
/// element and was a quarter of the decoder's time). sin² has period π: x is reduced to
/// r ∈ [−π/2, π/2] with π split in three parts (exact products for |x| < 2¹², far beyond the
/// snake's arguments; larger ones lose accuracy gradually, never become NaN), then sin r is
/// its Taylor series to r¹³ (truncation error below 1e-9, so f32 rounding dominates: within
/// a few 1e-7 of libm).
#[inline(always)]
fn sin_squared(x: f32) -> f32 {
    const PI_A: f32 = 3.140625;
    const PI_B: f32 = 0.000_967_502_6;
    const PI_C: f32 = 1.509_958e-7;
    const INV_PI: f32 = 0.318_309_87;
    let k = (x * INV_PI).round();
    let r = ((x - k * PI_A) - k * PI_B) - k * PI_C;
    let r2 = r * r;
    // 1/3!, 1/5!, ..., 1/13! with alternating signs.
    let p = 1.0 / 6_227_020_800.0;
    let p = r2.mul_add(p, -1.0 / 39_916_800.0);
    let p = r2.mul_add(p, 1.0 / 362_880.0);
    let p = r2.mul_add(p, -1.0 / 5_040.0);
    let p = r2.mul_add(p, 1.0 / 120.0);
    let p = r2.mul_add(p, -1.0 / 6.0);
    let s = r.mul_add(r2 * p, r);
    s * s
}

/// Rows up to which [`linear_rows`] beats the general GEMM (streaming chunks of a few frames).
pub(crate) const SMALL_ROWS: usize = 8;

/// `x` `[m, in]` · `w` `[out, in]`ᵀ (+ `bias`) for few rows: one dot product per output, parallel
/// over output rows, reading each weight row once. `None` for more than [`SMALL_ROWS`] rows or
/// tensors off the CPU.
pub(crate) fn linear_rows(x: &Tensor, w: &Tensor, bias: Option<&[f32]>) -> Option<Result<Tensor>> {
    let (m, k) = x.dims2().ok()?;
    let (out, k_w) = w.dims2().ok()?;
    if m == 0 || m > SMALL_ROWS || k != k_w || k == 0 || bias.is_some_and(|b| b.len() != out) {
        return None;
    }
    const ROWS_PER_TASK: usize = 32;
    let yt = with_f32(x, |xs| {
        with_f32(w, |ws| {
            let mut yt = vec![0f32; out * m]; // [out, m]
            yt.par_chunks_mut(ROWS_PER_TASK * m)
                .enumerate()
                .for_each(|(task, dst)| {
                    let o0 = task * ROWS_PER_TASK;
                    for (r, d) in dst.chunks_mut(m).enumerate() {
                        let o = o0 + r;
                        let wr = &ws[o * k..(o + 1) * k];
                        let b = bias.map_or(0.0, |b| b[o]);
                        for (i, v) in d.iter_mut().enumerate() {
                            *v = dot(&xs[i * k..(i + 1) * k], wr) + b;
                        }
                    }
                });
            yt
        })
    })??;
    let mut y = vec![0f32; m * out];
    for (o, row) in yt.chunks(m).enumerate() {
        for (i, v) in row.iter().enumerate() {
            y[i * out + o] = *v;
        }
    }
    Some(Tensor::from_vec(y, (m, out), x.device()).map_err(Into::into))
}

/// Dot product: AVX2/FMA when the CPU has it (checked once at run time), else a portable loop
/// with eight independent accumulators.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static FMA: OnceLock<bool> = OnceLock::new();
        if *FMA.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { dot_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        acc1 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 8)),
            _mm256_loadu_ps(pb.add(i + 8)),
            acc1,
        );
        i += 16;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(acc0, acc1));
    let mut s: f32 = lanes.iter().sum();
    while i < n {
        s += *pa.add(i) * *pb.add(i);
        i += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_abs_diff;

    #[test]
    fn sin_squared_matches_libm() {
        let mut worst = 0f32;
        for i in -200_000..200_000 {
            let x = i as f32 * 0.001_37;
            let want = x.sin() * x.sin();
            worst = worst.max((sin_squared(x) - want).abs());
        }
        assert!(worst < 1e-6, "worst error {worst}");
        assert_eq!(sin_squared(0.0), 0.0);
    }
    use candle_core::Device;

    #[test]
    fn conv1d_matches_candle_in_both_schedules() {
        let d = Device::Cpu;
        // Long and narrow (column-blocked when threads > 1) and short and wide; strided too.
        for (c_in, c_out, t, k, dil, stride) in [
            (8, 6, 40_000, 3, 2, 1),
            (300, 4, 50, 3, 1, 1),
            (5, 7, 999, 4, 1, 3),
        ] {
            let x = Tensor::arange(0f32, (c_in * t) as f32, &d)
                .unwrap()
                .reshape((1, c_in, t))
                .unwrap()
                .sin()
                .unwrap();
            let w = Tensor::arange(0f32, (c_out * c_in * k) as f32, &d)
                .unwrap()
                .reshape((c_out, c_in, k))
                .unwrap()
                .cos()
                .unwrap();
            let b = Tensor::arange(0f32, c_out as f32, &d).unwrap();
            let want = x
                .conv1d(&w, 0, stride, dil, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, c_out, 1)).unwrap())
                .unwrap();
            let taps = w.permute((2, 0, 1)).unwrap().contiguous().unwrap();
            let got = conv1d(&x, &taps, &b, dil, stride).unwrap().unwrap();
            assert_eq!(got.dims(), want.dims());
            let err = max_abs_diff(&got, &want);
            assert!(err < 1e-3, "{c_in}->{c_out} t {t}: {err}");
        }
    }

    #[test]
    fn linear_rows_matches_matmul() {
        let d = Device::Cpu;
        let w = Tensor::arange(0f32, 37.0 * 13.0, &d)
            .unwrap()
            .reshape((37, 13))
            .unwrap()
            .sin()
            .unwrap();
        let b: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        for m in [1, 3, SMALL_ROWS] {
            let x = Tensor::arange(0f32, (m * 13) as f32, &d)
                .unwrap()
                .reshape((m, 13))
                .unwrap()
                .cos()
                .unwrap();
            let want = x
                .matmul(&w.t().unwrap())
                .unwrap()
                .broadcast_add(&Tensor::new(b.as_slice(), &d).unwrap())
                .unwrap();
            let got = linear_rows(&x, &w, Some(&b)).unwrap().unwrap();
            let err = max_abs_diff(&got, &want);
            assert!(err < 1e-5, "m {m}: {err}");
        }
        let (a, b): (Vec<f32>, Vec<f32>) = (0..100)
            .map(|i| ((i as f32).sin(), (i as f32 * 0.3).cos()))
            .unzip();
        assert!((dot(&a, &b) - dot_portable(&a, &b)).abs() < 1e-4);
        let x = Tensor::zeros((SMALL_ROWS + 1, 13), candle_core::DType::F32, &d).unwrap();
        assert!(linear_rows(&x, &w, None).is_none());
    }
}
