//! The decoder's pre-transformer: `input_proj` (latent → hidden), N layers of RMSNorm → causal
//! sliding-window attention (NeoX RoPE, no q/k norm) → LayerScale → residual, RMSNorm → SwiGLU →
//! LayerScale → residual, then a final RMSNorm and `output_proj` (hidden → latent).
//!
//! Streaming: each layer keeps the keys (after RoPE) and values of the last `window − 1`
//! positions in the [`DecoderState`], and positions continue from chunk to chunk, so a chunk
//! attends exactly to what the one-shot decode would. The per-chunk cost is bounded by the window.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::linear::Linear;

use super::rope::{repeat_kv, window_mask, Rope};
use super::stream::DecoderState;
use super::DecoderConfig;
use crate::Result;

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            eps: eps as f32,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps)?)
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &DecoderConfig) -> Result<Self> {
        let (h, d, kv) = (cfg.hidden_size, cfg.head_dim(), cfg.num_kv_heads());
        let n = cfg.num_attention_heads;
        Ok(Self {
            q: Linear::load(vb.pp("q_proj"), h, n * d, false)?,
            k: Linear::load(vb.pp("k_proj"), h, kv * d, false)?,
            v: Linear::load(vb.pp("v_proj"), h, kv * d, false)?,
            o: Linear::load(vb.pp("o_proj"), n * d, h, false)?,
            heads: n,
            kv_heads: kv,
            head_dim: d,
        })
    }

    /// `x`: `[T, hidden]` at absolute positions `start..start + T`.
    fn forward(
        &self,
        x: &Tensor,
        ctx: &StepCtx,
        cache: &mut Option<(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let t = x.dim(0)?;
        let split = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((1, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = Rope::apply(&split(self.q.forward(x)?, self.heads)?, &ctx.cos, &ctx.sin)?;
        let k = Rope::apply(
            &split(self.k.forward(x)?, self.kv_heads)?,
            &ctx.cos,
            &ctx.sin,
        )?;
        let v = split(self.v.forward(x)?, self.kv_heads)?;
        let (k, v) = match cache.take() {
            Some((ck, cv)) => (Tensor::cat(&[&ck, &k], 2)?, Tensor::cat(&[&cv, &v], 2)?),
            None => (k, v),
        };
        let k_len = k.dim(2)?;
        let k_start = ctx.start + t - k_len;
        let mask = window_mask(ctx.start, t, k_start, k_len, ctx.window, x.device())?;
        let rep = self.heads / self.kv_heads;
        let (kr, vr) = (repeat_kv(&k, rep)?, repeat_kv(&v, rep)?);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&kr.t()?)? * scale)?.broadcast_add(&mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let y = probs.matmul(&vr)?; // [1, heads, T, D]
        let y = y
            .transpose(1, 2)?
            .reshape((t, self.heads * self.head_dim))?;
        // Keep what the next chunk's first query can still see: the last window − 1 positions.
        let keep = ctx.window.map_or(k_len, |w| k_len.min(w - 1));
        *cache = Some((
            k.narrow(2, k_len - keep, keep)?.contiguous()?,
            v.narrow(2, k_len - keep, keep)?.contiguous()?,
        ));
        self.o.forward(&y)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Mlp {
    fn load(vb: VarBuilder, hidden: usize, inter: usize) -> Result<Self> {
        Ok(Self {
            gate: Linear::load(vb.pp("gate_proj"), hidden, inter, false)?,
            up: Linear::load(vb.pp("up_proj"), hidden, inter, false)?,
            down: Linear::load(vb.pp("down_proj"), inter, hidden, false)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = candle_nn::ops::silu(&self.gate.forward(x)?)?;
        self.down.forward(&(g * self.up.forward(x)?)?)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    input_norm: RmsNorm,
    attn: Attention,
    attn_scale: Tensor,
    post_norm: RmsNorm,
    mlp: Mlp,
    mlp_scale: Tensor,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &DecoderConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            input_norm: RmsNorm::load(vb.pp("input_layernorm"), h, cfg.rms_norm_eps)?,
            attn: Attention::load(vb.pp("self_attn"), cfg)?,
            attn_scale: vb.pp("self_attn_layer_scale").get(h, "scale")?,
            post_norm: RmsNorm::load(vb.pp("post_attention_layernorm"), h, cfg.rms_norm_eps)?,
            mlp: Mlp::load(vb.pp("mlp"), h, cfg.intermediate_size)?,
            mlp_scale: vb.pp("mlp_layer_scale").get(h, "scale")?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        ctx: &StepCtx,
        cache: &mut Option<(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let a = self
            .attn
            .forward(&self.input_norm.forward(x)?, ctx, cache)?;
        let x = (x + a.broadcast_mul(&self.attn_scale)?)?;
        let m = self.mlp.forward(&self.post_norm.forward(&x)?)?;
        Ok((x + m.broadcast_mul(&self.mlp_scale)?)?)
    }
}

/// What every layer needs for one chunk.
struct StepCtx {
    start: usize,
    window: Option<usize>,
    cos: Tensor,
    sin: Tensor,
}

#[derive(Debug, Clone)]
pub(crate) struct PreTransformer {
    input_proj: Linear,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output_proj: Linear,
    rope: Rope,
    window: Option<usize>,
}

impl PreTransformer {
    /// `vb` at `decoder.pre_transformer`.
    pub(crate) fn load(vb: VarBuilder, cfg: &DecoderConfig) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("layers.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            input_proj: Linear::load(vb.pp("input_proj"), cfg.latent_dim, cfg.hidden_size, true)?,
            layers,
            norm: RmsNorm::load(vb.pp("norm"), cfg.hidden_size, cfg.rms_norm_eps)?,
            output_proj: Linear::load(vb.pp("output_proj"), cfg.hidden_size, cfg.latent_dim, true)?,
            rope: Rope::new(cfg.head_dim(), cfg.rope_theta),
            window: cfg.sliding_window,
        })
    }

    pub(crate) fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// `x`: `[T, latent]` for the frames at positions `st.frames..st.frames + T` → `[T, latent]`.
    pub(crate) fn forward(&self, x: &Tensor, st: &mut DecoderState) -> Result<Tensor> {
        let t = x.dim(0)?;
        let (cos, sin) = self.rope.tables(st.frames, t, x.device())?;
        let ctx = StepCtx {
            start: st.frames,
            window: self.window,
            cos,
            sin,
        };
        let mut h = self.input_proj.forward(x)?;
        for (layer, cache) in self.layers.iter().zip(st.kv.iter_mut()) {
            h = layer.forward(&h, &ctx, cache)?;
        }
        self.output_proj.forward(&self.norm.forward(&h)?)
    }
}
