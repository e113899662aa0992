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
pub(crate) const LN2_HI: f64 = 6.931_471_803_691_238e-1;
pub(crate) const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
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
/// `coef`: polynomial for e^r (TAYLOR13 or POLY6). `low`: inputs below it give exactly 0
/// (-746 for float64; float32 passes -110, below which every result rounds to 0 in f32).
/// `split`: apply 2^n as two factors so subnormal f64 results round right; not needed
/// when 2^n stays a normal f64 (float32 with low = -110).
#[inline(always)]
pub(crate) fn exp1<const F: bool>(x: f64, coef: &[f64], low: f64, split: bool) -> f64 {
    // Below `low` the result is 0, not e^low: e^-110 = 1.7e-48 is 0 as a float32 but not
    // as the f64 the float32 paths sum, so 1000 such entries added 1.7e-45 to a row's sum
    // (a float32 gradient of 1.3 subnormal ulps where the true value is 0).
    let under = x < low;
    let x = if under { low } else { x };
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
        let v = p * f64::from_bits((ni.wrapping_add(1023) as u64) << 52);
        return if under { 0.0 } else { v };
    }
    let n1 = ni >> 1;
    let n2 = ni.wrapping_sub(n1);
    let s1 = f64::from_bits((n1.wrapping_add(1023) as u64) << 52);
    let s2 = f64::from_bits((n2.wrapping_add(1023) as u64) << 52);
    let v = p * s1 * s2;
    if under {
        0.0
    } else {
        v
    }
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

/// e^r on |r| <= ln2/2 in float32 lanes (the AVX2 / AVX-512 float32 loss kernels):
/// degree-7 Taylor coefficients, highest first (truncation 5e-9).
pub(crate) const EXP7_F32: [f32; 8] = [
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];
/// ln 2 = LN2_HI_F32 + LN2_LO_F32, the first with its low 12 bits zero, so n * HI is
/// exact for |n| < 2^12 (float32 Cody-Waite reduction).
pub(crate) const LN2_HI_F32: f32 = 0.693_145_75;
pub(crate) const LN2_LO_F32: f32 = 1.428_606_8e-6;

pub(crate) const LN2: f64 = std::f64::consts::LN_2;
const SQRT2: f64 = std::f64::consts::SQRT_2;
// 2/(2k+1): the atanh series log(m) = 2z (1 + z^2/3 + z^4/5 + ...), z = (m-1)/(m+1).
pub(crate) const ATANH: [f64; 12] = [
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
    let corr = (s - (u - 1.0)) / u;
    let (m, e) = split(u);
    let z = (m - 1.0) / (m + 1.0);
    let r = log_from::<F>(e, z, corr, terms);
    // u = inf or NaN: the bit tricks above give garbage; pass them through.
    if u < f64::INFINITY {
        r
    } else {
        u
    }
}

/// `(log1p(s), 1/(1+s))` for s in [0, 1] or NaN (the logistic loss's e^{-|x|}), with
/// one reciprocal where [`log1p_pos`] plus `1/(1+s)` would take two divisions.
///
/// With u = 1 + s = 2^e m as in [`log1p_pos`], both denominators, u and m + 1, come
/// from D = 1 / (u (m + 1)) (no overflow: the product lies in [2, 6]). `recip` is
/// the element type's reciprocal: exact f64 division for float64 results, an f32
/// division for float32 results (2^-24 relative error, below the f32 rounding of the
/// output, and about three times the f64 division's throughput). The division was
/// the logistic loss's bottleneck (two f64 divisions per element).
#[inline(always)]
pub(crate) fn log1p_unit<const F: bool>(
    s: f64,
    terms: usize,
    recip: impl Fn(f64) -> f64,
) -> (f64, f64) {
    let u = 1.0 + s;
    let (m, e) = split(u);
    let d = recip(u * (m + 1.0));
    let inv = (m + 1.0) * d;
    let z = (m - 1.0) * (u * d);
    let corr = (s - (u - 1.0)) * inv;
    (log_from::<F>(e, z, corr, terms), inv)
}

