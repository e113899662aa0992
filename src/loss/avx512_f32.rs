//! float32 loss kernels on AVX-512: cross-entropy (16 rows at a time up to 16 classes, one
//! row in float32 lanes above), the Weston-Watkins / multi-margin hinge (p = 1 up to 16
//! classes 16 rows at a time, `hinge_group16`; wide rows one at a time) and unweighted BCE.
//!
//! Why hand-written kernels: the generic small-class path (`ce::ce_small_group`) packs 16
//! rows into f64 lanes, which costs a scalar transpose in and out of the lane layout
//! (160 loads and 160 stores for 16 rows of 10 classes) and f64 arithmetic for f32 data;
//! perf showed it flat, dominated by that gather/scatter and by spills.
//!
//! Up to 16 classes (`group16`): 16 rows of c logits are c full vectors (the flat layout),
//! so the exps run with every lane used and the gradient goes out in c full stores; per-row
//! values reach the lanes by one permute, per-row sums come back through one two-source
//! permute per row and a transposing shuffle tree (`reduce16`: 15 steps for 16 rows).
//! Each row is shifted by its target logit, not its max, which saves the max reduction
//! (see `group16`). History, measured single-threaded on (262144, 10): one row per
//! register (masked loads, c of 16 lanes used, max and sum each reduced by `reduce16`,
//! TwoSum-compensated x - m) took about 2.9 ms; the flat layout with the max shift 2.2 ms;
//! the target shift 1.75 ms (forward 2.4 -> 1.3 ms). Tried and dropped: one row at a time
//! with horizontal reductions (about 60% of the first one's speed), 16 rows transposed by
//! AVX-512 gathers and scatters (the scatters were slow), the row max from the flat
//! vectors by two-source permutes instead of 16 masked loads (slower), and one instance
//! per class count (no gain).
//!
//! Accuracy (float32 arithmetic for the probabilities, float64 for the loss); the Rust
//! test `float32_rows_every_level` holds it to 2e-7 relative for the loss and
//! 3e-7 relative (plus two subnormal ulps) for the gradient, against float64:
//! - exp: Cody-Waite reduction with FMA, degree-7 Taylor on |r| <= ln2/2 (truncation
//!   5e-9), the scale by `vscalefps`, which rounds subnormal results once;
//! - `group16` reduces each x itself (exactly) and scales by 2^(n - n_y), so there is no
//!   rounded x - x_y; `row_wide` rounds x - m in float32 and puts its TwoSum error back;
//! - the sums leave out one entry whose exp is exactly 1 (the target in `group16`, a
//!   maximal entry in `row_wide`), so a confident row keeps the relative accuracy of its
//!   tiny sum and of log1p of it, and the target entry's gradient has no cancellation.
//!
//! Groups holding a NaN, a +inf, a target logit beyond +-2048 or a loss above ~88 (see
//! `group16`), rows with a non-finite max (`row_wide`), the last rows of a task, and
//! label smoothing take the generic path.

use std::arch::x86_64::*;
use std::cell::Cell;
use std::mem::MaybeUninit;

use super::ce::{ce_rows, f32_rows_by_row, CeCtx, WideRow};
use super::elementwise::{f32_level, padded_blocks, Extra, Kind};
use super::group::drive;
use super::hinge::{f32_threshold, hinge_rows_f32, hinge_rows_range, Hinge, HingeCtx};
use crate::ops::kernel::Src;
use crate::simd::exp::{
    log1p_pos, log1p_unit, EXP7_F32, LN2_HI_F32, LN2_LO_F32, LOG1P_UNIT9, POLY6,
};

/// x = n ln2 + r with |r| <= ln2/2 (Cody-Waite: ln 2 = HI + LO with HI's low 12 bits
/// zero, so n * HI is exact for |n| < 2^12, i.e. |x| < 2839), and p = e^r by a degree-7
/// Taylor polynomial (truncation 5e-9): e^x = 2^n p. Returns (n, p).
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn exp_parts(x: __m512) -> (__m512, __m512) {
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI_F32), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO_F32), r);
    let mut p = _mm512_set1_ps(EXP7_F32[0]);
    for c in &EXP7_F32[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(*c));
    }
    (n, p)
}

/// Bitwise or of float lanes in the integer domain: `_mm512_or_ps` is AVX-512DQ, which
/// this level does not enable, and outside its feature set it compiled to an out-of-line
/// call per vector (about a third of `bce_plain`'s time).
#[target_feature(enable = "avx512f")]
#[inline]
fn or_ps(a: __m512, b: __m512) -> __m512 {
    _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(a),
        _mm512_castps_si512(b),
    ))
}

/// Bitwise xor of float lanes in the integer domain (see [`or_ps`]).
#[target_feature(enable = "avx512f")]
#[inline]
fn xor_ps(a: __m512, b: __m512) -> __m512 {
    _mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(a),
        _mm512_castps_si512(b),
    ))
}

