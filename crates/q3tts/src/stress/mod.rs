//! `q3tts stress`: drive a running daemon with a varied corpus ([`corpus`]) one request after
//! another, judge every reply, watch the daemon's memory and liveness, and write a JSON report
//! ([`report`]). Requests write to files in a temporary directory, so no audio device is needed.
//!
//! A request is *ok* when the reply is `"status": "ok"`, reports audio and the file holds it; for
//! long texts the handler's per-piece list (the default handler's `pieces`) must match the
//! text's split, in order, with audio for every piece. An *expected error* is an error reply to
//! a case built to fail whose message names the field at fault. Everything else is unexpected;
//! no frame within `--timeout` is a timeout (the utterance is then cancelled); a daemon that
//! stops answering and whose process is gone is a crash, which ends the run.

pub mod corpus;
pub mod report;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use crate::handler::text::split_sentences;
use crate::protocol::{self, FrameError};
use corpus::{Case, Expect};
use report::{Outcome, Record, Report};

#[derive(Args, Debug, Clone)]
pub struct StressArgs {
    /// Number of requests.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Where to write the JSON report.
    #[arg(long, value_name = "FILE")]
    pub report: PathBuf,
    /// Token cap per piece (random-weight test models never stop on their own).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_new_tokens: u64,
    /// Seconds without any frame from the daemon before a request counts as timed out.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    pub timeout: f64,
    /// Seed of the corpus (the same seed gives the same requests).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Piece size the handler splits long text into (the default handler's MAX_PIECE).
    #[arg(long, value_name = "CHARS", default_value_t = 200)]
    pub piece_chars: usize,
}

/// Requests after which memory is sampled as "after warm-up" (caches and arenas filled).
const WARMUP: usize = 20;

