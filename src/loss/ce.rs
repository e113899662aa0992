//! Cross-entropy over logits (N, C), class-index or probability targets, with torch's
//! `weight`, `ignore_index`, `label_smoothing` and `reduction`, fused with its gradient.
//!
//! Per row (index target y, weights w, smoothing eps, g = 1/W for 'mean' else 1):
//!   loss = (1-eps) w_y (lse - x_y) + (eps/C) sum_c w_c (lse - x_c)
//!   grad = g [ p ((1-eps) w_y + (eps/C) sum w) - (1-eps) w_y e_y - (eps/C) w ]
//! with lse = m + log1p(s) (s the sum without one max entry, as in the softmax kernels), so
//! a confident correct row keeps full relative accuracy (loss log1p(s), not a rounded 0),
//! and the target entry's gradient is formed as ((e_y - 1) - s)/(1 + s) without
//! cancellation.

use std::cell::Cell;

use rayon::prelude::*;

use super::group::drive;
use super::{dispatch, pairwise, task_sum, Reduction};
use crate::error::{Error, Result};
use crate::ops::kernel::{excl, load, max, special_lse, store, sumexp, Cells, Elem, Src};
use crate::parallel::pool;
use crate::simd::exp::{exp_block, log1p_pos};
use crate::simd::{fmadd, L};

/// Options shared by the row kernels.
#[derive(Clone, Copy, Debug)]
pub struct CeCtx<'a> {
    pub c: usize,
    pub weight: Option<&'a [f64]>,
    /// sum of the class weights (C when unweighted)
    pub wsum: f64,
    pub eps: f64,
    /// gradient scale: 1/W for 'mean', 1 otherwise
    pub g: f64,
    pub ignore_index: i64,
    /// 'mean' with a total target weight W of 0: torch's 0/0, a NaN loss and NaN gradient
    /// rows for the rows that are not ignored (ignored rows keep 0). The kernels run with
    /// scale 1 and the driver applies this after (an inf scale would give ignored rows
    /// 0 * inf = NaN in the group kernels).
    pub zero_total: bool,
}

/// sum_c w_c (m - x_c): every term is >= 0, so the sum is accurate.
#[inline(always)]
fn smooth_sum<T: Elem, S: Src<T> + ?Sized>(
    x: &S,
    base: usize,
    c: usize,
    m: f64,
    w: Option<&[f64]>,
) -> f64 {
    let mut acc = [0.0; L];
    let mut i = 0;
    while i < c {
        let v = load(x, base, i, c, m);
        match w {
            Some(w) => {
                let wb = load(w, 0, i, c, 0.0);
                for j in 0..L {
                    acc[j] += wb[j] * (m - v[j]);
                }
            }
            None => {
                for j in 0..L {
                    acc[j] += m - v[j];
                }
            }
        }
        i += L;
    }
    crate::ops::kernel::hsum(acc)
}

/// dst_c = dst_c * a - k * w_c   (w_c = 1 when unweighted)
#[inline(always)]
fn affine<T: Elem>(dst: &[Cell<T>], a: f64, k: f64, w: Option<&[f64]>) {
    let len = dst.len();
    let mut i = 0;
    while i < len {
        let mut v = load(&Cells(dst), 0, i, len, 0.0);
        match w {
            Some(w) => {
                let wb = load(w, 0, i, len, 0.0);
                for j in 0..L {
                    v[j] = v[j] * a - k * wb[j];
                }
            }
            None => {
                for j in 0..L {
                    v[j] = v[j] * a - k;
                }
            }
        }
        store(dst, i, len, &v);
        i += L;
    }
}

fn fill<T: Elem>(dst: &[Cell<T>], v: f64) {
    for d in dst {
        d.set(T::from_f64(v));
    }
}

