//! Register-tiled products for a prompt's many rows (the prefill), with the weights read in
//! place, row-major as loaded (no packed copy). Four weight rows against four input rows make
//! 16 running sums in registers, so each step loads 8 vectors for 16 multiply-adds, where a dot
//! product per output loads 2 for 1. The input rows are copied once ([`Padded`]): a cache line
//! of padding per row keeps rows a power of two apart out of one L1 set, and they start at the
//! weights' offset within a line, so after one masked step every load is whole-line. Input rows
//! go 64 at a time, a block that stays in L2 while a task's weight rows pass over it, and each
//! task prefetches the next task's weights as it goes ([`ahead`]).
//!
//! [`by_row_blocks`] splits the outputs into tasks over rayon and lays the result out as
//! `[m, out]`; [`f32_avx512`] (FMA) and [`bf16_avx512`] (`vdpbf16ps`) fill one task's block.

use rayon::prelude::*;

/// Output rows per task.
const ROWS_PER_TASK: usize = 32;
/// Input rows per block kept in L2 while a task's weight rows pass over it.
#[cfg(target_arch = "x86_64")]
const X_BLOCK: usize = 64;
/// Padding after each input row: one cache line.
const PAD_BYTES: usize = 64;

/// `[m, out]` = `fill`'s blocks (+ `bias`): `fill(first, rows, dst)` writes output rows
/// `first..first + rows` for every input row into `dst` `[m, rows]`. Tasks of 32 output rows
/// run in parallel on rayon's pool.
pub(super) fn by_row_blocks(
    m: usize,
    out: usize,
    bias: Option<&[f32]>,
    fill: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut blocks = vec![0f32; out * m];
    let task = |(task, dst): (usize, &mut [f32])| {
        let first = task * ROWS_PER_TASK;
        let rows = dst.len() / m;
        fill(first, rows, dst);
        if let Some(b) = bias {
            for d in dst.chunks_mut(rows) {
                d.iter_mut().zip(&b[first..]).for_each(|(v, b)| *v += b);
            }
        }
    };
    if rayon::current_num_threads() == 1 {
        blocks
            .chunks_mut(ROWS_PER_TASK * m)
            .enumerate()
            .for_each(task);
    } else {
        blocks
            .par_chunks_mut(ROWS_PER_TASK * m)
            .enumerate()
            .for_each(task);
    }
    let mut y = vec![0f32; m * out];
    for (t, block) in blocks.chunks(ROWS_PER_TASK * m).enumerate() {
        let rows = block.len() / m;
        for (i, src) in block.chunks(rows).enumerate() {
            y[i * out + t * ROWS_PER_TASK..][..rows].copy_from_slice(src);
        }
    }
    y
}

/// Input rows copied for the tiles: `k` + one cache line apart (zero-padded), and placed so
/// that each row starts at the same offset within a 64-byte line as the weight rows do. After
/// the tiles' first, masked step up to a line boundary ([`to_line`]), every later load is then
/// whole-line, where an unaligned buffer (a big allocation usually starts 16 bytes past a
/// page) splits each 64-byte load across two lines.
pub(super) struct Padded<T> {
    buf: Vec<T>,
    start: usize,
    pub stride: usize,
    pub rows: usize,
}

impl<T: Copy + Default> Padded<T> {
    /// `x` `[m, k]`, for weights whose rows start at `w_addr` modulo 64.
    pub fn new(x: &[T], m: usize, k: usize, w_addr: usize) -> Self {
        let size = std::mem::size_of::<T>();
        let stride = k + PAD_BYTES / size;
        let mut buf = vec![T::default(); m * stride + PAD_BYTES / size];
        let base = buf.as_ptr() as usize;
        // Elements to skip so that start's address ≡ w_addr (mod 64).
        let start = ((w_addr % 64 + 64 - base % 64) % 64) / size;
        for (d, s) in buf[start..].chunks_mut(stride).zip(x.chunks(k)) {
            d[..k].copy_from_slice(s);
        }
        Self {
            buf,
            start,
            stride,
            rows: m,
        }
    }

