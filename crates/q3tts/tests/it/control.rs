//! Long requests made deterministic by backpressure: the handler streams silence to a client
//! that does not read, so the utterance stays in progress until the test acts. Assertions are
//! on the order of events, never on timing.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

fn stream_daemon(s: &Scratch, extra: &[&str]) -> Daemon {
    s.write("handlers.rhai", STREAM_HANDLER);
    Daemon::start(s, extra)
}

/// Start a long utterance and return its connection once the worker has started it.
fn long_request(d: &Daemon, text: &str) -> Conn {
    let mut c = Conn::open(&d.socket);
    c.send(&stream_request(text, 100_000));
    c.until_event("started");
    c
}

#[test]
fn status_is_answered_mid_generation_and_cancel_ends_it() {
    let s = Scratch::new();
    let d = stream_daemon(&s, &[]);
    let mut a = long_request(&d, "long one");
    let st = request(&d.socket, json!({"action": "status"}));
    assert_eq!(st["status"], "ok");
    assert_eq!(st["generating"], "long one");
    assert_eq!(st["requests_served"], 1);
    assert_eq!(st["variant"], "custom_voice");
    for key in [
        "model",
        "dtype",
        "uptime_s",
        "handler",
        "last_reload",
        "queue_length",
        "log",
    ] {
        assert!(st.get(key).is_some(), "status lacks {key}: {st}");
    }
    // `q3tts cancel` (the CLI) interrupts it.
    let o = q3tts(&["cancel"], &s.socket(), &s.handler());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cancelled the utterance"),
        "{}",
        stderr(&o)
    );
    let (_, audio, reply) = a.finish();
    assert_eq!(reply["status"], "error");
    assert_eq!(reply["message"], "cancelled");
    assert!(audio.len() < 100_000 * 24_000);
    d.wait_log("[cancel] \"long one\"");
    // And the daemon serves on.
    assert_eq!(
        request(&d.socket, stream_request("short", 1))["status"],
        "ok"
    );
}

#[test]
fn a_client_hang_up_cancels_its_utterance() {
    let s = Scratch::new();
    let d = stream_daemon(&s, &[]);
    let a = long_request(&d, "left early");
    drop(a);
    d.wait_log("[cancel] \"left early\" (client hung up)");
    let r = request(&d.socket, stream_request("next", 1));
    assert_eq!(r["status"], "ok", "{r}");
}

#[test]
fn queue_of_four_serves_five_in_order_and_refuses_eleven() {
    let s = Scratch::new();
    let d = stream_daemon(&s, &["--queue", "4"]);
    let mut first = long_request(&d, "client 0");
    let mut queued = Vec::new();
    let mut busy = 0;
    for i in 1..16 {
        let mut c = Conn::open(&d.socket);
        c.send(&stream_request(&format!("client {i}"), 0));
        let v = c.json().unwrap();
        if v["event"] == "queued" {
            assert_eq!(v["position"], queued.len() + 1);
            queued.push((i, c));
        } else {
            assert_eq!(v["status"], "error", "{v}");
            assert_eq!(v["busy"], true, "{v}");
            assert!(c.frame().is_none(), "busy client got more than one reply");
            busy += 1;
        }
    }
    assert_eq!(queued.len(), 4);
    assert_eq!(busy, 11);
    // Let the first one go: cancel it, then everyone queued is served in arrival order.
    request(&d.socket, json!({"action": "stop"}));
    let (_, _, r0) = first.finish();
    assert_eq!(r0["message"], "cancelled");
    let mut served = Vec::new();
    for (i, mut c) in queued {
        let (events, _, r) = c.finish();
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["text"], format!("client {i}"));
        assert!(events.iter().any(|e| e["event"] == "started"));
        served.push(r["served"].as_u64().unwrap());
    }
    assert_eq!(served, [2, 3, 4, 5], "served out of arrival order");
    let log = d.log();
    assert_eq!(log.matches("[busy]").count(), 11, "{log}");
}

#[test]
fn stop_all_empties_the_queue() {
    let s = Scratch::new();
    let d = stream_daemon(&s, &[]);
    let mut a = long_request(&d, "first");
    let mut b = Conn::open(&d.socket);
    b.send(&stream_request("second", 0));
    b.until_event("queued");
    let r = request(&d.socket, json!({"action": "stop", "all": true}));
    assert_eq!(r["dropped"], 1, "{r}");
    assert_eq!(b.finish().2["message"], "cancelled");
    assert_eq!(a.finish().2["message"], "cancelled");
}

#[test]
fn sigterm_mid_request_exits_cleanly_and_answers_everyone() {
    let s = Scratch::new();
    let mut d = stream_daemon(&s, &[]);
    let a = long_request(&d, "speaking");
    let mut waiting = Vec::new();
    for i in 0..2 {
        let mut c = Conn::open(&d.socket);
        c.send(&stream_request(&format!("waiting {i}"), 0));
        c.until_event("queued");
        waiting.push(c);
    }
    let reader = std::thread::spawn(move || {
        let mut a = a;
        a.finish()
    });
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    let (_, _, ra) = reader.join().unwrap();
    assert_eq!(ra["status"], "error");
    assert_eq!(ra["message"], "cancelled");
    for mut c in waiting {
        let r = c.finish().2;
        assert_eq!(r["status"], "error");
        assert!(
            r["message"].as_str().unwrap().contains("shutting down"),
            "{r}"
        );
    }
    assert!(!s.socket().exists(), "socket left behind");
    assert!(!s.path("d.sock.lock").exists(), "lock file left behind");
    assert!(d.log().trim_end().ends_with("shutdown"), "{}", d.log());
}

#[test]
fn stop_command_shuts_the_daemon_down() {
    let s = Scratch::new();
    let mut d = stream_daemon(&s, &[]);
    let o = q3tts(&["stop"], &s.socket(), &s.handler());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(d.wait_exit(), Some(0));
    assert!(!s.socket().exists());
    let o = q3tts(&["status"], &s.socket(), &s.handler());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no daemon is listening"),
        "{}",
        stderr(&o)
    );
    std::thread::sleep(Duration::from_millis(1));
}

#[test]
fn detached_request_replies_at_once() {
    let s = Scratch::new();
    let d = stream_daemon(&s, &[]);
    let mut a = long_request(&d, "busy now");
    let r = request(
        &d.socket,
        json!({"action": "generate", "text": "later", "wait": false}),
    );
    assert_eq!(r["status"], "ok");
    assert_eq!(r["queued"], true);
    request(&d.socket, json!({"action": "stop"}));
    a.finish();
    d.wait_log("[reload] \"later\" -> speakers");
}

#[test]
fn a_queued_client_that_hangs_up_is_never_served() {
    let s = Scratch::new();
    let d = stream_daemon(&s, &[]);
    let mut a = long_request(&d, "in progress");
    let mut b = Conn::open(&d.socket);
    b.send(&stream_request("queued one", 0));
    b.until_event("queued");
    drop(b);
    d.wait_log("[cancel] \"queued one\" (client hung up)");
    request(&d.socket, json!({"action": "stop"}));
    assert_eq!(a.finish().2["message"], "cancelled");
    let r = request(&d.socket, stream_request("after", 0));
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(
        r["served"], 2,
        "the hung-up request must not have been served: {r}"
    );
}
