//! The wire format between the client and the daemon.
//!
//! Every message is a **frame**: a 4-byte big-endian length, then that many bytes. Frames are
//! at most [`MAX_FRAME`] (8 MiB). A frame normally holds one UTF-8 JSON object:
//!
//! * request (client → daemon), one per connection:
//!   `{"action": "generate" | "status" | "stop" | "shutdown", "text", "language", "instruct",
//!   "speaker", "output", "wait", "all", "model", "options": {…}}`.
//!   Unknown actions or top-level keys and mistyped fields are refused. `options` carries the
//!   generation knobs with fixed types (`seed`, `top_k`, `max_new_tokens`: non-negative
//!   integers; `temperature`, `top_p`, `repetition_penalty`: numbers; `greedy`: bool;
//!   `ref_audio`: absolute path; `ref_text`, `format`: strings); other keys pass through to the
//!   handler untouched. `model` (optional) names the model the client expects; a daemon serving
//!   another model refuses. `all` (with `stop`) also empties the queue.
//! * events (daemon → client), zero or more: `{"event": "queued", "position": n}`,
//!   `{"event": "started"}`, `{"event": "audio", …}` (below).
//! * the final reply, exactly one: `{"status": "ok", …what the handler returned…}` or
//!   `{"status": "error", "message": "…"}` (`"busy": true` when the queue was full).
//!
//! **Audio to the client (`"output": "-"`).** The daemon sends the event
//! `{"event": "audio", "encoding": "f32le", "sample_rate": 24000, "channels": 1}`; every frame
//! after it is raw audio — little-endian f32 mono samples — until an **empty frame** ends the
//! stream. JSON frames (more events, the final reply) follow as usual. A handler may open the
//! stream at most once per request.

use std::io::{self, Read, Write};

use serde_json::{json, Map, Value};

/// The largest frame either side accepts.
pub const MAX_FRAME: usize = 8 << 20;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection before sending any byte of a header.
    Closed,
    /// The header announced more than [`MAX_FRAME`] bytes.
    TooLarge(usize),
    /// The connection ended (or timed out) in the middle of a frame.
    Truncated {
        expected: usize,
        got: usize,
    },
    /// A read timed out before the frame was complete.
    TimedOut,
    Io(io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => write!(f, "connection closed"),
            FrameError::TooLarge(n) => {
                write!(f, "frame of {n} bytes is over the {} byte limit", MAX_FRAME)
            }
            FrameError::Truncated { expected, got } => {
                write!(
                    f,
                    "connection ended after {got} of {expected} bytes of a frame"
                )
            }
            FrameError::TimedOut => write!(f, "timed out waiting for the rest of the frame"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Read exactly `buf.len()` bytes; `Ok(n)` with `n < len` means EOF after `n` bytes.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(got),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(FrameError::TimedOut)
            }
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(got)
}

/// Read one frame's payload.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; 4];
    match read_full(r, &mut header)? {
        0 => return Err(FrameError::Closed),
        4 => {}
        got => return Err(FrameError::Truncated { expected: 4, got }),
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    let got = read_full(r, &mut payload)?;
    if got < len {
        return Err(FrameError::Truncated { expected: len, got });
    }
    Ok(payload)
}

/// Write one frame (header and payload in one write where possible).
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    if payload.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame over 8 MiB",
        ));
    }
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    w.flush()
}

/// Write a JSON value as one frame.
pub fn write_json(w: &mut impl Write, value: &Value) -> io::Result<()> {
    write_frame(w, value.to_string().as_bytes())
}

/// Encode samples as one raw audio frame payload (little-endian f32).
pub fn audio_payload(samples: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 4);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Decode a raw audio frame payload.
pub fn decode_audio(payload: &[u8]) -> Result<Vec<f32>, String> {
    if !payload.len().is_multiple_of(4) {
        return Err(format!(
            "audio frame of {} bytes is not whole f32 samples",
            payload.len()
        ));
    }
    Ok(payload
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Most samples one audio frame carries (keeps frames far below [`MAX_FRAME`]).
pub const AUDIO_FRAME_SAMPLES: usize = 48_000;

/// The event that opens an audio stream.
pub fn audio_event(sample_rate: u32) -> Value {
    json!({"event": "audio", "encoding": "f32le", "sample_rate": sample_rate, "channels": 1})
}

/// An error reply.
pub fn error_reply(message: impl Into<String>) -> Value {
    json!({"status": "error", "message": message.into()})
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Generate,
    Status,
    Stop,
    Shutdown,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Generate => "generate",
            Action::Status => "status",
            Action::Stop => "stop",
            Action::Shutdown => "shutdown",
        }
    }
}

