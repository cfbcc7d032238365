//! Figures for the closing note, printed, never asserted:
//! `cargo test -p q3tts-audio --test audio -- --ignored --nocapture figures`
//! - latency from the first chunk written to the first sample at the sink, per backend, with a
//!   warm sink (the recorder timestamps the monitor's reads; the monitor path adds about 5 ms);
//! - encoder speed per format relative to real time.

use std::thread;
use std::time::{Duration, Instant};

use q3tts_audio::{open_file, Backend, Format, Sink, Speakers};

use crate::nullsink::NullSink;
use crate::util::{i16_to_f32, speechy, TempDir};

const RATE: u32 = 24000;

/// Milliseconds from `t0` to the arrival of the first recorded sample above 0.1.
fn onset_ms(audio: &[f32], reads: &[(Instant, usize)], t0: Instant) -> Option<f32> {
    let first = audio.iter().position(|s| s.abs() > 0.1)?;
    let (at, _) = reads.iter().find(|(_, upto)| *upto > first)?;
    Some(at.saturating_duration_since(t0).as_secs_f32() * 1000.0)
}

#[test]
#[ignore = "figures: run with --ignored --nocapture"]
fn figures_latency_per_backend() {
    let Some(sink) = NullSink::start("figures_latency_per_backend") else {
        return;
    };
    let _awake = sink.keep_awake();
    std::env::set_var("Q3TTS_PLAYER", "pacat");
    let tone: Vec<f32> = (0..1920 * 5)
        .map(|i| 0.5 * (i as f32 * 0.2).sin())
        .collect();
    for backend in [Backend::Pulse, Backend::Alsa, Backend::Subprocess] {
        let mut speakers = Speakers::open(backend, RATE).unwrap();
        let mut runs = Vec::new();
        for _ in 0..5 {
            let rec = sink.record();
            let t0 = Instant::now();
            for c in tone.chunks(1920) {
                speakers.write(c).unwrap();
            }
            speakers.finish().unwrap();
            thread::sleep(Duration::from_millis(200));
            let (audio, reads) = rec.stop();
            runs.push(onset_ms(&audio, &reads, t0).unwrap_or(f32::NAN));
        }
        // In run order.
        println!(
            "FIGURE latency {:<10} first write -> first sample at sink (warm sink, 5 runs, ms): {:?}",
            backend.name(),
            runs.iter()
                .map(|v| (v * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
    }
    std::env::remove_var("Q3TTS_PLAYER");
}

#[test]
#[ignore = "figures: run with --ignored --nocapture"]
fn figures_encoder_speed() {
    let dir = TempDir::new("speed");
    let seconds = 20.0;
    let signal = i16_to_f32(&speechy(RATE, seconds));
    for format in Format::ALL {
        let path = dir.join(&format!("speed.{}", format.name()));
        let t0 = Instant::now();
        let mut sink = open_file(&path, Some(format), RATE).unwrap();
        for c in signal.chunks(1920) {
            sink.write(c).unwrap();
        }
        sink.finish().unwrap();
        let took = t0.elapsed().as_secs_f32();
        let size = std::fs::metadata(&path).unwrap().len();
        println!(
            "FIGURE encoder {:<5} {seconds} s of 24 kHz mono in {:.3} s = {:.0}x real time, {} bytes ({:.1} kbit/s)",
            format.name(),
            took,
            seconds / took,
            size,
            size as f32 * 8.0 / seconds / 1000.0
        );
    }
}
