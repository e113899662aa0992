//! float64 loss kernels on AVX-512: cross-entropy with index targets and the
//! Weston-Watkins / multi-margin hinge up to 16 classes, 8 rows at a time in the flat
//! layout (`Flat8`, `ce_group8`, `hinge_group8`), and binary cross-entropy with logits
//! (unweighted, no `pos_weight`, `bce_plain`).
//!
//! Why the group kernels: the generic small-class paths (`ce::ce_small_group`,
//! `hinge::hinge_small_group`) hold 16 rows one per lane, which costs a scalar transpose
//! in and out (for (262144, 10) a flat profile of ~5700 instructions per group with ~1100
//! stack accesses, perf) and a max reduction per row. Here 8 rows of c <= 16 values are c
//! full vectors, as `avx512_f32::group16` does in float32 (see there for the design and
//! its history); per-row values reach the lanes by one permute and per-row sums come back
//! through two-source permutes and one transposing reduction (`reduce8`).
//!
//! BCE: the generic element-wise kernel computes the same
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
use std::mem::MaybeUninit;

use super::avx512_f32::bits;
use super::ce::{ce_rows, ce_rows_range, CeCtx};
use super::elementwise::{padded_blocks, run, Extra, Kind};
use super::group::drive;
use super::hinge::{self, hinge_rows_range, Hinge, HingeCtx};
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
        let mut p = [zero; U];
        for k in 0..U {
            p[k] = taylor13(r[k]);
        }
        for k in 0..U {
            t[k] = _mm512_scalef_pd(p[k], nn[k]); // e^-|x| in [0, 1], or NaN
        }
        // log1p(t) and 1/(1 + t) (`log1p_parts`).
        let (mut inv, mut z, mut corr, mut e) = ([zero; U], [zero; U], [zero; U], [zero; U]);
        for k in 0..U {
            (e[k], z[k], corr[k], inv[k]) = log1p_parts(t[k]);
        }
        let mut z2 = [zero; U];
        for k in 0..U {
            z2[k] = _mm512_mul_pd(z[k], z[k]);
        }
        let mut q = [zero; U];
        for k in 0..U {
            q[k] = atanh11(z2[k]);
        }
        let (mut l, mut g) = ([zero; U], [zero; U]);
        for k in 0..U {
            let l1p = log1p_finish(e[k], z[k], corr[k], q[k]);
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

/// The parts of log1p(t) and 1/(1 + t) for t >= 0 (t < 1e300, or NaN), as
/// `simd::exp::log1p_unit` computes them: u = 1 + t = 2^e m with m in [sqrt(1/2),
/// sqrt(2)) (`vgetexppd` / `vgetmantpd`), D = 1/(u (m + 1)), 1/u = (m + 1) D,
/// z = (m - 1)/(m + 1) = (m - 1) u D, and the rounding error of 1 + t put back as
/// corr = (t - (u - 1))/u. Returns (e, z, corr, 1/u); [`log1p_finish`] adds up the
/// logarithm from the atanh series of z^2.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn log1p_parts(t: __m512d) -> (__m512d, __m512d, __m512d, __m512d) {
    let one = _mm512_set1_pd(1.0);
    let u = _mm512_add_pd(one, t);
    let m0 = _mm512_getmant_pd::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(u);
    let e0 = _mm512_getexp_pd(u);
    let big = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(m0, _mm512_set1_pd(std::f64::consts::SQRT_2));
    let m = _mm512_mask_mul_pd(m0, big, m0, _mm512_set1_pd(0.5));
    let e = _mm512_mask_add_pd(e0, big, e0, one);
    let mp = _mm512_add_pd(m, one);
    let d = _mm512_div_pd(one, _mm512_mul_pd(u, mp));
    let inv = _mm512_mul_pd(mp, d);
    let z = _mm512_mul_pd(_mm512_sub_pd(m, one), _mm512_mul_pd(u, d));
    let corr = _mm512_mul_pd(_mm512_sub_pd(t, _mm512_sub_pd(u, one)), inv);
    (e, z, corr, inv)
}

