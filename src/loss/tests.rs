//! Cross-entropy against golden values and a naive float64 formula, every SIMD level.

use super::ce::*;
use super::Reduction;
use crate::simd::{set_level, Level};

fn naive(x: &[f64], c: usize, t: &[i64], w: Option<&[f64]>, eps: f64) -> (Vec<f64>, Vec<f64>, f64) {
    // per-row loss, gradient of the 'mean' loss, W
    let n = t.len();
    let wt = |k: usize| w.map_or(1.0, |w| w[k]);
    let mut per = vec![0.0; n];
    let mut g = vec![0.0; n * c];
    let mut big_w = 0.0;
    for r in 0..n {
        if t[r] < 0 {
            continue;
        }
        let y = t[r] as usize;
        big_w += wt(y);
        let row = &x[r * c..(r + 1) * c];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        // log1p of the sum without one maximal entry, so confident rows keep their tiny
        // loss.
        let km = row.iter().position(|&v| v == m).unwrap_or(0);
        let s: f64 = (0..c)
            .filter(|&k| k != km)
            .map(|k| (row[k] - m).exp())
            .sum();
        let lse = m + s.ln_1p();
        let wsum: f64 = (0..c).map(wt).sum();
        // (The smoothing term is skipped at eps = 0: a -inf logit would make it 0 * inf.)
        per[r] = (1.0 - eps) * wt(y) * ((m - row[y]) + s.ln_1p())
            + if eps > 0.0 {
                eps / c as f64 * (0..c).map(|k| wt(k) * (lse - row[k])).sum::<f64>()
            } else {
                0.0
            };
        let p = |k: usize| (row[k] - lse).exp();
        for k in 0..c {
            // p_y - 1 = -(sum of the other p): no cancellation for a confident row.
            let p_oh = if k == y {
                -(0..c).filter(|&j| j != y).map(p).sum::<f64>()
            } else {
                p(k)
            };
            g[r * c + k] = (1.0 - eps) * wt(y) * p_oh + eps / c as f64 * (p(k) * wsum - wt(k));
        }
    }
    for v in g.iter_mut() {
        *v /= big_w;
    }
    (per, g, big_w)
}

fn opts<'a>(w: Option<&'a [f64]>, eps: f64, red: Reduction) -> CeOptions<'a> {
    CeOptions {
        weight: w,
        ignore_index: -100,
        label_smoothing: eps,
        reduction: red,
    }
}

#[test]
fn golden_values() {
    // DESIGN.md §1: columns are samples of the course's 3x3 score table.
    let x = [3.2, 5.1, -1.7, 1.3, 4.9, 2.0, 2.2, 2.5, -3.1];
    let r = cross_entropy(
        &x,
        3,
        Targets::Index(&[0, 1, 2]),
        &opts(None, 0.0, Reduction::None),
        None,
    )
    .unwrap();
    let per = r.per_item.unwrap();
    for (got, want) in per.iter().zip([2.0404, 0.0791, 6.1565]) {
        assert!((got - want).abs() < 5e-5, "{got} vs {want}");
    }
    let x = [5.0, -3.0, 2.0, 5.0, 10.0, 10.0, 5.0, -20.0, -20.0];
    let r = cross_entropy(
        &x,
        3,
        Targets::Index(&[0, 0, 0]),
        &opts(None, 0.0, Reduction::None),
        None,
    )
    .unwrap();
    let per = r.per_item.unwrap();
    // exact: log1p(e^-8 + e^-3), log(1 + 2e^5), log1p(2e^-25)
    let want = [
        ((-8f64).exp() + (-3f64).exp()).ln_1p(),
        (1.0 + 2.0 * 5f64.exp()).ln(),
        (2.0 * (-25f64).exp()).ln_1p(),
    ];
    for (g, w) in per.iter().zip(want) {
        assert!(((g - w) / w).abs() < 1e-15, "{g:e} vs {w:e}");
    }
    let x = [1.0, 2.0, 0.5];
    let mut g = [0.0; 3];
    let r = cross_entropy(
        &x,
        3,
        Targets::Index(&[1]),
        &opts(None, 0.0, Reduction::Mean),
        Some(&mut g),
    )
    .unwrap();
    assert!((r.value - 0.4644).abs() < 5e-5);
    let q: [f64; 3] = [0.2312, 0.6285, 0.1402];
    for k in 0..3 {
        let oh: f64 = if k == 1 { 1.0 } else { 0.0 };
        assert!((g[k] - (q[k] - oh)).abs() < 5e-5);
    }
}