/// Cross-entropy rows (index targets) of float32 logits: up to 16 classes 16 rows at a
/// time (`group16`), more classes one row at a time (`row_wide`); the last rows of the
/// task, any group holding a NaN or a non-finite row max, and label smoothing take the
/// generic paths. `x` holds `targets.len()` rows;
/// `dst` (when `G`) the gradient rows, possibly the same memory as `x` (in place).
///
/// # Safety
/// The CPU must support AVX-512F (the caller is the AVX-512 dispatch level).
#[target_feature(enable = "avx512f,avx2,fma")]
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
    let (xp, dp) = (x.base(), dst.as_ptr() as *mut f32);
    let wide: Option<WideRow> = if c > 16 { Some(row_wide::<G>) } else { None };
    // SAFETY: AVX-512F is enabled here; the rows are in bounds (asserted above).
    let one_by_one = |a, b, l: &mut [f64]| unsafe {
        f32_rows_by_row::<S, G>(x, dst, targets, ctx, l, a, b, wide)
    };
    if c > 16 {
        return one_by_one(0, rows, losses);
    }
    let flat = Flat::new(c);
    // SAFETY: a scratch group holds 16 rows of c; AVX-512F is enabled here.
    let mut grp = |xs: &[f32], ds: &[Cell<f32>], ts: &[i64], ls: &mut [f64]| unsafe {
        group16::<G>(xs.as_ptr(), ds.as_ptr() as *mut f32, &flat, 0, ts, ctx, ls)
    };
    let mut generic = |r: usize, l: &mut [f64]| one_by_one(r, r + 1, l);
    // SAFETY: rows r0..r0+16 are in bounds (asserted above); targets were checked by
    // `prepare`; AVX-512F is enabled here.
    let mut main = |r0: usize, l: &mut [f64]| unsafe {
        group16::<G>(xp, dp, &flat, r0, &targets[r0..r0 + 16], ctx, l)
    };
    drive::<f32, S, G>(
        16,
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

/// One level of the transposing reduction: the 128-bit blocks (`BLK`) or the lanes within
/// them (`!BLK`) of `a` and `b` picked by `LO` and `HI`, combined by max or add.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn level<const MAX: bool, const BLK: bool, const LO: i32, const HI: i32>(
    a: __m512,
    b: __m512,
) -> __m512 {
    let (lo, hi) = if BLK {
        (
            _mm512_shuffle_f32x4::<LO>(a, b),
            _mm512_shuffle_f32x4::<HI>(a, b),
        )
    } else {
        (_mm512_shuffle_ps::<LO>(a, b), _mm512_shuffle_ps::<HI>(a, b))
    };
    if MAX {
        _mm512_max_ps(lo, hi)
    } else {
        _mm512_add_ps(lo, hi)
    }
}

/// Reduce 16 registers (row r's lanes in `row(r)`, called for r = 0..16 in order) to one
/// register whose lane `4 (r % 4) + r / 4` holds row r's max or sum: 15 combining steps
/// of two shuffles and one op, instead of a 4-step horizontal reduction per row.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn reduce16<const MAX: bool>(mut row: impl FnMut(usize) -> __m512) -> __m512 {
    // Rows (2i, 2i+1) -> 8 partials each; then 4 rows x 4; then 2 x (row k, row 4+k);
    // then one lane per row.
    // (A macro, not a closure: a closure here was not inlined, costing a call per row.)
    macro_rules! quad {
        ($q:expr) => {{
            let t0 = level::<MAX, true, 0x44, 0xEE>(row(4 * $q), row(4 * $q + 1));
            let t1 = level::<MAX, true, 0x44, 0xEE>(row(4 * $q + 2), row(4 * $q + 3));
            level::<MAX, true, 0x88, 0xDD>(t0, t1)
        }};
    }
    let (u0, u1) = (quad!(0), quad!(1));
    let w0 = level::<MAX, false, 0x44, 0xEE>(u0, u1);
    let (u2, u3) = (quad!(2), quad!(3));
    let w1 = level::<MAX, false, 0x44, 0xEE>(u2, u3);
    level::<MAX, false, 0x88, 0xDD>(w0, w1)
}

/// Target logits within this range take `group16`; beyond it the exponents of the
/// Cody-Waite reduction (`exp_parts`, exact for |x| < 2839) would not be exact.
const GROUP_MAX: f32 = 2048.0;
/// Logits are clamped up to this before the reduction: exp(-2560 - x_y) is 0 in float32
/// for every target logit x_y >= -GROUP_MAX, as exp(x - x_y) is for the clamped x.
const GROUP_FLOOR: f32 = -2560.0;
/// Logits are clamped down to this before the reduction, which keeps it exact:
/// e^(2176 - x_y) overflows float32 for every target logit x_y <= GROUP_MAX, as
/// e^(x - x_y) does for the clamped x (so the group hands such rows over).
const GROUP_CEIL: f32 = 2176.0;

/// Lane maps for `group16` with c <= 16 classes: 16 rows of c logits are c full vectors
/// (the "flat" layout), vector k holding elements 16k..16k+16 of the group.
struct Flat {
    c: usize,
    /// lane i of flat vector k: its row, (16k + i) / c (a `permutexvar` index that
    /// broadcasts per-row values, held in row order, to the flat lanes)
    row_of: [__m512i; 16],
    /// lane i of flat vector k: its class, (16k + i) % c
    col_of: [__m512i; 16],
    /// row r's c elements from flat vectors `first[r]` and `first[r] + 1` (a
    /// `permutex2var` index: lane j < c picks element 16 first[r] + (r c % 16) + j)
    pick: [__m512i; 16],
    first: [usize; 16],
}

impl Flat {
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn new(c: usize) -> Flat {
        let zero = _mm512_setzero_si512();
        let (mut row_of, mut col_of, mut pick) = ([zero; 16], [zero; 16], [zero; 16]);
        let mut first = [0; 16];
        // SAFETY (the loads): 16-element arrays.
        for k in 0..c {
            let row: [i32; 16] = std::array::from_fn(|i| ((16 * k + i) / c) as i32);
            let col: [i32; 16] = std::array::from_fn(|i| ((16 * k + i) % c) as i32);
            row_of[k] = unsafe { _mm512_loadu_si512(row.as_ptr().cast()) };
            col_of[k] = unsafe { _mm512_loadu_si512(col.as_ptr().cast()) };
        }
        for r in 0..16 {
            let (k0, o) = (r * c / 16, r * c % 16);
            // The second vector is only read when the row crosses into it; for the last
            // row (o + c <= 16) index the first vector again.
            first[r] = k0.min(c.saturating_sub(2));
            let base = 16 * (k0 - first[r]) + o;
            let idx: [i32; 16] = std::array::from_fn(|j| (base + j.min(c - 1)) as i32);
            pick[r] = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
        }
        Flat {
            c,
            row_of,
            col_of,
            pick,
            first,
        }
    }
}

