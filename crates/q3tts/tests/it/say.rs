//! Say to a file: the daemon's output equals the in-process output and the reference fixture.

use crate::common::*;

const ARGS: &[&str] = &[
    "-s",
    "ryan",
    "-l",
    "english",
    "--greedy",
    "--max-new-tokens",
    "12",
];

fn say_args<'a>(out: &'a str, model: &'a str) -> Vec<&'a str> {
    let mut a = vec!["--model", model];
    a.extend_from_slice(ARGS);
    a.extend_from_slice(&["-o", out, "Hello, world."]);
    a
}

#[test]
fn daemon_output_equals_in_process_output_and_the_fixture() {
    let s = Scratch::new();
    let model = tiny_model().display().to_string();
    // No handler file: the built-in default handler.
    let daemon = Daemon::start(&s, &[]);
    let via_daemon = s.path("daemon.wav");
    let o = q3tts(
        &say_args(via_daemon.to_str().unwrap(), &model),
        &s.socket(),
        &s.handler(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("in-process"), "{}", stderr(&o));
    let log = daemon.wait_log("[reload] \"Hello, world.\" -> daemon.wav (");
    assert!(log.contains("using the built-in default"), "{log}");

    // In-process: a socket nobody listens on.
    let inproc = s.path("inproc.wav");
    let o = q3tts(
        &say_args(inproc.to_str().unwrap(), &model),
        &s.path("none.sock"),
        &s.handler(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no daemon on"), "{}", stderr(&o));

    let a = read_audio(&via_daemon);
    let b = read_audio(&inproc);
    assert_eq!(a, b, "daemon and in-process output differ");
    // The reference waveform; the WAV is 16-bit, so allow one quantisation step on top.
    let reference = fixture_f32("text_to_wav_custom_voice.safetensors", "wav");
    assert_eq!(reference.len(), 21_120);
    let d = max_diff(&a, &reference);
    assert!(d <= 1.0 / 32768.0 + 1e-4, "max diff {d}");
}

#[test]
fn stdout_stream_through_the_daemon_equals_the_file() {
    let s = Scratch::new();
    let model = tiny_model().display().to_string();
    let _daemon = Daemon::start(&s, &[]);
    let file = s.path("f.wav");
    let o = q3tts(
        &say_args(file.to_str().unwrap(), &model),
        &s.socket(),
        &s.handler(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = q3tts(&say_args("-", &model), &s.socket(), &s.handler());
    assert!(o.status.success(), "{}", stderr(&o));
    let piped = s.path("piped.wav");
    std::fs::write(&piped, &o.stdout).unwrap();
    assert_eq!(read_audio(&piped), read_audio(&file));
}

#[test]
fn relative_output_is_resolved_by_the_client_and_stdin_gives_the_text() {
    let s = Scratch::new();
    let _daemon = Daemon::start(&s, &[]);
    let mut child = std::process::Command::new(EXE)
        .current_dir(s.dir.path())
        .arg("--socket")
        .arg(s.socket())
        .arg("--handlers")
        .arg(s.handler())
        .args(ARGS)
        .args(["-o", "rel.wav"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hello, world.")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = fixture_f32("text_to_wav_custom_voice.safetensors", "wav");
    let got = read_audio(&s.path("rel.wav"));
    assert!(max_diff(&got, &reference) <= 1.0 / 32768.0 + 1e-4);
}
