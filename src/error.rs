//! The one error type of the core. Every variant's message carries the context a user
//! needs; `src/python/` maps each to a Python exception class.

use std::fmt;

/// Errors from the core.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Array sizes or shapes that do not fit together (maps to ValueError).
    Shape(String),
    /// The thread pool could not be built (maps to RuntimeError).
    ThreadPool(String),
    /// An argument with a value outside its domain (maps to ValueError).
    Value(String),
    /// A class target outside [0, C) that is not ignore_index (maps to IndexError, like torch).
    Target(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape(m) => write!(f, "{m}"),
            Error::ThreadPool(m) => write!(f, "could not start the thread pool: {m}"),
            Error::Value(m) | Error::Target(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with the core's error.
pub type Result<T> = std::result::Result<T, Error>;