/// A parsed, validated request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub action: Action,
    pub text: Option<String>,
    pub language: Option<String>,
    pub instruct: Option<String>,
    pub speaker: Option<String>,
    /// A path (absolute, resolved by the client), `"-"` to stream to the client, or none for
    /// the speakers.
    pub output: Option<String>,
    /// `false`: queue, reply at once and detach from the connection.
    pub wait: bool,
    /// With `stop`: also empty the queue.
    pub all: bool,
    /// The model the client expects the daemon to serve.
    pub model: Option<String>,
    pub options: Map<String, Value>,
}

impl Request {
    pub fn new(action: Action) -> Request {
        Request {
            action,
            text: None,
            language: None,
            instruct: None,
            speaker: None,
            output: None,
            wait: true,
            all: false,
            model: None,
            options: Map::new(),
        }
    }

    /// The JSON object sent on the wire (keys with no value are left out).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("action".into(), self.action.as_str().into());
        let strings = [
            ("text", &self.text),
            ("language", &self.language),
            ("instruct", &self.instruct),
            ("speaker", &self.speaker),
            ("output", &self.output),
            ("model", &self.model),
        ];
        for (k, v) in strings {
            if let Some(v) = v {
                m.insert(k.into(), v.clone().into());
            }
        }
        if !self.wait {
            m.insert("wait".into(), false.into());
        }
        if self.all {
            m.insert("all".into(), true.into());
        }
        if !self.options.is_empty() {
            m.insert("options".into(), Value::Object(self.options.clone()));
        }
        Value::Object(m)
    }
}

/// The request map a handler receives: `#{text, language, instruct, speaker, output, options}`.
pub fn handler_request(req: &Request) -> Value {
    json!({
        "text": req.text,
        "language": req.language,
        "instruct": req.instruct,
        "speaker": req.speaker,
        "output": req.output,
        "options": Value::Object(req.options.clone()),
    })
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "action", "text", "language", "instruct", "speaker", "output", "wait", "all", "model",
    "options",
];

/// Parse and validate a request frame. Errors are messages for an error reply.
pub fn parse_request(payload: &[u8]) -> Result<Request, String> {
    let text =
        std::str::from_utf8(payload).map_err(|e| format!("request is not valid UTF-8 ({e})"))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("request is not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err(format!(
            "request must be a JSON object, got {}",
            kind(&value)
        ));
    };
    if let Some(k) = obj.keys().find(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown request key {k:?}; known keys: {}",
            TOP_LEVEL_KEYS.join(", ")
        ));
    }
    let action = match obj.get("action") {
        Some(Value::String(s)) => match s.as_str() {
            "generate" => Action::Generate,
            "status" => Action::Status,
            "stop" => Action::Stop,
            "shutdown" => Action::Shutdown,
            other => {
                return Err(format!(
                    "unknown action {other:?}; use generate, status, stop or shutdown"
                ))
            }
        },
        Some(v) => return Err(format!("\"action\" must be a string, got {}", kind(v))),
        None => return Err("request has no \"action\"".into()),
    };
    let mut req = Request::new(action);
    req.text = opt_string(&obj, "text")?;
    req.language = opt_string(&obj, "language")?;
    req.instruct = opt_string(&obj, "instruct")?;
    req.speaker = opt_string(&obj, "speaker")?;
    req.output = opt_string(&obj, "output")?;
    req.model = opt_string(&obj, "model")?;
    req.wait = opt_bool(&obj, "wait")?.unwrap_or(true);
    req.all = opt_bool(&obj, "all")?.unwrap_or(false);
    req.options = match obj.get("options") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => {
            check_options(o)?;
            o.clone()
        }
        Some(v) => return Err(format!("\"options\" must be an object, got {}", kind(v))),
    };
    if action == Action::Generate && req.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return Err("generate needs a non-empty \"text\"".into());
    }
    if let Some(out) = &req.output {
        if out != "-" && !std::path::Path::new(out).is_absolute() {
            return Err(format!(
                "\"output\" must be an absolute path or \"-\", got {out:?}"
            ));
        }
    }
    Ok(req)
}