/// The atanh series sum_k ATANH[k] w^k (degree 11, w = z^2, [`log1p_parts`]) by
/// Estrin's scheme.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn atanh11(w: __m512d) -> __m512d {
    let c = |k: usize| _mm512_set1_pd(ATANH[k]);
    let pair = |k: usize| _mm512_fmadd_pd(c(k + 1), w, c(k));
    let w2 = _mm512_mul_pd(w, w);
    let w4 = _mm512_mul_pd(w2, w2);
    let w8 = _mm512_mul_pd(w4, w4);
    let q0 = _mm512_fmadd_pd(pair(2), w2, pair(0));
    let q1 = _mm512_fmadd_pd(pair(6), w2, pair(4));
    let q2 = _mm512_fmadd_pd(pair(10), w2, pair(8));
    _mm512_fmadd_pd(q2, w8, _mm512_fmadd_pd(q1, w4, q0))
}

/// log1p = e ln2 + z q + corr, with q the atanh series of z^2 (see [`log1p_parts`]).
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn log1p_finish(e: __m512d, z: __m512d, corr: __m512d, q: __m512d) -> __m512d {
    _mm512_fmadd_pd(e, _mm512_set1_pd(LN2), _mm512_fmadd_pd(z, q, corr))
}

/// Lane maps for 8 rows of c <= 16 float64 values held as c vectors (the flat layout):
/// vector k holds elements 8k..8k + 8 of the group.
struct Flat8 {
    c: usize,
    /// lane i of flat vector k: its row, (8k + i) / c (a `permutexvar` index that
    /// broadcasts per-row values, held in row order, to the flat lanes)
    row_of: [__m512i; 16],
    /// lane i of flat vector k: its class, (8k + i) % c
    col_of: [__m512i; 16],
    /// row r's first element is lane `(r c) % 8` of flat vector `first[r]`; lane j of
    /// `permutex2var(v[first], pick[r], v[first + 1])` is the row's element j (j < 8, j < c)
    /// and the same index on `(v[first + 1], v[first + 2])` gives its element 8 + j
    pick: [__m512i; 8],
    first: [usize; 8],
    /// lane j: j c, the offset of row j's first element
    starts: __m512i,
}

impl Flat8 {
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn new(c: usize) -> Flat8 {
        let zero = _mm512_setzero_si512();
        let (mut row_of, mut col_of, mut pick) = ([zero; 16], [zero; 16], [zero; 8]);
        let mut first = [0; 8];
        // SAFETY (the loads): 8-element arrays of i64.
        let load = |a: [i64; 8]| unsafe { _mm512_loadu_si512(a.as_ptr().cast()) };
        for k in 0..c {
            row_of[k] = load(std::array::from_fn(|i| ((8 * k + i) / c) as i64));
            col_of[k] = load(std::array::from_fn(|i| ((8 * k + i) % c) as i64));
        }
        for r in 0..8 {
            first[r] = r * c / 8;
            // Lanes past the row's end are masked off by the callers; o + j <= 14.
            pick[r] = load(std::array::from_fn(|j| (r * c % 8 + j) as i64));
        }
        Flat8 {
            c,
            row_of,
            col_of,
            pick,
            first,
            starts: load(std::array::from_fn(|j| (j * c) as i64)),
        }
    }

