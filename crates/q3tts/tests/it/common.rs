//! Shared test helpers: a daemon on a temporary socket, raw protocol clients, fixtures.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const EXE: &str = env!("CARGO_BIN_EXE_q3tts");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn tiny_model() -> PathBuf {
    repo_root().join("testdata/tiny-custom-voice")
}

/// A scratch directory with the socket, handler and outputs of one test.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        // Short paths: Unix socket paths are limited to ~100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("q3t")
            .tempdir_in("/tmp")
            .unwrap();
        Scratch { dir }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn socket(&self) -> PathBuf {
        self.path("d.sock")
    }
    pub fn handler(&self) -> PathBuf {
        self.path("handlers.rhai")
    }
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }
}

/// A running `q3tts serve`.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Start a daemon on `s.socket()` with handler `s.handler()` and extra args; wait until it
    /// accepts connections.
    pub fn start(s: &Scratch, extra: &[&str]) -> Daemon {
        Daemon::start_with(s, extra, |_| {})
    }

    pub fn start_with(s: &Scratch, extra: &[&str], tweak: impl FnOnce(&mut Command)) -> Daemon {
        Daemon::start_model(s, Path::new(EXE), &tiny_model(), extra, tweak)
    }

    /// As `start_with`, running the binary `exe` and serving the model in `model`.
    pub fn start_model(
        s: &Scratch,
        exe: &Path,
        model: &Path,
        extra: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Daemon {
        let log = s.path(&format!("daemon-{}.log", std::process::id()));
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .arg("--model")
            .arg(model)
            .arg("--socket")
            .arg(s.socket())
            .arg("--handlers")
            .arg(s.handler())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        tweak(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let socket = s.socket();
        let start = Instant::now();
        loop {
            if UnixStream::connect(&socket).is_ok() && read_to(&log).contains("listening on") {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("daemon exited early ({status}): {}", read_to(&log));
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "daemon did not start: {}",
                read_to(&log)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon { child, socket, log }
    }

    pub fn log(&self) -> String {
        read_to(&self.log)
    }

    /// Wait for the daemon to exit (bounded), returning its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "daemon did not exit: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Wait until the log contains `needle` (bounded).
    pub fn wait_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "log never showed {needle:?}: {log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_to(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// A raw protocol connection.
pub struct Conn {
    pub stream: UnixStream,
}

impl Conn {
    pub fn open(socket: &Path) -> Conn {
        let stream = UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Conn { stream }
    }

    pub fn send(&mut self, v: &Value) {
        self.send_raw(v.to_string().as_bytes());
    }

    pub fn send_raw(&mut self, payload: &[u8]) {
        let mut buf = (payload.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(payload);
        self.stream.write_all(&buf).unwrap();
    }

    /// The next frame; `None` when the daemon closed the connection.
    pub fn frame(&mut self) -> Option<Vec<u8>> {
        let mut h = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.stream.read(&mut h[got..]) {
                Ok(0) => {
                    assert_eq!(got, 0, "connection closed inside a frame header");
                    return None;
                }
                Ok(n) => got += n,
                Err(e) => panic!("read failed: {e}"),
            }
        }
        let len = u32::from_be_bytes(h) as usize;
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).unwrap();
        Some(buf)
    }

    pub fn json(&mut self) -> Option<Value> {
        self.frame()
            .map(|f| serde_json::from_slice(&f).expect("a JSON frame"))
    }

    /// Read until the final reply, skipping events and audio; returns (events, audio samples,
    /// reply). Asserts the connection then closes (exactly one reply).
    pub fn finish(&mut self) -> (Vec<Value>, Vec<f32>, Value) {
        let mut events = Vec::new();
        let mut audio = Vec::new();
        loop {
            let v = self.json().expect("connection closed before the reply");
            if v.get("event").and_then(Value::as_str) == Some("audio") {
                loop {
                    let f = self.frame().expect("audio stream cut");
                    if f.is_empty() {
                        break;
                    }
                    audio.extend(
                        f.chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    );
                }
                events.push(v);
                continue;
            }
            if v.get("event").is_some() {
                events.push(v);
                continue;
            }
            assert!(self.frame().is_none(), "more than one reply");
            return (events, audio, v);
        }
    }

    /// Read events until one named `name` arrives.
    pub fn until_event(&mut self, name: &str) -> Value {
        loop {
            let v = self.json().expect("closed before the event");
            if v.get("event").and_then(Value::as_str) == Some(name) {
                return v;
            }
            assert!(
                v.get("status").is_none(),
                "got a reply instead of {name}: {v}"
            );
        }
    }
}

/// One request, one reply.
pub fn request(socket: &Path, v: Value) -> Value {
    let mut c = Conn::open(socket);
    c.send(&v);
    c.finish().2
}

pub fn generate(text: &str, extra: Value) -> Value {
    let mut v = json!({"action": "generate", "text": text});
    if let Value::Object(m) = extra {
        for (k, x) in m {
            v[k] = x;
        }
    }
    v
}

/// Run the binary with args; returns its output.
pub fn q3tts(args: &[&str], socket: &Path, handler: &Path) -> Output {
    Command::new(EXE)
        .arg("--socket")
        .arg(socket)
        .arg("--handlers")
        .arg(handler)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Samples of an audio file.
pub fn read_audio(p: &Path) -> Vec<f32> {
    let (s, rate) = q3tts_audio::read_audio_file(p).unwrap();
    assert_eq!(rate, 24_000);
    s
}

/// A tensor of f32 from a fixture file.
pub fn fixture_f32(name: &str, key: &str) -> Vec<f32> {
    let bytes = std::fs::read(repo_root().join("testdata/fixtures").join(name)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(key).unwrap();
    assert_eq!(t.dtype(), safetensors::Dtype::F32);
    t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Largest absolute difference (lengths must match).
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A handler that streams `options.seconds` of silence to the client ("-") one second at a
/// time (the client's reading paces it), else returns at once. Replies with the text.
pub const STREAM_HANDLER: &str = r#"
fn handle(model, request) {
    let seconds = request.options.seconds ?? 0;
    if seconds > 0 {
        let out = open_output("-");
        for i in 0..seconds { out.write(silence(1.0)); }
        out.finish();
    }
    #{ text: request.text }
}
"#;

pub fn stream_request(text: &str, seconds: i64) -> Value {
    json!({"action": "generate", "text": text, "output": "-", "options": {"seconds": seconds}})
}