/// u = 2^e m with m in [sqrt(1/2), sqrt(2)) (bit fields; garbage for inf / NaN u,
/// which the callers pass through).
#[inline(always)]
fn split(u: f64) -> (f64, f64) {
    let bits = u.to_bits();
    let e0 = ((bits >> 52) as i64).wrapping_sub(1023);
    let m0 = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    let big = m0 > SQRT2;
    let m = if big { m0 * 0.5 } else { m0 };
    (m, (if big { e0 + 1 } else { e0 }) as f64)
}

/// e ln 2 + log m + corr, with log m = z * atanh-series(z^2), z = (m - 1) / (m + 1).
#[inline(always)]
fn log_from<const F: bool>(e: f64, z: f64, corr: f64, terms: usize) -> f64 {
    let z2 = z * z;
    let mut p = ATANH[terms];
    let mut k = terms;
    while k > 0 {
        k -= 1;
        p = fmadd::<F>(p, z2, ATANH[k]);
    }
    fmadd::<F>(e, LN2, fmadd::<F>(z, p, corr))
}

/// log1p(t) / t on [0, 1] as a degree-9 polynomial with q(0) = 1, fitted for minimum
/// relative error of t q(t) (6.2e-9): the float32 logistic loss's softplus, with no
/// range reduction and no division (`t q(t)` keeps full relative accuracy as t -> 0).
pub(crate) const LOG1P_UNIT9: [f64; 10] = [
    1.0,
    -0.499_999_224_421_845_5,
    0.333_302_045_599_794_7,
    -0.249_553_779_125_209_76,
    0.196_789_062_478_691_13,
    -0.153_080_525_202_428_54,
    0.106_008_622_852_803_16,
    -0.056_882_785_522_181_67,
    0.019_791_010_131_140_582,
    -0.003_227_249_185_041_377_4,
];

/// log1p(t) for t in [0, 1] (or NaN) from [`LOG1P_UNIT9`].
#[inline(always)]
pub(crate) fn log1p_unit_poly<const F: bool>(t: f64) -> f64 {
    let c = &LOG1P_UNIT9;
    let mut p = c[9];
    let mut k = 9;
    while k > 0 {
        k -= 1;
        p = fmadd::<F>(p, t, c[k]);
    }
    t * p
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

    #[test]
    fn log1p_unit_accuracy() {
        let exact = |v: f64| 1.0 / v;
        let single = |v: f64| (1.0f32 / v as f32) as f64;
        let (mut w64, mut w32, mut wi32) = (0.0f64, 0.0f64, 0.0f64);
        let mut s: f64 = 1e-300;
        while s <= 1.0 {
            for t in [s, s * 0.61, s * 0.37, 1.0, 0.5, 2f64.sqrt() - 1.0] {
                let (l, inv) = log1p_unit::<true>(t, 11, exact);
                w64 = w64.max(((l - t.ln_1p()) / t.ln_1p()).abs());
                w64 = w64.max(((inv - 1.0 / (1.0 + t)) * (1.0 + t)).abs());
                let (l, inv) = log1p_unit::<false>(t, 5, single);
                w32 = w32.max(((l - t.ln_1p()) / t.ln_1p()).abs());
                wi32 = wi32.max(((inv - 1.0 / (1.0 + t)) * (1.0 + t)).abs());
            }
            s *= 1.3;
        }
        assert!(w64 < 6e-16, "float64 worst {w64:e}");
        assert!(
            w32 < 2.5e-7 && wi32 < 1.2e-7,
            "float32 worst {w32:e} {wi32:e}"
        );
        assert_eq!(log1p_unit::<true>(0.0, 11, exact), (0.0, 1.0));
        let mut wp = 0.0f64;
        let mut t = 1e-300;
        while t <= 1.0 {
            for u in [t, t * 0.71, 1.0] {
                let got = log1p_unit_poly::<true>(u).max(log1p_unit_poly::<false>(u));
                wp = wp.max(((got - u.ln_1p()) / u.ln_1p()).abs());
            }
            t *= 1.01;
        }
        assert!(wp < 8e-9, "polynomial worst {wp:e}");
        assert_eq!(log1p_unit_poly::<true>(0.0), 0.0);
        assert!(log1p_unit_poly::<true>(f64::NAN).is_nan());
        let (l, inv) = log1p_unit::<true>(f64::NAN, 11, exact);
        assert!(l.is_nan() && inv.is_nan());
    }
}