    /// Row r's c values from the flat vectors `v` (written for 0..c, zero at c and
    /// c + 1), lanes 0..min(c, 8); for c > 8 the second register holds values 8..c.
    ///
    /// # Safety
    /// `v[0..c + 2]` are written.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    unsafe fn row(&self, v: &[MaybeUninit<__m512d>; 18], r: usize) -> __m512d {
        let (c, k) = (self.c, self.first[r]);
        // SAFETY: k + 2 <= c + 1 (r c / 8 <= c - 1): the caller's guarantee.
        let at = |i: usize| unsafe { v[i].assume_init() };
        if c <= 8 {
            let lo = ((1u32 << c) - 1) as __mmask8;
            return _mm512_maskz_permutex2var_pd(lo, at(k), self.pick[r], at(k + 1));
        }
        let hi = ((1u32 << (c - 8)) - 1) as __mmask8;
        _mm512_add_pd(
            _mm512_permutex2var_pd(at(k), self.pick[r], at(k + 1)),
            _mm512_maskz_permutex2var_pd(hi, at(k + 1), self.pick[r], at(k + 2)),
        )
    }
}

/// The 8 row sums of flat vectors (`Flat8::row`), lane r for row r: 7 combining steps
/// of two shuffles and one add. Rows are taken in the order 0, 2, 4, 6, 1, 3, 5, 7, which
/// puts the sums in row order. (A macro: as a function taking the row closure it was
/// not inlined, a call per group and the closure's per row.)
macro_rules! row_sums {
    ($fl:expr, $v:expr) => {{
        let (fl, v) = (&$fl, &$v);
        // SAFETY: the caller of the macro wrote v[0..c + 2].
        let row = |r: usize| unsafe { fl.row(v, r) };
        // Two rows -> one register, 4 lanes each (256-bit halves).
        let half = |a: __m512d, b: __m512d| {
            _mm512_add_pd(
                _mm512_shuffle_f64x2::<0x44>(a, b),
                _mm512_shuffle_f64x2::<0xEE>(a, b),
            )
        };
        // Two of those -> one register, 2 lanes (one 128-bit block) per row.
        let quarter = |a: __m512d, b: __m512d| {
            _mm512_add_pd(
                _mm512_shuffle_f64x2::<0x88>(a, b),
                _mm512_shuffle_f64x2::<0xDD>(a, b),
            )
        };
        let even = quarter(half(row(0), row(2)), half(row(4), row(6))); // rows 0, 2, 4, 6
        let odd = quarter(half(row(1), row(3)), half(row(5), row(7))); // rows 1, 3, 5, 7
        _mm512_add_pd(_mm512_unpacklo_pd(even, odd), _mm512_unpackhi_pd(even, odd))
    }};
}

/// x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, n HI exact for |n| < 2^11, i.e.
/// |x| < 1419) and p = e^r by the degree-13 Taylor polynomial: e^x = 2^n p.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn exp_parts(x: __m512d) -> (__m512d, __m512d) {
    let (n, r) = reduce_ln2(x);
    (n, taylor13(r))
}

