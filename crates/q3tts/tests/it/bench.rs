//! `q3tts bench --json` on the tiny model: every figure is present, finite and positive, and the
//! work is the fixed number of frames asked for. Timings are printed by the bench, never judged.

use std::process::Command;

use serde_json::Value;

use crate::common::{tiny_model, EXE};

const KEYS: [&str; 8] = [
    "prefill_ms",
    "talker_ms_per_frame",
    "code_predictor_ms_per_frame",
    "decoder_ms_per_frame",
    "frames_per_s",
    "rtf",
    "ttfa_s",
    "peak_rss_mb",
];

fn bench_json(extra: &[&str]) -> Value {
    let out = Command::new(EXE)
        .args(["bench", "--model"])
        .arg(tiny_model())
        .args([
            "--frames",
            "4",
            "--first-chunk",
            "1",
            "--probe-mib",
            "8",
            "--json",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "one JSON object: {stdout}"
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn bench_json_has_every_figure_for_the_requested_frames() {
    let v = bench_json(&[]);
    for k in KEYS.iter().chain(&[
        "achieved_gbs",
        "read_gbs_1_thread",
        "read_gbs_n_threads",
        "weight_bytes_per_frame",
    ]) {
        let x = v[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} missing or not a number in {v}"));
        assert!(x.is_finite() && x > 0.0, "{k} = {x}");
    }
    assert_eq!(v["frames"], 4);
    assert_eq!(v["first_chunk_frames"], 1);
    // First chunk of 1 frame comes before the whole utterance is done.
    assert!(v["ttfa_s"].as_f64().unwrap() <= v["wall_s"].as_f64().unwrap());
}

#[test]
fn bench_rejects_bad_options_with_usage_errors() {
    for args in [&["--frames", "0"][..], &["--size", "3b"][..]] {
        let out = Command::new(EXE)
            .arg("bench")
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
}