fn data(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * 8.0
        })
        .collect()
}

#[test]
fn matches_naive_every_level() {
    let _g = crate::simd::test_lock();
    for lvl in Level::available() {
        set_level(lvl);
        for &c in &[1usize, 3, 17, 40, 1000] {
            let n = 37;
            let x = data(n * c, c as u64);
            let t: Vec<i64> = (0..n as i64)
                .map(|i| if i % 7 == 3 { -100 } else { (i * 5) % c as i64 })
                .collect();
            let w: Vec<f64> = (0..c).map(|k| 0.5 + (k % 3) as f64).collect();
            for (wopt, eps) in [
                (None, 0.0),
                (Some(&w[..]), 0.0),
                (None, 0.1),
                (Some(&w[..]), 0.25),
            ] {
                let tn: Vec<i64> = t.iter().map(|&v| if v == -100 { -1 } else { v }).collect();
                let (per, gref, big_w) = naive(&x, c, &tn, wopt, eps);
                let mut g = vec![0.0; x.len()];
                let r = cross_entropy(
                    &x,
                    c,
                    Targets::Index(&t),
                    &opts(wopt, eps, Reduction::Mean),
                    Some(&mut g),
                )
                .unwrap();
                let want = per.iter().sum::<f64>() / big_w;
                assert!(
                    (r.value - want).abs() <= 1e-13 * want.abs(),
                    "{lvl:?} c={c} {} vs {want}",
                    r.value
                );
                for i in 0..g.len() {
                    assert!(
                        (g[i] - gref[i]).abs() < 1e-14,
                        "{lvl:?} c={c} grad[{i}] {} vs {}",
                        g[i],
                        gref[i]
                    );
                }
                let mut xi = x.clone();
                let ri = cross_entropy_inplace(
                    &mut xi,
                    c,
                    Targets::Index(&t),
                    &opts(wopt, eps, Reduction::Mean),
                )
                .unwrap();
                assert_eq!(ri.value.to_bits(), r.value.to_bits());
                assert_eq!(xi, g, "in place differs");
                // Probability targets equal to the one-hot rows give the same loss and
                // gradient for the non-ignored rows when unweighted ('mean' over N).
                if wopt.is_none() && c > 1 {
                    let keep: Vec<usize> = (0..n).filter(|&i| t[i] >= 0).collect();
                    let xk: Vec<f64> = keep
                        .iter()
                        .flat_map(|&i| x[i * c..(i + 1) * c].to_vec())
                        .collect();
                    let mut y = vec![0.0; keep.len() * c];
                    for (j, &i) in keep.iter().enumerate() {
                        y[j * c + t[i] as usize] = 1.0;
                    }
                    let tk: Vec<i64> = keep.iter().map(|&i| t[i]).collect();
                    let mut g1 = vec![0.0; xk.len()];
                    let mut g2 = vec![0.0; xk.len()];
                    let a = cross_entropy(
                        &xk,
                        c,
                        Targets::Index(&tk),
                        &opts(None, eps, Reduction::Mean),
                        Some(&mut g1),
                    )
                    .unwrap();
                    let b = cross_entropy(
                        &xk,
                        c,
                        Targets::Probs(&y),
                        &opts(None, eps, Reduction::Mean),
                        Some(&mut g2),
                    )
                    .unwrap();
                    assert!((a.value - b.value).abs() <= 1e-13 * a.value.abs());
                    for i in 0..g1.len() {
                        assert!((g1[i] - g2[i]).abs() < 1e-15);
                    }
                }
            }
        }
    }
    set_level(Level::best());
}

#[test]
fn bad_targets_are_errors() {
    let x = [0.0; 6];
    let o = opts(None, 0.0, Reduction::Mean);
    assert!(matches!(
        cross_entropy(&x, 3, Targets::Index(&[0, 3]), &o, None),
        Err(crate::Error::Target(_))
    ));
    assert!(matches!(
        cross_entropy(&x, 3, Targets::Index(&[0, -1]), &o, None),
        Err(crate::Error::Target(_))
    ));
    assert!(cross_entropy(&x, 3, Targets::Index(&[0]), &o, None).is_err());
    assert!(cross_entropy(&x, 4, Targets::Index(&[0]), &o, None).is_err());
    let w = [1.0, 2.0];
    assert!(cross_entropy(
        &x,
        3,
        Targets::Index(&[0, 1]),
        &opts(Some(&w), 0.0, Reduction::Mean),
        None
    )
    .is_err());
    let all_ignored = cross_entropy(&x, 3, Targets::Index(&[-100, -100]), &o, None).unwrap();
    assert!(all_ignored.value.is_nan());
}

