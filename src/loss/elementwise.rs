//! Element-wise losses of (input x, target y), torch semantics, fused with the gradient:
//! L1, MSE, Huber(delta), SmoothL1(beta), pinball(tau), Poisson NLL, BCE with logits.
//!
//! 'mean' is over all elements (torch), so the gradient scale is 1/numel. Kinks take
//! torch's subgradients: L1, SmoothL1 (beta=0) and pinball give 0 at r = 0.

use std::cell::Cell;

use rayon::prelude::*;

use super::{dispatch, pairwise, Reduction};
use crate::error::{Error, Result};
use crate::ops::kernel::{hsum, load, store, Cells, Elem, Src};
use crate::simd::exp::{exp_block, log1p_unit, log1p_unit_poly};
use crate::simd::L;

/// Which element-wise loss, with its parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// |x - y|
    L1,
    /// (x - y)^2
    Mse,
    /// 0.5 r^2 if |r| < delta else delta (|r| - delta/2)
    Huber(f64),
    /// Huber_beta / beta (beta = 0: L1)
    SmoothL1(f64),
    /// pinball at quantile tau on u = y - x: max(tau u, (tau - 1) u)
    Pinball(f64),
    /// torch poisson_nll_loss(log_input=True): exp(x) - y x (+ Stirling term if full)
    PoissonLog { full: bool },
    /// torch poisson_nll_loss(log_input=False): x - y log(x + eps) (+ Stirling if full)
    Poisson { full: bool, eps: f64 },
    /// torch binary_cross_entropy_with_logits (weight and pos_weight in `Extra`)
    Bce,
}

/// Per-element weights (BCE `weight`, broadcast to the input's size) and BCE `pos_weight`
/// (one per class of the last dimension, of length `period`).
#[derive(Clone, Copy)]
pub struct Extra<'a, T> {
    pub weight: Option<&'a [T]>,
    pub pos_weight: Option<&'a [f64]>,
}

/// Stirling term of torch's `full=True`: y log y - y + 0.5 log(2 pi y) for y > 1, else 0.
#[inline(always)]
fn stirling(y: f64) -> f64 {
    if y > 1.0 {
        y * y.ln() - y + 0.5 * (2.0 * std::f64::consts::PI * y).ln()
    } else {
        0.0
    }
}

#[inline(always)]
fn sign(r: f64) -> f64 {
    if r > 0.0 {
        1.0
    } else if r < 0.0 {
        -1.0
    } else {
        r * 0.0 // 0 at 0, NaN stays NaN
    }
}

