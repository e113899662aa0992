//! `.npy` files: 1-D arrays, or one column of a 2-D C-order array.
//!
//! Read by position in blocks (`PosFile`), not memory-mapped: a file truncated during a
//! scan is an error, never a SIGBUS, and the resident set does not grow with the file
//! (the page cache holds it and serves later passes).

use rayon::prelude::*;

use super::{Missing, PosFile, Progress, ScanInfo};
use crate::error::{Error, Result};
use crate::parallel::pool;
use crate::stats::counts::IntCounts;
use crate::stats::select::{PassAcc, Selector};

/// Elements per parallel task. Fixed (not derived from the thread count) so the order
/// of float sums, and so the results, never depend on the number of threads. Each task
/// owns one pass accumulator (the pass-1 histogram is 8 MiB), so tasks are large.
const TASK: usize = 1 << 24;
/// Elements converted at a time inside a task (stays in cache).
const SUB: usize = 1 << 16;
/// Elements per parallel chunk of a class count.
const CHUNK: usize = 1 << 20;

/// Element types we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::I8 | Kind::U8 | Kind::Bool => 1,
            Kind::I16 | Kind::U16 => 2,
            Kind::F32 | Kind::I32 | Kind::U32 => 4,
            Kind::F64 | Kind::I64 | Kind::U64 => 8,
        }
    }
    /// Integer or bool labels (classification-ready).
    pub fn is_int(self) -> bool {
        !matches!(self, Kind::F32 | Kind::F64)
    }
}

/// An open `.npy` file.
pub struct Npy {
    pub path: String,
    file: PosFile,
    offset: usize,
    pub kind: Kind,
    big: bool,
    pub rows: usize,
    pub cols: usize,
    pub two_d: bool,
}

fn bad(path: &str, m: &str) -> Error {
    Error::Parse(format!("{path}: not a readable .npy file: {m}"))
}

