//! q3tts-hub: turns a `--model` spec (directory or Hugging Face repo id) into a local directory.
