//! Reading reference audio: files made by sox (WAV, FLAC, Ogg Vorbis) at other rates and
//! channel counts, and an MP3; errors for missing and unsupported files.

use std::process::Command;

use q3tts_audio::{load_mono_24k, open_file, read_audio_file, Format};

use crate::util::*;

/// An ideal 440 Hz sine at `rate`, amplitude 0.5.
fn sine(rate: u32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
        .collect()
}

#[test]
fn reads_sox_files_at_any_rate_and_channel_count() {
    if !require("reads_sox_files_at_any_rate_and_channel_count", &["sox"]) {
        return;
    }
    let dir = TempDir::new("decode");
    for (name, rate, channels) in [
        ("st44.wav", 44100u32, 2u32),
        ("m48.flac", 48000, 1),
        ("st16.ogg", 16000, 2),
        ("m24.wav", 24000, 1),
    ] {
        let path = dir.join(name);
        run(Command::new("sox")
            .args([
                "-n",
                "-r",
                &rate.to_string(),
                "-c",
                &channels.to_string(),
                "-b",
                "16",
            ])
            .arg(&path)
            .args(["synth", "0.5", "sine", "440", "gain", "-6.02"]));
        let (mono, r) = read_audio_file(&path).unwrap();
        assert_eq!(r, rate, "{name}");
        // Vorbis may pad by a few samples; PCM formats are exact.
        assert!(
            mono.len().abs_diff(rate as usize / 2) <= 64,
            "{name}: {} samples",
            mono.len()
        );
        let (lag, c) = best_lag(&sine(rate, mono.len()), &mono, 8);
        assert!(
            c > 0.99 && lag.abs() <= 1,
            "{name}: correlation {c} at lag {lag}"
        );
        let at24 = load_mono_24k(&path).unwrap();
        let want = (mono.len() as u64 * 24000 + rate as u64 / 2) / rate as u64;
        assert_eq!(at24.len() as u64, want, "{name}");
        let (lag, c) = best_lag(&sine(24000, at24.len())[..11000], &at24[..11000], 8);
        assert!(
            c > 0.99 && lag.abs() <= 1,
            "{name} at 24 kHz: correlation {c} at lag {lag}"
        );
    }
}

#[test]
fn reads_mp3() {
    let dir = TempDir::new("decode-mp3");
    let path = dir.join("tone.mp3");
    let mut sink = open_file(&path, Some(Format::Mp3), 24000).unwrap();
    sink.write(&sine(24000, 24000)).unwrap();
    sink.finish().unwrap();
    let (mono, rate) = read_audio_file(&path).unwrap();
    assert_eq!(rate, 24000);
    assert!(mono.len() >= 24000, "{}", mono.len());
    let (lag, c) = best_lag(&sine(24000, 20000), &mono, 2000);
    assert!(c > 0.95, "correlation {c} at lag {lag}");
}

#[test]
fn clear_errors_for_missing_and_unsupported_files() {
    let dir = TempDir::new("decode-err");
    let missing = dir.join("nope.wav");
    let msg = read_audio_file(&missing).unwrap_err().to_string();
    assert!(
        msg.contains("nope.wav") && msg.contains("no such file"),
        "{msg}"
    );
    let text = dir.join("notes.txt");
    std::fs::write(
        &text,
        "this is not audio at all, just some words\n".repeat(20),
    )
    .unwrap();
    let msg = read_audio_file(&text).unwrap_err().to_string();
    assert!(
        msg.contains("notes.txt") && msg.contains("WAV, FLAC, MP3 or Ogg Vorbis"),
        "{msg}"
    );
    let msg = load_mono_24k(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("is a directory"), "{msg}");
}
