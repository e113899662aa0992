//! Multiclass hinge losses over scores (N, C) with class targets, fused with the gradient:
//! - torch `multi_margin_loss`: (1/C) sum_{i != y} w_y max(0, margin - x_y + x_i)^p
//!   (the weight multiplies the powered term, as torch's kernel does);
//! - Weston-Watkins, cs231n convention (no 1/C): sum_{i != y} w_y max(0, x_i - x_y + margin)^p;
//! - Crammer-Singer: w_y max(0, margin + max_{i != y} x_i - x_y); the subgradient puts +1
//!   on the first maximising i (lowest index) and -1 on y when the loss is positive.
//!
//! 'mean' divides by N. Subgradients at the hinge (z = 0) are 0, as torch's `z > 0` test.

use std::cell::Cell;

use rayon::prelude::*;

use super::group::leftover;
use super::{dispatch, pairwise, task_sum, Reduction};
use crate::error::{Error, Result};
use crate::ops::kernel::{load, store, Cells, Elem, Src};
use crate::simd::L;

/// Which hinge loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hinge {
    /// torch multi_margin_loss (divides by C)
    MultiMargin,
    /// Weston-Watkins, cs231n (no 1/C)
    WestonWatkins,
    /// Crammer-Singer (one violator: the largest other score)
    CrammerSinger,
}

/// Options of the hinge losses.
#[derive(Clone, Copy, Debug)]
pub struct HingeCtx<'a> {
    pub kind: Hinge,
    pub c: usize,
    pub p: u32,
    pub margin: f64,
    pub weight: Option<&'a [f64]>,
    /// gradient scale: 1/N for 'mean', 1 otherwise
    pub g: f64,
}

