//! The Mimi encoder (`encoder.*`, a `transformers.MimiModel` without its decoder): SEANet
//! convolutions (causal, strides = reversed `upsampling_ratios`, ELU, residual blocks) → a
//! transformer (LayerNorm, sliding-window attention with NeoX RoPE, GELU MLP, LayerScale) →
//! a stride-2 downsample conv (replicate padding) → the split RVQ's nearest-codeword search.
//! Used once per reference clip, so it runs one-shot; attention is computed in query blocks so
//! its cost stays proportional to length × window.

use candle_core::{Device, Module, Tensor};
use candle_nn::{linear_no_bias, Linear, VarBuilder};

use super::quantizer::MimiQuantizer;
use super::rope::{repeat_kv, window_mask, Rope};
use super::EncoderConfig;
use crate::Result;

/// Queries per attention block in the encoder transformer.
const QUERY_BLOCK: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pad {
    Zeros,
    Replicate,
}

/// `MimiConv1d` in causal mode: left pad `k_eff − stride`, right pad up to a whole last frame.
#[derive(Debug, Clone)]
struct MimiConv1d {
    weight: Tensor,
    /// `[k, C_out, C_in]` for the CPU kernel.
    taps: Tensor,
    /// `[C_out]` (zeros for a bias-free conv).
    bias: Tensor,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: Pad,
}

impl MimiConv1d {
    #[allow(clippy::too_many_arguments)]
    fn load(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        bias: bool,
        pad: Pad,
    ) -> Result<Self> {
        let vb = vb.pp("conv");
        let weight = vb.get((c_out, c_in, kernel), "weight")?;
        let taps = weight.permute((2, 0, 1))?.contiguous()?;
        let bias = if bias {
            vb.get(c_out, "bias")?
        } else {
            Tensor::zeros(c_out, weight.dtype(), weight.device())?
        };
        Ok(Self {
            weight,
            taps,
            bias,
            kernel,
            stride,
            dilation,
            pad,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let len = x.dim(2)?;
        let k_eff = (self.kernel - 1) * self.dilation + 1;
        let left = k_eff - self.stride;
        let right = len.div_ceil(self.stride) * self.stride - len;
        let x = match self.pad {
            Pad::Zeros => x.pad_with_zeros(2, left, right)?,
            Pad::Replicate => x.pad_with_same(2, left, right)?,
        };
        let x = x.contiguous()?;
        if let Some(y) = super::cpu::conv1d(&x, &self.taps, &self.bias, self.dilation, self.stride)
        {
            return y;
        }
        let y = x.conv1d(&self.weight, 0, self.stride, self.dilation, 1)?;
        Ok(y.broadcast_add(&self.bias.reshape((1, (), 1))?)?)
    }
}

/// `x + conv(ELU(conv(ELU(x))))` (identity shortcut).
#[derive(Debug, Clone)]
struct ResnetBlock {
    conv1: MimiConv1d,
    conv2: MimiConv1d,
}

impl ResnetBlock {
    fn load(vb: VarBuilder, cfg: &EncoderConfig, dim: usize, dilation: usize) -> Result<Self> {
        let hidden = dim / cfg.compress;
        let vb = vb.pp("block");
        Ok(Self {
            conv1: MimiConv1d::load(
                vb.pp(1),
                dim,
                hidden,
                cfg.residual_kernel_size,
                1,
                dilation,
                true,
                Pad::Zeros,
            )?,
            conv2: MimiConv1d::load(vb.pp(3), hidden, dim, 1, 1, 1, true, Pad::Zeros)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv1.forward(&x.elu(1.0)?)?;
        let y = self.conv2.forward(&y.elu(1.0)?)?;
        Ok((x + y)?)
    }
}

#[derive(Debug, Clone)]
enum SeanetLayer {
    Conv(MimiConv1d),
    Res(ResnetBlock),
    Elu,
}

/// The SEANet encoder: `[1, 1, samples]` → `[1, hidden, frames at 25 Hz]`.
#[derive(Debug, Clone)]
struct Seanet {
    layers: Vec<SeanetLayer>,
}

impl Seanet {
    fn load(vb: VarBuilder, cfg: &EncoderConfig) -> Result<Self> {
        let vb = vb.pp("layers");
        let mut layers = Vec::new();
        let conv = |i: usize, c_in, c_out, k, s| {
            MimiConv1d::load(vb.pp(i), c_in, c_out, k, s, 1, true, Pad::Zeros)
        };
        layers.push(SeanetLayer::Conv(conv(
            0,
            cfg.audio_channels,
            cfg.num_filters,
            cfg.kernel_size,
            1,
        )?));
        let mut scale = 1;
        for &ratio in cfg.upsampling_ratios.iter().rev() {
            let dim = scale * cfg.num_filters;
            for j in 0..cfg.num_residual_layers {
                let dilation = cfg.dilation_growth_rate.pow(j as u32);
                layers.push(SeanetLayer::Res(ResnetBlock::load(
                    vb.pp(layers.len()),
                    cfg,
                    dim,
                    dilation,
                )?));
            }
            layers.push(SeanetLayer::Elu);
            layers.push(SeanetLayer::Conv(conv(
                layers.len(),
                dim,
                dim * 2,
                ratio * 2,
                ratio,
            )?));
            scale *= 2;
        }
        layers.push(SeanetLayer::Elu);
        let c_in = scale * cfg.num_filters;
        layers.push(SeanetLayer::Conv(conv(
            layers.len(),
            c_in,
            cfg.hidden_size,
            cfg.last_kernel_size,
            1,
        )?));
        Ok(Self { layers })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = match l {
                SeanetLayer::Conv(c) => c.forward(&h)?,
                SeanetLayer::Res(r) => r.forward(&h)?,
                SeanetLayer::Elu => h.elu(1.0)?,
            };
        }
        Ok(h)
    }
}

#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            bias: vb.get(dim, "bias")?,
            eps: eps as f32,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(
            x,
            &self.weight,
            &self.bias,
            self.eps,
        )?)
    }
}