/// A group's 16 targets: the two registers of int64 classes and the classes as 16 int32
/// lanes.
///
/// # Safety
/// AVX-512F; `tg` holds at least 16 targets.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn targets16(tg: &[i64]) -> (__m512i, __m512i, __m512i) {
    // SAFETY: 16 targets (the caller's guarantee).
    let (t0, t1) = unsafe {
        (
            _mm512_loadu_si512(tg.as_ptr().cast()),
            _mm512_loadu_si512(tg.as_ptr().add(8).cast()),
        )
    };
    let t32 = _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(_mm512_cvtepi64_epi32(t0)),
        _mm512_cvtepi64_epi32(t1),
    );
    (t0, t1, t32)
}

/// Element `cls[j]` of row j, for the 16 rows of `c` elements at `xb`.
///
/// # Safety
/// AVX-512F; 16 rows of `c` elements readable at `xb`; every `cls[j]` in `[0, c)`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn pick16(xb: *const f32, c: usize, cls: __m512i) -> __m512 {
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let pos = _mm512_add_epi32(_mm512_mullo_epi32(iota, _mm512_set1_epi32(c as i32)), cls);
    // SAFETY: j c + cls[j] < 16 c (the caller's guarantee).
    unsafe { _mm512_i32gather_ps::<4>(pos, xb.cast()) }
}

/// The class weights `w[cls[j]]` of 16 rows as two float64 registers (rows 0-7, 8-15);
/// 1 without weights.
///
/// # Safety
/// AVX-512F; every `cls[j]` indexes `weight`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn weights16(weight: Option<&[f64]>, cls: __m512i) -> (__m512d, __m512d) {
    match weight {
        None => (_mm512_set1_pd(1.0), _mm512_set1_pd(1.0)),
        // SAFETY: the caller's guarantee.
        Some(w) => unsafe {
            (
                _mm512_i32gather_pd::<8>(_mm512_castsi512_si256(cls), w.as_ptr().cast()),
                _mm512_i32gather_pd::<8>(_mm512_extracti64x4_epi64::<1>(cls), w.as_ptr().cast()),
            )
        },
    }
}

