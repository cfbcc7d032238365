//! Rotary position embedding in the NeoX ("rotate_half") layout. The talker's MRoPE collapses to
//! this because TTS feeds identical t/h/w positions.

use candle_core::{DType, Device, Result, Tensor};

/// Inverse frequencies for one head width; cos/sin tables are built per call for the positions
/// actually used.
#[derive(Clone, Debug)]
pub struct Rotary {
    inv_freq: Vec<f32>,
}

impl Rotary {
    pub fn new(head_dim: usize, theta: f64) -> Self {
        let inv_freq = (0..head_dim / 2)
            .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
            .collect();
        Self { inv_freq }
    }

    /// cos and sin, each `[len, head_dim/2]`, for positions `offset..offset+len`.
    pub fn tables(
        &self,
        offset: usize,
        len: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for p in offset..offset + len {
            for f in &self.inv_freq {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (len, half), device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (len, half), device)?.to_dtype(dtype)?;
        Ok((cos, sin))
    }

    /// Rotate `x` `[1, heads, len, head_dim]` (contiguous) by the given tables.
    pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        candle_nn::rotary_emb::rope(x, cos, sin)
    }
}
