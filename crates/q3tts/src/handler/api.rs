//! What a handler script sees: the `Model`, `Session`, `Audio` and `Output` types and the
//! native helpers. Heavy work happens here in Rust; the script is glue.
//!
//! * `model.generate(text, options)` → a `Session`; `for chunk in session { … }` pulls one chunk
//!   from the engine per iteration. `model.sample_rate`, `.variant`, `.size`, `.dtype`,
//!   `.speakers`, `.languages`, `.default_speaker`.
//! * `Audio` (the engine's shared chunk, never copied): `.len`, `.duration`, `.sample_rate`,
//!   `.peak`.
//! * `open_output(target [, format])`: `()`/`""` speakers, `"-"` the client (or stdout),
//!   a path a file; `out.write(audio)`, `out.finish()` → `#{samples, seconds, output}`.
//! * `play(audio)`, `save(audio, path [, format])`, `concat(array)`, `gain(audio, factor)`,
//!   `silence(seconds)`, `split_sentences(text, max_chars)`, `debug_panic(message)`.
//!
//! Every size a script hands to a native function is checked before anything is allocated.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use q3tts_audio::Format;
use q3tts_engine::{AudioChunk, Model, RefAudio, Session, SynthesisRequest};
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::context::{Ctx, OpenSink, SharedSink};
use super::text;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Longest audio a script may build in one buffer (`concat`, `silence`): 30 minutes.
const MAX_BUFFER_SECONDS: f64 = 1800.0;
/// Longest silence in one call.
const MAX_SILENCE_SECONDS: f64 = 600.0;
/// Largest text handed to the model in one call.
const MAX_TEXT_BYTES: usize = 1 << 20;
/// Largest `max_new_tokens` a script may ask for.
const MAX_NEW_TOKENS: i64 = 1 << 20;
/// Largest reference audio file.
const MAX_REF_AUDIO_BYTES: u64 = 256 << 20;

fn err<T>(msg: impl Into<String>) -> RhaiResult<T> {
    Err(msg.into().into())
}

/// The model as the script sees it.
#[derive(Clone)]
pub struct ScriptModel {
    pub model: Model,
}

/// One synthesis in progress; iterating pulls chunks from the engine.
#[derive(Clone)]
pub struct ScriptSession(Rc<RefCell<SessionState>>);

struct SessionState {
    session: Option<Session>,
    ctx: Rc<Ctx>,
    seed: u64,
    notes: Vec<String>,
    chunks: i64,
    samples: i64,
}

impl IntoIterator for ScriptSession {
    type Item = RhaiResult<AudioChunk>;
    type IntoIter = SessionIter;
    fn into_iter(self) -> SessionIter {
        SessionIter(self)
    }
}

pub struct SessionIter(ScriptSession);

impl Iterator for SessionIter {
    type Item = RhaiResult<AudioChunk>;
    fn next(&mut self) -> Option<Self::Item> {
        let mut st = self.0 .0.borrow_mut();
        let ctx = st.ctx.clone();
        let _native = ctx.native_call();
        let next = st.session.as_mut()?.next();
        match next {
            Some(Ok(chunk)) => {
                super::progress::audio_frame();
                st.chunks += 1;
                st.samples += chunk.len() as i64;
                Some(Ok(chunk))
            }
            Some(Err(e)) => {
                st.session = None;
                Some(err(e.to_string()))
            }
            None => {
                st.session = None;
                None
            }
        }
    }
}

/// An output a script opened.
#[derive(Clone)]
pub struct ScriptOutput(SharedSink);

/// Register the whole API on `engine`.
pub fn register(engine: &mut Engine, ctx: Rc<Ctx>) {
    register_model(engine, ctx.clone());
    register_audio(engine);
    register_outputs(engine, ctx.clone());
    register_helpers(engine, ctx);
}

