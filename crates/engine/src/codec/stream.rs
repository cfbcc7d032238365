//! [`DecoderState`]: everything the 12 Hz decoder carries from one streamed chunk to the next —
//! each causal conv's left context, each transposed conv's overlap tail and each pre-transformer
//! layer's key/value cache within the sliding window — so that decoding chunk by chunk equals the
//! one-shot decode for any chunk size. The state owns plain tensors and no reference to the
//! codec; layers address their part of it by the slot index they were given when built.

use candle_core::Tensor;

use crate::{Error, Result};

/// Hands out one slot index per stateful layer while a decoder is built.
#[derive(Debug, Default)]
pub(crate) struct SlotAlloc {
    next: usize,
}

impl SlotAlloc {
    pub(crate) fn next(&mut self) -> usize {
        self.next += 1;
        self.next - 1
    }
    pub(crate) fn count(&self) -> usize {
        self.next
    }
}

/// Streaming state of one decode (one utterance). Create it with `Codec::new_stream`, feed it to
/// `Codec::decode_chunk` chunk after chunk. It is `Send`, so a session may carry it to another
/// thread; it belongs to the codec that made it and is refused by any other.
#[derive(Debug)]
pub struct DecoderState {
    pub(crate) codec_id: u64,
    /// Frames decoded so far: the RoPE position of the next frame.
    pub(crate) frames: usize,
    /// Per stateful conv: its carried left context or overlap tail (`None` before the first chunk).
    pub(crate) slots: Vec<Option<Tensor>>,
    /// Per pre-transformer layer: the keys (after RoPE) and values inside the window.
    pub(crate) kv: Vec<Option<(Tensor, Tensor)>>,
}

impl DecoderState {
    pub(crate) fn new(codec_id: u64, slots: usize, layers: usize) -> Self {
        Self {
            codec_id,
            frames: 0,
            slots: vec![None; slots],
            kv: vec![None; layers],
        }
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    pub(crate) fn check_owner(&self, codec_id: u64) -> Result<()> {
        if self.codec_id != codec_id {
            return Err(Error::InvalidRequest(
                "this decoder state was made by another codec; start a new stream with Codec::new_stream".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn take(&mut self, slot: usize) -> Option<Tensor> {
        self.slots[slot].take()
    }

    pub(crate) fn put(&mut self, slot: usize, t: Tensor) {
        self.slots[slot] = Some(t);
    }
}
