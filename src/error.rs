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
    /// Malformed input data; the message names file, line and column (maps to ValueError).
    Parse(String),
    /// An I/O failure; the message names the file (maps to the OSError subclass of the kind).
    Io(std::io::ErrorKind, String),
    /// The caller asked to stop (Ctrl-C between chunks; maps to KeyboardInterrupt).
    Interrupted,
    /// A panic caught at the Python boundary: a bug in headstart, never the user's input's
    /// fault (maps to HeadstartError, so `except Exception` still sees it).
    Internal(String),
}

impl Error {
    /// An I/O error with the path it concerns.
    pub fn io(path: &str, e: &std::io::Error) -> Error {
        Error::Io(e.kind(), format!("{path}: {e}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape(m) => write!(f, "{m}"),
            Error::ThreadPool(m) => write!(f, "could not start the thread pool: {m}"),
            Error::Value(m) | Error::Target(m) | Error::Parse(m) | Error::Io(_, m) => {
                write!(f, "{m}")
            }
            Error::Interrupted => write!(f, "interrupted"),
            Error::Internal(m) => write!(
                f,
                "internal error in headstart (a bug; please report it with the input): {m}"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Result with the core's error.
pub type Result<T> = std::result::Result<T, Error>;
