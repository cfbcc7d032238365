//! Sample conversions shared by every writer and player: f32 in [-1, 1] to s16 and back.

/// One f32 sample to s16, clamped and rounded to nearest (so a 16-bit round trip is exact).
pub fn to_i16(x: f32) -> i16 {
    let v = if x.is_finite() { x } else { 0.0 };
    (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Appends `samples` as s16 little-endian bytes.
pub fn push_s16le(samples: &[f32], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for &s in samples {
        out.extend_from_slice(&to_i16(s).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s16_round_trip_is_exact() {
        for v in [-32768i16, -12345, -1, 0, 1, 999, 32767] {
            assert_eq!(to_i16(v as f32 / 32768.0), v);
        }
        assert_eq!(to_i16(2.0), 32767);
        assert_eq!(to_i16(-2.0), -32768);
        assert_eq!(to_i16(f32::NAN), 0);
        let mut out = vec![7];
        push_s16le(&[0.5, -0.5], &mut out);
        assert_eq!(out, vec![7, 0x00, 0x40, 0x00, 0xC0]);
    }
}
