//! Shared helpers for the codec and speaker fidelity tests: fixture paths and loading (tensors
//! plus the JSON metadata under the safetensors header key "json"), code conversion, and
//! max-abs-error comparison that prints what it measured.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use q3tts_engine::codec::{Codec, NUM_QUANTIZERS};

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

pub fn fixture(name: &str) -> HashMap<String, Tensor> {
    let path = testdata()
        .join("fixtures")
        .join(format!("{name}.safetensors"));
    candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn fixture_meta(name: &str) -> serde_json::Value {
    let path = testdata()
        .join("fixtures")
        .join(format!("{name}.safetensors"));
    let bytes = std::fs::read(&path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("json"))
        .expect("fixture metadata 'json'");
    serde_json::from_str(json).unwrap()
}

pub fn load_codec(model: &str) -> Codec {
    Codec::load(
        &testdata().join(model).join("speech_tokenizer"),
        &Device::Cpu,
    )
    .unwrap()
}

/// `[1, 16, T]` (decoder layout) or `[T, 16]` i64 codes → frames.
pub fn frames(codes: &Tensor) -> Vec<[u32; NUM_QUANTIZERS]> {
    let c = if codes.rank() == 3 {
        codes.squeeze(0).unwrap().t().unwrap()
    } else {
        codes.clone()
    };
    let rows = c.to_dtype(DType::I64).unwrap().to_vec2::<i64>().unwrap();
    rows.iter()
        .map(|r| std::array::from_fn(|g| u32::try_from(r[g]).unwrap()))
        .collect()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let a = a
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = b
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    max_abs_diff_slices(&a, &b)
}

pub fn max_abs_diff_slices(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts `got` matches `want` within `tol` and prints the measured error.
pub fn assert_close(name: &str, got: &Tensor, want: &Tensor, tol: f32) -> f32 {
    let err = max_abs_diff(got, want);
    println!("{name}: max abs err {err:.3e}");
    assert!(err <= tol, "{name}: max abs err {err:e} > {tol:e}");
    err
}

pub fn to_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "q3tts-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
