//! `--dtype int8`: 8-bit linear weights held to the fixed tolerance of issue 6. With the
//! reference's own frames fed (teacher forcing), the talker's and every code-predictor head's
//! logits keep a cosine similarity of at least 0.999 to the f32 model's at every step; and a
//! whole int8 session gives the right amount of finite audio.

use candle_core::DType;
use q3tts_engine::{CancelToken, LoadOptions, Model, SynthesisRequest, WeightFormat};

use crate::common::{model, model_dir, Fixture};
use crate::gen_fixtures::greedy;
use crate::text_to_wav::request;

const MIN_COSINE: f64 = 0.999;

fn int8(name: &str) -> Model {
    let opts = LoadOptions {
        weights: WeightFormat::Int8,
        ..LoadOptions::default()
    };
    Model::load(&model_dir(name), &opts).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The worst cosine over all steps and heads, checked against [`MIN_COSINE`] as it goes.
fn teacher_forced(name: &'static str, fixture: &str) -> f64 {
    let fx = Fixture::load(fixture);
    let req = request(&fx, 4);
    let frames = fx.frames("codes");
    let (m32, m8) = (model(name), int8(name));
    assert_eq!(m8.info().dtype, "int8");
    let (a, b) = (
        m32.forced_logits(&req, &frames).unwrap(),
        m8.forced_logits(&req, &frames).unwrap(),
    );
    assert_eq!(a.len(), frames.len());
    let mut worst = 1f64;
    for (step, (f, q)) in a.iter().zip(&b).enumerate() {
        let c = cosine(&f.talker, &q.talker);
        assert!(c >= MIN_COSINE, "{name} step {step}: talker cosine {c}");
        worst = worst.min(c);
        assert_eq!(f.code_predictor.len(), 15);
        for (head, (x, y)) in f.code_predictor.iter().zip(&q.code_predictor).enumerate() {
            let c = cosine(x, y);
            assert!(
                c >= MIN_COSINE,
                "{name} step {step} head {head}: cosine {c}"
            );
            worst = worst.min(c);
        }
    }
    println!("{name}: worst teacher-forced logit cosine int8 vs f32 {worst:.6}");
    worst
}

#[test]
fn int8_logits_track_f32_under_teacher_forcing() {
    let a = teacher_forced("tiny-custom-voice", "text_to_wav_custom_voice");
    let b = teacher_forced("tiny-0b6-like", "text_to_wav_0b6_like");
    // The weights really are quantised: the logits are close, not equal.
    assert!(a < 1.0 - 1e-9 && b < 1.0 - 1e-9, "{a} {b}");
}

#[test]
fn int8_session_gives_finite_audio_and_is_refused_with_bf16() {
    let m = int8("tiny-custom-voice");
    let req = SynthesisRequest {
        speaker: Some("ryan".into()),
        sampling: greedy(9),
        suppress_eos: true,
        chunk_frames: 3,
        ..SynthesisRequest::new("Hello, world.")
    };
    let wav: Vec<f32> = m
        .synthesize(&req, CancelToken::new())
        .unwrap()
        .flat_map(|c| c.unwrap().samples().to_vec())
        .collect();
    assert_eq!(wav.len(), 8 * 1920);
    assert!(wav.iter().all(|x| x.is_finite() && x.abs() <= 1.0));

    let opts = LoadOptions {
        dtype: DType::BF16,
        weights: WeightFormat::Int8,
        ..LoadOptions::default()
    };
    let Err(err) = Model::load(&model_dir("tiny-custom-voice"), &opts) else {
        panic!("int8 with bf16 is refused");
    };
    let err = err.to_string();
    assert!(err.contains("f32"), "{err}");
}
