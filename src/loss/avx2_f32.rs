//! float32 loss kernels on AVX2 + FMA: cross-entropy (index targets; 8 rows at a time up
//! to 16 classes, one row in float32 lanes above), the Weston-Watkins / multi-margin hinge
//! (8 rows at a time up to 16 classes with p = 1; one row in float32 lanes above 32
//! classes) and unweighted binary cross-entropy with logits.
//!
//! Why: the generic kernels compute float32 data in float64 lanes, 4 per AVX2 register;
//! here a register holds 8 float32 lanes, which halves the exp work of cross-entropy and
//! BCE and the compare work of the hinge, and the small-class groups avoid the generic
//! path's scalar transposes into float64 lanes. CPUs without AVX-512 (AMD Zen 2 and 3, many Intel
//! client parts) run this level; measured on an AMD EPYC (Zen 3) with
//! `python benches/bench_losses.py`, see the README. The row kernels follow
//! `avx512_f32`'s (same accuracy argument, same tests: `float32_rows_every_level` and
//! `hinge_float32_wide_rows_every_level` run on every level); what differs is AVX2's
//! lack of mask registers (lanes are selected by vector masks and `maskload` /
//! `maskstore`), of `vscalefps` (see [`exp_neg`], [`scale2`]) and of two-source
//! permutes (the cross-entropy group gathers its rows' sums through a stack buffer).
//! Cross-entropy group, forced to this level on an AVX-512 machine (Zen 5), single
//! thread, (262144, 10): one row per register with the max shift 4.5 ms forward+gradient
//! (forward 3.8 ms); flat layout with the target shift 3.0 ms (2.4 ms).

use std::arch::x86_64::*;
use std::cell::Cell;
use std::mem::MaybeUninit;

use super::ce::{ce_rows, f32_rows_by_row, CeCtx};
use super::elementwise::{f32_level, padded_blocks, Extra, Kind};
use super::group::drive;
use super::hinge::{f32_threshold, hinge_rows_f32, hinge_rows_range, Hinge, HingeCtx};
use crate::ops::kernel::Src;
use crate::simd::exp::{
    log1p_pos, log1p_unit, EXP7_F32, LN2_HI_F32, LN2_LO_F32, LOG1P_UNIT9, POLY6,
};

/// All-ones in the lanes whose bit is set in `bits` (bit j: lane j).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn lanes(bits: u32) -> __m256 {
    let b = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let v = _mm256_and_si256(_mm256_set1_epi32(bits as i32), b);
    _mm256_castsi256_ps(_mm256_cmpeq_epi32(v, b))
}

/// The first `n <= 8` elements at `p`, zeros after them.
///
/// # Safety
/// `n` elements readable at `p`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load_tail(p: *const f32, n: usize) -> __m256 {
    // SAFETY: maskload reads only the lanes selected (the first n).
    unsafe { _mm256_maskload_ps(p, _mm256_castps_si256(lanes((1u32 << n) - 1))) }
}

/// Store the first `n <= 8` lanes of `v` at `p`.
///
/// # Safety
/// `n` elements writable at `p`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store_tail(p: *mut f32, n: usize, v: __m256) {
    // SAFETY: maskstore writes only the lanes selected (the first n).
    unsafe { _mm256_maskstore_ps(p, _mm256_castps_si256(lanes((1u32 << n) - 1)), v) }
}

/// A row of `c <= 16` elements of an 8-row group as two registers: classes 0..8 and
/// 8..c when `HI` (c > 8), else classes 0..c and zeros.
///
/// # Safety
/// `c` elements readable at `p`; `HI` exactly when `c > 8`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load_row<const HI: bool>(p: *const f32, c: usize) -> (__m256, __m256) {
    // SAFETY: the caller guarantees the row.
    unsafe {
        if HI {
            (_mm256_loadu_ps(p), load_tail(p.add(8), c - 8))
        } else {
            (load_tail(p, c), _mm256_setzero_ps())
        }
    }
}

/// Store a row of `c <= 16` elements from the two registers of [`load_row`].
///
/// # Safety
/// `c` elements writable at `p`; `HI` exactly when `c > 8`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store_row<const HI: bool>(p: *mut f32, c: usize, lo: __m256, hi: __m256) {
    // SAFETY: the caller guarantees the row.
    unsafe {
        if HI {
            _mm256_storeu_ps(p, lo);
            store_tail(p.add(8), c - 8, hi);
        } else {
            store_tail(p, c, lo);
        }
    }
}

#[target_feature(enable = "avx2,fma")]
#[inline]
fn hmax(v: __m256) -> f32 {
    let h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps::<1>(h, h)))
}

#[target_feature(enable = "avx2,fma")]
#[inline]
fn hsum_pd(v: __m256d) -> f64 {
    let h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
    _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)))
}

/// The 8 f32 lanes of `v` widened to two f64 registers (lanes 0-3, 4-7).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn widen(v: __m256) -> (__m256d, __m256d) {
    (
        _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
        _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
    )
}

