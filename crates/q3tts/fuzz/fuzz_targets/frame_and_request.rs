//! libFuzzer target: the bytes as a client's stream (one frame read, its payload parsed) and
//! as a request payload. Accepted requests must satisfy the protocol's rules and re-parse from
//! their own JSON. The protocol module is compiled in from the binary crate's source.

#![no_main]
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/protocol.rs"]
mod protocol;

fn check(payload: &[u8]) {
    let Ok(req) = protocol::parse_request(payload) else { return };
    if req.action == protocol::Action::Generate {
        assert!(req.text.as_deref().is_some_and(|t| !t.trim().is_empty()));
    }
    if let Some(out) = &req.output {
        assert!(out == "-" || std::path::Path::new(out).is_absolute());
    }
    assert!(protocol::check_options(&req.options).is_ok());
    let again = protocol::parse_request(req.to_json().to_string().as_bytes())
        .expect("an accepted request re-parses from its own JSON");
    assert_eq!(again.action, req.action);
    assert_eq!(again.text, req.text);
    assert_eq!(again.output, req.output);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = protocol::read_frame(&mut &data[..]) {
        assert!(payload.len() + 4 <= data.len());
        check(&payload);
    }
    check(data);
});