/// Run the stress pass; exit code 0 when every request met its expectation.
pub fn run(args: &StressArgs, socket: &Path) -> anyhow::Result<i32> {
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(crate::client::UsageError("--timeout must be a positive number".into()).into());
    }
    let status =
        crate::client::control(socket, protocol::Action::Status, false)?.ok_or_else(|| {
            anyhow::anyhow!(
                "no daemon is listening on {}; start one with `q3tts serve` first",
                socket.display()
            )
        })?;
    let pid = daemon_pid(&status, socket);
    let dir = std::env::temp_dir().join(format!("q3tts-stress-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cases = corpus::build(args.count, args.seed);
    let mut rep = Report {
        planned: cases.len(),
        daemon_pid: pid,
        max_new_tokens: args.max_new_tokens,
        ..Report::default()
    };
    rep.rss.start = pid.and_then(rss_kb);
    rep.rss.sample(rep.rss.start);
    let timeout = Duration::from_secs_f64(args.timeout);
    let started = Instant::now();
    for (i, case) in cases.iter().enumerate() {
        let output = dir.join(format!("out-{}.wav", i % 4));
        let _ = std::fs::remove_file(&output);
        let t = Instant::now();
        let answer = exchange(socket, &request(case, i, &output, args), timeout);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let (outcome, pieces) = judge(case, answer, &output, args.piece_chars, pid);
        if outcome == Outcome::Timeout {
            let _ = crate::client::control(socket, protocol::Action::Stop, false);
        }
        let crashed = matches!(outcome, Outcome::Crash(_));
        rep.records.push(Record {
            index: i,
            kind: case.kind,
            text: case.text.clone(),
            outcome,
            ms,
            pieces,
        });
        let rss = pid.and_then(rss_kb);
        rep.rss.sample(rss);
        if i + 1 == WARMUP.min(cases.len()) {
            rep.rss.after_warmup = rss;
        }
        if crashed {
            break;
        }
    }
    rep.elapsed_s = started.elapsed().as_secs_f64();
    rep.rss.end = pid.and_then(rss_kb);
    rep.rss.sample(rep.rss.end);
    let _ = std::fs::remove_dir_all(&dir);
    let json = serde_json::to_string_pretty(&rep.to_json())?;
    std::fs::write(&args.report, json + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write the report {}: {e}", args.report.display()))?;
    eprintln!("{}", rep.summary());
    eprintln!("report: {}", args.report.display());
    Ok(if rep.clean() {
        crate::client::EXIT_OK
    } else {
        crate::client::EXIT_FAILED
    })
}

/// The JSON request for a case.
fn request(case: &Case, i: usize, output: &Path, args: &StressArgs) -> Value {
    let mut options = serde_json::Map::new();
    options.insert("max_new_tokens".into(), args.max_new_tokens.into());
    options.insert("seed".into(), (i as u64).into());
    options.extend(case.options.clone());
    let mut v = json!({
        "action": "generate",
        "text": case.text,
        "output": case.output.clone().unwrap_or_else(|| output.display().to_string()),
        "options": options,
    });
    for (k, x) in &case.fields {
        v[k] = x.clone();
    }
    v
}

/// What came back for one request.
pub enum Answer {
    Reply(Value),
    /// No frame within the timeout.
    TimedOut,
    /// The connection failed or closed before the final reply.
    Broken(String),
}

/// Send one request and read frames until the final reply.
pub fn exchange(socket: &Path, req: &Value, timeout: Duration) -> Answer {
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => return Answer::Broken(format!("cannot connect: {e}")),
    };
    let _ = stream.set_read_timeout(Some(timeout));
    if let Err(e) = protocol::write_json(&mut stream, req) {
        return Answer::Broken(format!("cannot send the request: {e}"));
    }
    let mut audio_stream = false;
    loop {
        let frame = match protocol::read_frame(&mut stream) {
            Ok(f) => f,
            Err(FrameError::TimedOut) => return Answer::TimedOut,
            Err(e) => return Answer::Broken(format!("no reply: {e}")),
        };
        if audio_stream {
            audio_stream = !frame.is_empty();
            continue;
        }
        let v: Value = match serde_json::from_slice(&frame) {
            Ok(v) => v,
            Err(e) => {
                return Answer::Broken(format!("the daemon sent a frame that is not JSON: {e}"))
            }
        };
        match v.get("event").and_then(Value::as_str) {
            Some("audio") => audio_stream = true,
            Some(_) => {}
            None if v.get("status").is_some() => return Answer::Reply(v),
            None => return Answer::Broken(format!("a frame that is neither event nor reply: {v}")),
        }
    }
}

/// Judge an answer against the case's expectation; returns the outcome and, for long texts
/// checked piece by piece, how many pieces.
fn judge(
    case: &Case,
    answer: Answer,
    output: &Path,
    piece_chars: usize,
    pid: Option<u32>,
) -> (Outcome, Option<usize>) {
    let reply = match answer {
        Answer::Reply(v) => v,
        Answer::TimedOut => return (Outcome::Timeout, None),
        Answer::Broken(why) => {
            return match pid {
                Some(p) if !alive(p) => (
                    Outcome::Crash(format!("daemon pid {p} is gone ({why})")),
                    None,
                ),
                _ => (Outcome::Unexpected(why), None),
            }
        }
    };
    let ok = reply.get("status").and_then(Value::as_str) == Some("ok");
    let message = reply.get("message").and_then(Value::as_str).unwrap_or("");
    match (&case.expect, ok) {
        (Expect::Error(needle), false) if message.contains(needle) => {
            (Outcome::ExpectedError, None)
        }
        (Expect::Error(needle), false) => (
            Outcome::Unexpected(format!("the error does not name {needle:?}: {message}")),
            None,
        ),
        (Expect::Error(needle), true) => (
            Outcome::Unexpected(format!("invalid {needle} was accepted: {reply}")),
            None,
        ),
        (Expect::Audio, false) => (Outcome::Unexpected(format!("error reply: {message}")), None),
        (Expect::Audio, true) => match check_audio(case, &reply, output, piece_chars) {
            Ok(pieces) => (Outcome::Ok, pieces),
            Err(why) => (Outcome::Unexpected(why), None),
        },
    }
}

/// An ok reply must report audio that the file holds; the pieces of a long text must all be
/// synthesised, in the text's order.
fn check_audio(
    case: &Case,
    reply: &Value,
    output: &Path,
    piece_chars: usize,
) -> Result<Option<usize>, String> {
    let seconds = reply
        .get("audio_seconds")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    if seconds <= 0.0 {
        return Err(format!("ok reply without audio: {reply}"));
    }
    let bytes = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    if bytes <= 44 {
        return Err(format!(
            "{} holds no audio ({bytes} bytes)",
            output.display()
        ));
    }
    let expected = split_sentences(&case.text, piece_chars);
    let Some(done) = reply.get("pieces").and_then(Value::as_array) else {
        return Ok(None);
    };
    if done.len() != expected.len() {
        return Err(format!(
            "{} of {} pieces synthesised",
            done.len(),
            expected.len()
        ));
    }
    for (n, (got, want)) in done.iter().zip(&expected).enumerate() {
        let chars = got.get("chars").and_then(Value::as_u64);
        let chunks = got.get("chunks").and_then(Value::as_u64).unwrap_or(0);
        if chars != Some(want.chars().count() as u64) {
            return Err(format!(
                "piece {n} out of order: {got} for {:?}",
                report::cut(want, 40)
            ));
        }
        if chunks == 0 {
            return Err(format!(
                "piece {n} produced no audio: {:?}",
                report::cut(want, 40)
            ));
        }
    }
    Ok((expected.len() > 1).then_some(expected.len()))
}

/// The daemon's pid: from its `status` reply, else from the lock file.
fn daemon_pid(status: &Value, socket: &Path) -> Option<u32> {
    if let Some(p) = status.get("pid").and_then(Value::as_u64) {
        return Some(p as u32);
    }
    let lock = crate::shell::lock::lock_path(socket);
    std::fs::read_to_string(lock).ok()?.trim().parse().ok()
}

/// Resident memory of a process in KiB (Linux `/proc`; `None` elsewhere).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        return !matches!(state, Some("Z") | Some("X"));
    }
    if Path::new("/proc/self").exists() {
        return false;
    }
    unsafe { libc::kill(pid as i32, 0) == 0 }
}