/// 16 full rows (from `r0`) of c <= 16 classes, computed in the flat layout (`Flat`): the
/// 16c logits are c full vectors, so the exp runs on c vectors with every lane used (16
/// rows one per register used c of the 16 lanes). Per-row values reach the flat lanes by
/// one permute; per-row sums are gathered from the flat vectors by one two-source permute
/// per row and reduced 16 rows at a time (`reduce16`).
///
/// Each row is shifted by its *target* logit instead of its max:
///   loss = lse - x_y = log1p(t),  t = sum_{i != y} e^(x_i - x_y),
///   softmax = e^(x_i - x_y) / (1 + t),  p_y - 1 = -t / (1 + t).
/// No row maximum is needed (its transposing reduction was a third of the group's time),
/// and the accuracy the max shift gives is kept: a confident correct row has a tiny t,
/// computed with full relative accuracy, and the target entry's gradient has no
/// cancellation; a row whose target is not its max has t >= 1. The exps come without the
/// subtraction x - x_y: e^(x - x_y) = 2^(n - n_y) e^r e^(-r_y), with x = n ln2 + r reduced
/// from x itself (exactly, see `exp_parts`), so no rounding of x - x_y needs compensating;
/// each flat lane computes e' = 2^(n - n_y) p(r), the row's t is Q = e^(-r_y) (float64)
/// times the sum of e' over the non-target lanes. One division per 8 rows (`log1p_unit`
/// gives 1/(1 + t) with the logarithm).
///
/// Returns false, writing nothing, when a target logit lies outside +-`GROUP_MAX` (or is
/// NaN), or a row's t is not finite: a NaN in the row, +inf, or a logit so far above the
/// target's (about 88) that e^(x_i - x_y) overflows float32 (a loss above 88; the generic
/// path takes those rows). Ignored rows are shifted by `GROUP_MAX`, under which their exps
/// vanish; their loss and gradient are 0. In place (`dp` == `xp`): every read of x
/// happens before the first write.
///
/// # Safety
/// AVX-512F; rows `r0..r0 + 16` of `fl.c <= 16` elements readable at `xp` (and writable
/// at `dp` when `G`); 16 targets in `[0, c)` or `ctx.ignore_index`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::needless_range_loop)]
unsafe fn group16<const G: bool>(
    xp: *const f32,
    dp: *mut f32,
    fl: &Flat,
    r0: usize,
    tg: &[i64],
    ctx: &CeCtx<'_>,
    losses: &mut [f64],
) -> bool {
    let c = fl.c;
    let valid: __mmask16 = ((1u32 << c) - 1) as __mmask16;
    // SAFETY: the caller guarantees the 16 rows.
    let (xb, db) = unsafe { (xp.add(r0 * c), dp.wrapping_add(r0 * c)) };
    // Targets, 16 lanes: live rows, class (0 for ignored rows, whose lanes are not used),
    // class to match (-1: none), the target logits and weights.
    // SAFETY: 16 targets.
    let (t0, t1, t32) = unsafe { targets16(tg) };
    let ig = _mm512_set1_epi64(ctx.ignore_index);
    let live = (_mm512_cmpneq_epi64_mask(t0, ig) as u16)
        | ((_mm512_cmpneq_epi64_mask(t1, ig) as u16) << 8);
    let tsel = _mm512_maskz_mov_epi32(live, t32);
    let tmatch = _mm512_mask_mov_epi32(_mm512_set1_epi32(-1), live, t32);
    // SAFETY: the 16 rows; t < c (checked by `prepare`; 0 for ignored rows).
    let xy = unsafe { pick16(xb, c, tsel) };
    let xy = _mm512_mask_mov_ps(_mm512_set1_ps(GROUP_MAX), live, xy);
    // (A NaN fails the compare.)
    let inside = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(_mm512_abs_ps(xy), _mm512_set1_ps(GROUP_MAX));
    if inside != 0xFFFF {
        return false;
    }
    let (ny, _) = exp_parts(xy);
    // r_y as the target lane computes it, and per row (before the flat loop, so the
    // out-of-order core can overlap it with the exps) Q = e^(-r_y) and w_y.
    let r_y = _mm512_fnmadd_ps(
        ny,
        _mm512_set1_ps(LN2_LO_F32),
        _mm512_fnmadd_ps(ny, _mm512_set1_ps(LN2_HI_F32), xy),
    );
    let mut rya = [0.0f32; 16];
    let mut wy = [0.0f64; 16];
    // SAFETY: 16-element arrays; the weight gathers read classes < c of a c-entry slice.
    unsafe {
        _mm512_storeu_ps(rya.as_mut_ptr(), r_y);
        let (w0, w1) = weights16(ctx.weight, tsel);
        _mm512_storeu_pd(wy.as_mut_ptr(), _mm512_maskz_mov_pd(live as u8, w0));
        _mm512_storeu_pd(
            wy.as_mut_ptr().add(8),
            _mm512_maskz_mov_pd((live >> 8) as u8, w1),
        );
    }
    let mut q = [0.0f64; 16];
    for j in 0..16 {
        let r = -(rya[j] as f64);
        let mut p = POLY6[6];
        for k in (0..6).rev() {
            p = p.mul_add(r, POLY6[k]);
        }
        q[j] = p;
    }
    // Only vectors 0..c (and en[c], which the last row's permute may name) are written
    // and read: zero-filling the arrays cost 32 stores per group.
    let mut ev = [MaybeUninit::<__m512>::uninit(); 16];
    let mut en = [MaybeUninit::<__m512>::uninit(); 17];
    en[c].write(_mm512_setzero_ps());
    let mut tms = [0 as __mmask16; 16];
    for k in 0..c {
        // SAFETY: flat vector k lies within the group's 16 c elements.
        let x = unsafe { _mm512_loadu_ps(xb.add(16 * k)) };
        let ri = fl.row_of[k];
        // Clamped to [GROUP_FLOOR, GROUP_CEIL] (max_ps / min_ps return their second
        // operand when either is NaN: x second keeps a NaN).
        let xc = _mm512_min_ps(
            _mm512_set1_ps(GROUP_CEIL),
            _mm512_max_ps(_mm512_set1_ps(GROUP_FLOOR), x),
        );
        let (n, p) = exp_parts(xc);
        let e = _mm512_scalef_ps(p, _mm512_sub_ps(n, _mm512_permutexvar_ps(ri, ny)));
        let tm = _mm512_cmpeq_epi32_mask(fl.col_of[k], _mm512_permutexvar_epi32(ri, tmatch));
        tms[k] = tm;
        ev[k].write(e);
        en[k].write(_mm512_maskz_mov_ps(!tm, e));
    }
    let s = reduce16::<false>(
        #[inline(always)]
        |r| {
            let k = fl.first[r];
            // SAFETY: k + 1 <= c (`Flat::new`): written above.
            let (a, b) = unsafe { (en[k].assume_init(), en[k + 1].assume_init()) };
            _mm512_maskz_permutex2var_ps(valid, a, fl.pick[r], b)
        },
    );
    // Row order.
    let nat = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let s = _mm512_permutexvar_ps(nat, s);
    if _mm512_cmp_ps_mask::<_CMP_LT_OQ>(s, _mm512_set1_ps(f32::INFINITY)) != 0xFFFF {
        return false;
    }
    let mut sa = [0.0f32; 16];
    // SAFETY: a 16-element array.
    unsafe { _mm512_storeu_ps(sa.as_mut_ptr(), s) };
    let (mut t, mut l1p, mut inv) = ([0.0f64; 16], [0.0f64; 16], [0.0f64; 16]);
    for j in 0..16 {
        t[j] = sa[j] as f64 * q[j];
        (l1p[j], inv[j]) = log1p_unit::<true>(t[j], 5, |v| 1.0 / v);
    }
    for j in 0..16 {
        losses[j] = wy[j] * l1p[j]; // 0 for ignored rows (w = 0, t finite)
    }
    if G {
        // Ignored rows have w = 0: a = 0, and no lane matches their class.
        let (mut av, mut gt) = ([0.0f32; 16], [0.0f32; 16]);
        for j in 0..16 {
            let gw = ctx.g * wy[j];
            av[j] = (gw * q[j] * inv[j]) as f32;
            gt[j] = (-gw * (t[j] * inv[j])) as f32;
        }
        // SAFETY: 16-element arrays.
        let (av, gt) = unsafe { (_mm512_loadu_ps(av.as_ptr()), _mm512_loadu_ps(gt.as_ptr())) };
        for k in 0..c {
            let ri = fl.row_of[k];
            // SAFETY: written for every k < c above.
            let g = _mm512_mul_ps(
                unsafe { ev[k].assume_init() },
                _mm512_permutexvar_ps(ri, av),
            );
            let g = _mm512_mask_permutexvar_ps(g, tms[k], ri, gt);
            // SAFETY: flat vector k of the group's gradient rows (every read of x is done).
            unsafe { _mm512_storeu_ps(db.add(16 * k), g) };
        }
    }
    true
}

