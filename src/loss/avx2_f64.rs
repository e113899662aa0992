//! float64 binary cross-entropy with logits on AVX2 + FMA (unweighted, no `pos_weight`).
//!
//! Why: the generic element-wise kernel holds 16 float64 lanes per value, four ymm
//! registers on this level, so its exp / log1p / division chain spills and reloads its
//! constants (perf), and one block's chain is latency-bound. Here `U` registers go through
//! each stage in turn, as `avx512_f64::bce_plain` does with the same formulas (see there
//! for the accuracy argument); what AVX2 lacks is done by hand: the split of 1 + t into
//! exponent and mantissa from the bit fields (no `vgetexppd` / `vgetmantpd`), the scale
//! 2^n as two normal powers of two, so a subnormal e^-|x| is rounded once (no
//! `vscalefpd`), and lane selection by vector masks. Both polynomials (e^r, the atanh
//! series) run in Estrin's scheme: with Horner's, four registers per step spilled and
//! the kernel gained only on the forward pass. Forced to this level on the Zen 5 machine,
//! (16384, 1000), 2 threads, copy 6.5 ms: forward + gradient 32 -> 22-24 ms (generic ->
//! this), forward 31 -> 21-25 ms; two registers per step were slower.

use std::arch::x86_64::*;
use std::cell::Cell;

use super::elementwise::{padded_blocks, run, Extra, Kind};
use crate::ops::kernel::Src;
use crate::simd::exp::{ATANH, LN2, LN2_HI, LN2_LO, TAYLOR13};

/// Element-wise losses of float64 data on AVX2: BCE with logits without `weight` and
/// `pos_weight` in [`bce_plain`]; the other kinds and options take the generic kernel
/// (`elementwise::run`), compiled here for AVX2. `x` may be `dst` itself.
///
/// # Safety
/// AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn elementwise<S: Src<f64> + ?Sized, const G: bool>(
    kind: Kind,
    x: &S,
    y: &[f64],
    ex: &Extra<'_, f64>,
    off: usize,
    per: Option<&[Cell<f64>]>,
    dst: &[Cell<f64>],
    gscale: f64,
) -> f64 {
    if kind == Kind::Bce && ex.weight.is_none() && ex.pos_weight.is_none() {
        let n = y.len();
        assert!(x.n() >= n && per.is_none_or(|p| p.len() >= n) && (!G || dst.len() >= n));
        // SAFETY: AVX2 and FMA are enabled here; lengths asserted above.
        unsafe { bce_plain::<G>(x.base(), y, per, dst, gscale) }
    } else {
        run::<f64, S, true, G>(kind, x, y, ex, off, per, dst, gscale)
    }
}

/// Registers per step of [`bce_plain`].
const U: usize = 4;

/// 1.5 * 2^52: adding it to an integral float64 puts the integer in the low mantissa
/// bits (two's complement for negative ones).
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// 2^k for integral float64 lanes k in [-1022, 1023].
#[target_feature(enable = "avx2,fma")]
#[inline]
fn pow2(k: __m256d) -> __m256d {
    let magic = _mm256_set1_pd(MAGIC);
    let ki = _mm256_sub_epi64(
        _mm256_castpd_si256(_mm256_add_pd(k, magic)),
        _mm256_castpd_si256(magic),
    );
    _mm256_castsi256_pd(_mm256_slli_epi64::<52>(_mm256_add_epi64(
        ki,
        _mm256_set1_epi64x(1023),
    )))
}

/// e^r for |r| <= 0.35 (degree-13 Taylor) by Estrin's scheme, as
/// `avx512_f64::taylor13`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn taylor13(r: __m256d) -> __m256d {
    let c = |k: usize| _mm256_set1_pd(TAYLOR13[k]);
    let pair = |k: usize| _mm256_fmadd_pd(c(k + 1), r, c(k));
    let r2 = _mm256_mul_pd(r, r);
    let r4 = _mm256_mul_pd(r2, r2);
    let r8 = _mm256_mul_pd(r4, r4);
    let q0 = _mm256_fmadd_pd(pair(2), r2, pair(0));
    let q1 = _mm256_fmadd_pd(pair(6), r2, pair(4));
    let q2 = _mm256_fmadd_pd(pair(10), r2, pair(8));
    let q2 = _mm256_fmadd_pd(pair(12), r4, q2);
    _mm256_fmadd_pd(q2, r8, _mm256_fmadd_pd(q1, r4, q0))
}

