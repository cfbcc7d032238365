//! 8-bit weights for the talker and code-predictor linears (`--dtype int8`): each weight row is
//! cut into blocks of 16 along the input, every block stored as signed 8-bit steps of its own
//! half-precision scale (absmax / 127). A product quantises the input rows the same way (per
//! row, per block, f32 scales), for generation steps twice — the row, then its rounding
//! residual — and multiplies 8-bit by 8-bit into 32-bit sums, scaled back per block.
//!
//! The layout is made for AVX-512 VNNI (`vpdpbusd`: 64 unsigned × signed byte products summed
//! in fours into 16 lanes per instruction): output rows are taken 16 at a time (a *group*),
//! and for each block and each run of 4 inputs the 16 rows' 4 bytes sit side by side, so one
//! 64-byte load feeds all 16 lanes and the input's 4 bytes are broadcast. Weights are stored
//! offset by +128 (unsigned, as the instruction wants); the offset's contribution,
//! 128 · Σ x_q over the block, is the same for every row and is subtracted once per block.
//! CPUs without it (checked at run time) take an AVX2 kernel over the same layout (AMD Zen 2/3,
//! Intel before Ice Lake), else a portable loop; all three give bit-identical results.
//!
//! Batch-1 generation streams every weight once per step, so 1 byte per weight (plus 1/8 for
//! the scales) instead of 4 (f32) or 2 (bf16) is what makes it faster.

use rayon::prelude::*;

/// Inputs per scale block. Teacher-forced against f32 at the released shapes, the code
/// predictor's worst logit cosine was 0.99885 (0.6B) with blocks of 64 and f32 scales, and
/// 0.99913 (0.6B) / 0.99889 (1.7B) with blocks of 32; blocks of 16 with f16 scales cost the
/// same bytes as 32 with f32 and keep both sizes above the 0.999 held to.
pub const BLOCK: usize = 16;

/// Bytes streamed per weight: one, plus an f16 scale per block.
pub const BYTES_PER_WEIGHT: f64 = 1.0 + 2.0 / BLOCK as f64;
/// Output rows per group (the 16 lanes of a 512-bit register).
const GROUP: usize = 16;
/// Input rows multiplied against one group's weights while they are in cache.
const TILE: usize = 4;
/// Input rows up to which each is quantised in two parts (see [`QuantizedRows::new`]).
const RESIDUAL_MAX_ROWS: usize = 8;
/// Bytes of one group's block: 16 rows × 16 inputs.
const GROUP_BLOCK_BYTES: usize = GROUP * BLOCK;

/// A `[rows, cols]` weight matrix in 8 bits (see the module doc for the layout).
#[derive(Clone)]
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    groups: usize,
    blocks: usize,
    /// `[groups][blocks][16 steps of 4 inputs][16 rows][4]`, each byte q + 128.
    weights: Vec<u8>,
    /// `[groups][blocks][16 rows]`, IEEE half-precision bits.
    scales: Vec<u16>,
}

impl std::fmt::Debug for Int8Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Int8Matrix[{}, {}]", self.rows, self.cols)
    }
}

/// Input rows quantised per block of 16 (two quantised rows per input row, see
/// [`QuantizedRows::new`]): the 8-bit values (zero-padded to whole blocks), each block's scale,
/// and each block's offset correction 128 · Σ q.
struct QuantizedRows {
    q: Vec<i8>,
    scales: Vec<f32>,
    offsets: Vec<i32>,
    /// Padded row length (blocks · 16).
    stride: usize,
    blocks: usize,
}

