//! Loading the model named by `--model` (a directory, or a Hugging Face repo id resolved
//! through the hub cache), shared by the daemon and the in-process path.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use candle_core::DType;
use q3tts_engine::{LoadOptions, Model};

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub dtype: DType,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig { dtype: DType::F32 }
    }
}

pub struct Loaded {
    pub model: Model,
    pub seconds: f64,
}

/// The model spec to use: `--model`, else `$Q3TTS_MODEL` (clap fills that in), else the default.
pub fn spec_or_default(spec: Option<&str>) -> String {
    spec.map_or_else(|| q3tts_hub::DEFAULT_MODEL.to_string(), str::to_string)
}

/// A spec as the client sends it: an existing directory becomes absolute; a repo id stays.
pub fn normalize_spec(spec: &str) -> String {
    let p = std::path::Path::new(spec);
    if p.exists() {
        if let Ok(abs) = std::fs::canonicalize(p) {
            return abs.display().to_string();
        }
    }
    spec.to_string()
}

/// Resolve and load.
pub fn load(spec: &str, cfg: &LoadConfig) -> anyhow::Result<Loaded> {
    let start = Instant::now();
    let dir = resolve(spec)?;
    let opts = LoadOptions {
        dtype: cfg.dtype,
        ..LoadOptions::default()
    };
    let model = Model::load(&dir, &opts)
        .with_context(|| format!("cannot load the model in {}", dir.display()))?;
    Ok(Loaded {
        model,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A directory as is; a repo id through the hub cache (downloading what is missing).
pub fn resolve(spec: &str) -> anyhow::Result<PathBuf> {
    let p = std::path::Path::new(spec);
    if p.is_dir() {
        return Ok(std::fs::canonicalize(p)?);
    }
    let hub = q3tts_hub::Hub::from_env();
    hub.resolve(spec, std::io::stderr().is_terminal())
        .with_context(|| format!("cannot find the model {spec:?}"))
}

/// Parse `--dtype`.
pub fn parse_dtype(s: &str) -> anyhow::Result<DType> {
    match s.to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        other => anyhow::bail!("unknown --dtype {other:?}: use f32 or bf16"),
    }
}
