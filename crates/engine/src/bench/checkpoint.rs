//! Writes a random-weight CustomVoice model of a released size to a directory in the Hugging
//! Face layout (`config.json`, `generation_config.json`, `model.safetensors` in bf16 like the
//! published checkpoints, tokenizer files, `speech_tokenizer/`), with the same seeded weights
//! as [`presets::random_custom_voice`](crate::presets::random_custom_voice). Benchmarks load
//! it with `--model DIR`, and other implementations can run on the very same weights.
//!
//! The weights are recorded as the model asks for them: a `VarBuilder` backend wraps the
//! random one and keeps every tensor it hands out, so exactly the tensors the engine reads are
//! written, under the names it reads them by.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

use crate::codec::random::random_var_builder;
use crate::codec::Codec;
use crate::presets::{self, RealSize};
use crate::{Error, Model, ModelParts, Result};

type Recorded = Arc<Mutex<HashMap<String, Tensor>>>;

/// Serves tensors from `inner` and remembers each one by name.
struct Recorder {
    inner: VarBuilder<'static>,
    seen: Recorded,
}

impl SimpleBackend for Recorder {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.inner.get_with_hints_dtype(s, name, h, dtype)?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(name.to_string(), t.clone());
        }
        Ok(t)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("random weights need a shape, none was given for {name}")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

fn recording(seed: u64, dtype: DType) -> (VarBuilder<'static>, Recorded) {
    let seen: Recorded = Arc::default();
    let backend = Recorder {
        inner: random_var_builder(seed, &Device::Cpu),
        seen: seen.clone(),
    };
    let vb = VarBuilder::from_backend(Box::new(backend), dtype, Device::Cpu);
    (vb, seen)
}

/// Write the random-weight model of `size` (weights seeded by `seed`) into `dir` (created if
/// missing; existing files of the same names are replaced).
pub fn write_random_custom_voice(dir: &Path, size: RealSize, seed: u64) -> Result<()> {
    let st_dir = dir.join("speech_tokenizer");
    std::fs::create_dir_all(&st_dir).map_err(|e| io_error(&st_dir, e))?;

    // The same seeds as presets::random_custom_voice; bf16 like the published checkpoints.
    let (vb, talker_seen) = recording(seed, DType::BF16);
    let (codec_vb, codec_seen) = recording(seed ^ 0x5eed, DType::F32);
    let codec = Codec::new(codec_vb, &presets::speech_tokenizer_config())?;
    let model = Model::from_parts(ModelParts {
        path: dir.into(),
        config: presets::custom_voice_config(size),
        generation: presets::generation_config(),
        tokenizer: presets::synthetic_tokenizer(),
        weights: vb,
        dtype: DType::BF16,
        text_embedding_dtype: None,
        weights_format: Default::default(),
        codec,
    })?;
    drop(model);
    save(&talker_seen, &dir.join("model.safetensors"))?;
    save(&codec_seen, &st_dir.join("model.safetensors"))?;

    write_json(&dir.join("config.json"), &model_config(size)?)?;
    write_json(&dir.join("generation_config.json"), &generation_config())?;
    write_json(&st_dir.join("config.json"), &speech_tokenizer_config()?)?;
    write_json(
        &st_dir.join("preprocessor_config.json"),
        &preprocessor_config(),
    )?;
    write_tokenizer(dir)
}

fn save(seen: &Recorded, path: &Path) -> Result<()> {
    let map = std::mem::take(
        &mut *seen
            .lock()
            .map_err(|_| Error::InvalidRequest("weight recorder poisoned".into()))?,
    );
    candle_core::safetensors::save(&map, path).map_err(|e| Error::File {
        path: path.into(),
        reason: format!("cannot write weights: {e}"),
    })
}

/// The preset config plus the keys Transformers needs to pick the reference's classes.
fn model_config(size: RealSize) -> Result<serde_json::Value> {
    let mut v: serde_json::Value =
        serde_json::from_str(&presets::custom_voice_config_json(size)).map_err(json_error)?;
    v["architectures"] = serde_json::json!(["Qwen3TTSForConditionalGeneration"]);
    v["model_type"] = "qwen3_tts".into();
    v["tokenizer_type"] = "qwen3_tts_tokenizer_12hz".into();
    v["talker_config"]["model_type"] = "qwen3_tts_talker".into();
    v["talker_config"]["max_position_embeddings"] = 32768.into();
    v["talker_config"]["rope_scaling"] = serde_json::json!({"interleaved": true, "mrope_section": [24, 20, 20], "rope_type": "default", "type": "default"});
    v["talker_config"]["position_id_per_seconds"] = 13.into();
    v["talker_config"]["code_predictor_config"]["model_type"] =
        "qwen3_tts_talker_code_predictor".into();
    v["talker_config"]["code_predictor_config"]["max_position_embeddings"] = 65536.into();
    Ok(v)
}

