//! q3tts-audio: where samples go (speakers, files, stdout) and how they are converted.
//! Knows nothing of the model or the daemon.
//!
//! - [`open_file`] / [`stdout_sink`]: WAV, FLAC, MP3, Ogg Opus and raw PCM writers ([`Format`]).
//! - [`Speakers`]: streaming playback (PulseAudio natively, ALSA loaded at run time, a player
//!   subprocess; CoreAudio through cpal on macOS), chosen by [`Backend`].
//! - [`resample`] / [`Resampler`]: windowed-sinc sample-rate conversion.
//! - [`read_audio_file`] / [`load_mono_24k`]: reference audio for voice cloning.

mod decode;
mod encode;
mod error_io;
mod file;
mod format;
mod pcm;
mod resample;
mod sink;
mod speakers;

pub use decode::{load_mono_24k, read_audio_file};
pub use file::{open_file, stdout_sink, write_sink};
pub use format::Format;
pub use resample::{resample, Resampler};
pub use sink::{Sink, SinkSummary};
pub use speakers::{Backend, CancelHandle, Speakers};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Audio errors name the path or device and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("audio device lost: {0}")]
    DeviceLost(String),
    #[error("no audio output available: {0} (try --output file.wav)")]
    NoBackend(String),
    #[error("{0}")]
    Other(String),
}
