//! The Qwen3 decoder stack shared by the talker and the code predictor: `layers.N.*` decoder
//! layers (pre-norm attention and SwiGLU MLP with residuals) and the final `norm`.

mod attention;
mod fast_linear;
pub(crate) mod int8;
mod mlp;
mod norm;
mod rotary;
mod tiled;

use candle_core::{DType, Result, Tensor};
use candle_nn::kv_cache::KvCache;
use candle_nn::VarBuilder;

pub use attention::{new_cache, Attention};
pub use fast_linear::{linear_b, linear_no_bias, linear_stacked, Linear, WeightFormat};
pub use mlp::Mlp;
pub use norm::RmsNorm;
pub use rotary::Rotary;

use crate::config::StackConfig;

/// One decoder layer.
#[derive(Clone, Debug)]
pub struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    pub fn load(cfg: &StackConfig, vb: VarBuilder, format: WeightFormat) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            input_layernorm: RmsNorm::load(h, cfg.rms_norm_eps, vb.pp("input_layernorm"))?,
            self_attn: Attention::load(cfg, vb.pp("self_attn"), format)?,
            post_attention_layernorm: RmsNorm::load(
                h,
                cfg.rms_norm_eps,
                vb.pp("post_attention_layernorm"),
            )?,
            mlp: Mlp::load(h, cfg.intermediate_size, vb.pp("mlp"), format)?,
        })
    }

    pub fn forward(&self, x: &Tensor, rotary: &Rotary, cache: &mut KvCache) -> Result<Tensor> {
        let a = self
            .self_attn
            .forward(&self.input_layernorm.forward(x)?, rotary, cache)?;
        let x = residual_add(x, &a)?;
        let m = self
            .mlp
            .forward(&self.post_attention_layernorm.forward(&x)?)?;
        residual_add(&x, &m)
    }
}

/// `x + y` for the residual stream. candle's own bf16 add on the CPU costs about 20 ns an
/// element (its AVX path checks the CPU's features and converts out of line at every load):
/// 25 ms for a 41-position prefill's 56 adds, against 0.2 ms in f32. So bf16 goes through f32,
/// which is the same sum rounded once to bf16 (round to nearest even): the same bits.
fn residual_add(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    if x.dtype() == DType::BF16 && x.device().is_cpu() {
        (x.to_dtype(DType::F32)? + y.to_dtype(DType::F32)?)?.to_dtype(DType::BF16)
    } else {
        x + y
    }
}

/// `layers.*` + `norm`, with RoPE.
#[derive(Clone, Debug)]
pub struct DecoderStack {
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    rotary: Rotary,
}

impl DecoderStack {
    pub fn load(cfg: &StackConfig, vb: VarBuilder, format: WeightFormat) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::load(cfg, vb.pp(format!("layers.{i}")), format))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            norm: RmsNorm::load(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("norm"))?,
            rotary: Rotary::new(cfg.head_dim(), cfg.rope_theta),
        })
    }

    /// Fresh, empty caches for one sequence, pre-allocated for `capacity` positions.
    pub fn new_caches(&self, capacity: usize) -> Vec<KvCache> {
        self.layers.iter().map(|_| new_cache(capacity)).collect()
    }

    /// `x` `[1, t, hidden]` → final-norm hidden states `[1, t, hidden]`, appending to `caches`.
    pub fn forward(&self, x: &Tensor, caches: &mut [KvCache]) -> Result<Tensor> {
        let mut x = x.clone();
        for (layer, cache) in self.layers.iter().zip(caches.iter_mut()) {
            x = layer.forward(&x, &self.rotary, cache)?;
        }
        self.norm.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::{residual_add, DecoderStack};
    use crate::codec::random::random_var_builder;
    use crate::config::StackConfig;
    use crate::test_util::max_abs_diff;

    fn cfg() -> StackConfig {
        serde_json::from_str(
            r#"{"vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 12,
                "rms_norm_eps": 1e-6, "rope_theta": 10000, "num_code_groups": 16}"#,
        )
        .unwrap()
    }

    #[test]
    fn residual_add_in_bf16_has_candles_bits() {
        let dev = Device::Cpu;
        // 1000 values (not a multiple of a vector), from tiny to large, with cancellations.
        let x = (Tensor::randn(0f32, 1.0, (1, 8, 125), &dev).unwrap() * 300.0).unwrap();
        let y = (Tensor::randn(0f32, 1.0, (1, 8, 125), &dev).unwrap() * 0.01).unwrap();
        let y = (y - &x).unwrap();
        let (x, y) = (
            x.to_dtype(DType::BF16).unwrap(),
            y.to_dtype(DType::BF16).unwrap(),
        );
        let got = residual_add(&x, &y).unwrap();
        let want = (&x + &y).unwrap();
        assert_eq!(got.dtype(), DType::BF16);
        // Widening bf16 to f32 is exact, so equal f32 bits are equal bf16 bits.
        let bits = |t: &Tensor| -> Vec<u32> {
            let v = t.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
            v.to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(&got), bits(&want));
    }

    #[test]
    fn growing_cache_in_pieces_equals_one_pass() {
        let dev = Device::Cpu;
        let stack =
            DecoderStack::load(&cfg(), random_var_builder(3, &dev), Default::default()).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, 11, 32), &dev).unwrap();
        let full = stack.forward(&x, &mut stack.new_caches(64)).unwrap();
        // Capacity 2 forces the cache to grow several times.
        let mut caches = stack.new_caches(2);
        let mut parts = Vec::new();
        for (s, n) in [(0, 3), (3, 1), (4, 1), (5, 4), (9, 2)] {
            parts.push(
                stack
                    .forward(&x.narrow(1, s, n).unwrap(), &mut caches)
                    .unwrap(),
            );
        }
        let inc = Tensor::cat(&parts, 1).unwrap();
        let err = max_abs_diff(&full, &inc);
        assert!(err < 1e-5, "incremental vs one pass: {err}");
    }
}