fn register_model(engine: &mut Engine, ctx: Rc<Ctx>) {
    engine
        .register_type_with_name::<ScriptModel>("Model")
        .register_get("sample_rate", |m: &mut ScriptModel| {
            m.model.info().sample_rate as i64
        })
        .register_get("variant", |m: &mut ScriptModel| {
            m.model.info().variant.as_str().to_string()
        })
        .register_get("size", |m: &mut ScriptModel| m.model.info().size.clone())
        .register_get("dtype", |m: &mut ScriptModel| m.model.info().dtype.clone())
        .register_get("path", |m: &mut ScriptModel| {
            m.model.info().path.display().to_string()
        })
        .register_get("speakers", |m: &mut ScriptModel| {
            strings(&m.model.info().speakers)
        })
        .register_get("languages", |m: &mut ScriptModel| {
            strings(&m.model.info().languages)
        })
        .register_get("default_speaker", |m: &mut ScriptModel| {
            m.model
                .info()
                .default_speaker
                .clone()
                .map_or(Dynamic::UNIT, Dynamic::from)
        });
    let c = ctx.clone();
    engine.register_fn(
        "generate",
        move |m: &mut ScriptModel, text: &str, opts: Map| generate(&c, m, text, &opts),
    );
    let c = ctx;
    engine.register_fn("generate", move |m: &mut ScriptModel, text: &str| {
        generate(&c, m, text, &Map::new())
    });
    engine
        .register_type_with_name::<ScriptSession>("Session")
        .register_iterator_result::<ScriptSession, AudioChunk>()
        .register_get("seed", |s: &mut ScriptSession| s.0.borrow().seed as i64)
        .register_get("chunks", |s: &mut ScriptSession| s.0.borrow().chunks)
        .register_get("notes", |s: &mut ScriptSession| {
            s.0.borrow()
                .notes
                .iter()
                .map(|n| Dynamic::from(n.clone()))
                .collect::<Array>()
        })
        .register_get("samples", |s: &mut ScriptSession| s.0.borrow().samples)
        .register_get("frames", |s: &mut ScriptSession| {
            s.0.borrow()
                .session
                .as_ref()
                .map_or(-1, |s| s.stats().frames as i64)
        });
}

fn strings(v: &[String]) -> Array {
    v.iter().map(|s| Dynamic::from(s.clone())).collect()
}

fn generate(ctx: &Rc<Ctx>, m: &ScriptModel, text: &str, opts: &Map) -> RhaiResult<ScriptSession> {
    let _native = ctx.native_call();
    if text.len() > MAX_TEXT_BYTES {
        return err(format!(
            "generate: text of {} bytes is over the 1 MiB limit",
            text.len()
        ));
    }
    let base = ctx.base_dir.borrow().clone();
    let mut req = synthesis_request(text, opts, &base).map_err(|e| format!("generate: {e}"))?;
    // Pick the seed here when the script gives none, within what a script integer (i64) and
    // `--seed` can carry, so the seed a reply reports always reproduces the audio.
    req.sampling.seed.get_or_insert_with(fresh_seed);
    let cancel = ctx.cancel.borrow().clone();
    let session = m
        .model
        .synthesize(&req, cancel)
        .map_err(|e| e.to_string())?;
    let seed = session.seed();
    let notes = session.notes().to_vec();
    Ok(ScriptSession(Rc::new(RefCell::new(SessionState {
        session: Some(session),
        ctx: ctx.clone(),
        seed,
        notes,
        chunks: 0,
        samples: 0,
    }))))
}

/// A random seed in `0..=i64::MAX`.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() & (i64::MAX as u64)
}

const GENERATE_KEYS: &[&str] = &[
    "language",
    "speaker",
    "instruct",
    "ref_audio",
    "ref_text",
    "seed",
    "temperature",
    "top_k",
    "top_p",
    "repetition_penalty",
    "greedy",
    "max_new_tokens",
    "chunk_frames",
    "first_chunk_frames",
    "suppress_eos",
    "non_streaming_mode",
];

