//! The daemon's outputs for scripts: the speakers (one device kept open across requests) and
//! the audio stream back to the client for `-o -` (frames described in `protocol`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use q3tts_audio::{Backend, Format, Sink, SinkSummary, Speakers};
use q3tts_engine::CancelToken;

use super::queue::Msg;
use crate::handler::Host;
use crate::protocol::{audio_event, audio_payload, AUDIO_FRAME_SAMPLES};

/// The speakers, opened on first use and kept open.
pub type SharedSpeakers = Arc<Mutex<Option<Speakers>>>;

/// The [`Host`] for one daemon request.
pub struct DaemonHost {
    pub speakers: SharedSpeakers,
    pub backend: Backend,
    pub reply: Option<SyncSender<Msg>>,
    pub cancel: CancelToken,
    /// Set while an audio stream to the client is open (its end frame not yet sent).
    pub stream_open: Arc<AtomicBool>,
}

impl Host for DaemonHost {
    fn speakers(&mut self, sample_rate: u32) -> Result<Box<dyn Sink>, String> {
        let mut guard = self.speakers.lock().unwrap();
        match guard.as_mut() {
            Some(s) => {
                s.ensure_open().map_err(|e| e.to_string())?;
            }
            None => {
                *guard = Some(Speakers::open(self.backend, sample_rate).map_err(|e| e.to_string())?)
            }
        }
        Ok(Box::new(SpeakerSink {
            speakers: self.speakers.clone(),
            samples: 0,
            rate: sample_rate,
        }))
    }

    fn stream(
        &mut self,
        sample_rate: u32,
        _format: Option<Format>,
    ) -> Result<Box<dyn Sink>, String> {
        let tx = self
            .reply
            .clone()
            .ok_or("output \"-\" needs a client that waits for the reply (not \"wait\": false)")?;
        let mut s = ClientStream {
            tx,
            cancel: self.cancel.clone(),
            samples: 0,
            rate: sample_rate,
            open: self.stream_open.clone(),
        };
        s.send(Msg::Json(audio_event(sample_rate)))?;
        s.open.store(true, Ordering::SeqCst);
        Ok(Box::new(s))
    }
}

/// A request's view of the shared speakers.
struct SpeakerSink {
    speakers: SharedSpeakers,
    samples: u64,
    rate: u32,
}

impl Sink for SpeakerSink {
    fn write(&mut self, samples: &[f32]) -> q3tts_audio::Result<()> {
        let mut g = self.speakers.lock().unwrap();
        let s = g
            .as_mut()
            .ok_or_else(|| q3tts_audio::Error::Other("speakers closed".into()))?;
        s.write(samples)?;
        self.samples += samples.len() as u64;
        Ok(())
    }
    fn finish(&mut self) -> q3tts_audio::Result<SinkSummary> {
        let mut g = self.speakers.lock().unwrap();
        if let Some(s) = g.as_mut() {
            s.finish()?;
        }
        Ok(SinkSummary {
            samples: self.samples,
            sample_rate: self.rate,
        })
    }
    fn cancel(&mut self) {
        if let Some(s) = self.speakers.lock().unwrap().as_mut() {
            s.cancel();
        }
    }
    fn describe(&self) -> String {
        "speakers".into()
    }
}

/// Audio frames to the waiting client; blocks (backpressure) while the client is not reading,
/// until cancelled.
struct ClientStream {
    tx: SyncSender<Msg>,
    cancel: CancelToken,
    samples: u64,
    rate: u32,
    open: Arc<AtomicBool>,
}

impl ClientStream {
    fn send(&mut self, msg: Msg) -> Result<(), String> {
        let mut msg = msg;
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(m)) => {
                    if self.cancel.is_cancelled() {
                        return Err("cancelled".into());
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(TrySendError::Disconnected(_)) => return Err("the client went away".into()),
            }
        }
    }
}

impl Sink for ClientStream {
    fn write(&mut self, samples: &[f32]) -> q3tts_audio::Result<()> {
        for part in samples.chunks(AUDIO_FRAME_SAMPLES) {
            self.send(Msg::Audio(audio_payload(part)))
                .map_err(q3tts_audio::Error::Other)?;
        }
        self.samples += samples.len() as u64;
        Ok(())
    }
    fn finish(&mut self) -> q3tts_audio::Result<SinkSummary> {
        self.send(Msg::Audio(Vec::new()))
            .map_err(q3tts_audio::Error::Other)?;
        self.open.store(false, Ordering::SeqCst);
        Ok(SinkSummary {
            samples: self.samples,
            sample_rate: self.rate,
        })
    }
    fn describe(&self) -> String {
        "stdout".into()
    }
}