/// x = n ln2 + r (see [`exp_parts`]); returns (n, r).
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn reduce_ln2(x: __m512d) -> (__m512d, __m512d) {
    let n = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_pd(x, _mm512_set1_pd(std::f64::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_pd(n, _mm512_set1_pd(LN2_HI), x);
    (n, _mm512_fnmadd_pd(n, _mm512_set1_pd(LN2_LO), r))
}

/// e^r for |r| <= 0.35 (degree-13 Taylor, truncation below 5e-18 relative), evaluated
/// by Estrin's scheme: a dependency chain of 5 operations instead of Horner's 13.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn taylor13(r: __m512d) -> __m512d {
    let c = |k: usize| _mm512_set1_pd(TAYLOR13[k]);
    let pair = |k: usize| _mm512_fmadd_pd(c(k + 1), r, c(k));
    let r2 = _mm512_mul_pd(r, r);
    let r4 = _mm512_mul_pd(r2, r2);
    let r8 = _mm512_mul_pd(r4, r4);
    let q0 = _mm512_fmadd_pd(pair(2), r2, pair(0)); // terms 0-3
    let q1 = _mm512_fmadd_pd(pair(6), r2, pair(4)); // 4-7 (/ r^4)
    let q2 = _mm512_fmadd_pd(pair(10), r2, pair(8)); // 8-11 (/ r^8)
    let q2 = _mm512_fmadd_pd(pair(12), r4, q2); // 8-13 (/ r^8)
    _mm512_fmadd_pd(q2, r8, _mm512_fmadd_pd(q1, r4, q0))
}

/// Target logits within this range take `ce_group8`; the clamps below keep every
/// reduction within Cody-Waite's exact range (|x| < 1419).
const GROUP_MAX: f64 = 512.0;
/// Logits are clamped up to this: e^(-1280 - x_y) is 0 in float64 for every target logit
/// x_y >= -GROUP_MAX (as e^(x - x_y) is for the clamped x).
const GROUP_FLOOR: f64 = -1280.0;
/// Logits are clamped down to this: e^(1248 - x_y) overflows float64 for every target
/// logit x_y <= GROUP_MAX (as e^(x - x_y) does for the clamped x; the group hands over).
const GROUP_CEIL: f64 = 1248.0;

/// The values `x[j][cls[j]]` of the 8 rows at `xb` (`cls[j]` in `[0, c)`, 0 for rows
/// the caller masks off). Eight scalar loads: the `vgatherqpd` this replaced was the
/// group's largest stall (a fifth of its samples; software prefetch did not help).
///
/// # Safety
/// AVX-512F; 8 rows of `fl.c` values readable at `xb`; every `cls[j]` in `[0, c)`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn pick8(xb: *const f64, fl: &Flat8, cls: __m512i) -> __m512d {
    let mut pos = [0i64; 8];
    // SAFETY: an 8-element array.
    unsafe { _mm512_storeu_si512(pos.as_mut_ptr().cast(), _mm512_add_epi64(fl.starts, cls)) };
    // SAFETY: j c + cls[j] < 8 c (the caller's guarantee).
    let at = |j: usize| unsafe { *xb.add(pos[j] as usize) };
    _mm512_setr_pd(at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7))
}

/// The class weights `w[cls[j]]` of 8 rows; 1 without weights.
///
/// # Safety
/// AVX-512F; every `cls[j]` indexes `weight`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn weights8(weight: Option<&[f64]>, cls: __m512i) -> __m512d {
    match weight {
        None => _mm512_set1_pd(1.0),
        // SAFETY: the caller's guarantee.
        Some(w) => unsafe { _mm512_i64gather_pd::<8>(cls, w.as_ptr().cast()) },
    }
}

/// Cross-entropy rows (index targets) of float64 logits on AVX-512: up to 16 classes 8
/// rows at a time (`ce_group8`); more classes, label smoothing, the last rows of a task
/// and the groups `ce_group8` declines take the generic paths. `dst` (when `G`) holds the
/// gradient rows, possibly the memory of `x` (in place).
///
/// # Safety
/// AVX-512F (the caller is the AVX-512 dispatch level).
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn ce_rows_f64<S: Src<f64> + ?Sized, const G: bool>(
    x: &S,
    dst: &[Cell<f64>],
    targets: &[i64],
    ctx: &CeCtx<'_>,
    losses: &mut [f64],
) {
    let c = ctx.c;
    if ctx.eps != 0.0 || c > 16 {
        return ce_rows::<f64, S, true, G>(x, dst, targets, ctx, losses);
    }
    let rows = targets.len();
    assert!(x.n() >= rows * c && losses.len() >= rows && (!G || dst.len() >= rows * c));
    let (xp, dp) = (x.base(), dst.as_ptr() as *mut f64);
    let fl = Flat8::new(c);
    // SAFETY: a scratch group holds 8 rows of c; AVX-512F is enabled here.
    let mut grp = |xs: &[f64], ds: &[Cell<f64>], ts: &[i64], ls: &mut [f64]| unsafe {
        ce_group8::<G>(xs.as_ptr(), ds.as_ptr() as *mut f64, &fl, 0, ts, ctx, ls)
    };
    let mut generic = |r: usize, l: &mut [f64]| {
        ce_rows_range::<f64, S, true, G>(x, dst, targets, ctx, l, r, r + 1)
    };
    // SAFETY: rows r0..r0+8 are in bounds (asserted above); targets were checked by
    // `prepare`; AVX-512F is enabled here.
    let mut main = |r0: usize, l: &mut [f64]| unsafe {
        ce_group8::<G>(xp, dp, &fl, r0, &targets[r0..r0 + 8], ctx, l)
    };
    drive::<f64, S, G>(
        8,
        c,
        x,
        dst,
        targets,
        losses,
        &mut main,
        &mut grp,
        &mut generic,
    );
}

