//! Audio progress, for the daemon's request deadline: a process-wide count of audio chunks
//! pulled from the engine or written to an output by a script. One request runs at a time, so
//! a count that stops moving means the request in progress makes no audio.

use std::sync::atomic::{AtomicU64, Ordering};

static FRAMES: AtomicU64 = AtomicU64::new(0);

/// Record one audio chunk (made by the engine, or written to an output).
pub fn audio_frame() {
    FRAMES.fetch_add(1, Ordering::Relaxed);
}

/// The count so far.
pub fn frames() -> u64 {
    FRAMES.load(Ordering::Relaxed)
}
