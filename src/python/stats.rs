//! Bindings for the label statistics: streaming states (pyclasses around a Mutex, picklable
//! through their byte encoding) and whole-file scans with progress and Ctrl-C.

use std::sync::Mutex;

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{caught, detached, to_py};
use crate::error::{Error, Result as CoreResult};
use crate::io::npy::Npy;
use crate::io::raw::{HeaderRule, RawDtype, RawFile};
use crate::io::text::{self, TextOpts};
use crate::io::{Column, Missing, Progress, ScanInfo};
use crate::stats::counts::{IntCounts, StrCounts};
use crate::stats::select::{Hist1Shards, Selector};
use crate::stats::ser;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls the Python progress callback and checks for Ctrl-C between batches.
struct PyProgress {
    cb: Option<Py<PyAny>>,
    err: Option<PyErr>,
}

impl Progress for PyProgress {
    fn report(&mut self, pass: u32, done: u64, total: u64) -> CoreResult<()> {
        Python::attach(|py| {
            let r = py.check_signals().and_then(|_| match &self.cb {
                Some(cb) => cb.call1(py, (pass, done, total)).map(|_| ()),
                None => Ok(()),
            });
            r.map_err(|e| {
                self.err = Some(e);
                Error::Interrupted
            })
        })
    }
}

impl PyProgress {
    fn finish<T>(self, r: CoreResult<T>) -> PyResult<T> {
        match r {
            Ok(v) => Ok(v),
            Err(Error::Interrupted) => Err(self
                .err
                .unwrap_or_else(|| pyo3::exceptions::PyKeyboardInterrupt::new_err("interrupted"))),
            Err(e) => Err(to_py(e)),
        }
    }
}

/// Streaming state of the regression statistics of one column (moments, exact order
/// statistics, Huber locations) over one or more passes.
#[pyclass(frozen, module = "headstart._core")]
pub struct RegState {
    sel: Mutex<Selector>,
    /// (records, skipped, passes, column name) when made by a file scan.
    info: Mutex<(u64, u64, u32, String)>,
}

impl RegState {
    fn wrap(sel: Selector, info: (u64, u64, u32, String)) -> RegState {
        RegState {
            sel: Mutex::new(sel),
            info: Mutex::new(info),
        }
    }
}

#[pymethods]
impl RegState {
    #[new]
    #[pyo3(signature = (probs, deltas, collect_max=None))]
    fn new(probs: Vec<f64>, deltas: Vec<f64>, collect_max: Option<u64>) -> PyResult<Self> {
        let mut s = Selector::new(&probs, &deltas).map_err(to_py)?;
        if let Some(c) = collect_max {
            s.collect_max = c.max(1);
        }
        Ok(RegState::wrap(s, (0, 0, 0, String::new())))
    }

    /// Add a C-contiguous 1-D float64 chunk of NaN-free values to the current pass.
    fn update(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let a = x
            .cast::<PyArrayDyn<f64>>()
            .map_err(|_| PyTypeError::new_err("update: expected a float64 array"))?;
        if !a.is_c_contiguous() {
            return Err(PyValueError::new_err("update: array must be C-contiguous"));
        }
        let r = a.try_readonly()?;
        let v = r.as_slice()?;
        let mut s = lock(&self.sel);
        let sel: &mut Selector = &mut s;
        detached(py, || {
            // Fixed sub-chunks of the chunk, accumulated on the pool and merged in
            // order: the same chunks give the same bits whatever the thread count.
            const SUB: usize = 1 << 20;
            let shards = Hist1Shards::new(crate::parallel::pool()?.current_num_threads());
            let chunks: Vec<&[f64]> = v.chunks(SUB).collect();
            sel.acc.add_parallel(&sel.plan, &chunks, &shards)?;
            shards.fold_into(&mut sel.acc.hist1);
            Ok(())
        })
        .map_err(to_py)
    }

    /// Merge another state of the same pass (its chunks come after ours).
    fn merge(&self, other: &RegState) -> PyResult<()> {
        if std::ptr::eq(self, other) {
            return Err(PyValueError::new_err("cannot merge a state with itself"));
        }
        let o = lock(&other.sel);
        let mut s = lock(&self.sel);
        if s.plan != o.plan || s.moments != o.moments {
            return Err(PyValueError::new_err(format!(
                "cannot merge states of different passes or plans (pass {} vs pass {})",
                s.plan.pass, o.plan.pass
            )));
        }
        let acc = o.acc.clone();
        s.acc.merge(&acc);
        Ok(())
    }

