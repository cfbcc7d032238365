//! Output formats: names (`--format`), file extensions and MIME types.

use std::path::Path;

use crate::{Error, Result};

/// An audio container/codec q3tts can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// RIFF WAVE, 16-bit PCM, written incrementally.
    Wav,
    /// FLAC, 16-bit, lossless.
    Flac,
    /// MPEG-1/2 Layer III, CBR.
    Mp3,
    /// Opus in an Ogg container.
    Opus,
    /// Raw signed 16-bit little-endian PCM, no header.
    Pcm,
}

impl Format {
    /// All formats, in the order they are listed to users.
    pub const ALL: [Format; 5] = [
        Format::Wav,
        Format::Flac,
        Format::Mp3,
        Format::Opus,
        Format::Pcm,
    ];

    /// Parses a `--format` value: `wav`, `flac`, `mp3`, `opus` (or `ogg`), `pcm` (or `raw`).
    pub fn from_name(name: &str) -> Result<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "wav" | "wave" => Ok(Format::Wav),
            "flac" => Ok(Format::Flac),
            "mp3" => Ok(Format::Mp3),
            "opus" | "ogg" => Ok(Format::Opus),
            "pcm" | "raw" | "s16le" => Ok(Format::Pcm),
            other => Err(Error::Other(format!(
                "unknown audio format {other:?}: use one of wav, flac, mp3, opus, pcm"
            ))),
        }
    }

    /// The format a file name asks for, from its extension (`None` if it has no known one).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "wav" | "wave" => Some(Format::Wav),
            "flac" => Some(Format::Flac),
            "mp3" => Some(Format::Mp3),
            "ogg" | "opus" | "oga" => Some(Format::Opus),
            "pcm" | "raw" => Some(Format::Pcm),
            _ => None,
        }
    }

    /// The canonical short name (`wav`, `flac`, `mp3`, `opus`, `pcm`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Wav => "wav",
            Format::Flac => "flac",
            Format::Mp3 => "mp3",
            Format::Opus => "opus",
            Format::Pcm => "pcm",
        }
    }

    /// The MIME type HTTP servers commonly send for this format.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Wav => "audio/wav",
            Format::Flac => "audio/flac",
            Format::Mp3 => "audio/mpeg",
            Format::Opus => "audio/ogg",
            Format::Pcm => "audio/pcm",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        Format::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_names_agree() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()).unwrap(), f);
            let p = format!("x/out.{}", f.name().to_uppercase());
            assert_eq!(Format::from_path(Path::new(&p)), Some(f));
        }
        assert_eq!(Format::from_path(Path::new("a.ogg")), Some(Format::Opus));
        assert_eq!(Format::from_path(Path::new("a.txt")), None);
        assert_eq!(Format::from_path(Path::new("noext")), None);
        let err = Format::from_name("aiff").unwrap_err().to_string();
        assert!(err.contains("aiff") && err.contains("wav, flac"), "{err}");
    }
}
