//! The speaker encoder's log-mel front end, as the reference computes it: reflect-pad 384
//! samples each side, STFT (n_fft 1024, hop 256, periodic Hann window, no centring), magnitude
//! `sqrt(re² + im² + 1e-9)`, a Slaney-style mel filterbank (128 bins, 0–12 kHz, area-normalised,
//! built here the way librosa builds it), then `ln(max(x, 1e-5))`.
//!
//! The transform runs in f64 (our own radix-2 FFT) and returns f32.

use std::f64::consts::PI;

use candle_core::{Device, Tensor};

use crate::{Error, Result};

pub const SAMPLE_RATE: usize = 24_000;
pub const N_FFT: usize = 1024;
pub const HOP: usize = 256;
pub const N_MELS: usize = 128;
pub const F_MIN: f64 = 0.0;
pub const F_MAX: f64 = 12_000.0;
const PAD: usize = (N_FFT - HOP) / 2;
const MAG_EPS: f64 = 1e-9;
const LOG_FLOOR: f64 = 1e-5;

/// Number of mel frames for `samples` input samples.
pub fn num_frames(samples: usize) -> usize {
    (samples + 2 * PAD).saturating_sub(N_FFT) / HOP + 1
}

/// 24 kHz mono samples → log-mel `[frames, 128]` (f32).
pub fn mel_spectrogram(wav: &[f32], device: &Device) -> Result<Tensor> {
    let rows = log_mel(wav)?;
    let frames = rows.len();
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    Ok(Tensor::from_vec(flat, (frames, N_MELS), device)?)
}

/// The same as [`mel_spectrogram`], as plain rows.
pub fn log_mel(wav: &[f32]) -> Result<Vec<[f32; N_MELS]>> {
    if wav.len() <= PAD {
        return Err(Error::InvalidRequest(format!(
            "reference audio has {} samples; the speaker encoder needs more than {PAD} (24 kHz)",
            wav.len()
        )));
    }
    if let Some(i) = wav.iter().position(|x| !x.is_finite()) {
        return Err(Error::InvalidRequest(format!(
            "reference audio sample {i} is not a finite number"
        )));
    }
    let padded = reflect_pad(wav, PAD);
    let window: Vec<f64> = (0..N_FFT)
        .map(|n| 0.5 - 0.5 * (2.0 * PI * n as f64 / N_FFT as f64).cos())
        .collect();
    let fb = mel_filterbank();
    let fft = Fft::new(N_FFT);
    let n_bins = N_FFT / 2 + 1;
    let mut re = vec![0f64; N_FFT];
    let mut im = vec![0f64; N_FFT];
    let mut mag = vec![0f64; n_bins];
    let frames = num_frames(wav.len());
    let mut out = Vec::with_capacity(frames);
    for f in 0..frames {
        let seg = &padded[f * HOP..f * HOP + N_FFT];
        for n in 0..N_FFT {
            re[n] = seg[n] as f64 * window[n];
            im[n] = 0.0;
        }
        fft.run(&mut re, &mut im);
        for k in 0..n_bins {
            mag[k] = (re[k] * re[k] + im[k] * im[k] + MAG_EPS).sqrt();
        }
        let mut row = [0f32; N_MELS];
        for (m, filt) in fb.iter().enumerate() {
            let e: f64 = filt.iter().map(|&(k, w)| w * mag[k]).sum();
            row[m] = e.max(LOG_FLOOR).ln() as f32;
        }
        out.push(row);
    }
    Ok(out)
}

/// Reflect padding without repeating the edge sample (PyTorch `mode="reflect"`); `pad < len`.
fn reflect_pad(x: &[f32], pad: usize) -> Vec<f32> {
    let n = x.len();
    let mut out = Vec::with_capacity(n + 2 * pad);
    out.extend((1..=pad).rev().map(|i| x[i]));
    out.extend_from_slice(x);
    out.extend((0..pad).map(|j| x[n - 2 - j]));
    out
}