/// Loss and gradient lanes of one block. `xb`, `yb`: input and target lanes; `wb`, `pb`:
/// element weight and pos_weight lanes (1 when absent).
#[inline(always)]
fn block<T: Elem, const F: bool>(
    kind: Kind,
    xb: &[f64; L],
    yb: &[f64; L],
    wb: &[f64; L],
    pb: &[f64; L],
) -> ([f64; L], [f64; L]) {
    let mut l = [0.0; L];
    let mut g = [0.0; L];
    match kind {
        Kind::L1 => {
            for j in 0..L {
                let r = xb[j] - yb[j];
                l[j] = r.abs();
                g[j] = sign(r);
            }
        }
        Kind::Mse => {
            for j in 0..L {
                let r = xb[j] - yb[j];
                l[j] = r * r;
                g[j] = 2.0 * r;
            }
        }
        Kind::Huber(d) => {
            for j in 0..L {
                let r = xb[j] - yb[j];
                let a = r.abs();
                l[j] = if a < d {
                    0.5 * r * r
                } else {
                    d * (a - 0.5 * d)
                };
                g[j] = if r > d {
                    d
                } else if r < -d {
                    -d
                } else {
                    r
                };
            }
        }
        Kind::SmoothL1(b) => {
            // b = 0 is L1: `a < 0` never holds, so both branches reduce to |r| and sign(r).
            // (No recursion into `block`: everything here must inline, see ops/kernel.rs.)
            for j in 0..L {
                let r = xb[j] - yb[j];
                let a = r.abs();
                l[j] = if a < b { 0.5 * r * r / b } else { a - 0.5 * b };
                g[j] = if a < b { r / b } else { sign(r) };
            }
        }
        Kind::Pinball(tau) => {
            for j in 0..L {
                let u = yb[j] - xb[j];
                l[j] = if u >= 0.0 { tau * u } else { (tau - 1.0) * u };
                g[j] = if u > 0.0 {
                    -tau
                } else if u < 0.0 {
                    1.0 - tau
                } else {
                    u * 0.0
                };
            }
        }
        Kind::PoissonLog { full } => {
            let mut e = *xb;
            exp_block::<F>(&mut e, T::COEF, T::LOW, T::SPLIT);
            for j in 0..L {
                l[j] = e[j] - yb[j] * xb[j];
                g[j] = e[j] - yb[j];
            }
            if full {
                for j in 0..L {
                    l[j] += stirling(yb[j]);
                }
            }
        }
        Kind::Poisson { full, eps } => {
            for j in 0..L {
                let v = xb[j] + eps;
                l[j] = xb[j] - yb[j] * v.ln();
                g[j] = 1.0 - yb[j] / v;
                if full {
                    l[j] += stirling(yb[j]);
                }
            }
        }
        Kind::Bce => {
            // t = e^{-|x|}; log(1 + e^{-|x|}) + max(-x, 0) = softplus(-x); sigma(x) from t.
            let mut t = [0.0; L];
            for j in 0..L {
                t[j] = -xb[j].abs();
            }
            exp_block::<F>(&mut t, T::COEF, T::LOW, T::SPLIT);
            for j in 0..L {
                let x = xb[j];
                let y = yb[j];
                // float32: a division-free polynomial and an f32 reciprocal; float64:
                // one reciprocal serves sigma(x), log1p's series and its rounding term.
                let (l1p, inv) = if T::LOG1P_POLY {
                    (log1p_unit_poly::<F>(t[j]), T::recip(1.0 + t[j]))
                } else {
                    log1p_unit::<F>(t[j], T::LOG_TERMS, T::recip)
                };
                // sigma(x) and 1 - sigma(x) = sigma(-x), each without cancellation.
                let ti = t[j] * inv;
                let (sig, sigc) = if x >= 0.0 { (inv, ti) } else { (ti, inv) };
                let c = 1.0 + (pb[j] - 1.0) * y;
                // (1 - y) x + c softplus(-x), with softplus(-x) = log1p(t) + max(-x, 0):
                // for x < 0 the x terms are gathered first, x (1 - y - c), so a tiny
                // loss (x = -41, y = 0: 1.3e-18) does not cancel to 0 as in torch.
                let lin = if x < 0.0 {
                    x * (1.0 - y - c)
                } else {
                    (1.0 - y) * x
                };
                l[j] = wb[j] * (lin + c * l1p);
                // c sigma - pw y = (1 - y) sigma - pw y (1 - sigma): no 1 - sigma
                // rounding away a tiny gradient (x = 30, y = 1: -9.4e-14; torch 0).
                g[j] = wb[j] * ((1.0 - y) * sig - pb[j] * y * sigc);
            }
            // |x| = inf: t = 0 and the linear term is +-inf, or NaN where it is 0 * inf
            // (torch's NaN cases, except x = -inf, y = 1: +inf here, NaN in torch).
        }
    }
    (l, g)
}

