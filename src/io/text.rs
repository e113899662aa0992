//! Delimited and one-value-per-line text, plain or gzip: blocks, fields, scans.

use std::fs::File;
use std::io::{BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use rayon::prelude::*;

use super::{parse_err, Column, Missing, Progress, ScanInfo};
use crate::error::{Error, Result};
use crate::parallel::pool;
use crate::stats::counts::StrCounts;
use crate::stats::select::{Hist1Shards, Selector, Speculation};

/// Target block size: large enough to amortise per-block work (a pass-1 histogram is
/// 8 MiB), small enough that a batch of blocks per thread stays under ~100 MiB.
const BLOCK: usize = 8 << 20;
/// A record longer than this is an error rather than unbounded memory.
pub const MAX_RECORD: usize = 64 << 20;

/// Options of a text scan.
#[derive(Clone, Debug)]
pub struct TextOpts {
    /// Field delimiter; None = one value per line (the whole line is the value).
    pub delimiter: Option<u8>,
    /// The first line is a header.
    pub header: bool,
    pub column: Column,
    pub missing: Missing,
    /// The file is gzip-compressed.
    pub gz: bool,
}

/// A run of whole records.
struct Block {
    data: Vec<u8>,
    /// Line number (1-based) of the block's first byte.
    line: u64,
    quoted: bool,
}

fn open(path: &str, gz: bool) -> Result<Box<dyn Read + Send>> {
    let f = File::open(path).map_err(|e| Error::io(path, &e))?;
    Ok(if gz {
        let mut b = BufReader::with_capacity(1 << 20, f);
        // Peek at the magic: a plain file named .gz is "not gzip", not "unexpected end".
        let head = std::io::BufRead::fill_buf(&mut b).map_err(|e| Error::io(path, &e))?;
        if !head.is_empty() && !head.starts_with(&[0x1f, 0x8b]) {
            return Err(Error::Io(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{path}: invalid gzip header: the name ends in .gz but the file is not \
                     gzip-compressed (it does not start with the gzip magic bytes 1f 8b); \
                     decompress it or rename it"
                ),
            ));
        }
        Box::new(flate2::read::MultiGzDecoder::new(b))
    } else {
        Box::new(f)
    })
}

fn read_some(r: &mut dyn Read, buf: &mut Vec<u8>, want: usize, path: &str) -> Result<usize> {
    buf.reserve(want);
    // Into the spare capacity without zeroing it first: a File reads straight into it
    // (`read_buf`); the old `resize(.., 0)` + `read` zeroed 8 MiB per block. EINTR is
    // retried inside; on an error the bytes read so far stay, as before.
    r.take(want as u64)
        .read_to_end(buf)
        .map_err(|e| Error::io(path, &e))
}

/// Old-Mac text (records ended by CR alone) is read as if each CR were a newline. It is
/// recognised from the first read: a CR and no LF in it. A LF met later in such a file
/// is an error (mixed line endings), never a silent guess.
struct CrOnly {
    on: bool,
    /// Bytes before the current read (for the error's position).
    seen: u64,
}

impl CrOnly {
    fn detect(prefix: &[u8]) -> CrOnly {
        let on = memchr::memchr(b'\n', prefix).is_none() && memchr::memchr(b'\r', prefix).is_some();
        CrOnly { on, seen: 0 }
    }

    /// Translate the bytes `buf[from..]` just read.
    fn fix(&mut self, buf: &mut [u8], from: usize, path: &str) -> Result<()> {
        if self.on {
            let new = &mut buf[from..];
            if let Some(i) = memchr::memchr(b'\n', new) {
                let at = self.seen + i as u64;
                return Err(Error::Parse(format!(
                    "{path}: mixed line endings: the file starts with old-Mac CR-only line \
                     endings but has a LF at byte {at}; convert it (e.g. `tr '\\r' '\\n'`)"
                )));
            }
            for b in new.iter_mut() {
                if *b == b'\r' {
                    *b = b'\n';
                }
            }
            self.seen += new.len() as u64;
        }
        Ok(())
    }
}