/// float32 rows (the AVX-512 kernels of `avx512_f32`: 16 rows at a time up to 16 classes,
/// one row in float32 lanes above; the generic paths on the other levels) against the
/// float64 formula on the same values: every class count up to 17 and wider rows with and
/// without a partial vector, enough rows for full 16-row groups and a tail, ties of the
/// max, -inf entries, confident rows (tiny losses), spreads that give subnormal
/// probabilities, losses above 88 (e^(x - x_y) beyond float32), target logits of 3000,
/// a finite 1e30 logit,
/// ignored rows, weights, and groups holding a NaN or a +inf row.
#[test]
fn float32_rows_every_level() {
    let _g = crate::simd::test_lock();
    for lvl in Level::available() {
        set_level(lvl);
        for c in (1..=17usize).chain([31, 32, 33, 48, 100, 1000]) {
            let n = 16 * 6 + 5;
            let mut x: Vec<f32> = data(n * c, 7 + c as u64)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let t: Vec<i64> = (0..n as i64)
                .map(|i| {
                    if i % 11 == 4 {
                        -100
                    } else {
                        (i * 7 + 3) % c as i64
                    }
                })
                .collect();
            for r in 0..n {
                let row = &mut x[r * c..(r + 1) * c];
                let y = t[r].rem_euclid(c as i64) as usize;
                match r % 9 {
                    1 if c > 2 => {
                        row[0] = 5.0; // a tie for the max
                        row[c - 1] = 5.0;
                    }
                    2 if c > 1 => row[(y + 1) % c] = f32::NEG_INFINITY,
                    3 => row[y] = 40.0, // confident: loss ~ (C-1) e^-40
                    5 if c > 1 => row[(y + 1) % c] = -100.0, // p ~ e^-100: subnormal
                    // A logit 100 above the target's: e^(x - x_y) overflows float32 (the
                    // AVX-512 group, shifted by the target logit, hands the rows over).
                    6 if c > 1 => row[(y + 1) % c] = row[y] + 100.0,
                    7 => row[y] = 3000.0, // a target logit beyond the group's range
                    8 if c > 1 => row[(y + 1) % c] = 1e30, // finite, far beyond e^x's range
                    _ => {}
                }
            }
            x[16 * 2 * c] = f32::NAN; // group 2 has a NaN row
            x[16 * 4 * c + c - 1] = f32::INFINITY; // group 4 a +inf row
                                                   // Weights up to 9.5. A subnormal probability is rounded to float32 before the
                                                   // target's weight w_y scales it (every path, the generic one included), so a
                                                   // subnormal gradient entry is within about (w_y + 1) / 2 ulps: two ulps up to
                                                   // w_y = 2.5, proportionally more above (absolute, under 1e-44 here).
            let w: Vec<f64> = (0..c).map(|k| 0.5 + 3.0 * (k % 4) as f64).collect();
            for wopt in [None, Some(&w[..])] {
                let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let tn: Vec<i64> = t.iter().map(|&v| if v == -100 { -1 } else { v }).collect();
                let (per, gref, big_w) = naive(&xd, c, &tn, wopt, 0.0);
                let mut g = vec![0.0f32; x.len()];
                let r = cross_entropy(
                    &x,
                    c,
                    Targets::Index(&t),
                    &opts(wopt, 0.0, Reduction::None),
                    Some(&mut g),
                )
                .unwrap();
                let got = r.per_item.unwrap();
                for i in 0..n {
                    let special = i == 32 || i == 64; // the NaN row and the +inf row
                    let (l, want) = (got[i], per[i]);
                    if special {
                        // NaN row: NaN; +inf row: the formula's inf or NaN, as torch.
                        assert!(!l.is_finite() || tn[i] < 0, "{lvl:?} c={c} row {i}: {l}");
                        continue;
                    }
                    assert!(
                        (l - want).abs() <= 2e-7 * want.abs() + 1e-30,
                        "{lvl:?} c={c} row {i}: loss {l:e} vs {want:e}"
                    );
                    let wy = wopt.map_or(1.0, |w| w[t[i].rem_euclid(c as i64) as usize]);
                    let sub = 3e-45 * (wy / 2.5).max(1.0);
                    for k in 0..c {
                        // 'none' reduces by sum: the reference's gradient times W.
                        let (gv, gw) = (g[i * c + k] as f64, gref[i * c + k] * big_w);
                        assert!(
                            (gv - gw).abs() <= 3e-7 * gw.abs() + sub,
                            "{lvl:?} c={c} row {i} class {k}: grad {gv:e} vs {gw:e}"
                        );
                    }
                }
                let mut xi = x.clone();
                let ri = cross_entropy_inplace(
                    &mut xi,
                    c,
                    Targets::Index(&t),
                    &opts(wopt, 0.0, Reduction::None),
                )
                .unwrap();
                let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan();
                assert!(
                    xi.iter().zip(&g).all(|(a, b)| same(*a, *b)),
                    "{lvl:?} c={c}: in place"
                );
                let pi = ri.per_item.unwrap();
                assert!(pi
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()));
            }
        }
    }
    set_level(Level::best());
}

