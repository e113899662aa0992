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