/// One row with class-index target `y` (already checked, not ignored).
#[inline(always)]
pub(crate) fn ce_row<T: Elem, S: Src<T> + ?Sized, const F: bool, const G: bool>(
    x: &S,
    base: usize,
    dst: &[Cell<T>],
    y: usize,
    ctx: &CeCtx<'_>,
) -> f64 {
    let c = ctx.c;
    let wy = ctx.weight.map_or(1.0, |w| w[y]);
    let xy = x.at(base + y).to_f64();
    let m = max(x, base, c);
    if !m.is_finite() {
        // A row with +inf, or only -inf/NaN: the loss follows the formula (inf or NaN),
        // the gradient is NaN, as in torch.
        // Every read of x comes before the NaN fill: dst may be x itself (the gradient
        // written over the logits), and the loss must not depend on that.
        let lse = special_lse(x, base, c, m);
        let mut l = (1.0 - ctx.eps) * wy * (lse - xy);
        if ctx.eps > 0.0 {
            let sm: f64 = (0..c)
                .map(|i| ctx.weight.map_or(1.0, |w| w[i]) * (lse - x.at(base + i).to_f64()))
                .sum();
            l += ctx.eps / c as f64 * sm;
        }
        if G {
            fill(dst, f64::NAN);
        }
        return l;
    }
    let eps = ctx.eps;
    let cf = c as f64;
    let smooth = if eps > 0.0 {
        smooth_sum(x, base, c, m, ctx.weight)
    } else {
        0.0
    };
    let s = if G {
        sumexp::<T, S, F, true>(x, base, c, dst, m)
    } else {
        sumexp::<T, S, F, false>(x, base, c, &[], m)
    };
    let sx = excl(s);
    let l1p = sx.ln_1p();
    let loss = (1.0 - eps) * wy * ((m - xy) + l1p) + (eps / cf) * (smooth + l1p * ctx.wsum);
    if G {
        let g = ctx.g;
        let inv = 1.0 / (1.0 + sx);
        let a = g * ((1.0 - eps) * wy + (eps / cf) * ctx.wsum) * inv;
        affine(dst, a, g * eps / cf, ctx.weight);
        // The target entry without cancellation: p_y - 1 = ((e_y - 1) - s) / (1 + s).
        let ey = if xy == m { 1.0 } else { (xy - m).exp() };
        let gy = g
            * ((1.0 - eps) * wy * (((ey - 1.0) - sx) * inv)
                + (eps / cf) * (ey * inv * ctx.wsum - wy));
        dst[y].set(T::from_f64(gy));
    }
    loss
}

/// A hand-written float32 row kernel (`avx512_f32`, `avx2_f32`): logits at `xr`, the
/// gradient row at `dr` (when it computes one; possibly `xr` itself), c, y, w_y and the
/// gradient scale. None: it wrote nothing, the generic row takes over.
#[cfg(target_arch = "x86_64")]
pub(crate) type WideRow = unsafe fn(*const f32, *mut f32, usize, usize, f64, f64) -> Option<f64>;

/// float32 rows `a..b` one at a time: ignored rows are zero, the others go to `row` when
/// given, and to the generic row when there is none or it declines (inlined into the
/// callers, so that row is compiled for their target features).
///
/// # Safety
/// `row` must be safe to call on this CPU; `x` holds the rows' `targets.len() * c`
/// logits, `dst` (when `G`) as many gradient entries; targets were checked by `prepare`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn f32_rows_by_row<S: Src<f32> + ?Sized, const G: bool>(
    x: &S,
    dst: &[Cell<f32>],
    targets: &[i64],
    ctx: &CeCtx<'_>,
    losses: &mut [f64],
    a: usize,
    b: usize,
    row: Option<WideRow>,
) {
    let c = ctx.c;
    assert!(x.n() >= b * c && losses.len() >= b && (!G || dst.len() >= b * c));
    let (xp, dp) = (x.base(), dst.as_ptr() as *mut f32);
    for r in a..b {
        let d = if G { &dst[r * c..(r + 1) * c] } else { dst };
        let t = targets[r];
        losses[r] = if t == ctx.ignore_index {
            if G {
                d.iter().for_each(|v| v.set(0.0));
            }
            0.0
        } else {
            let wy = ctx.weight.map_or(1.0, |w| w[t as usize]);
            // SAFETY: row r is in bounds (asserted above), t < c (`prepare`); the caller
            // vouches for `row` on this CPU.
            let fast = row.and_then(|f| unsafe {
                f(
                    xp.add(r * c),
                    dp.wrapping_add(r * c),
                    c,
                    t as usize,
                    wy,
                    ctx.g,
                )
            });
            match fast {
                Some(l) => l,
                None => ce_row::<f32, S, true, G>(x, r * c, d, t as usize, ctx),
            }
        };
    }
}

