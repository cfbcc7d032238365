//! The client: builds a request from the command line, finds the daemon by connecting, sends
//! one frame and prints or streams what comes back. With no daemon it says so and runs the same
//! handler in-process.

use std::io::{IsTerminal, Read};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::cli::{Common, SayArgs};
use crate::protocol::{self, Action, Request};

/// Exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// A usage problem (exit 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Connect to the daemon; `None` when none is listening (no socket, or a stale one).
pub fn connect(socket: &Path) -> anyhow::Result<Option<UnixStream>> {
    match UnixStream::connect(socket) {
        Ok(s) => Ok(Some(s)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot connect to {}: {e}",
            socket.display()
        )),
    }
}

/// Build the `generate` request from the command line (paths made absolute here).
pub fn build_request(say: &SayArgs, common: &Common) -> anyhow::Result<Request> {
    let text = match &say.text {
        Some(t) => t.clone(),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(usage("give the text to speak as an argument or on stdin"));
            }
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .context("cannot read the text from stdin")?;
            t
        }
    };
    if text.trim().is_empty() {
        return Err(usage("the text to speak is empty"));
    }
    let mut req = Request::new(Action::Generate);
    req.text = Some(text);
    req.language = Some(say.language.clone());
    req.instruct = say.instruct.clone();
    req.speaker = say.speaker.clone();
    req.output = say.output.as_deref().map(absolute_output).transpose()?;
    req.wait = !say.no_wait;
    req.model = common.model.as_deref().map(crate::model::normalize_spec);
    req.options = options(say)?;
    Ok(req)
}

fn absolute_output(o: &str) -> anyhow::Result<String> {
    if o == "-" {
        return Ok(o.to_string());
    }
    Ok(absolute(Path::new(o))?.display().to_string())
}

fn absolute(p: &Path) -> anyhow::Result<std::path::PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(p))
}

fn options(say: &SayArgs) -> anyhow::Result<Map<String, Value>> {
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    };
    put("seed", say.seed.map(Value::from));
    put("temperature", say.temperature.map(Value::from));
    put("top_k", say.top_k.map(Value::from));
    put("top_p", say.top_p.map(Value::from));
    put(
        "repetition_penalty",
        say.repetition_penalty.map(Value::from),
    );
    put("max_new_tokens", say.max_new_tokens.map(Value::from));
    put("greedy", say.greedy.then_some(Value::Bool(true)));
    put("ref_text", say.ref_text.clone().map(Value::from));
    put("format", say.format.clone().map(Value::from));
    if let Some(r) = &say.ref_audio {
        o.insert(
            "ref_audio".into(),
            absolute(r)?.display().to_string().into(),
        );
    }
    for kv in &say.extra {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| usage(format!("-x takes KEY=VALUE, got {kv:?}")))?;
        if k.is_empty() {
            return Err(usage(format!("-x takes KEY=VALUE, got {kv:?}")));
        }
        let v = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.into()));
        o.insert(k.to_string(), v);
    }
    protocol::check_options(&o).map_err(usage)?;
    Ok(o)
}

/// Send one request and collect the reply; audio frames (`-o -`) go to `audio` as they come.
pub fn exchange(
    stream: &mut UnixStream,
    req: &Request,
    mut audio: impl FnMut(AudioEvent<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<Value> {
    protocol::write_json(stream, &req.to_json()).context("cannot send the request")?;
    loop {
        let frame = protocol::read_frame(stream)
            .map_err(|e| anyhow::anyhow!("the daemon did not answer: {e}"))?;
        let v: Value = serde_json::from_slice(&frame).context("the daemon sent bad JSON")?;
        match v.get("event").and_then(Value::as_str) {
            Some("audio") => {
                let rate = v
                    .get("sample_rate")
                    .and_then(Value::as_u64)
                    .unwrap_or(24_000) as u32;
                audio(AudioEvent::Start(rate))?;
                loop {
                    let f = protocol::read_frame(stream)
                        .map_err(|e| anyhow::anyhow!("audio stream broken: {e}"))?;
                    if f.is_empty() {
                        audio(AudioEvent::End)?;
                        break;
                    }
                    let samples = protocol::decode_audio(&f).map_err(|e| anyhow::anyhow!(e))?;
                    audio(AudioEvent::Samples(&samples))?;
                }
            }
            Some(_) => {}
            None => return Ok(v),
        }
    }
}

/// What arrives on an audio stream.
pub enum AudioEvent<'a> {
    Start(u32),
    Samples(&'a [f32]),
    End,
}

/// A one-shot control request (`status`, `stop`, `shutdown`).
pub fn control(socket: &Path, action: Action, all: bool) -> anyhow::Result<Option<Value>> {
    let Some(mut stream) = connect(socket)? else {
        return Ok(None);
    };
    let mut req = Request::new(action);
    req.all = all;
    exchange(&mut stream, &req, |_| Ok(())).map(Some)
}

/// Streams `-o -` audio from the daemon to stdout in the requested format.
pub struct StdoutAudio {
    format: q3tts_audio::Format,
    sink: Option<Box<dyn q3tts_audio::Sink>>,
}

impl StdoutAudio {
    pub fn new(format: Option<&str>) -> anyhow::Result<StdoutAudio> {
        let format = match format {
            Some(f) => q3tts_audio::Format::from_name(f).map_err(|e| usage(e.to_string()))?,
            None => q3tts_audio::Format::Wav,
        };
        Ok(StdoutAudio { format, sink: None })
    }

    pub fn handle(&mut self, ev: AudioEvent<'_>) -> anyhow::Result<()> {
        match ev {
            AudioEvent::Start(rate) => {
                self.sink = Some(q3tts_audio::stdout_sink(self.format, rate)?);
            }
            AudioEvent::Samples(s) => {
                if let Some(sink) = self.sink.as_mut() {
                    sink.write(s)?;
                }
            }
            AudioEvent::End => {
                if let Some(mut sink) = self.sink.take() {
                    sink.finish()?;
                }
            }
        }
        Ok(())
    }
}

/// Print a reply's interesting fields on stderr (one line), or its message on error.
/// Returns the exit code.
pub fn report(reply: &Value) -> i32 {
    if reply.get("status").and_then(Value::as_str) == Some("ok") {
        let mut parts = Vec::new();
        for k in ["output", "audio_seconds", "seed", "rtf"] {
            if let Some(v) = reply.get(k).filter(|v| !v.is_null()) {
                let s = match v {
                    Value::Number(n) if n.is_f64() => {
                        format!("{k}={:.2}", n.as_f64().unwrap_or(0.0))
                    }
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                };
                parts.push(s);
            }
        }
        if !parts.is_empty() {
            eprintln!("{}", parts.join(" "));
        }
        for note in reply
            .get("notes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = note.as_str() {
                eprintln!("note: {n}");
            }
        }
        EXIT_OK
    } else {
        let msg = reply
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the daemon failed");
        eprintln!("q3tts: {msg}");
        EXIT_FAILED
    }
}