/// Build the engine request from a script's option map (unit values mean "not set").
pub fn synthesis_request(text: &str, opts: &Map, base: &Path) -> Result<SynthesisRequest, String> {
    let mut req = SynthesisRequest::new(text);
    for (k, v) in opts {
        if v.is_unit() {
            continue;
        }
        match k.as_str() {
            "language" => req.language = string_opt(k, v)?,
            "speaker" => req.speaker = Some(string_opt(k, v)?),
            "instruct" => req.instruct = Some(string_opt(k, v)?),
            "ref_text" => req.ref_text = Some(string_opt(k, v)?),
            "ref_audio" => {
                let path = resolve(base, &string_opt(k, v)?);
                req.ref_audio = Some(load_ref_audio(&path)?);
            }
            "seed" => req.sampling.seed = Some(int_opt(k, v, 0, i64::MAX)? as u64),
            "temperature" => req.sampling.temperature = Some(float_opt(k, v, 0.0, 100.0)?),
            "top_p" => req.sampling.top_p = Some(float_opt(k, v, 0.0, 1.0)?),
            "repetition_penalty" => {
                req.sampling.repetition_penalty = Some(float_opt(k, v, 0.0, 100.0)?)
            }
            "top_k" => req.sampling.top_k = Some(int_opt(k, v, 0, 1 << 20)? as usize),
            "max_new_tokens" => {
                req.sampling.max_new_tokens = Some(int_opt(k, v, 1, MAX_NEW_TOKENS)? as usize)
            }
            "chunk_frames" => req.chunk_frames = int_opt(k, v, 1, 1024)? as usize,
            "first_chunk_frames" => req.first_chunk_frames = Some(int_opt(k, v, 1, 1024)? as usize),
            "greedy" => req.sampling.greedy = bool_opt(k, v)?,
            "suppress_eos" => req.suppress_eos = bool_opt(k, v)?,
            "non_streaming_mode" => req.non_streaming_mode = Some(bool_opt(k, v)?),
            other => {
                return Err(format!(
                    "unknown option {other:?}; known options: {}",
                    GENERATE_KEYS.join(", ")
                ))
            }
        }
    }
    Ok(req)
}

fn load_ref_audio(path: &Path) -> Result<RefAudio, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("ref_audio {}: {e}", path.display()))?;
    if meta.len() > MAX_REF_AUDIO_BYTES {
        return Err(format!(
            "ref_audio {}: file is over 256 MiB",
            path.display()
        ));
    }
    let samples = q3tts_audio::load_mono_24k(path).map_err(|e| format!("ref_audio: {e}"))?;
    Ok(RefAudio {
        samples,
        sample_rate: q3tts_engine::SAMPLE_RATE,
    })
}

fn string_opt(k: &str, v: &Dynamic) -> Result<String, String> {
    v.clone()
        .into_string()
        .map_err(|t| format!("option {k:?} must be a string, got {t}"))
}

fn int_opt(k: &str, v: &Dynamic, lo: i64, hi: i64) -> Result<i64, String> {
    let n = v
        .as_int()
        .map_err(|t| format!("option {k:?} must be an integer, got {t}"))?;
    if n < lo || n > hi {
        return Err(format!(
            "option {k:?} must be between {lo} and {hi}, got {n}"
        ));
    }
    Ok(n)
}

fn float_opt(k: &str, v: &Dynamic, lo: f64, hi: f64) -> Result<f64, String> {
    let x = v
        .as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|t| format!("option {k:?} must be a number, got {t}"))?;
    if !(lo..=hi).contains(&x) {
        return Err(format!(
            "option {k:?} must be between {lo} and {hi}, got {x}"
        ));
    }
    Ok(x)
}

fn bool_opt(k: &str, v: &Dynamic) -> Result<bool, String> {
    v.as_bool()
        .map_err(|t| format!("option {k:?} must be a boolean, got {t}"))
}

