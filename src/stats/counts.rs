//! Class counts: integer labels (dense counts for small non-negative labels, a map for
//! the rest) and string labels (a hash map keyed by the label's bytes). Both merge by
//! addition and report classes in sorted order.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};

/// Labels below this are counted in a dense vector.
const DENSE: i64 = 1 << 20;

/// Counts of integer class labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IntCounts {
    dense: Vec<u64>,
    sparse: BTreeMap<i64, u64>,
}

impl IntCounts {
    pub fn add(&mut self, labels: &[i64]) {
        for &y in labels {
            self.add_one(y, 1);
        }
    }

    #[inline]
    pub fn add_one(&mut self, y: i64, n: u64) {
        if (0..DENSE).contains(&y) {
            let i = y as usize;
            if i >= self.dense.len() {
                self.dense.resize((i + 1).next_power_of_two().max(64), 0);
            }
            self.dense[i] = self.dense[i].saturating_add(n);
        } else {
            let c = self.sparse.entry(y).or_insert(0);
            *c = c.saturating_add(n);
        }
    }

    pub fn merge(&mut self, o: &IntCounts) {
        for (i, &n) in o.dense.iter().enumerate() {
            if n > 0 {
                self.add_one(i as i64, n);
            }
        }
        for (&y, &n) in &o.sparse {
            self.add_one(y, n);
        }
    }

    /// (label, count) for every label seen, sorted by label.
    pub fn sorted(&self) -> Vec<(i64, u64)> {
        let mut v: Vec<(i64, u64)> = self.sparse.range(..0).map(|(&y, &n)| (y, n)).collect();
        v.extend(
            self.dense
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, &n)| (i as i64, n)),
        );
        v.extend(self.sparse.range(0..).map(|(&y, &n)| (y, n)));
        v
    }

    pub fn total(&self) -> u64 {
        // Saturating: counts decoded from corrupt bytes must not overflow (real counts
        // are bounded by the rows read).
        (self.dense.iter().chain(self.sparse.values())).fold(0u64, |a, &n| a.saturating_add(n))
    }
}

/// Counts of string class labels (bytes, validated as UTF-8 when reported).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StrCounts {
    map: FxHashMap<Box<[u8]>, u64>,
}

impl StrCounts {
    /// Count one label; true when it is new.
    #[inline]
    pub fn add(&mut self, label: &[u8]) -> bool {
        self.add_n(label, 1)
    }

    /// Count n of a label; true when it is new.
    #[inline]
    pub fn add_n(&mut self, label: &[u8], n: u64) -> bool {
        if let Some(c) = self.map.get_mut(label) {
            *c = c.saturating_add(n);
            false
        } else {
            self.map.insert(label.into(), n);
            true
        }
    }

    pub fn merge(&mut self, o: &StrCounts) {
        for (k, &n) in &o.map {
            self.add_n(k, n);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn total(&self) -> u64 {
        self.map.values().fold(0u64, |a, &n| a.saturating_add(n))
    }

    /// (label, count) sorted by label (byte order = code point order for UTF-8).
    pub fn sorted(&self) -> Result<Vec<(String, u64)>> {
        let mut v = Vec::with_capacity(self.map.len());
        for (k, &n) in &self.map {
            let s = std::str::from_utf8(k).map_err(|e| {
                Error::Value(format!(
                    "class label {:?} is not valid UTF-8 ({e})",
                    String::from_utf8_lossy(k)
                ))
            })?;
            v.push((s.to_owned(), n));
        }
        v.sort_unstable();
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_counts_dense_and_sparse() {
        let mut a = IntCounts::default();
        a.add(&[3, -100, 3, 5_000_000, 0]);
        let mut b = IntCounts::default();
        b.add(&[-100, 1, 3]);
        a.merge(&b);
        assert_eq!(
            a.sorted(),
            vec![(-100, 2), (0, 1), (1, 1), (3, 3), (5_000_000, 1)]
        );
        assert_eq!(a.total(), 8);
    }

    #[test]
    fn str_counts_sorted() {
        let mut a = StrCounts::default();
        for s in ["dog", "cat", "dog", "émeu"] {
            a.add(s.as_bytes());
        }
        let v = a.sorted().unwrap();
        assert_eq!(v[0], ("cat".to_string(), 1));
        assert_eq!(v[1], ("dog".to_string(), 2));
        let mut bad = StrCounts::default();
        bad.add(&[0xff, 0xfe]);
        assert!(bad.sorted().is_err());
    }
}
