//! [`Linear`]: `nn.Linear` for the talker and code-predictor stacks that sends batch-1 decode
//! steps (a few rows) to the CPU few-rows kernel (`codec::cpu::linear_rows`: one dot product
//! per output, parallel over output rows, each weight row read once; for bf16 weights a kernel
//! of the same shape that widens them to f32 on the fly), and everything else (the prefill,
//! other devices) to candle's matmul. At batch 1 a step is bound by
//! reading the weights, and a general GEMM spends much of its time packing them.

use candle_core::{CpuStorage, DType, Module, Result, Storage, Tensor};
use std::sync::Arc;

use candle_nn::VarBuilder;

use super::int8::Int8Matrix;
use super::tiled;
use crate::codec::cpu::{linear_rows, with_f32, SMALL_ROWS};

/// Rows up to which a prompt's prefill goes through our kernels (f32 where the CPU has AVX-512,
/// bf16 where it has AVX-512 BF16 or AVX2/FMA); longer inputs use candle's matmul.
const TILED_MAX_ROWS: usize = 512;

/// How a linear layer keeps its weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightFormat {
    /// In the compute dtype (f32 or bf16), as loaded.
    #[default]
    Float,
    /// 8-bit blocks of 16 with an f16 scale each ([`Int8Matrix`]); activations stay f32.
    Int8,
}