/// Cross-entropy rows (index targets) of float32 logits: up to 16 classes 8 rows at a
/// time ([`group8`]), more classes one row at a time ([`row_wide`]); label smoothing,
/// the last rows of a task and rows or groups the kernels decline take the generic
/// paths, compiled here for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA (the caller is the AVX2 dispatch level).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn ce_rows_f32<S: Src<f32> + ?Sized, const G: bool>(
    x: &S,
    dst: &[Cell<f32>],
    targets: &[i64],
    ctx: &CeCtx<'_>,
    losses: &mut [f64],
) {
    let c = ctx.c;
    if ctx.eps != 0.0 {
        return ce_rows::<f32, S, true, G>(x, dst, targets, ctx, losses);
    }
    let rows = targets.len();
    assert!(x.n() >= rows * c && losses.len() >= rows && (!G || dst.len() >= rows * c));
    // SAFETY (both closures): AVX2 and FMA are enabled here; rows in bounds (asserted).
    let one_by_one = |a, b, l: &mut [f64], wide: bool| unsafe {
        let row: Option<super::ce::WideRow> = if wide { Some(row_wide::<G>) } else { None };
        f32_rows_by_row::<S, G>(x, dst, targets, ctx, l, a, b, row)
    };
    if c > 16 {
        return one_by_one(0, rows, losses, true);
    }
    let (xp, dp) = (x.base(), dst.as_ptr() as *mut f32);
    let flat = Flat8::new(c);
    // SAFETY: a scratch group holds 8 rows of c; AVX2 and FMA are enabled here.
    let mut grp = |xs: &[f32], ds: &[Cell<f32>], ts: &[i64], ls: &mut [f64]| unsafe {
        group8::<G>(xs.as_ptr(), ds.as_ptr() as *mut f32, &flat, 0, ts, ctx, ls)
    };
    let mut generic = |r: usize, l: &mut [f64]| one_by_one(r, r + 1, l, false);
    // SAFETY: rows r0..r0+8 are in bounds; targets were checked by `prepare`.
    let mut main = |r0: usize, l: &mut [f64]| unsafe {
        group8::<G>(xp, dp, &flat, r0, &targets[r0..r0 + 8], ctx, l)
    };
    drive::<f32, S, G>(
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

/// One level of [`reduce8`]: the lanes of `a` and `b` picked by the shuffles `LO` and
/// `HI` (within 128-bit halves; `HALVES`: the halves themselves), combined by max or add.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn level<const MAX: bool, const HALVES: bool, const LO: i32, const HI: i32>(
    a: __m256,
    b: __m256,
) -> __m256 {
    let (lo, hi) = if HALVES {
        (
            _mm256_permute2f128_ps::<LO>(a, b),
            _mm256_permute2f128_ps::<HI>(a, b),
        )
    } else {
        (_mm256_shuffle_ps::<LO>(a, b), _mm256_shuffle_ps::<HI>(a, b))
    };
    if MAX {
        _mm256_max_ps(lo, hi)
    } else {
        _mm256_add_ps(lo, hi)
    }
}

/// Reduce 8 registers (row r's lanes in `row(r)`, called for r = 0..8 in order) to one
/// whose lane r holds row r's max or sum: 7 steps of two shuffles and one op.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn reduce8<const MAX: bool>(mut row: impl FnMut(usize) -> __m256) -> __m256 {
    // (row 2i, row 2i+1) -> pairs summed within each half; then 4 rows per half; then
    // the halves. (A macro, not a closure: see `avx512_f32::reduce16`.)
    macro_rules! pair {
        ($q:expr) => {
            level::<MAX, false, 0x88, 0xDD>(row(2 * $q), row(2 * $q + 1))
        };
    }
    let (u0, u1) = (pair!(0), pair!(1));
    let w0 = level::<MAX, false, 0x88, 0xDD>(u0, u1);
    let (u2, u3) = (pair!(2), pair!(3));
    let w1 = level::<MAX, false, 0x88, 0xDD>(u2, u3);
    level::<MAX, true, 0x20, 0x31>(w0, w1)
}

/// Lane maps for [`group8`] with c <= 16 classes: 8 rows of c logits are c full vectors
/// (the flat layout), vector k holding elements 8k..8k+8 of the group.
struct Flat8 {
    c: usize,
    /// lane i of flat vector k: its row, (8k + i) / c (a `permutevar8x32` index that
    /// broadcasts per-row values, held in row order, to the flat lanes)
    row_of: [__m256i; 16],
    /// lane i of flat vector k: its class, (8k + i) % c
    col_of: [__m256i; 16],
}

impl Flat8 {
    #[target_feature(enable = "avx2,fma")]
    fn new(c: usize) -> Flat8 {
        let zero = _mm256_setzero_si256();
        let (mut row_of, mut col_of) = ([zero; 16], [zero; 16]);
        // SAFETY (the loads): 8-element arrays.
        for k in 0..c {
            let row: [i32; 8] = std::array::from_fn(|i| ((8 * k + i) / c) as i32);
            let col: [i32; 8] = std::array::from_fn(|i| ((8 * k + i) % c) as i32);
            row_of[k] = unsafe { _mm256_loadu_si256(row.as_ptr().cast()) };
            col_of[k] = unsafe { _mm256_loadu_si256(col.as_ptr().cast()) };
        }
        Flat8 { c, row_of, col_of }
    }
}

/// p 2^k for f32 lanes (p in [0.7, 1.5] from [`exp_parts`], k integral): 2^k as two
/// normal powers of two, the first product exact, so a subnormal result is rounded once
/// (as `vscalefps` does); k is clamped to [-160, 254], so anything below -160 gives 0 and
/// anything from 128 up gives +inf (a NaN k gives 0: p carries the NaN).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn scale2(p: __m256, k: __m256) -> __m256 {
    let k = _mm256_min_ps(
        _mm256_max_ps(k, _mm256_set1_ps(-160.0)),
        _mm256_set1_ps(254.0),
    );
    let ki = _mm256_cvtps_epi32(k);
    let k1 = _mm256_srai_epi32::<1>(ki);
    let k2 = _mm256_sub_epi32(ki, k1);
    let bias = _mm256_set1_epi32(127);
    let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k1, bias)));
    let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k2, bias)));
    _mm256_mul_ps(_mm256_mul_ps(p, s2), s1)
}

/// x = n ln2 + r (Cody-Waite, exact for |x| < 2839) and p = e^r (degree-7 Taylor), as
/// `avx512_f32::exp_parts`. Returns (n, p).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn exp_parts(x: __m256) -> (__m256, __m256) {
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI_F32), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO_F32), r);
    let mut p = _mm256_set1_ps(EXP7_F32[0]);
    for c in &EXP7_F32[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
    }
    (n, p)
}

/// Target logits within this range take [`group8`] (as `avx512_f32::group16`).
const GROUP_MAX: f32 = 2048.0;
/// Logits are clamped to [GROUP_FLOOR, GROUP_CEIL] before the reduction (as in
/// `avx512_f32`).
const GROUP_FLOOR: f32 = -2560.0;
const GROUP_CEIL: f32 = 2176.0;

