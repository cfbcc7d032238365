//! The decoder's convolution GEMM on AVX-512 CPUs. Weights are packed once, at load time, into
//! panels of [`MR`] output rows laid out `[tap][c_in][MR]`, so the kernel reads them in one
//! linear stream; the input rows are read in place (no im2col, no copy of the activations).
//! The 12 × 32 register tile (24 accumulators) multiplies a broadcast weight by two vectors of
//! consecutive time steps; masked loads and stores handle the ragged edges.
//!
//! The `gemm` crate (used on other CPUs, see `cpu.rs`) has only 8-lane (AVX2) kernels in a
//! stable build. With this kernel the real-size decoder on one thread of an AVX-512 CPU went from
//! 78–90 to 55–64 ms per frame (`q3tts bench`, "decoder alone").

use std::sync::OnceLock;

use rayon::prelude::*;

use super::cpu::Ptr;

/// Output rows per register tile (and per packed panel).
pub(crate) const MR: usize = 12;
/// Floats per AVX-512 vector.
const LANES: usize = 16;
/// Floats of input one column chunk may span (1 MiB: it stays in L2 while every row panel
/// passes over it).
const CHUNK_INPUT_FLOATS: usize = 256 * 1024;

/// Whether this CPU runs the packed kernel (checked once).
pub(crate) fn available() -> bool {
    static AVX512: OnceLock<bool> = OnceLock::new();
    *AVX512.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Weights `W[tap][row][c_in]` packed in panels of [`MR`] rows (zero rows pad the last one).
#[derive(Debug)]
pub(crate) struct PackedWeights {
    data: Vec<f32>,
    rows: usize,
    depth: usize,
    taps: usize,
}

impl PackedWeights {
    /// Packs `rows × depth` weights for each of `taps` taps, `w(row, c, tap)` giving each value.
    pub(crate) fn new(
        rows: usize,
        depth: usize,
        taps: usize,
        w: impl Fn(usize, usize, usize) -> f32,
    ) -> Self {
        let panels = rows.div_ceil(MR);
        let mut data = vec![0f32; panels * taps * depth * MR];
        for (p, panel) in data.chunks_mut(taps * depth * MR).enumerate() {
            for (i, slot) in panel.iter_mut().enumerate() {
                let (r, c, t) = (p * MR + i % MR, (i / MR) % depth, i / (MR * depth));
                if r < rows {
                    *slot = w(r, c, t);
                }
            }
        }
        Self {
            data,
            rows,
            depth,
            taps,
        }
    }

    /// Packs a PyTorch Conv1d weight `[rows, depth, taps]` (row-major).
    pub(crate) fn from_conv(w: &[f32], rows: usize, depth: usize, taps: usize) -> Self {
        assert_eq!(w.len(), rows * depth * taps, "conv weight size");
        Self::new(rows, depth, taps, |r, c, t| w[(r * depth + c) * taps + t])
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn taps(&self) -> usize {
        self.taps
    }

    /// `y[r][j] += Σ_tap Σ_c W[tap][r][c] · x[c][j + tap·dilation]` for `j < n`, where `x` has
    /// `depth` rows of stride `ldx` and `y` is `rows × n` (row-major, usually holding the bias).
    /// Panics if the slices are too short for these shapes or the CPU lacks AVX-512 (callers
    /// check [`available`]).
    pub(crate) fn matmul_acc(
        &self,
        x: &[f32],
        ldx: usize,
        dilation: usize,
        y: &mut [f32],
        n: usize,
    ) {
        assert!(available(), "the packed conv kernel needs AVX-512");
        let span = (self.taps - 1) * dilation;
        assert!(y.len() >= self.rows * n, "output too short");
        if n == 0 || self.rows == 0 {
            return;
        }
        assert!(
            self.depth == 0 || x.len() >= (self.depth - 1) * ldx + span + n,
            "input too short"
        );
        assert!(ldx >= span + n, "input rows overlap");
        // Column chunks whose input block fits in L2; each panel of rows is one task.
        let chunk = (CHUNK_INPUT_FLOATS / self.depth.max(1))
            .saturating_sub(span)
            .max(2 * LANES)
            / (2 * LANES)
            * (2 * LANES);
        let panel_len = self.taps * self.depth * MR;
        let panels = self.rows.div_ceil(MR);
        let (xp, yp) = (Ptr(x.as_ptr() as *mut f32), Ptr(y.as_mut_ptr()));
        let mut c0 = 0;
        while c0 < n {
            let cols = chunk.min(n - c0);
            let panel = |p: usize| {
                let rows = MR.min(self.rows - p * MR);
                let a = &self.data[p * panel_len..(p + 1) * panel_len];
                // SAFETY: the asserts above bound every read of x (depth rows of stride ldx,
                // columns < span + n) and every write of y (rows × n); panel p writes only its
                // own rows, so concurrent panels never write the same element.
                unsafe {
                    let g = Geometry {
                        depth: self.depth,
                        taps: self.taps,
                        dilation,
                        ldx,
                        ldy: n,
                        rows,
                    };
                    panel_cols(a, &g, xp.get().add(c0), yp.get().add(p * MR * n + c0), cols)
                };
            };
            if rayon::current_num_threads() > 1 && panels > 1 {
                (0..panels).into_par_iter().for_each(panel);
            } else {
                (0..panels).for_each(panel);
            }
            c0 += cols;
        }
    }
}

/// One panel of `rows` (≤ MR) output rows over `cols` columns, in tiles of 32 (or 16) columns.
///
/// # Safety
/// The CPU has AVX-512F; `x` addresses `g.depth` rows of stride `g.ldx` with at least
/// `(taps − 1)·dilation + cols` readable floats each; `y` addresses `g.rows` rows of stride
/// `g.ldy` with `cols` writable floats each.
unsafe fn panel_cols(a: &[f32], g: &Geometry, x: *const f32, y: *mut f32, cols: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut j = 0;
        while j < cols {
            let left = cols - j;
            if left > LANES {
                tile::<2>(
                    a.as_ptr(),
                    g,
                    x.add(j),
                    y.add(j),
                    [u16::MAX, mask(left - LANES)],
                );
                j += 2 * LANES;
            } else {
                tile::<1>(a.as_ptr(), g, x.add(j), y.add(j), [mask(left)]);
                j += LANES;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, g, x, y, cols);
        unreachable!("the packed conv kernel is only dispatched on x86_64 with AVX-512");
    }
}

/// The lanes of a vector that hold one of `left` remaining columns.
fn mask(left: usize) -> u16 {
    if left >= LANES {
        u16::MAX
    } else {
        (1u16 << left) - 1
    }
}

/// Shapes shared by every tile of a panel.
struct Geometry {
    depth: usize,
    taps: usize,
    dilation: usize,
    ldx: usize,
    ldy: usize,
    rows: usize,
}

/// The register tile: `MR` rows × `NZ` vectors of 16 columns, accumulated over every tap and
/// input channel, then added to `y`.
///
/// # Safety
/// As [`panel_cols`], for the columns the masks select.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const NZ: usize>(
    a: *const f32,
    g: &Geometry,
    x: *const f32,
    y: *mut f32,
    masks: [u16; NZ],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); NZ]; MR];
    let mut ap = a;
    for t in 0..g.taps {
        let mut xp = x.add(t * g.dilation);
        for _ in 0..g.depth {
            let mut xv = [_mm512_setzero_ps(); NZ];
            for z in 0..NZ {
                xv[z] = _mm512_maskz_loadu_ps(masks[z], xp.add(z * LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let w = _mm512_set1_ps(*ap.add(i));
                for z in 0..NZ {
                    row[z] = _mm512_fmadd_ps(w, xv[z], row[z]);
                }
            }
            ap = ap.add(MR);
            xp = xp.add(g.ldx);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        if i < g.rows {
            let yr = y.add(i * g.ldy);
            for z in 0..NZ {
                let p = yr.add(z * LANES);
                let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(masks[z], p), row[z]);
                _mm512_mask_storeu_ps(p, masks[z], sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows, depth (input channels), taps, dilation, columns.
    type Shape = (usize, usize, usize, usize, usize);

    /// The same sum in f64, straight from the definition (`x` rows of stride `ldx`).
    fn naive(
        w: &[f32],
        x: &[f32],
        ldx: usize,
        (rows, depth, taps, dilation, n): Shape,
    ) -> Vec<f64> {
        let mut y = vec![0f64; rows * n];
        for r in 0..rows {
            for j in 0..n {
                let mut s = 0f64;
                for c in 0..depth {
                    for t in 0..taps {
                        s += w[(r * depth + c) * taps + t] as f64
                            * x[c * ldx + j + t * dilation] as f64;
                    }
                }
                y[r * n + j] = s;
            }
        }
        y
    }

    #[test]
    fn packed_conv_matches_the_definition_on_ragged_shapes() {
        if !available() {
            eprintln!("no AVX-512 on this CPU: the packed kernel is not used here");
            return;
        }
        // Rows not a multiple of MR, columns not a multiple of 16 or 32, one tap and seven,
        // dilations 1 and 9, and a column count past one chunk.
        for (rows, depth, taps, dilation, n) in [
            (1, 3, 7, 1, 5),
            (12, 8, 1, 1, 32),
            (13, 5, 3, 2, 17),
            (30, 16, 7, 9, 49),
            (25, 4, 2, 3, 70_001),
        ] {
            let w: Vec<f32> = (0..rows * depth * taps)
                .map(|i| ((i * 7919) % 997) as f32 / 498.5 - 1.0)
                .collect();
            let ldx = n + (taps - 1) * dilation + 3;
            let x: Vec<f32> = (0..depth * ldx)
                .map(|i| ((i * 104_729) % 1009) as f32 / 504.5 - 1.0)
                .collect();
            let packed = PackedWeights::from_conv(&w, rows, depth, taps);
            let mut y = vec![0.5f32; rows * n];
            packed.matmul_acc(&x, ldx, dilation, &mut y, n);
            let want = naive(&w, &x, ldx, (rows, depth, taps, dilation, n));
            let worst = y
                .iter()
                .zip(&want)
                .map(|(&g, &w)| (g as f64 - 0.5 - w).abs())
                .fold(0f64, f64::max);
            assert!(
                worst < 1e-4,
                "{rows}x{depth}x{taps} d{dilation} n{n}: {worst}"
            );
        }
    }
}
