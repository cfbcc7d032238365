//! The Qwen3 decoder stack shared by the talker and the code predictor: `layers.N.*` decoder
//! layers (pre-norm attention and SwiGLU MLP with residuals) and the final `norm`.

mod attention;
mod mlp;
mod norm;
mod rotary;

use candle_core::{Result, Tensor};
use candle_nn::kv_cache::KvCache;
use candle_nn::VarBuilder;

pub use attention::{new_cache, Attention};
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
    pub fn load(cfg: &StackConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            input_layernorm: RmsNorm::load(h, cfg.rms_norm_eps, vb.pp("input_layernorm"))?,
            self_attn: Attention::load(cfg, vb.pp("self_attn"))?,
            post_attention_layernorm: RmsNorm::load(h, cfg.rms_norm_eps, vb.pp("post_attention_layernorm"))?,
            mlp: Mlp::load(h, cfg.intermediate_size, vb.pp("mlp"))?,
        })
    }

    pub fn forward(&self, x: &Tensor, rotary: &Rotary, cache: &mut KvCache) -> Result<Tensor> {
        let a = self.self_attn.forward(&self.input_layernorm.forward(x)?, rotary, cache)?;
        let x = (x + a)?;
        let m = self.mlp.forward(&self.post_attention_layernorm.forward(&x)?)?;
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
    pub fn load(cfg: &StackConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::load(cfg, vb.pp(format!("layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            norm: RmsNorm::load(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("norm"))?,
            rotary: Rotary::new(cfg.head_dim(), cfg.rope_theta),
        })
    }

    /// Fresh, empty caches for one sequence.
    pub fn new_caches(&self) -> Vec<KvCache> {
        self.layers.iter().map(|_| new_cache()).collect()
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
