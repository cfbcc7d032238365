//! A PulseAudio server with only a null sink, run as an ordinary process in a temporary runtime
//! directory, and a recorder on the sink's monitor (parec). Tests that use it hold [`LOCK`]:
//! they point this process's environment (`PULSE_SERVER`, `HOME` for the `.asoundrc`) at it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::util::{not_run, require, TempDir};

/// Rate the recorder captures at (the sink itself runs at 48 kHz, as real hardware would).
pub const REC_RATE: u32 = 24000;

static LOCK: Mutex<()> = Mutex::new(());

pub struct NullSink {
    _guard: MutexGuard<'static, ()>,
    dir: TempDir,
    server: Option<Child>,
}

impl NullSink {
    /// Starts the server; `None` (after "NOT RUN", or a panic under CI) if it cannot start.
    pub fn start(test: &str) -> Option<NullSink> {
        let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if !require(test, &["pulseaudio", "parec", "pactl"]) {
            return None;
        }
        let dir = TempDir::new("pulse");
        let home = dir.join("home");
        std::fs::create_dir_all(dir.join("runtime")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        std::fs::set_permissions(dir.join("runtime"), private).unwrap();
        // ALSA's default device goes to the Pulse server through libasound2-plugins.
        std::fs::write(
            home.join(".asoundrc"),
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n",
        )
        .unwrap();
        let mut sink = NullSink {
            _guard: guard,
            dir,
            server: None,
        };
        // SAFETY (edition 2021: safe fn): the variables are set while LOCK is held, and the
        // other tests in this binary do not read them.
        std::env::set_var("XDG_RUNTIME_DIR", sink.runtime());
        std::env::set_var("PULSE_RUNTIME_PATH", sink.runtime().join("pulse"));
        std::env::set_var("PULSE_SERVER", format!("unix:{}", sink.socket().display()));
        std::env::set_var("HOME", &home);
        std::env::remove_var("Q3TTS_AUDIO_BACKEND");
        std::env::remove_var("Q3TTS_PLAYER");
        match sink.launch() {
            Ok(()) => Some(sink),
            Err(why) => {
                not_run(
                    test,
                    &format!("the PulseAudio null sink did not start: {why}"),
                );
                None
            }
        }
    }

    /// Holds the environment lock without starting a server.
    pub fn lock_only() -> MutexGuard<'static, ()> {
        LOCK.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.server.as_ref().expect("running").id()
    }

    pub fn runtime(&self) -> PathBuf {
        self.dir.join("runtime")
    }

    pub fn socket(&self) -> PathBuf {
        self.runtime().join("pulse/native")
    }

    /// Starts (or restarts) the server process and waits until it answers.
    pub fn launch(&mut self) -> Result<(), String> {
        let _ = std::fs::remove_file(self.socket());
        let log =
            std::fs::File::create(self.dir.join("pulseaudio.log")).map_err(|e| e.to_string())?;
        let child = Command::new("pulseaudio")
            .args([
                "--daemonize=no",
                "--exit-idle-time=-1",
                "-n",
                "--use-pid-file=no",
                "--load=module-native-protocol-unix auth-anonymous=1",
                "--load=module-null-sink sink_name=nullsink rate=48000",
                "--log-target=stderr",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run pulseaudio: {e}"))?;
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.socket().exists() {
                let ok = Command::new("pactl")
                    .arg("info")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                if ok.is_ok_and(|s| s.success()) {
                    return Ok(());
                }
            }
            if let Some(Ok(Some(status))) = self.server.as_mut().map(|c| c.try_wait()) {
                let log =
                    std::fs::read_to_string(self.dir.join("pulseaudio.log")).unwrap_or_default();
                return Err(format!(
                    "pulseaudio exited ({status}): {}",
                    log.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err("pulseaudio did not answer within 10 s".into())
    }

    /// Kills the server (the "sound server went away" case).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Plays silence at 10 ms latency so the sink runs awake (an idle null sink sleeps in
    /// 2 s periods, which delays the first sound of a new stream by up to that much).
    pub fn keep_awake(&self) -> KeepAwake {
        let zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
        let child = Command::new("pacat")
            .args([
                "--playback",
                "--format=s16le",
                "--rate=24000",
                "--channels=1",
                "--latency-msec=10",
            ])
            .stdin(zero)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pacat starts");
        thread::sleep(Duration::from_millis(300));
        KeepAwake(child)
    }

    /// Starts recording the sink's monitor.
    pub fn record(&self) -> Recorder {
        Recorder::start()
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct KeepAwake(Child);

impl Drop for KeepAwake {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// parec on the null sink's monitor: mono s16 at [`REC_RATE`], each read timestamped.
pub struct Recorder {
    child: Child,
    reader: Option<JoinHandle<()>>,
    data: Arc<Mutex<Captured>>,
}

/// Samples so far, and for each read its arrival time and the sample count after it.
type Captured = (Vec<i16>, Vec<(Instant, usize)>);

impl Recorder {
    fn start() -> Recorder {
        let mut child = Command::new("parec")
            .args([
                "-d",
                "nullsink.monitor",
                "--format=s16le",
                "--channels=1",
                "--latency-msec=5",
                "--raw",
            ])
            .arg(format!("--rate={REC_RATE}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("parec starts");
        let mut out = child.stdout.take().unwrap();
        let data = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let shared = data.clone();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 480];
            let mut odd: Option<u8> = None;
            loop {
                let n = match out.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let now = Instant::now();
                let mut bytes: Vec<u8> = odd.take().into_iter().collect();
                bytes.extend_from_slice(&buf[..n]);
                if bytes.len() % 2 == 1 {
                    odd = bytes.pop();
                }
                let mut d = shared.lock().unwrap();
                let before = d.0.len();
                d.0.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]])),
                );
                let after = d.0.len();
                if after > before {
                    d.1.push((now, after));
                }
            }
        });
        // Wait until the monitor delivers (silence) before anything plays: a parec that is
        // slow to start would otherwise miss the beginning.
        let deadline = Instant::now() + Duration::from_secs(10);
        while data.lock().unwrap().0.len() < REC_RATE as usize / 20 {
            assert!(
                Instant::now() < deadline,
                "parec delivered nothing from nullsink.monitor within 10 s"
            );
            thread::sleep(Duration::from_millis(10));
        }
        Recorder {
            child,
            reader: Some(reader),
            data,
        }
    }

    /// Stops recording; returns the samples and, for each read, (arrival time, samples so far).
    pub fn stop(mut self) -> (Vec<f32>, Vec<(Instant, usize)>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let d = std::mem::take(&mut *self.data.lock().unwrap());
        (d.0.iter().map(|&s| s as f32 / 32768.0).collect(), d.1)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