/// Resolve a script-given path against the handler's directory.
pub fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn register_audio(engine: &mut Engine) {
    engine
        .register_type_with_name::<AudioChunk>("Audio")
        .register_get("len", |a: &mut AudioChunk| a.len() as i64)
        .register_get("duration", |a: &mut AudioChunk| a.duration_secs())
        .register_get("sample_rate", |a: &mut AudioChunk| a.sample_rate() as i64)
        .register_get("peak", |a: &mut AudioChunk| {
            a.samples().iter().fold(0f32, |m, s| m.max(s.abs())) as f64
        })
        .register_fn("to_string", |a: &mut AudioChunk| {
            format!("Audio({} samples, {:.3}s)", a.len(), a.duration_secs())
        });
}

fn register_outputs(engine: &mut Engine, ctx: Rc<Ctx>) {
    engine
        .register_type_with_name::<ScriptOutput>("Output")
        .register_get("name", |o: &mut ScriptOutput| o.0.borrow().name.clone());
    let c = ctx.clone();
    engine.register_fn("open_output", move |target: Dynamic| {
        open_output(&c, target, Dynamic::UNIT)
    });
    let c = ctx.clone();
    engine.register_fn("open_output", move |target: Dynamic, format: Dynamic| {
        open_output(&c, target, format)
    });
    let c = ctx.clone();
    engine.register_fn("write", move |o: &mut ScriptOutput, a: AudioChunk| {
        write(&c, &o.0, &a)
    });
    let c = ctx.clone();
    engine.register_fn("finish", move |o: &mut ScriptOutput| finish(&c, &o.0));
    let c = ctx.clone();
    engine.register_fn("play", move |a: AudioChunk| {
        let sink = speakers(&c, a.sample_rate())?;
        write(&c, &sink, &a)
    });
    let c = ctx.clone();
    engine.register_fn("save", move |a: AudioChunk, path: &str| {
        save(&c, &a, path, Dynamic::UNIT)
    });
    let c = ctx;
    engine.register_fn("save", move |a: AudioChunk, path: &str, format: Dynamic| {
        save(&c, &a, path, format)
    });
}

fn parse_format(format: &Dynamic) -> RhaiResult<Option<Format>> {
    if format.is_unit() {
        return Ok(None);
    }
    let name = format
        .clone()
        .into_string()
        .map_err(|t| format!("format must be a string, got {t}"))?;
    if name.is_empty() {
        return Ok(None);
    }
    Format::from_name(&name)
        .map(Some)
        .map_err(|e| e.to_string().into())
}

fn open_output(ctx: &Rc<Ctx>, target: Dynamic, format: Dynamic) -> RhaiResult<ScriptOutput> {
    let _native = ctx.native_call();
    let format = parse_format(&format)?;
    let rate = q3tts_engine::SAMPLE_RATE;
    let target = if target.is_unit() {
        String::new()
    } else {
        target
            .into_string()
            .map_err(|t| format!("open_output: target must be a string, got {t}"))?
    };
    let mut host = ctx.host.borrow_mut();
    let host = host.as_mut().ok_or("open_output: no request in progress")?;
    let (sink, name) = match target.as_str() {
        "" => (host.speakers(rate)?, "speakers".to_string()),
        "-" => {
            if ctx.stream_opened.replace(true) {
                return err("open_output(\"-\"): the stream to the client is already open");
            }
            (host.stream(rate, format)?, "stdout".to_string())
        }
        path => {
            let p = resolve(&ctx.base_dir.borrow(), path);
            let sink = q3tts_audio::open_file(&p, format, rate).map_err(|e| e.to_string())?;
            (sink, p.display().to_string())
        }
    };
    let shared = Rc::new(RefCell::new(OpenSink {
        sink: Some(sink),
        name,
        summary: None,
    }));
    ctx.sinks.borrow_mut().push(shared.clone());
    Ok(ScriptOutput(shared))
}

fn speakers(ctx: &Rc<Ctx>, _rate: u32) -> RhaiResult<SharedSink> {
    if let Some(s) = ctx.speakers.borrow().as_ref() {
        return Ok(s.clone());
    }
    let out = open_output(ctx, Dynamic::UNIT, Dynamic::UNIT)?;
    *ctx.speakers.borrow_mut() = Some(out.0.clone());
    Ok(out.0)
}

