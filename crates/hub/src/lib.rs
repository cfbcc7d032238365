//! q3tts-hub: turns a `--model` spec (directory or Hugging Face repo id) into a local directory.
//!
//! Repo ids resolve through the standard Hugging Face hub cache, in exactly the layout
//! huggingface_hub uses, so models downloaded by Python tools are reused without network and ours
//! are reusable by them. See [`Hub`].
//!
//! ```no_run
//! use q3tts_hub::{Hub, DEFAULT_MODEL};
//!
//! let hub = Hub::from_env(); // HF_HOME / HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE
//! match hub.resolve(DEFAULT_MODEL, true) {
//!     Ok(dir) => println!("model in {}", dir.display()),
//!     // Every error prints as one short message that says what to do next.
//!     Err(e) => eprintln!("q3tts: {e}"),
//! }
//! for m in hub.list().unwrap_or_default() {
//!     println!("{} {} {:?} {} bytes", m.repo, m.commit, m.variant, m.size_bytes);
//! }
//! ```

mod cache;
mod download;
mod error;
mod files;
mod http;
mod hub;
mod list;
mod progress;
mod settings;
mod spec;

pub use cache::{relative_blob_target, repo_folder_name};
pub use error::{Error, NoNetwork, NotCached, Result};
pub use hub::Hub;
pub use list::CachedModel;
pub use settings::{HubSettings, DEFAULT_ENDPOINT};
pub use spec::{ModelSpec, RepoRef, DEFAULT_REVISION};

/// The model a first run uses when no `--model` is given.
pub const DEFAULT_MODEL: &str = "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice";
