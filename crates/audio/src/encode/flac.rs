//! FLAC (16-bit mono) through the pure-Rust `flacenc` crate, one fixed-size frame at a time.
//!
//! The STREAMINFO block is written first with "unknown" length; frames follow as soon as a
//! block of samples is complete, and on finish the STREAMINFO (total samples, frame sizes,
//! MD5 of the audio) is rewritten in place for seekable outputs.

use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, Stream};
use flacenc::config;
use flacenc::error::{Verified, Verify};
use flacenc::source::{Context, Fill, FrameBuf};

use super::{Encoder, Patch};
use crate::pcm::to_i16;

const BLOCK: usize = 4096;

pub struct FlacEncoder {
    config: Verified<config::Encoder>,
    stream: Stream,
    framebuf: FrameBuf,
    context: Context,
    pending: Vec<i32>,
    frames: usize,
    min_frame: usize,
    max_frame: usize,
    header_dirty: bool,
}

impl FlacEncoder {
    pub fn new(rate: u32, out: &mut Vec<u8>) -> Result<FlacEncoder, String> {
        let config = config::Encoder::default()
            .into_verified()
            .map_err(|e| format!("FLAC encoder configuration: {e:?}"))?;
        let mut stream = Stream::new(rate as usize, 1, 16)
            .map_err(|e| format!("FLAC cannot store {rate} Hz: {e}"))?;
        stream
            .stream_info_mut()
            .set_block_sizes(BLOCK, BLOCK)
            .map_err(|e| format!("FLAC block size: {e}"))?;
        let framebuf = FrameBuf::with_size(1, BLOCK).map_err(|e| format!("FLAC buffer: {e}"))?;
        let enc = FlacEncoder {
            config,
            stream,
            framebuf,
            context: Context::new(16, 1),
            pending: Vec::with_capacity(BLOCK),
            frames: 0,
            min_frame: usize::MAX,
            max_frame: 0,
            header_dirty: false,
        };
        out.extend_from_slice(&enc.header_bytes()?);
        Ok(enc)
    }

    /// `fLaC` and the STREAMINFO block as they stand now.
    fn header_bytes(&self) -> Result<Vec<u8>, String> {
        let mut sink = ByteSink::new();
        self.stream
            .write(&mut sink)
            .map_err(|e| format!("FLAC header: {e:?}"))?;
        Ok(sink.into_inner())
    }

    /// Encodes the pending samples (at most one block) as the next frame.
    fn flush_block(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.framebuf
            .fill_interleaved(&self.pending)
            .and_then(|()| self.context.fill_interleaved(&self.pending))
            .map_err(|e| format!("FLAC input: {e}"))?;
        let frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.framebuf,
            self.frames,
            self.stream.stream_info(),
        )
        .map_err(|e| format!("FLAC encoding failed: {e}"))?;
        let mut sink = ByteSink::new();
        frame
            .write(&mut sink)
            .map_err(|e| format!("FLAC frame: {e:?}"))?;
        let bytes = sink.into_inner();
        self.min_frame = self.min_frame.min(bytes.len());
        self.max_frame = self.max_frame.max(bytes.len());
        out.extend_from_slice(&bytes);
        self.frames += 1;
        self.pending.clear();
        Ok(())
    }
}

impl Encoder for FlacEncoder {
    fn encode(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        for &s in samples {
            self.pending.push(i32::from(to_i16(s)));
            if self.pending.len() == BLOCK {
                self.flush_block(out)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        self.flush_block(out)?;
        let info = self.stream.stream_info_mut();
        info.set_total_samples(self.context.total_samples());
        info.set_md5_digest(&self.context.md5_digest());
        if self.frames > 0 {
            info.set_frame_sizes(self.min_frame, self.max_frame)
                .map_err(|e| format!("FLAC frame sizes: {e}"))?;
        }
        self.header_dirty = true;
        Ok(())
    }

    fn patches(&mut self) -> Vec<Patch> {
        if !std::mem::take(&mut self.header_dirty) {
            return Vec::new();
        }
        match self.header_bytes() {
            Ok(bytes) => vec![(0, bytes)],
            Err(_) => Vec::new(),
        }
    }
}