/// One row of `c > 16` float32 logits: max, then the exps (kept in the gradient row when
/// `G`) and their sum in float64 accumulators, then the scale. float32 lanes halve the
/// exp work of the generic path, which computes in float64. Returns the row's loss, or
/// None, writing nothing, when the row has a NaN or a non-finite max (the generic path
/// then gives torch's inf/NaN). In place (`dr` == `xr`), x_y is read first and every
/// vector is loaded before the same vector of the row is stored.
///
/// # Safety
/// AVX-512F; `c` elements readable at `xr` (and writable at `dr` when `G`); `y < c`.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn row_wide<const G: bool>(
    xr: *const f32,
    dr: *mut f32,
    c: usize,
    y: usize,
    wy: f64,
    g: f64,
) -> Option<f64> {
    let full = c / 16 * 16;
    let tail: __mmask16 = ((1u32 << (c % 16)) - 1) as __mmask16;
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    // SAFETY (every load and store below): lanes i..i+16 for i < full, and the `tail`
    // lanes after them, are within the row's c elements.
    let xy = unsafe { *xr.add(y) };
    let (mut m0, mut m1) = (ninf, ninf);
    let mut i = 0;
    while i + 32 <= full {
        m0 = _mm512_max_ps(m0, unsafe { _mm512_loadu_ps(xr.add(i)) });
        m1 = _mm512_max_ps(m1, unsafe { _mm512_loadu_ps(xr.add(i + 16)) });
        i += 32;
    }
    if i < full {
        m0 = _mm512_max_ps(m0, unsafe { _mm512_loadu_ps(xr.add(i)) });
    }
    m1 = _mm512_max_ps(m1, unsafe {
        _mm512_mask_loadu_ps(ninf, tail, xr.add(full))
    });
    // (max_ps drops a NaN in its first operand: NaN rows are caught by the sum below.)
    let m = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    if !m.is_finite() {
        return None;
    }
    let mv = _mm512_set1_ps(m);
    let (mut a0, mut a1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let mut ties = 0u32;
    // exp(x - m) of the lanes in `k`; the sum skips the maxima (counted in `ties`), so
    // one of them can be excluded exactly; lanes outside `k` give 0.
    let mut step = |v: __m512, k: __mmask16| -> __m512 {
        let d = _mm512_maskz_sub_ps(k, v, mv);
        // TwoSum error of x - m put back (see `group16`): the gradient keeps float32
        // relative accuracy even for far-from-max entries. Also without a gradient, so
        // that the loss does not depend on whether one is asked for.
        let z = _mm512_sub_ps(d, v);
        let lo = _mm512_sub_ps(_mm512_sub_ps(v, _mm512_sub_ps(d, z)), _mm512_add_ps(mv, z));
        let fin = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(k, d, _mm512_set1_ps(-104.0));
        // The correction goes on p, before the scale: a subnormal result is then
        // rounded once (correcting it after would round it twice).
        let (n, p) = exp_parts(_mm512_max_ps(_mm512_set1_ps(-110.0), d));
        let e = _mm512_scalef_ps(_mm512_mask_fmadd_ps(p, fin, lo, p), n);
        let eq = _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(k, d, _mm512_setzero_ps());
        ties += eq.count_ones();
        let es = _mm512_maskz_mov_ps(k & !eq, e);
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(es)));
        a1 = _mm512_add_pd(
            a1,
            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                _mm512_castps_pd(es),
            ))),
        );
        e
    };
    let mut i = 0;
    while i < full {
        let e = step(unsafe { _mm512_loadu_ps(xr.add(i)) }, 0xFFFF);
        if G {
            unsafe { _mm512_storeu_ps(dr.add(i), e) };
        }
        i += 16;
    }
    if tail != 0 {
        let e = step(unsafe { _mm512_maskz_loadu_ps(tail, xr.add(full)) }, tail);
        if G {
            unsafe { _mm512_mask_storeu_ps(dr.add(full), tail, e) };
        }
    }
    let s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1)) + (ties as f64 - 1.0);
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
        let av = _mm512_set1_ps((g * wy * inv) as f32);
        let ey = unsafe { *dr.add(y) } as f64;
        let mut i = 0;
        while i < full {
            unsafe { _mm512_storeu_ps(dr.add(i), _mm512_mul_ps(_mm512_loadu_ps(dr.add(i)), av)) };
            i += 16;
        }
        if tail != 0 {
            unsafe {
                let v = _mm512_maskz_loadu_ps(tail, dr.add(full));
                _mm512_mask_storeu_ps(dr.add(full), tail, _mm512_mul_ps(v, av));
            }
        }
        // p_y - 1 = ((e_y - 1) - s)/(1 + s), without cancellation.
        unsafe { *dr.add(y) = (g * wy * (((ey - 1.0) - s) * inv)) as f32 };
    }
    Some(loss)
}

