//! q3tts-audio: where samples go (speakers, files, stdout) and how they are converted.
//! Knows nothing of the model or the daemon.
