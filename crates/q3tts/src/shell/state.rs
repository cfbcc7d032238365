//! What the shell's threads share: the model's facts, counters, the utterance in progress and
//! the queue. Control requests (`status`, `stop`) are answered from here at once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use q3tts_engine::{CancelToken, ModelInfo};
use serde_json::{json, Value};

use super::queue::Queue;

/// The utterance being generated now.
pub struct Current {
    pub id: u64,
    pub text: String,
    pub cancel: CancelToken,
}

pub struct Shared {
    pub started: Instant,
    pub info: ModelInfo,
    /// The `--model` spec the daemon was started with, and the directory it resolved to.
    pub model_spec: String,
    pub socket: PathBuf,
    pub handler_path: PathBuf,
    pub log_path: Option<PathBuf>,
    pub queue: Queue,
    pub served: AtomicU64,
    pub next_id: AtomicU64,
    pub current: Mutex<Option<Current>>,
    pub last_reload: Mutex<Option<SystemTime>>,
    pub handler_builtin: AtomicBool,
    pub shutdown: Arc<AtomicBool>,
}

impl Shared {
    /// Cancel the utterance in progress; returns whether there was one.
    pub fn cancel_current(&self) -> bool {
        match self.current.lock().unwrap().as_ref() {
            Some(c) => {
                c.cancel.cancel();
                true
            }
            None => false,
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub fn status(&self) -> Value {
        let last_reload = self.last_reload.lock().unwrap().and_then(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs_f64())
        });
        let current = self
            .current
            .lock()
            .unwrap()
            .as_ref()
            .map(|c| (c.text.clone(), c.id));
        json!({
            "status": "ok",
            "model": self.info.path.display().to_string(),
            "model_spec": self.model_spec,
            "variant": self.info.variant.as_str(),
            "size": self.info.size,
            "dtype": self.info.dtype,
            "sample_rate": self.info.sample_rate,
            "speakers": self.info.speakers,
            "languages": self.info.languages,
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "requests_served": self.served.load(Ordering::SeqCst),
            "handler": self.handler_path.display().to_string(),
            "handler_builtin": self.handler_builtin.load(Ordering::SeqCst),
            "last_reload": last_reload,
            "queue_length": self.queue.len(),
            "queue_capacity": self.queue.capacity(),
            "generating": current.as_ref().map(|c| &c.0),
            "generating_id": current.as_ref().map(|c| c.1),
            "log": self.log_path.as_ref().map(|p| p.display().to_string()),
            "socket": self.socket.display().to_string(),
            "pid": std::process::id(),
        })
    }
}