    /// Close the current pass; True when another pass over the same data is needed.
    fn finish_pass(&self) -> PyResult<bool> {
        caught(|| lock(&self.sel).finish_pass()).map_err(to_py)
    }

    /// A fresh state for the current pass (same plan, nothing accumulated): what each
    /// worker starts from.
    fn fresh(&self) -> RegState {
        let mut s = lock(&self.sel).clone();
        s.acc = s.new_acc();
        RegState::wrap(s, (0, 0, 0, String::new()))
    }

    /// The number of the pass being accumulated (1 = the first).
    #[getter]
    fn pass_number(&self) -> u32 {
        lock(&self.sel).plan.pass
    }

    /// True when every statistic is exact and no pass is left.
    #[getter]
    fn done(&self) -> bool {
        lock(&self.sel).done()
    }

    /// (n, mean, population variance, min, max) after pass 1, else None.
    fn moments(&self) -> Option<(u64, f64, f64, f64, f64)> {
        lock(&self.sel)
            .moments
            .map(|m| (m.n, m.mean, m.var(), m.min, m.max))
    }

    /// (mean |y|, mean max(y, 0), [mean Huber_d(y) per requested delta]) after pass 1:
    /// the losses of a zero output.
    fn zero_losses(&self) -> Option<(f64, f64, Vec<f64>)> {
        lock(&self.sel).zero_losses()
    }

    /// The exact order statistic at 0-based rank k (None until resolved).
    fn order_stat(&self, k: u64) -> Option<f64> {
        lock(&self.sel).order_stat(k)
    }

    /// Pass-1 estimate (value, lower, upper, count of the bin) of rank k.
    fn order_stat_bounds(&self, k: u64) -> Option<(f64, f64, f64, u64)> {
        lock(&self.sel).order_stat_bounds(k)
    }

    /// (n below q, sum of q - y below, n equal, n above, sum of y - q above).
    fn dev_sums(&self, q: f64) -> PyResult<(u64, f64, u64, u64, f64)> {
        caught(|| lock(&self.sel).dev_sums(q)).map_err(to_py)
    }

    /// (exact location or None, bracket low, bracket high) for a requested delta.
    fn huber(&self, delta: f64) -> Option<(Option<f64>, f64, f64)> {
        lock(&self.sel).huber(delta)
    }

    /// Sum of the Huber loss at c (c = the resolved location).
    fn huber_sum(&self, delta: f64, c: f64) -> PyResult<f64> {
        caught(|| lock(&self.sel).huber_sum(delta, c)).map_err(to_py)
    }

    /// The quantile probabilities and Huber deltas this state resolves.
    fn requests(&self) -> (Vec<f64>, Vec<f64>) {
        let s = lock(&self.sel);
        (s.probs.clone(), s.deltas.clone())
    }

    /// (records, skipped, passes, column) of the file scan that made this state.
    fn info(&self) -> (u64, u64, u32, String) {
        lock(&self.info).clone()
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &ser::selector_to_bytes(&lock(&self.sel)))
    }

    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<RegState> {
        let s = caught(|| ser::selector_from_bytes(b)).map_err(to_py)?;
        Ok(RegState::wrap(s, (0, 0, 0, String::new())))
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let py = slf.py();
        let f = slf.get_type().getattr("from_bytes")?;
        Ok((f, (slf.get().to_bytes(py),)))
    }
}

/// Streaming class counts: integer labels and string labels, and the rows of a
/// multi-label scan.
#[pyclass(frozen, module = "headstart._core")]
pub struct ClassState {
    inner: Mutex<(IntCounts, StrCounts, u64)>,
    info: Mutex<(u64, u64, u32, String)>,
}

#[pymethods]
impl ClassState {
    #[new]
    fn new() -> Self {
        ClassState {
            inner: Mutex::new(Default::default()),
            info: Mutex::new((0, 0, 0, String::new())),
        }
    }

