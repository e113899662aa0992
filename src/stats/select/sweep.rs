//! The per-value loop of a task in a pass: each value goes to the window holding its
//! key (collected or histogrammed) or is summed into the gap between windows.
//!
//! Why a separate kernel: almost every value of a later pass lands in a gap, and the
//! plain loop (binary search over the windows, then `n, s1, s2` of that gap updated in
//! memory) carried a store-to-load dependency from one value to the next: it took ~60%
//! of an exact-median scan of a `.npy` file. With at most [`MAX_FAST`] windows the gap
//! index is counted with branch-free compares over 8 values at a time, every gap keeps
//! its sums in 8 lanes (registers), and only the values inside a window take the scalar
//! path. The body is instantiated for AVX2 and AVX-512 (64-bit compares need them) and
//! chosen at run time. There is no FMA and the lane order is fixed, so every level gives
//! bit-identical sums.

use super::{Gap, TaskAcc, TaskPlan};
use crate::simd::{level, Level};

/// Values per step: one lane each.
const L: usize = 8;
/// Plans with at most this many windows take the vectorised loop.
pub const MAX_FAST: usize = 4;

/// Signed form of a [`key`](super::super::keys::key): the same order as `i64`, so vector
/// compares need no unsigned emulation. A value's is `bits ^ ((bits >> 63) >>> 1)`.
#[inline(always)]
fn to_signed(k: u64) -> i64 {
    (k ^ (1 << 63)) as i64
}

/// One value, the plain way: its window if any, else its gap (`gs`, local sums).
#[inline(always)]
fn one(tp: &TaskPlan, ta: &mut TaskAcc, gs: &mut [(u64, f64, f64)], y: f64) {
    let w = &tp.windows;
    let k = super::key(y);
    let i = w.partition_point(|x| x.hi < k);
    if i < w.len() && w[i].lo <= k {
        let win = &w[i];
        if win.collect {
            if !win.degenerate() {
                ta.vals[i].push(y);
            }
        } else {
            ta.hists[i][((k - win.lo) >> win.shift) as usize] += 1;
        }
        ta.counts[i] += 1;
    } else {
        let d = y - tp.r;
        let g = &mut gs[i];
        g.0 += 1;
        g.1 += d;
        g.2 += d * d;
    }
}

/// The plain loop: any number of windows.
fn plain(tp: &TaskPlan, ta: &mut TaskAcc, v: &[f64]) {
    let mut gs = vec![(0u64, 0.0f64, 0.0f64); tp.windows.len() + 1];
    for &y in v {
        one(tp, ta, &mut gs, y);
    }
    for (g, l) in ta.gaps.iter_mut().zip(gs) {
        g.merge(&Gap {
            n: l.0,
            s1: l.1,
            s2: l.2,
        });
    }
}

/// Window bounds as signed keys, and the gap bounds that follow from them.
#[inline(always)]
fn bounds<const W: usize>(tp: &TaskPlan) -> ([i64; W], [i64; W]) {
    let mut lo = [0i64; W];
    let mut hi = [0i64; W];
    for j in 0..W {
        lo[j] = to_signed(tp.windows[j].lo);
        hi[j] = to_signed(tp.windows[j].hi);
    }
    (lo, hi)
}

/// The values of one 8-value step outside every gap (bit l of `out` clear): the plain
/// path.
#[inline(always)]
fn inside(tp: &TaskPlan, ta: &mut TaskAcc, gs: &mut [(u64, f64, f64)], c: &[f64], out: u32) {
    if out != 0xFF {
        for (l, &x) in c.iter().enumerate() {
            if out >> l & 1 == 0 {
                one(tp, ta, gs, x);
            }
        }
    }
}