/// Hinge rows of float32 scores on AVX-512 (see `hinge::hinge_rows_f32`).
///
/// # Safety
/// AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn hinge_rows<S: Src<f32> + ?Sized, const G: bool>(
    x: &S,
    dst: &[Cell<f32>],
    targets: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
) {
    let c = h.c;
    if c <= 16 && h.p == 1 && h.kind != Hinge::CrammerSinger {
        // Small rows: 16-row groups in the flat layout (`hinge_group16`).
        let rows = targets.len();
        assert!(x.n() >= rows * c && losses.len() >= rows && (!G || dst.len() >= rows * c));
        let (xp, dp) = (x.base(), dst.as_ptr() as *mut f32);
        let flat = Flat::new(c);
        // SAFETY: a scratch group holds 16 rows of c; AVX-512F and POPCNT as below.
        let mut grp = |xs: &[f32], ds: &[Cell<f32>], ts: &[i64], ls: &mut [f64]| unsafe {
            hinge_group16::<G>(xs.as_ptr(), ds.as_ptr() as *mut f32, &flat, 0, ts, h, ls)
        };
        let mut generic = |r: usize, l: &mut [f64]| {
            hinge_rows_range::<f32, S, G>(x, dst, targets, h, l, r, r + 1)
        };
        // SAFETY: rows r0..r0+16 are in bounds (asserted); targets were checked by
        // `hinge`; AVX-512F is enabled here and POPCNT detected with the level.
        let mut main = |r0: usize, l: &mut [f64]| unsafe {
            hinge_group16::<G>(xp, dp, &flat, r0, &targets[r0..r0 + 16], h, l)
        };
        return drive::<f32, S, G>(
            16,
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
    // SAFETY: AVX-512F is enabled here.
    unsafe { hinge_rows_f32::<S, G>(x, dst, targets, h, losses, hinge_row_wide::<G>) }
}

/// Bits `pos..pos + len` (len <= 16) of a bit string held in little-endian words.
#[inline(always)]
pub(crate) fn bits(words: &[u64; 4], pos: usize, len: usize) -> u32 {
    let (w, o) = (pos / 64, pos % 64);
    let mut v = words[w] >> o;
    if o + len > 64 {
        v |= words[w + 1] << (64 - o);
    }
    (v & ((1u64 << len) - 1)) as u32
}

/// 16 full rows (from `r0`) of `c <= 16` float32 scores for the Weston-Watkins and torch
/// multi-margin hinge with p = 1, in the flat layout of `group16` (c full vectors): the
/// exact violator test of `hinge_row_wide` (x_i > thr32, the largest float32 <= x_y -
/// margin; NaN counts, as in torch) against each row's threshold broadcast by one
/// permute, the violators' z = x_i - thr32 summed per row through `reduce16`, and the
/// violators counted per row from the compare masks (`popcnt`); the loss is
/// sc (sum z - count (thr - thr32)). Returns false, writing nothing, when a row's
/// threshold is not finite or beyond float32's range. In place, every read precedes
/// every write.
///
/// # Safety
/// AVX-512F and POPCNT; rows `r0..r0 + 16` of `fl.c <= 16` elements readable at `xp`
/// (writable at `dp` when `G`); targets in `[0, c)`.
#[target_feature(enable = "avx512f,avx2,fma,popcnt")]
#[allow(clippy::needless_range_loop)]
unsafe fn hinge_group16<const G: bool>(
    xp: *const f32,
    dp: *mut f32,
    fl: &Flat,
    r0: usize,
    tg: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
) -> bool {
    let c = fl.c;
    let valid: __mmask16 = ((1u32 << c) - 1) as __mmask16;
    // SAFETY: the caller guarantees the 16 rows.
    let (xb, db) = unsafe { (xp.add(r0 * c), dp.wrapping_add(r0 * c)) };
    // Per row, 16 lanes (`f32_threshold` vectorised; a scalar loop over the rows was a
    // third of the group): thr = x_y - margin in float64, thr32 the largest float32 <= thr
    // (a conversion rounding toward -inf), delta = thr - thr32, sc = w_y / div.
    // SAFETY: 16 targets, each < c (checked by `hinge`), of the 16 rows.
    let (_, _, tyv) = unsafe { targets16(tg) };
    let xy = unsafe { pick16(xb, c, tyv) };
    let margin = _mm512_set1_pd(h.margin);
    let thr_lo = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(xy)), margin);
    let thr_hi = _mm512_sub_pd(
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
            _mm512_castps_pd(xy),
        ))),
        margin,
    );
    // |thr| < 1e30 (a NaN fails): beyond, the generic rows.
    let big = _mm512_set1_pd(1e30);
    let ok = (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(thr_lo), big) as u16)
        | ((_mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(thr_hi), big) as u16) << 8);
    if ok != 0xFFFF {
        return false;
    }
    let down =
        |v: __m512d| _mm512_cvt_roundpd_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(v);
    let (d_lo, d_hi) = (down(thr_lo), down(thr_hi));
    let thr = _mm512_castpd_ps(_mm512_insertf64x4::<1>(
        _mm512_castpd256_pd512(_mm256_castps_pd(d_lo)),
        _mm256_castps_pd(d_hi),
    ));
    let (mut delta, mut sc) = ([0.0f64; 16], [0.0f64; 16]);
    let div = _mm512_set1_pd(if h.kind == Hinge::MultiMargin {
        c as f64
    } else {
        1.0
    });
    // SAFETY: 16-element arrays; the weight gathers read classes < c of a c-entry slice.
    unsafe {
        _mm512_storeu_pd(
            delta.as_mut_ptr(),
            _mm512_sub_pd(thr_lo, _mm512_cvtps_pd(d_lo)),
        );
        _mm512_storeu_pd(
            delta.as_mut_ptr().add(8),
            _mm512_sub_pd(thr_hi, _mm512_cvtps_pd(d_hi)),
        );
        let (w0, w1) = weights16(h.weight, tyv);
        _mm512_storeu_pd(sc.as_mut_ptr(), _mm512_div_pd(w0, div));
        _mm512_storeu_pd(sc.as_mut_ptr().add(8), _mm512_div_pd(w1, div));
    }
    let mut en = [MaybeUninit::<__m512>::uninit(); 17];
    en[c].write(_mm512_setzero_ps());
    let (mut act, mut tms) = ([0 as __mmask16; 16], [0 as __mmask16; 16]);
    let mut aw = [0u64; 4];
    for k in 0..c {
        // SAFETY: flat vector k lies within the group's 16 c elements.
        let x = unsafe { _mm512_loadu_ps(xb.add(16 * k)) };
        let ri = fl.row_of[k];
        let tb = _mm512_permutexvar_ps(ri, thr);
        let tm = _mm512_cmpeq_epi32_mask(fl.col_of[k], _mm512_permutexvar_epi32(ri, tyv));
        // x > thr32 or NaN, never the target's own lane.
        let a = _mm512_mask_cmp_ps_mask::<_CMP_NLE_UQ>(!tm, x, tb);
        (act[k], tms[k]) = (a, tm);
        aw[k / 4] |= (a as u64) << (16 * (k % 4));
        en[k].write(_mm512_maskz_sub_ps(a, x, tb));
    }
    let s = reduce16::<false>(
        #[inline(always)]
        |r| {
            let k = fl.first[r];
            // SAFETY: k + 1 <= c (`Flat::new`): written above.
            let (a, b) = unsafe { (en[k].assume_init(), en[k + 1].assume_init()) };
            _mm512_maskz_permutex2var_ps(valid, a, fl.pick[r], b)
        },
    );
    let nat = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let mut sa = [0.0f32; 16];
    // SAFETY: a 16-element array.
    unsafe { _mm512_storeu_ps(sa.as_mut_ptr(), _mm512_permutexvar_ps(nat, s)) };
    let mut cnt = [0.0f64; 16];
    for j in 0..16 {
        cnt[j] = bits(&aw, j * c, c).count_ones() as f64;
    }
    for j in 0..16 {
        losses[j] = sc[j] * (sa[j] as f64 - cnt[j] * delta[j]);
    }
    if G {
        // Violators get g sc; the target minus the sum of the others, as the generic path.
        let (mut gv, mut gy) = ([0.0f32; 16], [0.0f32; 16]);
        for j in 0..16 {
            let gsc = h.g * sc[j];
            gv[j] = gsc as f32;
            gy[j] = (-(gsc * cnt[j])) as f32;
        }
        // SAFETY: 16-element arrays.
        let (gv, gy) = unsafe { (_mm512_loadu_ps(gv.as_ptr()), _mm512_loadu_ps(gy.as_ptr())) };
        for k in 0..c {
            let ri = fl.row_of[k];
            let g = _mm512_maskz_permutexvar_ps(act[k], ri, gv);
            let g = _mm512_mask_permutexvar_ps(g, tms[k], ri, gy);
            // SAFETY: flat vector k of the group's gradient rows (every read of x is done).
            unsafe { _mm512_storeu_ps(db.add(16 * k), g) };
        }
    }
    true
}

