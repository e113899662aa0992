//! The only place that knows Python: argument checks, dtype dispatch, GIL release,
//! error mapping. The public API and its documentation live in `python/headstart/`;
//! these functions take C-contiguous arrays the Python layer prepared.

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

mod loss;
mod stats;

use crate::error::Error;
use crate::ops::{self, Elem, RowOp};

pyo3::create_exception!(
    headstart._core,
    HeadstartError,
    PyValueError,
    "Base class of headstart's errors (a ValueError)."
);

/// Map a core error to the Python exception class users expect.
fn to_py(e: Error) -> PyErr {
    match e {
        Error::Shape(m) | Error::Value(m) => HeadstartError::new_err(m),
        Error::ThreadPool(m) => PyRuntimeError::new_err(m),
        Error::Target(m) => pyo3::exceptions::PyIndexError::new_err(m),
        Error::Parse(m) => HeadstartError::new_err(m),
        Error::Io(kind, m) => {
            use std::io::ErrorKind as K;
            match kind {
                K::NotFound => pyo3::exceptions::PyFileNotFoundError::new_err(m),
                K::PermissionDenied => pyo3::exceptions::PyPermissionError::new_err(m),
                K::IsADirectory => pyo3::exceptions::PyIsADirectoryError::new_err(m),
                _ => pyo3::exceptions::PyOSError::new_err(m),
            }
        }
        Error::Interrupted => pyo3::exceptions::PyKeyboardInterrupt::new_err("interrupted"),
        e @ Error::Internal(_) => HeadstartError::new_err(e.to_string()),
        // The enum is non-exhaustive for users of the core, not for this crate.
    }
}

/// Run core work, turning a panic into `Error::Internal`. No input should make the core
/// panic (the fuzzers in fuzz/ hunt for that), but if one does, PyO3 would raise
/// PanicException: a BaseException that `except Exception` misses, which takes a notebook
/// or a Dask worker down with it. Panics on rayon workers and the reader thread are
/// re-raised on this thread, so they land here too.
pub(crate) fn caught<T>(f: impl FnOnce() -> crate::error::Result<T>) -> crate::error::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        Err(Error::Internal(msg))
    })
}

/// `caught` without the GIL: every heavy call goes through here.
pub(crate) fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> crate::error::Result<T> + Send,
) -> crate::error::Result<T> {
    py.detach(|| caught(f))
}

fn dtype_error(what: &str, a: &Bound<'_, PyAny>) -> PyErr {
    let dt = a
        .getattr("dtype")
        .and_then(|d| d.str().map(|s| s.to_string()))
        .unwrap_or_else(|_| a.get_type().to_string());
    PyTypeError::new_err(format!(
        "{what}: expected a float32 or float64 array, got {dt}"
    ))
}

fn contiguous<T: numpy::Element>(a: &Bound<'_, PyArrayDyn<T>>, what: &str) -> PyResult<()> {
    // `as_slice` would also accept Fortran order; the kernels need rows in C order.
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{what}: array must be C-contiguous"
        )));
    }
    Ok(())
}

fn rowwise_t<T: Elem + numpy::Element>(
    py: Python<'_>,
    x: &Bound<'_, PyArrayDyn<T>>,
    out: &Bound<'_, PyAny>,
    n: usize,
    op: RowOp,
) -> PyResult<()> {
    let out = out
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| dtype_error("out must have the input's dtype", out))?;
    contiguous(x, "input")?;
    contiguous(out, "out")?;
    if x.is(out) {
        let mut w = out.try_readwrite()?;
        let buf = w.as_slice_mut()?;
        detached(py, || ops::rowwise_inplace(buf, n, op)).map_err(to_py)
    } else {
        let r = x.try_readonly()?;
        let mut w = out.try_readwrite()?;
        let (xs, os) = (r.as_slice()?, w.as_slice_mut()?);
        detached(py, || ops::rowwise(xs, os, n, op)).map_err(to_py)
    }
}

fn lse_t<T: Elem + numpy::Element>(
    py: Python<'_>,
    x: &Bound<'_, PyArrayDyn<T>>,
    out: &Bound<'_, PyAny>,
    n: usize,
) -> PyResult<()> {
    let out = out
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| dtype_error("out must have the input's dtype", out))?;
    contiguous(x, "input")?;
    contiguous(out, "out")?;
    let r = x.try_readonly()?;
    let mut w = out.try_readwrite()?;
    let (xs, os) = (r.as_slice()?, w.as_slice_mut()?);
    detached(py, || ops::logsumexp_rows(xs, n, os)).map_err(to_py)
}