    pub fn data(&self) -> &[T] {
        &self.buf[self.start..self.start + self.rows * self.stride]
    }
}

/// Elements before `p` reaches a 64-byte boundary (for the tiles' first, masked step).
#[cfg(target_arch = "x86_64")]
fn to_line<T>(p: *const T) -> usize {
    (64 - p as usize % 64) % 64 / std::mem::size_of::<T>()
}

/// Walks `dst` `[m, rows]` in tiles: `tile(o, r, i, c, n)` gives weight rows `o..o + r` (r is 4,
/// or 1 for the last few) against input rows `i..i + c` (c ≤ 4), as `sums[a][j]`; `n` counts
/// the calls, so each can prefetch its own share of the next task's weights (see [`ahead`]).
#[cfg(target_arch = "x86_64")]
fn walk(
    rows: usize,
    m: usize,
    dst: &mut [f32],
    mut tile: impl FnMut(usize, usize, usize, usize, usize) -> Sums,
) {
    let mut n = 0;
    for i0 in (0..m).step_by(X_BLOCK) {
        let i1 = (i0 + X_BLOCK).min(m);
        let mut o = 0;
        while o < rows {
            let r = if rows - o >= 4 { 4 } else { 1 };
            let mut i = i0;
            while i < i1 {
                let c = (i1 - i).min(4);
                let sums = tile(o, r, i, c, n);
                n += 1;
                for (a, row) in sums.iter().take(r).enumerate() {
                    for (j, v) in row.iter().take(c).enumerate() {
                        dst[(i + j) * rows + o + a] = *v;
                    }
                }
                i += c;
            }
            o += r;
        }
    }
}

/// Where tile call `n` of a task over weights `w` (`k` per row) prefetches: one row's length of
/// the weights just after the task's, so the next task's block is in L2 when it starts (each
/// call covers a row, a task makes one call per four rows and input rows; past that, null).
/// Without it the first pass over each block of weights waits on memory, as the passes are
/// short and the rest of the time the memory is idle.
#[cfg(target_arch = "x86_64")]
fn ahead<T>(w: &[T], k: usize, n: usize) -> *const T {
    if n * k < w.len() {
        w.as_ptr().wrapping_add(w.len() + n * k)
    } else {
        std::ptr::null()
    }
}

/// Calls `step(t, n)` for the `n` values from `t` over `0..k`, `lanes` at a time: first up to
/// `w`'s next line boundary (see [`Padded`]), then whole vectors, then the rest.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn sweep<T>(w: *const T, k: usize, lanes: usize, mut step: impl FnMut(usize, usize)) {
    let mut t = to_line(w).min(k);
    if t > 0 {
        step(0, t);
    }
    while t + lanes <= k {
        step(t, lanes);
        t += lanes;
    }
    if t < k {
        step(t, k - t);
    }
}

/// Each accumulator's lanes summed: the tile's R × C results.
///
/// # Safety
/// The CPU must have AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn reduce<const R: usize, const C: usize>(
    acc: &[[std::arch::x86_64::__m512; C]; R],
) -> Sums {
    let mut out = [[0f32; 4]; 4];
    for (row, acc) in out.iter_mut().zip(acc) {
        for (v, acc) in row.iter_mut().zip(acc) {
            *v = std::arch::x86_64::_mm512_reduce_add_ps(*acc);
        }
    }
    out
}

/// Sums of up to 4 weight rows against up to 4 input rows.
#[cfg(target_arch = "x86_64")]
type Sums = [[f32; 4]; 4];

