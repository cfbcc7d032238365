//! The Base models' speaker encoder against the reference: the 128-bin log-mel front end and the
//! ECAPA-TDNN x-vector of a 1 s clip, plus its input errors.

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use q3tts_engine::speaker::{mel_spectrogram, SpeakerEncoder, SpeakerEncoderConfig};

use crate::codec_util::*;

fn load_tiny_base_encoder() -> SpeakerEncoder {
    let dir = testdata().join("tiny-base");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let scfg: SpeakerEncoderConfig =
        serde_json::from_value(cfg["speaker_encoder_config"].clone()).unwrap();
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    SpeakerEncoder::load(vb.pp("speaker_encoder"), &scfg).unwrap()
}

#[test]
fn mel_front_end_matches_reference() {
    let fx = fixture("speaker_encoder");
    let wav = to_vec(&fx["wav"]);
    let mel = mel_spectrogram(&wav, &Device::Cpu).unwrap();
    assert_eq!(mel.dims(), &[93, 128]);
    assert_close(
        "speaker mel [93, 128]",
        &mel.unsqueeze(0).unwrap(),
        &fx["mel"],
        1e-4,
    );
}

#[test]
fn x_vector_matches_reference() {
    let fx = fixture("speaker_encoder");
    let enc = load_tiny_base_encoder();
    let wav = to_vec(&fx["wav"]);
    let emb = enc.embed(&wav).unwrap();
    assert_eq!(emb.dims(), &[64]);
    assert_close("x-vector [64]", &emb, &fx["embedding"], 1e-4);
    // From the fixture's own mel too, isolating the ECAPA from the front end.
    let emb = enc.embed_mel(&fx["mel"].squeeze(0).unwrap()).unwrap();
    assert_close(
        "x-vector from the reference mel",
        &emb,
        &fx["embedding"],
        1e-4,
    );
}

#[test]
fn too_short_or_bad_audio_is_an_error() {
    let enc = load_tiny_base_encoder();
    let err = enc.embed(&[0.1; 200]).unwrap_err().to_string();
    println!("{err}");
    assert!(err.contains("200 samples"), "{err}");
    // Long enough for the STFT but too few frames for the dilated convs' reflect padding.
    let err = enc.embed(&[0.1; 500]).unwrap_err().to_string();
    println!("{err}");
    assert!(err.contains("too short"), "{err}");
    let mut wav = vec![0.1f32; 24000];
    wav[7] = f32::NAN;
    assert!(enc
        .embed(&wav)
        .unwrap_err()
        .to_string()
        .contains("sample 7"));
}

#[test]
fn bad_speaker_config_is_rejected() {
    let mut cfg: SpeakerEncoderConfig = serde_json::from_str("{}").unwrap();
    assert!(
        cfg.validate().is_ok(),
        "the defaults are the real 0.6B-Base encoder"
    );
    cfg.enc_channels[4] = 1000;
    assert!(cfg.validate().unwrap_err().contains("1536"));
}

/// Speaker-encoder speed at the real 0.6B-Base widths with random weights (printed, not
/// asserted): `cargo test -p q3tts-engine --test fidelity speaker_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn speaker_speed_figures() {
    let cfg: SpeakerEncoderConfig = serde_json::from_str(r#"{"enc_dim": 1024}"#).unwrap();
    let vb = q3tts_engine::codec::random::random_var_builder(3, &Device::Cpu);
    let enc = SpeakerEncoder::load(vb.pp("speaker_encoder"), &cfg).unwrap();
    let wav: Vec<f32> = (0..10 * 24000)
        .map(|i| 0.3 * ((i as f32) * 0.021).sin())
        .collect();
    let t0 = std::time::Instant::now();
    let mel = mel_spectrogram(&wav, &Device::Cpu).unwrap();
    let t_mel = t0.elapsed().as_secs_f64() * 1e3;
    let x = enc.embed_mel(&mel).unwrap();
    assert_eq!(x.dims(), &[1024]);
    println!(
        "speaker encoder, real widths, 10 s clip: mel {t_mel:.0} ms, total {:.0} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
}