/// 8 full rows (from `r0`) of `c <= 16` classes in the flat layout ([`Flat8`]: c full
/// vectors), each row shifted by its target logit: the method and the accuracy of
/// `avx512_f32::group16` (loss = log1p(t), t = sum_{i != y} e^(x_i - x_y), e^(x - x_y)
/// = 2^(n - n_y) p(r) e^(-r_y)). The per-row sums: the non-target exps go to a stack
/// buffer in the flat layout and come back as one or two registers per row, reduced 8
/// rows at a time ([`reduce8`]); AVX2 has no two-source permute to gather a row from
/// registers. Returns false, writing nothing, when a target logit is beyond
/// +-`GROUP_MAX` or NaN, or a row's t is not finite (a NaN or +inf in the row, or a loss
/// above about 88). In place, every read of the rows precedes every write.
///
/// # Safety
/// AVX2 and FMA; rows `r0..r0 + 8` of `fl.c <= 16` elements readable at `xp` (writable
/// at `dp` when `G`); targets in `[0, c)` or `ctx.ignore_index`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)]
unsafe fn group8<const G: bool>(
    xp: *const f32,
    dp: *mut f32,
    fl: &Flat8,
    r0: usize,
    tg: &[i64],
    ctx: &CeCtx<'_>,
    losses: &mut [f64],
) -> bool {
    let c = fl.c;
    // SAFETY: the caller guarantees the 8 rows.
    let (xb, db) = unsafe { (xp.add(r0 * c), dp.wrapping_add(r0 * c)) };
    // Targets: class to match (-1: none), target logit (GROUP_MAX for ignored rows, under
    // which their exps vanish), weight (0 for ignored rows).
    let (mut tm, mut xy, mut wy) = ([-1i32; 8], [GROUP_MAX; 8], [0.0f64; 8]);
    for j in 0..8 {
        let t = tg[j];
        if t != ctx.ignore_index {
            tm[j] = t as i32;
            // SAFETY: t < c (`prepare`), so the element is in row j.
            xy[j] = unsafe { *xb.add(j * c + t as usize) };
            wy[j] = ctx.weight.map_or(1.0, |w| w[t as usize]);
        }
    }
    // SAFETY: 8-element arrays.
    let (tmatch, xyv) = unsafe {
        (
            _mm256_loadu_si256(tm.as_ptr().cast()),
            _mm256_loadu_ps(xy.as_ptr()),
        )
    };
    let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), xyv);
    // (A NaN fails the compare.)
    let inside = _mm256_cmp_ps::<_CMP_LE_OQ>(abs, _mm256_set1_ps(GROUP_MAX));
    if _mm256_movemask_ps(inside) != 0xFF {
        return false;
    }
    let (ny, _) = exp_parts(xyv);
    let r_y = _mm256_fnmadd_ps(
        ny,
        _mm256_set1_ps(LN2_LO_F32),
        _mm256_fnmadd_ps(ny, _mm256_set1_ps(LN2_HI_F32), xyv),
    );
    let mut rya = [0.0f32; 8];
    // SAFETY: an 8-element array.
    unsafe { _mm256_storeu_ps(rya.as_mut_ptr(), r_y) };
    // Q = e^(-r_y) in float64, before the exps (the out-of-order core overlaps them).
    let mut q = [0.0f64; 8];
    for j in 0..8 {
        let r = -(rya[j] as f64);
        let mut p = POLY6[6];
        for k in (0..6).rev() {
            p = p.mul_add(r, POLY6[k]);
        }
        q[j] = p;
    }
    // The non-target exps in the flat layout (8c elements), then zeros up to the end of
    // the last row's second register (7c + 16). Only that tail is zeroed: filling the
    // whole buffer was a memset per group.
    let mut buf = [MaybeUninit::<f32>::uninit(); 8 * 16 + 8];
    for v in &mut buf[8 * c..(7 * c + 16).max(8 * c)] {
        v.write(0.0);
    }
    let bp = buf.as_mut_ptr() as *mut f32;
    let mut ev = [_mm256_setzero_ps(); 16];
    let mut tms = [_mm256_setzero_si256(); 16];
    for k in 0..c {
        // SAFETY: flat vector k lies within the group's 8 c elements.
        let x = unsafe { _mm256_loadu_ps(xb.add(8 * k)) };
        let ri = fl.row_of[k];
        // Clamped to [GROUP_FLOOR, GROUP_CEIL] (max_ps / min_ps return their second
        // operand when either is NaN: x second keeps a NaN).
        let xc = _mm256_min_ps(
            _mm256_set1_ps(GROUP_CEIL),
            _mm256_max_ps(_mm256_set1_ps(GROUP_FLOOR), x),
        );
        let (n, p) = exp_parts(xc);
        let e = scale2(p, _mm256_sub_ps(n, _mm256_permutevar8x32_ps(ny, ri)));
        let t = _mm256_cmpeq_epi32(fl.col_of[k], _mm256_permutevar8x32_epi32(tmatch, ri));
        tms[k] = t;
        ev[k] = e;
        // SAFETY: 8 k + 8 <= 8 c <= 128 elements of `buf`.
        unsafe { _mm256_storeu_ps(bp.add(8 * k), _mm256_andnot_ps(_mm256_castsi256_ps(t), e)) };
    }
    let (k0, k1) = (
        lanes((1u32 << c.min(8)) - 1),
        lanes((1u32 << c.saturating_sub(8)) - 1),
    );
    let s = reduce8::<false>(
        #[inline(always)]
        |r| {
            // SAFETY: r c + 16 <= 7 c + 16 elements of `buf`, all written above.
            let (lo, hi) = unsafe {
                (
                    _mm256_loadu_ps(bp.add(r * c)),
                    _mm256_loadu_ps(bp.add(r * c + 8)),
                )
            };
            _mm256_add_ps(_mm256_and_ps(lo, k0), _mm256_and_ps(hi, k1))
        },
    );
    let fin = _mm256_cmp_ps::<_CMP_LT_OQ>(s, _mm256_set1_ps(f32::INFINITY));
    if _mm256_movemask_ps(fin) != 0xFF {
        return false;
    }
    let mut sa = [0.0f32; 8];
    // SAFETY: an 8-element array.
    unsafe { _mm256_storeu_ps(sa.as_mut_ptr(), s) };
    let (mut t, mut l1p, mut inv) = ([0.0f64; 8], [0.0f64; 8], [0.0f64; 8]);
    for j in 0..8 {
        t[j] = sa[j] as f64 * q[j];
        (l1p[j], inv[j]) = log1p_unit::<true>(t[j], 5, |v| 1.0 / v);
    }
    for j in 0..8 {
        losses[j] = wy[j] * l1p[j]; // 0 for ignored rows (w = 0, t finite)
    }
    if G {
        // Ignored rows have w = 0: a = 0, and no lane matches their class.
        let (mut av, mut gt) = ([0.0f32; 8], [0.0f32; 8]);
        for j in 0..8 {
            let gw = ctx.g * wy[j];
            av[j] = (gw * q[j] * inv[j]) as f32;
            gt[j] = (-gw * (t[j] * inv[j])) as f32;
        }
        // SAFETY: 8-element arrays.
        let (av, gt) = unsafe { (_mm256_loadu_ps(av.as_ptr()), _mm256_loadu_ps(gt.as_ptr())) };
        for k in 0..c {
            let ri = fl.row_of[k];
            let g = _mm256_mul_ps(ev[k], _mm256_permutevar8x32_ps(av, ri));
            let g = _mm256_blendv_ps(
                g,
                _mm256_permutevar8x32_ps(gt, ri),
                _mm256_castsi256_ps(tms[k]),
            );
            // SAFETY: flat vector k of the group's gradient rows (every read of x is done).
            unsafe { _mm256_storeu_ps(db.add(8 * k), g) };
        }
    }
    true
}

