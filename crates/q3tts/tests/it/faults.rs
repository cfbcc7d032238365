//! The fault table of the stress issue, row by row, against a real daemon with the tiny model.
//! Rows tested elsewhere: an atomic rename of the handler (`reload.rs`), SIGKILL of an idle
//! daemon then `serve` again (`instance.rs`), SIGTERM with requests queued (`control.rs`).
//! Here: the handler deleted and restored, the handler truncated mid-save, unwritable outputs,
//! the audio device lost mid-utterance (a PulseAudio null sink taken away and brought back),
//! SIGKILL in the middle of a request, a client process killed mid-request, and the progress
//! deadline (a request that makes no audio is stopped; a long synthesis is not).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

fn handler_v(v: &str) -> String {
    format!("fn handle(model, request) {{\n    let x = \"{v}\";\n    #{{ v: x }}\n}}\n")
}

fn message(r: &Value) -> &str {
    r["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {r}"))
}

/// A short synthesis to a file with the default handler; must succeed with audio.
fn good_request(d: &Daemon, out: &Path) {
    let r = request(
        &d.socket,
        generate(
            "Still here.",
            json!({"output": out, "options": {"max_new_tokens": 4, "greedy": true}}),
        ),
    );
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["audio_seconds"].as_f64().unwrap() > 0.0, "{r}");
    assert!(!read_audio(out).is_empty());
}

#[test]
fn handler_deleted_is_an_error_naming_it_until_restored() {
    let s = Scratch::new();
    s.write("handlers.rhai", &handler_v("one"));
    let d = Daemon::start(&s, &[]);
    assert_eq!(request(&d.socket, generate("a", json!({})))["v"], "one");

    std::fs::remove_file(s.handler()).unwrap();
    let r = request(&d.socket, generate("b", json!({})));
    assert_eq!(r["status"], "error", "{r}");
    let m = message(&r);
    assert!(m.contains(&s.handler().display().to_string()), "{m}");
    assert!(m.contains("q3tts init"), "{m}");
    d.wait_log("[reload] error:");
    // Still an error on the next request (not a silent switch to the built-in handler).
    assert_eq!(
        request(&d.socket, generate("c", json!({})))["status"],
        "error"
    );

    s.write("handlers.rhai", &handler_v("two"));
    let r = request(&d.socket, generate("d", json!({})));
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["v"], "two");
}

#[test]
fn handler_truncated_mid_save_is_a_syntax_error_with_its_position() {
    let s = Scratch::new();
    s.write("handlers.rhai", &handler_v("whole"));
    let d = Daemon::start(&s, &[]);
    assert_eq!(request(&d.socket, generate("a", json!({})))["v"], "whole");

    // The editor has written only the first part of the file (a same-second, shorter save).
    let full = handler_v("saved");
    let cut = &full[..full.find("#{").unwrap() + 5];
    s.write("handlers.rhai", cut);
    let r = request(&d.socket, generate("b", json!({})));
    assert_eq!(r["status"], "error", "{r}");
    let m = message(&r);
    let at = format!("{}:", s.handler().display());
    let pos = m.find(&at).unwrap_or_else(|| panic!("no path in {m}"));
    let rest: Vec<&str> = m[pos + at.len()..].splitn(3, ':').collect();
    assert!(rest.len() == 3, "no line:col in {m}");
    assert!(rest[0].parse::<u32>().unwrap() >= 3, "line in {m}");
    assert!(rest[1].parse::<u32>().is_ok(), "column in {m}");
    assert!(m.contains("syntax error"), "{m}");

    // The save completes: the next request runs the new code.
    s.write("handlers.rhai", &full);
    let r = request(&d.socket, generate("c", json!({})));
    assert_eq!(r["v"], "saved", "{r}");
}