/// One task: elements `x[0..len]` against `y`, optional per-item loss out, grad into `dst`
/// (empty when not wanted). `off`: index of x[0] in the whole input (pos_weight period).
///
/// The lane loop is instantiated once per loss kind and once for "no weights" (the
/// match below is outside the loop): with the kind matched per block, every kind's
/// lanes met in one merge point and LLVM kept them on the stack, which cost the
/// logistic loss about a third of its time (perf showed the spills).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<T: Elem, S: Src<T> + ?Sized, const F: bool, const G: bool>(
    kind: Kind,
    x: &S,
    y: &[T],
    ex: &Extra<'_, T>,
    off: usize,
    per: Option<&[Cell<T>]>,
    dst: &[Cell<T>],
    gscale: f64,
) -> f64 {
    macro_rules! go {
        ($k:expr) => {{
            let k = $k;
            if ex.weight.is_none() && ex.pos_weight.is_none() {
                run_k::<T, S, F, G, true>(k, x, y, ex, off, per, dst, gscale)
            } else {
                run_k::<T, S, F, G, false>(k, x, y, ex, off, per, dst, gscale)
            }
        }};
    }
    match kind {
        Kind::L1 => go!(Kind::L1),
        Kind::Mse => go!(Kind::Mse),
        Kind::Huber(d) => go!(Kind::Huber(d)),
        Kind::SmoothL1(b) => go!(Kind::SmoothL1(b)),
        Kind::Pinball(t) => go!(Kind::Pinball(t)),
        Kind::PoissonLog { full } => go!(Kind::PoissonLog { full }),
        Kind::Poisson { full, eps } => go!(Kind::Poisson { full, eps }),
        Kind::Bce => go!(Kind::Bce),
    }
}

/// The lane loop of [`run`], inlined into each arm of its match so `kind` is a constant
/// there (no closure: a closure body would not inherit the caller's target features,
/// and `mul_add` would become a libm call); `PLAIN`: no weight, no pos_weight.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run_k<T: Elem, S: Src<T> + ?Sized, const F: bool, const G: bool, const PLAIN: bool>(
    kind: Kind,
    x: &S,
    y: &[T],
    ex: &Extra<'_, T>,
    off: usize,
    per: Option<&[Cell<T>]>,
    dst: &[Cell<T>],
    gscale: f64,
) -> f64 {
    let len = y.len();
    let mut acc = [0.0; L];
    let mut i = 0;
    // Full blocks without per-lane tail checks (they kept the accumulate and the
    // stores scalar), then one partial block.
    while i + L <= len {
        step::<T, S, F, G, PLAIN, true>(kind, x, y, ex, off, per, dst, gscale, i, &mut acc);
        i += L;
    }
    if i < len {
        step::<T, S, F, G, PLAIN, false>(kind, x, y, ex, off, per, dst, gscale, i, &mut acc);
    }
    hsum(acc)
}

/// One block of [`run_k`] at `i`; `FULL`: all L lanes are inside the task.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step<
    T: Elem,
    S: Src<T> + ?Sized,
    const F: bool,
    const G: bool,
    const PLAIN: bool,
    const FULL: bool,
>(
    kind: Kind,
    x: &S,
    y: &[T],
    ex: &Extra<'_, T>,
    off: usize,
    per: Option<&[Cell<T>]>,
    dst: &[Cell<T>],
    gscale: f64,
    i: usize,
    acc: &mut [f64; L],
) {
    let len = y.len();
    let ones = [1.0; L];
    let (xb, yb) = if FULL {
        (x.full(i), y.full(i))
    } else {
        (load(x, 0, i, len, 0.0), load(y, 0, i, len, 0.0))
    };
    let wb = match ex.weight {
        Some(w) if !PLAIN => load(w, 0, i, len, 0.0),
        _ => ones,
    };
    let pb = match ex.pos_weight {
        Some(p) if !PLAIN => {
            let k = p.len();
            let mut b = [1.0; L];
            for (j, v) in b.iter_mut().enumerate() {
                *v = p[(off + i + j) % k];
            }
            b
        }
        _ => ones,
    };
    let (l, mut g) = block::<T, F>(kind, &xb, &yb, &wb, &pb);
    if FULL {
        for j in 0..L {
            acc[j] += l[j];
        }
    } else {
        let valid = len - i;
        for j in 0..L {
            acc[j] += if j < valid { l[j] } else { 0.0 };
        }
    }
    if let Some(p) = per {
        store(p, i, len, &l);
    }
    if G {
        for v in g.iter_mut() {
            *v *= gscale;
        }
        store(dst, i, len, &g);
    }
}