#[inline(always)]
fn hinge_row<T: Elem, S: Src<T> + ?Sized, const G: bool>(
    x: &S,
    base: usize,
    dst: &[Cell<T>],
    y: usize,
    h: &HingeCtx<'_>,
) -> f64 {
    let c = h.c;
    let wy = h.weight.map_or(1.0, |w| w[y]);
    let xy = x.at(base + y).to_f64();
    match h.kind {
        Hinge::MultiMargin | Hinge::WestonWatkins => {
            let div = if h.kind == Hinge::MultiMargin {
                c as f64
            } else {
                1.0
            };
            let sc = wy / div; // loss scale
            let gsc = h.g * sc; // gradient scale
            let sq = h.p == 2;
            // Lanes past the row's end hold -inf, which a NaN or -inf x_y would turn into
            // NaN z, counted as violators: such rows take the plain loop too (a lane
            // index test in the blocks stopped their vectorisation on AVX2).
            if c < 2 * L || xy.is_nan() || xy == f64::NEG_INFINITY {
                // Few classes: a plain loop beats padded lane blocks (no tail handling).
                let mut total = 0.0;
                let mut gsum = 0.0;
                for i in 0..c {
                    let z = h.margin - xy + x.at(base + i).to_f64();
                    // A NaN score is a violation: NaN propagates to the loss, as in torch.
                    let active = (z > 0.0 || z.is_nan()) && i != y;
                    total += if active {
                        if sq {
                            z * z
                        } else {
                            z
                        }
                    } else {
                        0.0
                    };
                    if G {
                        let gi = if active {
                            gsc * if sq { 2.0 * z } else { 1.0 }
                        } else {
                            0.0
                        };
                        gsum += gi;
                        dst[i].set(T::from_f64(gi));
                    }
                }
                if G {
                    dst[y].set(T::from_f64(-gsum));
                }
                return sc * total;
            }
            let mut acc = [0.0; L];
            let mut gacc = [0.0; L];
            let mut i = 0;
            while i < c {
                let v = load(x, base, i, c, f64::NEG_INFINITY);
                let mut gb = [0.0; L];
                // Selects only, the non-short-circuit `|` and `&`, one loop per p: with
                // `||` / `&&` and the p branch inside, the lane loop stayed scalar (perf:
                // a `vaddsd` per lane on AVX2). (16384, 1000) float64, two threads,
                // forward + gradient 34 -> 4-6.5 ms on AVX2, 16 -> 6.5 ms on AVX-512 (the
                // copy: 6.5 ms).
                if sq {
                    let g2 = 2.0 * gsc;
                    for j in 0..L {
                        let z = h.margin - xy + v[j];
                        let on = ((z > 0.0) | z.is_nan()) & (i + j != y);
                        let zz = if on { z } else { 0.0 };
                        acc[j] += zz * zz;
                        // (2 gsc) z: the same product as gsc (2 z).
                        gb[j] = if on { g2 * z } else { 0.0 };
                        gacc[j] += gb[j];
                    }
                } else {
                    for j in 0..L {
                        let z = h.margin - xy + v[j];
                        let on = ((z > 0.0) | z.is_nan()) & (i + j != y);
                        acc[j] += if on { z } else { 0.0 };
                        gb[j] = if on { gsc } else { 0.0 };
                        gacc[j] += gb[j];
                    }
                }
                if G {
                    store(dst, i, c, &gb);
                }
                i += L;
            }
            if G {
                let total: f64 = crate::ops::kernel::hsum(gacc);
                dst[y].set(T::from_f64(-total));
            }
            sc * crate::ops::kernel::hsum(acc)
        }
        Hinge::CrammerSinger => {
            // largest other score and its first index
            let mut mx = f64::NEG_INFINITY;
            let mut arg = usize::MAX;
            for i in 0..c {
                let v = x.at(base + i).to_f64();
                if i != y && (arg == usize::MAX || v > mx) {
                    mx = v;
                    arg = i;
                }
            }
            let z = h.margin + mx - xy;
            let loss = if c < 2 {
                0.0
            } else if z > 0.0 || z.is_nan() {
                z
            } else {
                0.0
            };
            if G {
                for d in dst.iter() {
                    d.set(T::from_f64(0.0));
                }
                if c >= 2 && z > 0.0 {
                    dst[arg].set(T::from_f64(h.g * wy));
                    dst[y].set(T::from_f64(-h.g * wy));
                } else if z.is_nan() {
                    for d in dst.iter() {
                        d.set(T::from_f64(f64::NAN));
                    }
                }
            }
            wy * loss
        }
    }
}

#[inline(always)]
pub(crate) fn hinge_rows<T: Elem, S: Src<T> + ?Sized, const G: bool>(
    x: &S,
    dst: &[Cell<T>],
    targets: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
) {
    let c = h.c;
    let mut start = 0;
    if c <= SMALL_N && h.kind != Hinge::CrammerSinger {
        let mut buf = [[0.0; L]; SMALL_N];
        while start + L <= targets.len() {
            let d = if G {
                &dst[start * c..(start + L) * c]
            } else {
                dst
            };
            let tg = &targets[start..start + L];
            hinge_small_group::<T, S, G>(
                x,
                start,
                d,
                tg,
                h,
                &mut buf,
                &mut losses[start..start + L],
            );
            start += L;
        }
        // The last rows in a padded scratch group: the same bits as anywhere else.
        let mut grp = |xs: &[T], ds: &[Cell<T>], ts: &[i64], ls: &mut [f64]| {
            hinge_small_group::<T, [T], G>(xs, 0, ds, ts, h, &mut buf, ls);
            true
        };
        let rr = start..targets.len();
        let mut none = |_: usize, _: &mut [f64]| {};
        return leftover::<T, S, G>(L, c, x, dst, targets, losses, rr, true, &mut grp, &mut none);
    }
    for (r, &t) in targets.iter().enumerate().skip(start) {
        let d = if G { &dst[r * c..(r + 1) * c] } else { dst };
        losses[r] = hinge_row::<T, S, G>(x, r * c, d, t as usize, h);
    }
}