/// Rows of one task, index targets. `dst` is empty when no gradient is wanted.
#[inline(always)]
pub(crate) fn ce_rows<T: Elem, S: Src<T> + ?Sized, const F: bool, const G: bool>(
    x: &S,
    dst: &[Cell<T>],
    targets: &[i64],
    ctx: &CeCtx<'_>,
    losses: &mut [f64],
) {
    let c = ctx.c;
    if c > SMALL_N {
        return ce_rows_range::<T, S, F, G>(x, dst, targets, ctx, losses, 0, targets.len());
    }
    let mut buf = [[0.0; L]; SMALL_N];
    let mut sbuf = [[0.0; L]; SMALL_N];
    // Leftover rows and the rows of a group holding a non-finite max go through a padded
    // scratch group (`group::leftover`), so every row's bits come from the group kernel.
    let mut grp = |xs: &[T], ds: &[Cell<T>], ts: &[i64], ls: &mut [f64]| {
        let tg: &[i64; L] = ts.try_into().expect("L targets");
        ce_small_group::<T, [T], F, G>(xs, 0, ds, tg, ctx, &mut sbuf, ls)
    };
    let mut generic =
        |r: usize, l: &mut [f64]| ce_rows_range::<T, S, F, G>(x, dst, targets, ctx, l, r, r + 1);
    let mut main = |start: usize, l: &mut [f64]| {
        let d = if G {
            &dst[start * c..(start + L) * c]
        } else {
            dst
        };
        let tg: &[i64; L] = targets[start..start + L].try_into().expect("L targets");
        ce_small_group::<T, S, F, G>(x, start, d, tg, ctx, &mut buf, l)
    };
    drive::<T, S, G>(
        L,
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

/// Rows `a..b` one at a time by the generic row (ignored rows give zeros): the tail of
/// [`ce_rows`] and the fallback of hand-written group kernels.
#[inline(always)]
pub(crate) fn ce_rows_range<T: Elem, S: Src<T> + ?Sized, const F: bool, const G: bool>(
    x: &S,
    dst: &[Cell<T>],
    targets: &[i64],
    ctx: &CeCtx<'_>,
    losses: &mut [f64],
    a: usize,
    b: usize,
) {
    let c = ctx.c;
    for r in a..b {
        let d = if G { &dst[r * c..(r + 1) * c] } else { dst };
        let t = targets[r];
        if t == ctx.ignore_index {
            losses[r] = 0.0;
            if G {
                fill(d, 0.0);
            }
            continue;
        }
        losses[r] = ce_row::<T, S, F, G>(x, r * c, d, t as usize, ctx);
    }
}

/// Rows of at most this many classes are processed `L` at a time, one row per lane.
const SMALL_N: usize = crate::ops::kernel::SMALL_N;

/// `L` rows (from row `r0`) with few classes, one row per lane: gather transposed, compute
/// max, sums, loss and gradient lane-wise, scatter back. Returns false (writing nothing)
/// when a row max is not finite, so the caller falls back to the per-row path.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn ce_small_group<T: Elem, S: Src<T> + ?Sized, const F: bool, const G: bool>(
    x: &S,
    r0: usize,
    dst: &[Cell<T>],
    tg: &[i64; L],
    ctx: &CeCtx<'_>,
    buf: &mut [[f64; L]; SMALL_N],
    losses: &mut [f64],
) -> bool {
    let c = ctx.c;
    let cf = c as f64;
    let eps = ctx.eps;
    for (cc, b) in buf.iter_mut().enumerate().take(c) {
        for (j, v) in b.iter_mut().enumerate() {
            *v = x.at((r0 + j) * c + cc).to_f64();
        }
    }
    let mut m = [f64::NEG_INFINITY; L];
    for b in buf.iter().take(c) {
        for j in 0..L {
            m[j] = if b[j] > m[j] { b[j] } else { m[j] };
        }
    }
    if m.iter().any(|v| !v.is_finite()) {
        return false;
    }
    let mut y = [0usize; L];
    let mut live = [false; L];
    let mut wy = [0.0; L];
    let mut xy = [0.0; L];
    for j in 0..L {
        live[j] = tg[j] != ctx.ignore_index;
        y[j] = if live[j] { tg[j] as usize } else { 0 };
        wy[j] = ctx.weight.map_or(1.0, |w| w[y[j]]);
        xy[j] = buf[y[j]][j];
    }
    let mut smooth = [0.0; L];
    if eps > 0.0 {
        for (cc, b) in buf.iter().enumerate().take(c) {
            let wc = ctx.weight.map_or(1.0, |w| w[cc]);
            for j in 0..L {
                smooth[j] += wc * (m[j] - b[j]);
            }
        }
    }
    let mut acc = [0.0; L];
    let mut cnt = [0.0; L];
    for b in buf.iter_mut().take(c) {
        let mut e = [0.0; L];
        let mut lo = [0.0; L];
        for j in 0..L {
            let d = b[j] - m[j];
            e[j] = d;
            if T::TWO_SUM {
                let z = d - b[j];
                let err = (b[j] - (d - z)) + (-m[j] - z);
                lo[j] = if d > -746.0 { err } else { 0.0 };
            }
        }
        exp_block::<F>(&mut e, T::COEF, T::LOW, T::SPLIT);
        for j in 0..L {
            if T::TWO_SUM {
                e[j] = fmadd::<F>(e[j], lo[j], e[j]);
            }
            let is_max = b[j] == m[j];
            cnt[j] += if is_max { 1.0 } else { 0.0 };
            acc[j] += if is_max { 0.0 } else { e[j] };
        }
        *b = e; // keep e for the gradient
    }
    let mut sx = [0.0; L];
    let mut l1p = [0.0; L];
    for j in 0..L {
        sx[j] = acc[j] + (cnt[j] - 1.0);
        l1p[j] = log1p_pos::<F>(sx[j], T::LOG_TERMS);
    }
    for j in 0..L {
        let l = (1.0 - eps) * wy[j] * ((m[j] - xy[j]) + l1p[j])
            + (eps / cf) * (smooth[j] + l1p[j] * ctx.wsum);
        losses[j] = if live[j] { l } else { 0.0 };
    }
    if G {
        let g = ctx.g;
        let k = g * eps / cf;
        let mut inv = [0.0; L];
        let mut a = [0.0; L];
        for j in 0..L {
            inv[j] = 1.0 / (1.0 + sx[j]);
            a[j] = if live[j] {
                g * ((1.0 - eps) * wy[j] + (eps / cf) * ctx.wsum) * inv[j]
            } else {
                0.0
            };
        }
        for (cc, b) in buf.iter().enumerate().take(c) {
            let wc = ctx.weight.map_or(1.0, |w| w[cc]);
            for j in 0..L {
                let v = if live[j] { b[j] * a[j] - k * wc } else { 0.0 };
                dst[j * c + cc].set(T::from_f64(v));
            }
        }
        for j in 0..L {
            if live[j] {
                let ey = buf[y[j]][j];
                let gy = g
                    * ((1.0 - eps) * wy[j] * (((ey - 1.0) - sx[j]) * inv[j])
                        + (eps / cf) * (ey * inv[j] * ctx.wsum - wy[j]));
                dst[j * c + y[j]].set(T::from_f64(gy));
            }
        }
    }
    true
}

/// One row with probability targets `y` (row slice); smoothing applied to y.
#[inline(always)]
pub(crate) fn ce_prob_row<T: Elem, S: Src<T> + ?Sized, const F: bool, const G: bool>(
    x: &S,
    base: usize,
    dst: &[Cell<T>],
    y: &[T],
    ctx: &CeCtx<'_>,
) -> f64 {
    let c = ctx.c;
    let eps = ctx.eps;
    let u = eps / c as f64;
    let m = max(x, base, c);
    // A = sum w y' (m - x), B = sum w y'
    let mut a = [0.0; L];
    let mut b = [0.0; L];
    let mf = if m.is_finite() { m } else { 0.0 };
    let mut i = 0;
    while i < c {
        let v = load(x, base, i, c, mf);
        let yb = load(y, 0, i, c, 0.0);
        let wb = match ctx.weight {
            Some(w) => load(w, 0, i, c, 0.0),
            None => [1.0; L],
        };
        let valid = c - i;
        for j in 0..L {
            let yj = if j < valid {
                (1.0 - eps) * yb[j] + u
            } else {
                0.0
            };
            let wy = wb[j] * yj;
            // 0 * inf terms (x = -inf with y = 0) add nothing, like torch's xlogy-free sum
            let d = mf - v[j];
            a[j] += if wy == 0.0 { 0.0 } else { wy * d };
            b[j] += wy;
        }
        i += L;
    }
    let (sa, sb) = (crate::ops::kernel::hsum(a), crate::ops::kernel::hsum(b));
    if !m.is_finite() {
        // Read x before the NaN fill (dst may be x itself). Terms with y' = 0 add nothing,
        // so the loss is +inf when the targets put no mass on a +inf entry, NaN when they
        // do (inf - inf, as with an index target on that entry).
        let lse = special_lse(x, base, c, m);
        if G {
            fill(dst, f64::NAN);
        }
        return sa + (lse - mf) * sb;
    }
    let s = if G {
        sumexp::<T, S, F, true>(x, base, c, dst, m)
    } else {
        sumexp::<T, S, F, false>(x, base, c, &[], m)
    };
    let sx = excl(s);
    let loss = sa + sx.ln_1p() * sb;
    if G {
        let g = ctx.g;
        let k = g * sb / (1.0 + sx);
        let mut i = 0;
        while i < c {
            let mut v = load(&Cells(dst), 0, i, c, 0.0);
            let yb = load(y, 0, i, c, 0.0);
            let wb = match ctx.weight {
                Some(w) => load(w, 0, i, c, 0.0),
                None => [1.0; L],
            };
            for j in 0..L {
                v[j] = v[j] * k - g * wb[j] * ((1.0 - eps) * yb[j] + u);
            }
            store(dst, i, c, &v);
            i += L;
        }
    }
    loss
}

#[inline(always)]
pub(crate) fn ce_prob_rows<T: Elem, S: Src<T> + ?Sized, const F: bool, const G: bool>(
    x: &S,
    dst: &[Cell<T>],
    y: &[T],
    ctx: &CeCtx<'_>,
    losses: &mut [f64],
) {
    let c = ctx.c;
    for (r, l) in losses.iter_mut().enumerate() {
        let d = if G { &dst[r * c..(r + 1) * c] } else { dst };
        *l = ce_prob_row::<T, S, F, G>(x, r * c, d, &y[r * c..(r + 1) * c], ctx);
    }
}

/// Class targets as torch takes them.
pub enum Targets<'a, T> {
    /// class indices, one per row (any integer dtype, widened to i64)
    Index(&'a [i64]),
    /// class probabilities, one row of C per row of input
    Probs(&'a [T]),
}

/// Options of [`cross_entropy`].
#[derive(Clone, Copy, Debug)]
pub struct CeOptions<'a> {
    pub weight: Option<&'a [f64]>,
    pub ignore_index: i64,
    pub label_smoothing: f64,
    pub reduction: Reduction,
}

/// The result: reduced loss (NaN placeholder for 'none') and per-item losses for 'none'.
#[derive(Clone, Debug)]
pub struct LossResult {
    pub value: f64,
    pub per_item: Option<Vec<f64>>,
}

fn rows_per_task(c: usize) -> usize {
    (32768 / c.max(1)).max(1)
}

/// Whether any target is out of `[0, c)` without being `ig` (when `IGN`; every target
/// counts otherwise), and how many are not `ig`: one branch-free pass, compiled for the
/// SIMD level (the baseline x86-64 build has no 64-bit vector compare, and this pass was a
/// tenth of a (262144, 10) float32 loss).
pub(crate) fn scan_targets<const IGN: bool>(t: &[i64], c: usize, ig: i64) -> (bool, u64) {
    #[inline(always)]
    fn body<const IGN: bool>(t: &[i64], c: usize, ig: i64) -> (bool, u64) {
        let (mut bad, mut live) = (0u64, 0u64);
        for &y in t {
            let l = if IGN { (y != ig) as u64 } else { 1 };
            bad |= ((y as u64) >= c as u64) as u64 & l;
            live += l;
        }
        (bad != 0, live)
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<const IGN: bool>(t: &[i64], c: usize, ig: i64) -> (bool, u64) {
            body::<IGN>(t, c, ig)
        }
        #[target_feature(enable = "avx512f")]
        fn avx512<const IGN: bool>(t: &[i64], c: usize, ig: i64) -> (bool, u64) {
            body::<IGN>(t, c, ig)
        }
        match crate::simd::level() {
            // SAFETY: the level was detected on this CPU.
            crate::simd::Level::Avx512 => return unsafe { avx512::<IGN>(t, c, ig) },
            crate::simd::Level::Avx2 => return unsafe { avx2::<IGN>(t, c, ig) },
            _ => {}
        }
    }
    body::<IGN>(t, c, ig)
}

fn prepare<'a, T: Elem>(
    xlen: usize,
    c: usize,
    targets: &Targets<'a, T>,
    o: &CeOptions<'a>,
) -> Result<(usize, CeCtx<'a>)> {
    if c == 0 {
        return Err(Error::Shape("cross_entropy: input has 0 classes".into()));
    }
    if !xlen.is_multiple_of(c) {
        return Err(Error::Shape(format!(
            "cross_entropy: input of {xlen} elements is not rows of {c} classes"
        )));
    }
    let n = xlen / c;
    if let Some(w) = o.weight {
        if w.len() != c {
            return Err(Error::Shape(format!(
                "cross_entropy: weight has {} entries for {c} classes",
                w.len()
            )));
        }
    }
    if !(0.0..=1.0).contains(&o.label_smoothing) {
        return Err(Error::Value(format!(
            "label_smoothing must be in [0, 1], got {}",
            o.label_smoothing
        )));
    }
    let wsum = o.weight.map_or(c as f64, |w| w.iter().sum());
    let (g, zero_total) = match targets {
        Targets::Index(t) => {
            if t.len() != n {
                return Err(Error::Shape(format!(
                    "cross_entropy: {} targets for {n} rows",
                    t.len()
                )));
            }
            // Checked in fixed chunks on the pool (a serial pass over 262144 targets was a
            // tenth of a (262144, 10) float32 loss); the chunk sums combine pairwise, and
            // the first bad chunk in order names the first bad position.
            let ig = o.ignore_index;
            let check = |i0: usize, ch: &[i64]| -> Result<f64> {
                let (bad, live) = scan_targets::<true>(ch, c, ig);
                if bad {
                    let (i, y) = ch
                        .iter()
                        .enumerate()
                        .find(|&(_, &y)| y != ig && (y as u64) >= c as u64)
                        .map(|(i, &y)| (i, y))
                        .unwrap_or((0, 0));
                    return Err(Error::Target(format!(
                        "target {y} at position {} is out of range for {c} classes \
                         (and is not ignore_index={ig})",
                        i0 + i,
                    )));
                }
                Ok(match o.weight {
                    None => live as f64,
                    Some(w) => ch
                        .iter()
                        .filter(|&&y| y != ig)
                        .map(|&y| w[y as usize])
                        .sum(),
                })
            };
            const CHUNK: usize = 1 << 15;
            let sums: Vec<f64> = if t.len() <= CHUNK {
                vec![check(0, t)?]
            } else {
                pool()?
                    .install(|| {
                        t.par_chunks(CHUNK)
                            .enumerate()
                            .map(|(k, ch)| check(k * CHUNK, ch))
                            .collect::<Vec<_>>()
                    })
                    .into_iter()
                    .collect::<Result<_>>()?
            };
            let total = pairwise(&sums);
            if o.reduction == Reduction::Mean {
                // W = 0 (every row ignored or of weight 0): computed with scale 1, then
                // `zero_total` makes it torch's 0/0 (see there).
                if total == 0.0 {
                    (1.0, n > 0)
                } else {
                    (1.0 / total, false)
                }
            } else {
                (1.0, false)
            }
        }
        Targets::Probs(y) => {
            if y.len() != xlen {
                return Err(Error::Shape(format!(
                    "cross_entropy: probability targets have {} elements, input {xlen}",
                    y.len()
                )));
            }
            if o.reduction == Reduction::Mean {
                (1.0 / n as f64, false)
            } else {
                (1.0, false)
            }
        }
    };
    let ctx = CeCtx {
        c,
        weight: o.weight,
        wsum,
        eps: o.label_smoothing,
        g,
        ignore_index: o.ignore_index,
        zero_total,
    };
    Ok((n, ctx))
}

