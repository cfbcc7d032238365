//! Sinks that encode to a file or a byte stream (stdout, a socket): [`open_file`],
//! [`stdout_sink`], [`write_sink`].
//!
//! Encoded bytes are written as each chunk arrives (nothing is held back beyond one codec
//! frame), and for files the header is patched in place after every chunk (WAV) or at the end
//! (FLAC, MP3), so the file on disk is valid while it grows.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::encode::{new_encoder, Encoder};
use crate::error_io::file_error;
use crate::{Error, Format, Result, Sink, SinkSummary};

/// Where the bytes go.
enum Target {
    /// A regular file (or device): headers can be rewritten with positioned writes.
    File(File),
    /// A pipe or socket: bytes are final once written.
    Stream(Box<dyn Write + Send>),
}

/// A [`Sink`] that encodes audio into one format and writes it out as it comes.
pub struct EncodedSink {
    /// The path (or "stdout") used in messages.
    name: PathBuf,
    target: Target,
    encoder: Box<dyn Encoder>,
    buf: Vec<u8>,
    samples: u64,
    sample_rate: u32,
    finished: bool,
}

/// Opens `path` for writing audio at `sample_rate` Hz (mono). The format is `format` if given,
/// else taken from the extension (`.wav .flac .mp3 .ogg .opus .pcm`).
///
/// Errors name the path and the reason: an unknown extension, a missing parent directory, a
/// directory, no permission, a full disk.
pub fn open_file(path: &Path, format: Option<Format>, sample_rate: u32) -> Result<Box<dyn Sink>> {
    let format = match format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None => {
            return Err(Error::File {
                path: path.display().to_string(),
                reason: "unknown audio file extension; use .wav, .flac, .mp3, .ogg, .opus or \
                         .pcm, or pass --format"
                    .into(),
            })
        }
    };
    if path.is_dir() {
        let e = io::Error::from(io::ErrorKind::IsADirectory);
        return Err(file_error(path, &e));
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| file_error(path, &e))?;
    // A FIFO or device (`/dev/stdout`, a named pipe) cannot have its header rewritten.
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    let target = if regular {
        Target::File(file)
    } else {
        Target::Stream(Box::new(file))
    };
    EncodedSink::start(path.to_path_buf(), target, format, sample_rate)
        .map(|s| Box::new(s) as Box<dyn Sink>)
}

/// A sink writing `format` to standard output (for `-o -`). Use [`Format::Pcm`] (raw s16le)
/// or [`Format::Wav`] (sizes set to "unknown", as streaming readers expect) for piping into a
/// player; the other formats work too, without their end-of-stream header updates.
pub fn stdout_sink(format: Format, sample_rate: u32) -> Result<Box<dyn Sink>> {
    write_sink(Box::new(io::stdout()), "stdout", format, sample_rate)
}

/// A sink encoding `format` into any byte stream (`name` is used in messages). Each
/// [`Sink::write`] writes and flushes the bytes it produced.
pub fn write_sink(
    out: Box<dyn Write + Send>,
    name: &str,
    format: Format,
    sample_rate: u32,
) -> Result<Box<dyn Sink>> {
    EncodedSink::start(
        PathBuf::from(name),
        Target::Stream(out),
        format,
        sample_rate,
    )
    .map(|s| Box::new(s) as Box<dyn Sink>)
}

impl EncodedSink {
    fn start(name: PathBuf, target: Target, format: Format, sample_rate: u32) -> Result<Self> {
        let seekable = matches!(target, Target::File(_));
        let mut buf = Vec::new();
        let encoder =
            new_encoder(format, sample_rate, seekable, &mut buf).map_err(|reason| Error::File {
                path: name.display().to_string(),
                reason,
            })?;
        let mut sink = EncodedSink {
            name,
            target,
            encoder,
            buf,
            samples: 0,
            sample_rate,
            finished: false,
        };
        sink.flush_out()?;
        Ok(sink)
    }

    fn error(&self, reason: String) -> Error {
        Error::File {
            path: self.name.display().to_string(),
            reason,
        }
    }

    /// Writes the buffered bytes, then applies the encoder's header patches.
    fn flush_out(&mut self) -> Result<()> {
        let name = self.name.clone();
        let io_err = |e: io::Error| file_error(&name, &e);
        match &mut self.target {
            Target::File(f) => {
                f.write_all(&self.buf).map_err(io_err)?;
                for (offset, bytes) in self.encoder.patches() {
                    write_at(f, &bytes, offset).map_err(io_err)?;
                }
            }
            Target::Stream(w) => {
                w.write_all(&self.buf)
                    .and_then(|()| w.flush())
                    .map_err(io_err)?;
            }
        }
        self.buf.clear();
        Ok(())
    }
}

#[cfg(unix)]
fn write_at(f: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, bytes, offset)
}

#[cfg(windows)]
fn write_at(f: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    let mut done = 0;
    while done < bytes.len() {
        done += f.seek_write(&bytes[done..], offset + done as u64)?;
    }
    Ok(())
}

impl Sink for EncodedSink {
    fn write(&mut self, samples: &[f32]) -> Result<()> {
        if self.finished {
            return Err(self.error("write after finish".into()));
        }
        self.encoder
            .encode(samples, &mut self.buf)
            .map_err(|r| self.error(r))?;
        self.samples += samples.len() as u64;
        self.flush_out()
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        if !self.finished {
            self.finished = true;
            self.encoder
                .finish(&mut self.buf)
                .map_err(|r| self.error(r))?;
            self.flush_out()?;
            if let Target::File(f) = &self.target {
                // Data reaches the disk before we report success (a full disk shows up here too).
                f.sync_data()
                    .or_else(ignore_unsupported_sync)
                    .map_err(|e| file_error(&self.name, &e))?;
            }
        }
        Ok(SinkSummary {
            samples: self.samples,
            sample_rate: self.sample_rate,
        })
    }

    fn describe(&self) -> String {
        self.name.display().to_string()
    }
}

/// `fsync` on a device such as /dev/null is not supported; that is not a write failure.
fn ignore_unsupported_sync(e: io::Error) -> io::Result<()> {
    match e.raw_os_error() {
        Some(22) => Ok(()), // EINVAL: the file does not support syncing
        _ => Err(e),
    }
}