/// Newlines in `data` (a plain byte compare-and-count that LLVM vectorises).
fn count_newlines(data: &[u8]) -> u64 {
    // Byte sums over runs of 255 cannot overflow a u8 and vectorise to byte compares.
    let mut n = 0u64;
    for c in data.chunks(255) {
        n += c.iter().map(|&b| (b == b'\n') as u8).sum::<u8>() as u64;
    }
    n
}

/// Cuts a byte stream into blocks of whole records (newline outside quotes).
struct Cutter {
    pending: Vec<u8>,
    scanned: usize,
    in_quote: bool,
    quotes: bool,
    /// Index of the last newline outside quotes in `pending`, and newlines up to it.
    last_nl: Option<usize>,
    nl_to_last: u64,
    nl_total: u64,
    line: u64,
    quote_char: Option<u8>,
    /// Line where the quote that is still open was opened.
    open_line: u64,
}

impl Cutter {
    fn scan(&mut self) {
        let start = self.scanned;
        let data = &self.pending[start..];
        // Most files have no quote at all: then one vectorised newline count and a
        // reverse search do; only data with quotes walks quote and newline positions.
        let quoted = match self.quote_char {
            Some(q) => self.in_quote || memchr::memchr(q, data).is_some(),
            None => false,
        };
        if let (true, Some(q)) = (quoted, self.quote_char) {
            self.quotes = true;
            for i in memchr::memchr2_iter(q, b'\n', data) {
                if data[i] == q {
                    self.in_quote = !self.in_quote;
                    if self.in_quote {
                        self.open_line = self.line + self.nl_total;
                    }
                } else {
                    self.nl_total += 1;
                    if !self.in_quote {
                        self.last_nl = Some(start + i);
                        self.nl_to_last = self.nl_total;
                    }
                }
            }
        } else if let Some(i) = memchr::memrchr(b'\n', data) {
            self.nl_total += count_newlines(data);
            self.last_nl = Some(start + i);
            self.nl_to_last = self.nl_total;
        }
        self.scanned = self.pending.len();
    }

    /// Take the block up to the last record boundary.
    fn take(&mut self) -> Option<Block> {
        let end = self.last_nl? + 1;
        let rest = self.pending.split_off(end);
        let data = std::mem::replace(&mut self.pending, rest);
        let b = Block {
            data,
            line: self.line,
            quoted: self.quotes,
        };
        self.line += self.nl_to_last;
        self.nl_total = 0;
        self.nl_to_last = 0;
        self.last_nl = None;
        self.scanned = 0;
        self.quotes = false;
        self.in_quote = false;
        // Re-scan the tail (it is short: less than one record plus a read).
        self.scan();
        Some(b)
    }
}

/// The header record (when asked for), the channel of blocks, the reader thread.
type Reader = (Option<Vec<u8>>, Receiver<Result<Block>>, JoinHandle<()>);

