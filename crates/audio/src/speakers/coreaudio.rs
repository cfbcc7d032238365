//! macOS: CoreAudio through cpal (a macOS-only dependency; cpal needs ALSA headers on Linux).
//!
//! cpal pulls samples from a callback, so `play` pushes into a queue one device buffer long and
//! waits while it is full (backpressure). The device's own rate is used and our audio resampled
//! to it. cpal has no drain: `drain` waits for the queue to empty, then one more buffer period.
//! The stream lives on its own thread (cpal streams need not be `Send`).

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::{Device, DeviceError, DeviceResult, BUFFER_MS};
use crate::resample::Resampler;

#[derive(Default)]
struct Queue {
    samples: VecDeque<f32>,
    /// A fatal stream error reported by cpal.
    error: Option<String>,
}

type Shared = Arc<(Mutex<Queue>, Condvar)>;

pub struct CpalDevice {
    shared: Shared,
    resampler: Resampler,
    /// Queue length (device-rate samples) at which `play` waits.
    capacity: usize,
    device_rate: u32,
    name: String,
    stop: Option<mpsc::Sender<()>>,
}

impl CpalDevice {
    pub fn open(rate: u32) -> Result<CpalDevice, String> {
        let shared: Shared = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(u32, String), String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let for_stream = shared.clone();
        thread::Builder::new()
            .name("q3tts-coreaudio".into())
            .spawn(move || {
                let stream = match start_stream(for_stream) {
                    Ok((stream, info)) => {
                        let _ = ready_tx.send(Ok(info));
                        stream
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Keep the stream alive until the device is dropped.
                let _ = stop_rx.recv();
                drop(stream);
            })
            .map_err(|e| format!("cannot start the audio thread: {e}"))?;
        let (device_rate, name) = ready_rx
            .recv()
            .map_err(|_| "the audio thread stopped before the stream started".to_string())??;
        Ok(CpalDevice {
            shared,
            resampler: Resampler::new(rate, device_rate),
            capacity: (device_rate * BUFFER_MS / 1000) as usize,
            device_rate,
            name,
            stop: Some(stop_tx),
        })
    }

    fn check(&self, q: &Queue) -> DeviceResult<()> {
        match &q.error {
            Some(e) => Err(DeviceError::Lost(format!("CoreAudio stream failed: {e}"))),
            None => Ok(()),
        }
    }

    /// Queues device-rate samples, waiting while the queue is full.
    fn enqueue(&mut self, mut samples: &[f32]) -> DeviceResult<()> {
        let (lock, cond) = &*self.shared;
        let mut q = lock
            .lock()
            .map_err(|_| DeviceError::Lost("audio thread panicked".into()))?;
        while !samples.is_empty() {
            self.check(&q)?;
            let room = self.capacity.saturating_sub(q.samples.len());
            if room == 0 {
                q = cond
                    .wait_timeout(q, Duration::from_millis(200))
                    .map_err(|_| DeviceError::Lost("audio thread panicked".into()))?
                    .0;
                continue;
            }
            let n = room.min(samples.len());
            q.samples.extend(&samples[..n]);
            samples = &samples[n..];
        }
        Ok(())
    }
}

/// Builds and starts the output stream on the default device: (stream, (rate, description)).
fn start_stream(shared: Shared) -> Result<(cpal::Stream, (u32, String)), String> {
    let host = cpal::default_host();
    let device = host
        .default_output_device()
        .ok_or("no default output device")?;
    let supported = device
        .default_output_config()
        .map_err(|e| format!("cannot query the output device: {e}"))?;
    let channels = supported.channels().max(1) as usize;
    let device_rate = supported.sample_rate();
    let mut config = supported.config();
    // A fixed, small buffer: cpal's default can be seconds long on some hosts.
    config.buffer_size = cpal::BufferSize::Fixed(device_rate * BUFFER_MS / 2000);
    let for_errors = shared.clone();
    let stream = device
        .build_output_stream::<f32, _, _>(
            config,
            move |data: &mut [f32], _: &cpal::OutputCallbackInfo| fill(&shared, data, channels),
            move |err: cpal::Error| {
                if matches!(
                    err.kind(),
                    cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated
                ) {
                    let (lock, cond) = &*for_errors;
                    if let Ok(mut q) = lock.lock() {
                        q.error = Some(err.to_string());
                    }
                    cond.notify_all();
                }
            },
            None,
        )
        .map_err(|e| format!("cannot open an output stream: {e}"))?;
    stream
        .play()
        .map_err(|e| format!("cannot start the output stream: {e}"))?;
    Ok((
        stream,
        (
            device_rate,
            format!("coreaudio default output at {device_rate} Hz"),
        ),
    ))
}

/// The device callback: queued mono samples to every channel, silence when empty.
fn fill(shared: &Shared, data: &mut [f32], channels: usize) {
    let (lock, cond) = &**shared;
    let Ok(mut q) = lock.lock() else {
        data.fill(0.0);
        return;
    };
    for frame in data.chunks_mut(channels) {
        let s = q.samples.pop_front().unwrap_or(0.0);
        frame.fill(s);
    }
    cond.notify_all();
}

impl Device for CpalDevice {
    fn play(&mut self, pcm: &[i16]) -> DeviceResult<()> {
        let input: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let converted = self.resampler.push(&input);
        self.enqueue(&converted)
    }

    fn drain(&mut self) -> DeviceResult<()> {
        let tail = self.resampler.flush();
        self.enqueue(&tail)?;
        {
            let (lock, cond) = &*self.shared;
            let mut q = lock
                .lock()
                .map_err(|_| DeviceError::Lost("audio thread panicked".into()))?;
            while !q.samples.is_empty() {
                self.check(&q)?;
                q = cond
                    .wait_timeout(q, Duration::from_millis(200))
                    .map_err(|_| DeviceError::Lost("audio thread panicked".into()))?
                    .0;
            }
        }
        // What the last callback took is still in the device's own buffer.
        thread::sleep(Duration::from_millis(u64::from(BUFFER_MS)));
        Ok(())
    }

    fn discard(&mut self) {
        let _ = self.resampler.flush();
        let (lock, cond) = &*self.shared;
        if let Ok(mut q) = lock.lock() {
            q.samples.clear();
        }
        cond.notify_all();
    }

    fn alive(&mut self) -> bool {
        let (lock, _) = &*self.shared;
        lock.lock().map(|q| q.error.is_none()).unwrap_or(false)
    }

    fn describe(&self) -> String {
        let _ = self.device_rate;
        self.name.clone()
    }
}

impl Drop for CpalDevice {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
