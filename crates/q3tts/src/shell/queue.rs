//! The request queue: `generate` jobs in arrival order, bounded (`--queue N`); beyond the bound
//! the request is refused as busy. One worker pops jobs; closing the queue hands back whatever
//! was still waiting so the shell can answer it.

use std::collections::VecDeque;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use q3tts_engine::CancelToken;
use serde_json::Value;

use crate::protocol::Request;

/// A message from the worker to a connection.
pub enum Msg {
    /// An event or the final reply.
    Json(Value),
    /// A raw audio frame payload (empty: end of the audio stream).
    Audio(Vec<u8>),
}

/// One queued `generate` request.
pub struct Job {
    pub id: u64,
    pub request: Request,
    pub cancel: CancelToken,
    /// Where events and the reply go; `None` once detached (`"wait": false`).
    pub reply: Option<SyncSender<Msg>>,
    pub queued_at: Instant,
}

impl Job {
    /// Send a message to the client, if one is waiting (a client that left is ignored).
    pub fn send(&self, msg: Msg) {
        if let Some(tx) = &self.reply {
            let _ = tx.send(msg);
        }
    }

    /// Send a closing message (end of audio, the reply). Blocks while the client reads slowly,
    /// but a cancelled job whose client stopped reading is given up after two seconds, so one
    /// stuck client cannot stall the worker.
    pub fn send_final(&self, msg: Msg) {
        let Some(tx) = &self.reply else { return };
        let start = Instant::now();
        let mut msg = msg;
        loop {
            match tx.try_send(msg) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(m)) => {
                    if self.cancel.is_cancelled() && start.elapsed() > Duration::from_secs(2) {
                        return;
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}

struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queue a job; `Ok(position)` (1 = next), or the job back when full or closed.
    // The job comes back whole, by value, so the caller can answer its client; boxing it only
    // to shrink the error would cost an allocation per request.
    #[allow(clippy::result_large_err)]
    pub fn push(&self, job: Job) -> Result<usize, Job> {
        let mut s = self.state.lock().unwrap();
        if s.closed || s.jobs.len() >= self.capacity {
            return Err(job);
        }
        s.jobs.push_back(job);
        let pos = s.jobs.len();
        self.ready.notify_one();
        Ok(pos)
    }

    /// The next job, waiting for one; `None` once the queue is closed.
    pub fn pop(&self) -> Option<Job> {
        let mut s = self.state.lock().unwrap();
        loop {
            if s.closed {
                return None;
            }
            if let Some(j) = s.jobs.pop_front() {
                return Some(j);
            }
            s = self.ready.wait(s).unwrap();
        }
    }

    /// Take every waiting job out (for `stop` with `all`).
    pub fn drain(&self) -> Vec<Job> {
        self.state.lock().unwrap().jobs.drain(..).collect()
    }

    /// Refuse new jobs, wake the worker, and hand back the waiting ones.
    pub fn close(&self) -> Vec<Job> {
        let mut s = self.state.lock().unwrap();
        s.closed = true;
        self.ready.notify_all();
        s.jobs.drain(..).collect()
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().jobs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64) -> Job {
        Job {
            id,
            request: Request::new(crate::protocol::Action::Generate),
            cancel: CancelToken::new(),
            reply: None,
            queued_at: Instant::now(),
        }
    }

    #[test]
    fn bounded_fifo() {
        let q = Queue::new(2);
        assert_eq!(q.push(job(1)).ok(), Some(1));
        assert_eq!(q.push(job(2)).ok(), Some(2));
        assert_eq!(q.push(job(3)).err().map(|j| j.id), Some(3));
        assert_eq!(q.pop().map(|j| j.id), Some(1));
        assert_eq!(q.len(), 1);
        let left = q.close();
        assert_eq!(left.iter().map(|j| j.id).collect::<Vec<_>>(), [2]);
        assert!(q.pop().is_none());
        assert!(q.push(job(4)).is_err());
    }
}
