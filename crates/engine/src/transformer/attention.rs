//! Qwen3 self-attention: q/k/v projections (stacked into one product), per-head RMSNorm on q and k, RoPE, grouped-query
//! attention (causal) against a growing KV cache, output projection.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::kv_cache::KvCache;
use candle_nn::VarBuilder;

use super::fast_linear::{linear_b, linear_stacked, Linear, WeightFormat};

use super::norm::RmsNorm;
use super::rotary::Rotary;
use crate::config::StackConfig;

/// One layer's key/value cache, `[1, kv_heads, positions, head_dim]`, pre-allocated for
/// `capacity` positions and grown by that much whenever it fills up.
pub fn new_cache(capacity: usize) -> KvCache {
    KvCache::new(2, capacity.max(1))
}

#[derive(Clone, Debug)]
pub struct Attention {
    /// `q_proj`, `k_proj` and `v_proj` stacked: one product per step.
    qkv_proj: Linear,
    o_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    pub fn load(cfg: &StackConfig, vb: VarBuilder, format: WeightFormat) -> Result<Self> {
        let (h, d) = (cfg.hidden_size, cfg.head_dim());
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        let bias = cfg.attention_bias;
        Ok(Self {
            qkv_proj: linear_stacked(
                h,
                &[
                    (nh * d, vb.pp("q_proj")),
                    (nkv * d, vb.pp("k_proj")),
                    (nkv * d, vb.pp("v_proj")),
                ],
                bias,
                format,
            )?,
            o_proj: linear_b(nh * d, h, bias, vb.pp("o_proj"), format)?,
            q_norm: RmsNorm::load(d, cfg.rms_norm_eps, vb.pp("q_norm"))?,
            k_norm: RmsNorm::load(d, cfg.rms_norm_eps, vb.pp("k_norm"))?,
            heads: nh,
            kv_heads: nkv,
            head_dim: d,
        })
    }

    /// `x` is `[1, t, hidden]`; positions continue from what the cache already holds.
    pub fn forward(&self, x: &Tensor, rotary: &Rotary, cache: &mut KvCache) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        if b != 1 {
            candle_core::bail!("attention runs one sequence at a time (batch {b})");
        }
        let (nh, nkv, d) = (self.heads, self.kv_heads, self.head_dim);
        let offset = cache.current_seq_len();
        let qkv = self.qkv_proj.forward(x)?;
        let q = qkv.narrow(2, 0, nh * d)?.reshape((1, t, nh, d))?;
        let k = qkv.narrow(2, nh * d, nkv * d)?.reshape((1, t, nkv, d))?;
        let v = qkv
            .narrow(2, (nh + nkv) * d, nkv * d)?
            .reshape((1, t, nkv, d))?;
        let q = self.q_norm.forward(&q)?.transpose(1, 2)?.contiguous()?;
        let k = self.k_norm.forward(&k)?.transpose(1, 2)?.contiguous()?;
        let v = v.transpose(1, 2)?.contiguous()?;
        let (cos, sin) = rotary.tables(offset, t, q.dtype(), q.device())?;
        let q = Rotary::apply(&q, &cos, &sin)?;
        let k = Rotary::apply(&k, &cos, &sin)?;
        let (k, v) = cache.append(&k, &v)?;
        let total = k.dim(2)?;
        let rep = nh / nkv;
        // Query heads h = kv * rep + r share kv head `kv`: fold the rep heads into the rows.
        let q = q.reshape((nkv, rep * t, d))?;
        let k = k.squeeze(0)?;
        let v = v.squeeze(0)?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?.to_dtype(DType::F32)?;
        let scores = if t > 1 {
            let mask = causal_mask(t, offset, total, x.device())?;
            scores
                .reshape((nkv, rep, t, total))?
                .broadcast_add(&mask)?
                .reshape((nkv, rep * t, total))?
        } else {
            scores
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        let out = probs.matmul(&v)?; // [nkv, rep*t, d]
        let out = out
            .reshape((1, nh, t, d))?
            .transpose(1, 2)?
            .reshape((1, t, nh * d))?;
        self.o_proj.forward(&out)
    }
}

/// `[t, total]`: 0 where query `offset+i` may see key `j` (j <= offset+i), -inf elsewhere.
fn causal_mask(t: usize, offset: usize, total: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j <= offset + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (t, total), device)
}
