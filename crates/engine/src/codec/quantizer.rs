//! Residual vector quantizers. [`DecoderQuantizer`] turns 16 code groups into the decoder's
//! latent (`rvq_first` for the semantic group(s), `rvq_rest` for the acoustic ones, each summed
//! and projected by a bias-free 1×1 conv). [`MimiQuantizer`] is the encoder's split RVQ: the
//! semantic and the acoustic quantizer each project the *same* embedding, then pick the nearest
//! codeword stage by stage on the running residual.
//!
//! A codebook's vectors are `embedding_sum / max(cluster_usage, 1e-5)`.

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::Result;

const USAGE_EPS: f64 = 1e-5;

/// One codebook, `[size, dim]`.
#[derive(Debug, Clone)]
pub(crate) struct Codebook {
    embed: Tensor,
}

impl Codebook {
    fn load(vb: VarBuilder, size: usize, dim: usize, sum_name: &str) -> Result<Self> {
        let sum = vb.get((size, dim), sum_name)?;
        let usage = vb.get(size, "cluster_usage")?;
        let usage = usage.clamp(USAGE_EPS, f64::INFINITY)?.reshape((size, 1))?;
        Ok(Self {
            embed: sum.broadcast_div(&usage)?,
        })
    }

    /// `[T]` u32 indices → `[T, dim]`.
    fn lookup(&self, idx: &Tensor) -> Result<Tensor> {
        Ok(self.embed.index_select(idx, 0)?)
    }
}

/// A bias-free 1×1 conv `[out, in, 1]`, applied to time-major `[T, in]` rows.
#[derive(Debug, Clone)]
struct Proj {
    /// `[in, out]`.
    wt: Tensor,
}

impl Proj {
    fn load(vb: VarBuilder, c_in: usize, c_out: usize) -> Result<Self> {
        let w = vb.get((c_out, c_in, 1), "weight")?;
        Ok(Self {
            wt: w.squeeze(2)?.t()?.contiguous()?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.wt)?)
    }
}

/// The decoder side: codes `[T, groups]` → latent `[T, codebook_dim]`.
#[derive(Debug, Clone)]
pub(crate) struct DecoderQuantizer {
    first: Vec<Codebook>,
    first_proj: Proj,
    rest: Vec<Codebook>,
    rest_proj: Proj,
}

impl DecoderQuantizer {
    /// `vb` at `decoder.quantizer`.
    pub(crate) fn load(vb: VarBuilder, cfg: &super::DecoderConfig) -> Result<Self> {
        let (size, dim) = (cfg.codebook_size, cfg.codebook_dim / 2);
        let books = |vb: VarBuilder, n: usize| -> Result<Vec<Codebook>> {
            (0..n)
                .map(|i| {
                    Codebook::load(
                        vb.pp(format!("vq.layers.{i}._codebook")),
                        size,
                        dim,
                        "embedding_sum",
                    )
                })
                .collect()
        };
        let n_first = cfg.num_semantic_quantizers;
        let first = books(vb.pp("rvq_first"), n_first)?;
        let rest = books(vb.pp("rvq_rest"), cfg.num_quantizers - n_first)?;
        let first_proj = Proj::load(vb.pp("rvq_first.output_proj"), dim, cfg.codebook_dim)?;
        let rest_proj = Proj::load(vb.pp("rvq_rest.output_proj"), dim, cfg.codebook_dim)?;
        Ok(Self {
            first,
            first_proj,
            rest,
            rest_proj,
        })
    }

    /// `codes`: `[T, groups]` u32, already range-checked. Returns `[T, codebook_dim]`.
    pub(crate) fn decode(&self, codes: &Tensor) -> Result<Tensor> {
        let sum = |books: &[Codebook], offset: usize| -> Result<Tensor> {
            let mut acc: Option<Tensor> = None;
            for (i, b) in books.iter().enumerate() {
                let e = b.lookup(&codes.narrow(1, offset + i, 1)?.squeeze(1)?.contiguous()?)?;
                acc = Some(match acc {
                    Some(a) => (a + e)?,
                    None => e,
                });
            }
            acc.ok_or_else(|| {
                crate::Error::InvalidRequest("a residual quantizer without codebooks".into())
            })
        };
        let first = self.first_proj.forward(&sum(&self.first, 0)?)?;
        let rest = self
            .rest_proj
            .forward(&sum(&self.rest, self.first.len())?)?;
        Ok((first + rest)?)
    }
}

