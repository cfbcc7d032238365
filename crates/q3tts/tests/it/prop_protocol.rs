//! Property test of the daemon's socket: whatever bytes a client sends — random bytes, frames
//! of random payloads, mutated requests from the seed corpus (`tests/corpus/`), request-shaped
//! JSON — the daemon answers with well-formed frames and at most one final reply, closes the
//! connection, and keeps serving. One daemon (with a handler that echoes instead of
//! synthesising) takes every case. The in-process properties of the same code, with many more
//! cases, are in `src/protocol_props.rs`.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use crate::common::*;

const ECHO_HANDLER: &str = "fn handle(model, request) { #{ echoed: request.text } }\n";

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/requests");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // Every case must leave the daemon running: no `shutdown` seed.
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .filter(|b| !b.windows(8).any(|w| w == b"shutdown"))
        .collect()
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// Whether `bytes` start with one whole frame within the limit (else the daemon needs EOF).
fn whole_frame(bytes: &[u8]) -> bool {
    if bytes.len() < 4 {
        return false;
    }
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    len > 8 << 20 || bytes.len() - 4 >= len
}

fn request_like() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,10}".prop_map(Value::String),
        Just(json!("/tmp/x.wav")),
        Just(json!({"seed": 1})),
        Just(json!([1, "a"])),
    ];
    let key = prop::sample::select(vec![
        "text", "language", "speaker", "instruct", "output", "wait", "all", "model", "options",
        "colour",
    ]);
    let action = prop::sample::select(vec!["generate", "status", "stop", "dance"]);
    (action, prop::collection::btree_map(key, value, 0..5)).prop_map(|(a, fields)| {
        let mut m: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        m.insert("action".into(), a.into());
        Value::Object(m)
    })
}

fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let seed = prop::sample::select(seeds);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|p| frame(&p)),
        (seed.clone(), any::<usize>(), any::<u8>()).prop_map(|(s, i, b)| {
            let mut s = s;
            if !s.is_empty() {
                let n = s.len();
                s[i % n] ^= b;
            }
            frame(&s)
        }),
        (seed, any::<usize>()).prop_map(|(s, cut)| {
            let f = frame(&s);
            f[..cut % (f.len() + 1)].to_vec()
        }),
        request_like().prop_map(|v| frame(v.to_string().as_bytes())),
    ]
}

/// Send `bytes`, read everything until the daemon closes; check the frames.
fn exchange(socket: &std::path::Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(bytes).unwrap();
    if !whole_frame(bytes) {
        s.shutdown(Shutdown::Write).unwrap();
    }
    // Read to the end. A daemon that closes with bytes of ours unread (a refused frame, or
    // bytes after the request) makes the kernel end our side with ECONNRESET instead of EOF,
    // after everything it sent: both count as the end.
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TestCaseError::fail(format!("no end: {e}"))),
        }
    }
    let mut rest = &got[..];
    let mut finals = 0;
    let mut audio = false;
    while !rest.is_empty() {
        prop_assert!(rest.len() >= 4, "a cut header");
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        prop_assert!(rest.len() >= 4 + len, "a cut frame");
        let payload = &rest[4..4 + len];
        rest = &rest[4 + len..];
        if audio {
            audio = !payload.is_empty();
            continue;
        }
        let v: Value = serde_json::from_slice(payload)
            .map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
        prop_assert_eq!(finals, 0, "a frame after the final reply: {}", v);
        if v.get("status").is_some() {
            finals += 1;
            if v["status"] == "error" {
                prop_assert!(
                    v["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{}",
                    v
                );
            }
        } else {
            audio = v["event"] == "audio";
        }
    }
    // Nothing sent: the daemon just closes; anything else gets its one reply.
    prop_assert_eq!(
        finals,
        usize::from(!bytes.is_empty()),
        "for {:?}",
        String::from_utf8_lossy(bytes)
    );
    Ok(())
}

#[test]
fn any_bytes_get_at_most_one_reply_and_the_daemon_serves_on() {
    let s = Scratch::new();
    s.write("handlers.rhai", ECHO_HANDLER);
    let d = Daemon::start(&s, &[]);
    let cases = std::env::var("Q3TTS_SOCKET_PROP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let socket = d.socket.clone();
    let ran = std::cell::Cell::new(0usize);
    let started = std::time::Instant::now();
    runner
        .run(&inputs(seeds()), |bytes| {
            ran.set(ran.get() + 1);
            exchange(&socket, &bytes)?;
            let st = request(&socket, json!({"action": "status"}));
            prop_assert_eq!(&st["status"], "ok");
            Ok(())
        })
        .unwrap();
    eprintln!(
        "{} inputs sent to the daemon in {:.2}s",
        ran.get(),
        started.elapsed().as_secs_f64()
    );
    assert!(ran.get() >= cases as usize);
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
}