fn dict_value<'a>(h: &'a str, key: &str) -> Option<&'a str> {
    let i = h.find(&format!("'{key}'"))?;
    let rest = &h[i + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

impl Npy {
    pub fn open(path: &str) -> Result<Npy> {
        let file = PosFile::open(path)?;
        let flen = file.len as usize;
        // The preamble, then the header it announces (at most the file's length).
        let mut map = Vec::new();
        file.read_into(0, flen.min(12), &mut map)?;
        if map.len() < 10 || &map[..6] != b"\x93NUMPY" {
            return Err(bad(path, "missing the \\x93NUMPY magic"));
        }
        let (hlen, start): (usize, usize) = match map[6] {
            1 => (u16::from_le_bytes([map[8], map[9]]) as usize, 10),
            2 | 3 => {
                if map.len() < 12 {
                    return Err(bad(path, "truncated header"));
                }
                (
                    u32::from_le_bytes([map[8], map[9], map[10], map[11]]) as usize,
                    12,
                )
            }
            v => return Err(bad(path, &format!("unsupported format version {v}"))),
        };
        let end = start
            .checked_add(hlen)
            .filter(|&e| e <= flen)
            .ok_or_else(|| bad(path, "truncated header"))?;
        file.read_into(0, end, &mut map)?;
        let h =
            std::str::from_utf8(&map[start..end]).map_err(|_| bad(path, "header is not text"))?;
        let descr = dict_value(h, "descr").ok_or_else(|| bad(path, "no 'descr' in header"))?;
        let descr = descr
            .trim_start_matches(['\'', '"'])
            .split(['\'', '"'])
            .next()
            .unwrap_or("");
        let (big, code) = match descr.as_bytes().first() {
            Some(b'>') => (true, &descr[1..]),
            Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
            _ => (false, descr),
        };
        let kind = match code {
            "f4" => Kind::F32,
            "f8" => Kind::F64,
            "i1" => Kind::I8,
            "i2" => Kind::I16,
            "i4" => Kind::I32,
            "i8" => Kind::I64,
            "u1" => Kind::U8,
            "u2" => Kind::U16,
            "u4" => Kind::U32,
            "u8" => Kind::U64,
            "b1" => Kind::Bool,
            other => {
                return Err(Error::Value(format!(
                    "{path}: unsupported .npy dtype {other:?} (expected float32/float64, an integer or bool type)"
                )))
            }
        };
        let fortran = dict_value(h, "fortran_order")
            .map(|v| v.starts_with("True"))
            .unwrap_or(false);
        let shape_s = dict_value(h, "shape").ok_or_else(|| bad(path, "no 'shape' in header"))?;
        let inner = shape_s
            .strip_prefix('(')
            .and_then(|s| s.split(')').next())
            .ok_or_else(|| bad(path, "malformed shape"))?;
        let dims: Vec<usize> = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('L').parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad(path, "malformed shape"))?;
        let (rows, cols, two_d) = match dims.as_slice() {
            [] => (1, 1, false),
            [n] => (*n, 1, false),
            [n, k] => (*n, *k, true),
            _ => {
                return Err(Error::Shape(format!(
                    "{path}: expected a 1-D or 2-D array, got shape {dims:?}"
                )))
            }
        };
        if fortran && two_d && cols > 1 && rows > 1 {
            return Err(Error::Value(format!(
                "{path}: Fortran-ordered 2-D arrays are not supported; save with np.ascontiguousarray"
            )));
        }
        let need = rows
            .checked_mul(cols)
            .and_then(|x| x.checked_mul(kind.size()))
            .and_then(|x| x.checked_add(end))
            .ok_or_else(|| bad(path, "shape too large"))?;
        if flen < need {
            return Err(bad(
                path,
                &format!("file has {flen} bytes, the header promises {need}"),
            ));
        }
        Ok(Npy {
            path: path.to_owned(),
            file,
            offset: end,
            kind,
            big,
            rows,
            cols,
            two_d,
        })
    }

    /// Values of column `col` for rows [r0, r1), as f64 (read by position: an error if
    /// the file no longer holds them).
    fn read(&self, col: usize, r0: usize, r1: usize, out: &mut Vec<f64>) -> Result<()> {
        out.clear();
        if r1 <= r0 {
            return Ok(());
        }
        let sz = self.kind.size();
        let stride = self.cols * sz;
        // At most READ_BLOCK bytes a read (a wide 2-D array's rows hold other columns).
        let per = (super::READ_BLOCK / stride).max(1);
        let mut r = r0;
        while r < r1 {
            let re = (r + per).min(r1);
            // from the column's first byte in row r to its last byte in row re - 1
            let pos = (self.offset + r * stride + col * sz) as u64;
            let span = (re - r - 1) * stride + sz;
            self.file
                .with_bytes(pos, span, |bytes| self.convert(bytes, re - r, out))?;
            r = re;
        }
        Ok(())
    }

    /// `rows` values at stride `cols * size` from the start of `bytes`, appended as f64.
    fn convert(&self, bytes: &[u8], rows: usize, out: &mut Vec<f64>) {
        let sz = self.kind.size();
        let stride = self.cols * sz;
        let big = self.big;
        macro_rules! conv {
            ($t:ty, $n:expr) => {{
                if stride == $n {
                    // Contiguous: a straight conversion loop the compiler vectorises.
                    let bytes = &bytes[..rows * $n];
                    if !big && cfg!(target_endian = "little") {
                        // Host order: unaligned loads, a loop the compiler vectorises
                        // (the byte-array conversion below stayed scalar).
                        let p = bytes.as_ptr().cast::<$t>();
                        let n = bytes.len() / $n;
                        // SAFETY: elements 0..n lie inside `bytes`; read_unaligned
                        // needs no alignment, and every bit pattern is a valid $t.
                        out.extend((0..n).map(|i| unsafe { p.add(i).read_unaligned() } as f64));
                    } else if big {
                        out.extend(
                            bytes.chunks_exact($n).map(|b| {
                                <$t>::from_be_bytes(b.try_into().unwrap_or([0; $n])) as f64
                            }),
                        );
                    } else {
                        out.extend(
                            bytes.chunks_exact($n).map(|b| {
                                <$t>::from_le_bytes(b.try_into().unwrap_or([0; $n])) as f64
                            }),
                        );
                    }
                } else {
                    for r in 0..rows {
                        let p = r * stride;
                        let mut b = [0u8; $n];
                        b.copy_from_slice(&bytes[p..p + $n]);
                        let v = if big {
                            <$t>::from_be_bytes(b)
                        } else {
                            <$t>::from_le_bytes(b)
                        };
                        out.push(v as f64);
                    }
                }
            }};
        }
        match self.kind {
            Kind::F32 => conv!(f32, 4),
            Kind::F64 => conv!(f64, 8),
            Kind::I8 => conv!(i8, 1),
            Kind::I16 => conv!(i16, 2),
            Kind::I32 => conv!(i32, 4),
            Kind::I64 => conv!(i64, 8),
            Kind::U8 => conv!(u8, 1),
            Kind::U16 => conv!(u16, 2),
            Kind::U32 => conv!(u32, 4),
            Kind::U64 => conv!(u64, 8),
            Kind::Bool => conv!(u8, 1),
        }
    }

    fn check_col(&self, col: usize) -> Result<()> {
        if col >= self.cols {
            return Err(Error::Value(format!(
                "{}: column {col} is out of range for an array with {} columns",
                self.path, self.cols
            )));
        }
        Ok(())
    }

    /// Run every pass of `sel` over column `col`.
    pub fn scan_regression(
        &self,
        col: usize,
        missing: Missing,
        sel: &mut Selector,
        prog: &mut dyn Progress,
    ) -> Result<ScanInfo> {
        self.check_col(col)?;
        let pool = pool()?;
        let threads = pool.current_num_threads().max(1);
        let mut info = ScanInfo {
            records: self.rows as u64,
            bytes: (self.rows * self.cols * self.kind.size()) as u64,
            ..Default::default()
        };
        let tasks: Vec<usize> = (0..self.rows).step_by(TASK).collect();
        loop {
            info.passes += 1;
            let pass = info.passes;
            let mut skipped = 0u64;
            for batch in tasks.chunks(threads) {
                let plan = &sel.plan;
                let parts: Vec<Result<(PassAcc, u64)>> = pool.install(|| {
                    batch
                        .par_iter()
                        .map(|&s| {
                            let e = (s + TASK).min(self.rows);
                            let mut acc = PassAcc::new(plan);
                            let mut v = Vec::with_capacity(SUB);
                            let mut sk = 0u64;
                            let mut r = s;
                            while r < e {
                                let re = (r + SUB).min(e);
                                self.read(col, r, re, &mut v)?;
                                // A branch-free test first (it vectorises); the
                                // position only when some value is not finite.
                                let bad = v.iter().fold(false, |b, x| b | !x.is_finite());
                                if let Some(i) = bad
                                    .then(|| v.iter().position(|x| !x.is_finite()))
                                    .flatten()
                                {
                                    if missing == Missing::Raise {
                                        return Err(Error::Parse(format!(
                                            "{}: {} at index {} (pass nan='skip' to skip NaN and infinite values)",
                                            self.path,
                                            if v[i].is_nan() { "NaN".to_string() } else { format!("non-finite value {}", v[i]) },
                                            r + i
                                        )));
                                    }
                                    let before = v.len();
                                    v.retain(|x| x.is_finite());
                                    sk += (before - v.len()) as u64;
                                }
                                acc.add(plan, &v);
                                r = re;
                            }
                            Ok((acc, sk))
                        })
                        .collect()
                });
                for p in parts {
                    let (a, sk) = p?;
                    sel.acc.merge(&a);
                    skipped += sk;
                }
                let done = batch.last().map_or(0, |&s| (s + TASK).min(self.rows));
                prog.report(pass, done as u64, self.rows as u64)?;
            }
            if pass == 1 {
                info.skipped = skipped;
            }
            if !sel.finish_pass()? {
                break;
            }
        }
        Ok(info)
    }

    /// Counts of the integer labels of column `col`.
    pub fn scan_int_classes(&self, col: usize, prog: &mut dyn Progress) -> Result<IntCounts> {
        self.check_col(col)?;
        if !self.kind.is_int() {
            return Err(Error::Value(format!(
                "{}: class labels must be integers, the array holds {:?}",
                self.path, self.kind
            )));
        }
        let pool = pool()?;
        let starts: Vec<usize> = (0..self.rows).step_by(CHUNK).collect();
        let mut total = IntCounts::default();
        for batch in starts.chunks(2 * pool.current_num_threads().max(1)) {
            let parts: Vec<Result<IntCounts>> = pool.install(|| {
                batch
                    .par_iter()
                    .map(|&s| {
                        let e = (s + CHUNK).min(self.rows);
                        let mut v = Vec::with_capacity(e - s);
                        self.read(col, s, e, &mut v)?;
                        let mut c = IntCounts::default();
                        for (i, x) in v.into_iter().enumerate() {
                            if x.abs() >= 9_007_199_254_740_992.0 {
                                return Err(Error::Value(format!(
                                    "{}: class label {x} at index {} is too large (|label| >= 2^53)",
                                    self.path,
                                    s + i
                                )));
                            }
                            c.add_one(x as i64, 1);
                        }
                        Ok(c)
                    })
                    .collect()
            });
            for p in parts {
                total.merge(&p?);
            }
            let done = batch.last().map_or(0, |&s| (s + CHUNK).min(self.rows));
            prog.report(1, done as u64, self.rows as u64)?;
        }
        Ok(total)
    }
}
