//! Bad input gives clear errors, never panics: missing or malformed files name the file, unknown
//! speakers and languages list the valid ones, and requests that make no sense say why.

use std::path::{Path, PathBuf};

use q3tts_engine::{
    CancelToken, Error, LoadOptions, Model, RefAudio, SamplingOptions, SynthesisRequest,
};

use crate::common::{model, model_dir, Fixture};
use crate::gen_fixtures::greedy;

/// A scratch copy of a tiny model directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn of(name: &str) -> Scratch {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "q3tts-engine-err-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        copy_dir(&model_dir(name), &dir);
        Scratch(dir)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn edit(&self, rel: &str, from: &str, to: &str) {
        let p = self.path(rel);
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.contains(from), "{rel} has no {from:?}");
        std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
    }
    fn load(&self) -> Result<Model, Error> {
        Model::load(&self.0, &LoadOptions::default())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn load_err(s: &Scratch) -> String {
    let e = s.load().expect_err("loading must fail");
    let msg = e.to_string();
    println!("{msg}");
    msg
}

#[test]
fn missing_files_are_named() {
    let s = Scratch::of("tiny-custom-voice");
    std::fs::remove_file(s.path("model.safetensors")).unwrap();
    let msg = load_err(&s);
    assert!(
        msg.contains("model.safetensors") && msg.contains("not found"),
        "{msg}"
    );

    let s = Scratch::of("tiny-0b6-like");
    std::fs::remove_file(s.path("model-00002-of-00002.safetensors")).unwrap();
    let msg = load_err(&s);
    assert!(
        msg.contains("model-00002-of-00002.safetensors") && msg.contains("missing"),
        "{msg}"
    );

    let s = Scratch::of("tiny-custom-voice");
    std::fs::remove_file(s.path("vocab.json")).unwrap();
    let msg = load_err(&s);
    assert!(msg.contains("vocab.json"), "{msg}");

    let s = Scratch::of("tiny-custom-voice");
    std::fs::remove_file(s.path("config.json")).unwrap();
    let msg = load_err(&s);
    assert!(msg.contains("config.json"), "{msg}");

    let s = Scratch::of("tiny-custom-voice");
    std::fs::remove_file(s.path("speech_tokenizer/model.safetensors")).unwrap();
    let msg = load_err(&s);
    assert!(msg.contains("speech_tokenizer/model.safetensors"), "{msg}");

    let e = Model::load(
        Path::new("/nonexistent/q3tts-model"),
        &LoadOptions::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(e, Error::File { .. }), "{e}");
}

#[test]
fn malformed_files_are_named() {
    let s = Scratch::of("tiny-custom-voice");
    std::fs::write(s.path("config.json"), "{ \"tts_model_type\": ").unwrap();
    let e = s.load().err().unwrap();
    assert!(
        matches!(&e, Error::Malformed { path, .. } if path.ends_with("config.json")),
        "{e}"
    );

    let s = Scratch::of("tiny-custom-voice");
    s.edit("config.json", "\"custom_voice\"", "\"karaoke\"");
    let msg = load_err(&s);
    assert!(
        msg.contains("config.json") && msg.contains("tts_model_type"),
        "{msg}"
    );

    let s = Scratch::of("tiny-custom-voice");
    s.edit("config.json", "\"codec_think_id\"", "\"codec_thinks_id\"");
    let msg = load_err(&s);
    assert!(
        msg.contains("config.json") && msg.contains("codec_think_id"),
        "{msg}"
    );

    // Config and weights disagree: a clear error naming the weights, no panic.
    let s = Scratch::of("tiny-custom-voice");
    s.edit(
        "config.json",
        "\"intermediate_size\": 128",
        "\"intermediate_size\": 96",
    );
    let msg = load_err(&s);
    assert!(
        msg.contains("model.safetensors") && msg.contains("shape"),
        "{msg}"
    );

    let s = Scratch::of("tiny-custom-voice");
    std::fs::write(s.path("model.safetensors"), b"not a safetensors file").unwrap();
    let msg = load_err(&s);
    assert!(msg.contains("model.safetensors"), "{msg}");

    let s = Scratch::of("tiny-base");
    s.edit("config.json", "\"enc_dim\": 64", "\"enc_dim\": 32");
    let msg = load_err(&s);
    assert!(
        msg.contains("config.json") && msg.contains("enc_dim"),
        "{msg}"
    );

    let s = Scratch::of("tiny-0b6-like");
    std::fs::write(s.path("model.safetensors.index.json"), "[1, 2").unwrap();
    let msg = load_err(&s);
    assert!(msg.contains("model.safetensors.index.json"), "{msg}");
}

#[test]
fn speaker_ids_may_be_one_element_lists() {
    let s = Scratch::of("tiny-custom-voice");
    s.edit("config.json", "\"ryan\": 1077", "\"ryan\": [1077]");
    let m = s.load().unwrap();
    let fx = Fixture::load("text_to_wav_custom_voice");
    let req = SynthesisRequest {
        speaker: Some("ryan".into()),
        language: "english".into(),
        sampling: greedy(12),
        ..SynthesisRequest::new("Hello, world.")
    };
    assert_eq!(
        m.generate_codes(&req, CancelToken::new()).unwrap(),
        fx.frames("codes")
    );
}

fn invalid(m: &Model, req: &SynthesisRequest) -> String {
    match m.synthesize(req, CancelToken::new()) {
        Err(Error::InvalidRequest(msg)) => {
            println!("{msg}");
            msg
        }
        Err(e) => panic!("expected InvalidRequest, got {e}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn bad_requests_say_what_is_valid() {
    let m = model("tiny-custom-voice");
    let ok = || SynthesisRequest {
        speaker: Some("ryan".into()),
        ..SynthesisRequest::new("Hi.")
    };

    let msg = invalid(
        &m,
        &SynthesisRequest {
            speaker: Some("bob".into()),
            ..ok()
        },
    );
    assert!(
        msg.contains("bob") && msg.contains("ryan") && msg.contains("vivian"),
        "{msg}"
    );
    let msg = invalid(
        &m,
        &SynthesisRequest {
            language: "klingon".into(),
            ..ok()
        },
    );
    assert!(
        msg.contains("klingon") && msg.contains("english") && msg.contains("auto"),
        "{msg}"
    );
    assert!(
        !msg.contains("dialect"),
        "dialects are not languages a caller picks: {msg}"
    );
    assert!(invalid(
        &m,
        &SynthesisRequest {
            text: "".into(),
            ..ok()
        }
    )
    .contains("empty"));
    assert!(invalid(
        &m,
        &SynthesisRequest {
            text: " \n\t ".into(),
            ..ok()
        }
    )
    .contains("empty"));
    assert!(invalid(
        &m,
        &SynthesisRequest {
            chunk_frames: 0,
            ..ok()
        }
    )
    .contains("chunk_frames"));
    let bad_t = SamplingOptions {
        temperature: Some(0.0),
        ..SamplingOptions::default()
    };
    assert!(invalid(
        &m,
        &SynthesisRequest {
            sampling: bad_t,
            ..ok()
        }
    )
    .contains("temperature"));
    let bad_p = SamplingOptions {
        top_p: Some(1.5),
        ..SamplingOptions::default()
    };
    assert!(invalid(
        &m,
        &SynthesisRequest {
            sampling: bad_p,
            ..ok()
        }
    )
    .contains("top_p"));
    let audio = RefAudio {
        samples: vec![0.0; 24000],
        sample_rate: 24000,
    };
    assert!(invalid(
        &m,
        &SynthesisRequest {
            ref_audio: Some(audio),
            ..ok()
        }
    )
    .contains("Base"));

    // Case-insensitive names; no speaker means the default one.
    let codes = |req: &SynthesisRequest| m.generate_codes(req, CancelToken::new()).unwrap();
    let g = |speaker: Option<&str>, language: &str| SynthesisRequest {
        speaker: speaker.map(Into::into),
        language: language.into(),
        sampling: greedy(4),
        ..SynthesisRequest::new("Hi.")
    };
    assert_eq!(
        codes(&g(Some("RYAN"), "English")),
        codes(&g(Some("ryan"), "english"))
    );
    assert_eq!(m.info().default_speaker.as_deref(), Some("ryan"));
    assert_eq!(
        codes(&g(None, "english")),
        codes(&g(Some("ryan"), "english"))
    );
}

#[test]
fn base_model_request_checks() {
    let m = model("tiny-base");
    assert!(m.info().speakers.is_empty());
    let wav = Fixture::load("speaker_encoder").f32s("wav");
    let ok = || SynthesisRequest {
        ref_audio: Some(RefAudio {
            samples: wav.clone(),
            sample_rate: 24000,
        }),
        ..SynthesisRequest::new("Hi.")
    };
    let msg = invalid(
        &m,
        &SynthesisRequest {
            ref_audio: None,
            ..ok()
        },
    );
    assert!(msg.contains("reference audio"), "{msg}");
    let msg = invalid(
        &m,
        &SynthesisRequest {
            ref_audio: Some(RefAudio {
                samples: wav.clone(),
                sample_rate: 16000,
            }),
            ..ok()
        },
    );
    assert!(msg.contains("24000") && msg.contains("16000"), "{msg}");
    let msg = invalid(
        &m,
        &SynthesisRequest {
            ref_audio: Some(RefAudio {
                samples: vec![],
                sample_rate: 24000,
            }),
            ..ok()
        },
    );
    assert!(msg.contains("empty"), "{msg}");
    assert!(invalid(
        &m,
        &SynthesisRequest {
            speaker: Some("ryan".into()),
            ..ok()
        }
    )
    .contains("speaker"));
    assert!(invalid(
        &m,
        &SynthesisRequest {
            instruct: Some("whisper".into()),
            ..ok()
        }
    )
    .contains("instruct"));
    // Too short for the speaker encoder: an error from it, not a panic.
    let short = SynthesisRequest {
        ref_audio: Some(RefAudio {
            samples: vec![0.1; 100],
            sample_rate: 24000,
        }),
        ..ok()
    };
    assert!(m.synthesize(&short, CancelToken::new()).is_err());
}
