//! Seeded random weights for benches and shape tests: a `VarBuilder` backend that makes up any
//! requested tensor from its name and shape (deterministically), with values in the ranges the
//! trained layers use — positive codebook usage, small SnakeBeta logs, unit norm weights,
//! small layer scales, fan-in-scaled conv and linear weights — so activations stay finite at
//! the real model's widths. Nothing is read from or written to disk.

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

/// Builds a `VarBuilder` whose every tensor is seeded random data (see the module doc).
pub fn random_var_builder(seed: u64, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_backend(Box::new(RandomWeights { seed }), DType::F32, device.clone())
}

struct RandomWeights {
    seed: u64,
}

impl SimpleBackend for RandomWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let dims = s.dims().to_vec();
        let n = s.elem_count();
        let mut rng = SplitMix::new(self.seed ^ fnv1a(name));
        let leaf = name.rsplit('.').next().unwrap_or(name);
        let fan_in = if dims.len() > 1 {
            (n / dims[0]).max(1)
        } else {
            1
        };
        let data: Vec<f32> = match leaf {
            "cluster_usage" => (0..n).map(|_| 0.5 + 1.5 * rng.uniform()).collect(),
            "alpha" | "beta" => (0..n).map(|_| 0.2 * rng.normal()).collect(),
            "scale" | "gamma" => (0..n).map(|_| 0.01 + 0.002 * rng.normal()).collect(),
            "initialized" => vec![1.0; n],
            "bias" => (0..n).map(|_| 0.02 * rng.normal()).collect(),
            "weight" if dims.len() == 1 => (0..n).map(|_| 1.0 + 0.05 * rng.normal()).collect(),
            "embedding_sum" | "embed_sum" => (0..n).map(|_| rng.normal()).collect(),
            _ => {
                let k = 1.0 / (fan_in as f32).sqrt();
                (0..n).map(|_| k * rng.normal()).collect()
            }
        };
        Tensor::from_vec(data, dims, dev)?.to_dtype(dtype)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("random weights need a shape, none was given for {name}")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// SplitMix64 with Box–Muller normals: small, fast and reproducible.
struct SplitMix {
    state: u64,
    spare: Option<f32>,
}

impl SplitMix {
    fn new(seed: u64) -> Self {
        Self {
            state: seed,
            spare: None,
        }
    }
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        self.spare = Some((r * s) as f32);
        (r * c) as f32
    }
}
