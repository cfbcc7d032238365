//! Figures for `q3tts bench` that need the engine's knowledge but no timing of their own: how
//! many weight bytes one generated frame streams from memory ([`traffic`]), the machine's
//! plain read bandwidth, the ceiling for those bytes ([`bandwidth`]), and a writer that puts
//! a random-weight model of the released dimensions on disk in the real layout, so that other
//! implementations can be run on the very same weights ([`checkpoint`]).

pub mod bandwidth;
pub mod checkpoint;
pub mod kernels;
pub mod traffic;
