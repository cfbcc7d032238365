//! Base models through the public request path: the x-vector comes from the speaker encoder,
//! the ICL reference codes from the codec encoder, and a clone session's audio equals the
//! reference's "decode ref ++ generated, drop the reference part".

use q3tts_engine::prompt::SpeakerSlot;
use q3tts_engine::{CancelToken, RefAudio, SynthesisRequest};

use crate::common::{assert_close, flat, model, Fixture, TOL};
use crate::gen_fixtures::{greedy, ASSIST, REF};

#[test]
fn x_vector_only_clone_from_audio_matches_reference_codes() {
    let m = model("tiny-base");
    let spk = Fixture::load("speaker_encoder");
    let req = SynthesisRequest {
        ref_audio: Some(RefAudio {
            samples: spk.f32s("wav"),
            sample_rate: 24000,
        }),
        sampling: greedy(12),
        ..SynthesisRequest::new("Any text.")
    };
    let plan = m.plan(&req).unwrap();
    assert!(
        !plan.non_streaming,
        "voice clone defaults to the streaming-text layout"
    );
    let mut inputs = m.prompt_inputs(&plan, &req).unwrap();
    match &inputs.speaker {
        SpeakerSlot::XVector(v) => assert_close(
            "x-vector from the request's audio",
            &flat(v),
            &spk.f32s("embedding"),
            TOL,
        ),
        other => panic!("expected an x-vector, got {other:?}"),
    };
    assert!(inputs.icl.is_none(), "no ref_text: x-vector only");
    // Same prompt as gen_clone_xvector once the synthetic text ids are swapped in.
    inputs.text_ids = ASSIST.to_vec();
    let fx = Fixture::load("gen_clone_xvector");
    let prompt = m.build_prompt(&inputs).unwrap();
    assert_close(
        "x-vector clone prefill",
        &flat(&prompt.prefill),
        &fx.f32s("prefill_inputs_embeds"),
        TOL,
    );
    let (codes, _) = m
        .generate_from_prompt(&prompt, plan.params, &CancelToken::new(), false)
        .unwrap();
    assert_eq!(codes, fx.frames("codes"));
}

#[test]
fn icl_clone_encodes_reference_and_primes_the_decoder() {
    let m = model("tiny-base");
    let enc = Fixture::load("codec_encode");
    let req = SynthesisRequest {
        ref_audio: Some(RefAudio {
            samples: enc.f32s("wav"),
            sample_rate: 24000,
        }),
        ref_text: Some("Reference words.".into()),
        language: "english".into(),
        sampling: greedy(6),
        chunk_frames: 2,
        ..SynthesisRequest::new("Cloned speech.")
    };
    let plan = m.plan(&req).unwrap();
    let inputs = m.prompt_inputs(&plan, &req).unwrap();
    let icl = inputs
        .icl
        .as_ref()
        .expect("ref_text given: in-context clone");
    let ref_codes = enc.frames("codes");
    assert_eq!(
        icl.ref_codes, ref_codes,
        "reference codes from the codec encoder"
    );
    assert_eq!(&icl.ref_text_ids[..3], &REF[..3]);

    let mut s = m.synthesize(&req, CancelToken::new()).unwrap();
    let wav: Vec<f32> = s
        .by_ref()
        .flat_map(|c| c.unwrap().samples().to_vec())
        .collect();
    let gen = s.codes().to_vec();
    assert_eq!(gen.len(), 5);
    assert_eq!(wav.len(), gen.len() * 1920);
    // Reference behaviour: decode ref ++ generated, drop the reference's samples.
    let all: Vec<[u32; 16]> = ref_codes.iter().chain(&gen).copied().collect();
    let full = m.codec().decode(&all).unwrap();
    assert_close(
        "ICL session wav vs decode(ref ++ gen) tail",
        &wav,
        &full[ref_codes.len() * 1920..],
        TOL,
    );
    // And it differs from decoding the generated codes without the reference context.
    let cold = m.codec().decode(&gen).unwrap();
    let d = wav
        .iter()
        .zip(&cold)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        d > 1e-4,
        "the reference context matters to the decoder (max diff {d})"
    );
}
