//! Row-local results for the group kernels.
//!
//! The small-class kernels (`ce_small_group`, `hinge_small_group`, and the hand-written
//! `group16` / `group8` ones) compute a fixed number of rows at once, with their own
//! order of operations; the per-row paths compute the same values in another order. If
//! the rows left over at the end of a task, or the rows of a group that the kernel
//! declined because one of them is special, went to the per-row path, a row's loss and
//! gradient would depend on where it sits in the batch and on its neighbours. So every
//! row goes through the group kernel: the leftover rows are packed into a zero-padded
//! scratch group (zeros, target 0: a benign row), a declined group is retried one row
//! per scratch group, and only a row that the kernel declines on its own (a property of
//! that row alone) takes the per-row path.

use std::cell::Cell;
use std::ops::Range;

use crate::ops::kernel::{Elem, Src};

/// A group kernel on a scratch group: logits (`g * c`, C order), gradient cells, targets,
/// losses. Returns false (having written nothing that counts) when it declines.
pub(crate) type GroupFn<'a, T> = dyn FnMut(&[T], &[Cell<T>], &[i64], &mut [f64]) -> bool + 'a;

/// The task rows `rows` (at most `g`) packed into lanes 0.. of a zero-padded scratch group
/// and run by `group`; on success the losses (and, when `G`, gradient rows) are copied
/// back. False when the kernel declined.
#[allow(clippy::too_many_arguments)]
fn on_scratch<T: Elem, S: Src<T> + ?Sized, const G: bool>(
    g: usize,
    c: usize,
    x: &S,
    dst: &[Cell<T>],
    targets: &[i64],
    losses: &mut [f64],
    rows: &[usize],
    group: &mut GroupFn<'_, T>,
) -> bool {
    let zero = T::from_f64(0.0);
    let mut xs = vec![zero; g * c];
    let mut ts = vec![0i64; g];
    for (j, &r) in rows.iter().enumerate() {
        for i in 0..c {
            xs[j * c + i] = x.at(r * c + i);
        }
        ts[j] = targets[r];
    }
    let mut ds = if G { vec![zero; g * c] } else { Vec::new() };
    let mut ls = vec![0.0; g];
    let ok = group(
        &xs,
        Cell::from_mut(&mut ds[..]).as_slice_of_cells(),
        &ts,
        &mut ls,
    );
    if ok {
        for (j, &r) in rows.iter().enumerate() {
            losses[r] = ls[j];
            if G {
                for i in 0..c {
                    dst[r * c + i].set(ds[j * c + i]);
                }
            }
        }
    }
    ok
}

/// The rows `rows` of a task (at most `g`) that the group loop has not done: the leftover
/// rows at the end (`packed = true`: tried together in one padded group first) or a group
/// the kernel declined (`packed = false`). Each row the kernel declines on its own goes to
/// `generic(r, losses)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn leftover<T: Elem, S: Src<T> + ?Sized, const G: bool>(
    g: usize,
    c: usize,
    x: &S,
    dst: &[Cell<T>],
    targets: &[i64],
    losses: &mut [f64],
    rows: Range<usize>,
    packed: bool,
    group: &mut GroupFn<'_, T>,
    generic: &mut dyn FnMut(usize, &mut [f64]),
) {
    if rows.is_empty() {
        return;
    }
    let all: Vec<usize> = rows.clone().collect();
    if packed && on_scratch::<T, S, G>(g, c, x, dst, targets, losses, &all, group) {
        return;
    }
    for r in rows {
        if !on_scratch::<T, S, G>(g, c, x, dst, targets, losses, &[r], group) {
            generic(r, losses);
        }
    }
}

/// The group loop of a task: `main(r0, losses of rows r0..r0+g)` on each full group of
/// the task's rows (false: declined), then [`leftover`] for a declined group and for the
/// last rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn drive<T: Elem, S: Src<T> + ?Sized, const G: bool>(
    g: usize,
    c: usize,
    x: &S,
    dst: &[Cell<T>],
    targets: &[i64],
    losses: &mut [f64],
    main: &mut dyn FnMut(usize, &mut [f64]) -> bool,
    group: &mut GroupFn<'_, T>,
    generic: &mut dyn FnMut(usize, &mut [f64]),
) {
    let rows = targets.len();
    let mut r0 = 0;
    while r0 + g <= rows {
        if !main(r0, &mut losses[r0..r0 + g]) {
            let rr = r0..r0 + g;
            leftover::<T, S, G>(g, c, x, dst, targets, losses, rr, false, group, generic);
        }
        r0 += g;
    }
    leftover::<T, S, G>(
        g,
        c,
        x,
        dst,
        targets,
        losses,
        r0..rows,
        true,
        group,
        generic,
    );
}
