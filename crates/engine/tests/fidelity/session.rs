//! Sessions: seeds (same seed same audio, different seeds different audio, interleaving does
//! not matter), cancellation within a frame, one model serving many sessions, `Send + Sync`.

use q3tts_engine::{CancelToken, Error, Model, SamplingOptions, Session, SynthesisRequest};

use crate::common::{assert_close, model};

fn sampled(seed: u64, chunk_frames: usize) -> SynthesisRequest {
    SynthesisRequest {
        speaker: Some("aiden".into()),
        language: "english".into(),
        sampling: SamplingOptions {
            seed: Some(seed),
            max_new_tokens: Some(7),
            ..SamplingOptions::default()
        },
        suppress_eos: true,
        chunk_frames,
        ..SynthesisRequest::new("Seeds make sampling repeatable.")
    }
}

fn run(m: &Model, req: &SynthesisRequest) -> (Vec<f32>, Vec<[u32; 16]>) {
    let mut s = m.synthesize(req, CancelToken::new()).unwrap();
    assert_eq!(s.seed(), req.sampling.seed.unwrap());
    let wav: Vec<f32> = s
        .by_ref()
        .flat_map(|c| c.unwrap().samples().to_vec())
        .collect();
    (wav, s.codes().to_vec())
}

#[test]
fn model_and_session_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Model>();
    send::<Session>();
}

#[test]
fn same_seed_same_audio_different_seed_different_audio() {
    let m = model("tiny-custom-voice");
    let (wav_a, codes_a) = run(&m, &sampled(11, 2));
    let (wav_a2, codes_a2) = run(&m, &sampled(11, 2));
    let (wav_a3, codes_a3) = run(&m, &sampled(11, 3));
    let (wav_b, codes_b) = run(&m, &sampled(12, 2));
    assert_eq!(
        codes_a.len(),
        6,
        "suppress_eos: max_new_tokens 7 gives 6 frames"
    );
    assert_eq!(wav_a.len(), 6 * 1920);
    assert_eq!(codes_a, codes_a2);
    assert!(wav_a == wav_a2, "same seed, same audio");
    assert_eq!(codes_a, codes_a3, "chunk size does not change the codes");
    assert_close("same seed, chunks of 2 vs 3", &wav_a3, &wav_a, 1e-5);
    assert_ne!(codes_a, codes_b, "different seeds sample different codes");
    let diff = wav_a
        .iter()
        .zip(&wav_b)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        diff > 1e-3,
        "different seeds give different audio (max diff {diff})"
    );
    // Greedy ignores the seed.
    let greedy = |seed| SynthesisRequest {
        sampling: SamplingOptions {
            greedy: true,
            ..sampled(seed, 2).sampling
        },
        ..sampled(seed, 2)
    };
    assert_eq!(run(&m, &greedy(1)).1, run(&m, &greedy(2)).1);
}

#[test]
fn interleaved_sessions_equal_each_run_alone() {
    let m = model("tiny-custom-voice");
    let alone_a = run(&m, &sampled(21, 1)).0;
    let alone_b = run(&m, &sampled(22, 1)).0;
    let mut a = m.synthesize(&sampled(21, 1), CancelToken::new()).unwrap();
    let mut b = m.synthesize(&sampled(22, 1), CancelToken::new()).unwrap();
    let (mut wa, mut wb) = (Vec::new(), Vec::new());
    loop {
        let ca = a.next();
        let cb = b.next();
        if ca.is_none() && cb.is_none() {
            break;
        }
        if let Some(c) = ca {
            wa.extend_from_slice(c.unwrap().samples());
        }
        if let Some(c) = cb {
            wb.extend_from_slice(c.unwrap().samples());
        }
    }
    assert!(wa == alone_a, "session a interleaved equals a alone");
    assert!(wb == alone_b, "session b interleaved equals b alone");
}

#[test]
fn random_seed_is_reported_and_reproduces() {
    let m = model("tiny-custom-voice");
    let mut req = sampled(0, 2);
    req.sampling.seed = None;
    let mut s = m.synthesize(&req, CancelToken::new()).unwrap();
    let wav: Vec<f32> = s
        .by_ref()
        .flat_map(|c| c.unwrap().samples().to_vec())
        .collect();
    req.sampling.seed = Some(s.seed());
    assert!(
        run(&m, &req).0 == wav,
        "the reported seed reproduces the audio"
    );
}

#[test]
fn cancel_stops_within_a_frame() {
    let m = model("tiny-custom-voice");
    // Cancelled before the first frame: one Err(Cancelled), then nothing.
    let cancel = CancelToken::new();
    let mut s = m.synthesize(&sampled(5, 1), cancel.clone()).unwrap();
    cancel.cancel();
    assert!(matches!(s.next(), Some(Err(Error::Cancelled))));
    assert!(s.next().is_none());
    assert_eq!(s.stats().frames, 0);

    // Cancelled after the first chunk: no further frame is generated.
    let cancel = CancelToken::new();
    let mut s = m.synthesize(&sampled(5, 1), cancel.clone()).unwrap();
    assert_eq!(s.next().unwrap().unwrap().len(), 1920);
    cancel.cancel();
    assert!(matches!(s.next(), Some(Err(Error::Cancelled))));
    assert!(s.next().is_none());
    assert_eq!(s.stats().frames, 1);
    assert_eq!(s.codes().len(), 1);

    let cancel = CancelToken::new();
    cancel.cancel();
    assert!(matches!(
        m.generate_codes(&sampled(5, 1), cancel),
        Err(Error::Cancelled)
    ));

    // The token can be reset and the model serves the next session normally.
    let cancel = CancelToken::new();
    cancel.cancel();
    cancel.reset();
    let n = m
        .synthesize(&sampled(5, 2), cancel)
        .unwrap()
        .map(|c| c.unwrap().len())
        .sum::<usize>();
    assert_eq!(n, 6 * 1920);
}

#[test]
fn sessions_in_parallel_threads_match_sequential_runs() {
    let m = model("tiny-custom-voice");
    let want: Vec<_> = [31, 32]
        .iter()
        .map(|&s| run(&m, &sampled(s, 2)).0)
        .collect();
    let got: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = [31, 32]
            .iter()
            .map(|&s| {
                let m = m.clone();
                sc.spawn(move || run(&m, &sampled(s, 2)).0)
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(got == want, "parallel sessions equal sequential ones");
}