/// One row of float32 logits: max, then the exps (kept in the gradient row when `G`)
/// and their sum in float64 accumulators, then the scale. Returns the row's loss, or
/// None, writing nothing, when the row has a NaN or a non-finite max. In place (`dr` ==
/// `xr`), x_y is read first and every vector is loaded before the same vector is stored.
///
/// # Safety
/// AVX2 and FMA; `c` elements readable at `xr` (and writable at `dr` when `G`); `y < c`.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_wide<const G: bool>(
    xr: *const f32,
    dr: *mut f32,
    c: usize,
    y: usize,
    wy: f64,
    g: f64,
) -> Option<f64> {
    let full = c / 8 * 8;
    let rem = c % 8;
    let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
    // SAFETY (every load and store below): lanes i..i+8 for i < full, and the `rem`
    // lanes after them, are within the row's c elements.
    let xy = unsafe { *xr.add(y) };
    let (mut m0, mut m1) = (ninf, ninf);
    let mut i = 0;
    while i + 16 <= full {
        m0 = _mm256_max_ps(m0, unsafe { _mm256_loadu_ps(xr.add(i)) });
        m1 = _mm256_max_ps(m1, unsafe { _mm256_loadu_ps(xr.add(i + 8)) });
        i += 16;
    }
    if i < full {
        m0 = _mm256_max_ps(m0, unsafe { _mm256_loadu_ps(xr.add(i)) });
    }
    if rem != 0 {
        let k = lanes((1 << rem) - 1);
        let v = unsafe { load_tail(xr.add(full), rem) };
        m1 = _mm256_max_ps(m1, _mm256_blendv_ps(ninf, v, k));
    }
    // (max_ps drops a NaN in its first operand: NaN rows are caught by the sum below.)
    let m = hmax(_mm256_max_ps(m0, m1));
    if !m.is_finite() {
        return None;
    }
    let mv = _mm256_set1_ps(m);
    let zero = _mm256_setzero_ps();
    let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut ties = 0u32;
    // exp(x - m) of the lanes in `k` (all when None) and the same without the maxima
    // (counted in `ties`), so one of them can be excluded exactly; lanes outside `k`
    // are 0 in the second.
    let mut exps = |v: __m256, k: Option<__m256>| -> (__m256, __m256) {
        let mask = |a: __m256| k.map_or(a, |k| _mm256_and_ps(a, k));
        let d = mask(_mm256_sub_ps(v, mv));
        // TwoSum error of x - m put back (see `avx512_f32::group16`), with or without a
        // gradient, so that the loss does not depend on whether one is asked for.
        let z = _mm256_sub_ps(d, v);
        let lo = _mm256_sub_ps(_mm256_sub_ps(v, _mm256_sub_ps(d, z)), _mm256_add_ps(mv, z));
        let fin = mask(_mm256_cmp_ps::<_CMP_GT_OQ>(d, _mm256_set1_ps(-104.0)));
        // The correction goes on p, before the scale: a subnormal result is then
        // rounded once (correcting it after would round it twice).
        let (n, p) = exp_parts(_mm256_max_ps(_mm256_set1_ps(-110.0), d));
        let e = scale2(_mm256_blendv_ps(p, _mm256_fmadd_ps(lo, p, p), fin), n);
        let eq = mask(_mm256_cmp_ps::<_CMP_EQ_OQ>(d, zero));
        ties += _mm256_movemask_ps(eq).count_ones();
        (e, _mm256_andnot_ps(eq, mask(e)))
    };
    let mut add = |s: __m256| {
        let (lo, hi) = widen(s);
        a0 = _mm256_add_pd(a0, lo);
        a1 = _mm256_add_pd(a1, hi);
    };
    // Four vectors at a time, every stage done for the four in turn: one vector's exp
    // chain is latency-bound (as in `bce_plain`); (16384, 1000) on one thread,
    // forward 9.6 -> 8.6 ms, forward + gradient 12 -> 11.5 ms. The same operations per lane as `exps`, so the same values. Pairs
    // are added in float32 before widening (one rounding, 2^-24 relative, for half the
    // conversions); full vectors without lane masks.
    let mut i = 0;
    let mut ties4 = 0u32;
    while i + 32 <= full {
        // SAFETY: lanes i..i+32 of the row.
        let v: [__m256; 4] = std::array::from_fn(|k| unsafe { _mm256_loadu_ps(xr.add(i + 8 * k)) });
        let (mut d, mut lo, mut n, mut r) = ([zero; 4], [zero; 4], [zero; 4], [zero; 4]);
        for k in 0..4 {
            d[k] = _mm256_sub_ps(v[k], mv);
        }
        // The TwoSum correction with or without a gradient, as in `exps`.
        for k in 0..4 {
            let z = _mm256_sub_ps(d[k], v[k]);
            lo[k] = _mm256_sub_ps(
                _mm256_sub_ps(v[k], _mm256_sub_ps(d[k], z)),
                _mm256_add_ps(mv, z),
            );
        }
        for k in 0..4 {
            r[k] = _mm256_max_ps(_mm256_set1_ps(-110.0), d[k]);
            n[k] = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(r[k], _mm256_set1_ps(std::f32::consts::LOG2_E)),
            );
        }
        for k in 0..4 {
            r[k] = _mm256_fnmadd_ps(n[k], _mm256_set1_ps(LN2_HI_F32), r[k]);
        }
        for k in 0..4 {
            r[k] = _mm256_fnmadd_ps(n[k], _mm256_set1_ps(LN2_LO_F32), r[k]);
        }
        let mut p = [_mm256_set1_ps(EXP7_F32[0]); 4];
        for cf in &EXP7_F32[1..] {
            for k in 0..4 {
                p[k] = _mm256_fmadd_ps(p[k], r[k], _mm256_set1_ps(*cf));
            }
        }
        let mut sk = [zero; 4];
        for k in 0..4 {
            let fin = _mm256_cmp_ps::<_CMP_GT_OQ>(d[k], _mm256_set1_ps(-104.0));
            p[k] = _mm256_blendv_ps(p[k], _mm256_fmadd_ps(lo[k], p[k], p[k]), fin);
            let e = scale2(p[k], n[k]);
            let eq = _mm256_cmp_ps::<_CMP_EQ_OQ>(d[k], zero);
            ties4 += _mm256_movemask_ps(eq).count_ones();
            sk[k] = _mm256_andnot_ps(eq, e);
            if G {
                // SAFETY: lanes i+8k..i+8k+8 of the gradient row (every read of this
                // block is done).
                unsafe { _mm256_storeu_ps(dr.add(i + 8 * k), e) };
            }
        }
        add(_mm256_add_ps(sk[0], sk[1]));
        add(_mm256_add_ps(sk[2], sk[3]));
        i += 32;
    }
    while i + 16 <= full {
        let (e0, s0) = exps(unsafe { _mm256_loadu_ps(xr.add(i)) }, None);
        let (e1, s1) = exps(unsafe { _mm256_loadu_ps(xr.add(i + 8)) }, None);
        if G {
            unsafe {
                _mm256_storeu_ps(dr.add(i), e0);
                _mm256_storeu_ps(dr.add(i + 8), e1);
            }
        }
        add(_mm256_add_ps(s0, s1));
        i += 16;
    }
    if i < full {
        let (e, s) = exps(unsafe { _mm256_loadu_ps(xr.add(i)) }, None);
        if G {
            unsafe { _mm256_storeu_ps(dr.add(i), e) };
        }
        add(s);
    }
    if rem != 0 {
        let k = lanes((1 << rem) - 1);
        let (e, s) = exps(unsafe { load_tail(xr.add(full), rem) }, Some(k));
        if G {
            unsafe { store_tail(dr.add(full), rem, e) };
        }
        add(s);
    }
    let s = hsum_pd(_mm256_add_pd(a0, a1)) + ((ties + ties4) as f64 - 1.0);
    if s.is_nan() {
        // A NaN logit: the row's loss and gradient are NaN, as the generic path (and
        // torch) give them. (Not a fallback: in place, the row already holds exps.)
        if G {
            for k in 0..c {
                unsafe { *dr.add(k) = f32::NAN };
            }
        }
        return Some(f64::NAN);
    }
    let loss = wy * ((m as f64 - xy as f64) + log1p_pos::<true>(s, 5));
    if G {
        let inv = 1.0 / (1.0 + s);
        let av = _mm256_set1_ps((g * wy * inv) as f32);
        let ey = unsafe { *dr.add(y) } as f64;
        let mut i = 0;
        while i < full {
            unsafe { _mm256_storeu_ps(dr.add(i), _mm256_mul_ps(_mm256_loadu_ps(dr.add(i)), av)) };
            i += 8;
        }
        if rem != 0 {
            unsafe {
                let v = load_tail(dr.add(full), rem);
                store_tail(dr.add(full), rem, _mm256_mul_ps(v, av));
            }
        }
        // p_y - 1 = ((e_y - 1) - s)/(1 + s), without cancellation.
        unsafe { *dr.add(y) = (g * wy * (((ey - 1.0) - s) * inv)) as f32 };
    }
    Some(loss)
}