/// Slaney mel scale (librosa `htk=False`): linear below 1 kHz, logarithmic above.
fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// The filterbank as sparse rows of `(fft bin, weight)`: triangles between consecutive mel
/// points, each scaled by `2 / (upper − lower)` ("slaney" area normalisation), weights rounded
/// to f32 as librosa stores them.
pub(crate) fn mel_filterbank() -> Vec<Vec<(usize, f64)>> {
    let n_bins = N_FFT / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|k| k as f64 * SAMPLE_RATE as f64 / N_FFT as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(F_MIN), hz_to_mel(F_MAX));
    let pts: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    (0..N_MELS)
        .map(|i| {
            let (d0, d1) = (pts[i + 1] - pts[i], pts[i + 2] - pts[i + 1]);
            let enorm = 2.0 / (pts[i + 2] - pts[i]);
            fft_freqs
                .iter()
                .enumerate()
                .filter_map(|(k, &f)| {
                    let lower = (f - pts[i]) / d0;
                    let upper = (pts[i + 2] - f) / d1;
                    let w = lower.min(upper).max(0.0) as f32;
                    (w > 0.0).then_some((k, (w * enorm as f32) as f64))
                })
                .collect()
        })
        .collect()
}

/// In-place iterative radix-2 complex FFT of a fixed power-of-two size.
struct Fft {
    n: usize,
    cos: Vec<f64>,
    sin: Vec<f64>,
}

impl Fft {
    fn new(n: usize) -> Self {
        debug_assert!(n.is_power_of_two());
        let cos = (0..n / 2)
            .map(|k| (2.0 * PI * k as f64 / n as f64).cos())
            .collect();
        let sin = (0..n / 2)
            .map(|k| -(2.0 * PI * k as f64 / n as f64).sin())
            .collect();
        Self { n, cos, sin }
    }

    fn run(&self, re: &mut [f64], im: &mut [f64]) {
        let n = self.n;
        let bits = n.trailing_zeros();
        for i in 0..n {
            let j = i.reverse_bits() >> (usize::BITS - bits);
            if j > i {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let step = n / len;
            for start in (0..n).step_by(len) {
                for k in 0..len / 2 {
                    let (wr, wi) = (self.cos[k * step], self.sin[k * step]);
                    let (a, b) = (start + k, start + k + len / 2);
                    let tr = re[b] * wr - im[b] * wi;
                    let ti = re[b] * wi + im[b] * wr;
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
            }
            len *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_matches_a_direct_dft() {
        let n = 16;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7 + 3) % 11) as f64 - 5.0).collect();
        let (mut re, mut im) = (x.clone(), vec![0.0; n]);
        Fft::new(n).run(&mut re, &mut im);
        for k in 0..n {
            let (mut dr, mut di) = (0.0, 0.0);
            for (t, v) in x.iter().enumerate() {
                let a = -2.0 * PI * (k * t) as f64 / n as f64;
                dr += v * a.cos();
                di += v * a.sin();
            }
            assert!(
                (re[k] - dr).abs() < 1e-9 && (im[k] - di).abs() < 1e-9,
                "bin {k}"
            );
        }
    }

    #[test]
    fn mel_scale_round_trips_and_is_slaney() {
        for f in [0.0, 200.0, 999.0, 1000.0, 4000.0, 12000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        // Each slaney-normalised triangle has area 1 in Hz (up to the bin sampling).
        let fb = mel_filterbank();
        assert_eq!(fb.len(), N_MELS);
        let bin_hz = SAMPLE_RATE as f64 / N_FFT as f64;
        let area: f64 = fb[100].iter().map(|&(_, w)| w * bin_hz).sum();
        assert!((area - 1.0).abs() < 0.05, "area {area}");
    }

    #[test]
    fn reflect_pad_mirrors_without_the_edge() {
        assert_eq!(
            reflect_pad(&[1.0, 2.0, 3.0, 4.0], 2),
            vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]
        );
    }

    #[test]
    fn too_short_audio_is_an_error() {
        assert!(log_mel(&[0.0; 100]).is_err());
        assert_eq!(num_frames(24000), 93);
    }
}
