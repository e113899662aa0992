//! Row kernels for softmax / log_softmax / logsumexp, written once over lane blocks
//! and instantiated per SIMD level in `dispatch.rs`.
//!
//! Numerics (REFERENCE.md d2): with m the row max and k the number of entries equal to
//! m, `s = sum_{x_i < m} exp(x_i - m) + (k - 1)` is the sum *without one max entry*, so
//! `lse = m + log1p(s)` and `log_softmax_i = (x_i - m) - log1p(s)` keep full relative
//! accuracy even when s is tiny (the max entry's log-probability is -log1p(s), not a
//! rounded 0). float32 input is computed in float64 and rounded once at the end, so
//! `x_i - m` is exact and results are within half an ulp plus a hair. float64 input
//! recovers the rounding error of `x_i - m` with TwoSum and folds it back into the exp
//! (`e^(d + lo) ~ e^d (1 + lo)`) and into log_softmax.
//!
//! Rows whose max is not finite (all -inf, or any +inf, or only NaN and -inf) take a
//! scalar path that reproduces scipy's results exactly (see `special_row`).

use std::cell::Cell;

use crate::simd::exp::{exp_block, log1p_pos, POLY6, TAYLOR13};
use crate::simd::{fmadd, L};

/// Element types the kernels accept. Computation always happens in f64.
pub trait Elem: Copy + Send + Sync + PartialEq + 'static {
    /// exp polynomial, lower clamp and subnormal-safe scaling for this type's precision
    /// (see `simd::exp::exp1`).
    const COEF: &'static [f64];
    const LOW: f64;
    const SPLIT: bool;
    /// atanh-series terms of log1p for this precision.
    const LOG_TERMS: usize;
    /// Whether `x - m` can round (f64) and needs the TwoSum correction.
    const TWO_SUM: bool;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    /// 1/v to this type's precision (see `simd::exp::log1p_unit`).
    fn recip(v: f64) -> f64;
    /// log1p on [0, 1] by the division-free polynomial (`simd::exp::LOG1P_UNIT9`, 6e-9
    /// relative) instead of the range-reduced series: enough for float32 results.
    const LOG1P_POLY: bool;
}

impl Elem for f32 {
    const COEF: &'static [f64] = &POLY6;
    const LOW: f64 = -110.0;
    const SPLIT: bool = false;
    const LOG_TERMS: usize = 5;
    const TWO_SUM: bool = false;
    const LOG1P_POLY: bool = true;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn recip(v: f64) -> f64 {
        (1.0f32 / v as f32) as f64
    }
}

impl Elem for f64 {
    const COEF: &'static [f64] = &TAYLOR13;
    const LOW: f64 = -746.0;
    const SPLIT: bool = true;
    const LOG_TERMS: usize = 11;
    const TWO_SUM: bool = true;
    const LOG1P_POLY: bool = false;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn recip(v: f64) -> f64 {
        1.0 / v
    }
}

/// Read access to a row: a plain slice (out-of-place) or the output cells themselves
/// (in place, where source and destination alias; every pass reads an index before it
/// writes it, so aliasing is sound through `Cell`).
pub trait Src<T: Elem>: Sync {
    fn n(&self) -> usize;
    fn at(&self, i: usize) -> T;
    /// Lanes `i..i+L` as f64 (one bounds check, then a vector load).
    fn full(&self, i: usize) -> [f64; L];
    /// The first element's address, for hand-written SIMD loads of `n()` elements.
    fn base(&self) -> *const T;
}

impl<T: Elem> Src<T> for [T] {
    #[inline(always)]
    fn n(&self) -> usize {
        self.len()
    }
    #[inline(always)]
    fn at(&self, i: usize) -> T {
        self[i]
    }
    #[inline(always)]
    fn base(&self) -> *const T {
        self.as_ptr()
    }
    #[inline(always)]
    fn full(&self, i: usize) -> [f64; L] {
        let c = &self[i..i + L];
        let mut b = [0.0; L];
        for j in 0..L {
            b[j] = c[j].to_f64();
        }
        b
    }
}

/// Wrapper so an aliased cell row can be a `Src`; never crosses threads.
pub struct Cells<'a, T>(pub &'a [Cell<T>]);

// SAFETY: a `Cells` value is created inside one rayon task from that task's exclusive
// `&mut [T]` and never leaves it; the `Sync` bound on `Src` is only there so the
// plain-slice source can be shared, and no `Cells` is ever sent or shared.
unsafe impl<T> Sync for Cells<'_, T> {}

