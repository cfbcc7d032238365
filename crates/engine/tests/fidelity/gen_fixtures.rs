//! The six `gen_*` fixtures: prompt embeddings and trailing text for every prompt mode, talker
//! raw and processed logits at every step, code-predictor inputs and logits, and the greedy
//! codes (exactly equal).

use q3tts_engine::prompt::{IclInputs, PromptInputs, SpeakerSlot};
use q3tts_engine::{CancelToken, Model, SamplingOptions, SynthesisRequest};

use crate::common::{assert_close, flat, model, Fixture, TOL};

/// The synthetic token ids make_golden.py feeds the reference (`ASSIST_IDS`, `INSTRUCT_IDS`,
/// `REF_IDS`).
pub const ASSIST: [u32; 16] = [
    1000, 1005, 1006, 11, 257, 42, 900, 5, 77, 300, 12, 1001, 1006, 1000, 1005, 1006,
];
pub const INSTRUCT: [u32; 9] = [1000, 1007, 1006, 20, 21, 22, 23, 1001, 1006];
pub const REF: [u32; 8] = [1000, 1005, 1006, 31, 32, 33, 1001, 1006];

pub fn greedy(max_new_tokens: usize) -> SamplingOptions {
    SamplingOptions {
        greedy: true,
        max_new_tokens: Some(max_new_tokens),
        ..SamplingOptions::default()
    }
}

/// Language and speaker slots as the engine resolves them for a CustomVoice/VoiceDesign request.
fn resolved(m: &Model, speaker: Option<&str>, language: &str) -> (Option<u32>, SpeakerSlot) {
    let req = SynthesisRequest {
        speaker: speaker.map(Into::into),
        language: language.into(),
        ..SynthesisRequest::new("x")
    };
    let plan = m.plan(&req).unwrap();
    let inputs = m.prompt_inputs(&plan, &req).unwrap();
    (inputs.language_id, inputs.speaker)
}

fn check(m: &Model, name: &str, inputs: PromptInputs) {
    let fx = Fixture::load(name);
    let prompt = m.build_prompt(&inputs).unwrap();
    assert_close(
        &format!("{name}: prefill embeds"),
        &flat(&prompt.prefill),
        &fx.f32s("prefill_inputs_embeds"),
        TOL,
    );
    assert_close(
        &format!("{name}: trailing text"),
        &flat(&prompt.trailing),
        &fx.f32s("trailing_text_hidden"),
        TOL,
    );
    assert_close(
        &format!("{name}: tts_pad embed"),
        &flat(&prompt.pad),
        &fx.f32s("tts_pad_embed"),
        TOL,
    );

    let params = m
        .generation_params(&SynthesisRequest {
            sampling: greedy(12),
            ..SynthesisRequest::new("x")
        })
        .unwrap();
    let (frames, trace) = m
        .generate_from_prompt(&prompt, params, &CancelToken::new(), true)
        .unwrap();
    let trace = trace.unwrap();
    let raw: Vec<f32> = trace.talker_raw.concat();
    assert_close(
        &format!("{name}: talker raw logits (all steps)"),
        &raw,
        &fx.f32s("talker_raw_logits"),
        TOL,
    );
    let scores: Vec<f32> = trace.talker_scores.concat();
    assert_close(
        &format!("{name}: talker processed scores (all steps)"),
        &scores,
        &fx.f32s("talker_scores"),
        TOL,
    );
    assert_eq!(
        trace.talker_sequence,
        fx.ids("talker_sequence"),
        "{name}: codebook-0 sequence"
    );
    assert_eq!(frames, fx.frames("codes"), "{name}: codes");

    let cp_in: Vec<f32> = trace
        .frames
        .iter()
        .flat_map(|f| flat(f.inputs.as_ref().unwrap()))
        .collect();
    assert_close(
        &format!("{name}: code predictor inputs"),
        &cp_in,
        &fx.f32s("cp_inputs_embeds"),
        TOL,
    );
    let cp_logits: Vec<f32> = trace
        .frames
        .iter()
        .flat_map(|f| f.raw_logits.concat())
        .collect();
    assert_close(
        &format!("{name}: code predictor raw logits"),
        &cp_logits,
        &fx.f32s("cp_raw_logits"),
        TOL,
    );
    let cp_seq: Vec<u32> = frames.iter().flat_map(|f| f[1..].to_vec()).collect();
    assert_eq!(
        cp_seq,
        fx.ids("cp_sequences"),
        "{name}: code predictor sequences"
    );
}

fn inputs(
    language_id: Option<u32>,
    speaker: SpeakerSlot,
    instruct: bool,
    non_streaming: bool,
) -> PromptInputs {
    PromptInputs {
        text_ids: ASSIST.to_vec(),
        instruct_ids: instruct.then(|| INSTRUCT.to_vec()),
        language_id,
        speaker,
        non_streaming,
        icl: None,
    }
}

#[test]
fn custom_voice_nonstream_with_instruct() {
    let m = model("tiny-custom-voice");
    let (lang, spk) = resolved(&m, Some("Ryan"), "english");
    check(
        &m,
        "gen_custom_voice_nonstream",
        inputs(lang, spk, true, true),
    );
}

#[test]
fn custom_voice_stream_dialect_override() {
    let m = model("tiny-custom-voice");
    let (lang, spk) = resolved(&m, Some("dylan"), "auto");
    assert_eq!(
        lang,
        m.config()
            .talker_config
            .codec_language_id
            .get("beijing_dialect")
            .copied()
    );
    check(
        &m,
        "gen_custom_voice_stream_dialect",
        inputs(lang, spk, false, false),
    );
}

#[test]
fn voice_design_nonstream() {
    let m = model("tiny-custom-voice");
    let lang = m
        .config()
        .talker_config
        .codec_language_id
        .get("chinese")
        .copied();
    check(
        &m,
        "gen_voice_design_nonstream",
        inputs(lang, SpeakerSlot::None, true, true),
    );
}

fn xvector() -> SpeakerSlot {
    SpeakerSlot::XVector(Fixture::load("speaker_encoder").t("embedding").clone())
}

fn icl_inputs(m: &Model, non_streaming: bool) -> PromptInputs {
    let ref_codes = Fixture::load("codec_encode").frames("codes");
    let english = m
        .config()
        .talker_config
        .codec_language_id
        .get("english")
        .copied();
    assert!(english.is_some());
    PromptInputs {
        icl: Some(IclInputs {
            ref_text_ids: REF.to_vec(),
            ref_codes,
        }),
        ..inputs(english, xvector(), false, non_streaming)
    }
}

fn base_model() -> Model {
    model("tiny-base")
}

#[test]
fn clone_icl_stream() {
    let m = base_model();
    check(&m, "gen_clone_icl_stream", icl_inputs(&m, false));
}

#[test]
fn clone_icl_nonstream() {
    let m = base_model();
    check(&m, "gen_clone_icl_nonstream", icl_inputs(&m, true));
}

#[test]
fn clone_xvector_only() {
    let m = base_model();
    check(
        &m,
        "gen_clone_xvector",
        inputs(None, xvector(), false, false),
    );
}
