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

/// A binary file read by position (`pread`), not memory-mapped: a file that shrinks while
/// it is read gives an error on the read that misses, where a map would fault (SIGBUS)
/// and kill the process. Reads go into a buffer per thread (kept between reads, so a
/// scan does not page-fault a fresh buffer per block); the page cache, not the process,
/// holds the file, so the resident set does not grow with it.
pub(crate) struct PosFile {
    file: std::fs::File,
    path: String,
    /// Bytes at open.
    pub len: u64,
}

/// Bytes read by position at a time per thread at most (the callers' blocks).
pub(crate) const READ_BLOCK: usize = 1 << 23;

thread_local! {
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl PosFile {
    pub(crate) fn open(path: &str) -> Result<PosFile> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, &e))?;
        let len = file.metadata().map_err(|e| Error::io(path, &e))?.len();
        Ok(PosFile {
            file,
            path: path.to_owned(),
            len,
        })
    }

    /// Bytes [pos, pos + n) into `out` (resized to n).
    pub(crate) fn read_into(&self, pos: u64, n: usize, out: &mut Vec<u8>) -> Result<()> {
        out.resize(n, 0);
        read_exact_at(&self.file, out, pos).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                let now = self.file.metadata().map(|m| m.len()).unwrap_or(0);
                Error::Io(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: the file shrank to {now} bytes while being read ({} expected)",
                        self.path, self.len
                    ),
                )
            } else {
                Error::io(&self.path, &e)
            }
        })
    }

    /// `f` on bytes [pos, pos + n), read into this thread's buffer.
    pub(crate) fn with_bytes<R>(
        &self,
        pos: u64,
        n: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        READ_BUF.with(|b| {
            let mut b = b.borrow_mut();
            self.read_into(pos, n, &mut b)?;
            Ok(f(&b[..n]))
        })
    }
}

#[cfg(unix)]
fn read_exact_at(f: &std::fs::File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, pos)
}

#[cfg(windows)]
fn read_exact_at(f: &std::fs::File, mut buf: &mut [u8], mut pos: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_read(buf, pos) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => {
                buf = &mut buf[k..];
                pos += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(crate) fn parse_err(path: &str, line: u64, col: usize, msg: String) -> Error {
    Error::Parse(format!("{path}:{line}: column {col}: {msg}"))
}
