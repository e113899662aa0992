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
///
/// Labels of at most 16 bytes (nearly every class name) are keyed by their bytes packed
/// into two words and their length: hashing and comparing them is a few integer
/// operations. Keyed by a boxed slice, every count paid a `memcmp` call and a byte-wise
/// hash, ~40% of a class scan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StrCounts {
    short: FxHashMap<Packed, u64>,
    long: FxHashMap<Box<[u8]>, u64>,
}

/// A packed label: its words and length. The hash is one folded multiply of the two
/// words (a strong mix); FxHash of the raw words, whose labels often share all but a few
/// bytes ("class_0001", "class_0002"), clustered so badly that a scan ran 3x slower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packed(u64, u64, u8);

impl std::hash::Hash for Packed {
    #[inline(always)]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let x = (self.0 ^ 0x243f_6a88_85a3_08d3) as u128
            * (self.1 ^ (self.2 as u64) << 56 ^ 0x1319_8a2e_0370_7344) as u128;
        h.write_u64(x as u64 ^ (x >> 64) as u64);
    }
}

/// Longest label kept in `short`.
const SHORT: usize = 16;

/// The packed key of a label of at most [`SHORT`] bytes: the same label always gives
/// the same key, and the length is part of it, so distinct labels never share one.
#[inline(always)]
fn pack(l: &[u8]) -> Option<Packed> {
    let n = l.len();
    let w8 = |i: usize| u64::from_le_bytes(l[i..i + 8].try_into().unwrap_or([0; 8]));
    let w4 = |i: usize| u32::from_le_bytes(l[i..i + 4].try_into().unwrap_or([0; 4])) as u64;
    let (a, b) = match n {
        // Two overlapping words: the first and the last eight bytes.
        8..=SHORT => (w8(0), w8(n - 8)),
        4..=7 => (w4(0) | w4(n - 4) << 32, 0),
        1..=3 => (
            l[0] as u64 | (l[n / 2] as u64) << 8 | (l[n - 1] as u64) << 16,
            0,
        ),
        0 => (0, 0),
        _ => return None,
    };
    Some(Packed(a, b, n as u8))
}

/// The label of a packed key.
fn unpack(Packed(a, b, n): Packed) -> Vec<u8> {
    let n = n as usize;
    let mut v = vec![0u8; n];
    match n {
        8..=SHORT => {
            v[n - 8..].copy_from_slice(&b.to_le_bytes());
            v[..8].copy_from_slice(&a.to_le_bytes());
        }
        4..=7 => {
            v[n - 4..].copy_from_slice(&((a >> 32) as u32).to_le_bytes());
            v[..4].copy_from_slice(&(a as u32).to_le_bytes());
        }
        1..=3 => {
            v[n - 1] = (a >> 16) as u8;
            v[n / 2] = (a >> 8) as u8;
            v[0] = a as u8;
        }
        _ => {}
    }
    v
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
        if let Some(k) = pack(label) {
            if let Some(c) = self.short.get_mut(&k) {
                *c = c.saturating_add(n);
                return false;
            }
            self.short.insert(k, n);
            return true;
        }
        if let Some(c) = self.long.get_mut(label) {
            *c = c.saturating_add(n);
            false
        } else {
            self.long.insert(label.into(), n);
            true
        }
    }

    pub fn merge(&mut self, o: &StrCounts) {
        for (k, &n) in &o.short {
            let c = self.short.entry(*k).or_insert(0);
            *c = c.saturating_add(n);
        }
        for (k, &n) in &o.long {
            self.add_n(k, n);
        }
    }

    pub fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    pub fn is_empty(&self) -> bool {
        self.short.is_empty() && self.long.is_empty()
    }

    pub fn total(&self) -> u64 {
        (self.short.values().chain(self.long.values())).fold(0u64, |a, &n| a.saturating_add(n))
    }

    /// Every (label, count), in no particular order.
    fn entries(&self) -> impl Iterator<Item = (std::borrow::Cow<'_, [u8]>, u64)> {
        let s = self.short.iter().map(|(&k, &n)| (unpack(k).into(), n));
        s.chain(self.long.iter().map(|(k, &n)| (k[..].into(), n)))
    }

    /// (label, count) sorted by label (byte order = code point order for UTF-8).
    pub fn sorted(&self) -> Result<Vec<(String, u64)>> {
        let mut v = Vec::with_capacity(self.len());
        for (k, n) in self.entries() {
            let s = std::str::from_utf8(&k).map_err(|e| {
                Error::Value(format!(
                    "class label {:?} is not valid UTF-8 ({e})",
                    String::from_utf8_lossy(&k)
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

    /// Every label of every length round-trips through its key, and labels that
    /// differ anywhere (or only in length) get different keys.
    #[test]
    fn packed_keys_are_exact() {
        let base: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let mut seen = std::collections::HashSet::new();
        let mut c = StrCounts::default();
        let mut want = Vec::new();
        for n in 0..=20 {
            let l = &base[..n];
            if let Some(k) = pack(l) {
                assert_eq!(unpack(k), l, "n={n}");
                assert!(seen.insert(k), "n={n}");
            }
            for i in 0..n {
                let mut m = l.to_vec();
                m[i] ^= 1;
                if let (Some(a), Some(b)) = (pack(l), pack(&m)) {
                    assert_ne!(a, b, "n={n} i={i}");
                }
                c.add(&m);
                want.push(m);
            }
            c.add(l);
            c.add(l);
            want.push(l.to_vec());
            want.push(l.to_vec());
        }
        assert_eq!(c.total(), want.len() as u64);
        want.sort();
        let mut got: Vec<Vec<u8>> = Vec::new();
        for (k, n) in c.entries() {
            for _ in 0..n {
                got.push(k.to_vec());
            }
        }
        got.sort();
        assert_eq!(got, want);
    }

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
        let mut bad = StrCounts::default();
        bad.add(b"a label longer than sixteen bytes \xff");
        assert!(bad.sorted().is_err());
        let mut bad = StrCounts::default();
        bad.add(&[0xff, 0xfe]);
        assert!(bad.sorted().is_err());
    }
}
