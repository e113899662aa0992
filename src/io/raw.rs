//! Raw binary files of integer ids: a flat little-endian array (nanoGPT's `train.bin` of
//! uint16 tokens), or llm.c's token files, whose 1024-byte header is 256 int32: magic,
//! version, token count (gpt-2: magic 20240520, version 1, uint16 tokens; llama-3: magic
//! 20240801, version 7, uint32 tokens).
//!
//! The statistics of such a file are class counts (the unigram prior of a language model,
//! an item-popularity prior). Read by position in blocks (`PosFile`: a file truncated
//! during the scan is an error, never a SIGBUS) and counted in fixed-size tasks on the
//! pool; counts are integers merged by addition, so the result is the same for any thread
//! count. The page cache, not the process, holds the file.
//!
//! Why this inner loop: a Zipf-distributed token stream repeats its top tokens every few
//! elements, and one histogram then serialises on store-to-load forwarding of the same
//! counter; four counters per value (element i goes to counter i mod 4) break that chain.
//! The four counters of a value sit side by side (4 v + k), so a hot token's counters share
//! one cache line: on 500M Zipf tokens (one thread, in memory) four separate histograms
//! took 0.94 ns a token, side by side 0.70 ns, and bounds-checked byte assembly 1.3 ns.
//! 32-bit counters keep the uint16 table at 1 MiB; a task holds fewer than 2^32 elements,
//! so they cannot overflow before the task's merge into u64.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::{PosFile, Progress, READ_BLOCK};
use crate::error::{Error, Result};
use crate::parallel::pool;
use crate::stats::counts::IntCounts;

/// Elements per parallel task (fixed: not derived from the thread count).
const TASK: usize = 1 << 22;
/// The header of llm.c's token files, in bytes.
pub const LLMC_HEADER: usize = 1024;
/// llm.c's (magic, version, element type) pairs.
const LLMC: [(i32, i32, RawDtype); 2] =
    [(20240520, 1, RawDtype::U16), (20240801, 7, RawDtype::U32)];
/// Ids below this are counted in a dense vector (32/64-bit ids), the rest in a hash map.
const DENSE_IDS: i64 = 1 << 20;

/// Element types of raw files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawDtype {
    U8,
    U16,
    U32,
    I32,
    I64,
}

impl RawDtype {
    pub fn parse(s: &str) -> Result<RawDtype> {
        Ok(match s {
            "uint8" | "u1" => RawDtype::U8,
            "uint16" | "u2" => RawDtype::U16,
            "uint32" | "u4" => RawDtype::U32,
            "int32" | "i4" => RawDtype::I32,
            "int64" | "i8" => RawDtype::I64,
            _ => {
                return Err(Error::Value(format!(
                    "raw files hold uint8, uint16, uint32, int32 or int64 values, not {s:?}"
                )))
            }
        })
    }

    pub fn size(self) -> usize {
        match self {
            RawDtype::U8 => 1,
            RawDtype::U16 => 2,
            RawDtype::U32 | RawDtype::I32 => 4,
            RawDtype::I64 => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RawDtype::U8 => "uint8",
            RawDtype::U16 => "uint16",
            RawDtype::U32 => "uint32",
            RawDtype::I32 => "int32",
            RawDtype::I64 => "int64",
        }
    }
}

/// Whether a file starts with llm.c's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderRule {
    /// Recognise it by its magic number (and check it), else headerless.
    Auto,
    /// Require it.
    Llmc,
    /// None: the file is values from its first byte.
    None,
}

impl HeaderRule {
    pub fn parse(s: &str) -> Result<HeaderRule> {
        Ok(match s {
            "auto" => HeaderRule::Auto,
            "llmc" => HeaderRule::Llmc,
            "none" => HeaderRule::None,
            _ => {
                return Err(Error::Value(format!(
                    "the raw header rule is 'auto', 'llmc' or 'none', not {s:?}"
                )))
            }
        })
    }
}

/// An open raw file.
pub struct RawFile {
    pub path: String,
    file: PosFile,
    /// Bytes before the first value.
    pub offset: usize,
    pub dtype: RawDtype,
    /// Values in the file.
    pub n: usize,
    /// llm.c's (magic, version), when the file has its header.
    pub llmc: Option<(i32, i32)>,
}

