//! Weight bytes streamed per generated frame at batch size 1, from the config: the talker's
//! layers and codec head once, and the code predictor's layers, one `lm_head` and (1.7B) the
//! `small_to_mtp_projection` once per pass, `num_code_groups − 1` passes. Embedding lookups
//! read one row and are left out; so are norms (a few KB).

use crate::config::{ModelConfig, StackConfig};

/// Parameter counts read per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTraffic {
    /// Talker layers + codec head, read once per frame.
    pub talker_params: usize,
    /// Code-predictor layers + one lm_head + projection, read once per pass.
    pub code_predictor_params_per_pass: usize,
    /// Code-predictor passes per frame (`num_code_groups − 1`).
    pub passes: usize,
}

impl FrameTraffic {
    pub fn of(cfg: &ModelConfig) -> FrameTraffic {
        let tc = &cfg.talker_config;
        let cp = &tc.code_predictor_config;
        let ht = tc.stack.hidden_size;
        let hc = cp.hidden_size;
        let talker_params = stack_params(&tc.stack) + tc.stack.vocab_size * ht;
        let projection = if ht != hc { ht * hc + hc } else { 0 };
        FrameTraffic {
            talker_params,
            code_predictor_params_per_pass: stack_params(cp) + cp.vocab_size * hc + projection,
            passes: tc.stack.num_code_groups.saturating_sub(1),
        }
    }

    /// Parameters read per frame in all.
    pub fn params_per_frame(&self) -> usize {
        self.talker_params + self.passes * self.code_predictor_params_per_pass
    }

    /// Bytes read per frame with weights of `bytes_per_param`.
    pub fn bytes_per_frame(&self, bytes_per_param: usize) -> usize {
        self.params_per_frame() * bytes_per_param
    }
}

/// Matrix parameters of a Qwen3 decoder stack: q, k, v, o projections and the SwiGLU MLP.
fn stack_params(s: &StackConfig) -> usize {
    let h = s.hidden_size;
    let hd = s.head_dim.unwrap_or(h / s.num_attention_heads.max(1));
    let q = h * s.num_attention_heads * hd;
    let kv = 2 * h * s.num_key_value_heads * hd;
    let o = s.num_attention_heads * hd * h;
    let mlp = 3 * h * s.intermediate_size;
    s.num_hidden_layers * (q + kv + o + mlp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets::{custom_voice_config, RealSize};

    #[test]
    fn released_sizes_read_the_published_parameter_counts() {
        let t = FrameTraffic::of(&custom_voice_config(RealSize::B0_6));
        // 28 layers of 15.73 M + the 3072 × 1024 codec head.
        assert_eq!(t.talker_params, 28 * 15_728_640 + 3072 * 1024);
        assert_eq!(
            t.code_predictor_params_per_pass,
            5 * 15_728_640 + 2048 * 1024
        );
        assert_eq!(t.passes, 15);
        let big = FrameTraffic::of(&custom_voice_config(RealSize::B1_7));
        assert!(big.talker_params > 3 * t.talker_params);
        assert_eq!(
            big.code_predictor_params_per_pass,
            t.code_predictor_params_per_pass + 2048 * 1024 + 1024,
            "1.7B adds the small_to_mtp_projection"
        );
        assert_eq!(t.bytes_per_frame(2) * 2, t.bytes_per_frame(4));
    }
}
