//! A compact little-endian encoding of the selector and count states, for pickling and
//! for shipping partial states between processes (Dask).
//!
//! A state's bytes are a frame around a body: `HSSTATE1`, the body's length (u64), the
//! body (its own magic tag, then the fields), and a CRC-32 of everything before it. A
//! flipped bit or a truncated copy fails the checksum or the length and is refused on
//! load, always; the body decoders alone (fuzzed) check structure, not integrity.

use super::counts::{IntCounts, StrCounts};
use super::moments::Moments;
use super::select::{Gap, PassAcc, Plan, Selector, Task, TaskAcc, TaskPlan, Window};
use crate::error::{Error, Result};

const MAGIC_SEL: &[u8; 8] = b"HSSEL02\0";
const MAGIC_CNT: &[u8; 8] = b"HSCNT01\0";
const MAGIC_FRAME: &[u8; 8] = b"HSSTATE1";

/// Wrap a body in the frame (magic, length, body, CRC-32).
fn frame(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 20);
    out.extend_from_slice(MAGIC_FRAME);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The body inside a frame, after checking its length and checksum.
fn unframe(b: &[u8]) -> Result<&[u8]> {
    if b.starts_with(MAGIC_SEL) || b.starts_with(MAGIC_CNT) {
        return Err(Error::Value(
            "cannot restore a headstart state: the bytes have no checksum (written by an \
             older headstart): recompute the state"
                .into(),
        ));
    }
    if b.len() < 20 || &b[..8] != MAGIC_FRAME {
        return Err(Error::Value(
            "cannot restore a headstart state: these bytes are not a headstart state (or their \
             start is corrupt)"
                .into(),
        ));
    }
    let (head, crc) = b.split_at(b.len() - 4);
    let len = u64::from_le_bytes(head[8..16].try_into().map_err(|_| corrupt())?);
    if len != (head.len() - 16) as u64 {
        return Err(Error::Value(format!(
            "cannot restore a headstart state: it says it holds {len} bytes but {} are here \
             (truncated or corrupt)",
            head.len() - 16
        )));
    }
    let want = u32::from_le_bytes(crc.try_into().map_err(|_| corrupt())?);
    if crc32fast::hash(head) != want {
        return Err(Error::Value(
            "cannot restore a headstart state: its checksum does not match (the bytes were \
             corrupted in storage or transfer)"
                .into(),
        ));
    }
    Ok(&head[16..])
}

#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.0.push(v as u8);
    }
    fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        for &x in v {
            self.f64(x);
        }
    }
    /// Histograms are mostly zeros: stored as (index, count) pairs.
    fn sparse(&mut self, v: &[u64]) {
        self.u64(v.len() as u64);
        let nz: Vec<(usize, u64)> = v.iter().copied().enumerate().filter(|x| x.1 != 0).collect();
        self.u64(nz.len() as u64);
        for (i, c) in nz {
            self.u64(i as u64);
            self.u64(c);
        }
    }
    fn moments(&mut self, m: &Moments) {
        self.u64(m.n);
        self.f64(m.mean);
        self.f64(m.m2);
        self.f64(m.min);
        self.f64(m.max);
    }
    fn plan(&mut self, p: &TaskPlan) {
        self.f64(p.r);
        self.u64(p.windows.len() as u64);
        for w in &p.windows {
            self.u64(w.lo);
            self.u64(w.hi);
            self.u64(w.shift as u64);
            self.bool(w.collect);
        }
    }
    fn tacc(&mut self, a: &TaskAcc) {
        self.u64(a.gaps.len() as u64);
        for g in &a.gaps {
            self.u64(g.n);
            self.f64(g.s1);
            self.f64(g.s2);
        }
        self.u64(a.hists.len() as u64);
        for h in &a.hists {
            self.sparse(h);
        }
        self.u64(a.vals.len() as u64);
        for v in &a.vals {
            self.f64s(v);
        }
        self.sparse(&a.counts);
    }
}

/// Reader over the bytes; `.1` counts the histogram bins still allowed (see `sparse`).
struct R<'a>(&'a [u8], u64);

