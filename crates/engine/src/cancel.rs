//! Cancellation: one shared flag, set by whoever wants the utterance to stop
//! (`stop`, SIGTERM, a client hang-up, a deadline) and checked by the session every frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cheap, clonable cancellation flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    /// Ask every holder of this token to stop as soon as possible.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Clear the flag so the token can be reused for the next utterance.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}
