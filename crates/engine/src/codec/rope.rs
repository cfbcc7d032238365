//! Rotary position embedding in the NeoX ("rotate half") layout, as used by both codec
//! transformers: channel i pairs with channel i + d/2, frequency `theta^(-2i/d)`, and absolute
//! positions that keep counting across streamed chunks.

use candle_core::{Device, Tensor};

use crate::Result;

#[derive(Debug, Clone)]
pub(crate) struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    pub(crate) fn new(head_dim: usize, theta: f64) -> Self {
        let inv_freq = (0..head_dim / 2)
            .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
            .collect();
        Self { inv_freq }
    }

    /// cos and sin tables `[len, head_dim / 2]` for positions `start..start + len`.
    pub(crate) fn tables(
        &self,
        start: usize,
        len: usize,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for p in start..start + len {
            for f in &self.inv_freq {
                // The angle is rounded to f32 first, as the reference computes it.
                let a = (p as f32 * f) as f64;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        Ok((
            Tensor::from_vec(cos, (len, half), device)?,
            Tensor::from_vec(sin, (len, half), device)?,
        ))
    }

    /// `x`: `[1, heads, len, head_dim]` (contiguous).
    pub(crate) fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)?)
    }
}

/// Additive attention mask `[q_len, k_len]` (0 or −inf) for queries at absolute positions
/// `q_start..` and keys at `k_start..`: causal, and within `window` positions when given
/// (a query sees keys `j` with `i − window < j ≤ i`).
pub(crate) fn window_mask(
    q_start: usize,
    q_len: usize,
    k_start: usize,
    k_len: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let mut m = Vec::with_capacity(q_len * k_len);
    for i in 0..q_len {
        let qp = q_start + i;
        for j in 0..k_len {
            let kp = k_start + j;
            let visible = kp <= qp && window.is_none_or(|w| kp + w > qp);
            m.push(if visible { 0f32 } else { f32::NEG_INFINITY });
        }
    }
    Ok(Tensor::from_vec(m, (q_len, k_len), device)?)
}

/// Repeats key/value heads `[1, kv, L, D]` to `[1, kv · n_rep, L, D]` (grouped-query attention).
pub(crate) fn repeat_kv(x: &Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x.clone());
    }
    let (b, kv, l, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .broadcast_as((b, kv, n_rep, l, d))?
        .reshape((b, kv * n_rep, l, d))?)
}
