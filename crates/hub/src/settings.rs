//! Where the cache is, which endpoint to talk to, the token and offline mode: read from the same
//! environment variables huggingface_hub reads, with the same precedence.

use std::path::PathBuf;

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Everything a [`crate::Hub`] needs to know about its surroundings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The hub cache directory (the one that holds `models--org--name/`).
    pub cache_dir: PathBuf,
    /// Base URL of the hub, without a trailing slash.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer <token>` to the endpoint.
    pub token: Option<String>,
    /// Never use the network.
    pub offline: bool,
}

impl HubSettings {
    /// Reads the process environment (see [`HubSettings::from_vars`]).
    pub fn from_env() -> HubSettings {
        HubSettings::from_vars(|k| std::env::var(k).ok())
    }

    /// Builds settings from a variable lookup, as huggingface_hub does:
    /// - cache: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else
    ///   `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`;
    /// - endpoint: `HF_ENDPOINT`, else <https://huggingface.co>;
    /// - token: `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`, else the file `HF_TOKEN_PATH`
    ///   (default `$HF_HOME/token`);
    /// - offline: `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) is 1/ON/YES/TRUE.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> HubSettings {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let home = get("HOME")
            .or_else(|| get("USERPROFILE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let expand = |v: String| -> PathBuf {
            match v.strip_prefix("~/") {
                Some(rest) => home.join(rest),
                None if v == "~" => home.clone(),
                None => PathBuf::from(v),
            }
        };
        let hf_home = get("HF_HOME").map(expand).unwrap_or_else(|| {
            get("XDG_CACHE_HOME")
                .map(expand)
                .unwrap_or_else(|| home.join(".cache"))
                .join("huggingface")
        });
        let cache_dir = get("HF_HUB_CACHE")
            .or_else(|| get("HUGGINGFACE_HUB_CACHE"))
            .map(expand)
            .unwrap_or_else(|| hf_home.join("hub"));
        let endpoint = get("HF_ENDPOINT")
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let token = get("HF_TOKEN")
            .or_else(|| get("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = get("HF_TOKEN_PATH")
                    .map(expand)
                    .unwrap_or_else(|| hf_home.join("token"));
                std::fs::read_to_string(path).ok()
            })
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let offline = ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"]
            .iter()
            .any(|k| get(k).is_some_and(|v| is_true(&v)));
        HubSettings {
            cache_dir,
            endpoint,
            token,
            offline,
        }
    }
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> HubSettings {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubSettings::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_home() {
        let s = settings(&[("HOME", "/home/u")]);
        assert_eq!(s.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(s.endpoint, "https://huggingface.co");
        assert_eq!(s.token, None);
        assert!(!s.offline);
        let s = settings(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")]);
        assert_eq!(s.cache_dir, PathBuf::from("/xdg/huggingface/hub"));
    }

    #[test]
    fn precedence_matches_huggingface_hub() {
        let s = settings(&[("HOME", "/h"), ("HF_HOME", "/hf")]);
        assert_eq!(s.cache_dir, PathBuf::from("/hf/hub"));
        let s = settings(&[
            ("HOME", "/h"),
            ("HF_HOME", "/hf"),
            ("HUGGINGFACE_HUB_CACHE", "/old"),
        ]);
        assert_eq!(s.cache_dir, PathBuf::from("/old"));
        let s = settings(&[
            ("HOME", "/h"),
            ("HF_HOME", "/hf"),
            ("HUGGINGFACE_HUB_CACHE", "/old"),
            ("HF_HUB_CACHE", "~/c"),
        ]);
        assert_eq!(s.cache_dir, PathBuf::from("/h/c"));
    }

    #[test]
    fn endpoint_token_offline() {
        let s = settings(&[
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_TOKEN", " hf_abc \n"),
            ("HF_HUB_OFFLINE", "1"),
        ]);
        assert_eq!(s.endpoint, "http://127.0.0.1:9");
        assert_eq!(s.token.as_deref(), Some("hf_abc"));
        assert!(s.offline);
        for (v, want) in [
            ("yes", true),
            ("TRUE", true),
            ("on", true),
            ("0", false),
            ("no", false),
        ] {
            assert_eq!(settings(&[("HF_HUB_OFFLINE", v)]).offline, want, "{v}");
        }
        assert!(settings(&[("TRANSFORMERS_OFFLINE", "1")]).offline);
    }

    #[test]
    fn token_file_under_hf_home() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_from_file\n").unwrap();
        let s = settings(&[("HF_HOME", dir.path().to_str().unwrap())]);
        assert_eq!(s.token.as_deref(), Some("hf_from_file"));
        let s = settings(&[
            ("HF_HOME", dir.path().to_str().unwrap()),
            ("HF_TOKEN", "env"),
        ]);
        assert_eq!(s.token.as_deref(), Some("env"));
    }
}
