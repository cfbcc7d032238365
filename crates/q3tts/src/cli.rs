//! The command line (clap derive). `q3tts [OPTIONS] [TEXT]` speaks; subcommands run or talk to
//! the daemon and manage handlers and models.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "q3tts",
    version,
    about = "Qwen3-TTS text to speech: a daemon that keeps the model warm, a hot-swapped Rhai \
             handler, and this client",
    after_help = "Without a running daemon, `q3tts TEXT` loads the model and runs the handler \
                  in-process.\nStart one with `q3tts serve` (or `q3tts serve --daemon`)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub say: SayArgs,
    #[command(flatten)]
    pub common: Common,
}

/// Options every command understands.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The daemon's socket.
    #[arg(long, global = true, env = "Q3TTS_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The handler script (default ~/.config/q3tts/handlers.rhai).
    #[arg(long, global = true, env = "Q3TTS_HANDLERS", value_name = "PATH")]
    pub handlers: Option<PathBuf>,
    /// Model directory or Hugging Face repo id [default: Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice].
    #[arg(long, global = true, env = "Q3TTS_MODEL", value_name = "DIR|REPO")]
    pub model: Option<String>,
    /// Talker and code-predictor precision: f32, bf16, or int8 (8-bit weights, f32
    /// activations; about 4x less memory traffic than f32). The codec stays f32.
    #[arg(
        long,
        global = true,
        value_name = "f32|bf16|int8",
        default_value = "f32"
    )]
    pub dtype: String,
    /// CPU threads for the model (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
}

/// What to say and how (sent to the daemon, or run in-process).
#[derive(Args, Debug, Clone, Default)]
pub struct SayArgs {
    /// The text to speak (read from stdin when absent).
    pub text: Option<String>,
    /// Write audio to FILE (format from the extension or --format); `-` streams to stdout.
    /// Without it, the speakers play it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<String>,
    /// Language: `auto` or one the model knows (e.g. english, chinese).
    #[arg(short, long, default_value = "auto")]
    pub language: String,
    /// Instruction: the voice description (VoiceDesign) or a style (1.7B CustomVoice).
    #[arg(short, long)]
    pub instruct: Option<String>,
    /// CustomVoice speaker (default: the model's own, `ryan` when the checkpoint has him).
    #[arg(short, long)]
    pub speaker: Option<String>,
    /// Reference audio to clone (Base models): WAV, FLAC, MP3 or OGG at any rate.
    #[arg(long, value_name = "FILE")]
    pub ref_audio: Option<PathBuf>,
    /// Transcript of the reference audio (in-context cloning; without it, x-vector only).
    #[arg(long, value_name = "TEXT")]
    pub ref_text: Option<String>,
    /// Random seed, 0..=2^63-1 (the reply reports the seed used).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    pub seed: Option<u64>,
    /// Sampling temperature (default: the checkpoint's generation_config.json).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Keep the K most likely tokens when sampling.
    #[arg(long)]
    pub top_k: Option<u64>,
    /// Nucleus sampling: keep tokens up to this cumulative probability.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Penalty for repeating codec tokens (1.0 = none).
    #[arg(long)]
    pub repetition_penalty: Option<f64>,
    /// No sampling (talker and code predictor); repetition penalty still applies.
    #[arg(long)]
    pub greedy: bool,
    /// Most codec frames to generate (12.5 per second of audio).
    #[arg(long, value_name = "N")]
    pub max_new_tokens: Option<u64>,
    /// Output format: wav, flac, mp3, opus, pcm (default: from the file name; wav for `-`).
    #[arg(long)]
    pub format: Option<String>,
    /// Extra handler option KEY=VALUE (repeatable; VALUE parsed as JSON if it can be).
    #[arg(short = 'x', value_name = "KEY=VALUE")]
    pub extra: Vec<String>,
    /// Queue the request and return at once (daemon only).
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: load the model once, listen on the socket, serve requests.
    Serve(ServeArgs),
    /// Show what the daemon serves and what it is doing.
    Status,
    /// Shut the daemon down.
    Stop,
    /// Interrupt the utterance in progress (with --all, also drop the queued ones).
    Cancel {
        #[arg(long)]
        all: bool,
    },
    /// Write the default handler to DIR/handlers.rhai (default ~/.config/q3tts).
    Init {
        dir: Option<PathBuf>,
        /// Overwrite an existing handler.
        #[arg(long)]
        force: bool,
    },
    /// Compile the handler and its imports and report errors (path:line:col).
    Check,
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Download a model into the Hugging Face cache (default: the default model).
    Pull { repo: Option<String> },
    /// List the models in the Hugging Face cache.
    Models,
    /// Measure the handler's reload overhead, save-to-first-audio and the status round trip.
    #[command(name = "bench-reload")]
    BenchReload(crate::bench_reload::BenchArgs),
    /// Drive a running daemon with a varied corpus and write a JSON report.
    Stress(crate::stress::StressArgs),
    /// Engine figures: prefill, per-frame stage times, frames/s, RTF, time to first audio,
    /// peak RSS, weight bytes per frame and the read-bandwidth ceiling.
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Detach and log to $XDG_STATE_HOME/q3tts/daemon.log (or --log).
    #[arg(long)]
    pub daemon: bool,
    /// Log file for --daemon.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// How many requests may wait behind the one in progress.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub queue: usize,
    /// Speaker backend: auto, pulse, alsa, subprocess, coreaudio.
    #[arg(long, value_name = "NAME", default_value = "auto")]
    pub audio_backend: String,
    /// Script time limit per request in seconds (time inside synthesis does not count).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub script_time_limit: f64,
    /// Stop a request that makes no new audio for this many seconds (a stuck output or
    /// handler); a long synthesis that keeps making audio is never stopped.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub progress_timeout: f64,
}

impl Common {
    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| home().join(".q3tts.sock"))
    }
    pub fn handler_path(&self) -> PathBuf {
        self.handlers
            .clone()
            .unwrap_or_else(|| config_dir().join("handlers.rhai"))
    }
}

pub fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map_or_else(|| "/tmp".into(), PathBuf::from)
}

/// `$XDG_CONFIG_HOME/q3tts` or `~/.config/q3tts`.
pub fn config_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".config"))
        .join("q3tts")
}