/// One row of `c > 16` float32 scores for the Weston-Watkins and torch multi-margin hinge
/// losses, in float32 lanes (the generic path widens every score to float64). A score
/// is a violator when x_i > thr = x_y - margin; with thr32 the largest float32 <= thr
/// that test is exactly x_i > thr32, and z_i = x_i - thr is (x_i - thr32) - delta with
/// delta = thr - thr32 in [0, ulp(thr)). The loss sums in float64. Returns None (writing
/// nothing) when thr is not finite or beyond float32's range, for the generic path.
///
/// # Safety
/// AVX-512F; `c` elements readable at `xr` (and writable at `dr` when `G`); `y < c`.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn hinge_row_wide<const G: bool>(
    xr: *const f32,
    dr: *mut f32,
    c: usize,
    y: usize,
    h: &HingeCtx<'_>,
) -> Option<f64> {
    // SAFETY (every load and store below): lanes i..i+16 for i < full, and the `tail`
    // lanes after them, are within the row's c elements; y < c.
    // (None also for NaN: the generic path propagates it.)
    let (t32, delta, sc) = f32_threshold(unsafe { *xr.add(y) }, y, h)?;
    let sq = h.p == 2;
    let gsc = h.g * sc;
    let (tv, dv) = (_mm512_set1_ps(t32), _mm512_set1_pd(delta));
    let g1 = _mm512_set1_ps(gsc as f32);
    let g2 = _mm512_set1_pd(2.0 * gsc);
    let full = c / 16 * 16;
    let tail: __mmask16 = ((1u32 << (c % 16)) - 1) as __mmask16;
    let (mut a0, mut a1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let (mut b0, mut b1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let mut count = 0u64;
    // Sum z (p = 1) or z^2 (p = 2) over the violators in `k`; returns the gradient lanes.
    let mut step = |v: __m512, k: __mmask16| -> __m512 {
        // v > thr32, or NaN (a NaN score is a violation, as in torch).
        let act = _mm512_mask_cmp_ps_mask::<_CMP_NLE_UQ>(k, v, tv);
        let z = _mm512_maskz_sub_ps(act, v, tv);
        let zl = _mm512_cvtps_pd(_mm512_castps512_ps256(z));
        let zh = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
            _mm512_castps_pd(z),
        )));
        if sq {
            // z - delta, zero off the violators (act's low and high byte).
            let zl = _mm512_maskz_sub_pd(act as u8, zl, dv);
            let zh = _mm512_maskz_sub_pd((act >> 8) as u8, zh, dv);
            a0 = _mm512_fmadd_pd(zl, zl, a0);
            a1 = _mm512_fmadd_pd(zh, zh, a1);
            if G {
                b0 = _mm512_add_pd(b0, zl);
                b1 = _mm512_add_pd(b1, zh);
                let gl = _mm512_cvtpd_ps(_mm512_mul_pd(zl, g2));
                let gh = _mm512_cvtpd_ps(_mm512_mul_pd(zh, g2));
                return _mm512_castpd_ps(_mm512_insertf64x4::<1>(
                    _mm512_castpd256_pd512(_mm256_castps_pd(gl)),
                    _mm256_castps_pd(gh),
                ));
            }
        } else {
            a0 = _mm512_add_pd(a0, zl);
            a1 = _mm512_add_pd(a1, zh);
            count += act.count_ones() as u64;
            if G {
                return _mm512_maskz_mov_ps(act, g1);
            }
        }
        _mm512_setzero_ps()
    };
    // The target's own lane is not a violator.
    let not_y = |i: usize| -> __mmask16 {
        if (i..i + 16).contains(&y) {
            !(1u16 << (y - i))
        } else {
            0xFFFF
        }
    };
    let mut i = 0;
    while i < full {
        let g = step(unsafe { _mm512_loadu_ps(xr.add(i)) }, not_y(i));
        if G {
            unsafe { _mm512_storeu_ps(dr.add(i), g) };
        }
        i += 16;
    }
    if tail != 0 {
        let g = step(
            unsafe { _mm512_maskz_loadu_ps(tail, xr.add(full)) },
            tail & not_y(full),
        );
        if G {
            unsafe { _mm512_mask_storeu_ps(dr.add(full), tail, g) };
        }
    }
    let s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    let (total, gsum) = if sq {
        (s, 2.0 * gsc * _mm512_reduce_add_pd(_mm512_add_pd(b0, b1)))
    } else {
        (s - count as f64 * delta, gsc * count as f64)
    };
    if G {
        // The target's entry: minus the sum of the others, as the generic path.
        unsafe { *dr.add(y) = (-gsum) as f32 };
    }
    Some(sc * total)
}

