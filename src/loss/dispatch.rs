//! Loss kernels instantiated per SIMD level (see `ops/dispatch.rs` for the pattern).

use std::cell::Cell;

use super::ce::{ce_prob_rows, ce_rows, CeCtx};
use super::elementwise::{run, run_inplace, Extra, Kind};
use super::hinge::{hinge_rows, hinge_rows_inplace, HingeCtx};
use crate::ops::kernel::{Cells, Elem};
use crate::simd::{level, Level};

type CeIdx<T> = fn(&[T], &[i64], &CeCtx<'_>, &mut [f64]);
type CeIdxGrad<T> = fn(&[T], &[Cell<T>], &[i64], &CeCtx<'_>, &mut [f64]);
type CeIdxIn<T> = fn(&[Cell<T>], &[i64], &CeCtx<'_>, &mut [f64]);
type CeProb<T> = fn(&[T], &[T], &CeCtx<'_>, &mut [f64]);
type CeProbGrad<T> = fn(&[T], &[Cell<T>], &[T], &CeCtx<'_>, &mut [f64]);
type CeProbIn<T> = fn(&[Cell<T>], &[T], &CeCtx<'_>, &mut [f64]);

type Ew<T> = fn(Kind, &[T], &[T], &Extra<'_, T>, usize, Option<&[Cell<T>]>, &[Cell<T>], f64) -> f64;
type EwIn<T> = fn(Kind, &[Cell<T>], &[T], &Extra<'_, T>, usize, Option<&[Cell<T>]>, f64) -> f64;

type Hg<T> = fn(&[T], &[i64], &HingeCtx<'_>, &mut [f64]);
type HgGrad<T> = fn(&[T], &[Cell<T>], &[i64], &HingeCtx<'_>, &mut [f64]);
type HgIn<T> = fn(&[Cell<T>], &[i64], &HingeCtx<'_>, &mut [f64]);

pub(crate) struct Kernels<T: 'static> {
    pub hinge: Hg<T>,
    pub hinge_grad: HgGrad<T>,
    pub hinge_inplace: HgIn<T>,
    pub ew: Ew<T>,
    pub ew_grad: Ew<T>,
    pub ew_inplace: EwIn<T>,
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

            $(#[target_feature(enable = $feat)])?
            #[allow(clippy::too_many_arguments)]
            unsafe fn ew<T: Elem>(
                k: Kind, x: &[T], y: &[T], e: &Extra<'_, T>, o: usize,
                p: Option<&[Cell<T>]>, d: &[Cell<T>], g: f64,
            ) -> f64 {
                run::<T, [T], $fma, false>(k, x, y, e, o, p, d, g)
            }
            $(#[target_feature(enable = $feat)])?
            #[allow(clippy::too_many_arguments)]
            unsafe fn ew_grad<T: Elem>(
                k: Kind, x: &[T], y: &[T], e: &Extra<'_, T>, o: usize,
                p: Option<&[Cell<T>]>, d: &[Cell<T>], g: f64,
            ) -> f64 {
                run::<T, [T], $fma, true>(k, x, y, e, o, p, d, g)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn ew_inplace<T: Elem>(
                k: Kind, d: &[Cell<T>], y: &[T], e: &Extra<'_, T>, o: usize,
                p: Option<&[Cell<T>]>, g: f64,
            ) -> f64 {
                run_inplace::<T, $fma>(k, d, y, e, o, p, g)
            }

            $(#[target_feature(enable = $feat)])?
            unsafe fn hinge<T: Elem>(x: &[T], t: &[i64], h: &HingeCtx<'_>, l: &mut [f64]) {
                hinge_rows::<T, [T], false>(x, &[], t, h, l)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn hinge_grad<T: Elem>(
                x: &[T], d: &[Cell<T>], t: &[i64], h: &HingeCtx<'_>, l: &mut [f64],
            ) {
                hinge_rows::<T, [T], true>(x, d, t, h, l)
            }
            $(#[target_feature(enable = $feat)])?
            unsafe fn hinge_inplace<T: Elem>(d: &[Cell<T>], t: &[i64], h: &HingeCtx<'_>, l: &mut [f64]) {
                hinge_rows_inplace::<T>(d, t, h, l)
            }

            // SAFETY (every wrapper): handed out only when `level()` reports this level,
            // which never exceeds what the CPU was detected to support.
            pub(super) fn kernels<T: Elem>() -> Kernels<T> {
                Kernels {
                    hinge: |x, t, h, l| unsafe { hinge(x, t, h, l) },
                    hinge_grad: |x, d, t, h, l| unsafe { hinge_grad(x, d, t, h, l) },
                    hinge_inplace: |d, t, h, l| unsafe { hinge_inplace(d, t, h, l) },
                    ew: |k, x, y, e, o, p, d, g| unsafe { ew(k, x, y, e, o, p, d, g) },
                    ew_grad: |k, x, y, e, o, p, d, g| unsafe { ew_grad(k, x, y, e, o, p, d, g) },
                    ew_inplace: |k, d, y, e, o, p, g| unsafe { ew_inplace(k, d, y, e, o, p, g) },
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

/// Put `f` in `slot` when their types agree: `F` is a kernel type at f32, `G` the same
/// kernel type at `T`, so the downcast succeeds exactly when `T` is f32.
#[cfg(target_arch = "x86_64")]
fn install<F: 'static, G: 'static + Copy>(slot: &mut G, f: F) {
    if let Some(g) = (&f as &dyn std::any::Any).downcast_ref::<G>() {
        *slot = *g;
    }
}

/// The class-target overrides of a level: cross-entropy with index targets and the
/// Weston-Watkins / multi-margin hinge, for element type `$t`, from the functions `$ce`
/// and `$hg` (each generic over the source and the gradient flag: `avx512_f32`'s and
/// `avx2_f32`'s float32 kernels, `avx512_f64`'s float64 ones). The caller installs them
/// only on the level their module was written for (`level()` never reports a level the
/// CPU lacks).
#[cfg(target_arch = "x86_64")]
macro_rules! row_overrides {
    ($k:expr, $t:ty, $ce:path, $hg:path) => {{
        use $ce as ce;
        use $hg as hg;
        let mut k = $k;
        // SAFETY (every closure): see the macro's doc.
        let idx: CeIdx<$t> = |x, t, c, l| unsafe { ce::<[$t], false>(x, &[], t, c, l) };
        let grad: CeIdxGrad<$t> = |x, d, t, c, l| unsafe { ce::<[$t], true>(x, d, t, c, l) };
        let inpl: CeIdxIn<$t> =
            |d, t, c, l| unsafe { ce::<Cells<'_, $t>, true>(&Cells(d), d, t, c, l) };
        let h: Hg<$t> = |x, t, h, l| unsafe { hg::<[$t], false>(x, &[], t, h, l) };
        let hgr: HgGrad<$t> = |x, d, t, h, l| unsafe { hg::<[$t], true>(x, d, t, h, l) };
        let hgi: HgIn<$t> =
            |d, t, h, l| unsafe { hg::<Cells<'_, $t>, true>(&Cells(d), d, t, h, l) };
        install(&mut k.ce_idx, idx);
        install(&mut k.ce_idx_grad, grad);
        install(&mut k.ce_idx_inplace, inpl);
        install(&mut k.hinge, h);
        install(&mut k.hinge_grad, hgr);
        install(&mut k.hinge_inplace, hgi);
        k
    }};
}

/// Install module `$m`'s element-wise kernels for element type `$t` (`$m::elementwise`:
/// BCE with logits hand-written, the rest generic) over `$k`'s: the float32 ones of
/// `avx512_f32` / `avx2_f32`, the float64 one of `avx512_f64`.
///
/// Safety contract: only use this for a module whose level is the current level.
#[cfg(target_arch = "x86_64")]
macro_rules! elementwise_override {
    ($k:expr, $m:path, $t:ty) => {{
        use $m as m;
        let mut k = $k;
        // SAFETY (every closure): see the macro's doc.
        let ew: Ew<$t> = |k, x, y, e, o, p, d, g| unsafe {
            m::elementwise::<[$t], false>(k, x, y, e, o, p, d, g)
        };
        let ewg: Ew<$t> = |k, x, y, e, o, p, d, g| unsafe {
            m::elementwise::<[$t], true>(k, x, y, e, o, p, d, g)
        };
        let ewi: EwIn<$t> = |k, d, y, e, o, p, g| unsafe {
            m::elementwise::<Cells<'_, $t>, true>(k, &Cells(d), y, e, o, p, d, g)
        };
        install(&mut k.ew, ew);
        install(&mut k.ew_grad, ewg);
        install(&mut k.ew_inplace, ewi);
        k
    }};
}

#[cfg(target_arch = "x86_64")]
fn avx512_f32<T: Elem>(k: Kernels<T>) -> Kernels<T> {
    use super::avx512_f32 as m;
    let k = row_overrides!(k, f32, m::ce_rows_f32, m::hinge_rows);
    elementwise_override!(k, m, f32)
}

/// The AVX-512 level's float64 kernels over `k`'s, only for T = f64: cross-entropy and
/// the hinge up to 16 classes 8 rows at a time, BCE with logits four registers at a time
/// (`avx512_f64`), the rest generic.
#[cfg(target_arch = "x86_64")]
fn avx512_f64<T: Elem>(k: Kernels<T>) -> Kernels<T> {
    use super::avx512_f64 as m;
    let k = row_overrides!(k, f64, m::ce_rows_f64, m::hinge_rows_f64);
    elementwise_override!(k, m, f64)
}

#[cfg(target_arch = "x86_64")]
fn avx2_f32<T: Elem>(k: Kernels<T>) -> Kernels<T> {
    use super::avx2_f32 as m;
    let k = row_overrides!(k, f32, m::ce_rows_f32, m::hinge_rows);
    elementwise_override!(k, m, f32)
}

/// The AVX2 level's float64 element-wise kernels (`avx2_f64`: BCE with logits four
/// registers at a time, the rest generic) over `k`'s; only for T = f64.
#[cfg(target_arch = "x86_64")]
fn avx2_f64<T: Elem>(k: Kernels<T>) -> Kernels<T> {
    elementwise_override!(k, super::avx2_f64, f64)
}

pub(crate) fn kernels<T: Elem>() -> Kernels<T> {
    match level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => avx512_f64(avx512_f32(avx512::kernels())),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => avx2_f64(avx2_f32(avx2::kernels())),
        _ => scalar::kernels(),
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The accuracy tests pass on the generic kernels too, so check that the AVX2 and
    /// AVX-512 levels really install the float32 kernels (and only for f32).
    #[test]
    fn levels_install_float32_kernels() {
        fn check(base: Kernels<f32>, k: Kernels<f32>, b64: Kernels<f64>, k64: Kernels<f64>) {
            assert!(k.ce_idx as usize != base.ce_idx as usize);
            assert!(k.ce_idx_grad as usize != base.ce_idx_grad as usize);
            assert!(k.ce_idx_inplace as usize != base.ce_idx_inplace as usize);
            assert!(k.hinge as usize != base.hinge as usize);
            assert!(k.hinge_grad as usize != base.hinge_grad as usize);
            assert!(k.hinge_inplace as usize != base.hinge_inplace as usize);
            assert!(k64.ce_idx as usize == b64.ce_idx as usize);
            assert!(k64.hinge_grad as usize == b64.hinge_grad as usize);
        }
        let avail = Level::available();
        if avail.contains(&Level::Avx2) {
            let (b, k) = (avx2::kernels::<f32>(), avx2_f32(avx2::kernels::<f32>()));
            assert!(k.ew as usize != b.ew as usize);
            // The float64 element-wise override, for f64 only.
            let (b64, k64) = (avx2::kernels::<f64>(), avx2_f64(avx2::kernels::<f64>()));
            assert!(k64.ew as usize != b64.ew as usize);
            assert!(k64.ew_grad as usize != b64.ew_grad as usize);
            assert!(k64.ew_inplace as usize != b64.ew_inplace as usize);
            let (b32, k32) = (avx2::kernels::<f32>(), avx2_f64(avx2::kernels::<f32>()));
            assert!(k32.ew as usize == b32.ew as usize);
            assert!(k.ew_grad as usize != b.ew_grad as usize);
            assert!(k.ew_inplace as usize != b.ew_inplace as usize);
            check(
                avx2::kernels(),
                avx2_f32(avx2::kernels()),
                avx2::kernels(),
                avx2_f32(avx2::kernels()),
            );
        }
        if avail.contains(&Level::Avx512) {
            let (b, k) = (
                avx512::kernels::<f32>(),
                avx512_f32(avx512::kernels::<f32>()),
            );
            assert!(k.ew as usize != b.ew as usize);
            assert!(k.ew_grad as usize != b.ew_grad as usize);
            assert!(k.ew_inplace as usize != b.ew_inplace as usize);
            check(
                avx512::kernels(),
                avx512_f32(avx512::kernels()),
                avx512::kernels(),
                avx512_f32(avx512::kernels()),
            );
            // The float64 overrides, for f64 only.
            let (b64, k64) = (
                avx512::kernels::<f64>(),
                avx512_f64(avx512::kernels::<f64>()),
            );
            assert!(k64.ew as usize != b64.ew as usize);
            assert!(k64.ew_grad as usize != b64.ew_grad as usize);
            assert!(k64.ew_inplace as usize != b64.ew_inplace as usize);
            assert!(k64.ce_idx as usize != b64.ce_idx as usize);
            assert!(k64.ce_idx_grad as usize != b64.ce_idx_grad as usize);
            assert!(k64.ce_idx_inplace as usize != b64.ce_idx_inplace as usize);
            assert!(k64.hinge as usize != b64.hinge as usize);
            assert!(k64.hinge_grad as usize != b64.hinge_grad as usize);
            assert!(k64.hinge_inplace as usize != b64.hinge_inplace as usize);
            let (b32, k32) = (
                avx512::kernels::<f32>(),
                avx512_f64(avx512::kernels::<f32>()),
            );
            assert!(k32.ew as usize == b32.ew as usize);
            assert!(k32.ce_idx as usize == b32.ce_idx as usize);
            assert!(k32.hinge_grad as usize == b32.hinge_grad as usize);
        }
    }
}