/// Start the reader thread. Returns the header record (without its newline) when asked
/// for, and the channel of blocks.
fn spawn_reader(path: &str, opts: &TextOpts) -> Result<Reader> {
    let mut r = open(path, opts.gz)?;
    let quote_char = opts.delimiter.map(|_| b'"');
    let mut c = Cutter {
        pending: Vec::with_capacity(BLOCK + (1 << 16)),
        scanned: 0,
        in_quote: false,
        quotes: false,
        last_nl: None,
        nl_to_last: 0,
        nl_total: 0,
        line: 1,
        quote_char,
        open_line: 1,
    };
    // BOM and header, read synchronously so errors in them surface here.
    let mut eof = read_some(&mut r, &mut c.pending, 1 << 16, path)? == 0;
    if c.pending.starts_with(b"\xEF\xBB\xBF") {
        c.pending.drain(..3);
    }
    let mut cr = CrOnly::detect(&c.pending);
    cr.fix(&mut c.pending, 0, path)?;
    // Every later read goes through `more`: one place that translates CR-only text.
    let more = move |r: &mut Box<dyn Read + Send>, buf: &mut Vec<u8>, want: usize, path: &str| {
        let from = buf.len();
        let got = read_some(r, buf, want, path)?;
        cr.fix(buf, from, path)?;
        Ok::<usize, Error>(got)
    };
    let mut more = more;
    let mut header = None;
    if opts.header {
        loop {
            c.scan();
            if c.last_nl.is_some() || eof {
                break;
            }
            if c.pending.len() > MAX_RECORD {
                return Err(parse_err(
                    path,
                    1,
                    1,
                    "the header is longer than 64 MiB".into(),
                ));
            }
            eof = more(&mut r, &mut c.pending, 1 << 20, path)? == 0;
        }
        // The first newline outside quotes ends the header.
        let mut inq = false;
        let mut end = c.pending.len();
        for (i, &b) in c.pending.iter().enumerate() {
            if Some(b) == quote_char {
                inq = !inq;
            } else if b == b'\n' && !inq {
                end = i;
                break;
            }
        }
        let mut h: Vec<u8> = c.pending.drain(..(end + 1).min(c.pending.len())).collect();
        let lines = h.iter().filter(|&&b| b == b'\n').count() as u64;
        while h.last() == Some(&b'\n') || h.last() == Some(&b'\r') {
            h.pop();
        }
        c.line += lines.max(1);
        c.scanned = 0;
        c.in_quote = false;
        c.quotes = false;
        c.last_nl = None;
        c.nl_total = 0;
        c.nl_to_last = 0;
        header = Some(h);
    }
    c.scan();
    let (tx, rx) = sync_channel::<Result<Block>>(2);
    let path = path.to_owned();
    let h = std::thread::Builder::new()
        .name("headstart-reader".into())
        .spawn(move || {
            let mut eof = eof;
            loop {
                while !eof && c.pending.len() < BLOCK {
                    match more(&mut r, &mut c.pending, BLOCK, &path) {
                        Ok(0) => eof = true,
                        Ok(_) => c.scan(),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
                if eof {
                    if c.in_quote {
                        let _ = tx.send(Err(parse_err(
                            &path,
                            c.open_line,
                            1,
                            "a quoted field opened on this line is never closed".into(),
                        )));
                        return;
                    }
                    if !c.pending.is_empty() {
                        let b = Block {
                            data: std::mem::take(&mut c.pending),
                            line: c.line,
                            quoted: c.quotes || c.in_quote,
                        };
                        let _ = tx.send(Ok(b));
                    }
                    return;
                }
                match c.take() {
                    Some(b) => {
                        if tx.send(Ok(b)).is_err() {
                            return; // the consumer stopped (error or interrupt)
                        }
                    }
                    None => {
                        if c.pending.len() > MAX_RECORD {
                            let _ = tx.send(Err(parse_err(
                                &path,
                                c.line,
                                1,
                                "a record is longer than 64 MiB (missing newline or unclosed quote?)"
                                    .into(),
                            )));
                            return;
                        }
                        // grow: read more before cutting
                        match more(&mut r, &mut c.pending, BLOCK, &path) {
                            Ok(0) => eof = true,
                            Ok(_) => c.scan(),
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                }
            }
        })
        .map_err(|e| Error::io("reader thread", &e))?;
    Ok((header, rx, h))
}

/// Split a header record into field names (with the csv crate: quoting rules apply).
fn header_fields(h: &[u8], delim: u8) -> Vec<String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delim)
        .flexible(true)
        .from_reader(h);
    let mut rec = csv::ByteRecord::new();
    match rdr.read_byte_record(&mut rec) {
        Ok(true) => rec
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Resolve the column to read and the number of fields expected per record.
fn resolve_column(
    path: &str,
    header: Option<&[u8]>,
    first: Option<&[u8]>,
    opts: &TextOpts,
) -> Result<(usize, Option<usize>, String)> {
    let Some(d) = opts.delimiter else {
        return Ok((0, None, "value".into()));
    };
    let names = match header {
        Some(h) => header_fields(h, d),
        None => {
            let n = first.map(|f| header_fields(f, d).len()).unwrap_or(1);
            (0..n).map(|i| format!("column {i}")).collect()
        }
    };
    let nf = names.len().max(1);
    let idx = match &opts.column {
        Column::Auto => nf - 1,
        Column::Index(i) => {
            if *i >= nf {
                return Err(Error::Value(format!(
                    "{path}: column index {i} is out of range: the file has {nf} columns ({})",
                    names.join(", ")
                )));
            }
            *i
        }
        Column::Name(n) => names.iter().position(|x| x == n).ok_or_else(|| {
            Error::Value(format!(
                "{path}: no column named {n:?}; the header has: {}",
                names.join(", ")
            ))
        })?,
    };
    let name = names.get(idx).cloned().unwrap_or_default();
    Ok((idx, Some(nf), name))
}

/// Call `f(field, line)` for the chosen field of every record of a block.
fn for_each_field(
    path: &str,
    b: &Block,
    delim: Option<u8>,
    col: usize,
    nfields: Option<usize>,
    mut f: impl FnMut(&[u8], u64) -> Result<()>,
) -> Result<()> {
    if let (false, Some(d)) = (b.quoted, delim) {
        // One SIMD scan for delimiters and newlines over the whole block (a memchr per
        // short line would spend its time in setup).
        let data = &b.data[..];
        let mut line = b.line;
        let (mut rec_start, mut fs, mut k) = (0usize, 0usize, 0usize);
        // The chosen field of the current record as two plain words (`fa == NONE`: not
        // seen yet). An `Option<(usize, usize)>` here was written as three 8-byte stores
        // and read back as one 16-byte load in every record: a store-forwarding stall
        // that took most of a class scan's splitting time.
        const NONE: usize = usize::MAX;
        let (mut fa, mut fz) = (NONE, 0usize);
        let mut end_record = |end: usize,
                              line: u64,
                              k: usize,
                              fs: usize,
                              fa: usize,
                              fz: usize,
                              rec_start: usize|
         -> Result<()> {
            let mut e = end;
            if e > rec_start && data[e - 1] == b'\r' {
                e -= 1;
            }
            if e == rec_start && k == 0 {
                return f(&data[e..e], line); // blank line: an empty value
            }
            let found = k + 1;
            if let Some(nf) = nfields {
                if found != nf {
                    return Err(parse_err(
                        path,
                        line,
                        found.min(nf),
                        format!("expected {nf} fields, found {found}"),
                    ));
                }
            }
            let (a, z) = if k == col { (fs, e) } else { (fa, fz) };
            match a {
                NONE => Err(parse_err(
                    path,
                    line,
                    col + 1,
                    format!("expected at least {} fields, found {found}", col + 1),
                )),
                _ => f(&data[a..z.max(a)], line),
            }
        };
        super::split::each2(data, d, b'\n', |i| {
            if data[i] == d {
                if k == col {
                    (fa, fz) = (fs, i);
                }
                k += 1;
                fs = i + 1;
            } else {
                end_record(i, line, k, fs, fa, fz, rec_start)?;
                line += 1;
                rec_start = i + 1;
                fs = rec_start;
                k = 0;
                fa = NONE;
            }
            Ok(())
        })?;
        if rec_start < data.len() {
            end_record(data.len(), line, k, fs, fa, fz, rec_start)?;
        }
        return Ok(());
    }
    if delim.is_none() {
        let data = &b.data[..];
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len()));
        for (line, end) in (b.line..).zip(ends) {
            if end == data.len() && start >= data.len() {
                break;
            }
            let mut rec = &data[start..end];
            if rec.last() == Some(&b'\r') {
                rec = &rec[..rec.len() - 1];
            }
            f(rec, line)?;
            start = end + 1;
        }
        return Ok(());
    }
    let d = delim.unwrap_or(b',');
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(d)
        .flexible(true)
        .from_reader(&b.data[..]);
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = b.line + rec.position().map_or(1, |p| p.line()) - 1;
                if let Some(nf) = nfields {
                    if rec.len() != nf {
                        return Err(parse_err(
                            path,
                            line,
                            rec.len().min(nf),
                            format!("expected {nf} fields, found {}", rec.len()),
                        ));
                    }
                }
                match rec.get(col) {
                    Some(x) => f(x, line)?,
                    None => {
                        return Err(parse_err(
                            path,
                            line,
                            col + 1,
                            format!("expected at least {} fields, found {}", col + 1, rec.len()),
                        ))
                    }
                }
            }
            Err(e) => {
                let line = e.position().map_or(b.line, |p| b.line + p.line() - 1);
                return Err(parse_err(path, line, 1, format!("malformed CSV: {e}")));
            }
        }
    }
    Ok(())
}

