#![allow(clippy::type_complexity)]
//! Every SIMD level against a naive libm reference, over lengths 0..3L+1 and special values.

use super::*;
use crate::simd::{set_level, Level, L};

fn naive_lse(x: &[f64]) -> f64 {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if x.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        0.0
    } else {
        ((a - b) / b.abs().max(1e-300)).abs()
    }
}

/// Deterministic pseudo-random values (xorshift), spread over [-scale, scale].
fn data(len: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn for_each_level(f: impl Fn(Level)) {
    // Levels are process-global; tests touching them run serially through this lock.
    let _g = crate::simd::test_lock();
    for l in Level::available() {
        assert_eq!(set_level(l), l);
        f(l);
    }
    set_level(Level::best());
}

#[test]
fn rows_match_naive_every_level_and_length() {
    for_each_level(|lvl| {
        for n in 1..=3 * L + 1 {
            let rows = 2 * L + 3; // full lane groups (small-row path) and a tail
            let x = data(rows * n, n as u64, 20.0);
            let mut sm = vec![0.0; x.len()];
            let mut ls = vec![0.0; x.len()];
            let mut lse = vec![0.0; rows];
            rowwise(&x, &mut sm, n, RowOp::Softmax).unwrap();
            rowwise(&x, &mut ls, n, RowOp::LogSoftmax).unwrap();
            logsumexp_rows(&x, n, &mut lse).unwrap();
            for r in 0..rows {
                let row = &x[r * n..(r + 1) * n];
                let want = naive_lse(row);
                assert!(
                    rel(lse[r], want) < 1e-14,
                    "{lvl:?} n={n} lse {} vs {want}",
                    lse[r]
                );
                for i in 0..n {
                    // The naive reference cancels in row[i] - want: bound the error by
                    // the magnitude of the operands, not of the difference.
                    let lp = row[i] - want;
                    let tol = 1e-14 * want.abs().max(row[i].abs()).max(lp.abs());
                    assert!(
                        (ls[r * n + i] - lp).abs() <= tol,
                        "{lvl:?} n={n} log_softmax"
                    );
                    assert!(
                        rel(sm[r * n + i], lp.exp()) < 1e-13,
                        "{lvl:?} n={n} softmax"
                    );
                }
            }
            // f32 path against the same reference computed on the rounded inputs.
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let mut sm32 = vec![0.0f32; x.len()];
            rowwise(&x32, &mut sm32, n, RowOp::Softmax).unwrap();
            for r in 0..rows {
                let row: Vec<f64> = x32[r * n..(r + 1) * n].iter().map(|&v| v as f64).collect();
                let want = naive_lse(&row);
                for i in 0..n {
                    let p = (row[i] - want).exp();
                    assert!(
                        rel(sm32[r * n + i] as f64, p) < 1.2e-7,
                        "{lvl:?} n={n} f32 softmax"
                    );
                }
            }
        }
    });
}

#[test]
fn special_values() {
    let inf = f64::INFINITY;
    let nan = f64::NAN;
    for_each_level(|_| {
        let cases: Vec<(Vec<f64>, f64, Vec<f64>, Vec<f64>)> = vec![
            // row, lse, softmax, log_softmax (scipy's results)
            (vec![-inf, -inf], -inf, vec![nan, nan], vec![nan, nan]),
            (vec![1.0, inf], inf, vec![nan, nan], vec![-inf, nan]),
            (vec![-inf, 0.0], 0.0, vec![0.0, 1.0], vec![-inf, 0.0]),
            (vec![nan, 1.0], nan, vec![nan, nan], vec![nan, nan]),
            (vec![nan, inf], nan, vec![nan, nan], vec![nan, nan]),
            (vec![nan, -inf], nan, vec![nan, nan], vec![nan, nan]),
            (
                vec![3.0, 3.0],
                3.0 + 2f64.ln(),
                vec![0.5, 0.5],
                vec![-(2f64.ln()); 2],
            ),
        ];
        for (row, lse, sm, ls) in cases {
            let n = row.len();
            // The special row alone, and as row 5 of 20 ordinary rows (lane-group path).
            for (rows, at) in [(1, 0), (20, 5)] {
                let mut x = data(rows * n, 3, 5.0);
                x[at * n..(at + 1) * n].copy_from_slice(&row);
                let mut o = vec![0.0; rows * n];
                let mut l = vec![0.0; rows];
                logsumexp_rows(&x, n, &mut l).unwrap();
                assert_eq!(rel(l[at], lse), 0.0, "lse {row:?}");
                rowwise(&x, &mut o, n, RowOp::Softmax).unwrap();
                for i in 0..n {
                    assert!(rel(o[at * n + i], sm[i]) < 1e-15, "softmax {row:?}: {o:?}");
                }
                rowwise(&x, &mut o, n, RowOp::LogSoftmax).unwrap();
                for i in 0..n {
                    assert!(
                        rel(o[at * n + i], ls[i]) < 1e-15,
                        "log_softmax {row:?}: {o:?}"
                    );
                }
            }
        }
    });
}

#[test]
fn huge_magnitudes_do_not_overflow() {
    let big = f64::MAX;
    let row = vec![big, big, -big, 0.0];
    let mut l = [0.0];
    logsumexp_rows(&row, 4, &mut l).unwrap();
    assert!(rel(l[0], big) < 1e-15);
    let mut o = vec![0.0; 4];
    rowwise(&row, &mut o, 4, RowOp::Softmax).unwrap();
    assert_eq!(o, vec![0.5, 0.5, 0.0, 0.0]);
}

#[test]
fn split_rows_match_whole_rows_and_inplace() {
    for_each_level(|_| {
        for &n in &[SPLIT_MIN_N, SPLIT_MIN_N + 3, 5 * CHUNK + 17] {
            let x = data(2 * n, 7, 30.0);
            let mut o = vec![0.0; x.len()];
            let mut l = [0.0; 2];
            logsumexp_rows(&x, n, &mut l).unwrap();
            for op in [RowOp::Softmax, RowOp::LogSoftmax] {
                rowwise(&x, &mut o, n, op).unwrap();
                let mut ip = x.clone();
                rowwise_inplace(&mut ip, n, op).unwrap();
                assert_eq!(o, ip, "in place differs from out of place");
                for r in 0..2 {
                    let want = naive_lse(&x[r * n..(r + 1) * n]);
                    assert!(rel(l[r], want) < 1e-14);
                    for i in (0..n).step_by(97) {
                        let lp = x[r * n + i] - want;
                        let w = if op == RowOp::Softmax { lp.exp() } else { lp };
                        assert!(rel(o[r * n + i], w) < 1e-12, "{op:?} split");
                    }
                }
            }
        }
    });
}

#[test]
fn thread_count_does_not_change_results() {
    let _g = crate::simd::test_lock();
    let n = 3 * CHUNK + 5;
    let x = data(3 * n, 11, 40.0);
    let run = |t: usize| {
        crate::parallel::set_num_threads(t).unwrap();
        let mut o = vec![0.0; x.len()];
        let mut l = [0.0; 3];
        rowwise(&x, &mut o, n, RowOp::Softmax).unwrap();
        logsumexp_rows(&x, n, &mut l).unwrap();
        (o, l)
    };
    let a = run(1);
    let b = run(2);
    let c = run(3);
    crate::parallel::set_num_threads(0).unwrap();
    assert!(a == b && b == c);
}

#[test]
fn bad_shapes_are_errors() {
    let x = vec![0.0f64; 10];
    let mut o = vec![0.0; 10];
    assert!(rowwise(&x, &mut o, 3, RowOp::Softmax).is_err());
    assert!(rowwise(&x, &mut o[..9], 5, RowOp::Softmax).is_err());
    let mut l = [0.0; 3];
    assert!(logsumexp_rows(&x, 5, &mut l).is_err());
    assert!(logsumexp_rows(&x, 0, &mut l).is_err());
    let mut l0 = [0.0; 2];
    logsumexp_rows::<f64>(&[], 0, &mut l0).unwrap();
    assert_eq!(l0, [f64::NEG_INFINITY; 2]);
}
