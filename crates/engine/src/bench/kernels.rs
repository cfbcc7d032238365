//! Single-row kernel speed: one input row through many weight matrices of the talker's
//! `[3072, 1024]` MLP shape (together far larger than the last-level cache), through the same
//! [`Linear`] layers generation uses, on a rayon pool of the given size. Reports the weight bytes read
//! per second for each format — to set beside the read-bandwidth probe.

use std::time::Instant;

use candle_core::{DType, Device, Module, Result, Tensor};

use crate::transformer::int8::{self, Int8Matrix};
use crate::transformer::{Linear, WeightFormat};

/// One kernel's figure.
#[derive(Clone, Debug)]
pub struct KernelFigure {
    /// "f32", "bf16" or "int8", and for int8 the kernel ("avx512-vnni", "avx2", "portable").
    pub format: String,
    /// Weight bytes read per second, in GB/s (1e9).
    pub gbs: f64,
    /// Microseconds per `[1, 1024] × [1024, 3072]` product.
    pub us_per_matrix: f64,
}

const ROWS: usize = 3072;
const COLS: usize = 1024;

/// Best of `passes` sweeps over about `mib` MiB of weights per format, on `threads` threads.
pub fn measure(mib: usize, passes: usize, threads: usize) -> Result<Vec<KernelFigure>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| candle_core::Error::Msg(format!("thread pool: {e}")))?;
    pool.install(|| sweep(mib, passes))
}

fn sweep(mib: usize, passes: usize) -> Result<Vec<KernelFigure>> {
    let dev = Device::Cpu;
    let formats: [(&'static str, DType, WeightFormat, f64); 3] = [
        ("f32", DType::F32, WeightFormat::Float, 4.0),
        ("bf16", DType::BF16, WeightFormat::Float, 2.0),
        (
            "int8",
            DType::F32,
            WeightFormat::Int8,
            WeightFormat::Int8.bytes_per_weight(DType::F32),
        ),
    ];
    let mut out = Vec::new();
    for (name, dtype, format, bytes_per_weight) in formats {
        if format == WeightFormat::Int8 {
            for &kernel in int8::kernels() {
                out.push(sweep_int8(mib, passes, kernel)?);
            }
            continue;
        }
        let matrix_bytes = ROWS as f64 * COLS as f64 * bytes_per_weight;
        let count = ((mib as f64 * 1048576.0 / matrix_bytes).ceil() as usize).max(2);
        let layers = (0..count)
            .map(|i| {
                let w = Tensor::randn(0f32, 0.03, (ROWS, COLS), &dev)?
                    .affine(1.0, i as f64 * 1e-3)?
                    .to_dtype(dtype)?;
                Linear::with_format(w, None, format)
            })
            .collect::<Result<Vec<_>>>()?;
        let x = Tensor::randn(0f32, 1.0, (1, 1, COLS), &dev)?.to_dtype(dtype)?;
        let mut best = f64::INFINITY;
        for _ in 0..passes.max(1) {
            let t0 = Instant::now();
            for l in &layers {
                std::hint::black_box(l.forward(&x)?);
            }
            best = best.min(t0.elapsed().as_secs_f64());
        }
        out.push(KernelFigure {
            format: name.to_string(),
            gbs: count as f64 * matrix_bytes / best / 1e9,
            us_per_matrix: best / count as f64 * 1e6,
        });
    }
    Ok(out)
}

/// The int8 figure for one kernel: the same matrices and input, through that kernel alone.
fn sweep_int8(mib: usize, passes: usize, kernel: int8::Kernel) -> Result<KernelFigure> {
    let dev = Device::Cpu;
    let matrix_bytes = ROWS as f64 * COLS as f64 * int8::BYTES_PER_WEIGHT;
    let count = ((mib as f64 * 1048576.0 / matrix_bytes).ceil() as usize).max(2);
    let matrices = (0..count)
        .map(|i| {
            let w = Tensor::randn(0f32, 0.03, (ROWS, COLS), &dev)?
                .affine(1.0, i as f64 * 1e-3)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            Ok(Int8Matrix::quantize(&w, ROWS, COLS))
        })
        .collect::<Result<Vec<_>>>()?;
    let x = Tensor::randn(0f32, 1.0, COLS, &dev)?.to_vec1::<f32>()?;
    let mut best = f64::INFINITY;
    for _ in 0..passes.max(1) {
        let t0 = Instant::now();
        for m in &matrices {
            std::hint::black_box(m.matmul_with(&x, 1, kernel));
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(KernelFigure {
        format: format!("int8 {}", kernel.name()),
        gbs: count as f64 * matrix_bytes / best / 1e9,
        us_per_matrix: best / count as f64 * 1e6,
    })
}
