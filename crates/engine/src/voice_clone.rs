//! The Base models' voice-clone front: loads the speaker encoder (x-vector of the reference
//! audio) from `speaker_encoder_config` and the `speaker_encoder.*` weights, always in f32, and
//! checks that its output width matches the talker.

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::config::ModelConfig;
use crate::speaker::{SpeakerEncoder, SpeakerEncoderConfig};
use crate::Result;

/// Something that turns 24 kHz mono audio into a speaker embedding `[enc_dim]` (f32).
pub trait XVectorSource: Send + Sync {
    fn embed(&self, wav_24k: &[f32]) -> Result<Tensor>;
}

impl XVectorSource for SpeakerEncoder {
    fn embed(&self, wav_24k: &[f32]) -> Result<Tensor> {
        SpeakerEncoder::embed(self, wav_24k)
    }
}

/// Load the speaker encoder of a Base checkpoint from the root VarBuilder (always F32).
/// `Err(reason)` for a config problem (the caller names config.json), `Ok(Err(e))` for weights.
pub fn load_speaker_encoder(
    cfg: &ModelConfig,
    vb: &VarBuilder,
) -> std::result::Result<Result<Box<dyn XVectorSource>>, String> {
    let raw = cfg.speaker_encoder_config.clone().ok_or_else(|| {
        "tts_model_type is base but speaker_encoder_config is missing".to_string()
    })?;
    let sc: SpeakerEncoderConfig =
        serde_json::from_value(raw).map_err(|e| format!("speaker_encoder_config: {e}"))?;
    sc.validate()?;
    let hidden = cfg.talker_config.stack.hidden_size;
    if sc.enc_dim != hidden {
        return Err(format!(
            "speaker_encoder_config.enc_dim {} must equal talker_config.hidden_size {hidden}",
            sc.enc_dim
        ));
    }
    Ok(
        SpeakerEncoder::load(vb.clone().set_dtype(DType::F32).pp("speaker_encoder"), &sc)
            .map(|e| Box::new(e) as Box<dyn XVectorSource>),
    )
}
