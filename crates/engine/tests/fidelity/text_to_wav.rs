//! TEXT → wav through the public API, against the reference wrapper's output:
//! `text_to_wav_custom_voice` ("Hello, world.", ryan, english) and `text_to_wav_0b6_like`
//! (0.6B-shaped model: bf16 shards, Identity projection, query width ≠ hidden, instruct dropped).

use q3tts_engine::{AudioChunk, CancelToken, Model, SynthesisRequest, SAMPLES_PER_FRAME};

use crate::common::{assert_close, flat, model, Fixture, TOL};
use crate::gen_fixtures::greedy;

/// The fixture's request (greedy), decoded in chunks of `chunk_frames`.
pub fn request(fx: &Fixture, chunk_frames: usize) -> SynthesisRequest {
    let m = &fx.meta;
    SynthesisRequest {
        language: m["language"].as_str().unwrap().into(),
        speaker: m["speaker"].as_str().map(Into::into),
        instruct: m["instruct"].as_str().map(Into::into),
        sampling: greedy(m["gen_kwargs"]["max_new_tokens"].as_u64().unwrap() as usize),
        chunk_frames,
        ..SynthesisRequest::new(m["text"].as_str().unwrap())
    }
}

/// Prompt, logits and codes from text, then the streamed wav for several chunk sizes.
fn check(m: &Model, name: &str) -> Vec<String> {
    let fx = Fixture::load(name);
    let req = request(&fx, 4);
    let plan = m.plan(&req).unwrap();
    assert_eq!(plan.text_ids, fx.ids("input_ids"), "{name}: input ids");
    assert_eq!(
        plan.non_streaming,
        fx.meta["non_streaming_mode"].as_bool().unwrap()
    );
    let prompt = m
        .build_prompt(&m.prompt_inputs(&plan, &req).unwrap())
        .unwrap();
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
    let (codes, trace) = m
        .generate_from_prompt(&prompt, plan.params.clone(), &CancelToken::new(), true)
        .unwrap();
    let trace = trace.unwrap();
    assert_close(
        &format!("{name}: talker raw logits"),
        &trace.talker_raw.concat(),
        &fx.f32s("talker_raw_logits"),
        TOL,
    );
    assert_eq!(
        trace.talker_sequence,
        fx.ids("talker_sequence"),
        "{name}: codebook-0 sequence"
    );
    let want_codes = fx.frames("codes");
    assert_eq!(codes, want_codes, "{name}: codes");
    assert_eq!(
        m.generate_codes(&req, CancelToken::new()).unwrap(),
        want_codes,
        "{name}: generate_codes"
    );

    let want = fx.f32s("wav");
    for chunk_frames in [1, 3, 4, 100] {
        let mut session = m
            .synthesize(&request(&fx, chunk_frames), CancelToken::new())
            .unwrap();
        let chunks: Vec<AudioChunk> = session.by_ref().collect::<Result<_, _>>().unwrap();
        // By default the first chunk is 2 frames (early audio), then chunks of chunk_frames.
        let lens: Vec<usize> = chunks.iter().map(|c| c.len() / SAMPLES_PER_FRAME).collect();
        let want_lens = chunk_plan(want_codes.len(), chunk_frames.min(2), chunk_frames);
        assert_eq!(
            lens, want_lens,
            "{name}: chunk lengths, chunks of {chunk_frames}"
        );
        for c in &chunks {
            assert_eq!(c.len() % SAMPLES_PER_FRAME, 0, "{name}: whole frames");
            assert_eq!(c.sample_rate(), 24_000);
        }
        let wav: Vec<f32> = chunks.iter().flat_map(|c| c.samples().to_vec()).collect();
        assert_eq!(wav.len(), want.len());
        assert_close(
            &format!("{name}: wav, chunks of {chunk_frames}"),
            &wav,
            &want,
            TOL,
        );
        assert_eq!(session.codes(), &want_codes[..]);
        assert_eq!(session.stats().frames, want_codes.len());
        assert!(session.stats().first_chunk_s.is_some());
        assert!(
            session.next().is_none(),
            "a finished session stays finished"
        );
    }
    // A one-frame first chunk, then chunks of 4: same audio, early first chunk.
    let mut req = request(&fx, 4);
    req.first_chunk_frames = Some(1);
    let lens: Vec<usize> = m
        .synthesize(&req, CancelToken::new())
        .unwrap()
        .map(|c| c.unwrap().len())
        .collect();
    let expect: Vec<usize> = chunk_plan(want_codes.len(), 1, 4)
        .into_iter()
        .map(|f| f * SAMPLES_PER_FRAME)
        .collect();
    assert_eq!(lens, expect, "{name}: first chunk 1 frame, then 4");
    plan.notes
}

/// Frames per chunk for `frames` frames: `first`, then `chunk` each, the last one shorter.
fn chunk_plan(frames: usize, first: usize, chunk: usize) -> Vec<usize> {
    let mut out = vec![first.min(frames)];
    let mut left = frames - out[0];
    while left > 0 {
        out.push(left.min(chunk));
        left -= left.min(chunk);
    }
    out
}

#[test]
fn text_to_wav_custom_voice() {
    let m = model("tiny-custom-voice");
    let notes = check(&m, "text_to_wav_custom_voice");
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn text_to_wav_0b6_like() {
    let m = model("tiny-0b6-like");
    let tc = &m.config().talker_config;
    assert_eq!(tc.stack.hidden_size, tc.code_predictor_config.hidden_size);
    assert!(
        !m.code_predictor().has_projection(),
        "0.6B-like: Identity projection"
    );
    // bf16 checkpoint, f32 compute: the big text-embedding table stays bf16 (exact upcast per row).
    assert_eq!(m.talker().text_table_dtype(), candle_core::DType::BF16);
    assert_eq!(m.talker().dtype(), candle_core::DType::F32);
    assert_ne!(
        tc.stack.num_attention_heads * tc.stack.head_dim(),
        tc.stack.hidden_size
    );
    let fx = Fixture::load("text_to_wav_0b6_like");
    assert!(fx.meta["instruct_dropped"].as_bool().unwrap());
    let notes = check(&m, "text_to_wav_0b6_like");
    assert_eq!(
        notes.len(),
        1,
        "the dropped instruct is reported: {notes:?}"
    );
    assert!(notes[0].contains("ignored"), "{notes:?}");
}
