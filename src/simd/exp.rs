//! Branch-free, vectorisable `exp` over a lane block.
//!
//! Range reduction x = n ln2 + r with |r| <= ln2/2 (two-constant Cody-Waite), a Taylor
//! polynomial for e^r of degree `deg` (a constant after inlining), and the scale 2^n applied as two factors
//! 2^(n/2) * 2^(n - n/2) so results down in the subnormal range round once, exactly
//! as libm's do, instead of being flushed to zero.
//!
//! Degree 13 gives a truncation error below 5e-18 relative (float64 output);
//! degree 8 gives 2e-10, far below float32's half ulp (f32 inputs are computed in f64).
//! Special values: x <= -746 gives +0, x >= 710 gives +inf, NaN stays NaN
//! (the clamps are compare-selects, which keep NaN).

use super::{fmadd, L};

const LOG2E: f64 = std::f64::consts::LOG2_E;
// ln2 split so that n * LN2_HI is exact for |n| < 2^11.
const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// Taylor coefficients 1/k!, degree 13: truncation error below 5e-18 relative
/// (float64 results).
pub(crate) const TAYLOR13: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
];

/// Degree-6 polynomial for e^r on |r| <= 0.354 with p(0) = 1 exactly, fitted for
/// minimum relative error (2.3e-9): ample for float32 results computed in f64.
pub(crate) const POLY6: [f64; 7] = [
    1.0,
    1.000_000_036_086_082_6,
    0.499_999_934_782_216_77,
    0.166_664_122_435_778_88,
    0.041_668_112_890_303_75,
    0.008_375_782_643_988_087,
    0.001_384_175_940_996_546_6,
];

/// e^x for one value; the lane loop below inlines this per lane.
///
/// `coef`: polynomial for e^r (TAYLOR13 or POLY6). `low`: inputs below it give 0 (-746
/// for float64; float32 may pass -110, where every result already rounds to 0 in f32).
/// `split`: apply 2^n as two factors so subnormal f64 results round right; not needed
/// when 2^n stays a normal f64 (float32 with low = -110).
#[inline(always)]
pub(crate) fn exp1<const F: bool>(x: f64, coef: &[f64], low: f64, split: bool) -> f64 {
    let x = if x < low { low } else { x };
    let x = if x > 710.0 { 710.0 } else { x };
    let t = fmadd::<F>(x, LOG2E, MAGIC);
    let n = t - MAGIC;
    let r = fmadd::<F>(n, -LN2_HI, x);
    let r = fmadd::<F>(n, -LN2_LO, r);
    let mut k = coef.len() - 1;
    let mut p = coef[k];
    while k > 0 {
        k -= 1;
        p = fmadd::<F>(p, r, coef[k]);
    }
    // n as an integer, read from the low bits of t (exact for |n| < 2^51).
    let ni = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    if !split {
        return p * f64::from_bits((ni.wrapping_add(1023) as u64) << 52);
    }
    let n1 = ni >> 1;
    let n2 = ni.wrapping_sub(n1);
    let s1 = f64::from_bits((n1.wrapping_add(1023) as u64) << 52);
    let s2 = f64::from_bits((n2.wrapping_add(1023) as u64) << 52);
    p * s1 * s2
}

