//! Count, mean, variance (Chan's merge of two-pass chunk moments), min, max.

/// Pairwise sum with four accumulators at the leaves: error grows with log n.
pub fn psum(v: &[f64]) -> f64 {
    if v.len() <= 256 {
        let mut a = [0.0f64; 4];
        let mut it = v.chunks_exact(4);
        for c in &mut it {
            for j in 0..4 {
                a[j] += c[j];
            }
        }
        let mut s = (a[0] + a[1]) + (a[2] + a[3]);
        for &x in it.remainder() {
            s += x;
        }
        return s;
    }
    let h = v.len() / 2;
    psum(&v[..h]) + psum(&v[h..])
}

/// Sum of f(x) pairwise, without materialising f(x).
pub fn psum_map(v: &[f64], f: impl Fn(f64) -> f64 + Copy) -> f64 {
    if v.len() <= 256 {
        let mut a = [0.0f64; 4];
        let mut it = v.chunks_exact(4);
        for c in &mut it {
            for j in 0..4 {
                a[j] += f(c[j]);
            }
        }
        let mut s = (a[0] + a[1]) + (a[2] + a[3]);
        for &x in it.remainder() {
            s += f(x);
        }
        return s;
    }
    let h = v.len() / 2;
    psum_map(&v[..h], f) + psum_map(&v[h..], f)
}

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
    /// merged with Chan's rule.
    pub fn of(v: &[f64]) -> Moments {
        let mut m = Moments::default();
        for b in v.chunks(4096) {
            m.merge(&Moments::block(b));
        }
        m
    }

    fn block(v: &[f64]) -> Moments {
        if v.is_empty() {
            return Moments::default();
        }
        let n = v.len() as f64;
        let mut mn = [f64::INFINITY; 4];
        let mut mx = [f64::NEG_INFINITY; 4];
        let mut it = v.chunks_exact(4);
        for c in &mut it {
            for j in 0..4 {
                mn[j] = mn[j].min(c[j]);
                mx[j] = mx[j].max(c[j]);
            }
        }
        for &x in it.remainder() {
            mn[0] = mn[0].min(x);
            mx[0] = mx[0].max(x);
        }
        let min = mn[0].min(mn[1]).min(mn[2].min(mn[3]));
        let max = mx[0].max(mx[1]).max(mx[2].max(mx[3]));
        let mean0 = psum(v) / n;
        if !mean0.is_finite() {
            return Moments {
                n: v.len() as u64,
                mean: mean0,
                m2: f64::NAN,
                min,
                max,
            };
        }
        // Two-pass with the correction term: m2 = sum d^2 - (sum d)^2 / n.
        let mut sd = [0.0f64; 4];
        let mut sd2 = [0.0f64; 4];
        let mut it = v.chunks_exact(4);
        for c in &mut it {
            for j in 0..4 {
                let d = c[j] - mean0;
                sd[j] += d;
                sd2[j] += d * d;
            }
        }
        for &x in it.remainder() {
            let d = x - mean0;
            sd[0] += d;
            sd2[0] += d * d;
        }
        let sd = (sd[0] + sd[1]) + (sd[2] + sd[3]);
        let sd2 = (sd2[0] + sd2[1]) + (sd2[2] + sd2[3]);
        Moments {
            n: v.len() as u64,
            mean: mean0 + sd / n,
            m2: (sd2 - sd * sd / n).max(0.0),
            min,
            max,
        }
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
        if self.mean.is_finite() && o.mean.is_finite() {
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