/// Hinge rows of float32 scores on AVX2 (see `hinge::hinge_rows_f32`).
///
/// # Safety
/// AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn hinge_rows<S: Src<f32> + ?Sized, const G: bool>(
    x: &S,
    dst: &[Cell<f32>],
    targets: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
) {
    let c = h.c;
    if c > 16 || h.p != 1 || h.kind == Hinge::CrammerSinger {
        // SAFETY: AVX2 and FMA are enabled here.
        return unsafe { hinge_rows_f32::<S, G>(x, dst, targets, h, losses, hinge_row_wide::<G>) };
    }
    let rows = targets.len();
    assert!(x.n() >= rows * c && losses.len() >= rows && (!G || dst.len() >= rows * c));
    let (xp, dp) = (x.base(), dst.as_ptr() as *mut f32);
    // SAFETY (both): 8 rows of c readable at xp (writable at dp when G); AVX2 and FMA
    // are enabled here; targets were checked by `hinge`.
    let group = |xp: *const f32, dp: *mut f32, r0: usize, tg: &[i64], l: &mut [f64]| unsafe {
        if c > 8 {
            hinge_group8::<G, true>(xp, dp, c, r0, tg, h, l)
        } else {
            hinge_group8::<G, false>(xp, dp, c, r0, tg, h, l)
        }
    };
    let mut grp = |xs: &[f32], ds: &[Cell<f32>], ts: &[i64], ls: &mut [f64]| {
        group(xs.as_ptr(), ds.as_ptr() as *mut f32, 0, ts, ls)
    };
    let mut generic =
        |r: usize, l: &mut [f64]| hinge_rows_range::<f32, S, G>(x, dst, targets, h, l, r, r + 1);
    // rows r0..r0+8 are in bounds (asserted above)
    let mut main = |r0: usize, l: &mut [f64]| group(xp, dp, r0, &targets[r0..r0 + 8], l);
    drive::<f32, S, G>(
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

/// Sums of 4 registers of 4 float64 lanes: lane j holds the sum of the j-th register.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn sum4(a: __m256d, b: __m256d, c: __m256d, d: __m256d) -> __m256d {
    let ab = _mm256_add_pd(_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b));
    let cd = _mm256_add_pd(_mm256_unpacklo_pd(c, d), _mm256_unpackhi_pd(c, d));
    _mm256_add_pd(
        _mm256_permute2f128_pd::<0x20>(ab, cd),
        _mm256_permute2f128_pd::<0x31>(ab, cd),
    )
}