/// The per-row losses: the result for 'none'; for 'mean' and 'sum' scratch, kept between
/// calls up to `SCRATCH_MAX` rows (a fresh 2 MB buffer per call of a (262144, 10) loss
/// cost page faults and zeroing, a few percent of the call).
static SCRATCH: std::sync::Mutex<Vec<f64>> = std::sync::Mutex::new(Vec::new());
const SCRATCH_MAX: usize = 1 << 20;

fn per_rows(n: usize, red: Reduction) -> Vec<f64> {
    if red == Reduction::None || n > SCRATCH_MAX {
        return vec![0.0; n];
    }
    let mut v = std::mem::take(&mut *SCRATCH.lock().unwrap_or_else(|e| e.into_inner()));
    v.clear();
    v.resize(n, 0.0);
    v
}

fn finish(
    n: usize,
    ctx: &CeCtx<'_>,
    red: Reduction,
    task_sums: Vec<f64>,
    per: Vec<f64>,
) -> LossResult {
    let total = pairwise(&task_sums);
    let value = match red {
        Reduction::None => {
            return LossResult {
                value: f64::NAN,
                per_item: Some(per),
            }
        }
        Reduction::Sum => total,
        // ctx.g is 1/W (index targets) or 1/N (probabilities); 0 rows give NaN like torch.
        Reduction::Mean => {
            if n == 0 || ctx.zero_total {
                f64::NAN
            } else {
                total * ctx.g
            }
        }
    };
    if per.capacity() <= SCRATCH_MAX {
        *SCRATCH.lock().unwrap_or_else(|e| e.into_inner()) = per;
    }
    LossResult {
        value,
        per_item: None,
    }
}