fn generation_config() -> serde_json::Value {
    let g = presets::generation_config();
    serde_json::json!({
        "do_sample": g.do_sample, "top_k": g.top_k, "top_p": g.top_p,
        "temperature": g.temperature, "repetition_penalty": g.repetition_penalty,
        "subtalker_dosample": g.subtalker_dosample, "subtalker_top_k": g.subtalker_top_k,
        "subtalker_top_p": g.subtalker_top_p, "subtalker_temperature": g.subtalker_temperature,
        "max_new_tokens": g.max_new_tokens,
    })
}

fn speech_tokenizer_config() -> Result<serde_json::Value> {
    let mut v: serde_json::Value =
        serde_json::from_str(presets::SPEECH_TOKENIZER_CONFIG_JSON).map_err(json_error)?;
    v["architectures"] = serde_json::json!(["Qwen3TTSTokenizerV2Model"]);
    v["model_type"] = "qwen3_tts_tokenizer_12hz".into();
    Ok(v)
}

fn preprocessor_config() -> serde_json::Value {
    serde_json::json!({
        "feature_extractor_type": "EncodecFeatureExtractor", "feature_size": 1,
        "padding_side": "right", "padding_value": 0.0, "return_attention_mask": true,
        "sampling_rate": 24000, "chunk_length_s": null, "overlap": null,
    })
}

/// The vocab/merges/tokenizer_config trio (read by the engine and by the reference's Qwen2
/// tokenizer): byte-level, no merges, the real special ids. No `tokenizer.json`: the preset's
/// ids have holes (256‥872‥77091‥151643), which its serialiser warns about at length.
fn write_tokenizer(dir: &Path) -> Result<()> {
    let tok = presets::synthetic_tokenizer();
    let inner = tok.inner();
    let mut vocab: Vec<(String, u32)> = inner.get_vocab(false).into_iter().collect();
    vocab.sort_by_key(|(_, id)| *id);
    let base: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .filter(|(_, id)| *id < 256)
        .map(|(s, id)| (s.clone(), (*id).into()))
        .collect();
    write_json(&dir.join("vocab.json"), &serde_json::Value::Object(base))?;
    let merges = dir.join("merges.txt");
    std::fs::write(&merges, "#version: 0.2\n").map_err(|e| io_error(&merges, e))?;
    let added: serde_json::Map<String, serde_json::Value> = inner
        .get_added_tokens_decoder()
        .into_iter()
        .map(|(id, t)| {
            (
                id.to_string(),
                serde_json::json!({
                    "content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                    "rstrip": t.rstrip, "single_word": t.single_word, "special": t.special,
                }),
            )
        })
        .collect();
    write_json(
        &dir.join("tokenizer_config.json"),
        &serde_json::json!({
            "add_bos_token": false, "add_prefix_space": false, "added_tokens_decoder": added,
            "bos_token": null, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
            "unk_token": null, "errors": "replace", "clean_up_tokenization_spaces": false,
            "model_max_length": 131072, "split_special_tokens": false,
            "tokenizer_class": "Qwen2Tokenizer",
        }),
    )
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(json_error)?;
    std::fs::write(path, text).map_err(|e| io_error(path, e))
}

fn json_error(e: serde_json::Error) -> Error {
    Error::InvalidRequest(format!("preset JSON: {e}"))
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::File {
        path: PathBuf::from(path),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_files_give_the_preset_ids() {
        let dir = std::env::temp_dir().join(format!("q3tts-ckpt-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_tokenizer(&dir).unwrap();
        let preset = presets::synthetic_tokenizer();
        let from_trio = crate::text_tokenizer::TextTokenizer::from_vocab_merges(&dir).unwrap();
        assert!(!dir.join("tokenizer.json").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        let text = crate::plan::assistant_prompt("Hello, wörld.");
        assert_eq!(
            preset.encode(&text).unwrap(),
            from_trio.encode(&text).unwrap()
        );
        assert_eq!(from_trio.encode(&text).unwrap()[..3], [151644, 77091, 198]);
    }
}