fn le_i32(b: &[u8], i: usize) -> i32 {
    i32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

impl RawFile {
    /// Open `path`; `dtype` may be None only when the file has llm.c's header.
    pub fn open(path: &str, dtype: Option<RawDtype>, rule: HeaderRule) -> Result<RawFile> {
        let file = PosFile::open(path)?;
        let len = file.len as usize;
        let mut map = Vec::new();
        file.read_into(0, len.min(LLMC_HEADER), &mut map)?;
        let magic = (map.len() >= LLMC_HEADER).then(|| le_i32(&map, 0));
        let known = magic.and_then(|m| LLMC.iter().find(|(mm, _, _)| *mm == m));
        let use_header = match rule {
            HeaderRule::None => false,
            HeaderRule::Llmc => true,
            HeaderRule::Auto => known.is_some(),
        };
        if !use_header {
            let dtype = dtype.ok_or_else(|| {
                Error::Value(format!(
                    "{path}: a raw binary file without llm.c's header needs its element \
                     type: dtype= (--label-dtype) uint8, uint16, uint32, int32 or int64 \
                     (nanoGPT's train.bin is uint16)"
                ))
            })?;
            if !len.is_multiple_of(dtype.size()) {
                return Err(Error::Value(format!(
                    "{path}: {len} bytes is not a whole number of {} values ({} bytes each): \
                     a different dtype, or a header?",
                    dtype.name(),
                    dtype.size()
                )));
            }
            return Ok(RawFile {
                path: path.to_owned(),
                file,
                offset: 0,
                dtype,
                n: len / dtype.size(),
                llmc: None,
            });
        }
        let Some(&(m, version, hdt)) = known else {
            return Err(Error::Value(format!(
                "{path}: no llm.c header (its first int32 is {}, expected 20240520 or \
                 20240801)",
                magic.map_or("missing".into(), |m| m.to_string())
            )));
        };
        let ver = le_i32(&map, 1);
        if ver != version {
            return Err(Error::Value(format!(
                "{path}: llm.c header with magic {m} has version {ver}, expected {version}"
            )));
        }
        if let Some(d) = dtype {
            if d != hdt {
                return Err(Error::Value(format!(
                    "{path}: the llm.c header (magic {m}, version {ver}) says {} tokens, but \
                     dtype {} was given",
                    hdt.name(),
                    d.name()
                )));
            }
        }
        let count = le_i32(&map, 2);
        let body = len - LLMC_HEADER;
        if count < 0 || (count as usize).checked_mul(hdt.size()) != Some(body) {
            return Err(Error::Value(format!(
                "{path}: the llm.c header promises {count} {} tokens ({} bytes) but {body} \
                 bytes follow it (a truncated or appended file)",
                hdt.name(),
                (count as i64) * hdt.size() as i64
            )));
        }
        Ok(RawFile {
            path: path.to_owned(),
            file,
            offset: LLMC_HEADER,
            dtype: hdt,
            n: count as usize,
            llmc: Some((m, ver)),
        })
    }

    /// What the file is, for reports: "uint16 tokens" or "uint16 tokens (llm.c header
    /// v1, 12345 tokens)".
    pub fn describe(&self) -> String {
        match self.llmc {
            None => format!("{} values, no header", self.dtype.name()),
            Some((m, v)) => format!(
                "{} tokens, llm.c header (magic {m}, version {v}, {} tokens)",
                self.dtype.name(),
                self.n
            ),
        }
    }

    /// Counts of values [e0, e1), read by position in blocks of at most `READ_BLOCK` bytes.
    fn count_range(&self, e0: usize, e1: usize) -> Result<TaskCounts> {
        let sz = self.dtype.size();
        let per = READ_BLOCK / sz;
        let mut acc: Option<TaskCounts> = None;
        let mut s = e0;
        while s < e1 {
            let e = (s + per).min(e1);
            let pos = (self.offset + s * sz) as u64;
            let c = self
                .file
                .with_bytes(pos, (e - s) * sz, |b| count_task(self.dtype, b))?;
            match acc.as_mut() {
                None => acc = Some(c),
                Some(a) => a.absorb(c),
            }
            s = e;
        }
        Ok(acc.unwrap_or(TaskCounts {
            dense: Vec::new(),
            sparse: FxHashMap::default(),
        }))
    }

    /// Counts of every value.
    pub fn count(&self, prog: &mut dyn Progress) -> Result<IntCounts> {
        let pool = pool()?;
        let starts: Vec<usize> = (0..self.n).step_by(TASK).collect();
        let mut total = IntCounts::default();
        for batch in starts.chunks(2 * pool.current_num_threads().max(1)) {
            let parts: Vec<Result<TaskCounts>> = pool.install(|| {
                batch
                    .par_iter()
                    .map(|&s| self.count_range(s, (s + TASK).min(self.n)))
                    .collect()
            });
            for p in parts {
                p?.add_to(&mut total);
            }
            let done = batch.last().map_or(0, |&s| (s + TASK).min(self.n));
            prog.report(1, done as u64, self.n as u64)?;
        }
        Ok(total)
    }
}

/// One task's counts: a dense histogram of small ids and a map of the rest.
struct TaskCounts {
    dense: Vec<u64>,
    sparse: FxHashMap<i64, u64>,
}

impl TaskCounts {
    /// Add another block's counts to these.
    fn absorb(&mut self, o: TaskCounts) {
        if o.dense.len() > self.dense.len() {
            self.dense.resize(o.dense.len(), 0);
        }
        for (a, b) in self.dense.iter_mut().zip(&o.dense) {
            *a += b;
        }
        for (y, n) in o.sparse {
            *self.sparse.entry(y).or_insert(0) += n;
        }
    }

    fn add_to(&self, total: &mut IntCounts) {
        for (i, &n) in self.dense.iter().enumerate() {
            if n > 0 {
                total.add_one(i as i64, n);
            }
        }
        for (&y, &n) in &self.sparse {
            total.add_one(y, n);
        }
    }
}

/// Four interleaved u32 histograms of `bins` bins over values `f(i)` (all < bins), summed:
/// counter k of value v at 4 v + k, element i counted by counter i mod 4.
#[inline(always)]
fn hist4(n: usize, bins: usize, f: impl Fn(usize) -> usize) -> Vec<u64> {
    let mut h = vec![0u32; 4 * bins];
    let quads = n / 4;
    for q in 0..quads {
        let i = 4 * q;
        h[f(i) << 2] += 1;
        h[(f(i + 1) << 2) | 1] += 1;
        h[(f(i + 2) << 2) | 2] += 1;
        h[(f(i + 3) << 2) | 3] += 1;
    }
    for i in 4 * quads..n {
        h[f(i) << 2] += 1;
    }
    h.chunks_exact(4)
        .map(|c| c.iter().map(|&x| x as u64).sum())
        .collect()
}

/// The uint16 histogram (token files): the bytes read as u16 in place on little-endian
/// hosts, four fixed-size sub-histograms indexed by u16 (no bounds checks: the index type
/// fits the array), one loop over groups of four values.
fn hist_u16(b: &[u8]) -> Vec<u64> {
    const BINS: usize = 1 << 16;
    // SAFETY: every bit pattern is a valid u16; align_to only splits off an unaligned
    // head and tail, which the generic path below counts.
    let (head, words, tail) = unsafe { b.align_to::<u16>() };
    if !cfg!(target_endian = "little") || !head.is_empty() || !tail.is_empty() {
        return hist4(b.len() / 2, BINS, |i| {
            u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as usize
        });
    }
    // Counter k of value v at 4 v + k: the four counters of a hot token share a cache
    // line, and the index (u16 << 2 | k) is below the length by construction.
    let mut h = vec![0u32; 4 * BINS];
    let h: &mut [u32; 4 * BINS] = h.as_mut_slice().try_into().expect("4 * BINS counters");
    let mut quads = words.chunks_exact(4);
    for q in &mut quads {
        h[(q[0] as usize) << 2] += 1;
        h[((q[1] as usize) << 2) | 1] += 1;
        h[((q[2] as usize) << 2) | 2] += 1;
        h[((q[3] as usize) << 2) | 3] += 1;
    }
    for &w in quads.remainder() {
        h[(w as usize) << 2] += 1;
    }
    h.chunks_exact(4)
        .map(|c| c.iter().map(|&x| x as u64).sum())
        .collect()
}

fn count_task(dtype: RawDtype, b: &[u8]) -> TaskCounts {
    let sparse = FxHashMap::default();
    match dtype {
        RawDtype::U8 => TaskCounts {
            dense: hist4(b.len(), 256, |i| b[i] as usize),
            sparse,
        },
        RawDtype::U16 => TaskCounts {
            dense: hist_u16(b),
            sparse,
        },
        RawDtype::U32 => wide(
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64),
        ),
        RawDtype::I32 => wide(
            b.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64),
        ),
        RawDtype::I64 => wide(
            b.chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        ),
    }
}