impl Int8Matrix {
    /// Quantise row-major f32 weights `[rows, cols]`.
    pub fn quantize(w: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(w.len(), rows * cols, "weight length must be rows × cols");
        let groups = rows.div_ceil(GROUP);
        let blocks = cols.div_ceil(BLOCK);
        let mut weights = vec![128u8; groups * blocks * GROUP_BLOCK_BYTES];
        let mut scales = vec![0u16; groups * blocks * GROUP];
        for r in 0..rows {
            let (g, lane) = (r / GROUP, r % GROUP);
            let row = &w[r * cols..(r + 1) * cols];
            for (b, chunk) in row.chunks(BLOCK).enumerate() {
                let amax = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
                // The steps are taken from the scale as stored (rounded to f16).
                let bits = f16_bits(amax / 127.0);
                scales[(g * blocks + b) * GROUP + lane] = bits;
                let scale = f16_value(bits);
                let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                let base = (g * blocks + b) * GROUP_BLOCK_BYTES;
                for (i, v) in chunk.iter().enumerate() {
                    let q = (v * inv).round().clamp(-127.0, 127.0) as i32;
                    let (step, t) = (i / 4, i % 4);
                    weights[base + step * GROUP * 4 + lane * 4 + t] = (q + 128) as u8;
                }
            }
        }
        Self {
            rows,
            cols,
            groups,
            blocks,
            weights,
            scales,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held (weights and scales).
    pub fn bytes(&self) -> usize {
        self.weights.len() + self.scales.len() * 2
    }

    /// The weights back in f32, `[rows, cols]` row-major (what the products effectively use).
    #[cfg(test)]
    pub fn dequantize(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.rows * self.cols];
        for r in 0..self.rows {
            let (g, lane) = (r / GROUP, r % GROUP);
            for c in 0..self.cols {
                let (b, i) = (c / BLOCK, c % BLOCK);
                let base = (g * self.blocks + b) * GROUP_BLOCK_BYTES;
                let byte = self.weights[base + (i / 4) * GROUP * 4 + lane * 4 + i % 4];
                let scale = f16_value(self.scales[(g * self.blocks + b) * GROUP + lane]);
                w[r * self.cols + c] = (byte as i32 - 128) as f32 * scale;
            }
        }
        w
    }

    /// `x` `[m, cols]` row-major → `x · Wᵀ` `[m, rows]` row-major, on the fastest kernel.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_with(x, m, kernel())
    }

    /// [`Int8Matrix::matmul`] on a chosen kernel (one of [`kernels`]; the bench compares them).
    pub(crate) fn matmul_with(&self, x: &[f32], m: usize, kernel: Kernel) -> Vec<f32> {
        assert_eq!(x.len(), m * self.cols, "input length must be m × cols");
        let parts = if m <= RESIDUAL_MAX_ROWS { 2 } else { 1 };
        let xq = QuantizedRows::new(x, m, self.cols, self.blocks, parts);
        // Per group, its 16 outputs for every quantised row: [groups][parts · m][16].
        let per_group = parts * m * GROUP;
        let mut parts_out = vec![0f32; self.groups * per_group];
        let threads = rayon::current_num_threads();
        if threads == 1 {
            for (g, out) in parts_out.chunks_mut(per_group).enumerate() {
                self.group_product(g, &xq, out, kernel);
            }
        } else {
            let per_task = (self.groups / (4 * threads)).max(1);
            parts_out
                .par_chunks_mut(per_task * per_group)
                .enumerate()
                .for_each(|(task, dst)| {
                    for (i, out) in dst.chunks_mut(per_group).enumerate() {
                        self.group_product(task * per_task + i, &xq, out, kernel);
                    }
                });
        }
        let mut y = vec![0f32; m * self.rows];
        for (g, part) in parts_out.chunks(per_group).enumerate() {
            let width = GROUP.min(self.rows - g * GROUP);
            for (r, lanes) in part.chunks(parts * GROUP).enumerate() {
                let dst = &mut y[r * self.rows + g * GROUP..][..width];
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = if parts == 2 {
                        lanes[i] + lanes[GROUP + i]
                    } else {
                        lanes[i]
                    };
                }
            }
        }
        y
    }

    /// One group's outputs for all quantised rows, `out` `[rows][16]`, in tiles of up to 4.
    fn group_product(&self, g: usize, x: &QuantizedRows, out: &mut [f32], kernel: Kernel) {
        let w =
            &self.weights[g * self.blocks * GROUP_BLOCK_BYTES..][..self.blocks * GROUP_BLOCK_BYTES];
        let s = &self.scales[g * self.blocks * GROUP..][..self.blocks * GROUP];
        for (t, tile) in out.chunks_mut(TILE * GROUP).enumerate() {
            let r0 = t * TILE;
            let n = tile.len() / GROUP;
            match (kernel, n) {
                #[cfg(target_arch = "x86_64")]
                (Kernel::Vnni, 1) => unsafe { vnni::tile::<1>(w, s, x, r0, tile) },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Vnni, 2) => unsafe { vnni::tile::<2>(w, s, x, r0, tile) },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Vnni, 3) => unsafe { vnni::tile::<3>(w, s, x, r0, tile) },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Vnni, _) => unsafe { vnni::tile::<4>(w, s, x, r0, tile) },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx2, 1) => unsafe { avx2::tile::<1>(w, s, x, r0, tile) },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx2, 2) => unsafe { avx2::tile::<2>(w, s, x, r0, tile) },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx2, 3) => unsafe { avx2::tile::<3>(w, s, x, r0, tile) },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx2, _) => unsafe { avx2::tile::<4>(w, s, x, r0, tile) },
                _ => portable_tile(w, s, x, r0, tile),
            }
        }
    }
}