/// 8 full rows (from `r0`) of c <= 16 float64 logits in the flat layout (`Flat8`),
/// each shifted by its target logit as `avx512_f32::group16` does (see there):
///   loss = log1p(t),  t = sum_{i != y} e^(x_i - x_y),
///   softmax = e^(x_i - x_y) / (1 + t),  p_y - 1 = -t / (1 + t),
/// with e^(x_i - x_y) = 2^(n_i - n_y) e^(r_i) e^(-r_y) from x = n ln2 + r reduced from each
/// x itself (exactly), so no rounded x - x_y; the flat lanes compute 2^(n_i - n_y) e^(r_i)
/// (rounded once by `vscalefpd`, also when subnormal) and the row's Q = e^(-r_y) scales
/// the sums and the gradient. The accuracy of the max shift is kept: a confident row has
/// a tiny t with full relative accuracy, and a row whose target is not its max has t >= 1.
///
/// Returns false, writing nothing, when a target logit lies outside +-`GROUP_MAX` (or is
/// NaN), or a row's t is not below 1e300: a NaN in the row, +inf, or a logit more than
/// about 690 above the target's (the generic path takes those rows). Ignored rows are
/// shifted by `GROUP_MAX`; their loss and gradient are 0. In place (`dp` == `xp`): every
/// read of x happens before the first write.
///
/// # Safety
/// AVX-512F; rows `r0..r0 + 8` of `fl.c <= 16` values readable at `xp` (and writable at
/// `dp` when `G`); 8 targets in `[0, c)` or `ctx.ignore_index`; `losses` holds 8.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn ce_group8<const G: bool>(
    xp: *const f64,
    dp: *mut f64,
    fl: &Flat8,
    r0: usize,
    tg: &[i64],
    ctx: &CeCtx<'_>,
    losses: &mut [f64],
) -> bool {
    let c = fl.c;
    // SAFETY: the caller guarantees the 8 rows and targets.
    let (xb, db) = unsafe { (xp.add(r0 * c), dp.wrapping_add(r0 * c)) };
    let t = unsafe { _mm512_loadu_si512(tg.as_ptr().cast()) };
    // Live rows; their classes (0 for ignored rows, whose lanes are not used); the class
    // to match (-1: none); the target logits and weights.
    let live = _mm512_cmpneq_epi64_mask(t, _mm512_set1_epi64(ctx.ignore_index));
    let tsel = _mm512_maskz_mov_epi64(live, t);
    let tmatch = _mm512_mask_mov_epi64(_mm512_set1_epi64(-1), live, t);
    // SAFETY: the 8 rows; classes < c.
    let xy = unsafe { pick8(xb, fl, tsel) };
    let xy = _mm512_mask_mov_pd(_mm512_set1_pd(GROUP_MAX), live, xy);
    // (A NaN fails the compare.)
    if _mm512_cmp_pd_mask::<_CMP_LE_OQ>(_mm512_abs_pd(xy), _mm512_set1_pd(GROUP_MAX)) != 0xFF {
        return false;
    }
    let (ny, ry) = reduce_ln2(xy);
    let q = taylor13(_mm512_sub_pd(_mm512_setzero_pd(), ry)); // e^(-r_y)
                                                              // SAFETY: classes < c index the c weights.
    let wy = _mm512_maskz_mov_pd(live, unsafe { weights8(ctx.weight, tsel) });
    let zero = _mm512_setzero_pd();
    // e' of the flat vectors, and with the targets' lanes zeroed (en[c], en[c + 1] are
    // the zero vectors `Flat8::row` may name). Only vectors 0..c + 2 are written and read
    // (zero-filling the arrays was a memset of 1 KiB per group).
    let mut ev = [MaybeUninit::<__m512d>::uninit(); 16];
    let mut en = [MaybeUninit::<__m512d>::uninit(); 18];
    en[c].write(zero);
    en[c + 1].write(zero);
    let mut tms = [0 as __mmask8; 16];
    for k in 0..c {
        // SAFETY: flat vector k lies within the group's 8 c values.
        let x = unsafe { _mm512_loadu_pd(xb.add(8 * k)) };
        let ri = fl.row_of[k];
        // Clamped to [GROUP_FLOOR, GROUP_CEIL] (max_pd / min_pd return their second
        // operand when either is NaN: x second keeps a NaN).
        let xc = _mm512_min_pd(
            _mm512_set1_pd(GROUP_CEIL),
            _mm512_max_pd(_mm512_set1_pd(GROUP_FLOOR), x),
        );
        let (n, p) = exp_parts(xc);
        let e = _mm512_scalef_pd(p, _mm512_sub_pd(n, _mm512_permutexvar_pd(ri, ny)));
        let tm = _mm512_cmpeq_epi64_mask(fl.col_of[k], _mm512_permutexvar_epi64(ri, tmatch));
        tms[k] = tm;
        ev[k].write(e);
        en[k].write(_mm512_maskz_mov_pd(!tm, e));
    }
    let tv = _mm512_mul_pd(row_sums!(fl, en), q);
    // (NaN fails the compare.)
    if _mm512_cmp_pd_mask::<_CMP_LT_OQ>(tv, _mm512_set1_pd(1e300)) != 0xFF {
        return false;
    }
    let (e, z, corr, inv) = log1p_parts(tv);
    let s = atanh11(_mm512_mul_pd(z, z));
    // 0 for ignored rows (w = 0, t finite).
    let loss = _mm512_mul_pd(wy, log1p_finish(e, z, corr, s));
    // SAFETY: 8 losses (the caller's guarantee).
    unsafe { _mm512_storeu_pd(losses.as_mut_ptr(), loss) };
    if G {
        // Ignored rows have w = 0: a = 0, and no lane matches their class.
        let gw = _mm512_mul_pd(_mm512_set1_pd(ctx.g), wy);
        let a = _mm512_mul_pd(_mm512_mul_pd(gw, q), inv);
        let gt = _mm512_sub_pd(zero, _mm512_mul_pd(gw, _mm512_mul_pd(tv, inv)));
        for k in 0..c {
            let ri = fl.row_of[k];
            // SAFETY: written for every k < c above.
            let g = _mm512_mul_pd(unsafe { ev[k].assume_init() }, _mm512_permutexvar_pd(ri, a));
            let g = _mm512_mask_permutexvar_pd(g, tms[k], ri, gt);
            // SAFETY: flat vector k of the group's gradient rows (every read of x is done).
            unsafe { _mm512_storeu_pd(db.add(8 * k), g) };
        }
    }
    true
}