fn write(ctx: &Rc<Ctx>, sink: &SharedSink, a: &AudioChunk) -> RhaiResult<()> {
    let _native = ctx.native_call();
    if ctx.is_cancelled() {
        return err("cancelled");
    }
    if a.sample_rate() != q3tts_engine::SAMPLE_RATE {
        return err(format!(
            "write: audio at {} Hz, the output expects {} Hz",
            a.sample_rate(),
            q3tts_engine::SAMPLE_RATE
        ));
    }
    let mut s = sink.borrow_mut();
    let name = s.name.clone();
    let Some(out) = s.sink.as_mut() else {
        return err(format!("write: output {name} is already finished"));
    };
    let written = out
        .write(a.samples())
        .map_err(|e| format!("{name}: {e}").into());
    super::progress::audio_frame();
    written
}

fn finish(ctx: &Rc<Ctx>, sink: &SharedSink) -> RhaiResult<Map> {
    let _native = ctx.native_call();
    let mut s = sink.borrow_mut();
    if let Some(mut out) = s.sink.take() {
        let sum = out.finish().map_err(|e| format!("{}: {e}", s.name))?;
        s.summary = Some(sum);
    }
    let sum = s.summary.clone().unwrap_or_default();
    let mut m = Map::new();
    m.insert("samples".into(), (sum.samples as i64).into());
    let secs = if sum.sample_rate > 0 {
        sum.samples as f64 / sum.sample_rate as f64
    } else {
        0.0
    };
    m.insert("seconds".into(), secs.into());
    m.insert("output".into(), s.name.clone().into());
    Ok(m)
}

fn save(ctx: &Rc<Ctx>, a: &AudioChunk, path: &str, format: Dynamic) -> RhaiResult<Map> {
    let out = open_output(ctx, Dynamic::from(path.to_string()), format)?;
    if path == "-" || path.is_empty() {
        return err("save: needs a file path");
    }
    write(ctx, &out.0, a)?;
    finish(ctx, &out.0)
}

fn register_helpers(engine: &mut Engine, ctx: Rc<Ctx>) {
    let c = ctx.clone();
    engine.register_fn("concat", move |parts: Array| {
        let _native = c.native_call();
        concat(&parts)
    });
    let c = ctx.clone();
    engine.register_fn("gain", move |a: AudioChunk, factor: f64| {
        let _native = c.native_call();
        gain(&a, factor)
    });
    let c = ctx.clone();
    engine.register_fn("gain", move |a: AudioChunk, factor: i64| {
        let _native = c.native_call();
        gain(&a, factor as f64)
    });
    let c = ctx.clone();
    engine.register_fn("silence", move |seconds: f64| {
        let _native = c.native_call();
        silence(seconds)
    });
    let c = ctx.clone();
    engine.register_fn("silence", move |seconds: i64| {
        let _native = c.native_call();
        silence(seconds as f64)
    });
    let c = ctx;
    engine.register_fn(
        "split_sentences",
        move |t: &str, max_chars: i64| -> RhaiResult<Array> {
            let _native = c.native_call();
            if !(1..=100_000).contains(&max_chars) {
                return err(format!(
                    "split_sentences: max_chars must be 1..=100000, got {max_chars}"
                ));
            }
            Ok(text::split_sentences(t, max_chars as usize)
                .into_iter()
                .map(Dynamic::from)
                .collect())
        },
    );
    engine.register_fn("debug_panic", |msg: &str| -> () {
        panic!("debug_panic called by the handler: {msg}");
    });
}

