//! Count, mean, variance (Chan's merge of two-pass chunk moments), min, max.

/// Values per leaf of the pairwise sums; a leaf is summed in [`LANES`] lanes.
const LEAF: usize = 256;
const LANES: usize = 8;

/// A binary-counter tree of leaf sums: leaves pushed in order combine pairwise, so the
/// error grows with log n and the order depends only on the number of leaves. Not
/// recursive and without closures, so it inlines into the vectorised callers (a
/// recursive sum stayed a call, and its leaf closure a call at the baseline ISA).
pub struct Tree<const K: usize> {
    stack: [[f64; K]; 64],
    full: u64,
}

impl<const K: usize> Default for Tree<K> {
    #[inline(always)]
    fn default() -> Self {
        Self::new()
    }
}

impl<const K: usize> Tree<K> {
    #[inline(always)]
    pub fn new() -> Self {
        Tree {
            stack: [[0.0; K]; 64],
            full: 0,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, mut s: [f64; K]) {
        let mut lvl = 0;
        while self.full >> lvl & 1 == 1 {
            for (a, b) in s.iter_mut().zip(&self.stack[lvl]) {
                *a += b;
            }
            self.full &= !(1 << lvl);
            lvl += 1;
        }
        self.stack[lvl] = s;
        self.full |= 1 << lvl;
    }

    /// The sum of everything pushed: the partial sums, smallest (latest) first.
    #[inline(always)]
    pub fn total(&self) -> [f64; K] {
        let mut full = self.full;
        let mut out: Option<[f64; K]> = None;
        while full != 0 {
            let lvl = full.trailing_zeros() as usize;
            full &= full - 1;
            let mut s = self.stack[lvl];
            if let Some(o) = out {
                for (a, b) in s.iter_mut().zip(&o) {
                    *a += b;
                }
            }
            out = Some(s);
        }
        out.unwrap_or([0.0; K])
    }
}

/// Lane sums of f(x) over one leaf, folded by a fixed tree.
#[inline(always)]
fn leaf_sum(c: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut a = [0.0f64; LANES];
    let mut it = c.chunks_exact(LANES);
    for x in &mut it {
        for j in 0..LANES {
            a[j] += f(x[j]);
        }
    }
    for (j, &x) in it.remainder().iter().enumerate() {
        a[j] += f(x);
    }
    fold(&a)
}

#[inline(always)]
fn fold(a: &[f64; LANES]) -> f64 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

/// Pairwise sum: error grows with log n.
#[inline(always)]
pub fn psum(v: &[f64]) -> f64 {
    psum_map(v, |x| x)
}

/// Sum of f(x) pairwise, without materialising f(x).
#[inline(always)]
pub fn psum_map(v: &[f64], f: impl Fn(f64) -> f64 + Copy) -> f64 {
    let mut t = Tree::<1>::new();
    for c in v.chunks(LEAF) {
        t.push([leaf_sum(c, f)]);
    }
    t.total()[0]
}

/// Lane sums of y, |y| and max(y, 0) over one leaf.
#[inline(always)]
fn leaf_sums3(c: &[f64]) -> [f64; 3] {
    let mut s = [[0.0f64; LANES]; 3];
    let mut it = c.chunks_exact(LANES);
    for x in &mut it {
        for j in 0..LANES {
            s[0][j] += x[j];
            s[1][j] += x[j].abs();
            s[2][j] += if x[j] > 0.0 { x[j] } else { 0.0 };
        }
    }
    for (j, &x) in it.remainder().iter().enumerate() {
        s[0][j] += x;
        s[1][j] += x.abs();
        s[2][j] += if x > 0.0 { x } else { 0.0 };
    }
    [fold(&s[0]), fold(&s[1]), fold(&s[2])]
}

/// Lane sums of d = y - m and d^2 over one leaf.
#[inline(always)]
fn leaf_dev(c: &[f64], m: f64) -> [f64; 2] {
    let mut s = [[0.0f64; LANES]; 2];
    let mut it = c.chunks_exact(LANES);
    for x in &mut it {
        for j in 0..LANES {
            let d = x[j] - m;
            s[0][j] += d;
            s[1][j] += d * d;
        }
    }
    for (j, &x) in it.remainder().iter().enumerate() {
        let d = x - m;
        s[0][j] += d;
        s[1][j] += d * d;
    }
    [fold(&s[0]), fold(&s[1])]
}

/// NaN-free min and max (plain compares: they vectorise, `f64::min` does not).
#[inline(always)]
fn min_max(c: &[f64], mn: &mut [f64; LANES], mx: &mut [f64; LANES]) {
    let mut it = c.chunks_exact(LANES);
    for x in &mut it {
        for j in 0..LANES {
            mn[j] = if x[j] < mn[j] { x[j] } else { mn[j] };
            mx[j] = if x[j] > mx[j] { x[j] } else { mx[j] };
        }
    }
    for &x in it.remainder() {
        mn[0] = if x < mn[0] { x } else { mn[0] };
        mx[0] = if x > mx[0] { x } else { mx[0] };
    }
}

/// Values per block of [`Moments::block`] (stays in L1).
pub const BLOCK: usize = 4096;
/// 2^-13 and 2^13: BLOCK values scaled by 2^-13 sum without overflow.
const SCALE_DOWN: f64 = 1.0 / 8192.0;
const SCALE_UP: f64 = 8192.0;

/// Moments of a set of values. `m2` is the sum of squared deviations from the mean
/// (population variance = m2 / n). Merging follows Chan et al.; each chunk's own moments
/// are exact two-pass sums, so accuracy does not depend on the offset of the data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    /// Moments of a chunk (NaN-free): exact two-pass moments of cache-sized blocks,
    /// merged with Chan's rule. (The scans call [`block`](Self::block) themselves, to
    /// take its zero-output sums too; this is the tests' whole-set reference.)
    #[cfg(test)]
    pub fn of(v: &[f64]) -> Moments {
        let mut m = Moments::default();
        for b in v.chunks(BLOCK) {
            m.merge(&Moments::block(b).0);
        }
        m
    }

