//! Sample-rate conversion: a polyphase windowed-sinc filter (Kaiser window, beta 8.6,
//! 24 zero crossings each side, cutoff at 95% of the lower Nyquist frequency).
//!
//! The ratio is reduced to `up/down`; output sample `k` sits exactly at input time
//! `k * down / up`, so the output is aligned with the input (no filter delay to undo) and `n`
//! input samples give `round(n * to / from)` output samples. [`Resampler`] works on a stream
//! (push chunks, then flush) and gives the same samples as the one-shot [`resample`].

/// Zero crossings of the sinc kept on each side of the centre.
const ZERO_CROSSINGS: f64 = 24.0;
/// Cutoff as a fraction of the lower of the two Nyquist frequencies.
const CUTOFF: f64 = 0.95;
const KAISER_BETA: f64 = 8.6;
/// Largest number of filter phases kept in a table (rates with a larger reduced numerator,
/// e.g. 44100 -> 44101, compute their taps per sample instead).
const MAX_TABLE_PHASES: u64 = 4096;

/// Resamples a whole mono signal from `from` Hz to `to` Hz.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || samples.is_empty() {
        return samples.to_vec();
    }
    let mut r = Resampler::new(from, to);
    let mut out = r.push(samples);
    out.extend(r.flush());
    out
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// A streaming mono resampler.
pub struct Resampler {
    up: u64,
    down: u64,
    /// Cutoff in cycles per input sample times two (1.0 = input Nyquist).
    fc: f64,
    /// Taps on each side of the centre.
    half: i64,
    /// `table[p]` = the 2*half taps for phase p (fraction p/up), when small enough.
    table: Option<Vec<Vec<f32>>>,
    /// Input samples starting at absolute index `base` (negative indices are zeros).
    buf: Vec<f32>,
    base: i64,
    /// Next output sample index.
    next: u64,
    /// Input samples pushed since the stream began.
    consumed: u64,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (rates of 0 are treated as 1).
    pub fn new(from: u32, to: u32) -> Resampler {
        let (from, to) = (u64::from(from.max(1)), u64::from(to.max(1)));
        let g = gcd(from, to);
        let (up, down) = (to / g, from / g);
        let fc = CUTOFF * (to as f64 / from as f64).min(1.0);
        let half = (ZERO_CROSSINGS / fc).ceil() as i64;
        let mut r = Resampler {
            up,
            down,
            fc,
            half,
            table: None,
            buf: Vec::new(),
            base: 0,
            next: 0,
            consumed: 0,
        };
        if up <= MAX_TABLE_PHASES && up != down {
            r.table = Some((0..up).map(|p| r.taps(p)).collect());
        }
        r.reset();
        r
    }

    fn reset(&mut self) {
        self.buf = vec![0.0; self.half as usize];
        self.base = -self.half;
        self.next = 0;
        self.consumed = 0;
    }

    /// The taps for phase `p`: tap j weighs input `i - half + 1 + j` for output at `i + p/up`.
    fn taps(&self, p: u64) -> Vec<f32> {
        let frac = p as f64 / self.up as f64;
        let w = self.half as f64;
        let kernel = |x: f64| {
            let r = x / w;
            if r.abs() >= 1.0 {
                return 0.0;
            }
            let arg = std::f64::consts::PI * self.fc * x;
            let sinc = if arg.abs() < 1e-12 {
                1.0
            } else {
                arg.sin() / arg
            };
            self.fc * sinc * bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / bessel_i0(KAISER_BETA)
        };
        let taps: Vec<f64> = (0..2 * self.half)
            .map(|j| kernel(frac + w - 1.0 - j as f64))
            .collect();
        // Unity gain at DC for every phase.
        let sum: f64 = taps.iter().sum();
        taps.iter().map(|t| (t / sum) as f32).collect()
    }

    /// Input index (exclusive) needed to compute output `k`.
    fn needed(&self, k: u64) -> i64 {
        (k * self.down / self.up) as i64 + self.half + 1
    }

    fn compute(&self, k: u64) -> f32 {
        let i = (k * self.down / self.up) as i64;
        let p = (k * self.down) % self.up;
        let start = (i - self.half + 1 - self.base) as usize;
        let window = &self.buf[start..start + 2 * self.half as usize];
        let dot = |taps: &[f32]| window.iter().zip(taps).map(|(x, h)| x * h).sum::<f32>();
        match &self.table {
            Some(t) => dot(&t[p as usize]),
            None => dot(&self.taps(p)),
        }
    }

