//! A read-bandwidth probe: sum a buffer much larger than the last-level cache with 1..N threads
//! and report the best of a few passes in GB/s. This is the ceiling a bandwidth-bound batch-1
//! generation step can reach on this machine (each frame streams its weights once).

use std::time::Instant;

/// Default probe size: far above any current L3 (the probe's pages are touched once first).
pub const DEFAULT_PROBE_BYTES: usize = 512 << 20;

/// Best read bandwidth in GB/s (1e9 bytes/s) over `passes` sums of `buf` split across `threads`.
pub fn read_gbs(buf: &[u64], threads: usize, passes: usize) -> f64 {
    let threads = threads.max(1);
    let chunk = buf.len().div_ceil(threads).max(1);
    let mut best = f64::INFINITY;
    let mut sink = 0u64;
    for _ in 0..passes.max(1) {
        let t0 = Instant::now();
        let sums: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(chunk)
                .map(|part| s.spawn(move || sum(part)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        best = best.min(t0.elapsed().as_secs_f64());
        sink = sink.wrapping_add(sums.iter().fold(0, |a, b| a.wrapping_add(*b)));
    }
    std::hint::black_box(sink);
    (std::mem::size_of_val(buf) as f64) / best / 1e9
}

/// A probe buffer of about `bytes`, with every page written (so reads hit DRAM, not the zero page).
pub fn probe_buffer(bytes: usize) -> Vec<u64> {
    let n = (bytes / 8).max(1);
    (0..n as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect()
}

/// Eight independent accumulators so the loop vectorises and is not latency-bound.
fn sum(xs: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut it = xs.chunks_exact(8);
    for c in it.by_ref() {
        for k in 0..8 {
            acc[k] = acc[k].wrapping_add(c[k]);
        }
    }
    let tail = it.remainder().iter().fold(0u64, |a, b| a.wrapping_add(*b));
    acc.iter().fold(tail, |a, b| a.wrapping_add(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_covers_every_element_and_probe_reports_a_rate() {
        let xs: Vec<u64> = (1..=1003).collect();
        assert_eq!(sum(&xs), 1003 * 1004 / 2);
        let buf = probe_buffer(1 << 20);
        assert_eq!(buf.len(), 1 << 17);
        let gbs = read_gbs(&buf, 2, 2);
        assert!(gbs.is_finite() && gbs > 0.0);
    }
}