impl<T: Elem> Src<T> for Cells<'_, T> {
    #[inline(always)]
    fn n(&self) -> usize {
        self.0.len()
    }
    #[inline(always)]
    fn at(&self, i: usize) -> T {
        self.0[i].get()
    }
    #[inline(always)]
    fn base(&self) -> *const T {
        self.0.as_ptr() as *const T
    }
    #[inline(always)]
    fn full(&self, i: usize) -> [f64; L] {
        let c = &self.0[i..i + L];
        let mut b = [0.0; L];
        for j in 0..L {
            b[j] = c[j].get().to_f64();
        }
        b
    }
}

/// Load lanes `i..i+L` (or fewer at the tail, padded with `pad`) as f64.
#[inline(always)]
pub(crate) fn load<T: Elem, S: Src<T> + ?Sized>(
    x: &S,
    base: usize,
    i: usize,
    end: usize,
    pad: f64,
) -> [f64; L] {
    if i + L <= end {
        return x.full(base + i);
    }
    let mut b = [pad; L];
    for (j, v) in b.iter_mut().enumerate().take(end - i) {
        *v = x.at(base + i + j).to_f64();
    }
    b
}

#[inline(always)]
pub(crate) fn store<T: Elem>(dst: &[Cell<T>], i: usize, end: usize, b: &[f64; L]) {
    if i + L <= end {
        let d = &dst[i..i + L];
        for j in 0..L {
            d[j].set(T::from_f64(b[j]));
        }
    } else {
        for (j, v) in b.iter().enumerate().take(end - i) {
            dst[i + j].set(T::from_f64(*v));
        }
    }
}

/// Fixed-order pairwise sum of the lanes: deterministic and accurate.
#[inline(always)]
pub(crate) fn hsum(mut a: [f64; L]) -> f64 {
    let mut w = L / 2;
    while w > 0 {
        for j in 0..w {
            a[j] += a[j + w];
        }
        w /= 2;
    }
    a[0]
}

/// Max of `x[base..base+len]`, ignoring NaN (compare-select). -inf for an empty range.
#[inline(always)]
pub(crate) fn max<T: Elem, S: Src<T> + ?Sized>(x: &S, base: usize, len: usize) -> f64 {
    let mut acc = [f64::NEG_INFINITY; L];
    let mut i = 0;
    // Full blocks without the tail branch, so the loop vectorises (vmaxpd).
    while i + L <= len {
        let b = x.full(base + i);
        for j in 0..L {
            acc[j] = if b[j] > acc[j] { b[j] } else { acc[j] };
        }
        i += L;
    }
    if i < len {
        let b = load(x, base, i, len, f64::NEG_INFINITY);
        for j in 0..L {
            acc[j] = if b[j] > acc[j] { b[j] } else { acc[j] };
        }
    }
    let mut m = f64::NEG_INFINITY;
    for a in acc {
        m = if a > m { a } else { m };
    }
    m
}

/// Sums over one range of a row relative to a finite max `m`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sums {
    /// sum of exp(x_i - m) over x_i != m (NaN if the range has a NaN)
    pub s: f64,
    /// number of entries equal to m
    pub k: f64,
}

/// Ranges are summed lane-wise in blocks of this many elements; block sums are combined
/// pairwise (a binary-counter tree), so the error grows with log(n), not n. No recursion:
/// everything must inline into the `#[target_feature]` callers.
const PAIRWISE: usize = 2048;

/// Fixed-order pairwise accumulator: `push` block sums, `total` at the end.
struct Pairwise {
    lv: [f64; 64],
    occ: u64,
}

impl Pairwise {
    #[inline(always)]
    fn new() -> Self {
        Pairwise {
            lv: [0.0; 64],
            occ: 0,
        }
    }
    #[inline(always)]
    fn push(&mut self, mut v: f64) {
        let mut k = 0;
        while self.occ & (1 << k) != 0 {
            v += self.lv[k];
            self.occ &= !(1 << k);
            k += 1;
        }
        self.lv[k] = v;
        self.occ |= 1 << k;
    }
    #[inline(always)]
    fn total(&self) -> f64 {
        let mut acc = 0.0;
        for k in 0..64 {
            if self.occ & (1 << k) != 0 {
                acc += self.lv[k];
            }
        }
        acc
    }
}

