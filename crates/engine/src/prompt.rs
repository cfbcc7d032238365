//! Prompt embeddings (architecture brief §5): the dual-track prefill sequence (text track
//! T(x) = text_projection(text_embedding(x)) plus codec track C(x)), the trailing text fed one
//! position per decode step, and the pad vector, for every prompt mode: custom voice and voice
//! design (streaming / non-streaming text), in-context clone (streaming / non-streaming) and
//! x-vector-only clone.

use candle_core::{Result, Tensor};

use crate::code_predictor::CodePredictor;
use crate::config::{ModelConfig, CODE_GROUPS};
use crate::talker::Talker;

/// The speaker slot of the codec track.
#[derive(Clone, Debug)]
pub enum SpeakerSlot {
    None,
    /// A CustomVoice preset: its codec id.
    Preset(u32),
    /// A Base x-vector `[hidden]` from the speaker encoder.
    XVector(Tensor),
}

/// In-context cloning inputs.
#[derive(Clone, Debug)]
pub struct IclInputs {
    /// Token ids of `<|im_start|>assistant\n{ref_text}<|im_end|>\n`.
    pub ref_text_ids: Vec<u32>,
    /// The reference audio's codes.
    pub ref_codes: Vec<[u32; CODE_GROUPS]>,
}

/// Everything the prompt depends on, in token-id form.
#[derive(Clone, Debug)]
pub struct PromptInputs {
    /// Token ids of `<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n`.
    pub text_ids: Vec<u32>,
    /// Token ids of `<|im_start|>user\n{instruct}<|im_end|>\n`, embedded whole.
    pub instruct_ids: Option<Vec<u32>>,
    /// The codec language id (after any dialect override); `None` for "auto".
    pub language_id: Option<u32>,
    pub speaker: SpeakerSlot,
    pub non_streaming: bool,
    pub icl: Option<IclInputs>,
}

/// The talker's prefill input and the text it still has to consume.
#[derive(Clone, Debug)]
pub struct Prompt {
    /// `[L, hidden]`.
    pub prefill: Tensor,
    /// `[n, hidden]`: added to the decode-step inputs 0..n.
    pub trailing: Tensor,
    /// `[1, hidden]`: T(tts_pad), added once the trailing text is used up.
    pub pad: Tensor,
}

/// Template length around the text: 3 ids before (`<|im_start|>assistant\n`), 5 after.
const PREFIX: usize = 3;
const SUFFIX: usize = 5;

impl Prompt {
    pub fn build(
        cfg: &ModelConfig,
        talker: &Talker,
        cp: &CodePredictor,
        inp: &PromptInputs,
    ) -> Result<Prompt> {
        let tc = &cfg.talker_config;
        let ids = &inp.text_ids;
        if ids.len() < PREFIX + SUFFIX + 1 {
            candle_core::bail!(
                "the text template has {} tokens; the text itself is empty",
                ids.len()
            );
        }
        let specials = talker.embed_text(&[
            cfg.tts_pad_token_id,
            cfg.tts_bos_token_id,
            cfg.tts_eos_token_id,
        ])?;
        let pad = specials.narrow(0, 0, 1)?;
        let bos = specials.narrow(0, 1, 1)?;
        let eos = specials.narrow(0, 2, 1)?;
        let hidden = talker.hidden_size();

        let think: Vec<u32> = match inp.language_id {
            Some(l) => vec![
                tc.codec_think_id,
                tc.codec_think_bos_id,
                l,
                tc.codec_think_eos_id,
            ],
            None => vec![
                tc.codec_nothink_id,
                tc.codec_think_bos_id,
                tc.codec_think_eos_id,
            ],
        };
        let mut codec_parts = vec![talker.embed_codec(&think)?];
        match &inp.speaker {
            SpeakerSlot::None => {}
            SpeakerSlot::Preset(id) => codec_parts.push(talker.embed_codec(&[*id])?),
            SpeakerSlot::XVector(v) => {
                codec_parts.push(v.to_dtype(talker.dtype())?.reshape((1, hidden))?)
            }
        }
        codec_parts.push(talker.embed_codec(&[tc.codec_pad_id, tc.codec_bos_id])?);
        let codec = Tensor::cat(&codec_parts, 0)?;
        let n = codec.dim(0)?;

        let mut parts = Vec::new();
        if let Some(instruct) = &inp.instruct_ids {
            parts.push(talker.embed_text(instruct)?);
        }
        parts.push(talker.embed_text(&ids[..PREFIX])?);
        let text_track = Tensor::cat(&[repeat(&pad, n - 2)?, bos.clone()], 0)?;
        parts.push((text_track + codec.narrow(0, 0, n - 1)?)?);
        let codec_bos = codec.narrow(0, n - 1, 1)?;
        let text = &ids[PREFIX..ids.len() - SUFFIX];

        let trailing = if let Some(icl) = &inp.icl {
            let r = &icl.ref_text_ids;
            if r.len() < PREFIX + 2 {
                candle_core::bail!(
                    "the reference-text template has {} tokens; too short",
                    r.len()
                );
            }
            let mut both: Vec<u32> = r[PREFIX..r.len() - 2].to_vec();
            both.extend_from_slice(text);
            let tx = Tensor::cat(&[talker.embed_text(&both)?, eos.clone()], 0)?;
            let cx = Tensor::cat(
                &[
                    codec_bos.clone(),
                    frame_embeddings(talker, cp, &icl.ref_codes)?,
                ],
                0,
            )?;
            let (lt, lc) = (tx.dim(0)?, cx.dim(0)?);
            if inp.non_streaming {
                let cpad = talker.embed_codec(&vec![tc.codec_pad_id; lt])?;
                parts.push((tx + cpad)?);
                parts.push(cx.broadcast_add(&pad)?);
                pad.clone()
            } else if lt > lc {
                parts.push((tx.narrow(0, 0, lc)? + cx)?);
                tx.narrow(0, lc, lt - lc)?
            } else {
                let t = Tensor::cat(&[tx, repeat(&pad, lc - lt)?], 0)?;
                parts.push((t + cx)?);
                pad.clone()
            }
        } else if inp.non_streaming {
            let t = Tensor::cat(&[talker.embed_text(text)?, eos.clone()], 0)?;
            let cpad = talker.embed_codec(&vec![tc.codec_pad_id; t.dim(0)?])?;
            parts.push((t + cpad)?);
            parts.push((&pad + &codec_bos)?);
            pad.clone()
        } else {
            parts.push((talker.embed_text(&text[..1])? + &codec_bos)?);
            if text.len() > 1 {
                Tensor::cat(&[talker.embed_text(&text[1..])?, eos.clone()], 0)?
            } else {
                eos.clone()
            }
        };
        Ok(Prompt {
            prefill: Tensor::cat(&parts, 0)?,
            trailing,
            pad,
        })
    }
}

/// `n` copies of a `[1, hidden]` row.
fn repeat(row: &Tensor, n: usize) -> Result<Tensor> {
    let h = row.dim(1)?;
    row.broadcast_as((n, h))?.contiguous()
}

/// One vector per frame: `C(code0) + Σ_g code_predictor.codec_embedding[g-1](code_g)`.
pub fn frame_embeddings(
    talker: &Talker,
    cp: &CodePredictor,
    frames: &[[u32; CODE_GROUPS]],
) -> Result<Tensor> {
    let col = |g: usize| frames.iter().map(|f| f[g]).collect::<Vec<u32>>();
    let mut sum = talker.embed_codec(&col(0))?;
    for g in 1..CODE_GROUPS {
        sum = (sum + cp.embed(g, &col(g))?)?;
    }
    Ok(sum)
}
