//! Reading reference audio (for voice cloning): WAV, FLAC, MP3 and Ogg Vorbis at any rate and
//! channel count, decoded with symphonia and mixed down to mono.

use std::fs::File;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error_io::file_error;
use crate::{resample, Error, Result};

/// The rate the model's speech tokenizer and speaker encoder work at.
pub const MODEL_RATE: u32 = 24000;

/// Trim encoder delay and padding where the container says how much (Vorbis, MP3 LAME tags).
const GAPLESS: FormatOptions = FormatOptions {
    enable_gapless: true,
    prebuild_seek_index: false,
    seek_index_fill_rate: 20,
};

/// Decodes an audio file to mono f32 (channels averaged) and returns it with its sample rate.
pub fn read_audio_file(path: &Path) -> Result<(Vec<f32>, u32)> {
    let fail = |reason: String| Error::File {
        path: path.display().to_string(),
        reason,
    };
    if path.is_dir() {
        return Err(fail("is a directory, not an audio file".into()));
    }
    let file = File::open(path).map_err(|e| file_error(path, &e))?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &GAPLESS, &MetadataOptions::default())
        .map_err(|e| fail(unsupported(e)))?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| fail("no audio track found".into()))?;
    let track_id = track.id;
    let mut rate = track.codec_params.sample_rate;
    // The container's length (for Ogg, from the last granule position): decoders may return
    // the padding of the last packet beyond it.
    let length = track.codec_params.n_frames;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| fail(unsupported(e)))?;

    let mut mono = Vec::new();
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(fail(format!("cannot read audio: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet is skipped, as players do.
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(fail(format!("cannot decode audio: {e}"))),
        };
        let spec = *decoded.spec();
        rate = Some(spec.rate);
        let channels = spec.channels.count().max(1);
        let needed = decoded.capacity() as u64;
        let sb = match &mut buf {
            Some(b) if b.capacity() as u64 >= needed * channels as u64 => b,
            _ => buf.insert(SampleBuffer::new(needed, spec)),
        };
        sb.copy_interleaved_ref(decoded);
        mono.extend(
            sb.samples()
                .chunks(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32),
        );
    }
    let rate = rate.ok_or_else(|| fail("the file does not state its sample rate".into()))?;
    if let Some(n) = length.and_then(|n| usize::try_from(n).ok()) {
        if n > 0 && mono.len() > n {
            mono.truncate(n);
        }
    }
    if mono.is_empty() {
        return Err(fail("the file contains no audio samples".into()));
    }
    Ok((mono, rate))
}

/// [`read_audio_file`], resampled to 24 kHz mono (what the model takes as reference audio).
pub fn load_mono_24k(path: &Path) -> Result<Vec<f32>> {
    let (samples, rate) = read_audio_file(path)?;
    Ok(resample(&samples, rate, MODEL_RATE))
}

fn unsupported(e: SymError) -> String {
    match e {
        SymError::Unsupported(what) => {
            format!("unsupported audio format ({what}); use WAV, FLAC, MP3 or Ogg Vorbis")
        }
        SymError::IoError(e) => format!("cannot read: {e}"),
        other => format!("not a readable audio file ({other}); use WAV, FLAC, MP3 or Ogg Vorbis"),
    }
}