/// One Mimi residual vector quantizer (semantic or acoustic).
#[derive(Debug, Clone)]
struct MimiRvq {
    input_proj: Proj,
    layers: Vec<(Codebook, Tensor)>,
}

impl MimiRvq {
    fn load(vb: VarBuilder, hidden: usize, vq_dim: usize, size: usize, n: usize) -> Result<Self> {
        let input_proj = Proj::load(vb.pp("input_proj"), hidden, vq_dim)?;
        let layers = (0..n)
            .map(|i| {
                let cb = Codebook::load(
                    vb.pp(format!("layers.{i}.codebook")),
                    size,
                    vq_dim,
                    "embed_sum",
                )?;
                let norms = cb.embed.sqr()?.sum_keepdim(1)?.t()?.contiguous()?; // [1, size]
                Ok((cb, norms))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { input_proj, layers })
    }

    /// `x`: `[T, hidden]` → indices per stage, `n_q` vectors of length T.
    fn encode(&self, x: &Tensor, n_q: usize) -> Result<Vec<Vec<u32>>> {
        let mut residual = self.input_proj.forward(x)?;
        let mut out = Vec::with_capacity(n_q);
        for (cb, norms) in self.layers.iter().take(n_q) {
            // ‖x‖² + ‖e‖² − 2 x·e, the way torch.cdist computes it for large inputs.
            let xn = residual.sqr()?.sum_keepdim(1)?;
            let d = residual
                .matmul(&cb.embed.t()?)?
                .affine(-2.0, 0.0)?
                .broadcast_add(&xn)?
                .broadcast_add(norms)?;
            let idx = argmin_rows(&d)?;
            let picked = cb.lookup(&Tensor::new(idx.as_slice(), x.device())?)?;
            residual = (residual - picked)?;
            out.push(idx);
        }
        Ok(out)
    }
}

/// Row-wise argmin (the first index among equal minima, as torch does).
fn argmin_rows(d: &Tensor) -> Result<Vec<u32>> {
    let rows = d.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    Ok(rows
        .iter()
        .map(|r| {
            let mut best = 0usize;
            for (i, v) in r.iter().enumerate() {
                if *v < r[best] {
                    best = i;
                }
            }
            best as u32
        })
        .collect())
}

/// The Mimi split RVQ: `num_semantic_quantizers` semantic stages, then acoustic stages.
#[derive(Debug, Clone)]
pub(crate) struct MimiQuantizer {
    semantic: MimiRvq,
    acoustic: MimiRvq,
    n_semantic: usize,
}

impl MimiQuantizer {
    /// `vb` at `encoder.quantizer`.
    pub(crate) fn load(vb: VarBuilder, cfg: &super::EncoderConfig) -> Result<Self> {
        let n_sem = cfg.num_semantic_quantizers;
        let (h, d, size) = (cfg.hidden_size, cfg.vq_dim(), cfg.codebook_size);
        let semantic = MimiRvq::load(
            vb.pp("semantic_residual_vector_quantizer"),
            h,
            d,
            size,
            n_sem,
        )?;
        let acoustic = MimiRvq::load(
            vb.pp("acoustic_residual_vector_quantizer"),
            h,
            d,
            size,
            cfg.num_quantizers - n_sem,
        )?;
        Ok(Self {
            semantic,
            acoustic,
            n_semantic: n_sem,
        })
    }

    /// `x`: `[T, hidden]` → `n_q` code vectors (group-major), each of length T.
    pub(crate) fn encode(&self, x: &Tensor, n_q: usize) -> Result<Vec<Vec<u32>>> {
        let mut codes = self.semantic.encode(x, n_q.min(self.n_semantic))?;
        if n_q > self.n_semantic {
            codes.extend(self.acoustic.encode(x, n_q - self.n_semantic)?);
        }
        Ok(codes)
    }
}