/// The float32 kernels' threshold for target score `xy`: thr32, the largest float32 <=
/// thr = x_y - margin (so x_i > thr exactly when x_i > thr32), delta = thr - thr32 in
/// [0, ulp(thr)), and the loss scale w_y / (C for multi-margin, else 1). None when thr is
/// NaN or beyond float32's range (the generic row then).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn f32_threshold(xy: f32, y: usize, h: &HingeCtx<'_>) -> Option<(f32, f64, f64)> {
    let thr = xy as f64 - h.margin;
    if thr.is_nan() || thr.abs() >= 1e30 {
        return None;
    }
    let mut t32 = thr as f32;
    if t32 as f64 > thr {
        t32 = t32.next_down();
    }
    let div = if h.kind == Hinge::MultiMargin {
        h.c as f64
    } else {
        1.0
    };
    Some((t32, thr - t32 as f64, h.weight.map_or(1.0, |w| w[y]) / div))
}

/// Rows `a..b` by the generic row (the fallback of hand-written group kernels).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn hinge_rows_range<T: Elem, S: Src<T> + ?Sized, const G: bool>(
    x: &S,
    dst: &[Cell<T>],
    targets: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
    a: usize,
    b: usize,
) {
    let c = h.c;
    for r in a..b {
        let d = if G { &dst[r * c..(r + 1) * c] } else { dst };
        losses[r] = hinge_row::<T, S, G>(x, r * c, d, targets[r] as usize, h);
    }
}

/// A hand-written float32 hinge row (`avx512_f32`, `avx2_f32`): scores at `xr`, the
/// gradient row at `dr` (possibly `xr`), c, y. None: it wrote nothing.
#[cfg(target_arch = "x86_64")]
pub(crate) type HingeWideRow =
    unsafe fn(*const f32, *mut f32, usize, usize, &HingeCtx<'_>) -> Option<f64>;

/// float32 rows of more than `SMALL_N` classes through a hand-written `row`;
/// Crammer-Singer, fewer classes and rows it declines take the generic path. Inlined into
/// the callers so the generic path is compiled for their target features.
///
/// # Safety
/// `row` must be safe to call on this CPU.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn hinge_rows_f32<S: Src<f32> + ?Sized, const G: bool>(
    x: &S,
    dst: &[Cell<f32>],
    targets: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
    row: HingeWideRow,
) {
    let c = h.c;
    if c <= SMALL_N || h.kind == Hinge::CrammerSinger {
        return hinge_rows::<f32, S, G>(x, dst, targets, h, losses);
    }
    let rows = targets.len();
    assert!(x.n() >= rows * c && losses.len() >= rows && (!G || dst.len() >= rows * c));
    let (xp, dp) = (x.base(), dst.as_ptr() as *mut f32);
    for (r, &t) in targets.iter().enumerate() {
        // SAFETY: row r is in bounds (asserted above), t < c (`prepare`); the caller
        // vouches for `row` on this CPU.
        let fast = unsafe { row(xp.add(r * c), dp.wrapping_add(r * c), c, t as usize, h) };
        losses[r] = match fast {
            Some(l) => l,
            None => {
                let d = if G { &dst[r * c..(r + 1) * c] } else { dst };
                hinge_row::<f32, S, G>(x, r * c, d, t as usize, h)
            }
        };
    }
}

const SMALL_N: usize = crate::ops::kernel::SMALL_N;