/// The atanh series sum_k ATANH[k] w^k (degree 11, w = z^2) by Estrin's scheme.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn atanh11(w: __m256d) -> __m256d {
    let c = |k: usize| _mm256_set1_pd(ATANH[k]);
    let pair = |k: usize| _mm256_fmadd_pd(c(k + 1), w, c(k));
    let w2 = _mm256_mul_pd(w, w);
    let w4 = _mm256_mul_pd(w2, w2);
    let w8 = _mm256_mul_pd(w4, w4);
    let q0 = _mm256_fmadd_pd(pair(2), w2, pair(0));
    let q1 = _mm256_fmadd_pd(pair(6), w2, pair(4));
    let q2 = _mm256_fmadd_pd(pair(10), w2, pair(8));
    _mm256_fmadd_pd(q2, w8, _mm256_fmadd_pd(q1, w4, q0))
}

/// The sum of the BCE losses of `y.len()` float64 logits at `xp` and targets `y`; writes
/// them to `per` when given, and the gradient times `gscale` to `dst` when `G`. Each
/// block is loaded before it is stored, so `xp` may be `dst`.
///
/// # Safety
/// AVX2 and FMA; `y.len()` elements readable at `xp`, and in `per` and (when `G`) `dst`.
#[target_feature(enable = "avx2,fma")]
unsafe fn bce_plain<const G: bool>(
    xp: *const f64,
    y: &[f64],
    per: Option<&[Cell<f64>]>,
    dst: &[Cell<f64>],
    gscale: f64,
) -> f64 {
    let n = y.len();
    let (yp, dp) = (y.as_ptr(), dst.as_ptr() as *mut f64);
    let pp = per.map(|p| p.as_ptr() as *mut f64);
    let gs = _mm256_set1_pd(gscale);
    let mut acc = [_mm256_setzero_pd(); 2];
    let mut step = |x: [__m256d; U], yv: [__m256d; U], keep: [__m256d; U]| {
        let one = _mm256_set1_pd(1.0);
        let zero = _mm256_setzero_pd();
        let sign = _mm256_set1_pd(-0.0);
        let (mut t, mut nn, mut r) = ([zero; U], [zero; U], [zero; U]);
        for k in 0..U {
            // -|x| (NaN stays NaN), floored at -746 (max_pd returns its second operand
            // when either is NaN: the NaN second keeps it); e^-746 rounds to 0.
            r[k] = _mm256_max_pd(_mm256_set1_pd(-746.0), _mm256_or_pd(x[k], sign));
            nn[k] = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_pd(r[k], _mm256_set1_pd(std::f64::consts::LOG2_E)),
            );
        }
        for k in 0..U {
            r[k] = _mm256_fnmadd_pd(nn[k], _mm256_set1_pd(LN2_HI), r[k]);
        }
        for k in 0..U {
            r[k] = _mm256_fnmadd_pd(nn[k], _mm256_set1_pd(LN2_LO), r[k]);
        }
        let mut p = [zero; U];
        for k in 0..U {
            p[k] = taylor13(r[k]);
        }
        for k in 0..U {
            // 2^n as 2^n1 2^n2 with n1 = floor(n / 2) (n in [-1077, 0]: both factors are
            // normal), so a subnormal result is rounded once, by the last product.
            let n1 = _mm256_floor_pd(_mm256_mul_pd(nn[k], _mm256_set1_pd(0.5)));
            let n2 = _mm256_sub_pd(nn[k], n1);
            t[k] = _mm256_mul_pd(_mm256_mul_pd(p[k], pow2(n2)), pow2(n1)); // e^-|x|, or NaN
        }
        // log1p(t) and 1/(1 + t) as `avx512_f64::log1p_parts`, with u = 1 + t in [1, 2]
        // (or NaN) split from its bits: u = 2^e0 m0, m0 in [1, 2).
        let (mut inv, mut z, mut corr, mut e) = ([zero; U], [zero; U], [zero; U], [zero; U]);
        for k in 0..U {
            let u = _mm256_add_pd(one, t[k]);
            let bits = _mm256_castpd_si256(u);
            let mant = _mm256_set1_epi64x(0x000F_FFFF_FFFF_FFFF);
            let m0 = _mm256_castsi256_pd(_mm256_or_si256(
                _mm256_and_si256(bits, mant),
                _mm256_castpd_si256(one),
            ));
            // The exponent field as a float64 (0 <= field < 2^11), unbiased.
            let magic = _mm256_set1_pd(MAGIC);
            let field = _mm256_castsi256_pd(_mm256_add_epi64(
                _mm256_srli_epi64::<52>(bits),
                _mm256_castpd_si256(magic),
            ));
            let e0 = _mm256_sub_pd(_mm256_sub_pd(field, magic), _mm256_set1_pd(1023.0));
            let big = _mm256_cmp_pd::<_CMP_GT_OQ>(m0, _mm256_set1_pd(std::f64::consts::SQRT_2));
            let m = _mm256_blendv_pd(m0, _mm256_mul_pd(m0, _mm256_set1_pd(0.5)), big);
            e[k] = _mm256_add_pd(e0, _mm256_and_pd(big, one));
            let mp = _mm256_add_pd(m, one);
            let d = _mm256_div_pd(one, _mm256_mul_pd(u, mp));
            inv[k] = _mm256_mul_pd(mp, d);
            z[k] = _mm256_mul_pd(_mm256_sub_pd(m, one), _mm256_mul_pd(u, d));
            corr[k] = _mm256_mul_pd(_mm256_sub_pd(t[k], _mm256_sub_pd(u, one)), inv[k]);
        }
        let mut z2 = [zero; U];
        for k in 0..U {
            z2[k] = _mm256_mul_pd(z[k], z[k]);
        }
        let mut q = [zero; U];
        for k in 0..U {
            q[k] = atanh11(z2[k]);
        }
        let (mut l, mut g) = ([zero; U], [zero; U]);
        for k in 0..U {
            let l1p = _mm256_fmadd_pd(
                e[k],
                _mm256_set1_pd(LN2),
                _mm256_fmadd_pd(z[k], q[k], corr[k]),
            );
            let ti = _mm256_mul_pd(t[k], inv[k]);
            let pos = _mm256_cmp_pd::<_CMP_GE_OQ>(x[k], zero);
            let (sig, sigc) = (
                _mm256_blendv_pd(ti, inv[k], pos),
                _mm256_blendv_pd(inv[k], ti, pos),
            );
            let omy = _mm256_sub_pd(one, yv[k]);
            let lin = _mm256_blendv_pd(
                _mm256_sub_pd(zero, _mm256_mul_pd(x[k], yv[k])),
                _mm256_mul_pd(omy, x[k]),
                pos,
            );
            l[k] = _mm256_and_pd(_mm256_add_pd(lin, l1p), keep[k]);
            acc[k % 2] = _mm256_add_pd(acc[k % 2], l[k]);
            // (1 - y) sigma - y (1 - sigma): no 1 - sigma rounding a tiny gradient away.
            let gk = _mm256_fmsub_pd(omy, sig, _mm256_mul_pd(yv[k], sigc));
            g[k] = _mm256_mul_pd(gk, gs);
        }
        (l, g)
    };
    // SAFETY (the loads and stores): `padded_blocks` hands over 4U elements behind each
    // pointer; the caller guarantees the arrays.
    unsafe {
        padded_blocks::<f64, { 4 * U }>(n, (xp, yp), pp, (dp, G), |sx, sy, sl, sg, r| {
            let keep: [__m256d; U] = std::array::from_fn(|k| {
                let m = r.saturating_sub(4 * k).min(4) as i64;
                let lane = _mm256_setr_epi64x(0, 1, 2, 3);
                _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_set1_epi64x(m), lane))
            });
            let x: [__m256d; U] = std::array::from_fn(|k| _mm256_loadu_pd(sx.add(4 * k)));
            let yv: [__m256d; U] = std::array::from_fn(|k| _mm256_loadu_pd(sy.add(4 * k)));
            let (l, g) = step(x, yv, keep);
            for k in 0..U {
                if let Some(sl) = sl {
                    _mm256_storeu_pd(sl.add(4 * k), l[k]);
                }
                if G {
                    _mm256_storeu_pd(sg.add(4 * k), g[k]);
                }
            }
        })
    };
    let s = _mm256_add_pd(acc[0], acc[1]);
    let h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd::<1>(s));
    _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// e^r by `taylor13` on the reduced range against libm: worst relative error below
    /// 5e-16.
    #[test]
    fn taylor13_accuracy() {
        if !is_x86_feature_detected!("avx2") || !is_x86_feature_detected!("fma") {
            return;
        }
        let mut worst: f64 = 0.0;
        let mut r = -0.3466;
        while r < 0.3466 {
            let v: [f64; 4] = std::array::from_fn(|i| r + i as f64 * 1e-5);
            let mut out = [0.0; 4];
            // SAFETY: AVX2 and FMA detected above; 4-element arrays.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), taylor13(_mm256_loadu_pd(v.as_ptr()))) };
            for i in 0..4 {
                let want = v[i].exp();
                worst = worst.max(((out[i] - want) / want).abs());
            }
            r += 4.3e-5;
        }
        // (Estrin's scheme rounds twice at the top: 4.3e-16 here, where Horner's in
        // `simd::exp` stays below 4e-16; Horner for the top terms cost 7-10%.)
        assert!(worst < 5e-16, "worst relative error {worst:e}");
    }
}
