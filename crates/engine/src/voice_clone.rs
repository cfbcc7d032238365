//! The Base models' voice-clone inputs: the x-vector of the reference audio (speaker encoder)
//! and, for in-context cloning, its codes (codec encoder).

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::config::ModelConfig;
use crate::{Error, Result};

/// Something that turns 24 kHz mono audio into a speaker embedding `[enc_dim]` (f32).
pub trait XVectorSource: Send + Sync {
    fn embed(&self, wav_24k: &[f32]) -> Result<Tensor>;
}

/// Load the speaker encoder of a Base checkpoint from the root VarBuilder (always F32).
pub fn load_speaker_encoder(cfg: &ModelConfig, vb: &VarBuilder) -> Result<Box<dyn XVectorSource>> {
    let _ = (cfg, vb.clone().set_dtype(DType::F32));
    Err(Error::InvalidRequest("the speaker encoder is not built into this engine yet".into()))
}
