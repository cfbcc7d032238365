//! The hot-swapped handler: a Rhai script run for every `generate` request, recompiled when it
//! or any module it imports changes.

pub mod api;
pub mod context;
pub mod memory;
pub mod modules;
pub mod progress;
pub mod runtime;
pub mod text;

pub use context::{Host, Limits};
pub use runtime::{ErrorKind, Runtime, DEFAULT_HANDLER};