/// f32 → IEEE half-precision bits, round to nearest even; for the non-negative, finite scales
/// (values past the f16 range saturate to its largest finite value).
fn f16_bits(v: f32) -> u16 {
    let v = v.abs().min(65504.0);
    if v < f32::from_bits(0x3300_0000) {
        return 0; // below 2^-25: rounds to zero
    }
    let bits = v.to_bits();
    let exp = ((bits >> 23) & 0xff) as i32 - 127;
    let full = (bits & 0x7f_ffff) | 0x80_0000; // the 24-bit significand
                                               // Bits dropped from it: 13 for a normal half (11 kept), more for a subnormal one.
    let shift = if exp >= -14 { 13 } else { (-1 - exp) as u32 };
    let kept = full >> shift;
    let rem = full & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let kept = kept + u32::from(rem > half || (rem == half && kept & 1 == 1));
    if exp >= -14 {
        // kept carries the implicit bit (1024); a rounding carry moves into the exponent.
        ((((exp + 14) as u32) << 10) + kept) as u16
    } else {
        kept as u16
    }
}

/// IEEE half-precision bits (non-negative, finite) → f32, exactly.
fn f16_value(h: u16) -> f32 {
    let exp = ((h >> 10) & 0x1f) as i32;
    let mant = (h & 0x3ff) as f32;
    if exp == 0 {
        mant * (1.0 / 16_777_216.0) // 2^-24
    } else {
        (1.0 + mant / 1024.0) * f32::from_bits(((exp - 15 + 127) as u32) << 23)
    }
}

impl QuantizedRows {
    /// Each input row becomes `parts` quantised rows: the row itself and, with two parts, what
    /// its 8-bit version missed (the rounding residual, quantised with its own scales). Their
    /// products add up to the product with a ~15-bit input, so the only error left worth
    /// counting is the weights'; the weights are still read once, so this costs compute, not
    /// bandwidth. Used for generation steps (few rows, bound by reading the weights); a long
    /// prefill is bound by compute and takes one part.
    fn new(x: &[f32], m: usize, cols: usize, blocks: usize, parts: usize) -> Self {
        let stride = blocks * BLOCK;
        let mut q = Self {
            q: vec![0i8; parts * m * stride],
            scales: vec![0f32; parts * m * blocks],
            offsets: vec![0i32; parts * m * blocks],
            stride,
            blocks,
        };
        let mut residual = [0f32; BLOCK];
        for r in 0..m {
            let row = &x[r * cols..(r + 1) * cols];
            for (b, chunk) in row.chunks(BLOCK).enumerate() {
                let scale = q.quantize_block(parts * r, b, chunk);
                if parts == 2 {
                    let q8 = &q.q[2 * r * stride + b * BLOCK..][..chunk.len()];
                    for ((d, v), q8) in residual.iter_mut().zip(chunk).zip(q8) {
                        *d = v - *q8 as f32 * scale;
                    }
                    q.quantize_block(2 * r + 1, b, &residual[..chunk.len()]);
                }
            }
        }
        q
    }

    /// Quantise `values` into block `b` of quantised row `row`; returns the block's scale.
    fn quantize_block(&mut self, row: usize, b: usize, values: &[f32]) -> f32 {
        let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        let dst = &mut self.q[row * self.stride + b * BLOCK..][..values.len()];
        let mut sum = 0i32;
        for (d, v) in dst.iter_mut().zip(values) {
            let v = round_small(v * inv).clamp(-127.0, 127.0) as i8;
            sum += v as i32;
            *d = v;
        }
        self.scales[row * self.blocks + b] = scale;
        self.offsets[row * self.blocks + b] = 128 * sum;
        scale
    }
}

/// Round to nearest (ties to even) for |v| < 2²², by adding and removing 1.5 · 2²³: plain
/// arithmetic the compiler vectorises, where `f32::round` is a libm call per element.
#[inline(always)]
fn round_small(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

/// An implementation of the 8-bit product; all give the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Vnni,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    Portable,
}

impl Kernel {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kernel::Vnni => "avx512-vnni",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }
}