/// exp(x_i - m) for `x[base..base+len]`, summed; when `STORE`, e_i is written to
/// `dst[0..len]` (the max entries get exactly 1).
#[inline(always)]
pub(crate) fn sumexp<T: Elem, S: Src<T> + ?Sized, const F: bool, const STORE: bool>(
    x: &S,
    base: usize,
    len: usize,
    dst: &[Cell<T>],
    m: f64,
) -> Sums {
    if len <= PAIRWISE {
        return sumexp_block::<T, S, F, STORE>(x, base, len, dst, m);
    }
    let mut tree = Pairwise::new();
    let mut k = 0.0;
    let mut start = 0;
    while start < len {
        let end = (start + PAIRWISE).min(len);
        let d = if STORE { &dst[start..end] } else { dst };
        let b = sumexp_block::<T, S, F, STORE>(x, base + start, end - start, d, m);
        tree.push(b.s);
        k += b.k;
        start = end;
    }
    Sums { s: tree.total(), k }
}

#[inline(always)]
fn sumexp_block<T: Elem, S: Src<T> + ?Sized, const F: bool, const STORE: bool>(
    x: &S,
    base: usize,
    len: usize,
    dst: &[Cell<T>],
    m: f64,
) -> Sums {
    let mut acc = [0.0; L];
    let mut cnt = [0.0; L];
    let mut i = 0;
    while i < len {
        let v = load(x, base, i, len, f64::NEG_INFINITY);
        let mut e = [0.0; L];
        let mut lo = [0.0; L];
        for j in 0..L {
            let d = v[j] - m;
            e[j] = d;
            if T::TWO_SUM {
                // TwoSum(v, -m): d + lo == v - m exactly. Zero when d is not finite
                // (then the correction would be NaN from inf - inf).
                let z = d - v[j];
                let err = (v[j] - (d - z)) + (-m - z);
                lo[j] = if d > -746.0 { err } else { 0.0 };
            }
        }
        exp_block::<F>(&mut e, T::COEF, T::LOW, T::SPLIT);
        for j in 0..L {
            if T::TWO_SUM {
                e[j] = fmadd::<F>(e[j], lo[j], e[j]);
            }
            let is_max = v[j] == m;
            cnt[j] += if is_max { 1.0 } else { 0.0 };
            acc[j] += if is_max { 0.0 } else { e[j] };
        }
        if STORE {
            store(dst, i, len, &e);
        }
        i += L;
    }
    Sums {
        s: hsum(acc),
        k: hsum(cnt),
    }
}

/// dst_i *= a
#[inline(always)]
pub(crate) fn scale<T: Elem>(dst: &[Cell<T>], a: f64) {
    let len = dst.len();
    let mut i = 0;
    while i < len {
        let mut v = load(&Cells(dst), 0, i, len, 0.0);
        for x in v.iter_mut() {
            *x *= a;
        }
        store(dst, i, len, &v);
        i += L;
    }
}

/// dst_i = exp(x_i - m) * a   (softmax write pass when the row is split across tasks)
#[inline(always)]
pub(crate) fn write_exp<T: Elem, S: Src<T> + ?Sized, const F: bool>(
    x: &S,
    base: usize,
    dst: &[Cell<T>],
    m: f64,
    a: f64,
) {
    let len = dst.len();
    let mut i = 0;
    while i < len {
        let v = load(x, base, i, len, f64::NEG_INFINITY);
        let mut e = [0.0; L];
        let mut lo = [0.0; L];
        for j in 0..L {
            let d = v[j] - m;
            e[j] = d;
            if T::TWO_SUM {
                let z = d - v[j];
                let err = (v[j] - (d - z)) + (-m - z);
                lo[j] = if d > -746.0 { err } else { 0.0 };
            }
        }
        exp_block::<F>(&mut e, T::COEF, T::LOW, T::SPLIT);
        for j in 0..L {
            let ej = if T::TWO_SUM {
                fmadd::<F>(e[j], lo[j], e[j])
            } else {
                e[j]
            };
            e[j] = ej * a;
        }
        store(dst, i, len, &e);
        i += L;
    }
}