/// 8 full rows of `c <= 16` float32 scores (from `r0`) for the Weston-Watkins and torch
/// multi-margin hinge with p = 1: one register per row (`HI`: two, the second holding
/// classes 8..c), `hinge_row_wide`'s exact violator test against each row's thr32, the
/// violators' z summed in float64 (8 rows' sums by one shuffle tree, [`sum4`]). The
/// generic small-class path packs rows into float64 lanes by scalar transposes, which
/// dominated its time. Returns false, writing nothing, when a row's threshold is not
/// finite or beyond float32's range. In place, every read precedes every write.
///
/// # Safety
/// AVX2 and FMA; rows `r0..r0 + 8` of `c` elements readable at `xp` (writable at `dp`
/// when `G`); `c <= 16`, and `c > 8` exactly when `HI`; targets in `[0, c)`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)]
unsafe fn hinge_group8<const G: bool, const HI: bool>(
    xp: *const f32,
    dp: *mut f32,
    c: usize,
    r0: usize,
    tg: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
) -> bool {
    let (n0, n1) = if HI { (8, c - 8) } else { (c, 0) };
    let (b0, b1) = ((1u32 << n0) - 1, (1u32 << n1) - 1);
    // SAFETY: the caller guarantees the 8 rows.
    let (xb, db) = unsafe { (xp.add(r0 * c), dp.wrapping_add(r0 * c)) };
    let (mut t32, mut delta, mut sc) = ([0.0f32; 8], [0.0f64; 8], [0.0f64; 8]);
    for j in 0..8 {
        let y = tg[j] as usize;
        // SAFETY: y < c, so the element is in row j.
        let Some(t) = f32_threshold(unsafe { *xb.add(j * c + y) }, y, h) else {
            return false; // the generic rows propagate NaN and handle huge thresholds
        };
        (t32[j], delta[j], sc[j]) = t;
    }
    let mut zs = [_mm256_setzero_pd(); 8];
    let mut cnt = [0u32; 8];
    let mut act = [(_mm256_setzero_ps(), _mm256_setzero_ps()); 8];
    for r in 0..8 {
        // SAFETY: lanes of row r within its c elements (maskload reads only those).
        let (lo, hi) = unsafe { load_row::<HI>(xb.add(r * c), c) };
        let tv = _mm256_set1_ps(t32[r]);
        let yb = !(1u32 << tg[r]);
        // v > thr32, or NaN (a violation, as in torch); never the target's own lane.
        let v0 = _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLE_UQ>(lo, tv), lanes(b0 & yb));
        let (p, q) = widen(_mm256_and_ps(_mm256_sub_ps(lo, tv), v0));
        let mut s = _mm256_add_pd(p, q);
        let mut n = _mm256_movemask_ps(v0).count_ones();
        let v1 = if HI {
            let v1 = _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLE_UQ>(hi, tv), lanes(b1 & (yb >> 8)));
            let (p, q) = widen(_mm256_and_ps(_mm256_sub_ps(hi, tv), v1));
            s = _mm256_add_pd(s, _mm256_add_pd(p, q));
            n += _mm256_movemask_ps(v1).count_ones();
            v1
        } else {
            _mm256_setzero_ps()
        };
        (zs[r], cnt[r], act[r]) = (s, n, (v0, v1));
    }
    let mut sums = [0.0f64; 8];
    // SAFETY: 8-element array, two halves of 4.
    unsafe {
        _mm256_storeu_pd(sums.as_mut_ptr(), sum4(zs[0], zs[1], zs[2], zs[3]));
        _mm256_storeu_pd(sums.as_mut_ptr().add(4), sum4(zs[4], zs[5], zs[6], zs[7]));
    }
    for j in 0..8 {
        losses[j] = sc[j] * (sums[j] - cnt[j] as f64 * delta[j]);
    }
    if G {
        for r in 0..8 {
            let gsc = h.g * sc[r];
            let gv = _mm256_set1_ps(gsc as f32);
            // The target's entry: minus the sum of the others, as the generic path.
            let gy = _mm256_set1_ps((-(gsc * cnt[r] as f64)) as f32);
            let yb = 1u32 << tg[r];
            let grad = |a: __m256, ym: u32| _mm256_blendv_ps(_mm256_and_ps(a, gv), gy, lanes(ym));
            let (v0, v1) = act[r];
            // SAFETY: row r of dst is in bounds (every read of x is done).
            unsafe { store_row::<HI>(db.add(r * c), c, grad(v0, yb & 0xFF), grad(v1, yb >> 8)) };
        }
    }
    true
}

