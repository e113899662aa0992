//! headstart core: pure Rust, no Python types. See docs/architecture.md.
//!
//! - [`simd`]: run-time CPU dispatch and the vectorised exp;
//! - [`ops`]: softmax / log_softmax / logsumexp over rows;
//! - [`parallel`]: the thread pool (results never depend on its size);
//! - [`error`]: the one error type.
//!
//! The Python bindings live in `python/` behind the `python` feature.

// Lane loops index several fixed-size arrays in lockstep (`for j in 0..L`): that is the
// form LLVM vectorises reliably, so clippy's iterator suggestion is declined crate-wide.
#![allow(clippy::needless_range_loop)]

pub mod error;
pub mod io;
pub mod loss;
pub mod ops;
pub mod parallel;
pub mod simd;
pub mod stats;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};

/// Entry points for the cargo-fuzz targets in `fuzz/` (built with `--cfg fuzzing`);
/// not part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use crate::io::Missing;

    /// The fast decimal parser: `Some` only when it agrees with `str::parse`.
    pub fn parse_fast(t: &[u8]) -> Option<f64> {
        crate::io::text::parse_fast(t)
    }

    /// One numeric field as the text readers parse it.
    pub fn parse_value(t: &[u8], skip: bool) -> crate::Result<Option<f64>> {
        let m = if skip { Missing::Skip } else { Missing::Raise };
        crate::io::text::parse_value("fuzz", t, 1, 1, m)
    }
}