impl WeightFormat {
    /// Bytes each weight takes (and is streamed as) with compute dtype `dtype`.
    pub fn bytes_per_weight(self, dtype: DType) -> f64 {
        match self {
            WeightFormat::Float => dtype.size_in_bytes() as f64,
            WeightFormat::Int8 => super::int8::BYTES_PER_WEIGHT,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Linear {
    inner: Inner,
    bias_v: Option<Vec<f32>>,
}

#[derive(Clone, Debug)]
enum Inner {
    Float(candle_nn::Linear),
    Int8 {
        weight: Arc<Int8Matrix>,
        bias: Option<Tensor>,
    },
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        Self::with_format(weight, bias, WeightFormat::Float)
    }

    /// `weight` `[out, in]` kept as `format` says (quantised right away for int8, so the float
    /// copy is dropped as soon as this returns).
    pub fn with_format(weight: Tensor, bias: Option<Tensor>, format: WeightFormat) -> Result<Self> {
        let bias_v = match &bias {
            Some(b) => Some(b.to_dtype(DType::F32)?.to_vec1::<f32>()?),
            _ => None,
        };
        let inner = match format {
            WeightFormat::Float => Inner::Float(candle_nn::Linear::new(weight, bias)),
            WeightFormat::Int8 => {
                let (rows, cols) = weight.dims2()?;
                let w = weight
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                Inner::Int8 {
                    weight: Arc::new(Int8Matrix::quantize(&w, rows, cols)),
                    bias,
                }
            }
        };
        Ok(Self { inner, bias_v })
    }

    /// Bytes of weight (and bias) memory this layer holds.
    pub fn weight_bytes(&self) -> usize {
        match &self.inner {
            Inner::Float(l) => {
                let w = l.weight();
                let b = l
                    .bias()
                    .map_or(0, |b| b.elem_count() * b.dtype().size_in_bytes());
                w.elem_count() * w.dtype().size_in_bytes() + b
            }
            Inner::Int8 { weight, bias } => {
                weight.bytes() + bias.as_ref().map_or(0, |b| b.elem_count() * 4)
            }
        }
    }

    /// `[.., in]` → `[.., out]` through the 8-bit kernel, in `x`'s dtype.
    fn int8_forward(&self, w: &Int8Matrix, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let k = *dims.last().unwrap_or(&0);
        if k != w.cols() {
            candle_core::bail!("linear expects {} inputs, got shape {:?}", w.cols(), dims);
        }
        let m = x.elem_count() / k.max(1);
        let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut y = w.matmul(&xs, m);
        if let Some(b) = &self.bias_v {
            for row in y.chunks_mut(w.rows()) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        }
        let mut shape = dims;
        *shape.last_mut().unwrap_or(&mut 0) = w.rows();
        Tensor::from_vec(y, shape, x.device())?.to_dtype(x.dtype())
    }

    /// The few-rows kernel for `[1, t, in]` or `[t, in]` with t ≤ `SMALL_ROWS` and f32 weights
    /// on the CPU; `None` where candle's matmul should run.
    fn few_rows(&self, x: &Tensor) -> Option<Result<Tensor>> {
        let Inner::Float(inner) = &self.inner else {
            return None;
        };
        let dims = x.dims().to_vec();
        let (rows, k) = match dims.as_slice() {
            [1, t, k] | [t, k] => (*t, *k),
            _ => return None,
        };
        let bf16 = inner.weight().dtype() == DType::BF16;
        // With AVX-512 (f32, or bf16 with BF16) or AVX2/FMA (bf16) the kernels also beat
        // candle's matmul on a prefill: each weight row is read once and multiplied by four
        // input rows at a time while it is in cache, with no packing.
        let tiled = if bf16 {
            x.dtype() == DType::BF16 && (has_avx512_bf16() || has_fma())
        } else {
            x.dtype() == DType::F32 && has_avx512f()
        };
        let max_rows = if tiled { TILED_MAX_ROWS } else { SMALL_ROWS };
        if rows > max_rows || (inner.bias().is_some() && self.bias_v.is_none()) {
            return None;
        }
        let x2 = match x.reshape((rows, k)).and_then(|x| x.contiguous()) {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let (w, bias) = (inner.weight(), self.bias_v.as_deref());
        let y = if bf16 {
            bf16_rows(&x2, w, bias)?
        } else if rows > SMALL_ROWS {
            f32_tiled(&x2, w, bias)?
        } else {
            linear_rows(&x2, w, bias)?.map_err(to_candle)
        };
        Some(y.and_then(|y| {
            let out = y.dim(1)?;
            let mut shape = dims;
            *shape.last_mut().unwrap_or(&mut 0) = out;
            y.reshape(shape)
        }))
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.inner {
            Inner::Int8 { weight, .. } => self.int8_forward(weight, x),
            Inner::Float(l) => match self.few_rows(x) {
                Some(y) => y,
                None => l.forward(x),
            },
        }
    }
}

/// `x` `[m, in]` (any float dtype) · `w` `[out, in]` bf16ᵀ (+ `bias`) → `[m, out]` in bf16:
/// f32 accumulation, one task per block of output rows. With AVX-512 BF16 and a bf16 input the
/// products are bf16 × bf16 in register tiles of four weight rows by four input rows; otherwise
/// the weights are widened to f32 on the fly. `None` unless `w` is a contiguous bf16 CPU tensor.
fn bf16_rows(x: &Tensor, w: &Tensor, bias: Option<&[f32]>) -> Option<Result<Tensor>> {
    let (m, k) = x.dims2().ok()?;
    let (out, k_w) = w.dims2().ok()?;
    if k != k_w || k == 0 || !w.is_contiguous() || bias.is_some_and(|b| b.len() != out) {
        return None;
    }
    let (storage, layout) = w.storage_and_layout();
    let ws = bf16_bits(&storage, layout.start_offset(), out * k)?;
    // A bf16 input (every activation of a bf16 model) is exact as bf16 bits, so the products can
    // be bf16 × bf16 with f32 sums: AVX-512 BF16 does 32 of them per instruction.
    let x_bits = (x.dtype() == DType::BF16 && x.is_contiguous() && has_avx512_bf16())
        .then(|| {
            let (s, l) = x.storage_and_layout();
            bf16_bits(&s, l.start_offset(), m * k).map(<[u16]>::to_vec)
        })
        .flatten();
    let input = match x_bits {
        Some(bits) if m == 1 => Input::Bf16(bits),
        Some(bits) => Input::Tiles(tiled::Padded::new(&bits, m, k, ws.as_ptr() as usize)),
        None => match x
            .to_dtype(DType::F32)
            .and_then(|x| x.flatten_all()?.to_vec1::<f32>())
        {
            Ok(v) => Input::F32(v),
            Err(e) => return Some(Err(e)),
        },
    };
    let y = tiled::by_row_blocks(m, out, bias, |first, rows, dst| {
        let w = &ws[first * k..(first + rows) * k];
        match &input {
            // SAFETY (both): bf16 inputs are only kept as bits when the CPU has AVX-512 F, BW
            // and BF16.
            #[cfg(target_arch = "x86_64")]
            Input::Bf16(bits) => {
                for (d, wr) in dst.iter_mut().zip(w.chunks_exact(k)) {
                    *d = unsafe { dot_bf16_avx512(wr, bits) };
                }
            }
            #[cfg(target_arch = "x86_64")]
            Input::Tiles(x) => unsafe { tiled::bf16_avx512(w, x, k, dst) },
            Input::F32(xs) => rows_widened(w, xs, k, dst),
            #[cfg(not(target_arch = "x86_64"))]
            Input::Bf16(_) | Input::Tiles(_) => unreachable!("bf16 inputs need AVX-512 BF16"),
        }
    });
    Some(Tensor::from_vec(y, (m, out), x.device()).and_then(|y| y.to_dtype(DType::BF16)))
}

/// `x` `[m, in]` · `w` `[out, in]`ᵀ (+ `bias`) → `[m, out]`, all f32, in AVX-512 register tiles
/// ([`tiled::f32_avx512`]). `None` unless both are contiguous f32 CPU tensors.
fn f32_tiled(x: &Tensor, w: &Tensor, bias: Option<&[f32]>) -> Option<Result<Tensor>> {
    let (m, k) = x.dims2().ok()?;
    let (out, k_w) = w.dims2().ok()?;
    if k != k_w || k == 0 || bias.is_some_and(|b| b.len() != out) {
        return None;
    }
    let y = with_f32(x, |xs| {
        with_f32(w, |ws| {
            let xp = tiled::Padded::new(xs, m, k, ws.as_ptr() as usize);
            tiled::by_row_blocks(m, out, bias, |first, rows, dst| {
                let w = &ws[first * k..(first + rows) * k];
                #[cfg(target_arch = "x86_64")]
                // SAFETY: this path is only taken when the CPU has AVX-512 F (`few_rows`).
                unsafe {
                    tiled::f32_avx512(w, &xp, k, dst)
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (w, dst);
                    unreachable!("the f32 tiles need AVX-512")
                }
            })
        })
    })??;
    Some(Tensor::from_vec(y, (m, out), x.device()))
}

/// The `len` bf16 values from `start` of a CPU bf16 storage, as bits; `None` for other storage.
fn bf16_bits(storage: &Storage, start: usize, len: usize) -> Option<&[u16]> {
    match storage {
        Storage::Cpu(CpuStorage::BF16(v)) => {
            let v = v.get(start..start + len)?;
            // SAFETY: bf16 is a transparent 16-bit value; same length and alignment as u16.
            Some(unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u16>(), v.len()) })
        }
        _ => None,
    }
}

/// A linear's input as the bf16 kernels take it.
enum Input {
    /// One row of bf16 bits (a decode step), for `vdpbf16ps`.
    Bf16(Vec<u16>),
    /// Several rows of bf16 bits (a prefill), for the register tiles.
    Tiles(tiled::Padded<u16>),
    /// f32, multiplied by weights widened on the fly.
    F32(Vec<f32>),
}

/// `dst` `[m, rows]` = `x` `[m, k]` · `w` `[rows, k]`ᵀ with the weights widened to f32: four input
/// rows per pass over a weight row with AVX2/FMA (a prefill), else one dot product at a time.
fn rows_widened(w: &[u16], xs: &[f32], k: usize, dst: &mut [f32]) {
    let m = xs.len() / k;
    let rows = w.len() / k;
    for (o, wr) in w.chunks_exact(k).enumerate() {
        let mut i = 0;
        #[cfg(target_arch = "x86_64")]
        if has_fma() {
            while i + 4 <= m {
                let row = |j: usize| &xs[(i + j) * k..(i + j + 1) * k];
                // SAFETY: the CPU has AVX2 and FMA (checked).
                let dots = unsafe { dot4_bf16_fma(wr, [row(0), row(1), row(2), row(3)]) };
                for (j, dot) in dots.into_iter().enumerate() {
                    dst[(i + j) * rows + o] = dot;
                }
                i += 4;
            }
        }
        for j in i..m {
            dst[j * rows + o] = dot_bf16(wr, &xs[j * k..(j + 1) * k]);
        }
    }
}

/// Dot product of bf16 bits and f32: AVX2/FMA when the CPU has it (checked once), else portable.
fn dot_bf16(w: &[u16], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked).
        return unsafe { dot_bf16_fma(w, x) };
    }
    dot_bf16_portable(w, x)
}