/// One row of float32 scores for the Weston-Watkins and torch multi-margin hinge losses
/// in float32 lanes, with `avx512_f32::hinge_row_wide`'s exact violator test (x_i >
/// thr32, the largest float32 <= x_y - margin) and float64 sums. Returns None (writing
/// nothing) when the threshold is not finite or beyond float32's range.
///
/// # Safety
/// AVX2 and FMA; `c` elements readable at `xr` (and writable at `dr` when `G`); `y < c`.
#[target_feature(enable = "avx2,fma")]
unsafe fn hinge_row_wide<const G: bool>(
    xr: *const f32,
    dr: *mut f32,
    c: usize,
    y: usize,
    h: &HingeCtx<'_>,
) -> Option<f64> {
    // SAFETY (every load and store below): lanes i..i+8 for i < full, and the `rem`
    // lanes after them, are within the row's c elements; y < c.
    // (None also for NaN: the generic path propagates it.)
    let (t32, delta, sc) = f32_threshold(unsafe { *xr.add(y) }, y, h)?;
    let sq = h.p == 2;
    let gsc = h.g * sc;
    let (tv, dv) = (_mm256_set1_ps(t32), _mm256_set1_pd(delta));
    let g1 = _mm256_set1_ps(gsc as f32);
    let g2 = _mm256_set1_pd(2.0 * gsc);
    let full = c / 8 * 8;
    let rem = c % 8;
    let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let (mut b0, mut b1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut count = 0u64;
    // Sum z (p = 1) or z^2 (p = 2) over the violators in `k`; returns the gradient lanes.
    let mut step = |v: __m256, k: __m256| -> __m256 {
        // v > thr32, or NaN (a NaN score is a violation, as in torch).
        let act = _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLE_UQ>(v, tv), k);
        let z = _mm256_and_ps(_mm256_sub_ps(v, tv), act);
        let (zl, zh) = widen(z);
        if sq {
            // z - delta, zero off the violators (act widened to 64-bit lanes).
            let ai = _mm256_castps_si256(act);
            let ml = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(ai)));
            let mh = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(ai)));
            let zl = _mm256_and_pd(_mm256_sub_pd(zl, dv), ml);
            let zh = _mm256_and_pd(_mm256_sub_pd(zh, dv), mh);
            a0 = _mm256_fmadd_pd(zl, zl, a0);
            a1 = _mm256_fmadd_pd(zh, zh, a1);
            if G {
                b0 = _mm256_add_pd(b0, zl);
                b1 = _mm256_add_pd(b1, zh);
                let gl = _mm256_cvtpd_ps(_mm256_mul_pd(zl, g2));
                let gh = _mm256_cvtpd_ps(_mm256_mul_pd(zh, g2));
                return _mm256_set_m128(gh, gl);
            }
        } else {
            a0 = _mm256_add_pd(a0, zl);
            a1 = _mm256_add_pd(a1, zh);
            count += _mm256_movemask_ps(act).count_ones() as u64;
            if G {
                return _mm256_and_ps(act, g1);
            }
        }
        _mm256_setzero_ps()
    };
    // The lanes of block i, without the target's own lane (not a violator).
    let not_y = |i: usize, bits: u32| -> __m256 {
        if (i..i + 8).contains(&y) {
            lanes(bits & !(1u32 << (y - i)))
        } else {
            lanes(bits)
        }
    };
    let mut i = 0;
    while i < full {
        let g = step(unsafe { _mm256_loadu_ps(xr.add(i)) }, not_y(i, 0xFF));
        if G {
            unsafe { _mm256_storeu_ps(dr.add(i), g) };
        }
        i += 8;
    }
    if rem != 0 {
        let g = step(
            unsafe { load_tail(xr.add(full), rem) },
            not_y(full, (1 << rem) - 1),
        );
        if G {
            unsafe { store_tail(dr.add(full), rem, g) };
        }
    }
    let s = hsum_pd(_mm256_add_pd(a0, a1));
    let (total, gsum) = if sq {
        (s, 2.0 * gsc * hsum_pd(_mm256_add_pd(b0, b1)))
    } else {
        (s - count as f64 * delta, gsc * count as f64)
    };
    if G {
        // The target's entry: minus the sum of the others, as the generic path.
        unsafe { *dr.add(y) = (-gsum) as f32 };
    }
    Some(sc * total)
}

/// Element-wise losses of float32 data on AVX2: binary cross-entropy with logits without
/// `weight` and `pos_weight` in float32 lanes ([`bce_plain`]); the other kinds and
/// options take the generic kernel (`elementwise::run`), compiled here for AVX2.
/// `x` may be `dst` itself (in place).
///
/// # Safety
/// AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn elementwise<S: Src<f32> + ?Sized, const G: bool>(
    kind: Kind,
    x: &S,
    y: &[f32],
    ex: &Extra<'_, f32>,
    off: usize,
    per: Option<&[Cell<f32>]>,
    dst: &[Cell<f32>],
    gscale: f64,
) -> f64 {
    // SAFETY: this level's features are enabled here.
    unsafe { f32_level::<S, G>(kind, x, y, ex, off, per, dst, gscale, bce_plain::<G>) }
}

/// Vectors per step of [`bce_plain`] (2 measured 5% slower).
const BCE_U: usize = 4;

