//! The sink abstraction: anything that consumes 24 kHz mono f32 audio as it is generated.

use crate::Result;

/// A destination for streamed audio. `write` may block (backpressure: a speaker sink paces the
/// caller to real time); `finish` drains what is buffered (never cuts the tail) and closes.
pub trait Sink: Send {
    /// Append samples (mono f32 in [-1, 1] at the rate the sink was opened with).
    fn write(&mut self, samples: &[f32]) -> Result<()>;
    /// Flush and close; returns what was written.
    fn finish(&mut self) -> Result<SinkSummary>;
    /// Drop buffered audio and stop as soon as possible (within one device buffer).
    fn cancel(&mut self) {}
    /// A short human description for logs: "speakers", "out.wav", "stdout".
    fn describe(&self) -> String;
}

/// What a finished sink reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SinkSummary {
    /// Samples accepted from the caller (at the caller's rate).
    pub samples: u64,
    pub sample_rate: u32,
}
