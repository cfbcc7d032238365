//! One utterance in progress, as a two-stage pipeline. Generation (talker + code predictor) and
//! decoding (the codec's carried-state streaming decoder) each run on their own thread with
//! their own small rayon pool, so the decoder works on one core while generation streams the
//! weights through the other(s):
//!
//! ```text
//!  generation thread ──frames──▶ decoder thread ──chunks──▶ Session::next (the caller)
//! ```
//!
//! Generation runs ahead of the decoder (frames are 64 bytes); the decoder emits a chunk of
//! exactly `chunk_frames` frames (the first of `first_chunk_frames`, the last may be shorter),
//! and at most [`MAX_CHUNKS_AHEAD`] chunks wait for a slow consumer.
//!
//! The first chunk is the one the listener waits for, so generation pauses once it has made
//! that chunk's frames ([`FirstChunkGate`]) and the decoder takes it on every thread, with no
//! generation on the same cores. On two cores (0.6B, alternating) that brought first audio 48
//! ms closer (int8: 218-234 ms after the prefill against 268-283; bf16: 375-384 against
//! 412-443), for 30-60 ms more in all: a one-off pause, not a cost per frame.
//!
//! Both stages check the cancel token every frame; `next` checks it before handing out
//! anything, so after a cancel the caller gets one `Err(Error::Cancelled)` and nothing more.
//! Dropping the session stops both stages and waits for them (at most the frame in progress).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::codec::DecoderState;
use crate::generate::{Frame, Generator};
use crate::model::Model;
use crate::{AudioChunk, CancelToken, Error, Result, SAMPLE_RATE};

/// Decoded chunks allowed to wait for the consumer before the decoder pauses.
pub const MAX_CHUNKS_AHEAD: usize = 64;
/// How often a waiting `next` looks at the cancel token.
const CANCEL_POLL: Duration = Duration::from_millis(10);

/// Per-session timings, for the bench and status maps.
#[derive(Clone, Debug, Default)]
pub struct SessionStats {
    pub prefill_ms: f64,
    /// Generation time so far (both stages keep counting while the consumer waits).
    pub talker_ms: f64,
    pub code_predictor_ms: f64,
    pub decoder_ms: f64,
    /// Frames handed to the caller so far (in chunks returned by `next`).
    pub frames: usize,
    /// Frames generated so far (may run ahead of `frames`).
    pub generated_frames: usize,
    /// Seconds from the request to the first decoded chunk.
    pub first_chunk_s: Option<f64>,
}

/// How the two stages split the threads of the pool the session is started from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageThreads {
    pub generation: usize,
    pub decoder: usize,
}

impl StageThreads {
    /// Generation gets every thread and a quarter of them (at least one) decode beside it,
    /// sharing cores: the decoder works in bursts and sleeps in between, and generation, bound
    /// by memory bandwidth, loses less to the shared core than it gains from a second thread.
    /// Measured on two cores, 0.6B int8, alternating: 2+1 generated 6.21/6.43 frames/s against
    /// 5.26/5.45 for 1+1, first audio 0.80/0.79 s against 0.91/0.88 (the decoder taking 55 ms a
    /// frame); float weights were already faster with 2+1.
    pub fn split(threads: usize) -> Self {
        StageThreads {
            generation: threads.max(1),
            decoder: (threads / 4).max(1),
        }
    }
}

/// What the decoder stage sends to the caller.
enum Output {
    Chunk { wav: Vec<f32>, frames: Vec<Frame> },
    Failed(Error),
    Finished,
}

/// Everything a session needs to start its stages.
pub(crate) struct SessionStart {
    pub model: Model,
    pub generator: Generator,
    pub decoder: DecoderState,
    pub first_chunk_frames: usize,
    pub chunk_frames: usize,
    pub cancel: CancelToken,
    pub seed: u64,
    pub notes: Vec<String>,
    pub started: Instant,
    /// Decoder time already spent (priming with reference codes).
    pub decoder_ms: f64,
}

/// One utterance in progress. Iterating yields decoded chunks. Returns `Err(Error::Cancelled)`
/// once if the token is cancelled, then ends.
pub struct Session {
    model: Model,
    seed: u64,
    notes: Vec<String>,
    stats: Arc<Mutex<SessionStats>>,
    codes: Vec<Frame>,
    output: Option<Receiver<Output>>,
    stop: Arc<AtomicBool>,
    cancel: CancelToken,
    stages: Vec<JoinHandle<()>>,
    done: bool,
}