    /// Count a C-contiguous int64 array of labels.
    fn update_int(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let a = x
            .cast::<PyArrayDyn<i64>>()
            .map_err(|_| PyTypeError::new_err("update_int: expected an int64 array"))?;
        if !a.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "update_int: array must be C-contiguous",
            ));
        }
        let r = a.try_readonly()?;
        let v = r.as_slice()?;
        let mut g = lock(&self.inner);
        let ints = &mut g.0;
        detached(py, || {
            ints.add(v);
            Ok(())
        })
        .map_err(to_py)
    }

    /// Add counts of string labels.
    fn add_str(&self, labels: Vec<String>, counts: Vec<u64>) -> PyResult<()> {
        if labels.len() != counts.len() {
            return Err(PyValueError::new_err("labels and counts differ in length"));
        }
        let mut g = lock(&self.inner);
        for (l, n) in labels.iter().zip(counts) {
            g.1.add_n(l.as_bytes(), n);
        }
        Ok(())
    }

    /// Add rows to the multi-label row count.
    fn add_rows(&self, n: u64) {
        lock(&self.inner).2 += n;
    }

    fn merge(&self, other: &ClassState) -> PyResult<()> {
        if std::ptr::eq(self, other) {
            return Err(PyValueError::new_err("cannot merge a state with itself"));
        }
        let o = lock(&other.inner).clone();
        let mut g = lock(&self.inner);
        g.0.merge(&o.0);
        g.1.merge(&o.1);
        g.2 += o.2;
        Ok(())
    }

    /// (labels, counts) of the integer labels, sorted.
    fn int_counts(&self) -> (Vec<i64>, Vec<u64>) {
        lock(&self.inner).0.sorted().into_iter().unzip()
    }

    /// (labels, counts) of the string labels, sorted.
    fn str_counts(&self) -> PyResult<(Vec<String>, Vec<u64>)> {
        Ok(lock(&self.inner)
            .1
            .sorted()
            .map_err(to_py)?
            .into_iter()
            .unzip())
    }

    #[getter]
    fn rows(&self) -> u64 {
        lock(&self.inner).2
    }

    fn info(&self) -> (u64, u64, u32, String) {
        lock(&self.info).clone()
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let g = lock(&self.inner);
        let b = caught(|| ser::counts_to_bytes(&g.0, &g.1, g.2)).map_err(to_py)?;
        Ok(PyBytes::new(py, &b))
    }

    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<ClassState> {
        let (i, s, r) = caught(|| ser::counts_from_bytes(b)).map_err(to_py)?;
        Ok(ClassState {
            inner: Mutex::new((i, s, r)),
            info: Mutex::new((0, 0, 0, String::new())),
        })
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let py = slf.py();
        let f = slf.get_type().getattr("from_bytes")?;
        Ok((f, (slf.get().to_bytes(py)?,)))
    }
}

fn column(c: Option<&Bound<'_, PyAny>>) -> PyResult<Column> {
    match c {
        None => Ok(Column::Auto),
        Some(c) => {
            if let Ok(i) = c.extract::<usize>() {
                Ok(Column::Index(i))
            } else if let Ok(s) = c.extract::<String>() {
                Ok(Column::Name(s))
            } else {
                Err(PyTypeError::new_err(
                    "column must be a name (str) or a 0-based index (int)",
                ))
            }
        }
    }
}

fn text_opts(
    delimiter: Option<&str>,
    header: bool,
    col: Column,
    skip: bool,
    gz: bool,
) -> PyResult<TextOpts> {
    let delimiter = match delimiter {
        None => None,
        Some(d) if d.len() == 1 => Some(d.as_bytes()[0]),
        Some(d) => {
            return Err(PyValueError::new_err(format!(
                "delimiter must be one ASCII character, got {d:?}"
            )))
        }
    };
    Ok(TextOpts {
        delimiter,
        header,
        column: col,
        missing: if skip { Missing::Skip } else { Missing::Raise },
        gz,
    })
}

/// Scan one column of a file for regression statistics, running every pass.
/// `fmt`: "text" (delimited when `delimiter` is given) or "npy".
#[pyfunction]
#[pyo3(signature = (path, fmt, gz, delimiter, header, column, skip_nan, probs, deltas, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn scan_regression(
    py: Python<'_>,
    path: &str,
    fmt: &str,
    gz: bool,
    delimiter: Option<&str>,
    header: bool,
    column: Option<&Bound<'_, PyAny>>,
    skip_nan: bool,
    probs: Vec<f64>,
    deltas: Vec<f64>,
    progress: Option<Py<PyAny>>,
) -> PyResult<RegState> {
    let col = self::column(column)?;
    let mut sel = Selector::new(&probs, &deltas).map_err(to_py)?;
    let mut prog = PyProgress {
        cb: progress,
        err: None,
    };
    let r: CoreResult<(ScanInfo, String)> = if fmt == "npy" {
        let idx = match col {
            Column::Auto => 0,
            Column::Index(i) => i,
            Column::Name(n) => {
                return Err(PyValueError::new_err(format!(
                    "{path}: a .npy array has no column names (got column={n:?}); pass an index"
                )))
            }
        };
        let missing = if skip_nan {
            Missing::Skip
        } else {
            Missing::Raise
        };
        detached(py, || {
            let f = Npy::open(path)?;
            let info = f.scan_regression(idx, missing, &mut sel, &mut prog)?;
            Ok((info, format!("column {idx}")))
        })
    } else {
        let o = text_opts(delimiter, header, col, skip_nan, gz)?;
        detached(py, || text::scan_regression(path, &o, &mut sel, &mut prog))
    };
    let (info, name) = prog.finish(r)?;
    Ok(RegState::wrap(
        sel,
        (info.records, info.skipped, info.passes, name),
    ))
}