/// 32/64-bit ids: dense below `DENSE_IDS` (grown to the largest small id seen, never by
/// the largest id), a hash map above it and for negative ids.
fn wide(ids: impl Iterator<Item = i64>) -> TaskCounts {
    let mut dense: Vec<u64> = Vec::new();
    let mut sparse: FxHashMap<i64, u64> = FxHashMap::default();
    for y in ids {
        if (0..DENSE_IDS).contains(&y) {
            let i = y as usize;
            if i >= dense.len() {
                dense.resize((i + 1).next_power_of_two().max(1024), 0);
            }
            dense[i] += 1;
        } else {
            *sparse.entry(y).or_insert(0) += 1;
        }
    }
    TaskCounts { dense, sparse }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::NoProgress;
    use std::collections::BTreeMap;
    use std::io::Write;

    fn write(name: &str, bytes: &[u8]) -> String {
        let dir = std::env::temp_dir().join(format!("headstart-raw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn naive(vals: &[i64]) -> Vec<(i64, u64)> {
        let mut m = BTreeMap::new();
        for &v in vals {
            *m.entry(v).or_insert(0u64) += 1;
        }
        m.into_iter().collect()
    }

    fn lcg(n: usize, seed: u64, f: impl Fn(u64) -> i64) -> Vec<i64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                f(s >> 11)
            })
            .collect()
    }

    fn encode(d: RawDtype, v: &[i64]) -> Vec<u8> {
        v.iter()
            .flat_map(|&x| match d {
                RawDtype::U8 => vec![x as u8],
                RawDtype::U16 => (x as u16).to_le_bytes().to_vec(),
                RawDtype::U32 => (x as u32).to_le_bytes().to_vec(),
                RawDtype::I32 => (x as i32).to_le_bytes().to_vec(),
                RawDtype::I64 => x.to_le_bytes().to_vec(),
            })
            .collect()
    }

    #[test]
    fn counts_every_dtype_and_length() {
        type Gen = fn(u64) -> i64;
        let kinds: [(RawDtype, Gen); 5] = [
            (RawDtype::U8, |s| (s % 256) as i64),
            (RawDtype::U16, |s| (s % 50257) as i64),
            (RawDtype::U32, |s| (s % 3_000_000) as i64),
            (RawDtype::I32, |s| (s % 4_000_000) as i64 - 2_000_000),
            (RawDtype::I64, |s| (s as i64) << 10),
        ];
        for (d, f) in kinds {
            for n in [0usize, 1, 3, 4, 5, 7, 1000, 4097, TASK + 13] {
                let v = lcg(n, n as u64 + 1, f);
                let p = write(&format!("{}-{n}.bin", d.name()), &encode(d, &v));
                let r = RawFile::open(&p, Some(d), HeaderRule::Auto).unwrap();
                assert_eq!(r.n, n);
                let c = r.count(&mut NoProgress).unwrap();
                assert_eq!(c.sorted(), naive(&v), "{} n={n}", d.name());
            }
        }
    }

    #[test]
    fn thread_count_does_not_change_counts() {
        let v = lcg(3 * TASK + 5, 9, |s| (s % 60000) as i64);
        let p = write("threads.bin", &encode(RawDtype::U16, &v));
        let r = RawFile::open(&p, Some(RawDtype::U16), HeaderRule::None).unwrap();
        crate::parallel::set_num_threads(1).unwrap();
        let one = r.count(&mut NoProgress).unwrap();
        crate::parallel::set_num_threads(3).unwrap();
        let three = r.count(&mut NoProgress).unwrap();
        crate::parallel::set_num_threads(0).unwrap();
        assert_eq!(one, three);
        assert_eq!(one.sorted(), naive(&v));
    }

    fn llmc(magic: i32, version: i32, count: i32, body: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; LLMC_HEADER];
        for (i, x) in [magic, version, count].iter().enumerate() {
            h[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
        }
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn llmc_header_is_recognised_and_checked() {
        let v = lcg(5000, 3, |s| (s % 50257) as i64);
        let body = encode(RawDtype::U16, &v);
        let p = write("llmc.bin", &llmc(20240520, 1, 5000, &body));
        let r = RawFile::open(&p, None, HeaderRule::Auto).unwrap();
        assert_eq!(
            (r.dtype, r.n, r.offset, r.llmc),
            (RawDtype::U16, 5000, 1024, Some((20240520, 1)))
        );
        assert_eq!(r.count(&mut NoProgress).unwrap().sorted(), naive(&v));
        let v32 = lcg(100, 4, |s| (s % 128256) as i64);
        let p = write(
            "llama.bin",
            &llmc(20240801, 7, 100, &encode(RawDtype::U32, &v32)),
        );
        let r = RawFile::open(&p, None, HeaderRule::Llmc).unwrap();
        assert_eq!(r.count(&mut NoProgress).unwrap().sorted(), naive(&v32));
        let bad = |name: &str, bytes: Vec<u8>, d: Option<RawDtype>, rule, msg: &str| {
            let p = write(name, &bytes);
            let e = RawFile::open(&p, d, rule).err().expect(name).to_string();
            assert!(e.contains(msg), "{name}: {e}");
        };
        bad(
            "ver.bin",
            llmc(20240520, 2, 5000, &body),
            None,
            HeaderRule::Auto,
            "version 2",
        );
        bad(
            "count.bin",
            llmc(20240520, 1, 4999, &body),
            None,
            HeaderRule::Auto,
            "promises 4999",
        );
        bad(
            "dt.bin",
            llmc(20240520, 1, 5000, &body),
            Some(RawDtype::U32),
            HeaderRule::Auto,
            "says uint16",
        );
        bad(
            "nohdr.bin",
            body.clone(),
            None,
            HeaderRule::Llmc,
            "no llm.c header",
        );
        bad(
            "nodtype.bin",
            body.clone(),
            None,
            HeaderRule::Auto,
            "needs its element type",
        );
        bad(
            "odd.bin",
            vec![0u8; 7],
            Some(RawDtype::U16),
            HeaderRule::Auto,
            "7 bytes is not a whole number",
        );
        // rule "none": the header's bytes are values
        let p = write("asis.bin", &llmc(20240520, 1, 5000, &body));
        let r = RawFile::open(&p, Some(RawDtype::U16), HeaderRule::None).unwrap();
        assert_eq!(r.n, 5000 + 512);
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use crate::io::NoProgress;

    /// `HEADSTART_RAW_BENCH=path cargo test --release raw_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn raw_speed() {
        let Ok(p) = std::env::var("HEADSTART_RAW_BENCH") else {
            return;
        };
        let r = RawFile::open(&p, Some(RawDtype::U16), HeaderRule::None).unwrap();
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let c = r.count(&mut NoProgress).unwrap();
            println!(
                "count {:.3} s ({} total)",
                t.elapsed().as_secs_f64(),
                c.total()
            );
        }
        let bytes = std::fs::read(&p).unwrap();
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let n: usize = bytes
                .chunks(2 * TASK)
                .map(|b| count_task(RawDtype::U16, b).dense.len())
                .sum();
            println!(
                "kernel on memory, 1 thread {:.3} s ({n})",
                t.elapsed().as_secs_f64()
            );
        }
    }
}