/// dst_i = (x_i - m) - c   (log_softmax write pass)
#[inline(always)]
pub(crate) fn write_shift<T: Elem, S: Src<T> + ?Sized>(
    x: &S,
    base: usize,
    dst: &[Cell<T>],
    m: f64,
    c: f64,
) {
    let len = dst.len();
    let mut i = 0;
    while i < len {
        let v = load(x, base, i, len, 0.0);
        let mut o = [0.0; L];
        for j in 0..L {
            let d = v[j] - m;
            if T::TWO_SUM {
                let z = d - v[j];
                let err = (v[j] - (d - z)) + (-m - z);
                let lo = if d > f64::NEG_INFINITY { err } else { 0.0 };
                o[j] = (d - c) + lo;
            } else {
                o[j] = d - c;
            }
        }
        store(dst, i, len, &o);
        i += L;
    }
}

/// Which row operation a kernel performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOp {
    Softmax,
    LogSoftmax,
}

/// `s` without one max entry, from range sums: `s + (k - 1)`.
#[inline(always)]
pub(crate) fn excl(s: Sums) -> f64 {
    s.s + (s.k - 1.0)
}

/// Rows at least this long are summed chunk by chunk (`CHUNK` elements each, merged in
/// order by the online rule, `super::merge`) whether or not a call splits them across
/// tasks (`ops::rowwise` does when there are few such rows), so that a row's bits do not
/// depend on how many rows share the call.
pub(crate) const SPLIT_MIN_N: usize = 1 << 15;
pub(crate) const CHUNK: usize = 1 << 14;

/// A long row's (max, s without one max entry) from its chunks, as the split path merges
/// them; Err(max) when the max is not finite (the special paths).
#[inline(always)]
fn chunked<T: Elem, S: Src<T> + ?Sized, const F: bool>(
    x: &S,
    base: usize,
    len: usize,
) -> std::result::Result<(f64, f64), f64> {
    let mut stats = Vec::with_capacity(len.div_ceil(CHUNK));
    let mut start = 0;
    while start < len {
        let end = (start + CHUNK).min(len);
        stats.push(chunk_stats::<T, S, F>(x, base + start, end - start));
        start = end;
    }
    super::merge(&stats).ok_or_else(|| {
        stats
            .iter()
            .fold(f64::NEG_INFINITY, |a, c| if c.m > a { c.m } else { a })
    })
}

/// Softmax or log_softmax of one row `x[base..base+dst.len()]` into `dst`.
#[inline(always)]
pub(crate) fn row<T: Elem, S: Src<T> + ?Sized, const F: bool>(
    x: &S,
    base: usize,
    dst: &[Cell<T>],
    op: RowOp,
) {
    let len = dst.len();
    if len >= SPLIT_MIN_N {
        match chunked::<T, S, F>(x, base, len) {
            Ok((m, s)) => match op {
                RowOp::Softmax => write_exp::<T, S, F>(x, base, dst, m, 1.0 / (1.0 + s)),
                RowOp::LogSoftmax => write_shift(x, base, dst, m, s.ln_1p()),
            },
            Err(m) => special_row(x, base, dst, m, op),
        }
        return;
    }
    let m = max(x, base, len);
    if !m.is_finite() {
        special_row(x, base, dst, m, op);
        return;
    }
    match op {
        RowOp::Softmax => {
            let s = sumexp::<T, S, F, true>(x, base, len, dst, m);
            scale(dst, 1.0 / (1.0 + excl(s)));
        }
        RowOp::LogSoftmax => {
            let s = sumexp::<T, S, F, false>(x, base, len, dst, m);
            write_shift(x, base, dst, m, excl(s).ln_1p());
        }
    }
}

/// logsumexp of one row.
#[inline(always)]
pub(crate) fn lse_row<T: Elem, S: Src<T> + ?Sized, const F: bool>(
    x: &S,
    base: usize,
    len: usize,
) -> f64 {
    if len >= SPLIT_MIN_N {
        return match chunked::<T, S, F>(x, base, len) {
            Ok((m, s)) => m + s.ln_1p(),
            Err(m) => special_lse(x, base, len, m),
        };
    }
    let m = max(x, base, len);
    if !m.is_finite() {
        return special_lse(x, base, len, m);
    }
    let s = sumexp::<T, S, F, false>(x, base, len, &[], m);
    m + excl(s).ln_1p()
}

fn has_nan<T: Elem, S: Src<T> + ?Sized>(x: &S, base: usize, len: usize) -> bool {
    (0..len).any(|i| x.at(base + i).to_f64().is_nan())
}

