//! The Qwen3 decoder stack shared by the talker and the code predictor: `layers.N.*` decoder
//! layers (pre-norm attention and SwiGLU MLP with residuals) and the final `norm`.

mod attention;
mod fast_linear;
pub(crate) mod int8;
mod mlp;
mod norm;
mod rotary;
mod tiled;

use candle_core::{Result, Tensor};
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
        let x = (x + a)?;
        let m = self
            .mlp
            .forward(&self.post_attention_layernorm.forward(&x)?)?;
        x + m
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
    use candle_core::{Device, Tensor};

    use super::DecoderStack;
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
