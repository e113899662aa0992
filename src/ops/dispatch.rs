//! One instantiation of the generic row kernels per SIMD level, selected at run time.

use std::cell::Cell;

use super::kernel::{self, Cells, ChunkStats, Elem, RowOp};
use crate::simd::{level, Level};

/// Function pointers to one level's kernels for element type `T`.
pub(crate) struct Kernels<T: 'static> {
    pub rows_sep: fn(&[T], &[Cell<T>], usize, RowOp),
    pub rows_inplace: fn(&[Cell<T>], usize, RowOp),
    pub lse_rows: fn(&[T], usize, &mut [T]),
    pub stats_sep: fn(&[T]) -> ChunkStats,
    pub stats_cells: fn(&[Cell<T>]) -> ChunkStats,
    pub write_exp_sep: fn(&[T], &[Cell<T>], f64, f64),
    pub write_exp_cells: fn(&[Cell<T>], f64, f64),
    pub write_shift_sep: fn(&[T], &[Cell<T>], f64, f64),
    pub write_shift_cells: fn(&[Cell<T>], f64, f64),
}

macro_rules! level_module {
    ($name:ident, $fma:expr $(, $feat:literal)?) => {
        mod $name {
            use super::*;

            $(#[target_feature(enable = $feat)])?
            unsafe fn rows_sep<T: Elem>(x: &[T], d: &[Cell<T>], n: usize, op: RowOp) {
                kernel::rows::<T, [T], $fma>(x, d, n, op)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn rows_inplace<T: Elem>(d: &[Cell<T>], n: usize, op: RowOp) {
                // The same path as out of place (so in place gives the same bits): each
                // row, or group of rows, is read before it is written (see kernel::Src).
                kernel::rows::<T, Cells<'_, T>, $fma>(&Cells(d), d, n, op)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn lse_rows<T: Elem>(x: &[T], n: usize, out: &mut [T]) {
                kernel::lse_rows::<T, $fma>(x, n, out)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn stats_sep<T: Elem>(x: &[T]) -> ChunkStats {
                kernel::chunk_stats::<T, [T], $fma>(x, 0, x.len())
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn stats_cells<T: Elem>(x: &[Cell<T>]) -> ChunkStats {
                kernel::chunk_stats::<T, Cells<'_, T>, $fma>(&Cells(x), 0, x.len())
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn write_exp_sep<T: Elem>(x: &[T], d: &[Cell<T>], m: f64, a: f64) {
                kernel::write_exp::<T, [T], $fma>(x, 0, d, m, a)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn write_exp_cells<T: Elem>(d: &[Cell<T>], m: f64, a: f64) {
                kernel::write_exp::<T, Cells<'_, T>, $fma>(&Cells(d), 0, d, m, a)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn write_shift_sep<T: Elem>(x: &[T], d: &[Cell<T>], m: f64, c: f64) {
                kernel::write_shift::<T, [T]>(x, 0, d, m, c)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn write_shift_cells<T: Elem>(d: &[Cell<T>], m: f64, c: f64) {
                kernel::write_shift::<T, Cells<'_, T>>(&Cells(d), 0, d, m, c)
            }

            // SAFETY (every wrapper below): `kernels()` hands these out only when
            // `crate::simd::level()` reports this level, which is never above what
            // the CPU was detected to support (Level::best / set_level clamp it).
            pub(super) fn kernels<T: Elem>() -> Kernels<T> {
                Kernels {
                    rows_sep: |x, d, n, op| unsafe { rows_sep(x, d, n, op) },
                    rows_inplace: |d, n, op| unsafe { rows_inplace(d, n, op) },
                    lse_rows: |x, n, o| unsafe { lse_rows(x, n, o) },
                    stats_sep: |x| unsafe { stats_sep(x) },
                    stats_cells: |x| unsafe { stats_cells(x) },
                    write_exp_sep: |x, d, m, a| unsafe { write_exp_sep(x, d, m, a) },
                    write_exp_cells: |d, m, a| unsafe { write_exp_cells(d, m, a) },
                    write_shift_sep: |x, d, m, c| unsafe { write_shift_sep(x, d, m, c) },
                    write_shift_cells: |d, m, c| unsafe { write_shift_cells(d, m, c) },
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

/// The kernels for the current level.
pub(crate) fn kernels<T: Elem>() -> Kernels<T> {
    match level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => avx512::kernels(),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => avx2::kernels(),
        _ => scalar::kernels(),
    }
}
