//! The progress deadline: a request that makes no new audio (no chunk from the engine, none
//! written to an output) for `--progress-timeout` seconds (default 30) is cancelled, so a stuck
//! request — a sink that never drains, a native call that never returns to the engine — cannot
//! hold the daemon forever, while a long synthesis that keeps making audio runs to its end.
//! Script work is bounded separately (the handler's script time limit).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::log;
use super::state::Shared;
use crate::handler::progress;

/// The id of the last request stopped by the deadline (0: none yet).
static EXPIRED: AtomicU64 = AtomicU64::new(0);

/// The deadline in milliseconds, for the error message.
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);

/// Whether the request with this id was stopped by the deadline.
pub fn expired(id: u64) -> bool {
    id != 0 && EXPIRED.load(Ordering::SeqCst) == id
}

/// The error message for a request stopped by the deadline.
pub fn message() -> String {
    let secs = TIMEOUT_MS.load(Ordering::SeqCst) as f64 / 1000.0;
    format!(
        "deadline: no new audio for {secs}s, so the request was stopped (a stuck output or \
         handler); `q3tts serve --progress-timeout SECONDS` changes the limit"
    )
}

/// Watch the request in progress until the daemon shuts down.
pub fn spawn(
    shared: Arc<Shared>,
    timeout: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    TIMEOUT_MS.store(timeout.as_millis() as u64, Ordering::SeqCst);
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || watch(&shared, timeout))
}

fn watch(shared: &Shared, timeout: Duration) {
    let tick = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    // (request id, audio count, since when that count has not moved)
    let mut seen: Option<(u64, u64, Instant)> = None;
    while !shared.is_shutting_down() {
        std::thread::sleep(tick);
        let frames = progress::frames();
        let guard = shared.current.lock().unwrap();
        let Some(cur) = guard.as_ref() else {
            seen = None;
            continue;
        };
        match seen {
            Some((id, n, since)) if id == cur.id && n == frames => {
                if since.elapsed() >= timeout && !cur.cancel.is_cancelled() {
                    EXPIRED.store(cur.id, Ordering::SeqCst);
                    cur.cancel.cancel();
                    log::deadline(&format!(
                        "{} (no audio for {:.0}s; --progress-timeout)",
                        log::quote(&cur.text),
                        timeout.as_secs_f64()
                    ));
                }
            }
            _ => seen = Some((cur.id, frames, Instant::now())),
        }
    }
}
