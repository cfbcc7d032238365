//! Weight files: finds `model.safetensors` or the shards named by `model.safetensors.index.json`,
//! checks that each one opens, and hands out memory-mapped [`VarBuilder`]s that convert bf16/f32
//! tensors to the requested dtype on load.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Deserialize;

use crate::config::read_json;
use crate::{Error, Result};

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// The safetensors files that hold one checkpoint's weights.
#[derive(Clone, Debug)]
pub struct WeightFiles {
    pub files: Vec<PathBuf>,
}

impl WeightFiles {
    /// `dir/model.safetensors`, or every shard listed in `dir/model.safetensors.index.json`.
    pub fn find(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        if index.exists() {
            let idx: ShardIndex = read_json(&index)?;
            let shards: BTreeSet<&String> = idx.weight_map.values().collect();
            if shards.is_empty() {
                return Err(Error::Malformed {
                    path: index,
                    reason: "weight_map is empty".into(),
                });
            }
            let mut files = Vec::new();
            for s in shards {
                let p = dir.join(s);
                if !p.is_file() {
                    return Err(Error::File {
                        path: p,
                        reason: "shard listed in model.safetensors.index.json is missing; re-download the model".into(),
                    });
                }
                files.push(p);
            }
            return Self::checked(files);
        }
        let single = dir.join("model.safetensors");
        if !single.is_file() {
            return Err(Error::File {
                path: single,
                reason: "not found (and no model.safetensors.index.json); is this a Qwen3-TTS model directory?".into(),
            });
        }
        Self::checked(vec![single])
    }

    /// A single safetensors file (e.g. `speech_tokenizer/model.safetensors`).
    pub fn single(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::File {
                path: path.into(),
                reason: "not found".into(),
            });
        }
        Self::checked(vec![path.into()])
    }

    fn checked(files: Vec<PathBuf>) -> Result<Self> {
        for f in &files {
            // SAFETY: the file is mapped read-only; we do not modify it while mapped.
            unsafe { candle_core::safetensors::MmapedSafetensors::new(f) }.map_err(|e| {
                Error::Malformed {
                    path: f.clone(),
                    reason: format!("not a readable safetensors file: {}", without_backtrace(e)),
                }
            })?;
        }
        Ok(Self { files })
    }

    /// A VarBuilder over all files, converting every tensor to `dtype` on `device`.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        // SAFETY: as above, read-only mapping of files we do not modify.
        unsafe { VarBuilder::from_mmaped_safetensors(&self.files, dtype, device) }
            .map_err(|e| self.malformed(without_backtrace(e)))
    }

    /// The stored dtype of a tensor, if some file has it.
    pub fn stored_dtype(&self, name: &str) -> Option<DType> {
        self.files.iter().find_map(|f| {
            // SAFETY: read-only mapping, as above.
            let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(f) }.ok()?;
            let view = st.get(name).ok()?;
            DType::try_from(view.dtype()).ok()
        })
    }

    /// Wrap an error that came from reading these weights (missing tensor, wrong shape).
    pub fn malformed(&self, e: impl std::fmt::Display) -> Error {
        let path = if self.files.len() == 1 {
            self.files[0].clone()
        } else {
            self.files[0]
                .parent()
                .map(|p| p.join("model-*.safetensors"))
                .unwrap_or_default()
        };
        Error::Malformed {
            path,
            reason: format!("{e}"),
        }
    }
}

/// A candle error's message without the backtrace candle attaches when RUST_BACKTRACE is set.
pub fn without_backtrace(mut e: candle_core::Error) -> String {
    while let candle_core::Error::WithBacktrace { inner, .. } = e {
        e = *inner;
    }
    e.to_string()
}
