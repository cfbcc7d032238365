//! Property tests (proptest) of the frame reader and the request parser in [`crate::protocol`],
//! run in-process so thousands of inputs take a second: arbitrary bytes, bytes delivered in
//! arbitrary pieces, arbitrary JSON, request-shaped objects with arbitrary field values, and
//! mutations of the seed corpus in `tests/corpus/` (every file there is also replayed as is).
//! `tests/it/prop_protocol.rs` sends the same kinds of input to a real daemon over its socket.
//!
//! The properties: nothing panics; a frame is returned exactly when the bytes hold one whole
//! frame within the size limit, whatever the read sizes; every accepted request satisfies the
//! protocol's rules and survives a round trip through its own JSON; every refusal is a
//! non-empty message. Set `PROPTEST_CASES` to run more cases.

use std::io::{self, Read};
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::protocol::{
    check_options, parse_request, read_frame, write_frame, Action, FrameError, MAX_FRAME,
};

/// A reader that hands out its bytes in the given piece sizes, with an `Interrupted` error
/// before some pieces, and then either EOF or `WouldBlock` (a read timeout).
struct Pieces {
    data: Vec<u8>,
    pos: usize,
    sizes: Vec<usize>,
    interrupts: Vec<bool>,
    step: usize,
    then_would_block: bool,
    interrupted: bool,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.data.len() {
            return if self.then_would_block {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(0)
            };
        }
        let k = self.step % self.interrupts.len().max(1);
        if !self.interrupted && self.interrupts.get(k).copied().unwrap_or(false) {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.interrupted = false;
        let size = self
            .sizes
            .get(self.step % self.sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        self.step += 1;
        let n = size.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What `read_frame` must return for `bytes` read to the end (`eof`) or to a timeout.
fn check_frame_result(
    bytes: &[u8],
    got: &Result<Vec<u8>, FrameError>,
    eof: bool,
) -> Result<(), TestCaseError> {
    if bytes.is_empty() {
        if eof {
            prop_assert!(matches!(got, Err(FrameError::Closed)), "{got:?}");
        } else {
            prop_assert!(matches!(got, Err(FrameError::TimedOut)), "{got:?}");
        }
        return Ok(());
    }
    if bytes.len() < 4 {
        if eof {
            let want = bytes.len();
            prop_assert!(
                matches!(got, Err(FrameError::Truncated { expected: 4, got: g }) if *g == want),
                "{got:?}"
            );
        } else {
            prop_assert!(matches!(got, Err(FrameError::TimedOut)), "{got:?}");
        }
        return Ok(());
    }
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if len > MAX_FRAME {
        prop_assert!(
            matches!(got, Err(FrameError::TooLarge(n)) if *n == len),
            "{got:?}"
        );
    } else if bytes.len() - 4 >= len {
        prop_assert_eq!(
            got.as_ref().ok().map(Vec::as_slice),
            Some(&bytes[4..4 + len])
        );
    } else if eof {
        let have = bytes.len() - 4;
        prop_assert!(
            matches!(got, Err(FrameError::Truncated { expected, got: g }) if *expected == len && *g == have),
            "{got:?}"
        );
    } else {
        prop_assert!(matches!(got, Err(FrameError::TimedOut)), "{got:?}");
    }
    Ok(())
}

/// Bytes that often hold a plausible header: either fully random, or a small length followed by
/// random bytes of about that length.
fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (0u32..300, prop::collection::vec(any::<u8>(), 0..320)).prop_map(|(len, body)| {
            let mut v = len.to_be_bytes().to_vec();
            v.extend(body);
            v
        }),
        (any::<u32>(), prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(len, body)| {
            let mut v = len.to_be_bytes().to_vec();
            v.extend(body);
            v
        }),
    ]
}

/// Keys the parser knows, and some it does not.
const KEYS: &[&str] = &[
    "action",
    "text",
    "language",
    "instruct",
    "speaker",
    "output",
    "wait",
    "all",
    "model",
    "options",
    "seed",
    "temperature",
    "top_p",
    "repetition_penalty",
    "top_k",
    "max_new_tokens",
    "greedy",
    "ref_audio",
    "ref_text",
    "format",
    "speed",
    "Action",
    "",
];

const WORDS: &[&str] = &[
    "generate",
    "status",
    "stop",
    "shutdown",
    "Generate",
    "",
    " ",
    "-",
    "/tmp/out.wav",
    "out.wav",
    "/",
    "hello",
    "你好",
    "\u{0}",
    "null",
    "1e400",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Binary fractions with few digits: serde_json (without `float_roundtrip`) parses them
        // exactly, so a round trip can be compared for equality.
        (any::<i32>(), 0u32..9).prop_map(|(m, k)| Value::from(f64::from(m) / f64::from(1u32 << k))),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(WORDS).prop_map(|s| Value::String(s.into())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KEYS).prop_map(String::from),
        "[a-z_]{1,8}"
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects shaped like requests: an action (mostly valid), then known and unknown keys with
/// values of any type, options included.
fn request_like() -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        4 => prop::sample::select(&["generate", "status", "stop", "shutdown"][..])
            .prop_map(|s| Value::String(s.into())),
        1 => json_leaf(),
    ];
    let field = (prop::sample::select(&KEYS[..10]), json_value());
    let option = (key(), json_value());
    (
        action,
        prop::collection::vec(field, 0..5),
        prop::option::of(prop::collection::vec(option, 0..5)),
    )
        .prop_map(|(action, fields, options)| {
            let mut m = Map::new();
            m.insert("action".into(), action);
            for (k, v) in fields {
                m.insert(k.to_string(), v);
            }
            if let Some(o) = options {
                m.insert("options".into(), Value::Object(o.into_iter().collect()));
            }
            Value::Object(m)
        })
}