/// The last values (fewer than a step) the plain way, then the lane sums and what the
/// plain path summed folded into the task's gaps.
fn finish(
    tp: &TaskPlan,
    ta: &mut TaskAcc,
    rest: &[f64],
    n: &[u64],
    s1: &[[f64; L]],
    s2: &[[f64; L]],
    mut gs: Vec<(u64, f64, f64)>,
) {
    for &y in rest {
        one(tp, ta, &mut gs, y);
    }
    let tree = |a: &[f64; L]| ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (gi, gap) in ta.gaps.iter_mut().enumerate() {
        gap.merge(&Gap {
            n: n[gi] + gs[gi].0,
            s1: tree(&s1[gi]) + gs[gi].1,
            s2: tree(&s2[gi]) + gs[gi].2,
        });
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    /// AVX-512: 8 values per step; gap g's mask is (above window g-1) & (below window
    /// g), a value in no gap is in a window and takes the scalar path.
    #[target_feature(enable = "avx512f,avx512dq,avx2,popcnt")]
    pub(super) unsafe fn avx512<const W: usize>(tp: &TaskPlan, ta: &mut TaskAcc, v: &[f64]) {
        let (lo, hi) = bounds::<W>(tp);
        let lov: [__m512i; W] = std::array::from_fn(|j| _mm512_set1_epi64(lo[j]));
        let hiv: [__m512i; W] = std::array::from_fn(|j| _mm512_set1_epi64(hi[j]));
        let r = _mm512_set1_pd(tp.r);
        let mut n = [0u64; MAX_FAST + 1];
        let mut s1 = [_mm512_setzero_pd(); MAX_FAST + 1];
        let mut s2 = [_mm512_setzero_pd(); MAX_FAST + 1];
        let mut gs = vec![(0u64, 0.0f64, 0.0f64); W + 1];
        let mut it = v.chunks_exact(L);
        for c in &mut it {
            // SAFETY: `c` holds L = 8 f64.
            let y = _mm512_loadu_pd(c.as_ptr());
            let b = _mm512_castpd_si512(y);
            let k = _mm512_xor_si512(b, _mm512_srli_epi64::<1>(_mm512_srai_epi64::<63>(b)));
            let d = _mm512_sub_pd(y, r);
            let mut below = [0u8; W];
            let mut above = [0u8; W];
            for j in 0..W {
                below[j] = _mm512_cmplt_epi64_mask(k, lov[j]);
                above[j] = _mm512_cmpgt_epi64_mask(k, hiv[j]);
            }
            let mut out = 0u8;
            for gi in 0..=W {
                let mut m = 0xFFu8;
                if gi > 0 {
                    m &= above[gi - 1];
                }
                if gi < W {
                    m &= below[gi];
                }
                out |= m;
                n[gi] += m.count_ones() as u64;
                let dm = _mm512_maskz_mov_pd(m, d);
                s1[gi] = _mm512_add_pd(s1[gi], dm);
                s2[gi] = _mm512_add_pd(s2[gi], _mm512_mul_pd(dm, dm));
            }
            inside(tp, ta, &mut gs, c, out as u32);
        }
        // SAFETY: a __m512d is 8 f64 lanes.
        let lanes = |v: &[__m512d]| -> Vec<[f64; L]> {
            v.iter()
                .map(|&x| unsafe { std::mem::transmute::<__m512d, [f64; L]>(x) })
                .collect()
        };
        finish(tp, ta, it.remainder(), &n, &lanes(&s1), &lanes(&s2), gs);
    }

    /// AVX2: the same 8 lanes as two 4-lane halves, so both levels sum identically.
    #[target_feature(enable = "avx2,popcnt")]
    pub(super) unsafe fn avx2<const W: usize>(tp: &TaskPlan, ta: &mut TaskAcc, v: &[f64]) {
        let (lo, hi) = bounds::<W>(tp);
        let lov: [__m256i; W] = std::array::from_fn(|j| _mm256_set1_epi64x(lo[j]));
        let hiv: [__m256i; W] = std::array::from_fn(|j| _mm256_set1_epi64x(hi[j]));
        let r = _mm256_set1_pd(tp.r);
        let ones = _mm256_set1_epi64x(-1);
        let mut n = [0u64; MAX_FAST + 1];
        let mut s1 = [[_mm256_setzero_pd(); 2]; MAX_FAST + 1];
        let mut s2 = [[_mm256_setzero_pd(); 2]; MAX_FAST + 1];
        let mut gs = vec![(0u64, 0.0f64, 0.0f64); W + 1];
        let mut it = v.chunks_exact(L);
        for c in &mut it {
            let mut out = 0u32;
            for h in 0..2 {
                // SAFETY: `c` holds L = 8 f64; each half reads 4 of them.
                let y = _mm256_loadu_pd(c.as_ptr().add(4 * h));
                let b = _mm256_castpd_si256(y);
                let sgn = _mm256_cmpgt_epi64(_mm256_setzero_si256(), b);
                let k = _mm256_xor_si256(b, _mm256_srli_epi64::<1>(sgn));
                let d = _mm256_sub_pd(y, r);
                let mut below = [ones; W];
                let mut above = [ones; W];
                for j in 0..W {
                    below[j] = _mm256_cmpgt_epi64(lov[j], k);
                    above[j] = _mm256_cmpgt_epi64(k, hiv[j]);
                }
                for gi in 0..=W {
                    let mut m = ones;
                    if gi > 0 {
                        m = _mm256_and_si256(m, above[gi - 1]);
                    }
                    if gi < W {
                        m = _mm256_and_si256(m, below[gi]);
                    }
                    let bits = _mm256_movemask_pd(_mm256_castsi256_pd(m)) as u32;
                    out |= bits << (4 * h);
                    n[gi] += bits.count_ones() as u64;
                    let dm = _mm256_and_pd(d, _mm256_castsi256_pd(m));
                    s1[gi][h] = _mm256_add_pd(s1[gi][h], dm);
                    s2[gi][h] = _mm256_add_pd(s2[gi][h], _mm256_mul_pd(dm, dm));
                }
            }
            inside(tp, ta, &mut gs, c, out);
        }
        // SAFETY: two __m256d are 8 f64 lanes.
        let lanes = |v: &[[__m256d; 2]]| -> Vec<[f64; L]> {
            v.iter()
                .map(|&x| unsafe { std::mem::transmute::<[__m256d; 2], [f64; L]>(x) })
                .collect()
        };
        finish(tp, ta, it.remainder(), &n, &lanes(&s1), &lanes(&s2), gs);
    }

    pub(super) const AVX512: [Sweep; MAX_FAST] =
        [avx512::<1>, avx512::<2>, avx512::<3>, avx512::<4>];
    pub(super) const AVX2: [Sweep; MAX_FAST] = [avx2::<1>, avx2::<2>, avx2::<3>, avx2::<4>];
}

type Sweep = unsafe fn(&TaskPlan, &mut TaskAcc, &[f64]);

/// Add the values `v` (NaN-free) to one task's accumulation.
pub fn add_task(tp: &TaskPlan, ta: &mut TaskAcc, v: &[f64]) {
    let nw = tp.windows.len();
    if nw == 0 || nw > MAX_FAST || ta.gaps.len() != nw + 1 {
        return plain(tp, ta, v);
    }
    let f: Option<Sweep> = match level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => Some(x86::AVX512[nw - 1]),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => Some(x86::AVX2[nw - 1]),
        _ => None,
    };
    match f {
        // SAFETY: `level()` only reports a level whose features this CPU has.
        Some(f) => unsafe { f(tp, ta, v) },
        // Baseline x86-64 has no 64-bit vector compare: the plain loop is as fast.
        None => plain(tp, ta, v),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{key, Window};
    use super::*;

    /// Every level and window count gives the plain loop's counts, collected values and
    /// histograms exactly, and its gap sums to rounding.
    #[test]
    fn lanes_match_plain() {
        let mut v: Vec<f64> = (0..5003)
            .map(|i| {
                let x = ((i * 7919) % 2011) as f64 - 1000.0;
                if i % 97 == 0 {
                    -0.0
                } else if i % 89 == 0 {
                    f64::INFINITY
                } else {
                    x * 0.37
                }
            })
            .collect();
        v.push(f64::NEG_INFINITY);
        let edges = [-300.0, -120.5, -0.0, 0.0, 40.0, 41.07, 200.0, 250.0, 330.0];
        for nw in 1..=MAX_FAST {
            let mut windows = Vec::new();
            for j in 0..nw {
                let (a, b) = (edges[2 * j], edges[2 * j + 1]);
                let collect = j % 2 == 1;
                windows.push(Window {
                    lo: key(a),
                    hi: key(b),
                    shift: if collect { 0 } else { 50 },
                    collect,
                });
            }
            let tp = TaskPlan { r: 3.25, windows };
            let mut want = TaskAcc::new(&tp);
            plain(&tp, &mut want, &v);
            let mut fast: Vec<TaskAcc> = Vec::new();
            for lvl in Level::available() {
                let mut got = TaskAcc::new(&tp);
                match lvl {
                    #[cfg(target_arch = "x86_64")]
                    Level::Avx512 => unsafe { x86::AVX512[nw - 1](&tp, &mut got, &v) },
                    #[cfg(target_arch = "x86_64")]
                    Level::Avx2 => unsafe { x86::AVX2[nw - 1](&tp, &mut got, &v) },
                    _ => plain(&tp, &mut got, &v),
                }
                assert_eq!(got.counts, want.counts, "{lvl:?} {nw}");
                assert_eq!(got.hists, want.hists, "{lvl:?} {nw}");
                assert_eq!(got.vals, want.vals, "{lvl:?} {nw}");
                for (a, b) in got.gaps.iter().zip(&want.gaps) {
                    assert_eq!(a.n, b.n, "{lvl:?} {nw}");
                    let ok = a.s1 == b.s1 || (a.s1 - b.s1).abs() <= 1e-9 * b.s2.sqrt().max(1.0);
                    assert!(ok, "{lvl:?} {nw}: {} vs {}", a.s1, b.s1);
                    let ok = a.s2 == b.s2 || (a.s2 - b.s2).abs() <= 1e-12 * b.s2;
                    assert!(ok, "{lvl:?} {nw}: {} vs {}", a.s2, b.s2);
                }
                if lvl != Level::Scalar {
                    fast.push(got);
                }
            }
            // The vector levels share one lane layout: their sums agree bit for bit.
            for f in &fast[1.min(fast.len())..] {
                assert_eq!(f, &fast[0], "{nw}");
            }
        }
    }
}