/// float32 Weston-Watkins / multi-margin rows of more than 32 classes (the AVX-512 float32
/// kernel `hinge_row_wide`, the generic paths elsewhere) against the float64 path on the
/// same values: p = 1 and 2, weights, margins, ties at the hinge, a NaN, +-inf scores.
#[test]
fn hinge_float32_wide_rows_every_level() {
    use super::hinge::{hinge, hinge_inplace, Hinge, HingeOptions};
    let _g = crate::simd::test_lock();
    for lvl in Level::available() {
        set_level(lvl);
        for c in [1usize, 2, 3, 7, 8, 9, 10, 15, 16, 17, 33, 47, 48, 100, 1000] {
            let n = 23;
            let mut x: Vec<f32> = data(n * c, 11 + c as u64)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let t: Vec<i64> = (0..n as i64).map(|i| (i * 13 + 5) % c as i64).collect();
            for r in 0..n {
                let y = t[r] as usize;
                let row = &mut x[r * c..(r + 1) * c];
                match r % 6 {
                    1 => row[(y + 3) % c] = row[y] - 1.0, // exactly at the hinge (margin 1)
                    2 => row[(y + 1) % c] = f32::NEG_INFINITY,
                    3 => row[(y + 2) % c] = 1e30,
                    _ => {}
                }
            }
            x[5 * c + 7] = f32::NAN;
            x[9 * c + 1] = f32::INFINITY;
            let w: Vec<f64> = (0..c).map(|k| 0.5 + (k % 4) as f64).collect();
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            for kind in [Hinge::WestonWatkins, Hinge::MultiMargin] {
                for p in [1u32, 2] {
                    for (wopt, margin) in [(None, 1.0), (Some(&w[..]), 0.3), (None, -0.5)] {
                        let o = HingeOptions {
                            kind,
                            p,
                            margin,
                            weight: wopt,
                            reduction: Reduction::None,
                        };
                        let mut gd = vec![0.0f64; xd.len()];
                        let rd = hinge(&xd, c, &t, &o, Some(&mut gd)).unwrap();
                        let mut g = vec![0.0f32; x.len()];
                        let r = hinge(&x, c, &t, &o, Some(&mut g)).unwrap();
                        let (ld, l) = (rd.per_item.unwrap(), r.per_item.unwrap());
                        for i in 0..n {
                            let ok = if ld[i].is_finite() {
                                (l[i] - ld[i]).abs() <= 2e-7 * ld[i].abs() + 1e-12
                            } else {
                                l[i].to_bits() == ld[i].to_bits() || l[i].is_nan() && ld[i].is_nan()
                            };
                            assert!(
                                ok,
                                "{lvl:?} {kind:?} p={p} c={c} row {i}: {} vs {}",
                                l[i], ld[i]
                            );
                        }
                        for k in 0..g.len() {
                            let (a, b) = (g[k] as f64, gd[k]);
                            let ok = if b.is_finite() {
                                (a - b).abs() <= 2e-7 * b.abs() + 1e-30
                            } else {
                                a == b || a.is_nan() && b.is_nan()
                            };
                            assert!(ok, "{lvl:?} {kind:?} p={p} c={c} grad[{k}]: {a} vs {b}");
                        }
                        let mut xi = x.clone();
                        let ri = hinge_inplace(&mut xi, c, &t, &o).unwrap();
                        let same =
                            |a: f32, b: f32| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan();
                        assert!(xi.iter().zip(&g).all(|(a, b)| same(*a, *b)), "in place");
                        let li = ri.per_item.unwrap();
                        assert!(li
                            .iter()
                            .zip(&l)
                            .all(|(a, b)| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()));
                    }
                }
            }
        }
    }
    set_level(Level::best());
}

