//! Loading the model named by `--model` (a directory, or a Hugging Face repo id resolved
//! through the hub cache), shared by the daemon and the in-process path.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use candle_core::DType;
use q3tts_engine::{LoadOptions, Model, WeightFormat};

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub dtype: DType,
    pub weights: WeightFormat,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            dtype: DType::F32,
            weights: WeightFormat::Float,
        }
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
        weights: cfg.weights,
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

/// Parse `--dtype`: `f32`, `bf16`, or `int8` (8-bit linear weights, f32 for the rest).
pub fn parse_dtype(s: &str) -> anyhow::Result<LoadConfig> {
    let (dtype, weights) = match s.to_ascii_lowercase().as_str() {
        "f32" | "float32" => (DType::F32, WeightFormat::Float),
        "bf16" | "bfloat16" => (DType::BF16, WeightFormat::Float),
        "int8" | "q8" => (DType::F32, WeightFormat::Int8),
        other => anyhow::bail!("unknown --dtype {other:?}: use f32, bf16 or int8"),
    };
    Ok(LoadConfig { dtype, weights })
}
