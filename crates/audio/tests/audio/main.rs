//! Integration tests for q3tts-audio: every file format checked with an independent decoder
//! from Debian (sox, flac, mpg123, opusdec), decoding of reference audio, and the speaker
//! backends against a PulseAudio null sink started for the test.
//!
//! External tools: under `CI=true` a missing tool or a sink that cannot start fails the test;
//! elsewhere the test prints "NOT RUN: …" and returns.

mod decode;
mod figures;
mod files;
mod nullsink;
mod speakers;
mod util;
