//! How requests are interpreted: instruct kept on 1.7B CustomVoice and dropped on 0.6B, prompt
//! layout defaults and overrides, token budgets, ids that do not fit the model.

use q3tts_engine::prompt::PromptInputs;
use q3tts_engine::{CancelToken, Error, LoadOptions, Model, SamplingOptions, SynthesisRequest};

use crate::common::{model, model_dir};
use crate::gen_fixtures::{greedy, INSTRUCT};

#[test]
fn instruct_is_kept_on_1b7_custom_voice_and_dropped_on_0b6() {
    let req = SynthesisRequest {
        speaker: Some("ryan".into()),
        instruct: Some("Speak slowly.".into()),
        ..SynthesisRequest::new("Hi.")
    };
    let small = model("tiny-custom-voice");
    assert_eq!(small.info().size, "0.6B");
    let plan = small.plan(&req).unwrap();
    assert!(plan.instruct_ids.is_none());
    assert_eq!(plan.notes.len(), 1);

    let dir = std::env::temp_dir().join(format!("q3tts-engine-1b7-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("speech_tokenizer")).unwrap();
    let src = model_dir("tiny-custom-voice");
    for f in [
        "generation_config.json",
        "vocab.json",
        "merges.txt",
        "tokenizer_config.json",
        "model.safetensors",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(
            src.join("speech_tokenizer").join(f),
            dir.join("speech_tokenizer").join(f),
        )
        .unwrap();
    }
    let cfg = std::fs::read_to_string(src.join("config.json"))
        .unwrap()
        .replace("\"0b6\"", "\"1b7\"");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let big = Model::load(&dir, &LoadOptions::default()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(big.info().size, "1.7B");
    let plan = big.plan(&req).unwrap();
    assert!(plan.notes.is_empty());
    let ids = plan
        .instruct_ids
        .expect("1.7B CustomVoice keeps the instruct");
    assert_eq!(&ids[..3], &INSTRUCT[..3], "<|im_start|>user\\n");
    assert_eq!(
        &ids[ids.len() - 2..],
        &INSTRUCT[INSTRUCT.len() - 2..],
        "<|im_end|>\\n"
    );
    // The instruct is embedded whole in front of the prompt.
    let with = big
        .build_prompt(&big.prompt_inputs(&big.plan(&req).unwrap(), &req).unwrap())
        .unwrap();
    let without = small
        .build_prompt(
            &small
                .prompt_inputs(&small.plan(&req).unwrap(), &req)
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        with.prefill.dim(0).unwrap(),
        without.prefill.dim(0).unwrap() + ids.len()
    );
}

#[test]
fn prompt_layout_defaults_and_override() {
    let m = model("tiny-custom-voice");
    let req = SynthesisRequest {
        speaker: Some("ryan".into()),
        ..SynthesisRequest::new("Hello, world.")
    };
    let prefill_len = |r: &SynthesisRequest| {
        let plan = m.plan(r).unwrap();
        let p = m.build_prompt(&m.prompt_inputs(&plan, r).unwrap()).unwrap();
        (
            plan.non_streaming,
            p.prefill.dim(0).unwrap(),
            p.trailing.dim(0).unwrap(),
        )
    };
    // Non-streaming (the CustomVoice default): all text in the prefill, trailing = [pad].
    let (ns, l_ns, t_ns) = prefill_len(&req);
    assert!(ns);
    assert_eq!(t_ns, 1);
    // Streaming text: one text token in the prefill, the rest (+ eos) trails.
    let (ns, l_s, t_s) = prefill_len(&SynthesisRequest {
        non_streaming_mode: Some(false),
        ..req.clone()
    });
    assert!(!ns);
    let text_tokens = 4; // Hello , Ġworld .
    assert_eq!(t_s, text_tokens - 1 + 1);
    assert_eq!(
        l_ns - l_s,
        text_tokens + 1,
        "text + eos, plus pad+bos, minus the one streamed position"
    );
}

#[test]
fn token_budgets() {
    let m = model("tiny-custom-voice");
    let req = |max| SynthesisRequest {
        speaker: Some("ryan".into()),
        sampling: SamplingOptions {
            max_new_tokens: Some(max),
            ..greedy(1)
        },
        ..SynthesisRequest::new("Hi.")
    };
    for (max, frames) in [(0, 0), (1, 0), (2, 1), (5, 4)] {
        let codes = m.generate_codes(&req(max), CancelToken::new()).unwrap();
        assert_eq!(codes.len(), frames, "max_new_tokens {max}");
        let mut s = m.synthesize(&req(max), CancelToken::new()).unwrap();
        let n: usize = s.by_ref().map(|c| c.unwrap().len()).sum();
        assert_eq!(n, frames * 1920);
    }
}

#[test]
fn ids_outside_the_model_are_errors() {
    let m = model("tiny-custom-voice");
    let req = SynthesisRequest {
        speaker: Some("ryan".into()),
        ..SynthesisRequest::new("Hi.")
    };
    let plan = m.plan(&req).unwrap();
    let mut inputs: PromptInputs = m.prompt_inputs(&plan, &req).unwrap();
    inputs.text_ids[4] = 5000;
    assert!(
        matches!(m.build_prompt(&inputs), Err(Error::InvalidRequest(msg)) if msg.contains("5000"))
    );
    let mut inputs = m.prompt_inputs(&plan, &req).unwrap();
    inputs.language_id = Some(99_999);
    assert!(
        matches!(m.build_prompt(&inputs), Err(Error::InvalidRequest(msg)) if msg.contains("99999"))
    );
    let mut inputs = m.prompt_inputs(&plan, &req).unwrap();
    inputs.text_ids.truncate(8);
    assert!(
        m.build_prompt(&inputs).is_err(),
        "a template without text is refused"
    );
}
