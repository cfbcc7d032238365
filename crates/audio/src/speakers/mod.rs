//! Speakers: a [`Sink`] that plays audio as it is written, through the first backend that works.
//!
//! Linux: PulseAudio/PipeWire spoken to natively ([`Backend::Pulse`]), else ALSA loaded at run
//! time ([`Backend::Alsa`]), else a player program fed on stdin ([`Backend::Subprocess`]).
//! macOS: CoreAudio through cpal. Writes block while the device buffer is full (playback paces
//! the caller), `finish` drains the tail, `cancel` (or a [`CancelHandle`] from another thread)
//! stops within one buffer. A lost sound server fails the current request with
//! [`Error::DeviceLost`]; the next write (or [`Speakers::ensure_open`]) reopens it.

#[cfg(target_os = "linux")]
mod alsa;
#[cfg(target_os = "macos")]
mod coreaudio;
#[cfg(target_os = "linux")]
mod pulse;
#[cfg(unix)]
mod subprocess;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{Error, Result, Sink, SinkSummary};

/// Environment variable that picks the backend when [`Backend::Auto`] is asked for.
pub const BACKEND_ENV: &str = "Q3TTS_AUDIO_BACKEND";

/// Samples handed to a device per step: 20 ms at 24 kHz. Cancellation is checked between steps.
const STEP_MS: u32 = 20;
/// The device-side buffer every backend asks for, in milliseconds.
pub(crate) const BUFFER_MS: u32 = 50;

/// Which playback path to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `$Q3TTS_AUDIO_BACKEND` if set, else the first that works: Pulse, ALSA, subprocess
    /// (Linux); CoreAudio (macOS).
    Auto,
    /// PulseAudio or PipeWire (pipewire-pulse), spoken to natively over its socket.
    Pulse,
    /// ALSA's `default` PCM (or `$Q3TTS_ALSA_DEVICE`), libasound loaded at run time.
    Alsa,
    /// A player program fed raw PCM on stdin: pw-cat, pacat or aplay (sox's `play` on macOS).
    Subprocess,
    /// CoreAudio through cpal (macOS only).
    CoreAudio,
}