/// Histogram bins one decode may allocate: 64 first-pass histograms' worth (512 MiB).
/// Real states hold two first-pass histograms and a few 2^16-bin task histograms per
/// requested quantile; this only stops corrupt bytes from asking for unbounded memory.
const BIN_BUDGET: u64 = 64 << crate::stats::select::FIRST_BITS;

fn corrupt() -> Error {
    Error::Value("cannot restore a headstart state: the bytes are truncated or corrupt".into())
}

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.0.len() < n {
            return Err(corrupt());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| corrupt())?,
        ))
    }
    fn len(&mut self) -> Result<usize> {
        let n = self.u64()? as usize;
        // Every element takes at least one byte: a larger count is corrupt.
        if n > self.0.len() {
            return Err(corrupt());
        }
        Ok(n)
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn bool(&mut self) -> Result<bool> {
        Ok(self.take(1)?[0] != 0)
    }
    fn f64s(&mut self) -> Result<Vec<f64>> {
        let n = self.len()?;
        (0..n).map(|_| self.f64()).collect()
    }
    fn sparse(&mut self) -> Result<Vec<u64>> {
        let n = self.u64()?;
        // A histogram has at most 2^FIRST_BITS bins, and all of them together stay
        // within the budget: corrupt bytes cannot ask for unbounded memory.
        if n > (1 << crate::stats::select::FIRST_BITS) || n > self.1 {
            return Err(corrupt());
        }
        self.1 -= n;
        let n = n as usize;
        let nz = self.len()?;
        let mut v = vec![0u64; n];
        for _ in 0..nz {
            let i = self.u64()? as usize;
            let c = self.u64()?;
            *v.get_mut(i).ok_or_else(corrupt)? = c;
        }
        Ok(v)
    }
    fn moments(&mut self) -> Result<Moments> {
        Ok(Moments {
            n: self.u64()?,
            mean: self.f64()?,
            m2: self.f64()?,
            min: self.f64()?,
            max: self.f64()?,
        })
    }
    fn plan(&mut self) -> Result<TaskPlan> {
        let r = self.f64()?;
        let n = self.len()?;
        let mut windows = Vec::with_capacity(n);
        for _ in 0..n {
            let lo = self.u64()?;
            let hi = self.u64()?;
            let shift = self.u64()?;
            let collect = self.bool()?;
            if hi < lo || shift > 63 {
                return Err(corrupt());
            }
            windows.push(Window {
                lo,
                hi,
                shift: shift as u32,
                collect,
            });
        }
        Ok(TaskPlan { r, windows })
    }
    fn tacc(&mut self) -> Result<TaskAcc> {
        let ng = self.len()?;
        let mut gaps = Vec::with_capacity(ng);
        for _ in 0..ng {
            gaps.push(Gap {
                n: self.u64()?,
                s1: self.f64()?,
                s2: self.f64()?,
            });
        }
        let nh = self.len()?;
        let hists = (0..nh).map(|_| self.sparse()).collect::<Result<_>>()?;
        let nv = self.len()?;
        let vals = (0..nv).map(|_| self.f64s()).collect::<Result<_>>()?;
        let counts = self.sparse()?;
        Ok(TaskAcc {
            gaps,
            hists,
            vals,
            counts,
        })
    }
}

/// Encode a selector (its knowledge and the current pass's accumulation), framed.
pub fn selector_to_bytes(s: &Selector) -> Vec<u8> {
    frame(selector_body(s))
}

/// Decode what [`selector_to_bytes`] wrote; a corrupt or truncated copy is an error.
pub fn selector_from_bytes(b: &[u8]) -> Result<Selector> {
    selector_from_body(unframe(b)?)
}

