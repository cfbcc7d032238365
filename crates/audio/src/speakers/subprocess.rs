//! A player program fed raw s16le on stdin: `pw-cat`, `pacat` or `aplay` (sox's `play` as a
//! last resort), always with an explicit low latency (their defaults buffer about 2 s).
//! The pipe is shrunk to one page so a full pipe blocks the writer (backpressure). One player
//! runs per request: `drain` closes its stdin and waits for it, `discard` kills it, and a fresh
//! one is started for the next request. `$Q3TTS_PLAYER` picks the program by name.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Device, DeviceError, DeviceResult, BUFFER_MS};

/// How long a just-started player may take to fail before we count it as working.
const STARTUP_GRACE: Duration = Duration::from_millis(150);

/// Candidate players, in order of preference.
const PLAYERS: [&str; 4] = ["pw-cat", "pacat", "aplay", "play"];

fn player_args(program: &str, rate: u32) -> Vec<String> {
    let r = rate.to_string();
    let ms = BUFFER_MS;
    let name = std::path::Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    let args: Vec<String> = match name {
        "pw-cat" => vec![
            "--playback".into(),
            "--format=s16".into(),
            "--channels=1".into(),
            format!("--rate={r}"),
            format!("--latency={ms}ms"),
            "-".into(),
        ],
        "pacat" => vec![
            "--playback".into(),
            "--format=s16le".into(),
            "--channels=1".into(),
            format!("--rate={r}"),
            format!("--latency-msec={ms}"),
            "--client-name=q3tts".into(),
        ],
        "aplay" => [
            "-q",
            "-t",
            "raw",
            "-f",
            "S16_LE",
            "-c",
            "1",
            "-r",
            &r,
            "--buffer-time",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([(ms * 1000).to_string()])
        .collect(),
        // sox's `play`, and any other program named in $Q3TTS_PLAYER that takes sox's flags.
        _ => [
            "-q", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", &r, "-",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    };
    args
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

pub struct PlayerDevice {
    program: String,
    rate: u32,
    child: Option<(Child, ChildStdin)>,
}

impl PlayerDevice {
    pub fn open(rate: u32) -> Result<PlayerDevice, String> {
        let choices: Vec<String> = match std::env::var("Q3TTS_PLAYER") {
            Ok(p) if !p.trim().is_empty() => vec![p.trim().to_string()],
            _ => PLAYERS
                .iter()
                .filter(|p| on_path(p))
                .map(|p| p.to_string())
                .collect(),
        };
        if choices.is_empty() {
            return Err("no player program found (pw-cat, pacat, aplay or play)".into());
        }
        let mut why = Vec::new();
        for program in choices {
            match spawn(&program, rate) {
                Ok(child) => {
                    return Ok(PlayerDevice {
                        program,
                        rate,
                        child: Some(child),
                    })
                }
                Err(e) => why.push(e),
            }
        }
        Err(why.join("; "))
    }

    fn child(&mut self) -> DeviceResult<&mut (Child, ChildStdin)> {
        if self.child.is_none() {
            self.child = Some(spawn(&self.program, self.rate).map_err(DeviceError::Lost)?);
        }
        Ok(self.child.as_mut().expect("spawned above"))
    }

    /// Waits for the player to exit; an error status means the sound server went away.
    fn reap(&mut self, mut child: Child) -> DeviceResult<()> {
        let status = child
            .wait()
            .map_err(|e| DeviceError::Lost(format!("{}: {e}", self.program)))?;
        if status.success() {
            Ok(())
        } else {
            Err(DeviceError::Lost(format!(
                "player {} exited with {status}{}",
                self.program,
                stderr_tail(&mut child)
            )))
        }
    }
}

/// Starts `program` reading PCM from a one-page pipe; fails if it exits at once.
fn spawn(program: &str, rate: u32) -> Result<(Child, ChildStdin), String> {
    let mut child = Command::new(program)
        .args(player_args(program, rate))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin pipe")?;
    shrink_pipe(&stdin);
    let deadline = Instant::now() + STARTUP_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{program} exited at once ({status}){}",
                stderr_tail(&mut child)
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok((child, stdin))
}

/// One page of pipe buffer instead of 64 KiB, so writes block close to real time.
#[cfg(target_os = "linux")]
fn shrink_pipe(stdin: &ChildStdin) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a pipe fd we own; failure only leaves the default size.
    unsafe {
        libc::fcntl(stdin.as_raw_fd(), libc::F_SETPIPE_SZ, 4096);
    }
}

#[cfg(not(target_os = "linux"))]
fn shrink_pipe(_stdin: &ChildStdin) {}

fn stderr_tail(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    let s = s.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {}", s.lines().last().unwrap_or(s))
    }
}

impl Device for PlayerDevice {
    fn play(&mut self, pcm: &[i16]) -> DeviceResult<()> {
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let program = self.program.clone();
        let (_, stdin) = self.child()?;
        if let Err(e) = stdin.write_all(&bytes) {
            let (child, stdin) = self.child.take().expect("present");
            drop(stdin);
            return Err(self.reap(child).err().unwrap_or_else(|| {
                DeviceError::Lost(format!("player {program} stopped reading: {e}"))
            }));
        }
        Ok(())
    }

    fn drain(&mut self) -> DeviceResult<()> {
        let Some((child, stdin)) = self.child.take() else {
            return Ok(());
        };
        drop(stdin); // end of input: the player plays what it has and exits
        self.reap(child)?;
        // Start the next request's player now, while nothing is waiting on it.
        self.child = spawn(&self.program, self.rate).ok();
        Ok(())
    }

    fn discard(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            let _ = child.kill();
            drop(stdin);
            let _ = child.wait();
        }
        self.child = spawn(&self.program, self.rate).ok();
    }

    fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some((child, _)) => matches!(child.try_wait(), Ok(None)),
            None => spawn(&self.program, self.rate)
                .map(|c| self.child = Some(c))
                .is_ok(),
        }
    }

    fn describe(&self) -> String {
        format!("subprocess {}", self.program)
    }
}

impl Drop for PlayerDevice {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            let _ = child.kill();
            drop(stdin);
            let _ = child.wait();
        }
    }
}
