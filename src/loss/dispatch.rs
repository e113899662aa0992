//! Loss kernels instantiated per SIMD level (see `ops/dispatch.rs` for the pattern).

use std::cell::Cell;

use super::ce::{ce_prob_rows, ce_rows, CeCtx};
use crate::ops::kernel::{Cells, Elem};
use crate::simd::{level, Level};

type CeIdx<T> = fn(&[T], &[i64], &CeCtx<'_>, &mut [f64]);
type CeIdxGrad<T> = fn(&[T], &[Cell<T>], &[i64], &CeCtx<'_>, &mut [f64]);
type CeIdxIn<T> = fn(&[Cell<T>], &[i64], &CeCtx<'_>, &mut [f64]);
type CeProb<T> = fn(&[T], &[T], &CeCtx<'_>, &mut [f64]);
type CeProbGrad<T> = fn(&[T], &[Cell<T>], &[T], &CeCtx<'_>, &mut [f64]);
type CeProbIn<T> = fn(&[Cell<T>], &[T], &CeCtx<'_>, &mut [f64]);

pub(crate) struct Kernels<T: 'static> {
    pub ce_idx: CeIdx<T>,
    pub ce_idx_grad: CeIdxGrad<T>,
    pub ce_idx_inplace: CeIdxIn<T>,
    pub ce_prob: CeProb<T>,
    pub ce_prob_grad: CeProbGrad<T>,
    pub ce_prob_inplace: CeProbIn<T>,
}

macro_rules! level_module {
    ($name:ident, $fma:expr $(, $feat:literal)?) => {
        mod $name {
            use super::*;

            $(#[target_feature(enable = $feat)])?
            unsafe fn ce_idx<T: Elem>(x: &[T], t: &[i64], c: &CeCtx<'_>, l: &mut [f64]) {
                ce_rows::<T, [T], $fma, false>(x, &[], t, c, l)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn ce_idx_grad<T: Elem>(
                x: &[T], d: &[Cell<T>], t: &[i64], c: &CeCtx<'_>, l: &mut [f64],
            ) {
                ce_rows::<T, [T], $fma, true>(x, d, t, c, l)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn ce_idx_inplace<T: Elem>(d: &[Cell<T>], t: &[i64], c: &CeCtx<'_>, l: &mut [f64]) {
                // Each row reads x_y and every element before writing it: see kernel::Src.
                ce_rows::<T, Cells<'_, T>, $fma, true>(&Cells(d), d, t, c, l)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn ce_prob<T: Elem>(x: &[T], y: &[T], c: &CeCtx<'_>, l: &mut [f64]) {
                ce_prob_rows::<T, [T], $fma, false>(x, &[], y, c, l)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn ce_prob_grad<T: Elem>(
                x: &[T], d: &[Cell<T>], y: &[T], c: &CeCtx<'_>, l: &mut [f64],
            ) {
                ce_prob_rows::<T, [T], $fma, true>(x, d, y, c, l)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn ce_prob_inplace<T: Elem>(d: &[Cell<T>], y: &[T], c: &CeCtx<'_>, l: &mut [f64]) {
                ce_prob_rows::<T, Cells<'_, T>, $fma, true>(&Cells(d), d, y, c, l)
            }

            // SAFETY (every wrapper): handed out only when `level()` reports this level,
            // which never exceeds what the CPU was detected to support.
            pub(super) fn kernels<T: Elem>() -> Kernels<T> {
                Kernels {
                    ce_idx: |x, t, c, l| unsafe { ce_idx(x, t, c, l) },
                    ce_idx_grad: |x, d, t, c, l| unsafe { ce_idx_grad(x, d, t, c, l) },
                    ce_idx_inplace: |d, t, c, l| unsafe { ce_idx_inplace(d, t, c, l) },
                    ce_prob: |x, y, c, l| unsafe { ce_prob(x, y, c, l) },
                    ce_prob_grad: |x, d, y, c, l| unsafe { ce_prob_grad(x, d, y, c, l) },
                    ce_prob_inplace: |d, y, c, l| unsafe { ce_prob_inplace(d, y, c, l) },
                }
            }
        }
    };
}

level_module!(scalar, false);
#[cfg(target_arch = "x86_64")]
level_module!(avx2, true, "avx2,fma");
#[cfg(target_arch = "x86_64")]
level_module!(avx512, true, "avx512f,avx2,fma");

pub(crate) fn kernels<T: Elem>() -> Kernels<T> {
    match level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => avx512::kernels(),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => avx2::kernels(),
        _ => scalar::kernels(),
    }
}
