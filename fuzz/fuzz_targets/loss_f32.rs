//! float32 losses, differential: cross-entropy (index targets), the Weston-Watkins /
//! multi-margin hinge and BCE with logits (0/1 targets) on arbitrary float32 bit patterns (NaN, +-inf, subnormals, 3e38) or
//! small values with many ties, any class count up to 48 (the AVX-512 kernels' 16-row
//! groups, wide rows and partial vectors), ignored rows and weights. At the best SIMD
//! level (the hand-written AVX-512 kernels on a CPU that has them) the results must match
//! the scalar level's float64 computation: NaN where it is NaN, inf where it is inf, and
//! otherwise within float32 accuracy; the in-place gradient must equal the out-of-place
//! one bit for bit. Under ASan this also checks every masked load and store.
#![no_main]
use headstart::loss::ce::{cross_entropy, cross_entropy_inplace, CeOptions, Targets};
use headstart::loss::elementwise::{elementwise, elementwise_inplace, Extra, Kind};
use headstart::loss::hinge::{hinge, hinge_inplace, Hinge, HingeOptions};
use headstart::loss::Reduction;
use headstart::simd::{set_level, Level};
use libfuzzer_sys::fuzz_target;

fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= rel * b.abs() + abs
}

fn same(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (c, cfg, body) = (1 + data[0] as usize % 48, data[1], &data[2..]);
    let x: Vec<f32> = if cfg & 1 != 0 {
        body.chunks_exact(4)
            .map(|b| f32::from_bits(u32::from_le_bytes(b.try_into().unwrap())))
            .collect()
    } else {
        body.iter().map(|&b| (b as i8) as f32 * 0.5).collect()
    };
    let rows = (x.len() / c).min(256);
    if rows == 0 {
        return;
    }
    let x = &x[..rows * c];
    // Targets from the values' bytes: some ignored (-100, cross-entropy only).
    let t: Vec<i64> = (0..rows)
        .map(|r| {
            let b = body[r % body.len()];
            if cfg & 8 != 0 && b % 7 == 0 {
                -100
            } else {
                (b as usize % c) as i64
            }
        })
        .collect();
    let w: Vec<f64> = (0..c).map(|k| 0.25 + (k % 5) as f64).collect();
    let weight = if cfg & 2 != 0 { Some(&w[..]) } else { None };
    let kind = (cfg >> 4) % 4;
    let run = |lvl: Level| -> (Vec<f64>, Vec<f32>, Vec<f64>, Vec<f32>) {
        set_level(lvl);
        let mut g = vec![0.0f32; x.len()];
        let mut xi = x.to_vec();
        if kind == 3 {
            // BCE of all rows * c logits, unweighted (the AVX2 float32-lane kernel).
            let y: Vec<f32> = (0..x.len()).map(|i| (body[i % body.len()] >> (i % 8) & 1) as f32).collect();
            let ex = Extra { weight: None, pos_weight: None };
            let (mut p, mut pi) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
            elementwise(Kind::Bce, x, &y, ex, Reduction::None, Some(&mut p), Some(&mut g)).unwrap();
            elementwise_inplace(Kind::Bce, &mut xi, &y, ex, Reduction::None, Some(&mut pi)).unwrap();
            let f = |v: Vec<f32>| v.into_iter().map(|a| a as f64).collect::<Vec<f64>>();
            return (f(p), g, f(pi), xi);
        }
        let (r, ri) = if kind == 0 {
            let o = CeOptions {
                weight,
                ignore_index: -100,
                label_smoothing: 0.0,
                reduction: Reduction::None,
            };
            (
                cross_entropy(x, c, Targets::Index(&t), &o, Some(&mut g)).unwrap(),
                cross_entropy_inplace(&mut xi, c, Targets::Index(&t), &o).unwrap(),
            )
        } else {
            let tt: Vec<i64> = t.iter().map(|&v| v.max(0)).collect();
            let o = HingeOptions {
                kind: if kind == 1 { Hinge::WestonWatkins } else { Hinge::MultiMargin },
                p: 1 + (cfg >> 2 & 1) as u32,
                margin: [1.0, 0.5, -2.0, 0.0][(cfg >> 6) as usize],
                weight,
                reduction: Reduction::None,
            };
            (
                hinge(x, c, &tt, &o, Some(&mut g)).unwrap(),
                hinge_inplace(&mut xi, c, &tt, &o).unwrap(),
            )
        };
        (r.per_item.unwrap(), g, ri.per_item.unwrap(), xi)
    };
    let (ls, gs, _, _) = run(Level::Scalar);
    let (lb, gb, lbi, gbi) = run(Level::best());
    set_level(Level::best());
    assert!(same(&gb, &gbi), "in place differs");
    assert!(
        lb.iter().zip(&lbi).all(|(a, b)| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()),
        "in-place loss differs"
    );
    for r in 0..lb.len() {
        assert!(close(lb[r], ls[r], 1e-6, 1e-30), "item {r}: loss {} vs {}", lb[r], ls[r]);
    }
    if kind == 3 {
        for k in 0..x.len() {
            let (a, b) = (gb[k] as f64, gs[k] as f64);
            assert!(close(a, b, 2e-6, 1e-40), "element {k}: grad {a:e} vs {b:e}");
        }
        return;
    }
    for r in 0..rows {
        for k in r * c..(r + 1) * c {
            let (a, b) = (gb[k] as f64, gs[k] as f64);
            assert!(close(a, b, 2e-6, 1e-40), "row {r} class {}: grad {a:e} vs {b:e}", k - r * c);
        }
    }
});
