//! softmax / log_softmax / logsumexp over the rows of a C-contiguous buffer.
//!
//! The caller (the Python layer) moves the reduced axes last and hands over a contiguous
//! `(rows, n)` buffer. Parallelism:
//! - many rows: rows are grouped into tasks of about `TASK_ELEMS` elements;
//! - few very wide rows (`rows < SPLIT_MAX_ROWS` and `n >= SPLIT_MIN_N`, e.g. a
//!   vocabulary-sized row or `axis=None`): each row is cut into `CHUNK` pieces, every
//!   piece reports (max, sum of exp relative to its own max) and the pieces are merged
//!   with the online rule `(m, s) + (m', s') = (M, s e^{m-M} + s' e^{m'-M})` in a fixed
//!   order; then a parallel write pass.
//!
//! Both choices depend only on the shape, never on the thread count, so results are bit
//! for bit the same for any number of threads.

pub(crate) mod dispatch;
pub mod kernel;

use std::cell::Cell;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel::pool;
use kernel::{special_lse, ChunkStats};
pub use kernel::{Elem, RowOp};

const TASK_ELEMS: usize = 1 << 15;
const SPLIT_MAX_ROWS: usize = 8;
// Rows this long are summed chunk by chunk also when they are not split (kernel::row).
use kernel::{CHUNK, SPLIT_MIN_N};

fn check(len: usize, n: usize, what: &str) -> Result<usize> {
    if n == 0 {
        return Ok(0);
    }
    if !len.is_multiple_of(n) {
        return Err(Error::Shape(format!(
            "{what}: buffer of {len} elements is not a whole number of rows of {n}"
        )));
    }
    Ok(len / n)
}

fn rows_per_task(n: usize) -> usize {
    (TASK_ELEMS / n.max(1)).max(1)
}

fn split_rows(rows: usize, n: usize) -> bool {
    rows < SPLIT_MAX_ROWS && n >= SPLIT_MIN_N
}

/// Merge chunk statistics in order into (M, s_excl) for the whole row. `None` when the
/// row max is not finite (the caller takes the special path).
pub(crate) fn merge(stats: &[ChunkStats]) -> Option<(f64, f64)> {
    let m = stats
        .iter()
        .fold(f64::NEG_INFINITY, |a, c| if c.m > a { c.m } else { a });
    if !m.is_finite() {
        // NaN chunks report m = -inf with s = NaN; a NaN-only row still needs the
        // special path, which sees it.
        return None;
    }
    let mut k = 0.0;
    let terms: Vec<f64> = stats
        .iter()
        .map(|c| {
            if c.m == m {
                k += c.sums.k;
                c.sums.s
            } else if c.m == f64::NEG_INFINITY {
                c.sums.s // 0, or NaN if the chunk had a NaN
            } else {
                // exp(c.m - m) with the subtraction's rounding error folded back in.
                let d = c.m - m;
                let z = d - c.m;
                let lo = (c.m - (d - z)) + (-m - z);
                (c.sums.s + c.sums.k) * (d.exp() * (1.0 + lo))
            }
        })
        .collect();
    Some((m, pairwise(&terms) + (k - 1.0)))
}

fn pairwise(v: &[f64]) -> f64 {
    match v.len() {
        0 => 0.0,
        1 => v[0],
        n => pairwise(&v[..n / 2]) + pairwise(&v[n / 2..]),
    }
}