/// Cross-entropy of logits `x` (N rows of `c` classes, C-contiguous), optionally writing
/// d(reduced loss)/dx into `grad` (same length as `x`).
pub fn cross_entropy<T: Elem>(
    x: &[T],
    c: usize,
    targets: Targets<'_, T>,
    o: &CeOptions<'_>,
    grad: Option<&mut [T]>,
) -> Result<LossResult> {
    let (n, ctx) = prepare(x.len(), c, &targets, o)?;
    let mut per = per_rows(n, o.reduction);
    let k = dispatch::kernels::<T>();
    let rpt = rows_per_task(c);
    let sums: Vec<f64> = match grad {
        None => pool()?.install(|| {
            per.par_chunks_mut(rpt)
                .enumerate()
                .map(|(ti, pc)| {
                    let (r0, r1) = (ti * rpt, ti * rpt + pc.len());
                    let xc = &x[r0 * c..r1 * c];
                    match &targets {
                        Targets::Index(t) => (k.ce_idx)(xc, &t[r0..r1], &ctx, pc),
                        Targets::Probs(y) => (k.ce_prob)(xc, &y[r0 * c..r1 * c], &ctx, pc),
                    }
                    task_sum(pc)
                })
                .collect()
        }),
        Some(gb) => {
            check_len(gb.len(), x.len())?;
            let sums = pool()?.install(|| {
                per.par_chunks_mut(rpt)
                    .zip(gb.par_chunks_mut(rpt * c))
                    .enumerate()
                    .map(|(ti, (pc, gc))| {
                        let (r0, r1) = (ti * rpt, ti * rpt + pc.len());
                        let xc = &x[r0 * c..r1 * c];
                        let d = Cell::from_mut(gc).as_slice_of_cells();
                        match &targets {
                            Targets::Index(t) => (k.ce_idx_grad)(xc, d, &t[r0..r1], &ctx, pc),
                            Targets::Probs(y) => {
                                (k.ce_prob_grad)(xc, d, &y[r0 * c..r1 * c], &ctx, pc)
                            }
                        }
                        task_sum(pc)
                    })
                    .collect()
            });
            nan_rows(&ctx, &targets, gb);
            sums
        }
    };
    Ok(finish(n, &ctx, o.reduction, sums, per))
}