#[test]
fn unwritable_outputs_are_errors_naming_path_and_reason_and_the_daemon_serves_on() {
    let s = Scratch::new();
    let d = Daemon::start(&s, &[]);
    std::fs::create_dir(s.path("adir")).unwrap();
    s.write("afile", "");
    let mut cases: Vec<(String, &str)> = vec![
        (s.path("adir").display().to_string(), "is a directory"),
        ("/dev/full".into(), "no space left on device"),
        (
            s.path("afile/out.wav").display().to_string(),
            "Not a directory",
        ),
        (
            s.path("missing/out.wav").display().to_string(),
            "does not exist",
        ),
    ];
    if unsafe { libc::geteuid() } == 0 {
        // Root writes through permission bits; sysfs refuses new files to everyone.
        cases.push(("/sys/out.wav".into(), "permission denied"));
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir(s.path("ro")).unwrap();
        std::fs::set_permissions(s.path("ro"), std::fs::Permissions::from_mode(0o500)).unwrap();
        cases.push((
            s.path("ro/out.wav").display().to_string(),
            "permission denied",
        ));
    }
    for (i, (out, reason)) in cases.iter().enumerate() {
        let r = request(
            &d.socket,
            generate(
                "Hello there.",
                json!({"output": out, "options": {"max_new_tokens": 4, "format": "wav"}}),
            ),
        );
        assert_eq!(r["status"], "error", "{out}: {r}");
        let m = message(&r);
        assert!(m.contains(out.as_str()), "{out}: {m}");
        assert!(
            m.to_lowercase().contains(&reason.to_lowercase()),
            "{out}: {m}"
        );
        good_request(&d, &s.path(&format!("good-{i}.wav")));
    }
}

#[test]
fn sigkill_mid_request_ends_the_client_and_serve_starts_again() {
    let s = Scratch::new();
    s.write("handlers.rhai", STREAM_HANDLER);
    let mut d = Daemon::start(&s, &[]);
    let mut c = Conn::open(&d.socket);
    c.send(&stream_request("cut short", 100_000));
    c.until_event("started");
    d.signal(libc::SIGKILL);
    d.wait_exit();
    // The waiting client sees the connection end (no hang; the read timeout is 30 s).
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the client did not see the end: {e}"),
        }
    }
    let lock = s.path("d.sock.lock");
    assert!(
        s.socket().exists() && lock.exists(),
        "SIGKILL leaves socket and lock file"
    );
    // The kernel released the lock: a new daemon takes it and replaces the stale socket.
    let d2 = Daemon::start(&s, &[]);
    assert_eq!(read_to(&lock).trim(), d2.child.id().to_string());
    let r = request(&d2.socket, stream_request("after", 1));
    assert_eq!(r["status"], "ok", "{r}");
}

