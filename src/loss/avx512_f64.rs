//! float64 binary cross-entropy with logits on AVX-512 (unweighted, no `pos_weight`).
//!
//! Why a hand-written kernel: the generic element-wise kernel computes the same
//! formulas 16 lanes at a time (two registers), and one block's chain (exp, log1p with a
//! division, the series) is latency-bound: the out-of-order window does not reach far
//! enough ahead to overlap the next blocks. Here four registers go through each stage in
//! turn (as `avx512_f32::bce_plain` does for float32), with the split of 1 + t into
//! exponent and mantissa by `vgetexppd` / `vgetmantpd` and the scale by `vscalefpd`
//! (which rounds a subnormal e^-|x| once).
//!
//! The formulas and their accuracy are the generic kernel's (`elementwise::block`, Bce):
//! t = e^-|x| by Cody-Waite and the degree-13 Taylor polynomial; log1p(t) and 1/(1 + t)
//! from one division (`simd::exp::log1p_unit`, 11 atanh terms); the loss (1 - y) x +
//! log1p(t) for x >= 0, log1p(t) - x y below (for y in [0, 1] no cancellation; -x y
//! rather than the generic x (1 - y - 1), which loses a tiny y); the gradient
//! (1 - y) sigma - y (1 - sigma), each sigma without cancellation.

use std::arch::x86_64::*;
use std::cell::Cell;

use super::elementwise::{padded_blocks, run, Extra, Kind};
use crate::ops::kernel::Src;
use crate::simd::exp::{ATANH, LN2, LN2_HI, LN2_LO, TAYLOR13};

/// Element-wise losses of float64 data on AVX-512: BCE with logits without `weight`
/// and `pos_weight` in [`bce_plain`]; the other kinds and options take the generic
/// kernel (`elementwise::run`), compiled here for AVX-512. `x` may be `dst` itself.
///
/// # Safety
/// AVX-512F (with AVX2 and FMA).
#[target_feature(enable = "avx512f,avx2,fma")]
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
        // SAFETY: AVX-512F is enabled here; lengths asserted above.
        unsafe { bce_plain::<G>(x.base(), y, per, dst, gscale) }
    } else {
        run::<f64, S, true, G>(kind, x, y, ex, off, per, dst, gscale)
    }
}

/// Registers per step of [`bce_plain`].
const U: usize = 4;