/// Weston-Watkins / multi-margin hinge rows of float64 scores on AVX-512: up to 16
/// classes 8 rows at a time (`hinge_group8`); more classes, Crammer-Singer and the last
/// rows of a task take the generic paths.
///
/// # Safety
/// AVX-512F and POPCNT (the AVX-512 dispatch level).
#[target_feature(enable = "avx512f,avx2,fma,popcnt")]
pub(crate) unsafe fn hinge_rows_f64<S: Src<f64> + ?Sized, const G: bool>(
    x: &S,
    dst: &[Cell<f64>],
    targets: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
) {
    let c = h.c;
    if c > 16 || h.kind == Hinge::CrammerSinger {
        return hinge::hinge_rows::<f64, S, G>(x, dst, targets, h, losses);
    }
    let rows = targets.len();
    assert!(x.n() >= rows * c && losses.len() >= rows && (!G || dst.len() >= rows * c));
    let (xp, dp) = (x.base(), dst.as_ptr() as *mut f64);
    let fl = Flat8::new(c);
    // SAFETY: a scratch group holds 8 rows of c; AVX-512F and POPCNT are enabled here.
    let mut grp = |xs: &[f64], ds: &[Cell<f64>], ts: &[i64], ls: &mut [f64]| {
        unsafe { hinge_group8::<G>(xs.as_ptr(), ds.as_ptr() as *mut f64, &fl, 0, ts, h, ls) };
        true
    };
    let mut generic =
        |r: usize, l: &mut [f64]| hinge_rows_range::<f64, S, G>(x, dst, targets, h, l, r, r + 1);
    // SAFETY: rows r0..r0+8 are in bounds (asserted above); targets in [0, c)
    // (checked by `hinge`); AVX-512F and POPCNT are enabled here.
    let mut main = |r0: usize, l: &mut [f64]| {
        unsafe { hinge_group8::<G>(xp, dp, &fl, r0, &targets[r0..r0 + 8], h, l) };
        true
    };
    drive::<f64, S, G>(
        8,
        c,
        x,
        dst,
        targets,
        losses,
        &mut main,
        &mut grp,
        &mut generic,
    );
}

