//! Fidelity tests: the engine against fixtures produced by the reference implementation
//! (`qwen-tts` 0.1.1) on tiny random-weight models in the real checkpoint layout
//! (testdata/, see testdata/gen/README.md).

mod common;
mod talker_forward;
