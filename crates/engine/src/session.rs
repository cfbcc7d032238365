//! One utterance in progress: pulls frames from the generator, checks the cancel token every
//! frame, and every `chunk_frames` frames decodes them through the codec's carried-state
//! decoder into an [`AudioChunk`] of exactly frames × 1920 samples.

use std::time::Instant;

use crate::codec::DecoderState;
use crate::generate::{Frame, Generator};
use crate::model::Model;
use crate::{AudioChunk, CancelToken, Error, Result, SAMPLE_RATE};

/// Per-session timings, for the bench and status maps.
#[derive(Clone, Debug, Default)]
pub struct SessionStats {
    pub prefill_ms: f64,
    pub talker_ms: f64,
    pub code_predictor_ms: f64,
    pub decoder_ms: f64,
    pub frames: usize,
    pub first_chunk_s: Option<f64>,
}

/// One utterance in progress. Iterating pulls frames from the model and yields decoded chunks of
/// `chunk_frames` frames (the first has `first_chunk_frames`, the last may be shorter). Returns `Err(Error::Cancelled)` once if the
/// token is cancelled, then ends.
pub struct Session {
    model: Model,
    seed: u64,
    stats: SessionStats,
    generator: Generator,
    decoder: DecoderState,
    first_chunk_frames: usize,
    chunk_frames: usize,
    chunks: usize,
    pending: Vec<Frame>,
    codes: Vec<Frame>,
    cancel: CancelToken,
    notes: Vec<String>,
    started: Instant,
    done: bool,
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        model: Model,
        generator: Generator,
        decoder: DecoderState,
        first_chunk_frames: usize,
        chunk_frames: usize,
        cancel: CancelToken,
        seed: u64,
        notes: Vec<String>,
        started: Instant,
        decoder_ms: f64,
    ) -> Self {
        let stats = SessionStats {
            prefill_ms: generator.times.prefill_ms,
            decoder_ms,
            ..SessionStats::default()
        };
        Self {
            model,
            seed,
            stats,
            generator,
            decoder,
            first_chunk_frames: first_chunk_frames.max(1),
            chunk_frames: chunk_frames.max(1),
            chunks: 0,
            pending: Vec::new(),
            codes: Vec::new(),
            cancel,
            notes,
            started,
            done: false,
        }
    }

    /// The seed actually used (the request's, or the fresh one chosen for it).
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }
    pub fn model(&self) -> &Model {
        &self.model
    }
    /// Things the caller should know about how the request was interpreted (e.g. an instruct
    /// the model ignores).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
    /// Every frame generated so far.
    pub fn codes(&self) -> &[Frame] {
        &self.codes
    }

    fn decode_pending(&mut self) -> Result<AudioChunk> {
        let t0 = Instant::now();
        let frames = std::mem::take(&mut self.pending);
        self.chunks += 1;
        let wav = self
            .model
            .codec()
            .decode_chunk(&mut self.decoder, &frames)?;
        self.stats.decoder_ms += t0.elapsed().as_secs_f64() * 1e3;
        if self.stats.first_chunk_s.is_none() {
            self.stats.first_chunk_s = Some(self.started.elapsed().as_secs_f64());
        }
        Ok(AudioChunk::new(wav, SAMPLE_RATE))
    }

    fn step(&mut self) -> Result<Option<Frame>> {
        let f = self.model.next_frame(&mut self.generator)?;
        let t = self.generator.times;
        self.stats.talker_ms = t.talker_ms;
        self.stats.code_predictor_ms = t.code_predictor_ms;
        Ok(f)
    }
}

impl Iterator for Session {
    type Item = Result<AudioChunk>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            if self.cancel.is_cancelled() {
                self.done = true;
                self.pending.clear();
                return Some(Err(Error::Cancelled));
            }
            match self.step() {
                Ok(Some(frame)) => {
                    self.codes.push(frame);
                    self.pending.push(frame);
                    self.stats.frames += 1;
                    let want = if self.chunks == 0 {
                        self.first_chunk_frames
                    } else {
                        self.chunk_frames
                    };
                    if self.pending.len() >= want {
                        let r = self.decode_pending();
                        if r.is_err() {
                            self.done = true;
                        }
                        return Some(r);
                    }
                }
                Ok(None) => {
                    self.done = true;
                    if self.pending.is_empty() {
                        return None;
                    }
                    return Some(self.decode_pending());
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
