//! Engine speed with random weights at the released dimensions (no download, nothing written):
//! `cargo run --release -p q3tts-engine --example talker_speed -- [0.6b|1.7b] [frames] [f32|bf16]`.
//! Prints prefill ms and per-frame talker / code-predictor / decoder ms for one session with EOS
//! suppressed. The full CLI benchmark is `q3tts bench`.

use std::time::Instant;

use candle_core::{DType, Device};
use q3tts_engine::presets::{random_custom_voice, RealSize};
use q3tts_engine::{CancelToken, SamplingOptions, SynthesisRequest};

fn main() -> q3tts_engine::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let size = args
        .get(1)
        .and_then(|s| RealSize::parse(s))
        .unwrap_or(RealSize::B0_6);
    let frames: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let dtype = if args.get(3).map(String::as_str) == Some("bf16") {
        DType::BF16
    } else {
        DType::F32
    };
    let t0 = Instant::now();
    let model = random_custom_voice(size, dtype, Default::default(), &Device::Cpu, 7)?;
    println!(
        "{size:?} {dtype:?}: random weights built in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let req = SynthesisRequest {
        speaker: Some("ryan".into()),
        language: "english".into(),
        sampling: SamplingOptions {
            seed: Some(1),
            max_new_tokens: Some(frames + 1),
            ..SamplingOptions::default()
        },
        suppress_eos: true,
        chunk_frames: 4,
        ..SynthesisRequest::new("The quick brown fox jumps over the lazy dog.")
    };
    let t0 = Instant::now();
    let mut session = model.synthesize(&req, CancelToken::new())?;
    let mut samples = 0;
    for chunk in session.by_ref() {
        samples += chunk?.len();
    }
    let wall = t0.elapsed().as_secs_f64();
    let s = session.stats();
    let n = s.frames.max(1) as f64;
    println!(
        "{} frames: prefill {:.0} ms, talker {:.1} ms/frame, code predictor {:.1} ms/frame, decoder {:.1} ms/frame, \
         first chunk {:.2} s, RTF {:.2}",
        s.frames,
        s.prefill_ms,
        s.talker_ms / n,
        s.code_predictor_ms / n,
        s.decoder_ms / n,
        s.first_chunk_s.unwrap_or(0.0),
        wall / (samples as f64 / 24000.0)
    );
    Ok(())
}
