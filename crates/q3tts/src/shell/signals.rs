//! SIGTERM and SIGINT: set a flag the accept loop watches; the shell then shuts down cleanly
//! (stop accepting, cancel, reply to the queued, remove socket and lock, log `shutdown`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Register SIGTERM and SIGINT to set `flag`.
pub fn on_terminate(flag: Arc<AtomicBool>) -> std::io::Result<()> {
    signal_hook::flag::register(signal_hook::consts::SIGTERM, flag.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, flag)?;
    Ok(())
}