impl Backend {
    /// Parses `--audio-backend` / `$Q3TTS_AUDIO_BACKEND`.
    pub fn from_name(name: &str) -> Result<Backend> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Backend::Auto),
            "pulse" | "pulseaudio" | "pipewire" => Ok(Backend::Pulse),
            "alsa" => Ok(Backend::Alsa),
            "subprocess" | "process" | "command" | "pipe" => Ok(Backend::Subprocess),
            "coreaudio" | "cpal" | "macos" => Ok(Backend::CoreAudio),
            other => Err(Error::Other(format!(
                "unknown audio backend {other:?}: use auto, pulse, alsa, subprocess or coreaudio"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Pulse => "pulse",
            Backend::Alsa => "alsa",
            Backend::Subprocess => "subprocess",
            Backend::CoreAudio => "coreaudio",
        }
    }

    /// The concrete backends to try, in order, for this request.
    fn chain(self) -> Result<Vec<Backend>> {
        let wanted = match self {
            Backend::Auto => match std::env::var(BACKEND_ENV) {
                Ok(v) if !v.trim().is_empty() => Backend::from_name(&v)
                    .map_err(|e| Error::Other(format!("${BACKEND_ENV}: {e}")))?,
                _ => Backend::Auto,
            },
            b => b,
        };
        Ok(match wanted {
            Backend::Auto if cfg!(target_os = "macos") => {
                vec![Backend::CoreAudio, Backend::Subprocess]
            }
            Backend::Auto => vec![Backend::Pulse, Backend::Alsa, Backend::Subprocess],
            b => vec![b],
        })
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a device operation failed.
#[derive(Debug)]
pub(crate) enum DeviceError {
    /// The server/device/player went away: reopen before the next request.
    Lost(String),
    /// Any other failure (bad parameters, a refused command).
    Failed(String),
}

pub(crate) type DeviceResult<T> = std::result::Result<T, DeviceError>;

/// One open playback stream of s16 mono samples.
pub(crate) trait Device: Send {
    /// Queues `pcm`, blocking while the device buffer is full.
    fn play(&mut self, pcm: &[i16]) -> DeviceResult<()>;
    /// Blocks until everything queued has been played.
    fn drain(&mut self) -> DeviceResult<()>;
    /// Drops everything queued, at once.
    fn discard(&mut self);
    /// Whether the stream still works (cheap; may process pending server messages).
    fn alive(&mut self) -> bool;
    /// "pulse (PulseAudio 16.1, sink …)", "alsa default", "subprocess pacat".
    fn describe(&self) -> String;
}

/// Stops a playing [`Speakers`] from another thread (a client hang-up, a `stop` command).
#[derive(Clone, Debug)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// Drop what is queued and stop within one device buffer. Writes return at once (their
    /// audio discarded) until the request ends with `finish` or `cancel`.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Streaming playback on the local machine. Keep one open across requests (a daemon does):
/// each request writes, then `finish`es (drain) or `cancel`s.
pub struct Speakers {
    requested: Backend,
    active: Backend,
    rate: u32,
    device: Option<Box<dyn Device>>,
    cancel: Arc<AtomicBool>,
    samples: u64,
    lost_reason: Option<String>,
}

impl Speakers {
    /// Opens the speakers for mono audio at `sample_rate` Hz. With [`Backend::Auto`] the first
    /// backend that works is used; if none does, [`Error::NoBackend`] lists why each failed.
    pub fn open(backend: Backend, sample_rate: u32) -> Result<Speakers> {
        if sample_rate == 0 {
            return Err(Error::Other("sample rate must be positive".into()));
        }
        let (active, device) = open_device(backend, sample_rate)?;
        Ok(Speakers {
            requested: backend,
            active,
            rate: sample_rate,
            device: Some(device),
            cancel: Arc::new(AtomicBool::new(false)),
            samples: 0,
            lost_reason: None,
        })
    }

    /// The backend in use (never `Auto`).
    pub fn backend(&self) -> Backend {
        self.active
    }

    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// A handle that cancels playback from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle(self.cancel.clone())
    }

    /// Checks that the output still works and reopens it if the sound server went away (call
    /// before each request in a long-lived process). Returns `true` if it had to reopen.
    pub fn ensure_open(&mut self) -> Result<bool> {
        if let Some(d) = self.device.as_mut() {
            if d.alive() {
                return Ok(false);
            }
        }
        self.device = None;
        let (active, device) = open_device(self.requested, self.rate)?;
        self.active = active;
        self.device = Some(device);
        self.lost_reason = None;
        Ok(true)
    }

    /// Why the last stream was lost, if it was (cleared by a successful reopen).
    pub fn lost_reason(&self) -> Option<&str> {
        self.lost_reason.as_deref()
    }

    fn device(&mut self) -> Result<&mut Box<dyn Device>> {
        if self.device.is_none() {
            self.ensure_open()?;
        }
        Ok(self.device.as_mut().expect("opened above"))
    }

    /// Converts a device failure into the caller's error, forgetting a lost device.
    fn fail(&mut self, e: DeviceError) -> Error {
        match e {
            DeviceError::Lost(why) => {
                self.device = None;
                self.samples = 0;
                self.lost_reason = Some(why.clone());
                Error::DeviceLost(format!(
                    "{} ({why}); it will be reopened for the next request",
                    self.active
                ))
            }
            DeviceError::Failed(why) => Error::Other(format!("{}: {why}", self.active)),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Ends a cancelled request: drop queued audio, clear the flag.
    fn end_cancelled(&mut self) {
        if let Some(d) = self.device.as_mut() {
            d.discard();
        }
        self.cancel.store(false, Ordering::SeqCst);
        self.samples = 0;
    }
}

/// Tries each backend of the chain; the first that opens wins.
fn open_device(backend: Backend, rate: u32) -> Result<(Backend, Box<dyn Device>)> {
    let mut why = Vec::new();
    for b in backend.chain()? {
        match open_one(b, rate) {
            Ok(d) => return Ok((b, d)),
            Err(e) => why.push(format!("{b}: {e}")),
        }
    }
    Err(Error::NoBackend(why.join("; ")))
}

fn open_one(backend: Backend, rate: u32) -> std::result::Result<Box<dyn Device>, String> {
    match backend {
        #[cfg(target_os = "linux")]
        Backend::Pulse => pulse::PulseDevice::open(rate).map(|d| Box::new(d) as Box<dyn Device>),
        #[cfg(target_os = "linux")]
        Backend::Alsa => alsa::AlsaDevice::open(rate).map(|d| Box::new(d) as Box<dyn Device>),
        #[cfg(unix)]
        Backend::Subprocess => {
            subprocess::PlayerDevice::open(rate).map(|d| Box::new(d) as Box<dyn Device>)
        }
        #[cfg(target_os = "macos")]
        Backend::CoreAudio => {
            coreaudio::CpalDevice::open(rate).map(|d| Box::new(d) as Box<dyn Device>)
        }
        other => Err(format!(
            "the {other} backend is not available on this system"
        )),
    }
}

impl Sink for Speakers {
    fn write(&mut self, samples: &[f32]) -> Result<()> {
        if self.cancelled() {
            return Ok(());
        }
        let step = (self.rate * STEP_MS / 1000).max(1) as usize;
        let pcm: Vec<i16> = samples.iter().map(|&s| crate::pcm::to_i16(s)).collect();
        for piece in pcm.chunks(step) {
            if self.cancelled() {
                if let Some(d) = self.device.as_mut() {
                    d.discard();
                }
                return Ok(());
            }
            let result = self.device()?.play(piece);
            if let Err(e) = result {
                return Err(self.fail(e));
            }
            self.samples += piece.len() as u64;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        let summary = SinkSummary {
            samples: self.samples,
            sample_rate: self.rate,
        };
        if self.cancelled() {
            self.end_cancelled();
            return Ok(summary);
        }
        if let Some(d) = self.device.as_mut() {
            if let Err(e) = d.drain() {
                return Err(self.fail(e));
            }
        }
        self.samples = 0;
        Ok(summary)
    }

    fn cancel(&mut self) {
        self.end_cancelled();
    }

    fn describe(&self) -> String {
        match &self.device {
            Some(d) => format!("speakers ({})", d.describe()),
            None => format!("speakers ({}, closed)", self.active),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names() {
        for b in [
            Backend::Auto,
            Backend::Pulse,
            Backend::Alsa,
            Backend::Subprocess,
            Backend::CoreAudio,
        ] {
            assert_eq!(Backend::from_name(b.name()).unwrap(), b);
        }
        assert_eq!(Backend::from_name("PipeWire").unwrap(), Backend::Pulse);
        let e = Backend::from_name("jack").unwrap_err().to_string();
        assert!(e.contains("jack") && e.contains("pulse"), "{e}");
        assert_eq!(Backend::Alsa.chain().unwrap(), vec![Backend::Alsa]);
    }
}