/// Calls `$tile::<R, C>($args)` for the runtime (r, c) that [`walk`] hands out.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch {
    ($tile:ident, $r:expr, $c:expr, $($args:expr),*) => {
        match ($r, $c) {
            (4, 4) => $tile::<4, 4>($($args),*),
            (4, 3) => $tile::<4, 3>($($args),*),
            (4, 2) => $tile::<4, 2>($($args),*),
            (4, _) => $tile::<4, 1>($($args),*),
            (_, 4) => $tile::<1, 4>($($args),*),
            (_, 3) => $tile::<1, 3>($($args),*),
            (_, 2) => $tile::<1, 2>($($args),*),
            _ => $tile::<1, 1>($($args),*),
        }
    };
}

/// `dst` `[m, rows]` = `x` · `w`ᵀ for f32 weights `w` `[rows, k]` and inputs `x`.
///
/// # Safety
/// The CPU must have AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn f32_avx512(w: &[f32], x: &Padded<f32>, k: usize, dst: &mut [f32]) {
    let (rows, m, stride) = (w.len() / k, x.rows, x.stride);
    let x = x.data();
    walk(rows, m, dst, |o, r, i, c, n| {
        let (wp, xp) = (w.as_ptr().add(o * k), x.as_ptr().add(i * stride));
        dispatch!(tile_f32, r, c, wp, xp, k, stride, ahead(w, k, n))
    });
}

/// R weight rows (`k` apart) times C input rows (`stride` apart) over `k` f32 values.
///
/// # Safety
/// The CPU must have AVX-512 F; `w` must hold R rows of `k` and `x` C rows of `stride` ≥ `k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile_f32<const R: usize, const C: usize>(
    w: *const f32,
    x: *const f32,
    k: usize,
    stride: usize,
    ahead: *const f32,
) -> Sums {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    let mut step = |t: usize, mask: __mmask16| {
        let xv: [__m512; C] =
            std::array::from_fn(|j| _mm512_maskz_loadu_ps(mask, x.add(j * stride + t)));
        if !ahead.is_null() {
            _mm_prefetch::<_MM_HINT_T1>(ahead.add(t).cast());
        }
        for (a, acc) in acc.iter_mut().enumerate() {
            let wv = _mm512_maskz_loadu_ps(mask, w.add(a * k + t));
            for (acc, xv) in acc.iter_mut().zip(&xv) {
                *acc = _mm512_fmadd_ps(wv, *xv, *acc);
            }
        }
    };
    sweep(w, k, 16, |t, n| step(t, ((1u32 << n) - 1) as u16));
    reduce(&acc)
}

/// `dst` `[m, rows]` = `x` · `w`ᵀ for bf16 weights `w` `[rows, k]` and bf16 inputs `x`, as
/// bits, with f32 sums.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn bf16_avx512(w: &[u16], x: &Padded<u16>, k: usize, dst: &mut [f32]) {
    let (rows, m, stride) = (w.len() / k, x.rows, x.stride);
    let x = x.data();
    walk(rows, m, dst, |o, r, i, c, n| {
        let (wp, xp) = (w.as_ptr().add(o * k), x.as_ptr().add(i * stride));
        dispatch!(tile_bf16, r, c, wp, xp, k, stride, ahead(w, k, n))
    });
}

