//! Audio chunks: immutable, shared sample buffers that cross from the engine to scripts and sinks
//! without copying.

use std::ops::Deref;
use std::sync::Arc;

/// A run of 24 kHz mono f32 samples in [-1, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct AudioChunk {
    samples: Arc<[f32]>,
    sample_rate: u32,
}

impl AudioChunk {
    pub fn new(samples: impl Into<Arc<[f32]>>, sample_rate: u32) -> Self {
        Self {
            samples: samples.into(),
            sample_rate,
        }
    }
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }
    pub fn shared(&self) -> Arc<[f32]> {
        self.samples.clone()
    }
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    pub fn len(&self) -> usize {
        self.samples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

impl Deref for AudioChunk {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.samples
    }
}