#[test]
fn client_killed_mid_request_cancels_its_utterance() {
    let s = Scratch::new();
    let d = Daemon::start(&s, &[]);
    let text = "A long one, never ending.";
    // EOS suppressed and a large token cap: the utterance runs until something stops it.
    let mut client = Command::new(EXE)
        .arg("--socket")
        .arg(s.socket())
        .arg("--handlers")
        .arg(s.handler())
        .args([
            "-x",
            "suppress_eos=true",
            "--max-new-tokens",
            "100000",
            "-o",
        ])
        .arg(s.path("long.wav"))
        .arg(text)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let st = request(&d.socket, json!({"action": "status"}));
        if st["generating"] == text {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never started: {}",
            d.log()
        );
        assert!(
            client.try_wait().unwrap().is_none(),
            "the client ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    client.kill().unwrap();
    client.wait().unwrap();
    d.wait_log("[cancel] \"A long one, never ending.\" (client hung up)");
    let start = Instant::now();
    while request(&d.socket, json!({"action": "status"}))["generating"] != Value::Null {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the utterance goes on: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    good_request(&d, &s.path("next.wav"));
}

/// Streams silence to a client that does not read (stuck), or synthesises to a file with EOS
/// suppressed for `options.tokens` frames (long, with steady progress).
const DEADLINE_HANDLER: &str = r#"
fn handle(model, request) {
    if request.output == "-" {
        let out = open_output("-");
        for i in 0..100000 { out.write(silence(1.0)); }
        out.finish();
        return #{};
    }
    let out = open_output(request.output);
    let s = model.generate(request.text, #{ max_new_tokens: request.options.tokens, suppress_eos: true });
    for c in s { out.write(c); }
    out.finish()
}
"#;

#[test]
fn a_request_without_audio_progress_hits_the_deadline_but_a_long_synthesis_does_not() {
    let s = Scratch::new();
    s.write("handlers.rhai", DEADLINE_HANDLER);
    let d = Daemon::start(&s, &["--progress-timeout", "2"]);
    // Stuck: the output never drains, so no new audio is made.
    let mut c = Conn::open(&d.socket);
    c.send(&json!({"action": "generate", "text": "stuck", "output": "-"}));
    c.until_event("started");
    d.wait_log("[deadline] \"stuck\" (no audio for 2s");
    let (_, _, r) = c.finish();
    assert_eq!(r["status"], "error", "{r}");
    assert!(message(&r).contains("no new audio for 2s"), "{r}");
    assert!(message(&r).contains("--progress-timeout"), "{r}");

    // Long: 400 frames (32 s of audio) take longer than the deadline with the tiny model in a
    // test build, but every chunk is progress, so it runs to its end.
    let out = s.path("long.wav");
    let t = Instant::now();
    let r = request(
        &d.socket,
        generate("long", json!({"output": out, "options": {"tokens": 400}})),
    );
    eprintln!(
        "long synthesis took {:.1}s against a 2s progress deadline",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(r["status"], "ok", "{r}");
    // All of it (within a frame: the streamed decoder's edge), not a cut-off part.
    let samples = read_audio(&out).len();
    assert!(samples >= 399 * 1920, "{samples} samples");
    assert!(!d.log().contains("[deadline] \"long\""), "{}", d.log());
}

/// A PulseAudio server with one null sink, in the scratch directory (as the audio crate's
/// tests run one): the daemon's speakers, which the test can take away and bring back.
struct Pulse {
    dir: std::path::PathBuf,
    server: Option<std::process::Child>,
}

impl Pulse {
    /// `None` (after saying "NOT RUN") where pulseaudio is not installed; under CI that fails.
    fn start(s: &Scratch) -> Option<Pulse> {
        let missing: Vec<&str> = ["pulseaudio", "pactl"]
            .into_iter()
            .filter(|t| !tool_exists(t))
            .collect();
        if !missing.is_empty() {
            let why = format!(
                "audio device loss not run: {} not installed",
                missing.join(", ")
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "{why} (.ci/run installs them)"
            );
            eprintln!("NOT RUN: {why}");
            return None;
        }
        let dir = s.path("pulse");
        std::fs::create_dir_all(dir.join("runtime")).unwrap();
        std::fs::create_dir_all(dir.join("home")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("runtime"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let mut p = Pulse { dir, server: None };
        p.launch();
        Some(p)
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.join("runtime/pulse/native")
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("XDG_RUNTIME_DIR", self.dir.join("runtime"))
            .env("PULSE_RUNTIME_PATH", self.dir.join("runtime/pulse"))
            .env("PULSE_SERVER", format!("unix:{}", self.socket().display()))
            .env("HOME", self.dir.join("home"));
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let mut cmd = Command::new("pulseaudio");
        cmd.args([
            "--daemonize=no",
            "--exit-idle-time=-1",
            "-n",
            "--use-pid-file=no",
            "--load=module-native-protocol-unix auth-anonymous=1",
            "--load=module-null-sink sink_name=nullsink rate=48000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        self.env(&mut cmd);
        self.server = Some(cmd.spawn().unwrap());
        let start = Instant::now();
        while !self.pactl(&["info"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "pulseaudio did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pactl(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("pactl");
        cmd.args(args);
        self.env(&mut cmd);
        cmd.stdin(Stdio::null()).output().unwrap()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tool_exists(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Plays `options.halves` half-seconds of silence on the speakers.
const SPEAKERS_HANDLER: &str = r#"
fn handle(model, request) {
    let out = open_output(request.output);
    for i in 0..request.options.halves { out.write(silence(0.5)); }
    out.finish()
}
"#;

#[test]
fn audio_device_lost_mid_utterance_fails_that_request_and_the_next_reopens_it() {
    let s = Scratch::new();
    let Some(mut pulse) = Pulse::start(&s) else {
        return;
    };
    s.write("handlers.rhai", SPEAKERS_HANDLER);
    let d = Daemon::start_with(&s, &["--audio-backend", "pulse"], |cmd| pulse.env(cmd));
    let mut c = Conn::open(&d.socket);
    c.send(&json!({"action": "generate", "text": "playing", "options": {"halves": 120}}));
    c.until_event("started");
    // Wait until the daemon's stream is playing on the server, then take the server away.
    let start = Instant::now();
    while pulse
        .pactl(&["list", "short", "sink-inputs"])
        .stdout
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no stream appeared: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pulse.kill();
    let (_, _, r) = c.finish();
    assert_eq!(r["status"], "error", "{r}");
    assert!(message(&r).contains("audio device lost"), "{r}");
    d.wait_log("[reload] error:");

    // The server is back: the next request opens the device again.
    pulse.launch();
    let r = request(
        &d.socket,
        json!({"action": "generate", "text": "again", "options": {"halves": 1}}),
    );
    assert_eq!(r["status"], "ok", "{r}");
    assert!(
        d.log().contains("[reload] \"again\" -> speakers"),
        "{}",
        d.log()
    );
}
