//! The code predictor (`talker.code_predictor.*`, the "sub-talker"): given the talker's hidden
//! state and codebook-0 token, predicts codebooks 1..15 of one frame with its own small decoder
//! stack, a fresh KV cache per frame, one `lm_head` per codebook.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;

use crate::config::{TalkerConfig, CODE_GROUPS};
use crate::sampling::{choose, warp, SamplerParams};
use crate::transformer::{linear_b, linear_no_bias, DecoderStack, Linear, WeightFormat};

/// What one frame's prediction looked like, for fidelity tests.
#[derive(Clone, Debug, Default)]
pub struct FrameTrace {
    /// `[2, talker_hidden]`: the talker hidden state and C(c0).
    pub inputs: Option<Tensor>,
    /// Raw logits of each of the 15 heads.
    pub raw_logits: Vec<Vec<f32>>,
}

#[derive(Clone, Debug)]
pub struct CodePredictor {
    codec_embedding: Vec<Tensor>,
    projection: Option<Linear>,
    model: DecoderStack,
    lm_head: Vec<Linear>,
}

impl CodePredictor {
    /// Load from `talker.code_predictor`. `small_to_mtp_projection` exists only when the talker
    /// and code-predictor widths differ (1.7B); otherwise it is the identity, as in the reference.
    pub fn load(cfg: &TalkerConfig, vb: VarBuilder, format: WeightFormat) -> Result<Self> {
        let cp = &cfg.code_predictor_config;
        let (ht, hc) = (cfg.stack.hidden_size, cp.hidden_size);
        let m = vb.pp("model");
        let groups = CODE_GROUPS - 1;
        let codec_embedding = (0..groups)
            .map(|g| m.get((cp.vocab_size, ht), &format!("codec_embedding.{g}.weight")))
            .collect::<Result<Vec<_>>>()?;
        let lm_head = (0..groups)
            .map(|g| linear_no_bias(hc, cp.vocab_size, vb.pp(format!("lm_head.{g}")), format))
            .collect::<Result<Vec<_>>>()?;
        let projection = if ht != hc {
            Some(linear_b(
                ht,
                hc,
                true,
                vb.pp("small_to_mtp_projection"),
                format,
            )?)
        } else {
            None
        };
        Ok(Self {
            codec_embedding,
            projection,
            model: DecoderStack::load(cp, m, format)?,
            lm_head,
        })
    }

    pub fn has_projection(&self) -> bool {
        self.projection.is_some()
    }

    /// `code_predictor.model.codec_embedding[g-1](ids)` for codebook `g` in 1..16: `[n, talker_hidden]`.
    pub fn embed(&self, g: usize, ids: &[u32]) -> Result<Tensor> {
        let table = &self.codec_embedding[g - 1];
        let idx = Tensor::new(ids, table.device())?;
        table.index_select(&idx, 0)
    }

    fn project(&self, x: &Tensor) -> Result<Tensor> {
        match &self.projection {
            Some(p) => p.forward(x),
            None => Ok(x.clone()),
        }
    }

    /// Hidden states after the final norm for a whole input sequence `[1, t, talker_hidden]`
    /// (no cache reuse), and `lm_head[head]` logits on every position.
    pub fn forward_full(&self, x: &Tensor, head: usize) -> Result<(Tensor, Tensor)> {
        let mut caches = self.model.new_caches(x.dim(1)?);
        let h = self.model.forward(&self.project(x)?, &mut caches)?;
        let logits = self.lm_head[head].forward(&h)?;
        Ok((h, logits))
    }

    /// Codebooks 1..15 for one frame. `talker_hidden` and `c0_embed` are `[1, 1, talker_hidden]`.
    pub fn predict(
        &self,
        talker_hidden: &Tensor,
        c0_embed: &Tensor,
        params: &SamplerParams,
        rng: &mut ChaCha8Rng,
        mut trace: Option<&mut FrameTrace>,
    ) -> Result<[u32; CODE_GROUPS - 1]> {
        if let Some(t) = trace.as_deref_mut() {
            t.inputs = Some(Tensor::cat(&[talker_hidden, c0_embed], 1)?.squeeze(0)?);
        }
        self.run(talker_hidden, c0_embed, |_, logits| {
            if let Some(t) = trace.as_deref_mut() {
                t.raw_logits.push(logits.clone());
            }
            let mut scores = logits;
            warp(&mut scores, params);
            choose(&scores, params, rng)
        })
    }

    /// Teacher forcing: the raw logits of each of the 15 heads when `codes` (codebooks 1..15)
    /// are fed instead of sampled ones.
    pub fn forced_logits(
        &self,
        talker_hidden: &Tensor,
        c0_embed: &Tensor,
        codes: &[u32],
    ) -> Result<Vec<Vec<f32>>> {
        if codes.len() != CODE_GROUPS - 1 {
            candle_core::bail!("{} codes given for {} heads", codes.len(), CODE_GROUPS - 1);
        }
        let mut all = Vec::new();
        self.run(talker_hidden, c0_embed, |g, logits| {
            all.push(logits);
            codes[g]
        })?;
        Ok(all)
    }

    /// The 15 passes: `pick(head, raw logits)` chooses each code, which is fed to the next pass.
    fn run(
        &self,
        talker_hidden: &Tensor,
        c0_embed: &Tensor,
        mut pick: impl FnMut(usize, Vec<f32>) -> u32,
    ) -> Result<[u32; CODE_GROUPS - 1]> {
        // Two input positions plus one per fed code: exactly CODE_GROUPS positions.
        let mut caches = self.model.new_caches(CODE_GROUPS);
        let mut x = Tensor::cat(&[talker_hidden, c0_embed], 1)?;
        let mut codes = [0u32; CODE_GROUPS - 1];
        for (g, code) in codes.iter_mut().enumerate() {
            let h = self.model.forward(&self.project(&x)?, &mut caches)?;
            let last = h.narrow(1, h.dim(1)? - 1, 1)?;
            let logits: Vec<f32> = self.lm_head[g]
                .forward(&last)?
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1()?;
            *code = pick(g, logits);
            if g + 1 < CODE_GROUPS - 1 {
                x = self.embed(g + 1, &[*code])?.unsqueeze(0)?;
            }
        }
        Ok(codes)
    }
}