/// Type-check the option keys whose types are fixed; others pass through.
pub fn check_options(o: &Map<String, Value>) -> Result<(), String> {
    for (k, v) in o {
        if v.is_null() {
            continue;
        }
        let ok = match k.as_str() {
            "seed" | "top_k" | "max_new_tokens" => v.is_u64(),
            "temperature" | "top_p" | "repetition_penalty" => v.is_number(),
            "greedy" => v.is_boolean(),
            "ref_text" | "format" => v.is_string(),
            "ref_audio" => match v.as_str() {
                Some(p) if std::path::Path::new(p).is_absolute() => true,
                Some(p) => {
                    return Err(format!(
                        "option \"ref_audio\" must be an absolute path, got {p:?}"
                    ))
                }
                None => false,
            },
            _ => true,
        };
        if !ok {
            let want = match k.as_str() {
                "seed" | "top_k" | "max_new_tokens" => "a non-negative integer",
                "temperature" | "top_p" | "repetition_penalty" => "a number",
                "greedy" => "a boolean",
                _ => "a string",
            };
            return Err(format!("option {k:?} must be {want}, got {}", kind(v)));
        }
    }
    Ok(())
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("{key:?} must be a string, got {}", kind(v))),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(format!("{key:?} must be a boolean, got {}", kind(v))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> Vec<u8> {
        let mut v = (bytes.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_json(&mut buf, &json!({"action": "status"})).unwrap();
        assert_eq!(&buf[..4], &(buf.len() as u32 - 4).to_be_bytes());
        let payload = read_frame(&mut &buf[..]).unwrap();
        assert_eq!(parse_request(&payload).unwrap().action, Action::Status);
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let header = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &header[..]),
            Err(FrameError::TooLarge(_))
        ));
        let half = [0u8, 0];
        assert!(matches!(
            read_frame(&mut &half[..]),
            Err(FrameError::Truncated { .. })
        ));
        let short = [0u8, 0, 0, 10, b'{'];
        assert!(matches!(
            read_frame(&mut &short[..]),
            Err(FrameError::Truncated {
                expected: 10,
                got: 1
            })
        ));
        assert!(matches!(read_frame(&mut &[][..]), Err(FrameError::Closed)));
    }

    #[test]
    fn strict_parsing() {
        let bad = [
            (&b"\xff\xfe"[..], "UTF-8"),
            (b"{not json", "not valid JSON"),
            (b"[1]", "must be a JSON object"),
            (br#"{"action":"dance"}"#, "unknown action"),
            (
                br#"{"action":"status","colour":1}"#,
                "unknown request key \"colour\"",
            ),
            (
                br#"{"action":"generate","text":5}"#,
                "\"text\" must be a string",
            ),
            (
                br#"{"action":"generate","text":"hi","wait":"no"}"#,
                "\"wait\" must be a boolean",
            ),
            (
                br#"{"action":"generate","text":"hi","options":{"seed":-1}}"#,
                "non-negative integer",
            ),
            (
                br#"{"action":"generate","text":"hi","options":{"top_p":"x"}}"#,
                "must be a number",
            ),
            (
                br#"{"action":"generate","text":"hi","options":{"greedy":1}}"#,
                "must be a boolean",
            ),
            (
                br#"{"action":"generate","text":"hi","options":{"ref_audio":"a.wav"}}"#,
                "absolute",
            ),
            (
                br#"{"action":"generate","text":"hi","output":"out.wav"}"#,
                "absolute path",
            ),
            (br#"{"action":"generate"}"#, "non-empty \"text\""),
            (br#"{"text":"hi"}"#, "no \"action\""),
        ];
        for (payload, want) in bad {
            let err = parse_request(payload).unwrap_err();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }

    #[test]
    fn options_pass_through() {
        let req = parse_request(
            br#"{"action":"generate","text":"hi","options":{"seed":7,"greedy":true,"speed":1.5}}"#,
        )
        .unwrap();
        assert_eq!(req.options["seed"], 7);
        assert_eq!(req.options["speed"], 1.5);
        assert!(req.wait);
        let back = parse_request(req.to_json().to_string().as_bytes()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn audio_payload_round_trip() {
        let s = [0.0f32, -1.0, 0.25, 1.0];
        assert_eq!(decode_audio(&audio_payload(&s)).unwrap(), s);
        assert!(decode_audio(&[1, 2, 3]).is_err());
        let f = frame(&audio_payload(&s));
        assert_eq!(read_frame(&mut &f[..]).unwrap().len(), 16);
    }
}