const TASK: usize = 1 << 14;

fn check<T>(x: usize, y: &[T], ex: &Extra<'_, T>, kind: Kind) -> Result<()> {
    if y.len() != x {
        return Err(Error::Shape(format!(
            "target has {} elements, input {x} (broadcast them first)",
            y.len()
        )));
    }
    if let Some(w) = ex.weight {
        if w.len() != x {
            return Err(Error::Shape(format!(
                "weight has {} elements, input {x}",
                w.len()
            )));
        }
    }
    if let Some(p) = ex.pos_weight {
        if p.is_empty() || !x.is_multiple_of(p.len()) {
            return Err(Error::Shape(format!(
                "pos_weight of length {} does not divide the input's {x} elements",
                p.len()
            )));
        }
    }
    match kind {
        Kind::Huber(d) if d.is_nan() || d <= 0.0 => Err(Error::Value(format!(
            "huber_loss: delta must be > 0, got {d}"
        ))),
        Kind::SmoothL1(b) if b.is_nan() || b < 0.0 => Err(Error::Value(format!(
            "smooth_l1_loss: beta must be >= 0, got {b}"
        ))),
        Kind::Pinball(t) if !(0.0..=1.0).contains(&t) => Err(Error::Value(format!(
            "pinball_loss: tau must be in [0, 1], got {t}"
        ))),
        _ => Ok(()),
    }
}

fn reduce(kind: Kind, red: Reduction, n: usize, sums: Vec<f64>) -> f64 {
    let _ = kind;
    let total = pairwise(&sums);
    match red {
        Reduction::Mean => total / n as f64, // 0 elements: NaN, like torch
        Reduction::Sum => total,
        Reduction::None => f64::NAN,
    }
}

fn gscale(red: Reduction, n: usize) -> f64 {
    if red == Reduction::Mean {
        1.0 / n as f64
    } else {
        1.0
    }
}

/// Element-wise loss of `x` against `y` (same length). `per`: per-element losses for
/// 'none'; `grad`: d(reduced loss)/dx.
pub fn elementwise<T: Elem>(
    kind: Kind,
    x: &[T],
    y: &[T],
    ex: Extra<'_, T>,
    red: Reduction,
    per: Option<&mut [T]>,
    grad: Option<&mut [T]>,
) -> Result<f64> {
    check(x.len(), y, &ex, kind)?;
    if let Some(p) = &per {
        if p.len() != x.len() {
            return Err(Error::Shape("per-item output has the wrong size".into()));
        }
    }
    let n = x.len();
    let gs = gscale(red, n);
    let k = dispatch::kernels::<T>();
    let pool = crate::parallel::pool()?;
    let sums: Vec<f64> = match grad {
        None => {
            let pv = per;
            pool.install(|| match pv {
                Some(p) => x
                    .par_chunks(TASK)
                    .zip(p.par_chunks_mut(TASK))
                    .enumerate()
                    .map(|(t, (xc, pc))| {
                        let yc = &y[t * TASK..t * TASK + xc.len()];
                        let exc = sub(&ex, t * TASK, xc.len());
                        (k.ew)(
                            kind,
                            xc,
                            yc,
                            &exc,
                            t * TASK,
                            Some(Cell::from_mut(pc).as_slice_of_cells()),
                            &[],
                            gs,
                        )
                    })
                    .collect(),
                None => x
                    .par_chunks(TASK)
                    .enumerate()
                    .map(|(t, xc)| {
                        let yc = &y[t * TASK..t * TASK + xc.len()];
                        let exc = sub(&ex, t * TASK, xc.len());
                        (k.ew)(kind, xc, yc, &exc, t * TASK, None, &[], gs)
                    })
                    .collect(),
            })
        }
        Some(g) => {
            if g.len() != n {
                return Err(Error::Shape(format!(
                    "gradient buffer has {} elements, input {n}",
                    g.len()
                )));
            }
            let pv = per;
            pool.install(|| {
                let run1 = |t: usize, xc: &[T], gc: &mut [T], pc: Option<&mut [T]>| {
                    let yc = &y[t * TASK..t * TASK + xc.len()];
                    let exc = sub(&ex, t * TASK, xc.len());
                    let pcc = pc.map(|p| Cell::from_mut(p).as_slice_of_cells());
                    (k.ew_grad)(
                        kind,
                        xc,
                        yc,
                        &exc,
                        t * TASK,
                        pcc,
                        Cell::from_mut(gc).as_slice_of_cells(),
                        gs,
                    )
                };
                match pv {
                    Some(p) => x
                        .par_chunks(TASK)
                        .zip(g.par_chunks_mut(TASK))
                        .zip(p.par_chunks_mut(TASK))
                        .enumerate()
                        .map(|(t, ((xc, gc), pc))| run1(t, xc, gc, Some(pc)))
                        .collect(),
                    None => x
                        .par_chunks(TASK)
                        .zip(g.par_chunks_mut(TASK))
                        .enumerate()
                        .map(|(t, (xc, gc))| run1(t, xc, gc, None))
                        .collect(),
                }
            })
        }
    };
    Ok(reduce(kind, red, n, sums))
}