/// Whether the CPU has AVX2 and FMA (checked once).
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static FMA: OnceLock<bool> = OnceLock::new();
        *FMA.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has AVX-512 F (checked once).
fn has_avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static F: OnceLock<bool> = OnceLock::new();
        *F.get_or_init(|| is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has AVX-512 F, BW and BF16 (checked once).
fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static BF16: OnceLock<bool> = OnceLock::new();
        *BF16.get_or_init(|| {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512bf16")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Dot product of two bf16 vectors with f32 sums (`vdpbf16ps`, 32 products per instruction).
///
/// # Safety
/// The CPU must have AVX-512 F and BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dot_bf16_avx512(w: &[u16], x: &[u16]) -> f32 {
    use std::arch::x86_64::*;
    let n = w.len().min(x.len());
    let (pw, px) = (w.as_ptr(), x.as_ptr());
    let load = |p: *const u16| -> __m512bh { std::mem::transmute(_mm512_loadu_si512(p.cast())) };
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    while i + 64 <= n {
        acc0 = _mm512_dpbf16_ps(acc0, load(pw.add(i)), load(px.add(i)));
        acc1 = _mm512_dpbf16_ps(acc1, load(pw.add(i + 32)), load(px.add(i + 32)));
        i += 64;
    }
    let mut s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    while i < n {
        s += widen(*pw.add(i)) * widen(*px.add(i));
        i += 1;
    }
    s
}

fn widen(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

fn dot_bf16_portable(w: &[u16], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (cw, cx) = (w.chunks_exact(8), x.chunks_exact(8));
    let (rw, rx) = (cw.remainder(), cx.remainder());
    for (a, b) in cw.zip(cx) {
        for j in 0..8 {
            acc[j] += widen(a[j]) * b[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in rw.iter().zip(rx) {
        s += widen(*a) * b;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_bf16_fma(w: &[u16], x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = w.len().min(x.len());
    let (pw, px) = (w.as_ptr(), x.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let load = |i: usize| {
        let h = _mm_loadu_si128(pw.add(i).cast::<__m128i>());
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
    };
    let mut i = 0;
    while i + 16 <= n {
        acc0 = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(px.add(i)), acc0);
        acc1 = _mm256_fmadd_ps(load(i + 8), _mm256_loadu_ps(px.add(i + 8)), acc1);
        i += 16;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(acc0, acc1));
    let mut s: f32 = lanes.iter().sum();
    while i < n {
        s += widen(*pw.add(i)) * *px.add(i);
        i += 1;
    }
    s
}

/// Four dot products of one bf16 weight row with four f32 input rows (AVX2/FMA): the weight
/// row is widened once per 8 values and feeds four independent sums.
///
/// # Safety
/// The CPU must have AVX2 and FMA; every `x[j]` must be as long as `w`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4_bf16_fma(w: &[u16], x: [&[f32]; 4]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let n = w.len();
    let pw = w.as_ptr();
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 8 <= n {
        let h = _mm_loadu_si128(pw.add(i).cast::<__m128i>());
        let wv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
        for j in 0..4 {
            acc[j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[j].as_ptr().add(i)), acc[j]);
        }
        i += 8;
    }
    let mut out = [0f32; 4];
    for j in 0..4 {
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc[j]);
        let mut s: f32 = lanes.iter().sum();
        for t in i..n {
            s += widen(w[t]) * x[j][t];
        }
        out[j] = s;
    }
    out
}

fn to_candle(e: crate::Error) -> candle_core::Error {
    match e {
        crate::Error::Tensor(e) => e,
        other => candle_core::Error::Msg(other.to_string()),
    }
}

/// `candle_nn::linear_b` with this [`Linear`], weights kept as `format` says.
pub fn linear_b(
    in_dim: usize,
    out_dim: usize,
    bias: bool,
    vb: VarBuilder,
    format: WeightFormat,
) -> Result<Linear> {
    let w = vb.get((out_dim, in_dim), "weight")?;
    let b = if bias {
        Some(vb.get(out_dim, "bias")?)
    } else {
        None
    };
    Linear::with_format(w, b, format)
}

/// Several linears over the same input stacked into one (their weight rows one after the
/// other, e.g. q/k/v or gate/up), so a step makes one product instead of several: one pass
/// over the input, one hand-off to the threads. Split the output with `narrow`.
pub fn linear_stacked(
    in_dim: usize,
    parts: &[(usize, VarBuilder)],
    bias: bool,
    format: WeightFormat,
) -> Result<Linear> {
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    for (out_dim, vb) in parts {
        weights.push(vb.get((*out_dim, in_dim), "weight")?);
        if bias {
            biases.push(vb.get(*out_dim, "bias")?);
        }
    }
    let w = Tensor::cat(&weights, 0)?;
    drop(weights);
    let b = if bias {
        Some(Tensor::cat(&biases, 0)?)
    } else {
        None
    };
    Linear::with_format(w, b, format)
}

/// `candle_nn::linear_no_bias` with this [`Linear`].
pub fn linear_no_bias(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder,
    format: WeightFormat,
) -> Result<Linear> {
    linear_b(in_dim, out_dim, false, vb, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_abs_diff;
    use candle_core::{DType, Device};

    #[test]
    fn few_rows_and_matmul_paths_agree() {
        let d = Device::Cpu;
        let w = Tensor::arange(0f32, 40.0 * 24.0, &d)
            .unwrap()
            .reshape((40, 24))
            .unwrap()
            .sin()
            .unwrap();
        let b = Tensor::arange(0f32, 40.0, &d)
            .unwrap()
            .affine(0.01, 0.0)
            .unwrap();
        let lin = Linear::new(w.clone(), Some(b.clone())).unwrap();
        let plain = candle_nn::Linear::new(w, Some(b));
        // Past SMALL_ROWS a prefill: the AVX-512 tiles where the CPU has them, with 70 rows
        // spanning two of their input blocks; candle's matmul otherwise.
        for t in [1, 2, SMALL_ROWS, SMALL_ROWS + 3, 70] {
            let x = Tensor::arange(0f32, (t * 24) as f32, &d)
                .unwrap()
                .reshape((1, t, 24))
                .unwrap()
                .cos()
                .unwrap();
            assert_eq!(lin.few_rows(&x).is_some(), t <= SMALL_ROWS || has_avx512f());
            let got = lin.forward(&x).unwrap();
            let want = plain.forward(&x).unwrap();
            assert_eq!(got.dims(), &[1, t, 40]);
            let err = max_abs_diff(&got, &want);
            assert!(err < 1e-5, "t {t}: {err}");
        }
        // bf16: the kernel against candle's bf16 matmul, both rounded to bf16 at the end.
        let Inner::Float(f) = &lin.inner else {
            unreachable!("built as float")
        };
        let w16 = f.weight().to_dtype(DType::BF16).unwrap();
        let lin16 = Linear::new(w16.clone(), None).unwrap();
        let plain16 = candle_nn::Linear::new(w16, None);
        // 9 rows: two passes of four plus one where AVX-512 BF16 takes a prefill.
        for t in [1, 3, 9] {
            let x = Tensor::arange(0f32, (t * 24) as f32, &d)
                .unwrap()
                .reshape((1, t, 24))
                .unwrap()
                .cos()
                .unwrap();
            let x = x.to_dtype(DType::BF16).unwrap();
            assert_eq!(
                lin16.few_rows(&x).is_some(),
                t <= SMALL_ROWS || has_avx512_bf16() || has_fma()
            );
            let got = lin16.forward(&x).unwrap();
            assert_eq!(got.dtype(), DType::BF16);
            let want = plain16.forward(&x).unwrap();
            let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
            let err = max_abs_diff(&f32(&got), &f32(&want));
            assert!(err < 0.05, "t {t}: {err}"); // one bf16 ulp at |y| ≈ 5
        }
        let (a, b): (Vec<u16>, Vec<f32>) = (0..100)
            .map(|i| (((i as f32).sin()).to_bits() >> 16) as u16)
            .zip((0..100).map(|i| (i as f32 * 0.3).cos()))
            .unzip();
        assert!((dot_bf16(&a, &b) - dot_bf16_portable(&a, &b)).abs() < 1e-4);
        #[cfg(target_arch = "x86_64")]
        if has_fma() {
            // Four input rows at once: each equals its single dot product.
            let rows: Vec<Vec<f32>> = (0..4)
                .map(|j| b.iter().map(|v| v * (j as f32 - 1.5)).collect())
                .collect();
            let four = unsafe { dot4_bf16_fma(&a, [&rows[0], &rows[1], &rows[2], &rows[3]]) };
            for (j, r) in rows.iter().enumerate() {
                let one = dot_bf16_portable(&a, r);
                assert!(
                    (four[j] - one).abs() <= 1e-4 * one.abs().max(1.0),
                    "{j}: {four:?} {one}"
                );
            }
        }
        #[cfg(target_arch = "x86_64")]
        if has_avx512_bf16() {
            // Both sides bf16: the same products as widening both, summed in another order.
            let bb: Vec<u16> = b.iter().map(|v| (v.to_bits() >> 16) as u16).collect();
            let wide: Vec<f32> = bb.iter().map(|v| widen(*v)).collect();
            let got = unsafe { dot_bf16_avx512(&a, &bb) };
            assert!((got - dot_bf16_portable(&a, &wide)).abs() < 1e-4, "{got}");
        }
    }
}