/// Softmax or log_softmax of each length-`n` row of `x` into `out` (same length).
pub fn rowwise<T: Elem>(x: &[T], out: &mut [T], n: usize, op: RowOp) -> Result<()> {
    if x.len() != out.len() {
        return Err(Error::Shape(format!(
            "output has {} elements, input {}",
            out.len(),
            x.len()
        )));
    }
    let rows = check(x.len(), n, "softmax")?;
    if rows == 0 {
        return Ok(());
    }
    let k = dispatch::kernels::<T>();
    let pool = pool()?;
    pool.install(|| {
        if split_rows(rows, n) {
            for (xr, or) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
                let stats: Vec<ChunkStats> =
                    xr.par_chunks(CHUNK).map(|c| (k.stats_sep)(c)).collect();
                match merge(&stats) {
                    Some((m, s)) => {
                        xr.par_chunks(CHUNK)
                            .zip(or.par_chunks_mut(CHUNK))
                            .for_each(|(xc, oc)| {
                                let d = Cell::from_mut(oc).as_slice_of_cells();
                                match op {
                                    RowOp::Softmax => (k.write_exp_sep)(xc, d, m, 1.0 / (1.0 + s)),
                                    RowOp::LogSoftmax => (k.write_shift_sep)(xc, d, m, s.ln_1p()),
                                }
                            });
                    }
                    None => (k.rows_sep)(xr, Cell::from_mut(or).as_slice_of_cells(), n, op),
                }
            }
        } else {
            let t = rows_per_task(n) * n;
            x.par_chunks(t)
                .zip(out.par_chunks_mut(t))
                .for_each(|(xc, oc)| {
                    (k.rows_sep)(xc, Cell::from_mut(oc).as_slice_of_cells(), n, op)
                });
        }
    });
    Ok(())
}

/// Softmax or log_softmax of each length-`n` row of `buf`, in place.
pub fn rowwise_inplace<T: Elem>(buf: &mut [T], n: usize, op: RowOp) -> Result<()> {
    let rows = check(buf.len(), n, "softmax")?;
    if rows == 0 {
        return Ok(());
    }
    let k = dispatch::kernels::<T>();
    let pool = pool()?;
    pool.install(|| {
        if split_rows(rows, n) {
            for r in buf.chunks_exact_mut(n) {
                let stats: Vec<ChunkStats> = r
                    .par_chunks_mut(CHUNK)
                    .map(|c| (k.stats_cells)(Cell::from_mut(c).as_slice_of_cells()))
                    .collect();
                match merge(&stats) {
                    Some((m, s)) => r.par_chunks_mut(CHUNK).for_each(|c| {
                        let d = Cell::from_mut(c).as_slice_of_cells();
                        match op {
                            RowOp::Softmax => (k.write_exp_cells)(d, m, 1.0 / (1.0 + s)),
                            RowOp::LogSoftmax => (k.write_shift_cells)(d, m, s.ln_1p()),
                        }
                    }),
                    None => (k.rows_inplace)(Cell::from_mut(r).as_slice_of_cells(), n, op),
                }
            }
        } else {
            let t = rows_per_task(n) * n;
            buf.par_chunks_mut(t)
                .for_each(|c| (k.rows_inplace)(Cell::from_mut(c).as_slice_of_cells(), n, op));
        }
    });
    Ok(())
}

/// logsumexp of each length-`n` row of `x` into `out` (one value per row).
/// Rows of length 0 give -inf.
pub fn logsumexp_rows<T: Elem>(x: &[T], n: usize, out: &mut [T]) -> Result<()> {
    if n == 0 {
        if !x.is_empty() {
            return Err(Error::Shape(
                "logsumexp: rows of length 0 but a non-empty input".into(),
            ));
        }
        out.fill(T::from_f64(f64::NEG_INFINITY));
        return Ok(());
    }
    let rows = check(x.len(), n, "logsumexp")?;
    if rows != out.len() {
        return Err(Error::Shape(format!(
            "logsumexp: output has {} elements for {rows} rows",
            out.len()
        )));
    }
    let k = dispatch::kernels::<T>();
    let pool = pool()?;
    pool.install(|| {
        if split_rows(rows, n) {
            for (xr, o) in x.chunks_exact(n).zip(out.iter_mut()) {
                let stats: Vec<ChunkStats> =
                    xr.par_chunks(CHUNK).map(|c| (k.stats_sep)(c)).collect();
                let v = match merge(&stats) {
                    Some((m, s)) => m + s.ln_1p(),
                    None => {
                        let m = stats.iter().fold(f64::NEG_INFINITY, |a, c| a.max(c.m));
                        special_lse::<T, [T]>(xr, 0, n, m)
                    }
                };
                *o = T::from_f64(v);
            }
        } else {
            let rpt = rows_per_task(n);
            x.par_chunks(rpt * n)
                .zip(out.par_chunks_mut(rpt))
                .for_each(|(xc, oc)| (k.lse_rows)(xc, n, oc));
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests;