/// As [`elementwise`], writing the gradient over the input.
pub fn elementwise_inplace<T: Elem>(
    kind: Kind,
    x: &mut [T],
    y: &[T],
    ex: Extra<'_, T>,
    red: Reduction,
    per: Option<&mut [T]>,
) -> Result<f64> {
    check(x.len(), y, &ex, kind)?;
    let n = x.len();
    if let Some(p) = &per {
        if p.len() != n {
            return Err(Error::Shape("per-item output has the wrong size".into()));
        }
    }
    let gs = gscale(red, n);
    let k = dispatch::kernels::<T>();
    let pv = per;
    let sums: Vec<f64> = crate::parallel::pool()?.install(|| {
        let run1 = |t: usize, xc: &mut [T], pc: Option<&mut [T]>| {
            let yc = &y[t * TASK..t * TASK + xc.len()];
            let exc = sub(&ex, t * TASK, xc.len());
            let pcc = pc.map(|p| Cell::from_mut(p).as_slice_of_cells());
            (k.ew_inplace)(
                kind,
                Cell::from_mut(xc).as_slice_of_cells(),
                yc,
                &exc,
                t * TASK,
                pcc,
                gs,
            )
        };
        match pv {
            Some(p) => x
                .par_chunks_mut(TASK)
                .zip(p.par_chunks_mut(TASK))
                .enumerate()
                .map(|(t, (xc, pc))| run1(t, xc, Some(pc)))
                .collect(),
            None => x
                .par_chunks_mut(TASK)
                .enumerate()
                .map(|(t, xc)| run1(t, xc, None))
                .collect(),
        }
    });
    Ok(reduce(kind, red, n, sums))
}

fn sub<'a, T>(ex: &Extra<'a, T>, start: usize, len: usize) -> Extra<'a, T> {
    Extra {
        weight: ex.weight.map(|w| &w[start..start + len]),
        pos_weight: ex.pos_weight,
    }
}

/// A SIMD level's float32 kernel of unweighted BCE with logits (`bce_plain` of
/// `avx2_f32` / `avx512_f32`): logits, targets, per-element losses, gradient, scale.
pub(crate) type BcePlain =
    unsafe fn(*const f32, &[f32], Option<&[Cell<f32>]>, &[Cell<f32>], f64) -> f64;

