//! Malformed, oversized and half-sent frames: an error reply, the connection closed, the
//! daemon serving on; a half-sent frame delays nobody else.

use std::io::Write;

use serde_json::json;

use crate::common::*;

fn bad(d: &Daemon, payload: &[u8], want: &str) {
    let mut c = Conn::open(&d.socket);
    c.send_raw(payload);
    let v = c.json().expect("an error reply");
    assert_eq!(v["status"], "error", "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains(want), "{msg:?} lacks {want:?}");
    assert!(c.frame().is_none(), "connection not closed after an error");
}

#[test]
fn malformed_requests_get_error_replies() {
    let s = Scratch::new();
    s.write("handlers.rhai", STREAM_HANDLER);
    let d = Daemon::start(&s, &[]);
    bad(&d, b"{\"action\": \"status\"", "not valid JSON");
    bad(&d, b"\xff\xfe\x00", "not valid UTF-8");
    bad(&d, b"[]", "must be a JSON object");
    bad(&d, br#"{"action": "sing"}"#, "unknown action");
    bad(
        &d,
        br#"{"action": "status", "volume": 11}"#,
        "unknown request key \"volume\"",
    );
    bad(
        &d,
        br#"{"action": "generate", "text": ["a"]}"#,
        "\"text\" must be a string",
    );
    bad(
        &d,
        br#"{"action": "generate", "text": "a", "options": {"seed": "x"}}"#,
        "option \"seed\"",
    );
    bad(
        &d,
        br#"{"action": "generate", "text": "a", "output": "rel.wav"}"#,
        "absolute path",
    );

    // Oversized: the header alone announces more than 8 MiB.
    let mut c = Conn::open(&d.socket);
    c.stream
        .write_all(&((8u32 << 20) + 1).to_be_bytes())
        .unwrap();
    let v = c.json().unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("over the 8388608 byte limit"),
        "{v}"
    );

    // Half-sent: a client sends two header bytes and waits; others are served meanwhile.
    let mut half = Conn::open(&d.socket);
    half.stream.write_all(&[0, 0]).unwrap();
    let mut half2 = Conn::open(&d.socket);
    half2.stream.write_all(&[0, 0, 0, 50, b'{']).unwrap();
    for _ in 0..3 {
        assert_eq!(
            request(&d.socket, json!({"action": "status"}))["status"],
            "ok"
        );
    }
    assert_eq!(
        request(&d.socket, stream_request("still here", 1))["status"],
        "ok"
    );
    // A half-sent frame ended by a hang-up is dropped without harm.
    drop(half2);
    drop(half);
    assert_eq!(
        request(&d.socket, json!({"action": "status"}))["status"],
        "ok"
    );
    let log = d.log();
    assert!(log.contains("bad request"), "{log}");
}