impl Session {
    pub(crate) fn start(s: SessionStart) -> Result<Self> {
        let stats = Arc::new(Mutex::new(SessionStats {
            prefill_ms: s.generator.times.prefill_ms,
            decoder_ms: s.decoder_ms,
            ..SessionStats::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = StageThreads::split(rayon::current_num_threads());
        let (frame_tx, frame_rx) = mpsc::channel();
        let (out_tx, out_rx) = mpsc::sync_channel(MAX_CHUNKS_AHEAD);
        let first_chunk_frames = s.first_chunk_frames.max(1);
        let gate = Arc::new(FirstChunkGate::default());
        let generation = GenerationStage {
            model: s.model.clone(),
            generator: s.generator,
            frames: frame_tx,
            first_chunk_frames,
            gate: gate.clone(),
            stats: stats.clone(),
            cancel: s.cancel.clone(),
            stop: stop.clone(),
        };
        let decoding = DecoderStage {
            model: s.model.clone(),
            state: s.decoder,
            frames: frame_rx,
            output: out_tx,
            first_chunk_frames,
            first_chunk_pool: Some(pool("q3tts-decode-first", threads.generation)?),
            gate,
            chunk_frames: s.chunk_frames.max(1),
            stats: stats.clone(),
            started: s.started,
            cancel: s.cancel.clone(),
            stop: stop.clone(),
        };
        let stages = vec![
            spawn_stage("q3tts-generate", threads.generation, move || {
                generation.run()
            })?,
            spawn_stage("q3tts-decode", threads.decoder, move || decoding.run())?,
        ];
        Ok(Self {
            model: s.model,
            seed: s.seed,
            notes: s.notes,
            stats,
            codes: Vec::new(),
            output: Some(out_rx),
            stop,
            cancel: s.cancel,
            stages,
            done: false,
        })
    }

    /// The seed actually used (the request's, or the fresh one chosen for it).
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Timings and counts so far.
    pub fn stats(&self) -> SessionStats {
        lock(&self.stats).clone()
    }
    pub fn model(&self) -> &Model {
        &self.model
    }
    /// Things the caller should know about how the request was interpreted (e.g. an instruct
    /// the model ignores).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
    /// The codes of every frame handed out so far.
    pub fn codes(&self) -> &[Frame] {
        &self.codes
    }

    fn finish(&mut self) {
        self.done = true;
        self.stop.store(true, Ordering::SeqCst);
        // Dropping the receiver unblocks a decoder waiting for room; then both stages end.
        self.output = None;
        for stage in self.stages.drain(..) {
            let _ = stage.join();
        }
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
                self.finish();
                return Some(Err(Error::Cancelled));
            }
            let received = match &self.output {
                Some(rx) => rx.recv_timeout(CANCEL_POLL),
                None => Err(RecvTimeoutError::Disconnected),
            };
            match received {
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(Output::Chunk { wav, frames }) => {
                    lock(&self.stats).frames += frames.len();
                    self.codes.extend(frames);
                    return Some(Ok(AudioChunk::new(wav, SAMPLE_RATE)));
                }
                Ok(Output::Failed(e)) => {
                    self.finish();
                    return Some(Err(e));
                }
                Ok(Output::Finished) => {
                    self.finish();
                    return None;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.finish();
                    if self.cancel.is_cancelled() {
                        return Some(Err(Error::Cancelled));
                    }
                    return Some(Err(Error::Tensor(candle_core::Error::Msg(
                        "the synthesis pipeline stopped without finishing (a stage panicked)"
                            .into(),
                    ))));
                }
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.finish();
    }
}

fn lock(stats: &Mutex<SessionStats>) -> std::sync::MutexGuard<'_, SessionStats> {
    stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `work` on a new thread inside a rayon pool of `threads` threads, so that the kernels it
/// calls split their work over exactly those threads (one thread: no hand-offs at all).
fn spawn_stage(
    name: &str,
    threads: usize,
    work: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>> {
    let pool = pool(name, threads)?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || pool.install(work))
        .map_err(|e| {
            Error::Tensor(candle_core::Error::Msg(format!(
                "cannot start a thread: {e}"
            )))
        })
}

/// A rayon pool of `threads` threads named `name-i`.
fn pool(name: &str, threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name({
            let name = name.to_string();
            move |i| format!("{name}-{i}")
        })
        .build()
        .map_err(|e| Error::Tensor(candle_core::Error::Msg(format!("thread pool: {e}"))))
}

/// Opened once the first chunk is decoded (or the decoder stage has ended); generation waits
/// at it after making the first chunk's frames.
#[derive(Default)]
struct FirstChunkGate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl FirstChunkGate {
    fn open(&self) {
        *self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.opened.notify_all();
    }

    /// Waits until the gate opens or `give_up` says to stop waiting (checked every
    /// [`CANCEL_POLL`]).
    fn wait(&self, give_up: impl Fn() -> bool) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*open && !give_up() {
            open = match self.opened.wait_timeout(open, CANCEL_POLL) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Stage 1: frames from the talker and code predictor, as fast as they come.
struct GenerationStage {
    model: Model,
    generator: Generator,
    frames: Sender<Result<Frame>>,
    first_chunk_frames: usize,
    gate: Arc<FirstChunkGate>,
    stats: Arc<Mutex<SessionStats>>,
    cancel: CancelToken,
    stop: Arc<AtomicBool>,
}

impl GenerationStage {
    fn run(mut self) {
        let mut made = 0;
        while !self.cancel.is_cancelled() && !self.stop.load(Ordering::SeqCst) {
            let next = self.model.next_frame(&mut self.generator);
            {
                let t = self.generator.times;
                let mut s = lock(&self.stats);
                s.talker_ms = t.talker_ms;
                s.code_predictor_ms = t.code_predictor_ms;
                if let Ok(Some(_)) = next {
                    s.generated_frames += 1;
                }
            }
            let sent = match next {
                Ok(Some(frame)) => self.frames.send(Ok(frame)),
                Ok(None) => return,
                Err(e) => {
                    let _ = self.frames.send(Err(e));
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
            made += 1;
            if made == self.first_chunk_frames {
                self.gate
                    .wait(|| self.cancel.is_cancelled() || self.stop.load(Ordering::SeqCst));
            }
        }
    }
}

/// Stage 2: chunks of frames through the streaming decoder.
struct DecoderStage {
    model: Model,
    state: DecoderState,
    frames: Receiver<Result<Frame>>,
    output: SyncSender<Output>,
    first_chunk_frames: usize,
    /// Every thread generation has, for the first chunk (generation waits meanwhile); taken
    /// when that chunk is decoded.
    first_chunk_pool: Option<rayon::ThreadPool>,
    gate: Arc<FirstChunkGate>,
    chunk_frames: usize,
    stats: Arc<Mutex<SessionStats>>,
    started: Instant,
    cancel: CancelToken,
    stop: Arc<AtomicBool>,
}

impl DecoderStage {
    fn run(mut self) {
        let mut pending = Vec::new();
        let mut chunks = 0;
        loop {
            if self.cancel.is_cancelled() || self.stop.load(Ordering::SeqCst) {
                return;
            }
            let want = if chunks == 0 {
                self.first_chunk_frames
            } else {
                self.chunk_frames
            };
            match self.frames.recv() {
                Ok(Ok(frame)) => {
                    pending.push(frame);
                    if pending.len() >= want {
                        chunks += 1;
                        let frames = std::mem::take(&mut pending);
                        let sent = match self.first_chunk_pool.take() {
                            Some(pool) => {
                                let sent = pool.install(|| self.decode(frames));
                                self.gate.open();
                                sent
                            }
                            None => self.decode(frames),
                        };
                        if !sent {
                            return;
                        }
                    }
                }
                Ok(Err(e)) => {
                    let _ = self.output.send(Output::Failed(e));
                    return;
                }
                // Generation ended: the last, shorter chunk, then the end.
                Err(_) => {
                    if self.cancel.is_cancelled() || self.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if !pending.is_empty() && !self.decode(std::mem::take(&mut pending)) {
                        return;
                    }
                    let _ = self.output.send(Output::Finished);
                    return;
                }
            }
        }
    }

    /// Decode `frames` and send the chunk; false once nothing more should be sent.
    fn decode(&mut self, frames: Vec<Frame>) -> bool {
        let t0 = Instant::now();
        let wav = self.model.codec().decode_chunk(&mut self.state, &frames);
        {
            let mut s = lock(&self.stats);
            s.decoder_ms += t0.elapsed().as_secs_f64() * 1e3;
            if s.first_chunk_s.is_none() {
                s.first_chunk_s = Some(self.started.elapsed().as_secs_f64());
            }
        }
        let msg = match wav {
            Ok(wav) => Output::Chunk { wav, frames },
            Err(e) => Output::Failed(e),
        };
        let failed = matches!(msg, Output::Failed(_));
        self.output.send(msg).is_ok() && !failed
    }
}

impl Drop for DecoderStage {
    /// However the stage ends, generation must not wait for a first chunk that will not come.
    fn drop(&mut self) {
        self.gate.open();
    }
}

#[cfg(test)]
mod tests {
    use super::{FirstChunkGate, StageThreads};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn the_gate_holds_until_opened_or_given_up() {
        let gate = Arc::new(FirstChunkGate::default());
        let about_to_open = Arc::new(AtomicBool::new(false));
        let opener = {
            let (gate, flag) = (gate.clone(), about_to_open.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                flag.store(true, Ordering::SeqCst);
                gate.open();
            })
        };
        gate.wait(|| false);
        assert!(about_to_open.load(Ordering::SeqCst), "passed a closed gate");
        opener.join().unwrap();
        // Once open it stays open.
        gate.wait(|| false);
        // A closed gate lets a waiter go when it gives up (cancel, stop), asking as it waits.
        let closed = FirstChunkGate::default();
        let asked = AtomicUsize::new(0);
        closed.wait(|| asked.fetch_add(1, Ordering::SeqCst) == 2);
        assert_eq!(asked.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn threads_split_one_decoder_per_four() {
        let s = |n| {
            let t = StageThreads::split(n);
            (t.generation, t.decoder)
        };
        assert_eq!(s(1), (1, 1));
        assert_eq!(s(2), (2, 1));
        assert_eq!(s(4), (4, 1));
        assert_eq!(s(16), (16, 4));
    }
}