fn concat(parts: &Array) -> RhaiResult<AudioChunk> {
    let rate = q3tts_engine::SAMPLE_RATE;
    let mut total = 0usize;
    let mut chunks = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let Some(a) = p.clone().try_cast::<AudioChunk>() else {
            return err(format!(
                "concat: element {i} is a {}, not Audio",
                p.type_name()
            ));
        };
        if a.sample_rate() != rate {
            return err(format!(
                "concat: element {i} is at {} Hz, not {rate}",
                a.sample_rate()
            ));
        }
        total += a.len();
        chunks.push(a);
    }
    if total as f64 > MAX_BUFFER_SECONDS * rate as f64 {
        return err(format!(
            "concat: result of {total} samples is over the 30 minute limit"
        ));
    }
    let mut out = Vec::with_capacity(total);
    for c in &chunks {
        out.extend_from_slice(c.samples());
    }
    Ok(AudioChunk::new(out, rate))
}

fn gain(a: &AudioChunk, factor: f64) -> RhaiResult<AudioChunk> {
    if !factor.is_finite() || factor.abs() > 1000.0 {
        return err(format!(
            "gain: factor must be a finite number within ±1000, got {factor}"
        ));
    }
    let f = factor as f32;
    let out: Vec<f32> = a.samples().iter().map(|s| s * f).collect();
    Ok(AudioChunk::new(out, a.sample_rate()))
}

fn silence(seconds: f64) -> RhaiResult<AudioChunk> {
    if !seconds.is_finite() || !(0.0..=MAX_SILENCE_SECONDS).contains(&seconds) {
        return err(format!(
            "silence: seconds must be between 0 and 600, got {seconds}"
        ));
    }
    let rate = q3tts_engine::SAMPLE_RATE;
    let n = (seconds * rate as f64).round() as usize;
    Ok(AudioChunk::new(vec![0f32; n], rate))
}

/// Make a script value from a JSON value.
pub fn to_dynamic(v: &serde_json::Value) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

/// Make a JSON value from a script value (custom types become their type name).
pub fn to_json(d: &Dynamic) -> serde_json::Value {
    if let Some(m) = d.read_lock::<Map>() {
        return serde_json::Value::Object(
            m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect(),
        );
    }
    if let Some(a) = d.read_lock::<Array>() {
        return serde_json::Value::Array(a.iter().map(to_json).collect());
    }
    if d.is_unit() {
        return serde_json::Value::Null;
    }
    if let Ok(b) = d.as_bool() {
        return b.into();
    }
    if let Ok(i) = d.as_int() {
        return i.into();
    }
    if let Ok(f) = d.as_float() {
        return serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into);
    }
    if let Some(s) = d.read_lock::<ImmutableString>() {
        return s.as_str().into();
    }
    if let Ok(c) = d.as_char() {
        return c.to_string().into();
    }
    serde_json::Value::String(format!("<{}>", d.type_name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let base = Path::new("/tmp");
        let mut m = Map::new();
        m.insert("seed".into(), Dynamic::from(5_i64));
        m.insert("greedy".into(), Dynamic::from(true));
        m.insert("temperature".into(), Dynamic::from(1_i64));
        m.insert("language".into(), Dynamic::UNIT);
        let r = synthesis_request("hi", &m, base).unwrap();
        assert_eq!(r.sampling.seed, Some(5));
        assert!(r.sampling.greedy);
        assert_eq!(r.sampling.temperature, Some(1.0));
        assert_eq!(r.language, "auto");
        m.insert("speeed".into(), Dynamic::from(1_i64));
        assert!(synthesis_request("hi", &m, base)
            .unwrap_err()
            .contains("unknown option"));
        let mut m = Map::new();
        m.insert("max_new_tokens".into(), Dynamic::from(-3_i64));
        assert!(synthesis_request("hi", &m, base)
            .unwrap_err()
            .contains("between"));
    }

    #[test]
    fn sizes_are_bounded() {
        assert!(silence(1e12).is_err());
        assert!(silence(f64::NAN).is_err());
        assert_eq!(silence(0.5).unwrap().len(), 12_000);
        let big = AudioChunk::new(vec![0f32; 24_000 * 1000], 24_000);
        let parts: Array = (0..2).map(|_| Dynamic::from(big.clone())).collect();
        assert!(concat(&parts).is_err());
        assert!(gain(&big, f64::INFINITY).is_err());
    }
}
