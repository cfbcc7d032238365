//! Shared helpers: fixture paths and loading, model cache, tolerant comparison.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use q3tts_engine::{LoadOptions, Model};

pub const TOL: f32 = 1e-4;

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

pub fn model_dir(name: &str) -> PathBuf {
    testdata().join(name)
}

/// A model loaded once per test process (f32).
pub fn model(name: &'static str) -> Model {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<&'static str, Model>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut m = cache.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(name)
        .or_insert_with(|| {
            Model::load(&model_dir(name), &LoadOptions::default()).expect("load tiny model")
        })
        .clone()
}

pub struct Fixture {
    pub tensors: HashMap<String, Tensor>,
    pub meta: serde_json::Value,
}

impl Fixture {
    pub fn load(name: &str) -> Fixture {
        let path = testdata()
            .join("fixtures")
            .join(format!("{name}.safetensors"));
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu).expect("fixture");
        let bytes = std::fs::read(&path).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let meta = header["__metadata__"]["json"]
            .as_str()
            .map(|s| serde_json::from_str(s).unwrap())
            .unwrap_or(serde_json::Value::Null);
        Fixture { tensors, meta }
    }

    pub fn t(&self, key: &str) -> &Tensor {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("fixture has no {key}"))
    }

    /// A tensor flattened to f32.
    pub fn f32s(&self, key: &str) -> Vec<f32> {
        flat(self.t(key))
    }

    /// An integer tensor flattened to u32.
    pub fn ids(&self, key: &str) -> Vec<u32> {
        self.t(key)
            .flatten_all()
            .unwrap()
            .to_vec1::<i64>()
            .unwrap()
            .into_iter()
            .map(|x| x as u32)
            .collect()
    }

    /// `[frames, 16]` codes.
    pub fn frames(&self, key: &str) -> Vec<[u32; 16]> {
        let v = self.ids(key);
        assert_eq!(v.len() % 16, 0);
        v.chunks(16).map(|c| c.try_into().unwrap()).collect()
    }
}

pub fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Max abs difference over finite entries; -inf positions must agree exactly. Panics above `tol`.
pub fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: length {} vs {}",
        got.len(),
        want.len()
    );
    let mut err = 0f32;
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            a.is_infinite(),
            b.is_infinite(),
            "{name}: -inf mask differs at {i} ({a} vs {b})"
        );
        if a.is_infinite() {
            assert_eq!(a.signum(), b.signum(), "{name}: inf sign differs at {i}");
            continue;
        }
        assert!(a.is_finite(), "{name}: non-finite value at {i}");
        err = err.max((a - b).abs());
    }
    println!("{name}: max abs err {err:.3e}");
    assert!(err <= tol, "{name}: max abs err {err} > {tol}");
    err
}
