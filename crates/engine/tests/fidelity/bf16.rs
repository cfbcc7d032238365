//! bf16 compute: the 0.6B-like checkpoint (bf16 shards) run in bf16 stays close to the f32 run
//! (the reference runs bf16 on GPU; fidelity is held in f32 elsewhere).

use candle_core::DType;
use q3tts_engine::{CancelToken, LoadOptions, Model, SynthesisRequest};

use crate::common::{model, model_dir, Fixture};
use crate::gen_fixtures::greedy;

#[test]
fn bf16_compute_runs_and_tracks_f32() {
    let opts = LoadOptions {
        dtype: DType::BF16,
        ..LoadOptions::default()
    };
    let m16 = Model::load(&model_dir("tiny-0b6-like"), &opts).unwrap();
    assert_eq!(m16.info().dtype, "bf16");
    let m32 = model("tiny-0b6-like");
    let fx = Fixture::load("text_to_wav_0b6_like");
    let req = SynthesisRequest {
        speaker: Some("vivian".into()),
        sampling: greedy(10),
        suppress_eos: true,
        chunk_frames: 3,
        ..SynthesisRequest::new(fx.meta["text"].as_str().unwrap())
    };
    // Prefill logits: bf16 rounding only.
    let logits = |m: &Model| {
        let plan = m.plan(&req).unwrap();
        let prompt = m
            .build_prompt(&m.prompt_inputs(&plan, &req).unwrap())
            .unwrap();
        let mut g = m.start_generation(&prompt, plan.params, true).unwrap();
        m.next_frame(&mut g).unwrap();
        g.trace.unwrap().talker_raw[0].clone()
    };
    let (a, b) = (logits(&m16), logits(&m32));
    let err = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let scale = b.iter().map(|x| x.abs()).fold(0f32, f32::max);
    println!("bf16 vs f32 prefill logits: max abs err {err:.3e} (max |logit| {scale:.3})");
    assert!(
        err < 0.05 * scale.max(1.0),
        "bf16 logits drift too far: {err}"
    );
    // A whole bf16 session yields the right amount of finite audio.
    let wav: Vec<f32> = m16
        .synthesize(&req, CancelToken::new())
        .unwrap()
        .flat_map(|c| flat_chunk(c.unwrap()))
        .collect();
    assert_eq!(wav.len(), 9 * 1920);
    assert!(wav.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
}

fn flat_chunk(c: q3tts_engine::AudioChunk) -> Vec<f32> {
    c.samples().to_vec()
}