/// logsumexp of a row whose NaN-ignoring max `m` is +-inf (or that is empty):
/// NaN if any NaN, else m (+inf if any +inf; -inf if all -inf or empty).
#[cold]
pub(crate) fn special_lse<T: Elem, S: Src<T> + ?Sized>(
    x: &S,
    base: usize,
    len: usize,
    m: f64,
) -> f64 {
    if has_nan(x, base, len) {
        f64::NAN
    } else {
        m
    }
}

/// scipy's results for rows whose max is not finite:
/// softmax: all NaN (scipy computes x - max = inf - inf or -inf - (-inf)).
/// log_softmax: scipy replaces a non-finite max by 0, so a row with +inf and no NaN gives
/// NaN at the +inf entries and -inf elsewhere; an all -inf row gives NaN; a NaN row NaN.
#[cold]
fn special_row<T: Elem, S: Src<T> + ?Sized>(
    x: &S,
    base: usize,
    dst: &[Cell<T>],
    m: f64,
    op: RowOp,
) {
    let nan = has_nan(x, base, dst.len());
    for (i, d) in dst.iter().enumerate() {
        let v = x.at(base + i).to_f64();
        d.set(T::from_f64(special_value(nan, m, v, op)));
    }
}

/// One entry of [`special_row`]: the row has a NaN (`nan`), its NaN-ignoring max `m`, the
/// entry's value `v`.
#[inline(always)]
fn special_value(nan: bool, m: f64, v: f64, op: RowOp) -> f64 {
    match op {
        RowOp::Softmax => f64::NAN,
        RowOp::LogSoftmax => {
            if nan || m == f64::NEG_INFINITY || v == f64::INFINITY {
                f64::NAN
            } else {
                f64::NEG_INFINITY
            }
        }
    }
}

/// Many rows of length `n` from `x` (starting at row 0 of both) into `dst`.
#[inline(always)]
pub(crate) fn rows<T: Elem, S: Src<T> + ?Sized, const F: bool>(
    x: &S,
    dst: &[Cell<T>],
    n: usize,
    op: RowOp,
) {
    let rows = dst.len() / n;
    let mut r = 0;
    if n <= SMALL_N {
        let mut buf = [[0.0; L]; SMALL_N];
        while r + L <= rows {
            small_group::<T, S, F>(x, r, n, &mut buf, Out::Rows(&dst[r * n..(r + L) * n], op));
            r += L;
        }
        if r < rows {
            // The last rows in a zero-padded scratch group, so that a row's bits do not
            // depend on where it sits in the batch (the per-row path sums in another order).
            let zero = T::from_f64(0.0);
            let mut xs = [zero; L * SMALL_N];
            let mut ds = [zero; L * SMALL_N];
            for i in 0..(rows - r) * n {
                xs[i] = x.at(r * n + i);
            }
            let cells = Cell::from_mut(&mut ds[..L * n]).as_slice_of_cells();
            small_group::<T, [T], F>(&xs[..L * n], 0, n, &mut buf, Out::Rows(cells, op));
            for (i, d) in dst[r * n..].iter().enumerate() {
                d.set(ds[i]);
            }
        }
        return;
    }
    for (i, d) in dst[r * n..].chunks_exact(n).enumerate() {
        row::<T, S, F>(x, (r + i) * n, d, op);
    }
}

/// Rows up to this long are processed `L` at a time, one row per lane, so tiny rows
/// (e.g. 10 classes) use full vectors instead of a padded block each.
pub(crate) const SMALL_N: usize = 32;