#[pymodule]
mod _core {
    use super::*;

    #[pymodule_export]
    use super::HeadstartError;

    #[pymodule_export]
    use super::loss::cross_entropy;

    #[pymodule_export]
    use super::loss::elementwise_loss;

    #[pymodule_export]
    use super::loss::hinge_loss;

    #[pymodule_export]
    use super::stats::{
        raw_info, scan_classes, scan_raw_classes, scan_regression, ClassState, RegState,
    };

    /// softmax (log=False) or log_softmax (log=True) of each length-n row of the
    /// C-contiguous array x into out (same shape and dtype; out may be x itself).
    #[pyfunction]
    fn rowwise(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
        n: usize,
        log: bool,
    ) -> PyResult<()> {
        let op = if log {
            RowOp::LogSoftmax
        } else {
            RowOp::Softmax
        };
        if let Ok(a) = x.cast::<PyArrayDyn<f32>>() {
            rowwise_t(py, a, out, n, op)
        } else if let Ok(a) = x.cast::<PyArrayDyn<f64>>() {
            rowwise_t(py, a, out, n, op)
        } else {
            Err(dtype_error(if log { "log_softmax" } else { "softmax" }, x))
        }
    }

    /// logsumexp of each length-n row of the C-contiguous array x into out (one value
    /// per row, same dtype).
    #[pyfunction]
    fn logsumexp_rows(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
        n: usize,
    ) -> PyResult<()> {
        if let Ok(a) = x.cast::<PyArrayDyn<f32>>() {
            lse_t(py, a, out, n)
        } else if let Ok(a) = x.cast::<PyArrayDyn<f64>>() {
            lse_t(py, a, out, n)
        } else {
            Err(dtype_error("logsumexp", x))
        }
    }

    /// The SIMD level kernels run at: "avx512", "avx2", "scalar" (or "neon").
    #[pyfunction]
    fn simd_level() -> &'static str {
        crate::simd::level().name()
    }

    /// The level a HEADSTART_SIMD value names ("avx-512", "baseline", ... as the core
    /// reads them), or None when it names none: the Python layer's warning at import uses
    /// the core's own table.
    #[pyfunction]
    fn parse_simd_level(name: &str) -> Option<&'static str> {
        crate::simd::Level::parse(name).map(|l| l.name())
    }

    /// Levels this CPU supports, lowest first.
    #[pyfunction]
    fn available_simd_levels() -> Vec<&'static str> {
        crate::simd::Level::available()
            .into_iter()
            .map(|l| l.name())
            .collect()
    }

    /// Force a SIMD level (lowered to what the CPU has); returns the level now in use.
    #[pyfunction]
    fn set_simd_level(name: &str) -> PyResult<&'static str> {
        let l = crate::simd::Level::parse(name).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown SIMD level {name:?}: expected one of 'scalar', 'avx2', 'avx512'"
            ))
        })?;
        Ok(crate::simd::set_level(l).name())
    }

    /// Use n threads for heavy work from now on (0 = RAYON_NUM_THREADS or the CPU count).
    #[pyfunction]
    fn set_num_threads(n: usize) -> PyResult<()> {
        crate::parallel::set_num_threads(n).map_err(to_py)
    }

    /// Test hook: panic inside the guarded boundary, on this thread or on a rayon worker
    /// (`on_pool`), to show that a core panic reaches Python as HeadstartError.
    #[pyfunction]
    fn _panic_for_tests(py: Python<'_>, on_pool: bool) -> PyResult<()> {
        use rayon::prelude::*;
        detached(py, || {
            if on_pool {
                crate::parallel::pool()?.install(|| {
                    (0..64u32).into_par_iter().for_each(|i| {
                        assert!(i != 37, "deliberate test panic on a worker");
                    })
                });
                Ok(())
            } else {
                panic!("deliberate test panic")
            }
        })
        .map_err(to_py)
    }

    /// The number of threads heavy work runs on.
    #[pyfunction]
    fn get_num_threads() -> usize {
        crate::parallel::num_threads()
    }
}
