//! Ogg Opus (mono) through the pure-Rust `opus-pure` encoder and Ogg muxer.
//!
//! Opus codes at 8, 12, 16, 24 or 48 kHz. Those rates go in unchanged; any other rate is
//! converted to 48 kHz with the windowed-sinc [`Resampler`] first. On finish the encoder delay
//! is flushed with silence and the last packet's granule position marks the true end, so a
//! decoder returns exactly the audio that went in (RFC 7845 pre-skip and end trim).

use opus_pure::{Application, OggOpusWriter, OpusHead, MAX_PACKET_BYTES};

use super::Encoder;
use crate::resample::Resampler;

const OPUS_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];
const BITRATE_BPS: i32 = 48_000;

pub struct OpusEncoder {
    encoder: opus_pure::OpusEncoder,
    /// `None` once finished.
    writer: Option<OggOpusWriter<Vec<u8>>>,
    resampler: Option<Resampler>,
    /// Samples per 20 ms frame at the coding rate.
    frame: usize,
    /// 48 kHz granule ticks per coding-rate sample.
    ticks: u64,
    pre_skip: u64,
    pending: Vec<f32>,
    /// Coding-rate samples of real audio taken in.
    total: u64,
    packet: Vec<u8>,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("Opus encoding failed: {e}")
}

impl OpusEncoder {
    pub fn new(rate: u32, out: &mut Vec<u8>) -> Result<OpusEncoder, String> {
        let (resampler, coding_rate) = if OPUS_RATES.contains(&rate) {
            (None, rate)
        } else {
            (Some(Resampler::new(rate, 48000)), 48000)
        };
        let mut encoder =
            opus_pure::OpusEncoder::new(coding_rate as i32, 1, Application::Audio).map_err(err)?;
        encoder.bitrate_bps = BITRATE_BPS;
        let head = OpusHead::for_encoder(&encoder, rate);
        let pre_skip = u64::from(head.pre_skip);
        let mut writer = OggOpusWriter::new(Vec::new(), head).map_err(err)?;
        out.append(writer.get_mut().expect("writer not finished"));
        Ok(OpusEncoder {
            encoder,
            writer: Some(writer),
            resampler,
            frame: coding_rate as usize / 50,
            ticks: u64::from(48000 / coding_rate),
            pre_skip,
            pending: Vec::new(),
            total: 0,
            packet: vec![0u8; MAX_PACKET_BYTES],
        })
    }

    /// Encodes one full frame from the front of `pending`; `duration` overrides the packet's
    /// 48 kHz length (for the end trim of the last one).
    fn encode_frame(&mut self, duration: Option<u32>) -> Result<(), String> {
        let n = self
            .encoder
            .encode(&self.pending[..self.frame], self.frame, &mut self.packet)
            .map_err(err)?;
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| err("write after finish"))?;
        match duration {
            Some(d) => writer.write_packet_with_duration(&self.packet[..n], d),
            None => writer.write_packet(&self.packet[..n]),
        }
        .map_err(err)?;
        self.pending.drain(..self.frame);
        Ok(())
    }

    fn take_bytes(&mut self, out: &mut Vec<u8>) {
        if let Some(buf) = self.writer.as_mut().and_then(|w| w.get_mut()) {
            out.append(buf);
        }
    }

    fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        self.total += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        while self.pending.len() >= self.frame {
            self.encode_frame(None)?;
        }
        self.take_bytes(out);
        Ok(())
    }
}

impl Encoder for OpusEncoder {
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
            self.total += tail.len() as u64;
            self.pending.extend_from_slice(&tail);
        }
        // Silence that pushes the encoder's delayed samples out, rounded up to whole frames.
        let delay = self.pre_skip.div_ceil(self.ticks) as usize;
        let needed = (self.pending.len() + delay).div_ceil(self.frame).max(1) * self.frame;
        self.pending.resize(needed, 0.0);
        let final_granule = self.pre_skip + self.total * self.ticks;
        while self.pending.len() > self.frame {
            self.encode_frame(None)?;
        }
        let written = self
            .writer
            .as_ref()
            .map_or(0, |w| w.granule().max(0) as u64);
        let last = final_granule.saturating_sub(written);
        self.encode_frame(Some(last as u32))?;
        let writer = self.writer.take().ok_or_else(|| err("finished twice"))?;
        // `finish` writes the end-of-stream page into the Vec it owns and hands it back.
        out.extend_from_slice(&writer.finish().map_err(err)?);
        Ok(())
    }
}