    /// Produces every output whose input is available.
    fn run(&mut self, limit: Option<u64>) -> Vec<f32> {
        let end = self.base + self.buf.len() as i64;
        let mut out = Vec::new();
        while limit.is_none_or(|l| self.next < l) && self.needed(self.next) <= end {
            out.push(self.compute(self.next));
            self.next += 1;
        }
        // Keep only what the next output still needs.
        let keep_from = (self.next * self.down / self.up) as i64 - self.half + 1;
        let drop = (keep_from - self.base).clamp(0, self.buf.len() as i64);
        self.buf.drain(..drop as usize);
        self.base += drop;
        out
    }

    /// Feeds samples; returns the output that is ready.
    pub fn push(&mut self, samples: &[f32]) -> Vec<f32> {
        if self.up == self.down {
            self.consumed += samples.len() as u64;
            return samples.to_vec();
        }
        self.consumed += samples.len() as u64;
        self.buf.extend_from_slice(samples);
        self.run(None)
    }

    /// Ends the stream and returns the rest of the output, so that the total is
    /// `round(input * to / from)`. The resampler is ready for a new stream afterwards.
    pub fn flush(&mut self) -> Vec<f32> {
        if self.up == self.down {
            self.consumed = 0;
            return Vec::new();
        }
        let total = (self.consumed * self.up + self.down / 2) / self.down;
        self.buf
            .extend(std::iter::repeat_n(0.0, self.half as usize + 1));
        let out = self.run(Some(total));
        self.reset();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * (2.0 * PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    /// Largest error between `got` and the ideal sine, ignoring `edge` samples at each end.
    fn max_err(got: &[f32], freq: f32, rate: u32, edge: usize) -> f32 {
        let ideal = sine(freq, rate, got.len());
        got[edge..got.len() - edge]
            .iter()
            .zip(&ideal[edge..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn lengths_are_exact() {
        for (from, to, n) in [
            (24000, 48000, 24000),
            (48000, 24000, 4801),
            (44100, 24000, 44100),
            (22050, 24000, 1000),
            (16000, 24000, 7),
            (44100, 44101, 500),
        ] {
            let out = resample(&vec![0.1; n], from, to);
            let want = ((n as u64 * to as u64 + from as u64 / 2) / from as u64) as usize;
            assert_eq!(out.len(), want, "{from}->{to} n={n}");
        }
        assert_eq!(resample(&[0.25, 0.5], 24000, 24000), vec![0.25, 0.5]);
        assert!(resample(&[], 24000, 48000).is_empty());
    }

    #[test]
    fn sine_survives_up_and_down_in_phase() {
        // 1 kHz at 44.1 kHz -> 24 kHz: a delay-compensated resampler keeps the phase.
        let input = sine(1000.0, 44100, 44100);
        let out = resample(&input, 44100, 24000);
        assert!(
            max_err(&out, 1000.0, 24000, 300) < 2e-3,
            "{}",
            max_err(&out, 1000.0, 24000, 300)
        );
        let up = resample(&sine(440.0, 24000, 24000), 24000, 48000);
        assert!(max_err(&up, 440.0, 48000, 600) < 2e-3);
    }

    #[test]
    fn removes_content_above_the_new_nyquist() {
        // 15 kHz at 48 kHz cannot exist at 24 kHz: it must be filtered, not aliased to 9 kHz.
        let out = resample(&sine(15000.0, 48000, 48000), 48000, 24000);
        let rms = (out[500..out.len() - 500].iter().map(|x| x * x).sum::<f32>()
            / (out.len() - 1000) as f32)
            .sqrt();
        assert!(rms < 0.01, "aliased energy rms {rms}");
    }

    #[test]
    fn streaming_matches_one_shot() {
        let input = sine(700.0, 24000, 10000);
        let whole = resample(&input, 24000, 48000);
        let mut r = Resampler::new(24000, 48000);
        let mut parts = Vec::new();
        for c in input.chunks(333) {
            parts.extend(r.push(c));
        }
        parts.extend(r.flush());
        assert_eq!(parts.len(), whole.len());
        let diff = parts
            .iter()
            .zip(&whole)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-5, "{diff}");
    }
}
