//! Readers of label files: CSV/TSV (header, column by name or index, RFC 4180 quoting,
//! CRLF, UTF-8 BOM), text with one value per line, gzip of both, and `.npy`
//! (memory-mapped; f32/f64/ints/bool, either byte order).
//!
//! Why this shape: a reader thread cuts the (decompressed) byte stream into blocks that
//! end at a record boundary (a newline outside quotes: quote parity is enough for
//! RFC 4180, where an escaped quote is two quotes), and counts each block's lines so
//! errors carry the file's line number. Blocks are parsed on the pool in parallel;
//! blocks without a quote take a hand-written memchr path, the others the `csv` crate.
//! Results merge in block order, so they do not depend on the thread count.

pub mod npy;
pub mod raw;
mod split;
pub mod text;

use crate::error::{Error, Result};

/// Which column of a delimited file.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// The only column, or the last one when there are several (e.g. `id,label`).
    Auto,
    Index(usize),
    Name(String),
}

/// What to do with NaN and empty values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Raise an error naming the line and column.
    Raise,
    /// Skip them and count how many were skipped.
    Skip,
}

/// Progress and interruption: called between batches of blocks with the bytes (or
/// values) done and the total when known. Returning an error (e.g. Interrupted) stops
/// the scan.
pub trait Progress {
    fn report(&mut self, pass: u32, done: u64, total: u64) -> Result<()>;
}

/// No progress reporting.
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&mut self, _: u32, _: u64, _: u64) -> Result<()> {
        Ok(())
    }
}

/// Counters of one scan.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScanInfo {
    /// Records read (data lines, or array elements).
    pub records: u64,
    /// NaN or empty values skipped under `Missing::Skip`.
    pub skipped: u64,
    /// Passes over the source (a spill file counts as the source).
    pub passes: u32,
    /// Bytes of the source.
    pub bytes: u64,
}

/// Drop the resident pages of bytes [a, b) of a read-only file map (whole pages inside the
/// range only), so a scan's resident set does not grow with the file; the page cache still
/// serves the next pass.
/// A mapped file that shrank since it was mapped would fault (SIGBUS) on the missing
/// pages: checked before each batch of tasks, it stops the scan with an error instead (a
/// truncation racing the check still can fault; see the closing note of the robustness
/// issue).
pub(crate) fn check_not_shrunk(path: &str, need: usize) -> crate::error::Result<()> {
    let now = std::fs::metadata(path)
        .map_err(|e| crate::error::Error::io(path, &e))?
        .len() as usize;
    if now < need {
        return Err(crate::error::Error::Io(
            std::io::ErrorKind::UnexpectedEof,
            format!("{path}: the file shrank to {now} bytes while being read ({need} expected)"),
        ));
    }
    Ok(())
}

pub(crate) fn release_pages(map: &memmap2::Mmap, a: usize, b: usize) {
    let page = 4096usize;
    let a = a.div_ceil(page) * page;
    let b = b / page * page;
    if b > a {
        // SAFETY: a read-only shared file mapping: DONTNEED drops our page-table entries
        // and the pages are read back from the file on next access.
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, b - a) };
    }
}

pub(crate) fn parse_err(path: &str, line: u64, col: usize, msg: String) -> Error {
    Error::Parse(format!("{path}:{line}: column {col}: {msg}"))
}
