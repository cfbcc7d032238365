//! Weight files: finds `model.safetensors` or the shards named by `model.safetensors.index.json`,
//! checks that each one opens, and hands out memory-mapped [`VarBuilder`]s that convert bf16/f32
//! tensors to the requested dtype on load. Once a tensor is copied out, its pages of the mapping
//! are released (`madvise(MADV_DONTNEED)` on Unix), so loading never holds the whole file and
//! the whole model in memory at once: peak RSS stays near the model's own size.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
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
        let st = unsafe { MmapedSafetensors::multi(&self.files) }
            .map_err(|e| self.malformed(without_backtrace(e)))?;
        Ok(VarBuilder::from_backend(
            Box::new(Releasing(st)),
            dtype,
            device.clone(),
        ))
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

/// Memory-mapped safetensors that give back a tensor's pages of the mapping once it has been
/// copied out (see the module doc).
struct Releasing(MmapedSafetensors);

impl Releasing {
    /// Drop the whole pages inside `name`'s bytes from this process's mapping (the file is
    /// unchanged; a second read faults them in again from it).
    fn release(&self, name: &str) {
        #[cfg(unix)]
        if let Ok(view) = self.0.get(name) {
            let data = view.data();
            let page = page_size();
            let start = (data.as_ptr() as usize).div_ceil(page) * page;
            let end = (data.as_ptr() as usize + data.len()) / page * page;
            if end > start {
                // SAFETY: [start, end) lies inside the read-only mapping that `data` points
                // into; MADV_DONTNEED on a private file mapping only drops our copies of its
                // pages, and nothing refers to them: the tensor was copied out.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
                }
            }
        }
    }
}

#[cfg(unix)]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

impl SimpleBackend for Releasing {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = SimpleBackend::get(&self.0, s, name, h, dtype, dev)?;
        self.release(name);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = SimpleBackend::get_unchecked(&self.0, name, dtype, dev)?;
        self.release(name);
        Ok(t)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        SimpleBackend::contains_tensor(&self.0, name)
    }
}

/// A candle error's message without the backtrace candle attaches when RUST_BACKTRACE is set.
pub fn without_backtrace(mut e: candle_core::Error) -> String {
    while let candle_core::Error::WithBacktrace { inner, .. } = e {
        e = *inner;
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_pages_read_back_the_same_tensor() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/tiny-custom-voice");
        let files = WeightFiles::find(&dir).unwrap();
        let vb = files.var_builder(DType::F32, &Device::Cpu).unwrap();
        // 1088 × 64 f32 = 272 KB: many whole pages, released after the first read.
        let read = || {
            vb.get((1088, 64), "talker.codec_head.weight")
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let first = read();
        assert!(first.iter().any(|v| *v != 0.0));
        assert_eq!(
            first,
            read(),
            "a second read after the release sees the file again"
        );
        let err = vb.get((3, 3), "talker.codec_head.weight").unwrap_err();
        assert!(err.to_string().contains("shape"), "{err}");
    }
}