/// The unframed encoding of a selector.
pub fn selector_body(s: &Selector) -> Vec<u8> {
    let mut w = W::default();
    w.0.extend_from_slice(MAGIC_SEL);
    w.f64s(&s.probs);
    w.f64s(&s.deltas);
    w.u64(s.collect_max);
    w.u64(s.plan.pass as u64);
    w.u64(s.plan.tasks.len() as u64);
    for t in &s.plan.tasks {
        w.plan(t);
    }
    w.f64s(&s.plan.deltas);
    w.moments(&s.acc.moments);
    w.sparse(&s.acc.hist1);
    w.f64s(&s.acc.zero);
    w.u64(s.acc.tasks.len() as u64);
    for t in &s.acc.tasks {
        w.tacc(t);
    }
    w.bool(s.moments.is_some());
    if let Some(m) = &s.moments {
        w.moments(m);
    }
    w.sparse(&s.hist1);
    w.f64s(&s.zero);
    w.u64(s.tasks.len() as u64);
    for t in &s.tasks {
        match t {
            Task::Ranks {
                ranks,
                values,
                done,
            } => {
                w.u64(0);
                w.u64(ranks.len() as u64);
                for (&k, v) in ranks.iter().zip(values) {
                    w.u64(k);
                    w.bool(v.is_some());
                    w.f64(v.unwrap_or(0.0));
                }
                w.bool(*done);
            }
            Task::Huber {
                delta,
                lo,
                hi,
                root,
            } => {
                w.u64(1);
                w.f64(*delta);
                w.f64(*lo);
                w.f64(*hi);
                w.bool(root.is_some());
                w.f64(root.unwrap_or(0.0));
            }
        }
    }
    w.u64(s.finals.len() as u64);
    for f in &s.finals {
        w.bool(f.is_some());
        if let Some((p, a)) = f {
            w.plan(p);
            w.tacc(a);
        }
    }
    w.0
}

/// Decode what [`selector_body`] wrote (structure checked, no checksum).
pub fn selector_from_body(b: &[u8]) -> Result<Selector> {
    let mut r = R(b, BIN_BUDGET);
    if r.take(8)? != MAGIC_SEL {
        return Err(corrupt());
    }
    let probs = r.f64s()?;
    let deltas = r.f64s()?;
    let mut s = Selector::new(&probs, &deltas)?;
    s.collect_max = r.u64()?;
    let pass = r.u64()? as u32;
    let nt = r.len()?;
    let tasks = (0..nt).map(|_| r.plan()).collect::<Result<Vec<_>>>()?;
    let pdeltas = r.f64s()?;
    s.plan = Plan {
        pass,
        tasks,
        deltas: pdeltas,
    };
    let moments = r.moments()?;
    let hist1 = r.sparse()?;
    let azero = r.f64s()?;
    let na = r.len()?;
    let atasks = (0..na).map(|_| r.tacc()).collect::<Result<Vec<_>>>()?;
    s.acc = PassAcc {
        moments,
        hist1,
        zero: azero,
        tasks: atasks,
    };
    if r.bool()? {
        s.moments = Some(r.moments()?);
    }
    s.hist1 = r.sparse()?;
    s.zero = r.f64s()?;
    let nk = r.len()?;
    for _ in 0..nk {
        match r.u64()? {
            0 => {
                let n = r.len()?;
                let mut ranks = Vec::with_capacity(n);
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    ranks.push(r.u64()?);
                    let some = r.bool()?;
                    let v = r.f64()?;
                    values.push(if some { Some(v) } else { None });
                }
                let done = r.bool()?;
                s.tasks.push(Task::Ranks {
                    ranks,
                    values,
                    done,
                });
            }
            1 => {
                let delta = r.f64()?;
                let lo = r.f64()?;
                let hi = r.f64()?;
                let some = r.bool()?;
                let v = r.f64()?;
                s.tasks.push(Task::Huber {
                    delta,
                    lo,
                    hi,
                    root: if some { Some(v) } else { None },
                });
            }
            _ => return Err(corrupt()),
        }
    }
    let nf = r.len()?;
    for _ in 0..nf {
        s.finals.push(if r.bool()? {
            Some((r.plan()?, r.tacc()?))
        } else {
            None
        });
    }
    if !r.0.is_empty() || !s.consistent() {
        return Err(corrupt());
    }
    Ok(s)
}

/// Encode class counts, framed.
pub fn counts_to_bytes(ints: &IntCounts, strs: &StrCounts, rows: u64) -> Result<Vec<u8>> {
    Ok(frame(counts_body(ints, strs, rows)?))
}

/// Decode what [`counts_to_bytes`] wrote; a corrupt or truncated copy is an error.
pub fn counts_from_bytes(b: &[u8]) -> Result<(IntCounts, StrCounts, u64)> {
    counts_from_body(unframe(b)?)
}