/// What every accepted request must satisfy.
fn check_accepted(
    source: Option<&Map<String, Value>>,
    payload: &[u8],
) -> Result<(), TestCaseError> {
    match parse_request(payload) {
        Err(msg) => prop_assert!(!msg.trim().is_empty(), "empty error message"),
        Ok(req) => {
            if req.action == Action::Generate {
                prop_assert!(req.text.as_deref().is_some_and(|t| !t.trim().is_empty()));
            }
            if let Some(out) = &req.output {
                prop_assert!(
                    out == "-" || std::path::Path::new(out).is_absolute(),
                    "{out:?}"
                );
            }
            prop_assert!(check_options(&req.options).is_ok());
            if let Some(src) = source {
                prop_assert_eq!(
                    src.get("action").and_then(Value::as_str),
                    Some(req.action.as_str())
                );
                for k in src.keys() {
                    prop_assert!(
                        KEYS[..10].contains(&k.as_str()),
                        "unknown key {k:?} accepted"
                    );
                }
            }
            let again = parse_request(req.to_json().to_string().as_bytes());
            prop_assert!(again.is_ok(), "its own JSON is refused: {again:?}");
            let again = again.unwrap();
            prop_assert!(
                same(&again.to_json(), &req.to_json()),
                "round trip changed the request: {req:?} -> {again:?}"
            );
        }
    }
    Ok(())
}

/// JSON equality, with numbers compared to the last bits: serde_json without its
/// `float_roundtrip` feature may read a 17-digit number back one ulp off.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The seed corpus: `tests/corpus/requests/*` (request payloads) and `tests/corpus/frames/*`
/// (raw bytes as sent on the socket).
pub fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// A byte-level mutation.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop::sample::select(&b"{}[]\":,0-. \\\xff"[..])
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
    ]
}

fn mutate(mut v: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = v.len();
        match *m {
            Mutation::Flip(i, b) if n > 0 => v[i % n] ^= b,
            Mutation::Insert(i, b) => v.insert(i % (n + 1), b),
            Mutation::Delete(i) if n > 0 => {
                v.remove(i % n);
            }
            Mutation::Truncate(i) => v.truncate(i % (n + 1)),
            Mutation::Duplicate(a, b) if n > 0 => {
                let (a, b) = (a % n, b % n);
                let (lo, hi) = (a.min(b), a.max(b));
                let part = v[lo..=hi].to_vec();
                v.splice(hi + 1..hi + 1, part);
            }
            _ => {}
        }
    }
    v
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn number_tolerant_equality() {
    let a: Value = serde_json::json!({"a": [1.0, 2], "b": "x"});
    assert!(same(&a, &a.clone()));
    assert!(same(
        &serde_json::json!(0.1),
        &serde_json::json!(0.1 + 1e-17)
    ));
    assert!(!same(&serde_json::json!(0.1), &serde_json::json!(0.1001)));
    assert!(!same(
        &serde_json::json!({"a": 1}),
        &serde_json::json!({"a": 1, "b": 2})
    ));
    assert!(!same(&serde_json::json!([1]), &serde_json::json!(["1"])));
}

