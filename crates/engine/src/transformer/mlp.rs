//! SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`, no biases.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::fast_linear::{linear_no_bias, linear_stacked, Linear, WeightFormat};

#[derive(Clone, Debug)]
pub struct Mlp {
    /// `gate_proj` and `up_proj` stacked: one product per step.
    gate_up_proj: Linear,
    down_proj: Linear,
    intermediate: usize,
}

impl Mlp {
    pub fn load(
        hidden: usize,
        intermediate: usize,
        vb: VarBuilder,
        format: WeightFormat,
    ) -> Result<Self> {
        Ok(Self {
            gate_up_proj: linear_stacked(
                hidden,
                &[
                    (intermediate, vb.pp("gate_proj")),
                    (intermediate, vb.pp("up_proj")),
                ],
                false,
                format,
            )?,
            down_proj: linear_no_bias(intermediate, hidden, vb.pp("down_proj"), format)?,
            intermediate,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gu = self.gate_up_proj.forward(x)?;
        let last = gu.rank() - 1;
        let i = self.intermediate;
        let g = candle_nn::ops::silu(&gu.narrow(last, 0, i)?)?;
        self.down_proj.forward(&(g * gu.narrow(last, i, i)?)?)
    }
}
