//! [`Linear`]: `nn.Linear` for the talker and code-predictor stacks that sends batch-1 decode
//! steps (a few rows) to the CPU few-rows kernel (`codec::cpu::linear_rows`: one dot product
//! per output, parallel over output rows, each weight row read once), and everything else (the
//! prefill, bf16 weights, other devices) to candle's matmul. At batch 1 a step is bound by
//! reading the weights, and a general GEMM spends much of its time packing them.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::codec::cpu::{linear_rows, SMALL_ROWS};

#[derive(Clone, Debug)]
pub struct Linear {
    inner: candle_nn::Linear,
    bias_v: Option<Vec<f32>>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let bias_v = match &bias {
            Some(b) if b.dtype() == candle_core::DType::F32 => Some(b.to_vec1::<f32>()?),
            _ => None,
        };
        Ok(Self { inner: candle_nn::Linear::new(weight, bias), bias_v })
    }

    pub fn weight(&self) -> &Tensor {
        self.inner.weight()
    }

    /// The few-rows kernel for `[1, t, in]` or `[t, in]` with t ≤ `SMALL_ROWS` and f32 weights
    /// on the CPU; `None` where candle's matmul should run.
    fn few_rows(&self, x: &Tensor) -> Option<Result<Tensor>> {
        let dims = x.dims().to_vec();
        let (rows, k) = match dims.as_slice() {
            [1, t, k] | [t, k] => (*t, *k),
            _ => return None,
        };
        if rows > SMALL_ROWS || (self.inner.bias().is_some() && self.bias_v.is_none()) {
            return None;
        }
        let x2 = match x.reshape((rows, k)).and_then(|x| x.contiguous()) {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let y = linear_rows(&x2, self.inner.weight(), self.bias_v.as_deref())?;
        Some(y.map_err(to_candle).and_then(|y| {
            let out = y.dim(1)?;
            let mut shape = dims;
            *shape.last_mut().unwrap_or(&mut 0) = out;
            y.reshape(shape)
        }))
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.few_rows(x) {
            Some(y) => y,
            None => self.inner.forward(x),
        }
    }
}

fn to_candle(e: crate::Error) -> candle_core::Error {
    match e {
        crate::Error::Tensor(e) => e,
        other => candle_core::Error::Msg(other.to_string()),
    }
}

/// `candle_nn::linear_b` with this [`Linear`].
pub fn linear_b(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    let w = vb.get((out_dim, in_dim), "weight")?;
    let b = if bias { Some(vb.get(out_dim, "bias")?) } else { None };
    Linear::new(w, b)
}

/// `candle_nn::linear_no_bias` with this [`Linear`].
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    linear_b(in_dim, out_dim, false, vb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn few_rows_and_matmul_paths_agree() {
        let d = Device::Cpu;
        let w = Tensor::arange(0f32, 40.0 * 24.0, &d).unwrap().reshape((40, 24)).unwrap().sin().unwrap();
        let b = Tensor::arange(0f32, 40.0, &d).unwrap().affine(0.01, 0.0).unwrap();
        let lin = Linear::new(w.clone(), Some(b.clone())).unwrap();
        let plain = candle_nn::Linear::new(w, Some(b));
        for t in [1, 2, SMALL_ROWS, SMALL_ROWS + 3] {
            let x = Tensor::arange(0f32, (t * 24) as f32, &d).unwrap().reshape((1, t, 24)).unwrap().cos().unwrap();
            assert!(lin.few_rows(&x).is_some() == (t <= SMALL_ROWS));
            let got = lin.forward(&x).unwrap();
            let want = plain.forward(&x).unwrap();
            assert_eq!(got.dims(), &[1, t, 40]);
            let err = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(err < 1e-5, "t {t}: {err}");
        }
        let lin16 = Linear::new(lin.weight().to_dtype(DType::BF16).unwrap(), None).unwrap();
        let x = Tensor::zeros((1, 1, 24), DType::BF16, &d).unwrap();
        assert!(lin16.few_rows(&x).is_none(), "bf16 goes to candle");
    }
}