#[test]
fn seed_corpus_is_handled_as_recorded() {
    // Every seed parses without a panic; the names say whether it must be accepted.
    let requests = corpus("requests");
    assert!(requests.len() >= 20, "seed corpus too small");
    for (name, bytes) in &requests {
        let r = parse_request(bytes);
        if name.starts_with("ok-") {
            assert!(r.is_ok(), "{name}: {r:?}");
        } else {
            assert!(r.is_err(), "{name} should be refused: {r:?}");
        }
        check_accepted(None, bytes).unwrap();
        check_frame_result(&frame(bytes), &read_frame(&mut &frame(bytes)[..]), true).unwrap();
    }
    for (name, bytes) in corpus("frames") {
        let got = read_frame(&mut &bytes[..]);
        check_frame_result(&bytes, &got, true).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn frame_reader_agrees_with_the_bytes(bytes in frame_bytes()) {
        let got = read_frame(&mut &bytes[..]);
        check_frame_result(&bytes, &got, true)?;
    }

    #[test]
    fn frame_reader_is_indifferent_to_read_sizes(
        bytes in frame_bytes(),
        sizes in prop::collection::vec(1usize..9, 1..8),
        interrupts in prop::collection::vec(any::<bool>(), 1..5),
        then_would_block in any::<bool>(),
    ) {
        let mut r = Pieces { data: bytes.clone(), pos: 0, sizes, interrupts, step: 0, then_would_block, interrupted: false };
        let got = read_frame(&mut r);
        check_frame_result(&bytes, &got, !then_would_block)?;
        // The reader never reads past the frame it returns.
        if let Ok(p) = &got {
            let consumed = r.pos;
            prop_assert!(consumed <= bytes.len());
            prop_assert!(consumed >= 4 + p.len());
        }
    }

    #[test]
    fn frames_round_trip(payload in prop::collection::vec(any::<u8>(), 0..2048), tail in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut buf = Vec::new();
        write_frame(&mut buf, &payload).unwrap();
        let first = buf.len();
        buf.extend_from_slice(&tail);
        let mut r = &buf[..];
        prop_assert_eq!(read_frame(&mut r).unwrap(), payload);
        prop_assert_eq!(r.len(), buf.len() - first, "read into the next frame");
    }

    #[test]
    fn parser_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_accepted(None, &bytes)?;
        if std::str::from_utf8(&bytes).is_err() {
            prop_assert!(parse_request(&bytes).unwrap_err().contains("UTF-8"));
        }
    }

    #[test]
    fn parser_survives_arbitrary_json(v in json_value()) {
        let src = v.as_object().cloned();
        check_accepted(src.as_ref(), v.to_string().as_bytes())?;
    }

    #[test]
    fn parser_enforces_the_rules_on_request_shaped_objects(v in request_like()) {
        let src = v.as_object().cloned();
        check_accepted(src.as_ref(), v.to_string().as_bytes())?;
    }

    #[test]
    fn parser_survives_mutated_seeds(
        pick in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..6),
        framed in any::<bool>(),
    ) {
        let seeds = corpus("requests");
        let (_, seed) = &seeds[pick.index(seeds.len())];
        if framed {
            let bytes = mutate(frame(seed), &muts);
            let got = read_frame(&mut &bytes[..]);
            check_frame_result(&bytes, &got, true)?;
            if let Ok(p) = got {
                check_accepted(None, &p)?;
            }
        } else {
            check_accepted(None, &mutate(seed.clone(), &muts))?;
        }
    }

    #[test]
    fn valid_requests_round_trip(
        action in prop::sample::select(&["generate", "status", "stop", "shutdown"][..]),
        text in "\\PC{1,40}",
        language in prop::option::of("[a-z]{2,10}"),
        output in prop::option::of(prop_oneof![Just("-".to_string()), "/[a-z]{1,8}/[a-z]{1,8}\\.wav"]),
        wait in any::<bool>(),
        seed in prop::option::of(any::<u64>()),
        temperature in prop::option::of((0u32..40).prop_map(|t| f64::from(t) / 8.0)),
        greedy in prop::option::of(any::<bool>()),
        extra in prop::option::of(json_value()),
    ) {
        let text = format!("x{text}");
        let mut options = Map::new();
        if let Some(s) = seed { options.insert("seed".into(), s.into()); }
        if let Some(t) = temperature { options.insert("temperature".into(), t.into()); }
        if let Some(g) = greedy { options.insert("greedy".into(), g.into()); }
        if let Some(x) = extra { options.insert("speed".into(), x); }
        let v = serde_json::json!({
            "action": action, "text": text, "language": language, "output": output,
            "wait": wait, "options": options,
        });
        let req = parse_request(v.to_string().as_bytes());
        prop_assert!(req.is_ok(), "{v} refused: {req:?}");
        let req = req.unwrap();
        prop_assert_eq!(req.text.as_deref(), Some(text.as_str()));
        prop_assert_eq!(req.wait, wait);
        prop_assert_eq!(&req.options, &options);
        check_accepted(v.as_object(), v.to_string().as_bytes())?;
    }
}
