//! Integration tests: the real `q3tts` binary against a real daemon on a temporary socket, with
//! the tiny test model (testdata/tiny-custom-voice).

mod common;

mod api;
mod bench;
mod cli;
mod control;
mod errors;
mod faults;
mod frames;
mod hub;
mod instance;
mod prop_protocol;
mod reload;
mod say;
mod stress;