/// `L` rows (from row `r0`) of at most `SMALL_N` classes, one row per lane, branch-free:
/// per-row loops over ~10 classes are dominated by mispredicted `z > 0` branches.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn hinge_small_group<T: Elem, S: Src<T> + ?Sized, const G: bool>(
    x: &S,
    r0: usize,
    dst: &[Cell<T>],
    tg: &[i64],
    h: &HingeCtx<'_>,
    buf: &mut [[f64; L]; SMALL_N],
    losses: &mut [f64],
) {
    let c = h.c;
    for (cc, b) in buf.iter_mut().enumerate().take(c) {
        for (j, v) in b.iter_mut().enumerate() {
            *v = x.at((r0 + j) * c + cc).to_f64();
        }
    }
    let div = if h.kind == Hinge::MultiMargin {
        c as f64
    } else {
        1.0
    };
    let sq = h.p == 2;
    let mut y = [0usize; L];
    let mut xy = [0.0; L];
    let mut sc = [0.0; L];
    for j in 0..L {
        y[j] = tg[j] as usize;
        xy[j] = buf[y[j]][j];
        sc[j] = h.weight.map_or(1.0, |w| w[y[j]]) / div;
    }
    let mut acc = [0.0; L];
    let mut gsum = [0.0; L];
    // One loop per p, selects and non-short-circuit `|` / `&` (as `hinge_row`'s blocks).
    let gs: [f64; L] = std::array::from_fn(|j| h.g * sc[j]);
    for (cc, b) in buf.iter_mut().enumerate().take(c) {
        if sq {
            for j in 0..L {
                let z = h.margin - xy[j] + b[j];
                let on = ((z > 0.0) | z.is_nan()) & (cc != y[j]);
                let zz = if on { z } else { 0.0 };
                acc[j] += zz * zz;
                let gi = if on { gs[j] * (2.0 * z) } else { 0.0 };
                gsum[j] += gi;
                b[j] = gi;
            }
        } else {
            for j in 0..L {
                let z = h.margin - xy[j] + b[j];
                let on = ((z > 0.0) | z.is_nan()) & (cc != y[j]);
                acc[j] += if on { z } else { 0.0 };
                let gi = if on { gs[j] } else { 0.0 };
                gsum[j] += gi;
                b[j] = gi;
            }
        }
    }
    for j in 0..L {
        losses[j] = sc[j] * acc[j];
    }
    if G {
        for j in 0..L {
            buf[y[j]][j] = -gsum[j];
        }
        for (cc, b) in buf.iter().enumerate().take(c) {
            for j in 0..L {
                dst[j * c + cc].set(T::from_f64(b[j]));
            }
        }
    }
}

#[inline(always)]
pub(crate) fn hinge_rows_inplace<T: Elem>(
    d: &[Cell<T>],
    targets: &[i64],
    h: &HingeCtx<'_>,
    losses: &mut [f64],
) {
    // Every element of a row is read before it is written (x_y first): see kernel::Src.
    hinge_rows::<T, Cells<'_, T>, true>(&Cells(d), d, targets, h, losses)
}

/// Options of [`hinge`].
#[derive(Clone, Copy, Debug)]
pub struct HingeOptions<'a> {
    pub kind: Hinge,
    pub p: u32,
    pub margin: f64,
    pub weight: Option<&'a [f64]>,
    pub reduction: Reduction,
}

fn prepare<'a>(
    xlen: usize,
    c: usize,
    t: &[i64],
    o: &HingeOptions<'a>,
) -> Result<(usize, HingeCtx<'a>)> {
    if c == 0 || !xlen.is_multiple_of(c) {
        return Err(Error::Shape(format!(
            "hinge: input of {xlen} elements is not rows of {c}"
        )));
    }
    let n = xlen / c;
    if t.len() != n {
        return Err(Error::Shape(format!(
            "hinge: {} targets for {n} rows",
            t.len()
        )));
    }
    if o.p != 1 && o.p != 2 {
        return Err(Error::Value(format!("p must be 1 or 2, got {}", o.p)));
    }
    if let Some(w) = o.weight {
        if w.len() != c {
            return Err(Error::Shape(format!(
                "hinge: weight has {} entries for {c} classes",
                w.len()
            )));
        }
    }
    // One vectorised pass; the position only when something is wrong.
    if super::ce::scan_targets::<false>(t, c, 0).0 {
        for (i, &y) in t.iter().enumerate() {
            if y < 0 || y as u64 >= c as u64 {
                return Err(Error::Target(format!(
                    "target {y} at position {i} is out of range for {c} classes"
                )));
            }
        }
    }
    let g = if o.reduction == Reduction::Mean {
        1.0 / n as f64
    } else {
        1.0
    };
    Ok((
        n,
        HingeCtx {
            kind: o.kind,
            c,
            p: o.p,
            margin: o.margin,
            weight: o.weight,
            g,
        },
    ))
}

