//! MP3 (CBR, mono) through the pure-Rust `rusty_mp3` encoder.
//!
//! The first packet is an Info/LAME tag frame; its final contents (frame count, encoder delay
//! and padding for gapless playback) are known only at the end, so for a file it is rewritten in
//! place on finish. For a pipe it cannot be rewritten and is left out: the stream is then a
//! plain sequence of audio frames that every decoder plays.

use rusty_mp3::{Error as Mp3Error, Mp3EncoderConfig};

use super::{Encoder, Patch};
use crate::resample::Resampler;

/// Sample rates MPEG-1/2/2.5 Layer III can carry.
const MP3_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];
/// Mono speech: 64 kbit/s at 24 kHz is transparent to the ear for TTS output.
const BITRATE_KBPS: u32 = 64;

pub struct Mp3Encoder {
    inner: rusty_mp3::Mp3Encoder,
    rate: u32,
    resampler: Option<Resampler>,
    seekable: bool,
    packets: u64,
    tag_patch: Option<Patch>,
}

impl Mp3Encoder {
    pub fn new(rate: u32, seekable: bool) -> Mp3Encoder {
        let (resampler, rate) = if MP3_RATES.contains(&rate) {
            (None, rate)
        } else {
            (Some(Resampler::new(rate, 48000)), 48000)
        };
        Mp3Encoder {
            inner: rusty_mp3::Mp3Encoder::new(Mp3EncoderConfig {
                bitrate_kbps: BITRATE_KBPS,
                vbr_quality: None,
            }),
            rate,
            resampler,
            seekable,
            packets: 0,
            tag_patch: None,
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        loop {
            match self.inner.next_packet() {
                Ok(p) => {
                    // Packet 0 is the tag placeholder: kept for files (and rewritten at the end),
                    // dropped for pipes.
                    if self.packets > 0 || self.seekable {
                        out.extend_from_slice(&p);
                    }
                    self.packets += 1;
                }
                Err(Mp3Error::Again | Mp3Error::Eof) => return Ok(()),
                Err(e) => return Err(format!("MP3 encoding failed: {e}")),
            }
        }
    }

    fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        if !samples.is_empty() {
            self.inner
                .push_pcm_f32(samples, 1, self.rate)
                .map_err(|e| format!("MP3 encoding failed: {e}"))?;
        }
        self.drain(out)
    }
}

impl Encoder for Mp3Encoder {
    fn encode(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        match self.resampler.as_mut() {
            Some(r) => {
                let converted = r.push(samples);
                self.push(&converted, out)
            }
            None => self.push(samples, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if let Some(r) = self.resampler.as_mut() {
            let tail = r.flush();
            self.push(&tail, out)?;
        }
        if self.packets == 0 && self.inner.lame_tag_frame().is_none() {
            // Nothing was ever pushed: the encoder needs one push to fix the format, so push
            // an empty slice to produce a valid, silent file.
            self.inner
                .push_pcm_f32(&[], 1, self.rate)
                .map_err(|e| format!("MP3 encoding failed: {e}"))?;
        }
        let before = self.packets;
        self.inner.finish();
        self.drain(out)?;
        if before > 0 {
            if let Some(tag) = self.inner.lame_tag_frame() {
                self.tag_patch = Some((0, tag.to_vec()));
            }
        }
        Ok(())
    }

    fn patches(&mut self) -> Vec<Patch> {
        if !self.seekable {
            return Vec::new();
        }
        self.tag_patch.take().into_iter().collect()
    }
}
