//! Which files of a Qwen3-TTS repository the engine needs, both as a plan made from the hub's file
//! list and as a check of a local snapshot (so a complete snapshot needs no network at all).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

/// Single-file weights.
pub const WEIGHTS: &str = "model.safetensors";
/// The index of sharded weights.
pub const WEIGHTS_INDEX: &str = "model.safetensors.index.json";

/// Files without which no Qwen3-TTS model loads.
const CORE: &[&str] = &[
    "config.json",
    "speech_tokenizer/config.json",
    "speech_tokenizer/model.safetensors",
];
/// Files the engine reads when the repository has them; a complete snapshot has each of them or
/// a `.no_exist` marker saying the repository lacks it.
const EXPECTED: &[&str] = &["generation_config.json", "tokenizer_config.json"];
/// The small files, in download order (the weights follow them).
const SMALL: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "speech_tokenizer/config.json",
    "speech_tokenizer/preprocessor_config.json",
];
/// The text tokenizer: `tokenizer.json`, or the `vocab.json` + `merges.txt` pair (or both).
const TOKENIZER_JSON: &str = "tokenizer.json";
const BPE_PAIR: [&str; 2] = ["vocab.json", "merges.txt"];

/// What to fetch for one revision, made from the hub's file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Files to have in the snapshot, in download order. Sharded weights list the index here;
    /// its shards are added once the index is read ([`shards_in_index`]).
    pub files: Vec<String>,
    /// Wanted files the repository does not have (recorded as `.no_exist` markers).
    pub absent: Vec<String>,
    /// True when the weights are sharded.
    pub sharded: bool,
}