/// e^x on every lane of a block, in place.
#[inline(always)]
pub(crate) fn exp_block<const F: bool>(v: &mut [f64; L], coef: &[f64], low: f64, split: bool) {
    for x in v.iter_mut() {
        *x = exp1::<F>(*x, coef, low, split);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<const F: bool>(coef: &[f64], low: f64, split: bool, tol: f64) {
        let mut worst: f64 = 0.0;
        let mut x = -745.0;
        while x < 709.0 {
            let got = exp1::<F>(x, coef, low, split);
            let want = x.exp();
            let rel = ((got - want) / want).abs();
            if want > f64::MIN_POSITIVE && x > low {
                worst = worst.max(rel);
            }
            x += 0.0137;
        }
        assert!(worst < tol, "worst relative error {worst:e}");
    }

    #[test]
    fn exp_accuracy() {
        check::<true>(&TAYLOR13, -746.0, true, 4e-16);
        check::<false>(&TAYLOR13, -746.0, true, 6e-16);
        check::<true>(&POLY6, -110.0, false, 2.5e-9);
        check::<false>(&POLY6, -110.0, false, 2.5e-9);
    }

    #[test]
    fn exp_specials() {
        assert_eq!(
            exp1::<true>(f64::NEG_INFINITY, &TAYLOR13, -746.0, true),
            0.0
        );
        assert_eq!(exp1::<true>(-800.0, &TAYLOR13, -746.0, true), 0.0);
        assert_eq!(
            exp1::<true>(f64::INFINITY, &TAYLOR13, -746.0, true),
            f64::INFINITY
        );
        assert_eq!(exp1::<true>(0.0, &TAYLOR13, -746.0, true), 1.0);
        assert!(exp1::<true>(f64::NAN, &TAYLOR13, -746.0, true).is_nan());
        // Subnormal results round like libm's.
        for x in [-708.5, -720.0, -740.0, -744.4] {
            let got = exp1::<true>(x, &TAYLOR13, -746.0, true);
            let want = f64::exp(x);
            assert!(
                (got - want).abs() <= want * 1e-15 + 5e-324,
                "{x}: {got:e} vs {want:e}"
            );
        }
        let mut b = [0.0; L];
        b[3] = f64::NAN;
        exp_block::<false>(&mut b, &TAYLOR13, -746.0, true);
        assert!(b[3].is_nan() && b[0] == 1.0);
    }
}

const LN2: f64 = std::f64::consts::LN_2;
const SQRT2: f64 = std::f64::consts::SQRT_2;
// 2/(2k+1): the atanh series log(m) = 2z (1 + z^2/3 + z^4/5 + ...), z = (m-1)/(m+1).
const ATANH: [f64; 12] = [
    2.0,
    2.0 / 3.0,
    2.0 / 5.0,
    2.0 / 7.0,
    2.0 / 9.0,
    2.0 / 11.0,
    2.0 / 13.0,
    2.0 / 15.0,
    2.0 / 17.0,
    2.0 / 19.0,
    2.0 / 21.0,
    2.0 / 23.0,
];

/// log1p(s) for s >= 0 (or NaN / +inf), branch-free so a lane loop vectorises.
///
/// u = 1 + s is split as 2^e m with m in [sqrt(1/2), sqrt(2)); log m from the atanh
/// series with `terms` terms (11 for float64: truncation < 1e-17; 5 for float32
/// outputs); the rounding error of 1 + s is added back as (s - (u - 1)) / u, which
/// keeps full relative accuracy for tiny s.
#[inline(always)]
pub(crate) fn log1p_pos<const F: bool>(s: f64, terms: usize) -> f64 {
    let u = 1.0 + s;
    log1p_pos_u::<F>(s, u, 1.0 / u, terms)
}

/// [`log1p_pos`] with `u = 1 + s` and `inv = 1/u` already at hand (saves a division
/// where the caller needs 1/(1+s) anyway, as the logistic loss does).
#[inline(always)]
pub(crate) fn log1p_pos_u<const F: bool>(s: f64, u: f64, inv: f64, terms: usize) -> f64 {
    let corr = (s - (u - 1.0)) * inv;
    let bits = u.to_bits();
    let e0 = ((bits >> 52) as i64).wrapping_sub(1023);
    let m0 = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    let big = m0 > SQRT2;
    let m = if big { m0 * 0.5 } else { m0 };
    let e = (if big { e0 + 1 } else { e0 }) as f64;
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let mut p = ATANH[terms];
    let mut k = terms;
    while k > 0 {
        k -= 1;
        p = fmadd::<F>(p, z2, ATANH[k]);
    }
    let r = fmadd::<F>(e, LN2, fmadd::<F>(z, p, corr));
    // u = inf or NaN: the bit tricks above give garbage; pass them through.
    if u < f64::INFINITY {
        r
    } else {
        u
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn log1p_accuracy() {
        let mut worst: f64 = 0.0;
        let mut s: f64 = 1e-300;
        while s < 1e300 {
            for t in [s, s * 1.37, s * 3.3] {
                let want = t.ln_1p();
                let got = log1p_pos::<true>(t, 11);
                worst = worst.max(((got - want) / want).abs());
                let got = log1p_pos::<false>(t, 11);
                worst = worst.max(((got - want) / want).abs());
            }
            s *= 1.9;
        }
        assert!(worst < 5e-16, "worst {worst:e}");
        assert_eq!(log1p_pos::<true>(0.0, 11), 0.0);
        assert!(log1p_pos::<true>(f64::NAN, 11).is_nan());
        assert_eq!(log1p_pos::<true>(f64::INFINITY, 11), f64::INFINITY);
    }
}
