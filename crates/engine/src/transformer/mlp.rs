//! SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`, no biases.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::fast_linear::{linear_no_bias, Linear, WeightFormat};

#[derive(Clone, Debug)]
pub struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    pub fn load(
        hidden: usize,
        intermediate: usize,
        vb: VarBuilder,
        format: WeightFormat,
    ) -> Result<Self> {
        Ok(Self {
            gate_proj: linear_no_bias(hidden, intermediate, vb.pp("gate_proj"), format)?,
            up_proj: linear_no_bias(hidden, intermediate, vb.pp("up_proj"), format)?,
            down_proj: linear_no_bias(intermediate, hidden, vb.pp("down_proj"), format)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = candle_nn::ops::silu(&self.gate_proj.forward(x)?)?;
        self.down_proj.forward(&(g * self.up_proj.forward(x)?)?)
    }
}