#[derive(Debug, Clone)]
struct TransformerLayer {
    input_norm: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    attn_scale: Tensor,
    post_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    mlp_scale: Tensor,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl TransformerLayer {
    fn load(vb: VarBuilder, cfg: &EncoderConfig) -> Result<Self> {
        let (h, d, n, kv) = (
            cfg.hidden_size,
            cfg.head_dim(),
            cfg.num_attention_heads,
            cfg.num_kv_heads(),
        );
        let att = vb.pp("self_attn");
        Ok(Self {
            input_norm: LayerNorm::load(vb.pp("input_layernorm"), h, cfg.norm_eps)?,
            q: linear_no_bias(h, n * d, att.pp("q_proj"))?,
            k: linear_no_bias(h, kv * d, att.pp("k_proj"))?,
            v: linear_no_bias(h, kv * d, att.pp("v_proj"))?,
            o: linear_no_bias(n * d, h, att.pp("o_proj"))?,
            attn_scale: vb.pp("self_attn_layer_scale").get(h, "scale")?,
            post_norm: LayerNorm::load(vb.pp("post_attention_layernorm"), h, cfg.norm_eps)?,
            fc1: linear_no_bias(h, cfg.intermediate_size, vb.pp("mlp").pp("fc1"))?,
            fc2: linear_no_bias(cfg.intermediate_size, h, vb.pp("mlp").pp("fc2"))?,
            mlp_scale: vb.pp("mlp_layer_scale").get(h, "scale")?,
            heads: n,
            kv_heads: kv,
            head_dim: d,
        })
    }

    /// `x`: `[T, hidden]` at positions `0..T`.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        window: Option<usize>,
    ) -> Result<Tensor> {
        let t = x.dim(0)?;
        let h = self.input_norm.forward(x)?;
        let split = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((1, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = Rope::apply(&split(self.q.forward(&h)?, self.heads)?, cos, sin)?;
        let rep = self.heads / self.kv_heads;
        let k = repeat_kv(
            &Rope::apply(&split(self.k.forward(&h)?, self.kv_heads)?, cos, sin)?,
            rep,
        )?;
        let v = repeat_kv(&split(self.v.forward(&h)?, self.kv_heads)?, rep)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut outs = Vec::new();
        let mut a = 0;
        while a < t {
            let b = (a + QUERY_BLOCK).min(t);
            let k0 = window.map_or(0, |w| (a + 1).saturating_sub(w));
            let mask = window_mask(a, b - a, k0, b - k0, window, x.device())?;
            let qb = q.narrow(2, a, b - a)?;
            let (kb, vb) = (k.narrow(2, k0, b - k0)?, v.narrow(2, k0, b - k0)?);
            let s = (qb.matmul(&kb.t()?)? * scale)?.broadcast_add(&mask)?;
            outs.push(candle_nn::ops::softmax_last_dim(&s)?.matmul(&vb)?);
            a = b;
        }
        let y = Tensor::cat(&outs, 2)?
            .transpose(1, 2)?
            .reshape((t, self.heads * self.head_dim))?;
        let x = (x + self.o.forward(&y)?.broadcast_mul(&self.attn_scale)?)?;
        let m = self
            .fc2
            .forward(&self.fc1.forward(&self.post_norm.forward(&x)?)?.gelu_erf()?)?;
        Ok((x + m.broadcast_mul(&self.mlp_scale)?)?)
    }
}

/// The Mimi encoder, ending in codes.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    seanet: Seanet,
    layers: Vec<TransformerLayer>,
    rope: Rope,
    window: Option<usize>,
    downsample: MimiConv1d,
    quantizer: MimiQuantizer,
}

impl Encoder {
    /// `vb` at `encoder`.
    pub(crate) fn load(vb: VarBuilder, cfg: &EncoderConfig) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| TransformerLayer::load(vb.pp("encoder_transformer.layers").pp(i), cfg))
            .collect::<Result<Vec<_>>>()?;
        let h = cfg.hidden_size;
        Ok(Self {
            seanet: Seanet::load(vb.pp("encoder"), cfg)?,
            layers,
            rope: Rope::new(cfg.head_dim(), cfg.rope_theta),
            window: cfg.sliding_window,
            downsample: MimiConv1d::load(
                vb.pp("downsample"),
                h,
                h,
                cfg.downsample_kernel(),
                2,
                1,
                false,
                Pad::Replicate,
            )?,
            quantizer: MimiQuantizer::load(vb.pp("quantizer"), cfg)?,
        })
    }

    /// 24 kHz samples → `n_q` code groups (group-major), one code per 12.5 Hz frame.
    pub(crate) fn encode(&self, wav: &[f32], n_q: usize, device: &Device) -> Result<Vec<Vec<u32>>> {
        let x = Tensor::from_slice(wav, (1, 1, wav.len()), device)?;
        let h = self.seanet.forward(&x)?; // [1, hidden, T]
        let t = h.dim(2)?;
        let (cos, sin) = self.rope.tables(0, t, device)?;
        let mut h = h.squeeze(0)?.t()?.contiguous()?; // [T, hidden]
        for l in &self.layers {
            h = l.forward(&h, &cos, &sin, self.window)?;
        }
        let h = self
            .downsample
            .forward(&h.t()?.unsqueeze(0)?.contiguous()?)?; // [1, hidden, T/2]
        self.quantizer
            .encode(&h.squeeze(0)?.t()?.contiguous()?, n_q)
    }
}
