//! Order-preserving integer keys for floats: `a < b` (as floats, -0.0 < +0.0) iff
//! `key(a) < key(b)` (as u64). Radix selection works on these keys.

/// Key of a float (f32 values are widened to f64 first: the widening is exact).
#[inline(always)]
pub fn key(y: f64) -> u64 {
    let b = y.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// The float of a key (inverse of [`key`]).
#[inline(always)]
pub fn value(k: u64) -> f64 {
    let b = if k >> 63 == 1 { k & !(1 << 63) } else { !k };
    f64::from_bits(b)
}

/// Key of -inf: no non-NaN value has a smaller key.
pub const KEY_NEG_INF: u64 = !0xFFF0_0000_0000_0000u64;
/// Key of +inf: no non-NaN value has a larger key.
pub const KEY_POS_INF: u64 = 0x7FF0_0000_0000_0000u64 | (1 << 63);

/// The value bounds of the key range [lo, hi], clamped to [-inf, +inf] (keys beyond
/// those belong to NaN bit patterns, which never enter a statistic).
pub fn value_bounds(lo: u64, hi: u64) -> (f64, f64) {
    (value(lo.max(KEY_NEG_INF)), value(hi.min(KEY_POS_INF)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_floats() {
        let mut v = vec![
            f64::NEG_INFINITY,
            -1e308,
            -1.5,
            -f64::MIN_POSITIVE,
            -5e-324,
            -0.0,
            0.0,
            5e-324,
            1.0,
            1.0000000000000002,
            1e308,
            f64::INFINITY,
        ];
        let keys: Vec<u64> = v.iter().map(|&y| key(y)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (&y, &k) in v.iter().zip(&keys) {
            assert_eq!(value(k).to_bits(), y.to_bits());
        }
        assert_eq!(key(f64::NEG_INFINITY), KEY_NEG_INF);
        assert_eq!(key(f64::INFINITY), KEY_POS_INF);
        v.reverse();
        assert_eq!(
            value_bounds(0, u64::MAX),
            (f64::NEG_INFINITY, f64::INFINITY)
        );
    }
}
