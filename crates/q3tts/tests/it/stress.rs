//! `q3tts stress` against a real daemon with the tiny model: a short pass of the whole corpus
//! must come back clean (no crash, no timeout, nothing unexpected, long texts synthesised piece
//! by piece in order, bounded memory growth), and the command must notice when it is not.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::*;

/// Requests in the CI pass (the issue allows up to 200; this keeps the pass near a minute on a
/// 2-core machine with the dev profile, and still holds every corpus class and two 500+ word
/// pages).
const CI_COUNT: &str = "80";

/// RSS may grow by at most this much between the end of the warm-up (20 requests) and the end
/// of the pass. The tiny model's pass grows by about 1–2 MiB; a leak of one request's audio
/// (about 115 KiB per 16 frames) per request would exceed it.
const RSS_GROWTH_AFTER_WARMUP_KB: i64 = 16 * 1024;
/// And from the first request to the last (first-use allocations included).
const RSS_GROWTH_KB: i64 = 64 * 1024;

fn stress(s: &Scratch, count: &str, report: &Path) -> Output {
    std::process::Command::new(EXE)
        .args([
            "stress",
            "--count",
            count,
            "--max-new-tokens",
            "16",
            "--timeout",
            "120",
            "--report",
        ])
        .arg(report)
        .arg("--socket")
        .arg(s.socket())
        .output()
        .unwrap()
}

fn read_report(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("the report was written")).unwrap()
}

fn n(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("report lacks {key}: {v}"))
}

#[test]
fn a_stress_pass_on_the_tiny_model_is_clean() {
    let s = Scratch::new();
    // No handler file: the built-in default handler, which splits long text and reports pieces.
    let d = Daemon::start(&s, &[]);
    let report = s.path("report.json");
    let o = stress(&s, CI_COUNT, &report);
    let r = read_report(&report);
    eprintln!("{}", stderr(&o));
    assert!(o.status.success(), "{}\n{r:#}", stderr(&o));

    let total = n(&r, "total");
    assert_eq!(total, CI_COUNT.parse::<i64>().unwrap(), "{r:#}");
    assert_eq!(n(&r, "daemon_crashes"), 0, "{r:#}");
    assert_eq!(n(&r, "timeouts"), 0, "{r:#}");
    assert_eq!(n(&r, "unexpected_errors"), 0, "{r:#}");
    assert_eq!(n(&r, "ok") + n(&r, "expected_errors"), total, "{r:#}");
    // Both sides of the corpus were exercised.
    assert!(n(&r, "ok") > 0 && n(&r, "expected_errors") > 0, "{r:#}");
    for kind in ["empty", "whitespace", "invalid_option"] {
        assert_eq!(
            r["by_kind"][kind]["expected_errors"], r["by_kind"][kind]["total"],
            "{kind}: {r:#}"
        );
    }
    // A 500+ word page succeeded, checked piece by piece.
    assert!(n(&r["longest_ok_text"], "words") >= 500, "{r:#}");
    assert!(n(&r["longest_ok_text"], "pieces") > 10, "{r:#}");
    assert!(n(&r, "long_texts_checked_in_order") > 0, "{r:#}");
    // Memory.
    let rss = &r["rss_kb"];
    assert!(n(rss, "start") > 0, "{r:#}");
    assert!(
        n(rss, "growth_after_warmup") < RSS_GROWTH_AFTER_WARMUP_KB,
        "{r:#}"
    );
    assert!(n(rss, "growth") < RSS_GROWTH_KB, "{r:#}");
    // The daemon is still there and counted every request that reached the worker.
    let st = request(&d.socket, serde_json::json!({"action": "status"}));
    assert_eq!(st["status"], "ok");
    assert!(
        st["requests_served"].as_i64().unwrap() >= n(&r, "ok"),
        "{st}"
    );
}

#[test]
fn stress_reports_a_handler_that_writes_no_audio_as_unexpected() {
    let s = Scratch::new();
    s.write(
        "handlers.rhai",
        "fn handle(model, request) { #{ audio_seconds: 0.0 } }\n",
    );
    let _d = Daemon::start(&s, &[]);
    let report = s.path("report.json");
    let o = stress(&s, "12", &report);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = read_report(&report);
    // Requests the daemon refuses before the handler still come back as expected errors.
    assert!(n(&r, "unexpected_errors") > 0, "{r:#}");
    assert_eq!(
        n(&r, "unexpected_errors") + n(&r, "expected_errors"),
        12,
        "{r:#}"
    );
    let detail = r["failures"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("without audio"), "{r:#}");
}

#[test]
fn stress_reports_a_daemon_killed_mid_run_as_a_crash() {
    let s = Scratch::new();
    let mut d = Daemon::start(&s, &[]);
    let report = s.path("report.json");
    let child = std::process::Command::new(EXE)
        .args([
            "stress",
            "--count",
            "200",
            "--max-new-tokens",
            "16",
            "--report",
        ])
        .arg(&report)
        .arg("--socket")
        .arg(s.socket())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the daemon once a few requests went through.
    d.wait_log("[reload] \"");
    d.signal(libc::SIGKILL);
    let o = child.wait_with_output().unwrap();
    d.wait_exit();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = read_report(&report);
    assert_eq!(n(&r, "daemon_crashes"), 1, "{r:#}");
    assert!(n(&r, "not_run") > 0, "{r:#}");
    assert_eq!(
        r["failures"].as_array().unwrap().last().unwrap()["outcome"],
        "crash",
        "{r:#}"
    );
}
