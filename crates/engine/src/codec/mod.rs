//! The 12 Hz speech tokenizer (`speech_tokenizer/`): the decoder (codes → 24 kHz waveform,
//! exact streaming with carried state) and the Mimi encoder (waveform → codes, for ICL cloning).
