//! One talker stack pass, one code-predictor pass (projection, layers, lm_head[0]) and the text
//! projection against `talker_forward`.

use crate::common::{assert_close, flat, model, Fixture, TOL};

#[test]
fn talker_stack_code_predictor_and_text_projection() {
    let m = model("tiny-custom-voice");
    let fx = Fixture::load("talker_forward");

    let mut caches = m.talker().new_caches();
    let h = m
        .talker()
        .forward(fx.t("inputs_embeds"), &mut caches)
        .unwrap();
    assert_close(
        "talker last_hidden_state",
        &flat(&h),
        &fx.f32s("last_hidden_state"),
        TOL,
    );
    let logits = m.talker().logits(&h).unwrap();
    assert_close(
        "talker codec_head logits",
        &flat(&logits),
        &fx.f32s("codec_logits"),
        TOL,
    );

    assert!(
        m.code_predictor().has_projection(),
        "tiny-custom-voice has small_to_mtp_projection"
    );
    let (cph, cpl) = m
        .code_predictor()
        .forward_full(fx.t("cp_inputs_embeds"), 0)
        .unwrap();
    assert_close(
        "code predictor last_hidden_state",
        &flat(&cph),
        &fx.f32s("cp_last_hidden_state"),
        TOL,
    );
    assert_close(
        "code predictor lm_head[0]",
        &flat(&cpl),
        &fx.f32s("cp_logits_head0"),
        TOL,
    );

    let tp = m.talker().embed_text(&fx.ids("text_ids")).unwrap();
    assert_close(
        "text projection",
        &flat(&tp),
        &fx.f32s("text_projected"),
        TOL,
    );
}

#[test]
fn kv_cache_decode_equals_full_recompute() {
    // Feeding the 9 positions as 5 + 1 + 3 through the cache gives the same hidden states.
    let m = model("tiny-custom-voice");
    let fx = Fixture::load("talker_forward");
    let x = fx.t("inputs_embeds");
    let mut caches = m.talker().new_caches();
    let mut parts = Vec::new();
    for (start, len) in [(0, 5), (5, 1), (6, 3)] {
        parts.push(
            m.talker()
                .forward(&x.narrow(1, start, len).unwrap(), &mut caches)
                .unwrap(),
        );
    }
    let h = candle_core::Tensor::cat(&parts, 1).unwrap();
    assert_close(
        "talker cached in 3 pieces",
        &flat(&h),
        &fx.f32s("last_hidden_state"),
        TOL,
    );
}
