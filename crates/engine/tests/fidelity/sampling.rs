//! `sampling_processors_step0`: processed scores of step 0 at the real defaults (T=0.9, top-k
//! 50, top-p 1, repetition penalty 1.05, min_new_tokens 2) for the talker and the code predictor.

use q3tts_engine::sampling::warp;
use q3tts_engine::SynthesisRequest;

use crate::common::{assert_close, model, Fixture, TOL};

#[test]
fn processors_at_checkpoint_defaults() {
    let m = model("tiny-custom-voice");
    let fx = Fixture::load("sampling_processors_step0");
    // Defaults come from generation_config.json (sampling on).
    let p = m.generation_params(&SynthesisRequest::new("x")).unwrap();
    assert!(p.talker.do_sample && p.subtalker.do_sample);
    assert_eq!(
        (p.talker.temperature, p.talker.top_k, p.talker.top_p),
        (0.9, 50, 1.0)
    );

    let mut scores = fx.f32s("raw_logits");
    p.rules.apply(&mut scores, 0, &[]);
    warp(&mut scores, &p.talker);
    assert_close(
        "talker step-0 processed scores",
        &scores,
        &fx.f32s("processed_scores"),
        TOL,
    );
    let kept = scores.iter().filter(|s| s.is_finite()).count();
    assert_eq!(kept, 50, "top-k keeps 50 candidates");

    let mut cp = fx.f32s("cp_raw_logits_step0");
    warp(&mut cp, &p.subtalker);
    assert_close(
        "code predictor step-0 processed scores",
        &cp,
        &fx.f32s("cp_processed_scores_step0"),
        TOL,
    );
}

#[test]
fn repetition_penalty_counts_distinct_tokens_once() {
    let m = model("tiny-custom-voice");
    let p = m.generation_params(&SynthesisRequest::new("x")).unwrap();
    let mut s = vec![2.0f32; m.config().talker_config.stack.vocab_size];
    s[3] = -2.0;
    p.rules.apply(&mut s, 5, &[1, 1, 3, 1]);
    assert!(
        (s[1] - 2.0 / 1.05).abs() < 1e-6,
        "positive logit divided once: {}",
        s[1]
    );
    assert!(
        (s[3] + 2.0 * 1.05).abs() < 1e-6,
        "negative logit multiplied once: {}",
        s[3]
    );
    assert_eq!(s[0], 2.0);
    let eos = m.config().talker_config.codec_eos_token_id as usize;
    assert_eq!(s[eos], 2.0, "EOS allowed after min_new_tokens");
    let v = s.len();
    assert!(s[v - 1024..]
        .iter()
        .enumerate()
        .all(|(i, x)| i + v - 1024 == eos || x.is_infinite()));
}
