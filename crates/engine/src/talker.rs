//! The talker (`talker.*`): text embedding + `text_projection` MLP, codec embedding, the Qwen3
//! decoder stack and `codec_head` (logits over the codec vocab, codebook 0 plus specials).

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::kv_cache::KvCache;
use candle_nn::VarBuilder;

use crate::config::TalkerConfig;
use crate::transformer::{linear_b, linear_no_bias, DecoderStack, Linear, WeightFormat};

#[derive(Clone, Debug)]
pub struct Talker {
    text_embedding: Tensor,
    text_fc1: Linear,
    text_fc2: Linear,
    codec_embedding: Tensor,
    model: DecoderStack,
    codec_head: Linear,
    hidden: usize,
}

impl Talker {
    /// Load from the `talker` prefix of model.safetensors.
    pub fn load(cfg: &TalkerConfig, vb: VarBuilder) -> Result<Self> {
        Self::load_with(cfg, vb, None, WeightFormat::Float)
    }

    /// As [`Talker::load`], but keep the (large: 151936 rows) text-embedding table in
    /// `table_dtype` (e.g. the checkpoint's bf16) and convert only the rows looked up (upcasting
    /// bf16 to f32 is exact, so the results are the same as with an f32 table), and the linear
    /// layers' weights as `format` says.
    pub fn load_with(
        cfg: &TalkerConfig,
        vb: VarBuilder,
        table_dtype: Option<DType>,
        format: WeightFormat,
    ) -> Result<Self> {
        let h = cfg.stack.hidden_size;
        let th = cfg.text_hidden_size;
        let m = vb.pp("model");
        let tp = vb.pp("text_projection");
        let table_vb = match table_dtype {
            Some(d) => m.clone().set_dtype(d),
            None => m.clone(),
        };
        Ok(Self {
            text_embedding: table_vb.get((cfg.text_vocab_size, th), "text_embedding.weight")?,
            text_fc1: linear_b(th, th, true, tp.pp("linear_fc1"), format)?,
            text_fc2: linear_b(th, h, true, tp.pp("linear_fc2"), format)?,
            codec_embedding: m.get((cfg.stack.vocab_size, h), "codec_embedding.weight")?,
            model: DecoderStack::load(&cfg.stack, m.clone(), format)?,
            codec_head: linear_no_bias(h, cfg.stack.vocab_size, vb.pp("codec_head"), format)?,
            hidden: h,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// The dtype the text-embedding table is kept in (see [`Talker::load_with`]).
    pub fn text_table_dtype(&self) -> DType {
        self.text_embedding.dtype()
    }

    pub fn dtype(&self) -> DType {
        self.codec_embedding.dtype()
    }

    /// T(ids) = text_projection(text_embedding(ids)): `[n, hidden]`.
    pub fn embed_text(&self, ids: &[u32]) -> Result<Tensor> {
        let idx = Tensor::new(ids, self.text_embedding.device())?;
        let e = self
            .text_embedding
            .index_select(&idx, 0)?
            .to_dtype(self.dtype())?;
        let e = candle_nn::ops::silu(&self.text_fc1.forward(&e)?)?;
        self.text_fc2.forward(&e)
    }

    /// C(ids) = codec_embedding(ids): `[n, hidden]`.
    pub fn embed_codec(&self, ids: &[u32]) -> Result<Tensor> {
        let idx = Tensor::new(ids, self.codec_embedding.device())?;
        self.codec_embedding.index_select(&idx, 0)
    }

    /// Fresh KV caches; they start with room for 256 positions and grow in steps of 256.
    pub fn new_caches(&self) -> Vec<KvCache> {
        self.model.new_caches(256)
    }

    /// `[1, t, hidden]` input embeddings → final-norm hidden states `[1, t, hidden]`.
    pub fn forward(&self, x: &Tensor, caches: &mut [KvCache]) -> Result<Tensor> {
        self.model.forward(x, caches)
    }

    /// `codec_head` on hidden states.
    pub fn logits(&self, h: &Tensor) -> Result<Tensor> {
        self.codec_head.forward(h)
    }
}