/// 8 full rows (from `r0`) of c <= 16 float64 scores for the Weston-Watkins and torch
/// multi-margin hinge (p = 1 or 2) in the flat layout (`Flat8`), with the generic row's
/// formulas: z = (margin - x_y) + x_i, a violator when z > 0 or NaN (as torch) and not
/// the target; the loss sc sum z^p (sc = w_y / C for multi-margin, w_y otherwise), the
/// gradient g sc (p = 1) or 2 g sc z (p = 2) on the violators and minus their sum on the
/// target. Per-row sums through `reduce8`, violator counts from the compare masks. No
/// input needs the generic path: inf and NaN follow the same formulas. In place, every
/// read precedes every write.
///
/// # Safety
/// AVX-512F and POPCNT; rows `r0..r0 + 8` of `fl.c <= 16` values readable at `xp`
/// (writable at `dp` when `G`); 8 targets in `[0, c)`; `losses` holds 8.
#[target_feature(enable = "avx512f,avx2,fma,popcnt")]
unsafe fn hinge_group8<const G: bool>(
    xp: *const f64,
    dp: *mut f64,
    fl: &Flat8,
    r0: usize,
    tg: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
) {
    let c = fl.c;
    let sq = h.p == 2;
    // SAFETY: the caller guarantees the 8 rows and targets.
    let (xb, db) = unsafe { (xp.add(r0 * c), dp.wrapping_add(r0 * c)) };
    let t = unsafe { _mm512_loadu_si512(tg.as_ptr().cast()) };
    let xy = unsafe { pick8(xb, fl, t) };
    let mxy = _mm512_sub_pd(_mm512_set1_pd(h.margin), xy);
    let div = if h.kind == Hinge::MultiMargin {
        c as f64
    } else {
        1.0
    };
    // SAFETY: targets < c index the c weights.
    let sc = _mm512_div_pd(unsafe { weights8(h.weight, t) }, _mm512_set1_pd(div));
    let zero = _mm512_setzero_pd();
    // z^p of the violators (and z for p = 2: the target's gradient), flat; vectors
    // 0..c + 2 written (as `ce_group8`'s).
    let mut zp = [MaybeUninit::<__m512d>::uninit(); 18];
    let mut zs = [MaybeUninit::<__m512d>::uninit(); 18];
    for v in [&mut zp, &mut zs] {
        v[c].write(zero);
        v[c + 1].write(zero);
    }
    let (mut act, mut tms) = ([0 as __mmask8; 16], [0 as __mmask8; 16]);
    let mut aw = [0u64; 4];
    for k in 0..c {
        // SAFETY: flat vector k lies within the group's 8 c values.
        let x = unsafe { _mm512_loadu_pd(xb.add(8 * k)) };
        let ri = fl.row_of[k];
        let z = _mm512_add_pd(_mm512_permutexvar_pd(ri, mxy), x);
        let tm = _mm512_cmpeq_epi64_mask(fl.col_of[k], _mm512_permutexvar_epi64(ri, t));
        // z > 0 or NaN, never the target's own lane.
        let a = _mm512_mask_cmp_pd_mask::<_CMP_NLE_UQ>(!tm, z, zero);
        (act[k], tms[k]) = (a, tm);
        let zk = _mm512_maskz_mov_pd(a, z);
        if sq {
            zs[k].write(zk);
            zp[k].write(_mm512_mul_pd(zk, zk));
        } else {
            zp[k].write(zk);
            aw[k / 8] |= (a as u64) << (8 * (k % 8));
        }
    }
    let total = row_sums!(fl, zp);
    // SAFETY: 8 losses (the caller's guarantee).
    unsafe { _mm512_storeu_pd(losses.as_mut_ptr(), _mm512_mul_pd(sc, total)) };
    if G {
        let gsc = _mm512_mul_pd(_mm512_set1_pd(h.g), sc);
        // The violators' gradient per row (p = 1) or its factor of z (p = 2), and the
        // target's: minus the sum of the others.
        let (gv, gy) = if sq {
            let g2 = _mm512_add_pd(gsc, gsc);
            (
                g2,
                _mm512_sub_pd(zero, _mm512_mul_pd(g2, row_sums!(fl, zs))),
            )
        } else {
            let cnt: [f64; 8] = std::array::from_fn(|j| bits(&aw, j * c, c).count_ones() as f64);
            // SAFETY: an 8-element array.
            let cnt = unsafe { _mm512_loadu_pd(cnt.as_ptr()) };
            (gsc, _mm512_sub_pd(zero, _mm512_mul_pd(gsc, cnt)))
        };
        for k in 0..c {
            let ri = fl.row_of[k];
            let g = if sq {
                // SAFETY: written for every k < c above (p = 2).
                _mm512_mul_pd(
                    unsafe { zs[k].assume_init() },
                    _mm512_permutexvar_pd(ri, gv),
                )
            } else {
                _mm512_maskz_permutexvar_pd(act[k], ri, gv)
            };
            let g = _mm512_mask_permutexvar_pd(g, tms[k], ri, gy);
            // SAFETY: flat vector k of the group's gradient rows (every read of x is done).
            unsafe { _mm512_storeu_pd(db.add(8 * k), g) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// e^r by `taylor13` (and e^x by `exp_parts` with its scale) against libm, like
    /// `simd::exp`'s own accuracy test: worst relative error below 5e-16.
    #[test]
    fn exp_accuracy() {
        if !is_x86_feature_detected!("avx512f") {
            return;
        }
        let mut worst: f64 = 0.0;
        let mut x = -700.0;
        while x < 700.0 {
            let v: [f64; 8] = std::array::from_fn(|i| x + i as f64 * 0.0013);
            let mut out = [0.0; 8];
            // SAFETY: AVX-512F detected above; 8-element arrays.
            unsafe {
                let (n, p) = exp_parts(_mm512_loadu_pd(v.as_ptr()));
                _mm512_storeu_pd(out.as_mut_ptr(), _mm512_scalef_pd(p, n));
            }
            for i in 0..8 {
                let want = v[i].exp();
                worst = worst.max(((out[i] - want) / want).abs());
            }
            x += 0.0137 * 8.0;
        }
        // (Estrin's scheme rounds twice at the top: 4.3e-16 here, where Horner's in
        // `simd::exp` stays below 4e-16; Horner for the top terms cost 7-10%.)
        assert!(worst < 5e-16, "worst relative error {worst:e}");
    }
}