/// The result: reduced value (NaN for 'none') and per-item losses for 'none'.
pub use super::ce::LossResult;

fn finish(n: usize, red: Reduction, sums: Vec<f64>, per: Vec<f64>) -> LossResult {
    let total = pairwise(&sums);
    match red {
        Reduction::None => LossResult {
            value: f64::NAN,
            per_item: Some(per),
        },
        Reduction::Sum => LossResult {
            value: total,
            per_item: None,
        },
        Reduction::Mean => LossResult {
            value: total / n as f64,
            per_item: None,
        },
    }
}

const TASK: usize = 1 << 15;

/// A multiclass hinge loss of scores `x` (rows of `c`), optionally with its gradient.
pub fn hinge<T: Elem>(
    x: &[T],
    c: usize,
    targets: &[i64],
    o: &HingeOptions<'_>,
    grad: Option<&mut [T]>,
) -> Result<LossResult> {
    let (n, h) = prepare(x.len(), c, targets, o)?;
    let mut per = vec![0.0; n];
    let rpt = (TASK / c).max(1);
    let k = dispatch::kernels::<T>();
    let sums: Vec<f64> = match grad {
        None => crate::parallel::pool()?.install(|| {
            per.par_chunks_mut(rpt)
                .enumerate()
                .map(|(ti, pc)| {
                    let (r0, r1) = (ti * rpt, ti * rpt + pc.len());
                    (k.hinge)(&x[r0 * c..r1 * c], &targets[r0..r1], &h, pc);
                    task_sum(pc)
                })
                .collect()
        }),
        Some(g) => {
            if g.len() != x.len() {
                return Err(Error::Shape("gradient buffer has the wrong size".into()));
            }
            crate::parallel::pool()?.install(|| {
                per.par_chunks_mut(rpt)
                    .zip(g.par_chunks_mut(rpt * c))
                    .enumerate()
                    .map(|(ti, (pc, gc))| {
                        let (r0, r1) = (ti * rpt, ti * rpt + pc.len());
                        let d = Cell::from_mut(gc).as_slice_of_cells();
                        (k.hinge_grad)(&x[r0 * c..r1 * c], d, &targets[r0..r1], &h, pc);
                        task_sum(pc)
                    })
                    .collect()
            })
        }
    };
    Ok(finish(n, o.reduction, sums, per))
}

/// As [`hinge`], writing the gradient over the scores.
pub fn hinge_inplace<T: Elem>(
    x: &mut [T],
    c: usize,
    targets: &[i64],
    o: &HingeOptions<'_>,
) -> Result<LossResult> {
    let (n, h) = prepare(x.len(), c, targets, o)?;
    let mut per = vec![0.0; n];
    let rpt = (TASK / c).max(1);
    let k = dispatch::kernels::<T>();
    let sums: Vec<f64> = crate::parallel::pool()?.install(|| {
        per.par_chunks_mut(rpt)
            .zip(x.par_chunks_mut(rpt * c))
            .enumerate()
            .map(|(ti, (pc, xc))| {
                let (r0, r1) = (ti * rpt, ti * rpt + pc.len());
                (k.hinge_inplace)(
                    Cell::from_mut(xc).as_slice_of_cells(),
                    &targets[r0..r1],
                    &h,
                    pc,
                );
                task_sum(pc)
            })
            .collect()
    });
    Ok(finish(n, o.reduction, sums, per))
}