/// The gradient of a 'mean' over a total weight of 0 (see `CeCtx::zero_total`).
fn nan_rows<T: Elem>(ctx: &CeCtx<'_>, targets: &Targets<'_, T>, grad: &mut [T]) {
    if let (true, Targets::Index(t)) = (ctx.zero_total, targets) {
        for (&y, row) in t.iter().zip(grad.chunks_exact_mut(ctx.c)) {
            if y != ctx.ignore_index {
                row.fill(T::from_f64(f64::NAN));
            }
        }
    }
}

/// As [`cross_entropy`], writing the gradient over the logits themselves.
pub fn cross_entropy_inplace<T: Elem>(
    x: &mut [T],
    c: usize,
    targets: Targets<'_, T>,
    o: &CeOptions<'_>,
) -> Result<LossResult> {
    let (n, ctx) = prepare(x.len(), c, &targets, o)?;
    let mut per = per_rows(n, o.reduction);
    let k = dispatch::kernels::<T>();
    let rpt = rows_per_task(c);
    let sums: Vec<f64> = pool()?.install(|| {
        per.par_chunks_mut(rpt)
            .zip(x.par_chunks_mut(rpt * c))
            .enumerate()
            .map(|(ti, (pc, xc))| {
                let (r0, r1) = (ti * rpt, ti * rpt + pc.len());
                let d = Cell::from_mut(xc).as_slice_of_cells();
                match &targets {
                    Targets::Index(t) => (k.ce_idx_inplace)(d, &t[r0..r1], &ctx, pc),
                    Targets::Probs(y) => (k.ce_prob_inplace)(d, &y[r0 * c..r1 * c], &ctx, pc),
                }
                task_sum(pc)
            })
            .collect()
    });
    nan_rows(&ctx, &targets, x);
    Ok(finish(n, &ctx, o.reduction, sums, per))
}

fn check_len(a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::Shape(format!(
            "gradient buffer has {a} elements, input {b}"
        )));
    }
    Ok(())
}