/// The unframed encoding of class counts.
pub fn counts_body(ints: &IntCounts, strs: &StrCounts, rows: u64) -> Result<Vec<u8>> {
    let mut w = W::default();
    w.0.extend_from_slice(MAGIC_CNT);
    w.u64(rows);
    let iv = ints.sorted();
    w.u64(iv.len() as u64);
    for (k, n) in iv {
        w.u64(k as u64);
        w.u64(n);
    }
    let sv = strs.sorted()?;
    w.u64(sv.len() as u64);
    for (k, n) in sv {
        w.u64(k.len() as u64);
        w.0.extend_from_slice(k.as_bytes());
        w.u64(n);
    }
    Ok(w.0)
}

/// Decode what [`counts_body`] wrote (structure checked, no checksum).
pub fn counts_from_body(b: &[u8]) -> Result<(IntCounts, StrCounts, u64)> {
    let mut r = R(b, BIN_BUDGET);
    if r.take(8)? != MAGIC_CNT {
        return Err(corrupt());
    }
    let rows = r.u64()?;
    let mut ints = IntCounts::default();
    let ni = r.len()?;
    for _ in 0..ni {
        let k = r.u64()? as i64;
        let n = r.u64()?;
        if n == 0 {
            return Err(corrupt());
        }
        ints.add_one(k, n);
    }
    let mut strs = StrCounts::default();
    let ns = r.len()?;
    for _ in 0..ns {
        let l = r.len()?;
        let k = r.take(l)?.to_vec();
        let n = r.u64()?;
        // Labels are UTF-8 when counted (the readers check); anything else is corrupt.
        if n == 0 || std::str::from_utf8(&k).is_err() {
            return Err(corrupt());
        }
        strs.add_n(&k, n);
    }
    if !r.0.is_empty() {
        return Err(corrupt());
    }
    Ok((ints, strs, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_round_trips_mid_pass() {
        let v: Vec<f64> = (0..5000)
            .map(|i| ((i * 7919) % 1013) as f64 * 0.37)
            .collect();
        let mut s = Selector::new(&[0.3], &[1.0]).unwrap();
        s.collect_max = 10;
        s.update(&v);
        loop {
            let b = selector_to_bytes(&s);
            let t = selector_from_bytes(&b).unwrap();
            assert_eq!(t, s);
            assert!(selector_from_bytes(&b[..b.len() - 1]).is_err());
            if !s.finish_pass().unwrap() {
                break;
            }
            s.update(&v);
        }
        let t = selector_from_bytes(&selector_to_bytes(&s)).unwrap();
        assert_eq!(t, s);
    }

    /// Decode and, when that succeeds, run passes over a few values (as the state_bytes
    /// fuzz target does): must not panic.
    fn use_decoded(b: &[u8]) {
        if let Ok(mut s) = selector_from_body(b) {
            for _ in 0..20 {
                s.update(&[0.0, 1.5, -2.0, 1e300]);
                if !matches!(s.finish_pass(), Ok(true)) {
                    break;
                }
            }
        }
    }

    /// Inputs the cargo-fuzz targets (fuzz/) found; each once panicked.
    #[test]
    fn fuzz_regressions() {
        // state_bytes: a string label that is not UTF-8 decoded, then re-encoding failed.
        let crash: &[u8] = &[
            0x48, 0x53, 0x43, 0x4e, 0x54, 0x30, 0x31, 0x00, 0x00, 0x31, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0x08, 0x00, 0x00, 0x00, 0xde, 0xde,
        ];
        assert!(counts_from_body(crash).is_err());
        // Counts near u64::MAX merged with themselves saturate instead of overflowing.
        let mut ints = IntCounts::default();
        ints.add_one(3, u64::MAX - 1);
        ints.add_one(-5, u64::MAX);
        let mut strs = StrCounts::default();
        strs.add_n(b"a", u64::MAX);
        let b = counts_to_bytes(&ints, &strs, 1).unwrap();
        let (mut i2, mut s2, _) = counts_from_bytes(&b).unwrap();
        i2.merge(&ints);
        s2.merge(&strs);
        assert_eq!(i2.sorted(), vec![(-5, u64::MAX), (3, u64::MAX)]);
        assert_eq!((i2.total(), s2.total()), (u64::MAX, u64::MAX));
        // A zero count is never written, so reading one is corruption.
        let mut zero = IntCounts::default();
        zero.add_one(7, 1);
        let mut b = counts_body(&zero, &StrCounts::default(), 0).unwrap();
        let at = b.len() - 16;
        b[at..at + 8].copy_from_slice(&0u64.to_le_bytes());
        assert!(counts_from_body(&b).is_err());
        // state_bytes: a histogram length of 2^28 bins (a 2 GiB allocation) in 1150 bytes.
        let oom = include_bytes!("../../fuzz/regressions/state_bytes-oom-hist-len.bin");
        assert!(selector_from_body(oom).is_err());
        // state_bytes: a pass-1 histogram of 512 bins; adding values indexed it by key.
        let b = include_bytes!("../../fuzz/regressions/state_bytes-short-pass1-histogram.bin");
        assert!(selector_from_body(b).is_err());
        // state_bytes: past pass 1 without pass-1 moments; finishing a pass expected them.
        let b = include_bytes!("../../fuzz/regressions/state_bytes-past-pass1-without-moments.bin");
        assert!(selector_from_body(b).is_err());
        // state_bytes: a count above i64::MAX made ranks_for's clamp panic.
        let b = include_bytes!("../../fuzz/regressions/state_bytes-huge-count-ranks.bin");
        use_decoded(b);
        assert!(!crate::stats::select::ranks_for(0.5, u64::MAX).is_empty());
        // state_bytes: a rank task with no ranks; finishing its pass indexed ranges[0].
        let b = include_bytes!("../../fuzz/regressions/state_bytes-rank-task-without-ranks.bin");
        use_decoded(b);
    }

    /// Every single-bit flip, every truncation and every appended byte of a framed state
    /// is refused (a CRC-32 detects all single-bit errors); a legacy unframed body says so.
    #[test]
    fn corrupt_frames_are_refused() {
        let v: Vec<f64> = (0..3000).map(|i| ((i * 31) % 97) as f64).collect();
        let mut s = Selector::new(&[0.25], &[1.0]).unwrap();
        s.update(&v);
        let mut ints = IntCounts::default();
        ints.add_one(3, 10);
        ints.add_one(-1, 2);
        let mut strs = StrCounts::default();
        strs.add_n(b"cat", 4);
        let sel = selector_to_bytes(&s);
        let cnt = counts_to_bytes(&ints, &strs, 16).unwrap();
        for (b, is_sel) in [(&sel, true), (&cnt, false)] {
            let ok = |x: &[u8]| {
                if is_sel {
                    selector_from_bytes(x).is_ok()
                } else {
                    counts_from_bytes(x).is_ok()
                }
            };
            assert!(ok(b));
            for bit in 0..b.len() * 8 {
                let mut c = b.clone();
                c[bit / 8] ^= 1 << (bit % 8);
                assert!(!ok(&c), "bit {bit} flipped was accepted");
            }
            for cut in 0..b.len() {
                assert!(!ok(&b[..cut]), "truncated to {cut} bytes was accepted");
            }
            let mut longer = b.clone();
            longer.push(0);
            assert!(!ok(&longer));
        }
        let e = selector_from_bytes(&selector_body(&s))
            .unwrap_err()
            .to_string();
        assert!(e.contains("older headstart"), "{e}");
    }

    /// A real state with many quantiles stays far inside the decode's bin budget.
    #[test]
    fn bin_budget_allows_real_states() {
        let qs: Vec<f64> = (1..100).map(|i| i as f64 / 100.0).collect();
        let mut s = Selector::new(&qs, &[1.0, 0.5]).unwrap();
        let vals: Vec<f64> = (0..200_000)
            .map(|i| ((i * 7919) % 100_003) as f64)
            .collect();
        s.update(&vals);
        s.finish_pass().unwrap();
        let b = selector_to_bytes(&s);
        assert_eq!(selector_to_bytes(&selector_from_bytes(&b).unwrap()), b);
    }
}