/// The kernels this CPU can run, fastest first (checked once).
pub(crate) fn kernels() -> &'static [Kernel] {
    use std::sync::OnceLock;
    static KERNELS: OnceLock<Vec<Kernel>> = OnceLock::new();
    KERNELS.get_or_init(|| {
        let mut k = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
            {
                k.push(Kernel::Vnni);
            }
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                k.push(Kernel::Avx2);
            }
        }
        k.push(Kernel::Portable);
        k
    })
}

/// The fastest kernel this CPU can run.
fn kernel() -> Kernel {
    kernels()[0]
}

/// Rows `r0..r0 + n` of `x` against one group: `out` `[n][16]`. Same arithmetic, in the same
/// order, as the VNNI kernel: exact 32-bit sums per block, then one fused multiply-add.
fn portable_tile(w: &[u8], s: &[u16], x: &QuantizedRows, r0: usize, out: &mut [f32]) {
    for (r, lanes) in out.chunks_mut(GROUP).enumerate() {
        let xr = &x.q[(r0 + r) * x.stride..][..x.stride];
        let mut acc = [0f32; GROUP];
        for b in 0..x.blocks {
            let wb = &w[b * GROUP_BLOCK_BYTES..][..GROUP_BLOCK_BYTES];
            let xb = &xr[b * BLOCK..][..BLOCK];
            let mut sums = [0i32; GROUP];
            for (step, ws) in wb.chunks_exact(GROUP * 4).enumerate() {
                let xs = &xb[step * 4..step * 4 + 4];
                for (lane, wl) in ws.chunks_exact(4).enumerate() {
                    sums[lane] += wl
                        .iter()
                        .zip(xs)
                        .map(|(&a, &b)| a as i32 * b as i32)
                        .sum::<i32>();
                }
            }
            let xs = x.scales[(r0 + r) * x.blocks + b];
            let off = x.offsets[(r0 + r) * x.blocks + b];
            for lane in 0..GROUP {
                let scale = f16_value(s[b * GROUP + lane]) * xs;
                acc[lane] = ((sums[lane] - off) as f32).mul_add(scale, acc[lane]);
            }
        }
        lanes.copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{QuantizedRows, BLOCK, GROUP, GROUP_BLOCK_BYTES};

    /// How far ahead of the loads to prefetch weights (bytes).
    const PREFETCH: usize = 4096;

    /// `N` input rows from `r0` against one group's weights `w` and scales `s`: `out` `[N][16]`.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI; `w`/`s` must be one group's
    /// `blocks × 256` bytes / `blocks × 16` scales and `out` exactly `N × 16` floats.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile<const N: usize>(
        w: &[u8],
        s: &[u16],
        x: &QuantizedRows,
        r0: usize,
        out: &mut [f32],
    ) {
        debug_assert_eq!(w.len(), x.blocks * GROUP_BLOCK_BYTES);
        debug_assert_eq!(s.len(), x.blocks * GROUP);
        debug_assert_eq!(out.len(), N * GROUP);
        let mut accf = [_mm512_setzero_ps(); N];
        let xq = x.q.as_ptr().add(r0 * x.stride);
        for b in 0..x.blocks {
            let wb = w.as_ptr().add(b * GROUP_BLOCK_BYTES);
            // Two accumulators per row (even / odd steps) halve the dependency chain.
            let mut even = [_mm512_setzero_si512(); N];
            let mut odd = [_mm512_setzero_si512(); N];
            for step in (0..BLOCK / 4).step_by(2) {
                // T0, not NTA as in the AVX2 kernel: on an Emerald Rapids VM the one-thread
                // kernel read 12.4-13.5 GB/s with T0 against 10.6-12.5 with NTA (alternating).
                _mm_prefetch::<_MM_HINT_T0>(wb.add(step * 64 + PREFETCH).cast());
                _mm_prefetch::<_MM_HINT_T0>(wb.add(step * 64 + 64 + PREFETCH).cast());
                let w0 = _mm512_loadu_si512(wb.add(step * 64).cast());
                let w1 = _mm512_loadu_si512(wb.add(step * 64 + 64).cast());
                for r in 0..N {
                    let xp = xq.add(r * x.stride + b * BLOCK + step * 4);
                    let x0 = _mm512_set1_epi32(xp.cast::<i32>().read_unaligned());
                    let x1 = _mm512_set1_epi32(xp.add(4).cast::<i32>().read_unaligned());
                    even[r] = _mm512_dpbusd_epi32(even[r], w0, x0);
                    odd[r] = _mm512_dpbusd_epi32(odd[r], w1, x1);
                }
            }
            let ws = _mm512_cvtph_ps(_mm256_loadu_si256(s.as_ptr().add(b * GROUP).cast()));
            for r in 0..N {
                let i = (r0 + r) * x.blocks + b;
                let sums = _mm512_sub_epi32(
                    _mm512_add_epi32(even[r], odd[r]),
                    _mm512_set1_epi32(x.offsets[i]),
                );
                let scale = _mm512_mul_ps(ws, _mm512_set1_ps(x.scales[i]));
                accf[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), scale, accf[r]);
            }
        }
        for (r, acc) in accf.iter().enumerate() {
            _mm512_storeu_ps(out.as_mut_ptr().add(r * GROUP), *acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{QuantizedRows, BLOCK, GROUP, GROUP_BLOCK_BYTES};

    /// How far ahead of the loads to prefetch weights (bytes).
    const PREFETCH: usize = 4096;

    /// `N` input rows from `r0` against one group: `out` `[N][16]`, the 16 rows as two registers
    /// of 8. Without VNNI the byte products go through `vpmaddubsw` (unsigned × signed into
    /// saturating 16-bit pair sums), so the weights are first made signed again (`q + 128` xor
    /// 0x80) and the sign moved onto the input: |q| · (x · sign q). Both factors are within
    /// ±127, so a pair sum (≤ 32 258) never saturates and the 32-bit sums are exactly Σ q · x,
    /// what the VNNI kernel gets after its offset correction.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; the slices as for the VNNI kernel.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn tile<const N: usize>(
        w: &[u8],
        s: &[u16],
        x: &QuantizedRows,
        r0: usize,
        out: &mut [f32],
    ) {
        debug_assert_eq!(w.len(), x.blocks * GROUP_BLOCK_BYTES);
        debug_assert_eq!(s.len(), x.blocks * GROUP);
        debug_assert_eq!(out.len(), N * GROUP);
        let flip = _mm256_set1_epi8(-128);
        let ones = _mm256_set1_epi16(1);
        let mut accf = [[_mm256_setzero_ps(); 2]; N];
        let xq = x.q.as_ptr().add(r0 * x.stride);
        for b in 0..x.blocks {
            let wb = w.as_ptr().add(b * GROUP_BLOCK_BYTES);
            let mut sums = [[_mm256_setzero_si256(); 2]; N];
            for step in 0..BLOCK / 4 {
                let mut q = [_mm256_setzero_si256(); 2];
                let mut mag = [_mm256_setzero_si256(); 2];
                _mm_prefetch::<_MM_HINT_NTA>(wb.add(step * 64 + PREFETCH).cast());
                for h in 0..2 {
                    let raw = _mm256_loadu_si256(wb.add(step * 64 + h * 32).cast());
                    q[h] = _mm256_xor_si256(raw, flip);
                    mag[h] = _mm256_abs_epi8(q[h]);
                }
                for (r, row_sums) in sums.iter_mut().enumerate() {
                    let xp = xq.add(r * x.stride + b * BLOCK + step * 4);
                    let xv = _mm256_set1_epi32(xp.cast::<i32>().read_unaligned());
                    for h in 0..2 {
                        let pairs = _mm256_maddubs_epi16(mag[h], _mm256_sign_epi8(xv, q[h]));
                        row_sums[h] = _mm256_add_epi32(row_sums[h], _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
            for h in 0..2 {
                let ws = _mm256_cvtph_ps(_mm_loadu_si128(s.as_ptr().add(b * GROUP + h * 8).cast()));
                for r in 0..N {
                    let i = (r0 + r) * x.blocks + b;
                    let scale = _mm256_mul_ps(ws, _mm256_set1_ps(x.scales[i]));
                    accf[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r][h]), scale, accf[r][h]);
                }
            }
        }
        for (r, acc) in accf.iter().enumerate() {
            for (h, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add(r * GROUP + h * 8), *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.7 + seed as f32).sin() * 1.3 + (i % 7) as f32 * 0.01)
            .collect()
    }

    fn reference(w: &[f32], x: &[f32], rows: usize, cols: usize, m: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * rows];
        for r in 0..m {
            for o in 0..rows {
                y[r * rows + o] = (0..cols).map(|c| x[r * cols + c] * w[o * cols + c]).sum();
            }
        }
        y
    }

    #[test]
    fn products_track_f32_within_quantisation_error() {
        // Odd shapes: a partial group (37 rows) and a partial block (150 inputs).
        for (rows, cols, m) in [(37, 150, 1), (64, 128, 3), (16, 64, 9), (5, 7, 2)] {
            let w = data(rows * cols, 1);
            let x = data(m * cols, 2);
            let q = Int8Matrix::quantize(&w, rows, cols);
            let got = q.matmul(&x, m);
            let want = reference(&w, &x, rows, cols, m);
            let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt();
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt();
            assert!(
                err / norm < 0.005,
                "{rows}x{cols} m {m}: relative error {}",
                err / norm
            );
            // Against the dequantised weights the inputs' error alone is left: tiny with two
            // parts (few rows), one 8-bit step's worth with one.
            let deq = q.dequantize();
            let exact = reference(&deq, &x, rows, cols, m);
            let err = got
                .iter()
                .zip(&exact)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt();
            let bound = if m <= RESIDUAL_MAX_ROWS { 2e-4 } else { 5e-3 };
            assert!(
                err / norm < bound,
                "{rows}x{cols} m {m}: input error {}",
                err / norm
            );
            // The dequantised weights are within half a step of the originals.
            for (o, (a, b)) in deq.iter().zip(&w).enumerate() {
                let row = &w[(o / cols) * cols..][..cols];
                let block = &row[(o % cols) / BLOCK * BLOCK..];
                let amax = block.iter().take(BLOCK).fold(0f32, |m, v| m.max(v.abs()));
                assert!(
                    (a - b).abs() <= amax / 254.0 + 1e-6,
                    "weight {o}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn every_kernel_agrees_with_the_portable_one_bit_for_bit() {
        let (rows, cols) = (48, 200);
        let mut w = data(rows * cols, 3);
        // Extreme steps in one block: ±127 weights against ±127 inputs (the AVX2 kernel's
        // 16-bit pair sums must not saturate).
        for (i, v) in w[..BLOCK].iter_mut().enumerate() {
            *v = if i % 3 == 0 { -1.0 } else { 1.0 };
        }
        let q = Int8Matrix::quantize(&w, rows, cols);
        for m in [1, 2, 3, 4, 7] {
            let mut x = data(m * cols, 4);
            for (i, v) in x[..BLOCK].iter_mut().enumerate() {
                *v = if i % 3 == 0 { -2.0 } else { 2.0 };
            }
            let parts = 1 + (m % 2);
            let xq = QuantizedRows::new(&x, m, cols, q.blocks, parts);
            for g in 0..q.groups {
                let mut want = vec![0f32; parts * m * GROUP];
                q.group_product(g, &xq, &mut want, Kernel::Portable);
                for &k in kernels() {
                    let mut got = vec![0f32; parts * m * GROUP];
                    q.group_product(g, &xq, &mut got, k);
                    assert_eq!(got, want, "group {g}, m {m}, kernel {k:?}");
                }
            }
        }
    }

    #[test]
    fn half_precision_scales_round_trip() {
        for v in [0.0f32, 1.0, 0.5, 3.25, 65504.0, 6.1e-5, 1e-6, 2.3e-3, 1e-9] {
            let back = f16_value(f16_bits(v));
            let tol = (v * 2f32.powi(-11)).max(2f32.powi(-25));
            assert!((back - v).abs() <= tol, "{v} -> {back}");
        }
        assert_eq!(f16_bits(1.0), 0x3c00);
        assert_eq!(f16_bits(65504.0), 0x7bff);
        assert_eq!(f16_value(0x0001), 2f32.powi(-24));
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("f16c") {
            // The hardware conversion the VNNI kernel uses agrees with ours on every value.
            use std::arch::x86_64::*;
            for h in 0..0x7c00u16 {
                let hw = unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(h as i16))) };
                assert_eq!(hw.to_bits(), f16_value(h).to_bits(), "{h:#x}");
            }
        }
    }

    #[test]
    fn small_rounding_is_to_nearest() {
        for (v, want) in [
            (0.4, 0.0),
            (0.6, 1.0),
            (-0.6, -1.0),
            (126.7, 127.0),
            (-3.2, -3.0),
        ] {
            assert_eq!(round_small(v), want, "{v}");
        }
        assert_eq!(round_small(2.5), 2.0, "ties to even");
    }

    #[test]
    fn zero_rows_and_inputs_give_zero() {
        let q = Int8Matrix::quantize(&[0.0; 3 * 70], 3, 70);
        assert_eq!(q.matmul(&data(70, 5), 1), vec![0.0; 3]);
        let q = Int8Matrix::quantize(&data(3 * 70, 6), 3, 70);
        assert_eq!(q.matmul(&[0.0; 140], 2), vec![0.0; 6]);
    }
}