/// R weight rows (`k` apart) times C input rows (`stride` apart) over `k` bf16 values.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and BF16; `w` must hold R rows of `k` and `x` C rows of
/// `stride` ≥ `k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
#[inline]
unsafe fn tile_bf16<const R: usize, const C: usize>(
    w: *const u16,
    x: *const u16,
    k: usize,
    stride: usize,
    ahead: *const u16,
) -> Sums {
    use std::arch::x86_64::*;
    let load = |mask: __mmask32, p: *const u16| -> __m512bh {
        std::mem::transmute(_mm512_maskz_loadu_epi16(mask, p.cast()))
    };
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    let mut step = |t: usize, mask: __mmask32| {
        let xv: [__m512bh; C] = std::array::from_fn(|j| load(mask, x.add(j * stride + t)));
        if !ahead.is_null() {
            _mm_prefetch::<_MM_HINT_T1>(ahead.add(t).cast());
        }
        for (a, acc) in acc.iter_mut().enumerate() {
            let wv = load(mask, w.add(a * k + t));
            for (acc, xv) in acc.iter_mut().zip(&xv) {
                *acc = _mm512_dpbf16_ps(*acc, wv, *xv);
            }
        }
    };
    sweep(w, k, 32, |t, n| step(t, ((1u64 << n) - 1) as u32));
    reduce(&acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Multiples of 1/4 within ±0.75: exact in bf16, and their products' sums exact in f32.
    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f32 * 0.37 + seed as f32 * 1.3).sin() * 3.0).round() / 4.0)
            .collect()
    }

    /// The product in f64, `[m, out]`.
    fn reference(w: &[f32], x: &[f32], out: usize, m: usize, k: usize) -> Vec<f64> {
        let mut y = vec![0f64; m * out];
        for i in 0..m {
            for o in 0..out {
                y[i * out + o] = (0..k)
                    .map(|t| w[o * k + t] as f64 * x[i * k + t] as f64)
                    .sum();
            }
        }
        y
    }

    /// Shapes with ragged edges everywhere: rows not a multiple of 4 or of a task, input rows
    /// past one 64-row block and not a multiple of 4, lengths not a multiple of a vector.
    const SHAPES: [(usize, usize, usize); 6] = [
        (1, 1, 1),
        (3, 2, 15),
        (37, 5, 33),
        (40, 9, 64),
        (70, 41, 100),
        (9, 131, 47),
    ];

    #[test]
    fn rows_blocks_lay_out_outputs_and_bias() {
        let (m, out) = (3, 70);
        let bias: Vec<f32> = (0..out).map(|o| o as f32 * 0.5).collect();
        let y = by_row_blocks(m, out, Some(&bias), |first, rows, dst| {
            for i in 0..m {
                for r in 0..rows {
                    dst[i * rows + r] = ((first + r) * 1000 + i) as f32;
                }
            }
        });
        for i in 0..m {
            for o in 0..out {
                assert_eq!(y[i * out + o], (o * 1000 + i) as f32 + o as f32 * 0.5);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn f32_tiles_match_the_definition() {
        if !is_x86_feature_detected!("avx512f") {
            return;
        }
        for (out, m, k) in SHAPES {
            let (w, x) = (data(out * k, 1), data(m * k, 2));
            let xp = Padded::new(&x, m, k, w.as_ptr() as usize);
            let y = by_row_blocks(m, out, None, |first, rows, dst| unsafe {
                f32_avx512(&w[first * k..(first + rows) * k], &xp, k, dst)
            });
            // Multiples of 1/16 summed: exact in any order.
            let want: Vec<f32> = reference(&w, &x, out, m, k)
                .iter()
                .map(|v| *v as f32)
                .collect();
            assert_eq!(y, want, "{out} x {m} x {k}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn bf16_tiles_match_the_definition() {
        if !(is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512bf16"))
        {
            return;
        }
        let bits = |v: &[f32]| {
            v.iter()
                .map(|v| (v.to_bits() >> 16) as u16)
                .collect::<Vec<_>>()
        };
        for (out, m, k) in SHAPES {
            let (w, x) = (data(out * k, 3), data(m * k, 4));
            let wb = bits(&w);
            let xp = Padded::new(&bits(&x), m, k, wb.as_ptr() as usize);
            let y = by_row_blocks(m, out, None, |first, rows, dst| unsafe {
                bf16_avx512(&wb[first * k..(first + rows) * k], &xp, k, dst)
            });
            // Multiples of 1/16 summed: exact in any order.
            let want: Vec<f32> = reference(&w, &x, out, m, k)
                .iter()
                .map(|v| *v as f32)
                .collect();
            assert_eq!(y, want, "{out} x {m} x {k}");
        }
    }
}
