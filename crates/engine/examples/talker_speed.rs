//! Talker + code-predictor speed with random weights at the released dimensions (no download):
//! `cargo run --release -p q3tts-engine --example talker_speed -- [0.6b|1.7b] [frames] [f32|bf16]`.
//! Prints prefill ms and per-frame talker / code-predictor ms. The full pipeline bench (with the
//! decoder) is `q3tts bench`.

use std::time::Instant;

use candle_core::{DType, Device};
use q3tts_engine::codec::random::random_var_builder;
use q3tts_engine::code_predictor::CodePredictor;
use q3tts_engine::generate::{GenerationParams, Generator};
use q3tts_engine::plan::MIN_NEW_TOKENS;
use q3tts_engine::presets::{custom_voice_config, RealSize};
use q3tts_engine::prompt::{Prompt, PromptInputs, SpeakerSlot};
use q3tts_engine::sampling::{SamplerParams, TalkerRules};
use q3tts_engine::talker::Talker;

fn main() -> q3tts_engine::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let size = args.get(1).and_then(|s| RealSize::parse(s)).unwrap_or(RealSize::B0_6);
    let frames: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let dtype = if args.get(3).map(String::as_str) == Some("bf16") { DType::BF16 } else { DType::F32 };
    let cfg = custom_voice_config(size);
    let tc = &cfg.talker_config;
    let dev = Device::Cpu;
    let t0 = Instant::now();
    let vb = random_var_builder(7, &dev).set_dtype(dtype);
    let talker = Talker::load(tc, vb.pp("talker"))?;
    let cp = CodePredictor::load(tc, vb.pp("talker").pp("code_predictor"))?;
    println!("{size:?} {dtype:?}: random weights built in {:.1} s", t0.elapsed().as_secs_f64());
    let text: Vec<u32> = [151644, 77091, 198].into_iter().chain(1000..1030).chain([151645, 198, 151644, 77091, 198]).collect();
    let inputs = PromptInputs {
        text_ids: text,
        instruct_ids: None,
        language_id: Some(2050),
        speaker: SpeakerSlot::Preset(3061),
        non_streaming: false,
        icl: None,
    };
    let prompt = Prompt::build(&cfg, &talker, &cp, &inputs)?;
    let sp = SamplerParams { do_sample: true, temperature: 0.9, top_k: 50, top_p: 1.0 };
    let params = GenerationParams {
        talker: sp,
        subtalker: sp,
        rules: TalkerRules {
            eos: tc.codec_eos_token_id,
            vocab: tc.stack.vocab_size,
            repetition_penalty: 1.05,
            min_new_tokens: MIN_NEW_TOKENS,
            suppress_eos: true,
        },
        max_new_tokens: frames + 1,
        seed: 1,
    };
    let mut g = Generator::new(&talker, &prompt, params, false)?;
    let mut n = 0;
    while g.next_frame(&talker, &cp)?.is_some() {
        n += 1;
    }
    let t = g.times;
    println!(
        "prefill {} positions: {:.1} ms; {n} frames: talker {:.1} ms/frame, code predictor {:.1} ms/frame",
        prompt.prefill.dim(0)?,
        t.prefill_ms,
        t.talker_ms / n as f64,
        t.code_predictor_ms / n as f64
    );
    Ok(())
}
