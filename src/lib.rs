//! headstart core: pure Rust, no Python types. See docs/architecture.md.
//!
//! - [`simd`]: run-time CPU dispatch and the vectorised exp;
//! - [`ops`]: softmax / log_softmax / logsumexp over rows;
//! - [`parallel`]: the thread pool (results never depend on its size);
//! - [`error`]: the one error type.
//!
//! The Python bindings live in `python/` behind the `python` feature.

pub mod error;
pub mod loss;
pub mod ops;
pub mod parallel;
pub mod simd;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
