//! Fidelity tests: the engine against fixtures produced by the reference implementation
//! (`qwen-tts` 0.1.1, via `testdata/gen/make_golden.py`) on tiny random-weight models in the real
//! checkpoint layout (`testdata/`).

mod bf16;
mod codec;
mod codec_util;
mod common;
mod errors;
mod gen_fixtures;
mod int8;
mod requests;
mod sampling;
mod session;
mod speaker;
mod talker_forward;
mod text_to_wav;
mod tokenizer;
mod voice_clone;