/// Chooses the files to download from the repository's file list, or says which essential
/// files are missing (then it is not a Qwen3-TTS model).
pub fn plan(listing: &[String]) -> Result<Plan, Vec<String>> {
    let has = |f: &str| listing.iter().any(|l| l == f);
    let mut missing: Vec<String> = CORE
        .iter()
        .filter(|f| !has(f))
        .map(|f| f.to_string())
        .collect();
    let sharded = !has(WEIGHTS) && has(WEIGHTS_INDEX);
    if !has(WEIGHTS) && !sharded {
        missing.push(format!("{WEIGHTS} (nor {WEIGHTS_INDEX})"));
    }
    let bpe = BPE_PAIR.iter().all(|f| has(f));
    if !has(TOKENIZER_JSON) && !bpe {
        missing.push(format!("{TOKENIZER_JSON} (nor vocab.json + merges.txt)"));
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let (mut files, mut absent): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for f in SMALL {
        if has(f) {
            files.push(f.to_string());
        } else {
            absent.push(f.to_string());
        }
    }
    files.push(if sharded { WEIGHTS_INDEX } else { WEIGHTS }.to_string());
    files.push("speech_tokenizer/model.safetensors".to_string());
    // A repo with tokenizer.json alone is fine; do not mark the BPE pair absent then (and vice versa).
    absent.retain(|f| f != TOKENIZER_JSON && !BPE_PAIR.contains(&f.as_str()));
    Ok(Plan {
        files,
        absent,
        sharded,
    })
}

#[derive(Deserialize)]
struct Index {
    weight_map: std::collections::BTreeMap<String, String>,
}

/// The distinct shard files a `model.safetensors.index.json` names, sorted.
pub fn shards_in_index(json: &[u8]) -> Result<Vec<String>, String> {
    let index: Index =
        serde_json::from_slice(json).map_err(|e| format!("not a weights index: {e}"))?;
    let shards: BTreeSet<String> = index.weight_map.into_values().collect();
    if shards.is_empty() {
        return Err("the weights index names no shard".to_string());
    }
    Ok(shards.into_iter().collect())
}

/// Lists what a local snapshot lacks for the engine; empty means complete. `present(path)` says
/// whether `path` exists in the snapshot, `absent(path)` whether it is known not to exist in the
/// repository (a `.no_exist` marker).
pub fn missing_in_snapshot(
    snapshot: &Path,
    present: impl Fn(&str) -> bool,
    absent: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut missing: Vec<String> = CORE
        .iter()
        .filter(|f| !present(f))
        .map(|f| f.to_string())
        .collect();
    if !present(WEIGHTS) {
        if present(WEIGHTS_INDEX) {
            match std::fs::read(snapshot.join(WEIGHTS_INDEX))
                .map_err(|e| e.to_string())
                .and_then(|j| shards_in_index(&j))
            {
                Ok(shards) => missing.extend(shards.into_iter().filter(|s| !present(s))),
                Err(_) => missing.push(format!("{WEIGHTS_INDEX} (unreadable)")),
            }
        } else {
            missing.push(WEIGHTS.to_string());
        }
    }
    if !present(TOKENIZER_JSON) {
        missing.extend(
            BPE_PAIR
                .iter()
                .filter(|f| !present(f))
                .map(|f| f.to_string()),
        );
    }
    missing.extend(
        EXPECTED
            .iter()
            .filter(|f| !present(f) && !absent(f))
            .map(|f| f.to_string()),
    );
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const REAL_REPO: &[&str] = &[
        ".gitattributes",
        "README.md",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model.safetensors",
        "preprocessor_config.json",
        "speech_tokenizer/config.json",
        "speech_tokenizer/configuration.json",
        "speech_tokenizer/model.safetensors",
        "speech_tokenizer/preprocessor_config.json",
        "tokenizer_config.json",
        "vocab.json",
    ];

    #[test]
    fn plan_for_the_released_layout_takes_only_engine_files() {
        let p = plan(&names(REAL_REPO)).unwrap();
        let mut got = p.files.clone();
        got.sort();
        let mut want = names(REAL_REPO);
        want.retain(|f| {
            ![
                ".gitattributes",
                "README.md",
                "speech_tokenizer/configuration.json",
            ]
            .contains(&f.as_str())
        });
        assert_eq!(got, want);
        assert!(!p.sharded);
        assert!(p.absent.is_empty());
        // The big files come last, so small failures show before a long download.
        assert_eq!(
            p.files.last().unwrap(),
            "speech_tokenizer/model.safetensors"
        );
    }

    #[test]
    fn plan_marks_absent_optional_files_and_prefers_index_only_when_no_single_file() {
        let p = plan(&names(&[
            "config.json",
            "tokenizer.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "speech_tokenizer/config.json",
            "speech_tokenizer/model.safetensors",
        ]))
        .unwrap();
        assert!(p.sharded);
        assert!(p.files.contains(&WEIGHTS_INDEX.to_string()));
        assert!(
            !p.files.iter().any(|f| f.starts_with("model-0")),
            "shards come from the index"
        );
        let mut absent = p.absent.clone();
        absent.sort();
        assert_eq!(
            absent,
            names(&[
                "generation_config.json",
                "preprocessor_config.json",
                "speech_tokenizer/preprocessor_config.json",
                "tokenizer_config.json"
            ])
        );
    }

    #[test]
    fn plan_refuses_a_repo_without_the_essentials() {
        let missing = plan(&names(&["config.json", "README.md"])).unwrap_err();
        assert_eq!(missing.len(), 4, "{missing:?}");
        assert!(missing[0].contains("speech_tokenizer/config.json"));
        assert!(missing.iter().any(|m| m.starts_with("model.safetensors")));
        assert!(missing.iter().any(|m| m.starts_with("tokenizer.json")));
    }

    #[test]
    fn shards_are_distinct_and_sorted() {
        let j = br#"{"metadata":{},"weight_map":{"a":"m-2.safetensors","b":"m-1.safetensors","c":"m-2.safetensors"}}"#;
        assert_eq!(
            shards_in_index(j).unwrap(),
            names(&["m-1.safetensors", "m-2.safetensors"])
        );
        assert!(shards_in_index(b"{}").is_err());
        assert!(shards_in_index(br#"{"weight_map":{}}"#).is_err());
    }

    #[test]
    fn snapshot_check_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let have = |set: &'static [&'static str]| move |f: &str| set.contains(&f);
        let none = |_: &str| false;
        let full: &'static [&'static str] = &[
            "config.json",
            "generation_config.json",
            "tokenizer_config.json",
            "vocab.json",
            "merges.txt",
            "model.safetensors",
            "speech_tokenizer/config.json",
            "speech_tokenizer/model.safetensors",
        ];
        assert!(missing_in_snapshot(dir.path(), have(full), none).is_empty());
        let partial: &'static [&'static str] =
            &["config.json", "vocab.json", "tokenizer_config.json"];
        let m = missing_in_snapshot(dir.path(), have(partial), |f| f == "generation_config.json");
        assert_eq!(
            m,
            names(&[
                "speech_tokenizer/config.json",
                "speech_tokenizer/model.safetensors",
                "model.safetensors",
                "merges.txt"
            ])
        );
        let m = missing_in_snapshot(dir.path(), have(&["tokenizer.json"]), none);
        assert!(m.contains(&"generation_config.json".to_string()));
        assert!(!m.contains(&"vocab.json".to_string()));
    }
}