/// BCE with logits of one element in float64 (libm exp / ln_1p): the loss, the
/// gradient (1 - y) sigma(x) - y sigma(-x), and the size of that gradient's two terms
/// (sigma - y cancels for soft targets, so its error scales with the terms).
fn bce_ref(x: f64, y: f64) -> (f64, f64, f64) {
    let lin = if x < 0.0 { -x * y } else { (1.0 - y) * x };
    let l = lin + (-x.abs()).exp().ln_1p();
    let (sig, sigc) = (1.0 / (1.0 + (-x).exp()), 1.0 / (1.0 + x.exp()));
    (l, (1.0 - y) * sig - y * sigc, (1.0 - y) * sig + y * sigc)
}

/// float32 BCE with logits (the float32-lane kernels of the AVX2 and AVX-512 levels, the
/// generic one at the scalar level) against float64 formulas on the same float32 inputs, every level and
/// every tail length; in place bit-identical to out of place.
#[test]
fn bce_float32_every_level() {
    use super::elementwise::{elementwise, elementwise_inplace, Extra, Kind};
    let _g = crate::simd::test_lock();
    let special = [
        0.0f32,
        -0.0,
        1e-30,
        -1e-30,
        1e-45,
        30.0,
        -30.0,
        41.0,
        -41.0,
        88.0,
        -88.0,
        104.0,
        -104.0,
        1e30,
        -1e30,
        f32::MAX,
        -f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    for lvl in Level::available() {
        set_level(lvl);
        for n in (0..=40usize).chain([1000, 40000]) {
            let d = data(2 * n, 5 + n as u64);
            let x: Vec<f32> = (0..n)
                .map(|i| {
                    if i % 7 == 3 {
                        special[i % special.len()]
                    } else {
                        d[i] as f32
                    }
                })
                .collect();
            let y: Vec<f32> = (0..n)
                .map(|i| match i % 5 {
                    0 | 1 => 0.0,
                    2 | 3 => 1.0,
                    _ => (d[n + i].abs() % 1.0) as f32,
                })
                .collect();
            let ex = Extra {
                weight: None,
                pos_weight: None,
            };
            let mut per = vec![0.0f32; n];
            let mut g = vec![0.0f32; n];
            let sum = elementwise(
                Kind::Bce,
                &x,
                &y,
                ex,
                Reduction::Sum,
                Some(&mut per),
                Some(&mut g),
            )
            .unwrap();
            let mut want_sum = 0.0;
            for i in 0..n {
                let (xv, yv) = (x[i] as f64, y[i] as f64);
                let (l, gw, scale) = bce_ref(xv, yv);
                want_sum += l;
                let close = |a: f64, b: f64, rel: f64| {
                    a == b
                        || (a.is_nan() && b.is_nan())
                        || (a - b).abs() <= rel * b.abs() + 3.0 * f32::from_bits(1) as f64
                };
                assert!(
                    close(per[i] as f64, l, 3e-7),
                    "{lvl:?} n={n} x={xv} y={yv}: loss {} want {l}",
                    per[i]
                );
                assert!(
                    g[i] as f64 == gw
                        || (g[i].is_nan() && gw.is_nan())
                        || (g[i] as f64 - gw).abs()
                            <= 5e-7 * scale + 3.0 * f32::from_bits(1) as f64,
                    "{lvl:?} n={n} x={xv} y={yv}: grad {} want {gw}",
                    g[i]
                );
            }
            assert!(
                (sum - want_sum).abs() <= 3e-7 * want_sum.abs()
                    || (sum.is_nan() && want_sum.is_nan())
                    || sum == want_sum,
                "{lvl:?} n={n}: sum {sum} want {want_sum}"
            );
            let mut xi = x.clone();
            let mut per2 = vec![0.0f32; n];
            let s2 =
                elementwise_inplace(Kind::Bce, &mut xi, &y, ex, Reduction::Sum, Some(&mut per2))
                    .unwrap();
            assert!(s2.to_bits() == sum.to_bits() || (s2.is_nan() && sum.is_nan()));
            assert!(xi.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()));
            assert!(per2
                .iter()
                .zip(&per)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}

/// float64 BCE with logits (the AVX-512 kernel `avx512_f64::bce_plain`, the generic one
/// on the other levels) against float64 formulas (libm exp / ln_1p), every level and
/// every tail length, specials included; in place bit-identical to out of place.
#[test]
fn bce_float64_every_level() {
    use super::elementwise::{elementwise, elementwise_inplace, Extra, Kind};
    let _g = crate::simd::test_lock();
    let special = [
        0.0f64,
        -0.0,
        1e-300,
        -1e-300,
        5e-324,
        30.0,
        -30.0,
        41.0,
        -41.0,
        700.0,
        -700.0,
        745.0,
        -745.0,
        750.0,
        -750.0,
        1e300,
        -1e300,
        f64::MAX,
        -f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    for lvl in Level::available() {
        set_level(lvl);
        for n in (0..=70usize).chain([1000, 40000]) {
            let d = data(2 * n, 17 + n as u64);
            let x: Vec<f64> = (0..n)
                .map(|i| {
                    if i % 7 == 3 {
                        special[i % special.len()]
                    } else {
                        d[i] * 4.0
                    }
                })
                .collect();
            let y: Vec<f64> = (0..n)
                .map(|i| match i % 5 {
                    0 | 1 => 0.0,
                    2 | 3 => 1.0,
                    _ => d[n + i].abs() % 1.0,
                })
                .collect();
            let ex = Extra {
                weight: None,
                pos_weight: None,
            };
            let mut per = vec![0.0f64; n];
            let mut g = vec![0.0f64; n];
            let sum = elementwise(
                Kind::Bce,
                &x,
                &y,
                ex,
                Reduction::Sum,
                Some(&mut per),
                Some(&mut g),
            )
            .unwrap();
            let mut want_sum = 0.0;
            for i in 0..n {
                let (xv, yv) = (x[i], y[i]);
                let (l, gw, scale) = bce_ref(xv, yv);
                want_sum += l;
                let ok = per[i] == l
                    || (per[i].is_nan() && l.is_nan())
                    || (per[i] - l).abs() <= 2e-15 * l.abs() + 1e-320;
                assert!(ok, "{lvl:?} n={n} x={xv} y={yv}: loss {} want {l}", per[i]);
                let ok = g[i] == gw
                    || (g[i].is_nan() && gw.is_nan())
                    || (g[i] - gw).abs() <= 2e-15 * scale + 1e-320;
                assert!(ok, "{lvl:?} n={n} x={xv} y={yv}: grad {} want {gw}", g[i]);
            }
            assert!(
                (sum - want_sum).abs() <= 1e-14 * want_sum.abs()
                    || (sum.is_nan() && want_sum.is_nan())
                    || sum == want_sum,
                "{lvl:?} n={n}: sum {sum} want {want_sum}"
            );
            let mut xi = x.clone();
            let mut per2 = vec![0.0f64; n];
            let s2 =
                elementwise_inplace(Kind::Bce, &mut xi, &y, ex, Reduction::Sum, Some(&mut per2))
                    .unwrap();
            assert!(s2.to_bits() == sum.to_bits() || (s2.is_nan() && sum.is_nan()));
            assert!(xi
                .iter()
                .zip(&g)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
            assert!(per2
                .iter()
                .zip(&per)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
        }
    }
    set_level(Level::best());
}

/// Cross-entropy of one float64 row of exactly representable differences x_k - m (the
/// test's logits are multiples of 2^-40 below 2^12): (loss, d loss / dx), the gradient's
/// target entry as minus the other probabilities (no cancellation). Accurate to a few
/// ulps everywhere, far-from-max entries included (where `naive` rounds x - lse).
fn ce_row_ref(row: &[f64], y: usize, wy: f64) -> (f64, Vec<f64>) {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let km = row.iter().position(|&v| v == m).unwrap_or(0);
    let e: Vec<f64> = row.iter().map(|&v| (v - m).exp()).collect();
    let s: f64 = (0..row.len()).filter(|&k| k != km).map(|k| e[k]).sum();
    let total = 1.0 + s;
    let mut g: Vec<f64> = e.iter().map(|&v| wy * (v / total)).collect();
    let others: f64 = (0..row.len()).filter(|&k| k != y).map(|k| e[k]).sum();
    g[y] = -wy * (others / total);
    (wy * ((m - row[y]) + s.ln_1p()), g)
}

/// float64 cross-entropy rows of up to 16 classes (the AVX-512 level's 8-row flat groups,
/// the generic groups elsewhere) and a few wider ones against `ce_row_ref`, every level:
/// per-row losses and every gradient entry to 3e-15 relative (subnormal entries to a few
/// subnormal ulps), in place bit-identical. Rows: ties for the max, -inf entries,
/// confident rows, a target far below the others, subnormal probabilities, losses of 690
/// (t ~ e^690 stays in the group) and 800 (e^(x - x_y) overflows: handed over), target
/// logits of 450 (large exponents) and 3000 (beyond the group's range), a 1e300 logit,
/// ignored rows, weights, and groups holding a NaN or a +inf row.
#[test]
fn float64_rows_every_level() {
    let _g = crate::simd::test_lock();
    for lvl in Level::available() {
        set_level(lvl);
        for c in (1..=17usize).chain([31, 40]) {
            let n = 8 * 13 + 5;
            // Multiples of 2^-40: every x_k - m below is exact.
            let q = |v: f64| (v * 2f64.powi(40)).round() / 2f64.powi(40);
            let mut x: Vec<f64> = data(n * c, 3 + c as u64).into_iter().map(q).collect();
            let t: Vec<i64> = (0..n as i64)
                .map(|i| {
                    if i % 11 == 4 {
                        -100
                    } else {
                        (i * 7 + 3) % c as i64
                    }
                })
                .collect();
            for r in 0..n {
                let row = &mut x[r * c..(r + 1) * c];
                let y = t[r].rem_euclid(c as i64) as usize;
                let o = (y + 1) % c;
                match r % 12 {
                    1 if c > 2 => {
                        row[0] = 5.0; // a tie for the max
                        row[c - 1] = 5.0;
                    }
                    2 if c > 1 => row[o] = f64::NEG_INFINITY,
                    3 => row[y] = 40.0,  // confident: loss ~ (C-1) e^-48
                    4 => row[y] = -40.0, // t ~ e^32
                    5 if c > 1 => row[o] = row[y] - 740.0, // p ~ e^-740: subnormal
                    6 if c > 1 => row[o] = row[y] + 690.0, // loss ~690, t < 1e300
                    7 if c > 1 => row[o] = row[y] + 800.0, // e^800 overflows: handed over
                    8 => row.iter_mut().for_each(|v| *v += 450.0),
                    9 => row[y] = 3000.0, // beyond the group's range
                    10 if c > 1 => row[o] = 1e300,
                    _ => {}
                }
            }
            let (nan_row, inf_row) = (8 * 3 + 2, 8 * 6 + 5);
            x[nan_row * c] = f64::NAN;
            x[inf_row * c + c - 1] = f64::INFINITY;
            let w: Vec<f64> = (0..c).map(|k| 0.5 + 3.0 * (k % 4) as f64).collect();
            for wopt in [None, Some(&w[..])] {
                let mut g = vec![0.0f64; x.len()];
                let r = cross_entropy(
                    &x,
                    c,
                    Targets::Index(&t),
                    &opts(wopt, 0.0, Reduction::None),
                    Some(&mut g),
                )
                .unwrap();
                let got = r.per_item.unwrap();
                for i in 0..n {
                    if t[i] == -100 {
                        assert!(got[i] == 0.0 && g[i * c..(i + 1) * c].iter().all(|&v| v == 0.0));
                        continue;
                    }
                    let y = t[i] as usize;
                    let wy = wopt.map_or(1.0, |w| w[y]);
                    if i == nan_row || i == inf_row {
                        // NaN row: NaN; +inf row: the formula's inf or NaN, as torch.
                        assert!(!got[i].is_finite(), "{lvl:?} c={c} row {i}: {}", got[i]);
                        continue;
                    }
                    let (want, gw) = ce_row_ref(&x[i * c..(i + 1) * c], y, wy);
                    // (plus a subnormal ulp or two: a loss of 4e-322 from the group kernel)
                    assert!(
                        (got[i] - want).abs() <= 3e-15 * want.abs() + 1e-323,
                        "{lvl:?} c={c} row {i}: loss {:e} vs {want:e}",
                        got[i]
                    );
                    for k in 0..c {
                        let gv = g[i * c + k];
                        assert!(
                            (gv - gw[k]).abs() <= 3e-15 * gw[k].abs() + 2e-322 * wy,
                            "{lvl:?} c={c} row {i} class {k}: grad {gv:e} vs {:e}",
                            gw[k]
                        );
                    }
                }
                let mut xi = x.clone();
                let ri = cross_entropy_inplace(
                    &mut xi,
                    c,
                    Targets::Index(&t),
                    &opts(wopt, 0.0, Reduction::None),
                )
                .unwrap();
                let same =
                    |a: &f64, b: &f64| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan();
                assert!(
                    xi.iter().zip(&g).all(|(a, b)| same(a, b)),
                    "{lvl:?} c={c}: in place"
                );
                assert!(ri
                    .per_item
                    .unwrap()
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| same(a, b)));
            }
        }
    }
    set_level(Level::best());
}

/// float64 Weston-Watkins / multi-margin rows (the AVX-512 level's 8-row flat groups up
/// to 16 classes, the generic paths elsewhere) against the formulas written out per row:
/// p = 1 and 2, weights, margins, ties at the hinge, NaN, +-inf scores. The violators'
/// gradient entries are the same products, so equal; the loss and the target's entry are
/// sums, to 1e-15 of the sum of the terms' magnitudes.
#[test]
fn hinge_float64_rows_every_level() {
    use super::hinge::{hinge, hinge_inplace, Hinge, HingeOptions};
    let _g = crate::simd::test_lock();
    for lvl in Level::available() {
        set_level(lvl);
        for c in (1..=17usize).chain([33]) {
            let n = 8 * 5 + 3;
            let mut x = data(n * c, 19 + c as u64);
            let t: Vec<i64> = (0..n as i64).map(|i| (i * 13 + 5) % c as i64).collect();
            for r in 0..n {
                let y = t[r] as usize;
                let row = &mut x[r * c..(r + 1) * c];
                match r % 7 {
                    1 => row[(y + 3) % c] = row[y] - 1.0, // exactly at the hinge (margin 1)
                    2 => row[(y + 1) % c] = f64::NEG_INFINITY,
                    3 => row[(y + 2) % c] = 1e300,
                    4 => row[y] = f64::INFINITY,
                    _ => {}
                }
            }
            x[5 * c + 7 % c] = f64::NAN;
            x[9 * c + 1 % c] = f64::INFINITY;
            x[17 * c + t[17] as usize] = f64::NAN; // a NaN target score
            let w: Vec<f64> = (0..c).map(|k| 0.5 + (k % 4) as f64).collect();
            for kind in [Hinge::WestonWatkins, Hinge::MultiMargin] {
                for p in [1u32, 2] {
                    for (wopt, margin) in [(None, 1.0), (Some(&w[..]), 0.3), (None, -0.5)] {
                        let o = HingeOptions {
                            kind,
                            p,
                            margin,
                            weight: wopt,
                            reduction: Reduction::None,
                        };
                        let mut g = vec![0.0f64; x.len()];
                        let r = hinge(&x, c, &t, &o, Some(&mut g)).unwrap();
                        let l = r.per_item.unwrap();
                        let div = if kind == Hinge::MultiMargin {
                            c as f64
                        } else {
                            1.0
                        };
                        let same = |a: f64, b: f64| a == b || a.is_nan() && b.is_nan();
                        for i in 0..n {
                            let y = t[i] as usize;
                            let sc = wopt.map_or(1.0, |w| w[y]) / div;
                            let row = &x[i * c..(i + 1) * c];
                            let (mut sum, mut mag, mut gsum, mut gmag) = (0.0, 0.0, 0.0, 0.0);
                            for k in (0..c).filter(|&k| k != y) {
                                let z = (margin - row[y]) + row[k];
                                let on = z > 0.0 || z.is_nan();
                                let term = if !on {
                                    0.0
                                } else if p == 2 {
                                    z * z
                                } else {
                                    z
                                };
                                let gk = if !on {
                                    0.0
                                } else if p == 2 {
                                    sc * (2.0 * z)
                                } else {
                                    sc
                                };
                                (sum, mag) = (sum + term, mag + term.abs());
                                (gsum, gmag) = (gsum + gk, gmag + gk.abs());
                                let gv = g[i * c + k];
                                assert!(
                                    same(gv, gk),
                                    "{lvl:?} {kind:?} p={p} c={c} [{i},{k}]: {gv} vs {gk}"
                                );
                            }
                            let ok =
                                |a: f64, b: f64, m: f64| same(a, b) || (a - b).abs() <= 1e-15 * m;
                            assert!(
                                ok(l[i], sc * sum, sc * mag),
                                "{lvl:?} {kind:?} p={p} c={c} row {i}: {} vs {}",
                                l[i],
                                sc * sum
                            );
                            assert!(
                                ok(g[i * c + y], -gsum, gmag),
                                "{lvl:?} {kind:?} p={p} c={c} row {i} target: {} vs {}",
                                g[i * c + y],
                                -gsum
                            );
                        }
                        let mut xi = x.clone();
                        let ri = hinge_inplace(&mut xi, c, &t, &o).unwrap();
                        let bits = |a: &f64, b: &f64| {
                            a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()
                        };
                        assert!(xi.iter().zip(&g).all(|(a, b)| bits(a, b)), "in place");
                        assert!(ri.per_item.unwrap().iter().zip(&l).all(|(a, b)| bits(a, b)));
                    }
                }
            }
        }
    }
    set_level(Level::best());
}
