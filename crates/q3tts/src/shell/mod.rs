//! The stable shell: everything expensive or long-lived (the model, the socket, the queue,
//! signals, the lock, the log). It never runs script code itself except through the worker.

pub mod daemonize;
pub mod lock;
pub mod log;
pub mod outputs;
pub mod peer;
pub mod queue;
pub mod server;
pub mod signals;
pub mod state;
pub mod watchdog;
pub mod worker;
