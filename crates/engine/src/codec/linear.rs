//! [`Linear`]: a PyTorch `nn.Linear` (`weight` `[out, in]`, optional `bias`) that takes the CPU
//! few-rows kernel when a streamed chunk gives it only a handful of time steps (where a general
//! GEMM is dominated by packing the weight), and candle's matmul otherwise.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use crate::Result;

#[derive(Debug, Clone)]
pub(crate) struct Linear {
    inner: candle_nn::Linear,
    bias_v: Option<Vec<f32>>,
}

impl Linear {
    pub(crate) fn load(vb: VarBuilder, c_in: usize, c_out: usize, bias: bool) -> Result<Self> {
        let w = vb.get((c_out, c_in), "weight")?;
        let b = if bias {
            Some(vb.get(c_out, "bias")?)
        } else {
            None
        };
        let bias_v = match &b {
            Some(b) => Some(b.to_vec1::<f32>()?),
            None => None,
        };
        Ok(Self {
            inner: candle_nn::Linear::new(w, b),
            bias_v,
        })
    }

    /// `x`: `[rows, in]` → `[rows, out]`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(y) = super::cpu::linear_rows(
            &x.contiguous()?,
            self.inner.weight(),
            self.bias_v.as_deref(),
        ) {
            return y;
        }
        Ok(self.inner.forward(x)?)
    }
}