/// Count the classes of one column of a file (one pass).
#[pyfunction]
#[pyo3(signature = (path, fmt, gz, delimiter, header, column, skip_nan, multilabel_sep=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn scan_classes(
    py: Python<'_>,
    path: &str,
    fmt: &str,
    gz: bool,
    delimiter: Option<&str>,
    header: bool,
    column: Option<&Bound<'_, PyAny>>,
    skip_nan: bool,
    multilabel_sep: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<ClassState> {
    let col = self::column(column)?;
    let mut prog = PyProgress {
        cb: progress,
        err: None,
    };
    let sep = match multilabel_sep {
        None => None,
        Some(s) if s.len() == 1 => Some(s.as_bytes()[0]),
        Some(s) => {
            return Err(PyValueError::new_err(format!(
                "the label-set separator must be one ASCII character, got {s:?}"
            )))
        }
    };
    if fmt == "npy" {
        let idx = match col {
            Column::Auto => 0,
            Column::Index(i) => i,
            Column::Name(n) => {
                return Err(PyValueError::new_err(format!(
                    "{path}: a .npy array has no column names (got column={n:?}); pass an index"
                )))
            }
        };
        let r = detached(py, || {
            let f = Npy::open(path)?;
            let c = f.scan_int_classes(idx, &mut prog)?;
            Ok((c, f.rows as u64))
        });
        let (c, rows) = prog.finish(r)?;
        return Ok(ClassState {
            inner: Mutex::new((c, StrCounts::default(), 0)),
            info: Mutex::new((rows, 0, 1, format!("column {idx}"))),
        });
    }
    let o = text_opts(delimiter, header, col, skip_nan, gz)?;
    let r = detached(py, || text::scan_classes(path, &o, sep, &mut prog));
    let s = prog.finish(r)?;
    Ok(ClassState {
        inner: Mutex::new((IntCounts::default(), s.counts, s.rows)),
        info: Mutex::new((s.info.records, s.info.skipped, 1, s.column)),
    })
}

/// Class counts of a raw binary file of integer ids (nanoGPT / llm.c token files).
/// `dtype`: uint8, uint16, uint32, int32, int64 (None: from llm.c's header); `header`:
/// "auto", "llmc" or "none".
#[pyfunction]
#[pyo3(signature = (path, dtype=None, header="auto", progress=None))]
pub fn scan_raw_classes(
    py: Python<'_>,
    path: &str,
    dtype: Option<&str>,
    header: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<ClassState> {
    let dtype = dtype.map(RawDtype::parse).transpose().map_err(to_py)?;
    let rule = HeaderRule::parse(header).map_err(to_py)?;
    let mut prog = PyProgress {
        cb: progress,
        err: None,
    };
    let r = detached(py, || {
        let f = RawFile::open(path, dtype, rule)?;
        let c = f.count(&mut prog)?;
        Ok((c, f.n as u64, f.describe()))
    });
    let (c, n, desc) = prog.finish(r)?;
    Ok(ClassState {
        inner: Mutex::new((c, StrCounts::default(), 0)),
        info: Mutex::new((n, 0, 1, desc)),
    })
}

/// What a raw file holds, without reading its values: (header: "llmc" or "none", magic,
/// version, values, dtype, offset of the first value in bytes).
#[pyfunction]
#[pyo3(signature = (path, dtype=None, header="auto"))]
pub fn raw_info(
    path: &str,
    dtype: Option<&str>,
    header: &str,
) -> PyResult<(String, i32, i32, u64, String, u64)> {
    let dtype = dtype.map(RawDtype::parse).transpose().map_err(to_py)?;
    let rule = HeaderRule::parse(header).map_err(to_py)?;
    let f = RawFile::open(path, dtype, rule).map_err(to_py)?;
    let (kind, m, v) = match f.llmc {
        Some((m, v)) => ("llmc", m, v),
        None => ("none", 0, 0),
    };
    Ok((
        kind.to_owned(),
        m,
        v,
        f.n as u64,
        f.dtype.name().to_owned(),
        f.offset as u64,
    ))
}