/// torch's `binary_cross_entropy_with_logits` of float32 logits and targets, neither
/// weighted, in float32 lanes (the generic kernel widens to float64, 4 lanes per
/// register): t = e^{-|x|} ([`exp_neg`]), log1p(t) by `simd::exp::LOG1P_UNIT9`'s
/// division-free polynomial, sigma(x) and 1 - sigma(x) from 1 / (1 + t) without
/// cancellation; the loss (1 - y) x + log1p(t) for x >= 0, -x y + log1p(t) below (the
/// generic kernel's grouping, no cancellation for y in [0, 1]) is rounded to float32 once
/// (adding the two parts in float64 and narrowing cost 8% more, for the same `per`
/// values but in ties) and summed in float64.
/// The same values as the generic kernel to float32 rounding, with its inf/NaN cases.
/// Returns the sum of the losses; writes them to `per` when given, and the gradient
/// (sigma(x) - y) * `gscale` to `dst` when `G` (each block is loaded before it is
/// stored, so `xp` may be `dst`).
///
/// `BCE_U` vectors per step, each stage done for all of them in turn: one vector's chain
/// is latency-bound (see `avx512_f32::bce_plain`); (262144, 10) forward + gradient on one
/// thread 3.05 -> 2.3 ms (2.54 before the shared `padded_blocks` loop).
///
/// # Safety
/// AVX2 and FMA; `y.len()` elements readable at `xp`, and in `per` and (when `G`) `dst`.
#[target_feature(enable = "avx2,fma")]
unsafe fn bce_plain<const G: bool>(
    xp: *const f32,
    y: &[f32],
    per: Option<&[Cell<f32>]>,
    dst: &[Cell<f32>],
    gscale: f64,
) -> f64 {
    let n = y.len();
    let (yp, dp) = (y.as_ptr(), dst.as_ptr() as *mut f32);
    let pp = per.map(|p| p.as_ptr() as *mut f32);
    let gs = _mm256_set1_ps(gscale as f32);
    let mut acc = [_mm256_setzero_pd(); 2];
    // Loss and gradient lanes of U vectors of 8 logits and targets, every stage done for
    // the U vectors in turn (see the function's comment); lanes outside `keep` add
    // nothing to the sum.
    const U: usize = BCE_U;
    let mut step = |x: [__m256; U], yv: [__m256; U], keep: [__m256; U]| {
        let one = _mm256_set1_ps(1.0);
        let sign = _mm256_set1_ps(-0.0);
        let zero = _mm256_setzero_ps();
        let (mut t, mut n) = ([zero; U], [zero; U]);
        for k in 0..U {
            // -|x| (NaN stays NaN), floored at -110 (max_ps returns its second operand
            // when either is NaN), then `exp_parts`' steps.
            t[k] = _mm256_max_ps(_mm256_set1_ps(-110.0), _mm256_or_ps(x[k], sign));
            n[k] = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(t[k], _mm256_set1_ps(std::f32::consts::LOG2_E)),
            );
        }
        for k in 0..U {
            t[k] = _mm256_fnmadd_ps(n[k], _mm256_set1_ps(LN2_HI_F32), t[k]);
        }
        for k in 0..U {
            t[k] = _mm256_fnmadd_ps(n[k], _mm256_set1_ps(LN2_LO_F32), t[k]);
        }
        let mut p = [_mm256_set1_ps(EXP7_F32[0]); U];
        for c in &EXP7_F32[1..] {
            for k in 0..U {
                p[k] = _mm256_fmadd_ps(p[k], t[k], _mm256_set1_ps(*c));
            }
        }
        for k in 0..U {
            t[k] = scale2(p[k], n[k]); // e^-|x|
        }
        let mut q = [_mm256_set1_ps(LOG1P_UNIT9[9] as f32); U];
        for c in LOG1P_UNIT9[..9].iter().rev() {
            for k in 0..U {
                q[k] = _mm256_fmadd_ps(q[k], t[k], _mm256_set1_ps(*c as f32));
            }
        }
        let (mut l, mut g) = ([zero; U], [zero; U]);
        for k in 0..U {
            let l1p = _mm256_mul_ps(t[k], q[k]);
            let inv = _mm256_div_ps(one, _mm256_add_ps(one, t[k]));
            let ti = _mm256_mul_ps(t[k], inv);
            let pos = _mm256_cmp_ps::<_CMP_GE_OQ>(x[k], zero);
            let (sig, sigc) = (
                _mm256_blendv_ps(ti, inv, pos),
                _mm256_blendv_ps(inv, ti, pos),
            );
            let omy = _mm256_sub_ps(one, yv[k]);
            let lin = _mm256_blendv_ps(
                _mm256_xor_ps(_mm256_mul_ps(x[k], yv[k]), sign),
                _mm256_mul_ps(omy, x[k]),
                pos,
            );
            // The element's loss in float32 (the value `per` stores), summed in float64.
            l[k] = _mm256_and_ps(_mm256_add_ps(lin, l1p), keep[k]);
            let (l0, l1) = widen(l[k]);
            acc[0] = _mm256_add_pd(acc[0], l0);
            acc[1] = _mm256_add_pd(acc[1], l1);
            // (1 - y) sigma - y (1 - sigma): no 1 - sigma rounding a tiny gradient away.
            let gk = _mm256_fmsub_ps(omy, sig, _mm256_mul_ps(yv[k], sigc));
            g[k] = _mm256_mul_ps(gk, gs);
        }
        (l, g)
    };
    // SAFETY (the loads and stores): `padded_blocks` hands over 8U elements behind each
    // pointer; the caller guarantees the arrays.
    unsafe {
        padded_blocks::<f32, { 8 * U }>(n, (xp, yp), pp, (dp, G), |sx, sy, sl, sg, r| {
            let keep: [__m256; U] = std::array::from_fn(|k| {
                let m = r.saturating_sub(8 * k).min(8);
                lanes((1u32 << m) - 1)
            });
            let x: [__m256; U] = std::array::from_fn(|k| _mm256_loadu_ps(sx.add(8 * k)));
            let yv: [__m256; U] = std::array::from_fn(|k| _mm256_loadu_ps(sy.add(8 * k)));
            let (l, g) = step(x, yv, keep);
            for k in 0..U {
                if let Some(sl) = sl {
                    _mm256_storeu_ps(sl.add(8 * k), l[k]);
                }
                if G {
                    _mm256_storeu_ps(sg.add(8 * k), g[k]);
                }
            }
        })
    };
    hsum_pd(_mm256_add_pd(acc[0], acc[1]))
}
