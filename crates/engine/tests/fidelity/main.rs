//! Fidelity tests: the engine against the reference implementation's fixtures
//! (`testdata/fixtures/*.safetensors`, made by `testdata/gen/make_golden.py` from qwen-tts 0.1.1).

mod codec;
mod codec_util;