enum Out<'a, T> {
    Rows(&'a [Cell<T>], RowOp),
    Lse(&'a mut [T]),
}

/// `L` rows of length `n <= SMALL_N` starting at row `r0`: gather them transposed into
/// `buf` (lane j = row j), compute max, sums and results lane-wise, scatter back.
#[inline(always)]
fn small_group<T: Elem, S: Src<T> + ?Sized, const F: bool>(
    x: &S,
    r0: usize,
    n: usize,
    buf: &mut [[f64; L]; SMALL_N],
    out: Out<'_, T>,
) {
    for (c, b) in buf.iter_mut().enumerate().take(n) {
        for (j, v) in b.iter_mut().enumerate() {
            *v = x.at((r0 + j) * n + c).to_f64();
        }
    }
    let mut m = [f64::NEG_INFINITY; L];
    for b in buf.iter().take(n) {
        for j in 0..L {
            m[j] = if b[j] > m[j] { b[j] } else { m[j] };
        }
    }
    let keep_e = matches!(out, Out::Rows(_, RowOp::Softmax));
    // Rows with a non-finite max get scipy's special values, from the gathered values (in
    // place the scatter below overwrites x, and softmax overwrites `buf` with the exps).
    let special = m.iter().any(|v| !v.is_finite()) && matches!(out, Out::Rows(..));
    let orig = if special { Some(*buf) } else { None };
    let mut acc = [0.0; L];
    let mut cnt = [0.0; L];
    for b in buf.iter_mut().take(n) {
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
        if keep_e {
            *b = e;
        }
    }
    let mut s = [0.0; L];
    for j in 0..L {
        s[j] = acc[j] + (cnt[j] - 1.0);
    }
    let terms = T::LOG_TERMS;
    match out {
        Out::Lse(o) => {
            for j in 0..L {
                o[j] = T::from_f64(m[j] + log1p_pos::<F>(s[j], terms));
            }
            for (j, oj) in o.iter_mut().enumerate().take(L) {
                if !m[j].is_finite() {
                    *oj = T::from_f64(special_lse(x, (r0 + j) * n, n, m[j]));
                }
            }
        }
        Out::Rows(dst, op) => {
            let mut a = [0.0; L];
            for j in 0..L {
                a[j] = match op {
                    RowOp::Softmax => 1.0 / (1.0 + s[j]),
                    RowOp::LogSoftmax => log1p_pos::<F>(s[j], terms),
                };
            }
            for (c, b) in buf.iter().enumerate().take(n) {
                for j in 0..L {
                    let v = match op {
                        RowOp::Softmax => b[j] * a[j],
                        RowOp::LogSoftmax => {
                            let d = b[j] - m[j];
                            if T::TWO_SUM {
                                let z = d - b[j];
                                let err = (b[j] - (d - z)) + (-m[j] - z);
                                let lo = if d > f64::NEG_INFINITY { err } else { 0.0 };
                                (d - a[j]) + lo
                            } else {
                                d - a[j]
                            }
                        }
                    };
                    dst[j * n + c].set(T::from_f64(v));
                }
            }
            if let Some(orig) = orig {
                for (j, &mj) in m.iter().enumerate() {
                    if !mj.is_finite() {
                        let nan = (0..n).any(|c| orig[c][j].is_nan());
                        for (c, o) in orig.iter().enumerate().take(n) {
                            let v = special_value(nan, mj, o[j], op);
                            dst[j * n + c].set(T::from_f64(v));
                        }
                    }
                }
            }
        }
    }
}

/// logsumexp of `out.len()` rows of length `n`.
#[inline(always)]
pub(crate) fn lse_rows<T: Elem, const F: bool>(x: &[T], n: usize, out: &mut [T]) {
    let mut r = 0;
    if n <= SMALL_N {
        let mut buf = [[0.0; L]; SMALL_N];
        while r + L <= out.len() {
            small_group::<T, [T], F>(x, r, n, &mut buf, Out::Lse(&mut out[r..r + L]));
            r += L;
        }
        if r < out.len() {
            // The last rows in a zero-padded scratch group (see `rows`).
            let zero = T::from_f64(0.0);
            let mut xs = [zero; L * SMALL_N];
            let k = out.len() - r;
            xs[..k * n].copy_from_slice(&x[r * n..(r + k) * n]);
            let mut os = [zero; L];
            small_group::<T, [T], F>(&xs[..L * n], 0, n, &mut buf, Out::Lse(&mut os));
            out[r..].copy_from_slice(&os[..k]);
        }
        return;
    }
    for (i, o) in out[r..].iter_mut().enumerate() {
        *o = T::from_f64(lse_row::<T, [T], F>(x, (r + i) * n, n));
    }
}

/// Statistics of one chunk of a row that is split across tasks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkStats {
    /// chunk max (NaN-ignoring)
    pub m: f64,
    /// sums relative to the chunk's own max
    pub sums: Sums,
}

#[inline(always)]
pub(crate) fn chunk_stats<T: Elem, S: Src<T> + ?Sized, const F: bool>(
    x: &S,
    base: usize,
    len: usize,
) -> ChunkStats {
    let m = max(x, base, len);
    if !m.is_finite() {
        // Only -inf/NaN (or a +inf, which sends the whole row to the special path).
        let s = if has_nan(x, base, len) { f64::NAN } else { 0.0 };
        return ChunkStats {
            m,
            sums: Sums { s, k: 0.0 },
        };
    }
    ChunkStats {
        m,
        sums: sumexp::<T, S, F, false>(x, base, len, &[], m),
    }
}
