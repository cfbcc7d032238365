//! WAV (RIFF, 16-bit PCM mono), written incrementally.
//!
//! For a file the header always carries the true sizes of what has been written so far: it is
//! written with empty sizes at creation and the two size fields are rewritten after every chunk.
//! A crash or kill therefore leaves a complete, playable file of everything up to the last chunk,
//! which every reader accepts (unlike a "size unknown" header, which some readers reject).
//! For a pipe the sizes cannot be rewritten, so they are set to 0xFFFFFFFF ("until the end"),
//! which sox, ffmpeg and Python's `wave` accept.

use super::{Encoder, Patch};

pub const HEADER_LEN: usize = 44;

pub struct WavEncoder {
    seekable: bool,
    data_bytes: u64,
}

/// A 44-byte canonical header for mono s16 at `rate` with `data_len` bytes of samples.
pub fn header(rate: u32, data_len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff_len(data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * 2).to_le_bytes()); // byte rate
    h[32..34].copy_from_slice(&2u16.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

fn riff_len(data_len: u32) -> u32 {
    if data_len == u32::MAX {
        u32::MAX
    } else {
        data_len.saturating_add(HEADER_LEN as u32 - 8)
    }
}

impl WavEncoder {
    pub fn new(rate: u32, seekable: bool, out: &mut Vec<u8>) -> WavEncoder {
        let len = if seekable { 0 } else { u32::MAX };
        out.extend_from_slice(&header(rate, len));
        WavEncoder {
            seekable,
            data_bytes: 0,
        }
    }

    fn data_len(&self) -> u32 {
        // Past 4 GiB the field saturates; readers then read to the end of the file.
        u32::try_from(self.data_bytes).unwrap_or(u32::MAX - 1)
    }
}

impl Encoder for WavEncoder {
    fn encode(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        crate::pcm::push_s16le(samples, out);
        self.data_bytes += 2 * samples.len() as u64;
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), String> {
        Ok(())
    }

    fn patches(&mut self) -> Vec<Patch> {
        if !self.seekable {
            return Vec::new();
        }
        let len = self.data_len();
        vec![
            (4, riff_len(len).to_le_bytes().to_vec()),
            (40, len.to_le_bytes().to_vec()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let h = header(24000, 4800);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), 4836);
        assert_eq!(u32::from_le_bytes(h[24..28].try_into().unwrap()), 24000);
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 48000);
        assert_eq!(u32::from_le_bytes(h[40..44].try_into().unwrap()), 4800);
        let s = header(24000, u32::MAX);
        assert_eq!(&s[4..8], &[0xFF; 4]);
    }

    #[test]
    fn patches_track_data_written() {
        let mut out = Vec::new();
        let mut e = WavEncoder::new(16000, true, &mut out);
        assert_eq!(out.len(), HEADER_LEN);
        e.encode(&[0.0; 100], &mut out).unwrap();
        let p = e.patches();
        assert_eq!(p[1], (40, 200u32.to_le_bytes().to_vec()));
        assert_eq!(p[0], (4, 236u32.to_le_bytes().to_vec()));
        assert_eq!(out.len(), HEADER_LEN + 200);
    }
}