/// The sum of the BCE losses of `y.len()` float64 logits at `xp` and targets `y`; writes
/// them to `per` when given, and the gradient times `gscale` to `dst` when `G`. Each
/// block is loaded before it is stored, so `xp` may be `dst`.
///
/// # Safety
/// AVX-512F; `y.len()` elements readable at `xp`, and in `per` and (when `G`) `dst`.
#[target_feature(enable = "avx512f,avx2,fma")]
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
    let gs = _mm512_set1_pd(gscale);
    let mut acc = [_mm512_setzero_pd(); 2];
    let mut step = |x: [__m512d; U], yv: [__m512d; U], keep: [__mmask8; U]| {
        let one = _mm512_set1_pd(1.0);
        let zero = _mm512_setzero_pd();
        let sign = _mm512_castpd_si512(_mm512_set1_pd(-0.0));
        let (mut t, mut nn, mut r) = ([zero; U], [zero; U], [zero; U]);
        for k in 0..U {
            // -|x| (NaN stays NaN), floored at -746 (max_pd returns its second operand
            // when either is NaN: the NaN second keeps it); e^-746 rounds to 0.
            let a = _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(x[k]), sign));
            r[k] = _mm512_max_pd(_mm512_set1_pd(-746.0), a);
            nn[k] = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_mul_pd(r[k], _mm512_set1_pd(std::f64::consts::LOG2_E)),
            );
        }
        for k in 0..U {
            r[k] = _mm512_fnmadd_pd(nn[k], _mm512_set1_pd(LN2_HI), r[k]);
        }
        for k in 0..U {
            r[k] = _mm512_fnmadd_pd(nn[k], _mm512_set1_pd(LN2_LO), r[k]);
        }
        let mut p = [_mm512_set1_pd(TAYLOR13[13]); U];
        for c in TAYLOR13[..13].iter().rev() {
            for k in 0..U {
                p[k] = _mm512_fmadd_pd(p[k], r[k], _mm512_set1_pd(*c));
            }
        }
        for k in 0..U {
            t[k] = _mm512_scalef_pd(p[k], nn[k]); // e^-|x| in [0, 1], or NaN
        }
        // log1p(t) and 1/(1 + t) as `log1p_unit`: u = 1 + t = 2^e m with m in
        // [sqrt(1/2), sqrt(2)), D = 1/(u (m + 1)), 1/u = (m + 1) D, z = (m - 1)/(m + 1)
        // = (m - 1) u D, and the rounding error of 1 + t added back as (t - (u - 1))/u.
        let (mut inv, mut z, mut corr, mut e) = ([zero; U], [zero; U], [zero; U], [zero; U]);
        for k in 0..U {
            let u = _mm512_add_pd(one, t[k]);
            let m0 = _mm512_getmant_pd::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(u);
            let e0 = _mm512_getexp_pd(u);
            let big =
                _mm512_cmp_pd_mask::<_CMP_GT_OQ>(m0, _mm512_set1_pd(std::f64::consts::SQRT_2));
            let m = _mm512_mask_mul_pd(m0, big, m0, _mm512_set1_pd(0.5));
            e[k] = _mm512_mask_add_pd(e0, big, e0, one);
            let mp = _mm512_add_pd(m, one);
            let d = _mm512_div_pd(one, _mm512_mul_pd(u, mp));
            inv[k] = _mm512_mul_pd(mp, d);
            z[k] = _mm512_mul_pd(_mm512_sub_pd(m, one), _mm512_mul_pd(u, d));
            corr[k] = _mm512_mul_pd(_mm512_sub_pd(t[k], _mm512_sub_pd(u, one)), inv[k]);
        }
        let mut z2 = [zero; U];
        for k in 0..U {
            z2[k] = _mm512_mul_pd(z[k], z[k]);
        }
        let mut q = [_mm512_set1_pd(ATANH[11]); U];
        for c in ATANH[..11].iter().rev() {
            for k in 0..U {
                q[k] = _mm512_fmadd_pd(q[k], z2[k], _mm512_set1_pd(*c));
            }
        }
        let (mut l, mut g) = ([zero; U], [zero; U]);
        for k in 0..U {
            let l1p = _mm512_fmadd_pd(
                e[k],
                _mm512_set1_pd(LN2),
                _mm512_fmadd_pd(z[k], q[k], corr[k]),
            );
            let ti = _mm512_mul_pd(t[k], inv[k]);
            let pos = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(x[k], zero);
            let (sig, sigc) = (
                _mm512_mask_mov_pd(ti, pos, inv[k]),
                _mm512_mask_mov_pd(inv[k], pos, ti),
            );
            let omy = _mm512_sub_pd(one, yv[k]);
            let lin = _mm512_mask_mov_pd(
                _mm512_sub_pd(zero, _mm512_mul_pd(x[k], yv[k])),
                pos,
                _mm512_mul_pd(omy, x[k]),
            );
            l[k] = _mm512_maskz_add_pd(keep[k], lin, l1p);
            acc[k % 2] = _mm512_add_pd(acc[k % 2], l[k]);
            // (1 - y) sigma - y (1 - sigma): no 1 - sigma rounding a tiny gradient away.
            let gk = _mm512_fmsub_pd(omy, sig, _mm512_mul_pd(yv[k], sigc));
            g[k] = _mm512_mul_pd(gk, gs);
        }
        (l, g)
    };
    // SAFETY (the loads and stores): `padded_blocks` hands over 8U elements behind each
    // pointer; the caller guarantees the arrays.
    unsafe {
        padded_blocks::<f64, { 8 * U }>(n, (xp, yp), pp, (dp, G), |sx, sy, sl, sg, r| {
            let keep: [__mmask8; U] = std::array::from_fn(|k| {
                let m = r.saturating_sub(8 * k).min(8);
                ((1u32 << m) - 1) as __mmask8
            });
            let x: [__m512d; U] = std::array::from_fn(|k| _mm512_loadu_pd(sx.add(8 * k)));
            let yv: [__m512d; U] = std::array::from_fn(|k| _mm512_loadu_pd(sy.add(8 * k)));
            let (l, g) = step(x, yv, keep);
            for k in 0..U {
                if let Some(sl) = sl {
                    _mm512_storeu_pd(sl.add(8 * k), l[k]);
                }
                if G {
                    _mm512_storeu_pd(sg.add(8 * k), g[k]);
                }
            }
        })
    };
    _mm512_reduce_add_pd(_mm512_add_pd(acc[0], acc[1]))
}
