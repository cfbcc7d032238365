//! Streaming encoders: each turns f32 samples into container bytes as they arrive, and says
//! which header bytes to rewrite once more is known (for seekable outputs).

mod flac;
mod mp3;
mod opus;
mod wav;

use crate::format::Format;

/// A header rewrite: put `bytes` at `offset` from the start of the output.
pub type Patch = (u64, Vec<u8>);

/// One format's streaming encoder. Errors are plain reasons; the sink adds the path.
pub trait Encoder: Send {
    /// Encodes `samples` (at the rate the encoder was made for), appending bytes to `out`.
    fn encode(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), String>;
    /// Flushes the codec's tail into `out`.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String>;
    /// Header rewrites that make the bytes written so far a complete, valid file.
    /// Only applied to seekable outputs; called after every `encode` and after `finish`.
    fn patches(&mut self) -> Vec<Patch> {
        Vec::new()
    }
}

/// Raw s16le: no header, nothing to patch.
struct RawPcm;

impl Encoder for RawPcm {
    fn encode(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        crate::pcm::push_s16le(samples, out);
        Ok(())
    }
    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

/// The encoder for `format` at `sample_rate`. `seekable` says whether headers can be patched
/// later (a file) or must be final when written (a pipe); the header bytes, if any, are put in
/// `out`.
pub fn new_encoder(
    format: Format,
    sample_rate: u32,
    seekable: bool,
    out: &mut Vec<u8>,
) -> Result<Box<dyn Encoder>, String> {
    if sample_rate == 0 {
        return Err("sample rate must be positive".into());
    }
    Ok(match format {
        Format::Pcm => Box::new(RawPcm),
        Format::Wav => Box::new(wav::WavEncoder::new(sample_rate, seekable, out)),
        Format::Flac => Box::new(flac::FlacEncoder::new(sample_rate, out)?),
        Format::Mp3 => Box::new(mp3::Mp3Encoder::new(sample_rate, seekable)),
        Format::Opus => Box::new(opus::OpusEncoder::new(sample_rate, out)?),
    })
}