fn trim(x: &[u8]) -> &[u8] {
    let s = x
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(x.len());
    let e = x
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &x[s..e]
}

/// Powers of ten exactly representable in f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Clinger's fast path for plain decimals (`[+-]digits[.digits][e[+-]digits]`): when
/// the significand has at most 15 digits (< 2^53) and the decimal exponent is within
/// +-22, `m * 10^e` (or `m / 10^-e`) is one correctly rounded operation on two exact
/// values, so the result equals the full parser's. Anything else returns None and goes
/// to `str::parse`.
#[inline]
pub(crate) fn parse_fast(t: &[u8]) -> Option<f64> {
    let (neg, mut i) = match t.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    let mut m: u64 = 0;
    let mut digits = 0u32;
    let mut exp: i32 = 0;
    let mut any = false;
    while i < t.len() && t[i].is_ascii_digit() {
        if m == 0 && t[i] == b'0' {
            any = true;
        } else {
            m = m * 10 + (t[i] - b'0') as u64;
            digits += 1;
            any = true;
            if digits > 15 {
                return None;
            }
        }
        i += 1;
    }
    if i < t.len() && t[i] == b'.' {
        i += 1;
        while i < t.len() && t[i].is_ascii_digit() {
            if !(m == 0 && t[i] == b'0') {
                m = m * 10 + (t[i] - b'0') as u64;
                digits += 1;
                if digits > 15 {
                    return None;
                }
            }
            exp -= 1;
            any = true;
            i += 1;
        }
    }
    if !any {
        return None;
    }
    if i < t.len() && (t[i] == b'e' || t[i] == b'E') {
        i += 1;
        let eneg = match t.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut e: i32 = 0;
        let s0 = i;
        while i < t.len() && t[i].is_ascii_digit() {
            e = e.saturating_mul(10).saturating_add((t[i] - b'0') as i32);
            i += 1;
        }
        if i == s0 {
            return None;
        }
        exp = exp.saturating_add(if eneg { -e } else { e });
    }
    if i != t.len() {
        return None;
    }
    let v = if m == 0 {
        0.0
    } else if (0..=22).contains(&exp) {
        m as f64 * POW10[exp as usize]
    } else if (-22..0).contains(&exp) {
        m as f64 / POW10[(-exp) as usize]
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// The tokens pandas, R and SQL write for a missing value in a column of numbers (the
/// Python layer's `headstart.sources.labels.NA_TOKENS`; "nan" itself parses as NaN).
fn is_na_token(t: &[u8]) -> bool {
    matches!(
        t,
        b"NA" | b"N/A" | b"n/a" | b"null" | b"NULL" | b"None" | b"<NA>"
    )
}

/// Parse a numeric field; `Ok(None)` for a missing value (empty, NaN or an NA token) under
/// Skip.
#[inline]
pub(crate) fn parse_value(
    path: &str,
    x: &[u8],
    line: u64,
    col: usize,
    missing: Missing,
) -> Result<Option<f64>> {
    if let Some(v) = parse_fast(x) {
        return Ok(Some(v));
    }
    let t = trim(x);
    let v = std::str::from_utf8(t)
        .ok()
        .and_then(|s| s.parse::<f64>().ok());
    let na = v.is_none() && is_na_token(t);
    match v {
        Some(v) if v.is_finite() => Ok(Some(v)),
        _ if missing == Missing::Skip && (t.is_empty() || v.is_some() || na) => Ok(None),
        None if na => Err(parse_err(
            path,
            line,
            col,
            format!(
                "missing value {:?} (pass nan='skip' to skip missing values)",
                String::from_utf8_lossy(t)
            ),
        )),
        Some(v) => Err(parse_err(
            path,
            line,
            col,
            format!(
                "{} value (pass nan='skip' to skip NaN, infinite and empty values)",
                if v.is_nan() {
                    "NaN".to_string()
                } else {
                    format!("non-finite {v}")
                }
            ),
        )),
        None if t.is_empty() => Err(parse_err(
            path,
            line,
            col,
            "empty value (pass nan='skip' to skip NaN and empty values)".into(),
        )),
        None => Err(parse_err(
            path,
            line,
            col,
            format!(
                "expected a number, found {:?}",
                String::from_utf8_lossy(&t[..t.len().min(60)])
            ),
        )),
    }
}

/// Values buffered from the start of a file: the sample a speculative pass-2 plan is
/// built from (and the whole data when the file is smaller).
const SAMPLE: usize = 1 << 21;
/// A speculation whose windows collect more than this many values (16 MiB; their vectors
/// and the adoption's sort may take about three times that) is abandoned and the file
/// read again instead: the memory bound of a scan, whatever the file's size. (At 1 << 24
/// a Huber scan's peak grew with the file, 127 -> 163 MB VmHWM from 0.3 to 1.2 GB and on
/// towards ~300 MB; at 1 << 22 it still reached 202 MB at 1.2 GB.)
const SPEC_LIMIT: usize = 1 << 21;

/// One parsed block: values, missing values skipped, records, bytes.
type Parsed = (Vec<f64>, u64, u64, u64);

/// Work done on one block: (block, column index, expected fields per record).
type PerBlock<'a, T> = dyn Fn(&Block, usize, Option<usize>) -> Result<T> + Sync + 'a;

/// Read the file once: blocks are cut by the reader thread, `per_block(block, column,
/// fields)` runs on the pool for a batch of blocks at a time, and `f` gets each batch's
/// results in file order. Progress is reported (and Ctrl-C checked) between batches.
/// Returns the column's name.
fn read_blocks<T: Send>(
    path: &str,
    opts: &TextOpts,
    pass: u32,
    prog: &mut dyn Progress,
    per_block: &PerBlock<'_, T>,
    f: &mut dyn FnMut(Vec<T>) -> Result<()>,
) -> Result<String> {
    let total = std::fs::metadata(path)
        .map_err(|e| Error::io(path, &e))?
        .len();
    let (header, rx, h) = spawn_reader(path, opts)?;
    let pool = pool()?;
    let threads = pool.current_num_threads().max(1);
    let mut col: Option<(usize, Option<usize>, String)> = None;
    let mut done_bytes = 0u64;
    let res = (|| -> Result<()> {
        let mut it = rx.iter();
        loop {
            let mut batch = Vec::with_capacity(threads);
            for b in it.by_ref() {
                batch.push(b?);
                if batch.len() >= threads {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            if col.is_none() {
                let first = batch[0].data.split(|&c| c == b'\n').next();
                col = Some(resolve_column(path, header.as_deref(), first, opts)?);
            }
            let (ci, nf, _) = col.clone().unwrap_or((0, None, String::new()));
            let parts: Vec<Result<T>> =
                pool.install(|| batch.par_iter().map(|b| per_block(b, ci, nf)).collect());
            done_bytes += batch.iter().map(|b| b.data.len() as u64).sum::<u64>();
            drop(batch);
            f(parts.into_iter().collect::<Result<Vec<_>>>()?)?;
            prog.report(pass, done_bytes.min(total), total)?;
        }
        Ok(())
    })();
    drop(rx);
    // A reader that panicked closed the channel as if at end of file: re-raise its panic
    // (the binding turns it into an error) rather than report a silently short scan.
    if let Err(p) = h.join() {
        std::panic::resume_unwind(p);
    }
    res?;
    if col.is_none() && header.is_some() {
        // A header and no record: the column asked for must still exist (else an empty
        // result would hide a wrong column name).
        col = Some(resolve_column(path, header.as_deref(), None, opts)?);
    }
    Ok(col.map(|c| c.2).unwrap_or_default())
}

/// Read the file once, parsing the chosen column of every block in parallel; `f` gets
/// each batch of parsed blocks in file order. Returns the column's name.
fn parse_pass(
    path: &str,
    opts: &TextOpts,
    pass: u32,
    prog: &mut dyn Progress,
    f: &mut dyn FnMut(Vec<Parsed>) -> Result<()>,
) -> Result<String> {
    let parse = |b: &Block, ci: usize, nf: Option<usize>| -> Result<Parsed> {
        let mut vals = Vec::with_capacity(b.data.len() / 8);
        let (mut skipped, mut recs) = (0u64, 0u64);
        for_each_field(path, b, opts.delimiter, ci, nf, |x, line| {
            recs += 1;
            match parse_value(path, x, line, ci + 1, opts.missing)? {
                Some(v) => vals.push(v),
                None => skipped += 1,
            }
            Ok(())
        })?;
        Ok((vals, skipped, recs, b.data.len() as u64))
    };
    read_blocks(path, opts, pass, prog, &parse, f)
}

/// Exact regression statistics of one column of a text file.
///
/// Pass 1 parses the file; its first few million values are a sample from which
/// pass-2 windows are guessed and collected during the rest of pass 1 (a
/// [`Speculation`]). When the exact answers fall inside them (checked exactly), one pass
/// is all it takes; otherwise the file is parsed again for the tasks left. A file of
/// fewer values than the sample is held in memory and never re-read.
pub fn scan_regression(
    path: &str,
    opts: &TextOpts,
    sel: &mut Selector,
    prog: &mut dyn Progress,
) -> Result<(ScanInfo, String)> {
    let total = std::fs::metadata(path)
        .map_err(|e| Error::io(path, &e))?
        .len();
    let mut info = ScanInfo {
        bytes: total,
        passes: 1,
        ..Default::default()
    };
    let shards = Hist1Shards::new(pool()?.current_num_threads());
    let mut sample: Vec<f64> = Vec::new();
    let mut sample_bytes = 0u64;
    let mut sampling = true;
    let mut spec: Option<Speculation> = None;
    let name = parse_pass(path, opts, 1, prog, &mut |parts: Vec<Parsed>| {
        let chunks: Vec<&[f64]> = parts.iter().map(|p| &p.0[..]).collect();
        let plan = sel.plan.clone();
        sel.acc.add_parallel(&plan, &chunks, &shards)?;
        if let Some(sp) = spec.as_mut() {
            let plan = sp.plan.clone();
            sp.acc.add_parallel(&plan, &chunks, &shards)?;
            if sp.collected() > SPEC_LIMIT {
                spec = None;
            }
        }
        for p in &parts {
            info.skipped += p.1;
            info.records += p.2;
        }
        if sampling {
            for p in &parts {
                sample.extend_from_slice(&p.0);
                sample_bytes += p.3;
            }
            if sample.len() >= SAMPLE {
                sampling = false;
                let expected =
                    (sample.len() as f64 * total as f64 / sample_bytes.max(1) as f64) as u64;
                spec = sel.speculate(&sample, expected)?;
                if let Some(sp) = spec.as_mut() {
                    let plan = sp.plan.clone();
                    let chunks: Vec<&[f64]> = sample.chunks(1 << 20).collect();
                    sp.acc.add_parallel(&plan, &chunks, &shards)?;
                }
                sample = Vec::new();
            }
        }
        Ok(())
    })?;
    shards.fold_into(&mut sel.acc.hist1);
    if sampling {
        // Every value is in memory: the later passes run over it.
        while sel.finish_pass()? {
            info.passes += 1;
            let plan = sel.plan.clone();
            let chunks: Vec<&[f64]> = sample.chunks(1 << 20).collect();
            sel.acc.add_parallel(&plan, &chunks, &shards)?;
            prog.report(info.passes, total, total)?;
        }
        return Ok((info, name));
    }
    let mut more = sel.finish_pass()?;
    if let Some(sp) = spec {
        more = sel.adopt(sp)?;
    }
    while more {
        info.passes += 1;
        parse_pass(path, opts, info.passes, prog, &mut |parts: Vec<Parsed>| {
            let chunks: Vec<&[f64]> = parts.iter().map(|p| &p.0[..]).collect();
            let plan = sel.plan.clone();
            sel.acc.add_parallel(&plan, &chunks, &shards)
        })?;
        more = sel.finish_pass()?;
    }
    Ok((info, name))
}

fn bad_label(path: &str, line: u64, col: usize, x: &[u8]) -> Error {
    let shown = String::from_utf8_lossy(&x[..x.len().min(40)]).into_owned();
    parse_err(
        path,
        line,
        col,
        format!(
            "class label is not valid UTF-8 text: {shown:?}{}",
            if x.len() > 40 { "..." } else { "" }
        ),
    )
}

/// What a class scan counts.
#[derive(Clone, Debug, Default)]
pub struct ClassScan {
    pub counts: StrCounts,
    /// Multi-label: rows read (each row a set of labels).
    pub rows: u64,
    pub info: ScanInfo,
    pub column: String,
}

/// Class counts of one column (string labels; integers are strings here and become
/// integers in the result when every label is one). With `multilabel = Some(sep)` each
/// field is a set of labels separated by `sep` (an empty field is the empty set).
pub fn scan_classes(
    path: &str,
    opts: &TextOpts,
    multilabel: Option<u8>,
    prog: &mut dyn Progress,
) -> Result<ClassScan> {
    let total = std::fs::metadata(path)
        .map_err(|e| Error::io(path, &e))?
        .len();
    let mut out = ClassScan {
        info: ScanInfo {
            bytes: total,
            passes: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let count = |b: &Block, ci: usize, nf: Option<usize>| -> Result<(StrCounts, u64, u64)> {
        let mut c = StrCounts::default();
        let (mut skipped, mut recs) = (0u64, 0u64);
        let mut tags: Vec<(usize, usize)> = Vec::new();
        for_each_field(path, b, opts.delimiter, ci, nf, |x, line| {
            recs += 1;
            let x = if opts.delimiter.is_none() { trim(x) } else { x };
            match multilabel {
                Some(sep) => {
                    // A label set: a tag written twice in one row is one positive. Tags
                    // are kept as (start, end) in x, so the buffer outlives the row.
                    tags.clear();
                    let mut start = 0;
                    for part in x.split(|&ch| ch == sep) {
                        let l = trim(part);
                        if !l.is_empty() {
                            let off = start + (l.as_ptr() as usize - part.as_ptr() as usize);
                            tags.push((off, off + l.len()));
                        }
                        start += part.len() + 1;
                    }
                    tags.sort_unstable_by(|a, b| x[a.0..a.1].cmp(&x[b.0..b.1]));
                    tags.dedup_by(|a, b| x[a.0..a.1] == x[b.0..b.1]);
                    for &(a, z) in &tags {
                        let l = &x[a..z];
                        if c.add(l) && std::str::from_utf8(l).is_err() {
                            return Err(bad_label(path, line, ci + 1, l));
                        }
                    }
                }
                None => {
                    if x.is_empty() {
                        if opts.missing == Missing::Skip {
                            skipped += 1;
                        } else {
                            return Err(parse_err(
                                path,
                                line,
                                ci + 1,
                                "empty label (pass nan='skip' to skip empty values)".into(),
                            ));
                        }
                    } else if c.add(x) && std::str::from_utf8(x).is_err() {
                        return Err(bad_label(path, line, ci + 1, x));
                    }
                }
            }
            Ok(())
        })?;
        Ok((c, skipped, recs))
    };
    let column = read_blocks(path, opts, 1, prog, &count, &mut |parts| {
        for (c, skipped, recs) in parts {
            out.counts.merge(&c);
            out.info.skipped += skipped;
            out.info.records += recs;
        }
        Ok(())
    })?;
    out.rows = out.info.records - out.info.skipped;
    out.column = column;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_parse_equals_std() {
        let cases = [
            "0",
            "-0",
            "+1",
            "1.5",
            "-2.71828",
            "1e5",
            "1.23457e+06",
            "9.99999e-07",
            "123456789012345",
            "0.000123",
            "12.",
            ".5",
            "-.5e-3",
            "1e22",
            "1e-22",
            "4.9406564584124654e-324",
            "1234567890123456",
            "1e23",
            "1e",
            "e5",
            "1.2.3",
            "nan",
            "inf",
            "",
            "-",
            "0x10",
            "00012.5000",
            "3.14159265358979",
            "1.7976931348623157e308",
        ];
        for c in cases {
            let want = c.parse::<f64>().ok();
            // None falls back to std.
            if let Some(v) = parse_fast(c.as_bytes()) {
                assert_eq!(Some(v.to_bits()), want.map(f64::to_bits), "{c}");
            }
        }
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let v = f64::from_bits(s);
            if !v.is_finite() {
                continue;
            }
            for txt in [
                format!("{v:.6e}"),
                format!("{:.5}", v % 1e6),
                format!("{}", (s % 100000) as f64 / 1000.0),
            ] {
                if let Some(f) = parse_fast(txt.as_bytes()) {
                    assert_eq!(f.to_bits(), txt.parse::<f64>().unwrap().to_bits(), "{txt}");
                }
            }
        }
    }

    #[test]
    fn newline_count() {
        let d = b"a\nbb\n\nccc".repeat(50_000);
        assert_eq!(count_newlines(&d), 150_000);
    }
}
