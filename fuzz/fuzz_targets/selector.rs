//! Exact selection, differential: the multi-pass radix selection over arbitrary finite
//! values, fed in arbitrary chunks merged in arbitrary groupings, with a tiny collect
//! threshold so every refinement level runs, must give exactly the sorted array's order
//! statistics, the exact counts around the median, and a Huber location where the
//! clipped residual sum changes sign.
#![no_main]
use headstart::stats::select::{ranks_for, Selector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (cfg, q8, cut, body) = (data[0], data[1], data[2], &data[3..]);
    // Values: raw f64 bit patterns (any magnitude, subnormals, -0.0), or small
    // multiples of 1/4 (many ties).
    let vals: Vec<f64> = if cfg & 1 != 0 {
        body.chunks_exact(8)
            .map(|c| f64::from_bits(u64::from_le_bytes(c.try_into().unwrap())))
            .filter(|v| v.is_finite())
            .collect()
    } else {
        body.iter().map(|&b| (b as i8) as f64 * 0.25).collect()
    };
    let q = q8 as f64 / 255.0;
    let delta = [1.0, 0.25, 1e-300, 1e300][((cfg >> 1) & 3) as usize];
    let mut sel = Selector::new(&[0.5, q], &[delta]).unwrap();
    sel.collect_max = 1 + ((cfg >> 3) & 15) as u64;
    let chunk = 1 + cut as usize % 17;
    // At most 4 parts: each pass-1 part carries an 8 MiB histogram.
    let parts = 1 + (cut >> 5) as usize % 4;
    let per_part = vals.len().div_ceil(parts).max(1);
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes <= 16, "too many passes");
        // Parts take contiguous runs of chunks and merge in order.
        for g in vals.chunks(per_part) {
            let mut part = sel.new_acc();
            for c in g.chunks(chunk) {
                part.add(&sel.plan, c);
            }
            sel.acc.merge(&part);
        }
        if !sel.finish_pass().unwrap() {
            break;
        }
    }
    assert!(sel.done());
    let n = vals.len() as u64;
    let m = sel.moments.unwrap();
    assert_eq!(m.n, n);
    if n == 0 {
        return;
    }
    let mut sorted = vals.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    assert_eq!(m.min, sorted[0]);
    assert_eq!(m.max, sorted[n as usize - 1]);
    for p in [0.5, q] {
        for k in ranks_for(p, n) {
            let got = sel.order_stat(k).expect("rank resolved");
            assert_eq!(got, sorted[k as usize], "rank {k} of {n}");
        }
    }
    let med = sorted[(n as usize - 1) / 2];
    let (nlt, slt, neq, ngt, sgt) = sel.dev_sums(med).unwrap();
    let count = |f: &dyn Fn(f64) -> bool| vals.iter().filter(|&&v| f(v)).count() as u64;
    // A zero of the other sign than the median equals it, but a summarised gap ends on
    // it in the selector's total order (-0.0 below +0.0), so it may be counted on that
    // side: the sums, which the API uses, are the same either way (distance 0).
    let odd_zeros = count(&|v| v == med && v.is_sign_negative() != med.is_sign_negative());
    let (lt, gt) = (count(&|v| v < med), count(&|v| v > med));
    assert!(lt <= nlt && nlt <= lt + odd_zeros, "{nlt} below {med}, expected {lt}");
    assert!(gt <= ngt && ngt <= gt + odd_zeros, "{ngt} above {med}, expected {gt}");
    assert_eq!(nlt + neq + ngt, n);
    // Equal covers sums that overflow to inf on both sides (values near f64::MAX).
    let close = |got: f64, want: f64, scale: f64| {
        got == want || (got - want).abs() <= 1e-12 * scale
    };
    let below: Vec<f64> = vals.iter().filter(|&&v| v < med).map(|&v| med - v).collect();
    let above: Vec<f64> = vals.iter().filter(|&&v| v > med).map(|&v| v - med).collect();
    let (wl, wg) = (below.iter().sum::<f64>(), above.iter().sum::<f64>());
    // Gap sums are kept relative to one reference point near the median, so their
    // error is bounded by the data's largest magnitude, not by the sum itself: data
    // spanning 1e-203 .. 1e272 (found here) lose the small side's deviations. That
    // absolute bound is the contract (tests/test_stats.py checks MAD the same way).
    let big = n as f64 * m.min.abs().max(m.max.abs());
    assert!(close(slt, wl, wl + big), "sum below {slt} vs {wl}");
    assert!(close(sgt, wg, wg + big), "sum above {sgt} vs {wg}");
    let (root, _, _) = sel.huber(delta).expect("huber task");
    let c = root.expect("huber resolved");
    assert!(c.is_finite() && m.min <= c && c <= m.max, "{c} outside the data");
    // psi(c) = sum clip(y - c, -d, d) is non-increasing in c; at the root it changes
    // sign between the neighbouring floats (up to the sum's rounding).
    let psi = |c: f64| -> f64 { vals.iter().map(|&y| (y - c).clamp(-delta, delta)).sum() };
    let tol = 1e-9 * n as f64 * delta;
    assert!(psi(c.next_down()) >= -tol, "psi below the root is {}", psi(c.next_down()));
    assert!(psi(c.next_up()) <= tol, "psi above the root is {}", psi(c.next_up()));
});
