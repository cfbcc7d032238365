//! Shared helpers: test signals, correlation, WAV parsing, external tools, the CI gate.

use std::path::{Path, PathBuf};
use std::process::Command;

/// True under CI, where missing tools are failures rather than "not run".
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a prerequisite that is missing: panics under CI, prints "NOT RUN" elsewhere.
pub fn not_run(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why} (CI=true: this must work; .ci/run installs the packages)");
    }
    // Written to the stream itself, not through eprintln!, so the test harness shows it even
    // for a passing test.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOT RUN: {test}: {why}");
}

pub fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Checks every tool is installed; otherwise reports "not run" (or fails under CI).
pub fn require(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    not_run(test, &format!("{} not installed", missing.join(", ")));
    false
}

/// Runs a command, panicking with its stderr if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn s16le_to_i16(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

pub fn i16_to_f32(v: &[i16]) -> Vec<f32> {
    v.iter().map(|&s| s as f32 / 32768.0).collect()
}

/// A speech-like test signal: a gliding harmonic tone with amplitude envelope plus a little
/// noise, quantised to exact 16-bit values (so lossless formats can be compared bit for bit).
pub fn speechy(rate: u32, seconds: f32) -> Vec<i16> {
    let n = (rate as f32 * seconds) as usize;
    let mut seed = 0x1234_5678u32;
    (0..n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let f0 = 140.0 + 40.0 * (2.0 * std::f32::consts::PI * 1.3 * t).sin();
            let phase = 2.0 * std::f32::consts::PI * f0 * t;
            let mut v = 0.0;
            for h in 1..8 {
                v += (phase * h as f32).sin() / h as f32;
            }
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 9) as f32 / (1u32 << 23) as f32 - 0.5;
            let env = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 3.0 * t).sin().abs();
            ((0.35 * v * env + 0.02 * noise) * 32768.0)
                .round()
                .clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Normalised cross-correlation of `a` and `b` with `b` shifted by `lag` (b[i + lag] vs a[i]).
pub fn corr_at(a: &[f32], b: &[f32], lag: isize) -> f32 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (i, &x) in a.iter().enumerate() {
        let j = i as isize + lag;
        if j < 0 || j as usize >= b.len() {
            continue;
        }
        let y = b[j as usize];
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        (ab / (aa.sqrt() * bb.sqrt())) as f32
    }
}

/// The lag in `-max..=max` where `b` best matches `a`, and the correlation there.
pub fn best_lag(a: &[f32], b: &[f32], max: isize) -> (isize, f32) {
    (-max..=max)
        .map(|l| (l, corr_at(a, b, l)))
        .fold((0, f32::MIN), |best, c| if c.1 > best.1 { c } else { best })
}

/// Parses a 16-bit PCM WAV (as written by opusdec or sox): (rate, channels, samples).
pub fn parse_wav(bytes: &[u8]) -> (u32, u16, Vec<i16>) {
    assert_eq!(&bytes[0..4], b"RIFF", "not a RIFF file");
    assert_eq!(&bytes[8..12], b"WAVE");
    let mut pos = 12;
    let (mut rate, mut channels) = (0, 0);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            channels = u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]);
            rate = u32::from_le_bytes(bytes[body + 4..body + 8].try_into().unwrap());
            let bits = u16::from_le_bytes([bytes[body + 14], bytes[body + 15]]);
            assert_eq!(bits, 16, "expected 16-bit PCM");
        } else if id == b"data" {
            let end = if len == u32::MAX as usize || body + len > bytes.len() {
                bytes.len()
            } else {
                body + len
            };
            return (rate, channels, s16le_to_i16(&bytes[body..end]));
        }
        pos = body + len + (len & 1);
    }
    panic!("no data chunk");
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir().join(format!(
            "q3tts-audio-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&base).unwrap();
        TempDir(base)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
