//! The frame loop (architecture brief §6.3): prefill, then per step choose codebook-0 from the
//! talker logits, stop on EOS, predict codebooks 1..15 with the code predictor, and feed the sum
//! of the frame's embeddings plus the next trailing-text vector back into the talker. N sampled
//! tokens give at most N-1 frames, as in the reference.

use std::time::Instant;

use candle_core::{DType, Tensor};
use candle_nn::kv_cache::KvCache;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::code_predictor::{CodePredictor, FrameTrace};
use crate::config::CODE_GROUPS;
use crate::prompt::{frame_embeddings, Prompt};
use crate::sampling::{choose, warp, SamplerParams, TalkerRules};
use crate::talker::Talker;
use crate::Result;

/// One 80 ms frame: codebook 0 (from the talker) then codebooks 1..15.
pub type Frame = [u32; CODE_GROUPS];

/// Everything that decides which tokens come out.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationParams {
    pub talker: SamplerParams,
    pub subtalker: SamplerParams,
    pub rules: TalkerRules,
    /// Talker steps; the last sampled token is never forwarded, so at most this minus one frames.
    pub max_new_tokens: usize,
    pub seed: u64,
}

/// Per-step internals recorded for fidelity tests.
#[derive(Clone, Debug, Default)]
pub struct GenerationTrace {
    /// Talker logits before the processors, one row per step.
    pub talker_raw: Vec<Vec<f32>>,
    /// After the processors and warpers.
    pub talker_scores: Vec<Vec<f32>>,
    /// The chosen codebook-0 tokens, including a final EOS or dropped token.
    pub talker_sequence: Vec<u32>,
    /// Per frame: the code predictor's inputs (talker hidden state, C(c0)) and raw logits.
    pub frames: Vec<FrameTrace>,
}

/// Time spent, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct GenTimes {
    pub prefill_ms: f64,
    pub talker_ms: f64,
    pub code_predictor_ms: f64,
}

/// The state of one utterance's generation.
pub struct Generator {
    caches: Vec<KvCache>,
    params: GenerationParams,
    rng: ChaCha8Rng,
    trailing: Tensor,
    pad: Tensor,
    /// Logits `[vocab]` (f32) and hidden `[1, 1, hidden]` of the last talker position.
    logits: Vec<f32>,
    hidden: Tensor,
    step: usize,
    history: Vec<u32>,
    finished: bool,
    pub times: GenTimes,
    pub trace: Option<GenerationTrace>,
}

impl Generator {
    /// Run the prefill.
    pub fn new(
        talker: &Talker,
        prompt: &Prompt,
        params: GenerationParams,
        trace: bool,
    ) -> Result<Self> {
        let t0 = Instant::now();
        let mut caches = talker.new_caches();
        let h = talker.forward(&prompt.prefill.unsqueeze(0)?, &mut caches)?;
        let last = h.narrow(1, h.dim(1)? - 1, 1)?;
        let logits = logits_vec(talker, &last)?;
        let rng = ChaCha8Rng::seed_from_u64(params.seed);
        Ok(Self {
            caches,
            rng,
            trailing: prompt.trailing.clone(),
            pad: prompt.pad.clone(),
            logits,
            hidden: last,
            step: 0,
            history: Vec::new(),
            finished: params.max_new_tokens == 0,
            params,
            times: GenTimes {
                prefill_ms: ms(t0),
                ..GenTimes::default()
            },
            trace: trace.then(GenerationTrace::default),
        })
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Next frame, or `None` once EOS was chosen or `max_new_tokens` ran out.
    pub fn next_frame(&mut self, talker: &Talker, cp: &CodePredictor) -> Result<Option<Frame>> {
        if self.finished {
            return Ok(None);
        }
        let mut scores = self.logits.clone();
        self.params
            .rules
            .apply(&mut scores, self.step, &self.history);
        warp(&mut scores, &self.params.talker);
        let c0 = choose(&scores, &self.params.talker, &mut self.rng);
        if let Some(t) = self.trace.as_mut() {
            t.talker_raw.push(self.logits.clone());
            t.talker_scores.push(scores);
            t.talker_sequence.push(c0);
        }
        self.history.push(c0);
        if c0 == self.params.rules.eos || self.step + 1 >= self.params.max_new_tokens {
            self.finished = true;
            return Ok(None);
        }

        let t0 = Instant::now();
        let c0_embed = talker.embed_codec(&[c0])?.unsqueeze(0)?;
        let mut ft = FrameTrace::default();
        let rest = cp.predict(
            &self.hidden,
            &c0_embed,
            &self.params.subtalker,
            &mut self.rng,
            self.trace.is_some().then_some(&mut ft),
        )?;
        if let Some(t) = self.trace.as_mut() {
            t.frames.push(ft);
        }
        let mut frame = [0u32; CODE_GROUPS];
        frame[0] = c0;
        frame[1..].copy_from_slice(&rest);
        self.times.code_predictor_ms += ms(t0);

        let t0 = Instant::now();
        let text = if self.step < self.trailing.dim(0)? {
            self.trailing.narrow(0, self.step, 1)?
        } else {
            self.pad.clone()
        };
        let x = (frame_embeddings(talker, cp, &[frame])? + text)?.unsqueeze(0)?;
        let h = talker.forward(&x, &mut self.caches)?;
        self.logits = logits_vec(talker, &h)?;
        self.hidden = h;
        self.step += 1;
        self.times.talker_ms += ms(t0);
        Ok(Some(frame))
    }
}

/// One teacher-forced step: the raw logits the model gave while `frame` was fed.
#[derive(Clone, Debug)]
pub struct ForcedStep {
    /// Talker logits before the frame was chosen (over the codec vocab).
    pub talker: Vec<f32>,
    /// Each code-predictor head's logits, with the frame's codes fed pass by pass.
    pub code_predictor: Vec<Vec<f32>>,
}

impl Generator {
    /// Teacher forcing: record this step's raw logits, then feed `frame` (instead of sampling
    /// one) to the code predictor and the talker. For comparing precisions step by step on the
    /// same token sequence.
    pub fn force_frame(
        &mut self,
        talker: &Talker,
        cp: &CodePredictor,
        frame: &Frame,
    ) -> Result<ForcedStep> {
        let c0_embed = talker.embed_codec(&[frame[0]])?.unsqueeze(0)?;
        let step = ForcedStep {
            talker: self.logits.clone(),
            code_predictor: cp.forced_logits(&self.hidden, &c0_embed, &frame[1..])?,
        };
        self.history.push(frame[0]);
        let text = if self.step < self.trailing.dim(0)? {
            self.trailing.narrow(0, self.step, 1)?
        } else {
            self.pad.clone()
        };
        let x = (frame_embeddings(talker, cp, &[*frame])? + text)?.unsqueeze(0)?;
        let h = talker.forward(&x, &mut self.caches)?;
        self.logits = logits_vec(talker, &h)?;
        self.hidden = h;
        self.step += 1;
        Ok(step)
    }
}

fn logits_vec(talker: &Talker, h: &Tensor) -> Result<Vec<f32>> {
    Ok(talker
        .logits(h)?
        .flatten_all()?
        .to_dtype(DType::F32)?
        .to_vec1()?)
}

fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}