/// Element-wise losses of float32 data on AVX-512: binary cross-entropy with logits
/// without `weight` and `pos_weight` in float32 lanes ([`bce_plain`]); the other kinds
/// and options take the generic kernel (`elementwise::run`), compiled here for AVX-512.
/// `x` may be `dst` itself (in place).
///
/// # Safety
/// AVX-512F (with AVX2 and FMA).
#[target_feature(enable = "avx512f,avx2,fma")]
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

/// `avx2_f32::bce_plain` in 16 float32 lanes (the same formulas, groupings and inf/NaN
/// cases; see there): t = e^{-|x|}, log1p(t) by `LOG1P_UNIT9`, sigma from one division,
/// the loss summed in float64. Each block is loaded before it is stored, so `xp` may be
/// `dst`.
///
/// Four vectors per step, every stage done for the four in turn: one vector's chain (exp,
/// log1p, division: about 100 cycles of latency) is far longer than its work, and the
/// out-of-order window did not reach far enough ahead to overlap the next vectors'
/// chains; interleaved, (262144, 10) forward + gradient went from 1.45 to 1.03 ms on one
/// thread (forward 1.19 -> 0.81 ms).
///
/// # Safety
/// AVX-512F; `y.len()` elements readable at `xp`, and in `per` and (when `G`) `dst`.
#[target_feature(enable = "avx512f,avx2,fma")]
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
    let gs = _mm512_set1_ps(gscale as f32);
    // Loss and gradient lanes of U vectors of 16 logits and targets, every stage done for
    // the U vectors in turn (see the function's comment); lanes outside `keep` add
    // nothing to the sum.
    const U: usize = 4;
    let mut acc = [_mm512_setzero_pd(); 2];
    let mut step = |x: [__m512; U], yv: [__m512; U], keep: [__mmask16; U]| {
        let one = _mm512_set1_ps(1.0);
        let sign = _mm512_set1_ps(-0.0);
        let zero = _mm512_setzero_ps();
        let mut t = [zero; U];
        let mut n = [zero; U];
        for k in 0..U {
            // -|x| (NaN stays NaN), floored at -110 (max_ps returns its second operand
            // when either is NaN: the NaN second keeps it), then exp_parts' steps.
            t[k] = _mm512_max_ps(_mm512_set1_ps(-110.0), or_ps(x[k], sign));
            n[k] = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_mul_ps(t[k], _mm512_set1_ps(std::f32::consts::LOG2_E)),
            );
        }
        for k in 0..U {
            t[k] = _mm512_fnmadd_ps(n[k], _mm512_set1_ps(LN2_HI_F32), t[k]);
        }
        for k in 0..U {
            t[k] = _mm512_fnmadd_ps(n[k], _mm512_set1_ps(LN2_LO_F32), t[k]);
        }
        let mut p = [_mm512_set1_ps(EXP7_F32[0]); U];
        for c in &EXP7_F32[1..] {
            for k in 0..U {
                p[k] = _mm512_fmadd_ps(p[k], t[k], _mm512_set1_ps(*c));
            }
        }
        for k in 0..U {
            t[k] = _mm512_scalef_ps(p[k], n[k]); // e^-|x|, rounded once
        }
        let mut q = [_mm512_set1_ps(LOG1P_UNIT9[9] as f32); U];
        for c in LOG1P_UNIT9[..9].iter().rev() {
            for k in 0..U {
                q[k] = _mm512_fmadd_ps(q[k], t[k], _mm512_set1_ps(*c as f32));
            }
        }
        let (mut l, mut g) = ([zero; U], [zero; U]);
        for k in 0..U {
            let l1p = _mm512_mul_ps(t[k], q[k]);
            let inv = _mm512_div_ps(one, _mm512_add_ps(one, t[k]));
            let ti = _mm512_mul_ps(t[k], inv);
            let pos = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x[k], zero);
            let (sig, sigc) = (
                _mm512_mask_mov_ps(ti, pos, inv),
                _mm512_mask_mov_ps(inv, pos, ti),
            );
            let omy = _mm512_sub_ps(one, yv[k]);
            let lin = _mm512_mask_mov_ps(
                xor_ps(_mm512_mul_ps(x[k], yv[k]), sign),
                pos,
                _mm512_mul_ps(omy, x[k]),
            );
            // The element's loss in float32 (the value `per` stores), summed in float64.
            l[k] = _mm512_maskz_add_ps(keep[k], lin, l1p);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(l[k])));
            acc[0] = _mm512_add_pd(acc[0], _mm512_cvtps_pd(_mm512_castps512_ps256(l[k])));
            acc[1] = _mm512_add_pd(acc[1], _mm512_cvtps_pd(hi));
            // (1 - y) sigma - y (1 - sigma): no 1 - sigma rounding a tiny gradient away.
            let gk = _mm512_fmsub_ps(omy, sig, _mm512_mul_ps(yv[k], sigc));
            g[k] = _mm512_mul_ps(gk, gs);
        }
        (l, g)
    };
    // SAFETY (the loads and stores): `padded_blocks` hands over 16U elements behind
    // each pointer; the caller guarantees the arrays.
    unsafe {
        padded_blocks::<f32, { 16 * U }>(n, (xp, yp), pp, (dp, G), |sx, sy, sl, sg, r| {
            let keep: [__mmask16; U] = std::array::from_fn(|k| {
                let m = r.saturating_sub(16 * k).min(16);
                ((1u32 << m) - 1) as __mmask16
            });
            let x: [__m512; U] = std::array::from_fn(|k| _mm512_loadu_ps(sx.add(16 * k)));
            let yv: [__m512; U] = std::array::from_fn(|k| _mm512_loadu_ps(sy.add(16 * k)));
            let (l, g) = step(x, yv, keep);
            for k in 0..U {
                if let Some(sl) = sl {
                    _mm512_storeu_ps(sl.add(16 * k), l[k]);
                }
                if G {
                    _mm512_storeu_ps(sg.add(16 * k), g[k]);
                }
            }
        })
    };
    _mm512_reduce_add_pd(_mm512_add_pd(acc[0], acc[1]))
}