    /// Moments of a block of at most [`BLOCK`] NaN-free values, with sum |y| and
    /// sum max(y, 0) from the same sweep (the losses of a zero output).
    #[inline(always)]
    pub fn block(v: &[f64]) -> (Moments, f64, f64) {
        if v.is_empty() {
            return (Moments::default(), 0.0, 0.0);
        }
        let n = v.len() as f64;
        let mut mn = [f64::INFINITY; LANES];
        let mut mx = [f64::NEG_INFINITY; LANES];
        let mut t = Tree::<3>::new();
        for c in v.chunks(LEAF) {
            min_max(c, &mut mn, &mut mx);
            t.push(leaf_sums3(c));
        }
        let [sum, abs, pos] = t.total();
        let min = mn.iter().fold(f64::INFINITY, |a, &b| a.min(b));
        let max = mx.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let mut mean0 = sum / n;
        if !mean0.is_finite() && min.is_finite() && max.is_finite() {
            // Finite values whose sum overflows (near f64::MAX): sum them scaled by 2^-13
            // (a block holds at most 4096 values, so the scaled sum cannot overflow); the
            // mean itself is within the range.
            let sc = psum_map(v, |x| x * SCALE_DOWN);
            mean0 = sc / n * SCALE_UP;
        }
        if !mean0.is_finite() {
            let m = Moments {
                n: v.len() as u64,
                mean: mean0,
                m2: f64::NAN,
                min,
                max,
            };
            return (m, abs, pos);
        }
        // Two-pass with the correction term: m2 = sum d^2 - (sum d)^2 / n.
        let mut t = Tree::<2>::new();
        for c in v.chunks(LEAF) {
            t.push(leaf_dev(c, mean0));
        }
        let [sd, sd2] = t.total();
        // Deviations near 2 f64::MAX overflow: the sum of squares is then beyond the
        // range (inf, as numpy's), and the mean keeps its first-pass value.
        let m = Moments {
            n: v.len() as u64,
            mean: if sd.is_finite() {
                mean0 + sd / n
            } else {
                mean0
            },
            m2: if sd2.is_finite() && sd.is_finite() {
                (sd2 - sd * sd / n).max(0.0)
            } else {
                f64::INFINITY
            },
            min,
            max,
        };
        (m, abs, pos)
    }

    /// Add another set's moments (Chan's parallel rule).
    pub fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let (na, nb) = (self.n as f64, o.n as f64);
        let n = na + nb;
        let d = o.mean - self.mean;
        if self.mean.is_finite() && o.mean.is_finite() && !d.is_finite() {
            // Means of opposite sign near f64::MAX: their difference overflows, so the
            // squared-deviation term is beyond the range; weight the means directly.
            self.mean = self.mean * (na / n) + o.mean * (nb / n);
            self.m2 = f64::INFINITY;
        } else if self.mean.is_finite() && o.mean.is_finite() {
            self.mean += d * (nb / n);
            self.m2 += o.m2 + d * d * (na * nb / n);
        } else {
            self.mean = self.mean * (na / n) + o.mean * (nb / n);
            self.m2 = f64::NAN;
        }
        self.n += o.n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// Population variance (ddof = 0), NaN for an empty set.
    pub fn var(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.m2 / self.n as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_max_values_keep_their_mean() {
        let m = f64::MAX;
        let v = [m, -m, m];
        let a = Moments::of(&v);
        // numpy: mean 5.99e307 (= MAX / 3), var inf.
        assert_eq!(a.mean, m / 3.0);
        assert_eq!(a.var(), f64::INFINITY);
        let mut b = Moments::of(&[m, m]);
        b.merge(&Moments::of(&[-m]));
        assert!((b.mean - m / 3.0).abs() <= 1e-15 * m);
        assert_eq!(b.var(), f64::INFINITY);
        let c = Moments::of(&[m, m, m]);
        assert_eq!((c.mean, c.var()), (m, 0.0));
    }

    #[test]
    fn merge_matches_whole() {
        let v: Vec<f64> = (0..10_000)
            .map(|i| 1e9 + ((i * 7919) % 1000) as f64 * 0.001)
            .collect();
        let whole = Moments::of(&v);
        let mut m = Moments::default();
        for c in v.chunks(777) {
            m.merge(&Moments::of(c));
        }
        let mean: f64 = v.iter().sum::<f64>() / v.len() as f64;
        let var: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64;
        assert!((whole.var() - var).abs() <= 1e-9 * var);
        assert!((m.var() - var).abs() <= 1e-9 * var);
        assert_eq!(m.n, 10_000);
        assert_eq!(m.min, whole.min);
    }
}
