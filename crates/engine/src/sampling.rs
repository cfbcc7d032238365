//! Token choice, in the reference's order: the talker's logits processors (repetition penalty on
//! distinct generated codebook-0 tokens, EOS blocked for the first `min_new_tokens` steps, codec
//! ids >= vocab-1024 suppressed except EOS), then the warpers (temperature, top-k, top-p), then
//! greedy argmax or a draw from the session's own seeded RNG.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How one model (talker or code predictor) picks a token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerParams {
    pub do_sample: bool,
    pub temperature: f32,
    /// 0 disables top-k.
    pub top_k: usize,
    /// 1.0 disables top-p.
    pub top_p: f32,
}

impl SamplerParams {
    pub fn greedy() -> Self {
        Self {
            do_sample: false,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        }
    }
}

/// The talker's logits processors.
#[derive(Clone, Debug, PartialEq)]
pub struct TalkerRules {
    pub eos: u32,
    pub vocab: usize,
    pub repetition_penalty: f32,
    pub min_new_tokens: usize,
    /// Block EOS at every step (fixed-length benchmarks).
    pub suppress_eos: bool,
}

impl TalkerRules {
    /// Apply the processors to `scores` at decode step `step`, given the codebook-0 tokens
    /// generated so far.
    pub fn apply(&self, scores: &mut [f32], step: usize, history: &[u32]) {
        if self.repetition_penalty != 1.0 {
            let mut seen = vec![false; scores.len()];
            for &t in history {
                let t = t as usize;
                if t < scores.len() && !seen[t] {
                    seen[t] = true;
                    let s = scores[t];
                    scores[t] = if s < 0.0 {
                        s * self.repetition_penalty
                    } else {
                        s / self.repetition_penalty
                    };
                }
            }
        }
        let eos = self.eos as usize;
        if (step < self.min_new_tokens || self.suppress_eos) && eos < scores.len() {
            scores[eos] = f32::NEG_INFINITY;
        }
        let start = self.vocab.saturating_sub(1024);
        for (i, s) in scores.iter_mut().enumerate().take(self.vocab).skip(start) {
            if i != eos {
                *s = f32::NEG_INFINITY;
            }
        }
    }
}

/// The sampling warpers (temperature, top-k, top-p), applied only when sampling.
pub fn warp(scores: &mut [f32], p: &SamplerParams) {
    if !p.do_sample {
        return;
    }
    if p.temperature != 1.0 {
        for s in scores.iter_mut() {
            *s /= p.temperature;
        }
    }
    if p.top_k > 0 {
        top_k(scores, p.top_k);
    }
    if p.top_p < 1.0 {
        top_p(scores, p.top_p);
    }
}

/// Keep the `k` highest scores (and anything tied with the k-th); the rest become -inf.
fn top_k(scores: &mut [f32], k: usize) {
    let k = k.min(scores.len());
    if k == 0 {
        return;
    }
    let mut sorted: Vec<f32> = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    for s in scores.iter_mut() {
        if *s < kth {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// Nucleus filter as HF's TopPLogitsWarper: drop the low tail whose cumulative probability is
/// at most 1 - top_p, always keeping the best token.
fn top_p(scores: &mut [f32], top_p: f32) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b])); // ascending
    let probs = softmax(&order.iter().map(|&i| scores[i]).collect::<Vec<_>>());
    let mut cum = 0.0f64;
    let last = order.len().saturating_sub(1);
    let mut remove = Vec::new();
    for (rank, (&i, p)) in order.iter().zip(&probs).enumerate() {
        cum += *p;
        if cum <= (1.0 - top_p as f64) && rank != last {
            remove.push(i);
        }
    }
    for i in remove {
        scores[i] = f32::NEG_INFINITY;
    }
}

fn softmax(scores: &[f32]) -> Vec<f64> {
    let max = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = scores.iter().map(|&s| ((s as f64) - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
}

/// Greedy argmax (first maximum) or a draw from softmax(scores).
pub fn choose(scores: &[f32], p: &SamplerParams, rng: &mut ChaCha8Rng) -> u32 {
    if !p.do_sample {
        return argmax(scores);
    }
    let probs = softmax(scores);
    if probs.iter().any(|x| !x.is_finite()) {
        return argmax(scores);
    }
    let u: f64 = rng.random::<f64>();
    let mut cum = 0.0;
    let mut last_nonzero = 0;
    for (i, q) in probs.iter().enumerate() {
        if *q > 0.0 {
            last_nonzero = i;
        }
        cum += q;
        if u < cum && *q > 0.0 {
            return i as u32;
        }
    }
    last_nonzero as u32
}

pub fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best as u32
}