/// The block loop of the hand-written BCE kernels (`avx512_f32`, `avx2_f32`,
/// `avx512_f64`): `n` elements in blocks of `B`, each handed to `step` as pointers to `B`
/// logits, `B` targets, `B` per-item loss slots (when `per`) and `B` gradient slots (when
/// `grad`), with the count of real elements in the block. Full blocks point into the
/// arrays; the last partial block goes through zero-padded stack buffers, copied in
/// before and out after, so `step` always does plain full-width loads and stores (masked
/// ones for every block were twice as slow) and the sum can keep to the real lanes.
/// `step` is called from one place, so it inlines into the caller's `#[target_feature]`
/// function (with a second call site for the tail it was compiled out of line and
/// called per block).
///
/// # Safety
/// `n` elements readable at `xp` and `yp`, and writable at `pp` (when given) and `dp`
/// (when `grad`); `step` must touch at most `B` elements behind each pointer.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(crate) unsafe fn padded_blocks<T: Copy + Default, const B: usize>(
    n: usize,
    (xp, yp): (*const T, *const T),
    pp: Option<*mut T>,
    (dp, grad): (*mut T, bool),
    mut step: impl FnMut(*const T, *const T, Option<*mut T>, *mut T, usize),
) {
    let mut bx = [T::default(); B];
    let mut by = [T::default(); B];
    let mut bl = [T::default(); B];
    let mut bg = [T::default(); B];
    let mut i = 0;
    while i < n {
        let r = (n - i).min(B);
        let full = r == B;
        let (sx, sy, sl, sg) = if full {
            // SAFETY: i + B <= n elements in each (the caller's guarantee).
            unsafe {
                (
                    xp.add(i),
                    yp.add(i),
                    pp.map(|p| p.add(i)),
                    dp.wrapping_add(i),
                )
            }
        } else {
            // SAFETY: r elements from i in x and y.
            unsafe {
                std::ptr::copy_nonoverlapping(xp.add(i), bx.as_mut_ptr(), r);
                std::ptr::copy_nonoverlapping(yp.add(i), by.as_mut_ptr(), r);
            }
            (
                bx.as_ptr(),
                by.as_ptr(),
                pp.map(|_| bl.as_mut_ptr()),
                bg.as_mut_ptr(),
            )
        };
        step(sx, sy, sl, sg, r);
        if !full {
            // SAFETY: r elements from i in `per` and (when `grad`) `dst`.
            unsafe {
                if let Some(pp) = pp {
                    std::ptr::copy_nonoverlapping(bl.as_ptr(), pp.add(i), r);
                }
                if grad {
                    std::ptr::copy_nonoverlapping(bg.as_ptr(), dp.add(i), r);
                }
            }
        }
        i += B;
    }
}

/// The float32 element-wise entry of a SIMD level: unweighted BCE with logits goes to
/// the level's float32-lane `bce`, every other kind and option to the generic kernel.
/// Inlines into the level's `#[target_feature]` wrapper, so the generic kernel is
/// compiled for that level.
///
/// # Safety
/// The CPU runs `bce`'s level.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn f32_level<S: Src<f32> + ?Sized, const G: bool>(
    kind: Kind,
    x: &S,
    y: &[f32],
    ex: &Extra<'_, f32>,
    off: usize,
    per: Option<&[Cell<f32>]>,
    dst: &[Cell<f32>],
    gscale: f64,
    bce: BcePlain,
) -> f64 {
    if kind == Kind::Bce && ex.weight.is_none() && ex.pos_weight.is_none() {
        let n = y.len();
        assert!(x.n() >= n && per.is_none_or(|p| p.len() >= n) && (!G || dst.len() >= n));
        // SAFETY: the caller vouches for the level; lengths asserted above.
        unsafe { bce(x.base(), y, per, dst, gscale) }
    } else {
        run::<f32, S, true, G>(kind, x, y, ex, off, per, dst, gscale)
    }
}

/// The kernel entry for in-place runs: source and destination are the same cells.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_inplace<T: Elem, const F: bool>(
    kind: Kind,
    d: &[Cell<T>],
    y: &[T],
    ex: &Extra<'_, T>,
    off: usize,
    per: Option<&[Cell<T>]>,
    gscale: f64,
) -> f64 {
    // Each block is loaded before it is stored: see kernel::Src.
    run::<T, Cells<'_, T>, F, true>(kind, &Cells(d), y, ex, off, per, d, gscale)
}
