//! Bindings for the losses: dtype dispatch, borrow of the buffers, GIL release.

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods, ToPyArray};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::{detached, to_py};
use crate::loss::ce::{self, CeOptions, Targets};
use crate::loss::elementwise::{elementwise, elementwise_inplace, Extra, Kind};
use crate::loss::hinge::{self, Hinge, HingeOptions};
use crate::loss::Reduction;
use crate::ops::Elem;

fn c_contig<T: numpy::Element>(a: &Bound<'_, PyArrayDyn<T>>, what: &str) -> PyResult<()> {
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{what}: array must be C-contiguous"
        )));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn ce_t<'py, T: Elem + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyArrayDyn<T>>,
    c: usize,
    target: &Bound<'py, PyAny>,
    probs: bool,
    weight: Option<Vec<f64>>,
    opts: (i64, f64, Reduction),
    grad: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Option<Bound<'py, PyAny>>)> {
    c_contig(x, "input")?;
    let (ignore_index, label_smoothing, reduction) = opts;
    let o = CeOptions {
        weight: weight.as_deref(),
        ignore_index,
        label_smoothing,
        reduction,
    };
    // Targets: int64 indices or probabilities of the input's dtype (prepared in Python).
    let idx;
    let prb;
    let (ti, tp) = if probs {
        let t = target
            .cast::<PyArrayDyn<T>>()
            .map_err(|_| PyTypeError::new_err("probability targets must have the input's dtype"))?;
        c_contig(t, "target")?;
        prb = t.try_readonly()?;
        (None, Some(prb.as_slice()?))
    } else {
        let t = target
            .cast::<PyArrayDyn<i64>>()
            .map_err(|_| PyTypeError::new_err("class targets must be int64"))?;
        c_contig(t, "target")?;
        idx = t.try_readonly()?;
        (Some(idx.as_slice()?), None)
    };
    let targets = || match (ti, tp) {
        (Some(t), _) => Targets::Index(t),
        (_, Some(p)) => Targets::Probs(p),
        _ => unreachable!("one of the two is set above"),
    };
    let res = match grad {
        None => {
            let r = x.try_readonly()?;
            let xs = r.as_slice()?;
            detached(py, || ce::cross_entropy(xs, c, targets(), &o, None))
        }
        Some(g) if g.is(x) => {
            let mut w = x.try_readwrite()?;
            let xs = w.as_slice_mut()?;
            detached(py, || ce::cross_entropy_inplace(xs, c, targets(), &o))
        }
        Some(g) => {
            let g = g
                .cast::<PyArrayDyn<T>>()
                .map_err(|_| PyTypeError::new_err("grad_out must have the input's dtype"))?;
            c_contig(g, "grad_out")?;
            let r = x.try_readonly()?;
            let mut w = g.try_readwrite()?;
            let (xs, gs) = (r.as_slice()?, w.as_slice_mut()?);
            detached(py, || ce::cross_entropy(xs, c, targets(), &o, Some(gs)))
        }
    }
    .map_err(to_py)?;
    let per = res.per_item.map(|v| v.to_pyarray(py).into_any());
    Ok((res.value, per))
}

/// Cross-entropy over C-contiguous (N, C) logits; see headstart.cross_entropy.
/// Returns (reduced value, per-item float64 losses for reduction='none' else None).
#[pyfunction]
#[pyo3(signature = (x, c, target, probs, weight, ignore_index, label_smoothing, reduction, grad=None))]
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    c: usize,
    target: &Bound<'py, PyAny>,
    probs: bool,
    weight: Option<Vec<f64>>,
    ignore_index: i64,
    label_smoothing: f64,
    reduction: &str,
    grad: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Option<Bound<'py, PyAny>>)> {
    let red = Reduction::parse(reduction).map_err(to_py)?;
    let opts = (ignore_index, label_smoothing, red);
    if let Ok(a) = x.cast::<PyArrayDyn<f32>>() {
        ce_t(py, a, c, target, probs, weight, opts, grad)
    } else if let Ok(a) = x.cast::<PyArrayDyn<f64>>() {
        ce_t(py, a, c, target, probs, weight, opts, grad)
    } else {
        Err(super::dtype_error("cross_entropy", x))
    }
}

fn kind_of(name: &str, param: f64, full: bool, eps: f64) -> PyResult<Kind> {
    Ok(match name {
        "l1" => Kind::L1,
        "mse" => Kind::Mse,
        "huber" => Kind::Huber(param),
        "smooth_l1" => Kind::SmoothL1(param),
        "pinball" => Kind::Pinball(param),
        "poisson_log" => Kind::PoissonLog { full },
        "poisson" => Kind::Poisson { full, eps },
        "bce" => Kind::Bce,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown loss kind {other:?}"
            )))
        }
    })
}

type Arr<'py, T> = Bound<'py, PyArrayDyn<T>>;

fn cast<'a, 'py, T: numpy::Element>(
    a: &'a Bound<'py, PyAny>,
    what: &str,
) -> PyResult<&'a Arr<'py, T>> {
    let a = a
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must have the input's dtype")))?;
    c_contig(a, what)?;
    Ok(a)
}

#[allow(clippy::too_many_arguments)]
fn ew_t<'py, T: Elem + numpy::Element>(
    py: Python<'py>,
    kind: Kind,
    x: &Arr<'py, T>,
    y: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    pos_weight: Option<Vec<f64>>,
    red: Reduction,
    per: Option<&Bound<'py, PyAny>>,
    grad: Option<&Bound<'py, PyAny>>,
) -> PyResult<f64> {
    c_contig(x, "input")?;
    let yr = cast::<T>(y, "target")?.try_readonly()?;
    let wr = match weight {
        Some(w) => Some(cast::<T>(w, "weight")?.try_readonly()?),
        None => None,
    };
    let mut pw = match per {
        Some(p) => Some(cast::<T>(p, "per-item output")?.try_readwrite()?),
        None => None,
    };
    let ys = yr.as_slice()?;
    let ws = match &wr {
        Some(w) => Some(w.as_slice()?),
        None => None,
    };
    let ps = match pw.as_mut() {
        Some(p) => Some(p.as_slice_mut()?),
        None => None,
    };
    let ex = Extra {
        weight: ws,
        pos_weight: pos_weight.as_deref(),
    };
    let r = match grad {
        None => {
            let xr = x.try_readonly()?;
            let xs = xr.as_slice()?;
            detached(py, || elementwise(kind, xs, ys, ex, red, ps, None))
        }
        Some(g) if g.is(x) => {
            let mut xw = x.try_readwrite()?;
            let xs = xw.as_slice_mut()?;
            detached(py, || elementwise_inplace(kind, xs, ys, ex, red, ps))
        }
        Some(g) => {
            let xr = x.try_readonly()?;
            let mut gw = cast::<T>(g, "grad_out")?.try_readwrite()?;
            let (xs, gs) = (xr.as_slice()?, gw.as_slice_mut()?);
            detached(py, || elementwise(kind, xs, ys, ex, red, ps, Some(gs)))
        }
    };
    r.map_err(to_py)
}

/// Element-wise losses over C-contiguous equal-size arrays; see headstart's l1_loss etc.
/// `per`: array receiving per-element losses (reduction='none'); `grad`: gradient buffer
/// (may be x itself). Returns the reduced value (NaN for 'none').
#[pyfunction]
#[pyo3(signature = (kind, param, full, eps, x, y, weight, pos_weight, reduction, per=None, grad=None))]
#[allow(clippy::too_many_arguments)]
pub fn elementwise_loss<'py>(
    py: Python<'py>,
    kind: &str,
    param: f64,
    full: bool,
    eps: f64,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    pos_weight: Option<Vec<f64>>,
    reduction: &str,
    per: Option<&Bound<'py, PyAny>>,
    grad: Option<&Bound<'py, PyAny>>,
) -> PyResult<f64> {
    let k = kind_of(kind, param, full, eps)?;
    let red = Reduction::parse(reduction).map_err(to_py)?;
    if let Ok(a) = x.cast::<PyArrayDyn<f32>>() {
        ew_t(py, k, a, y, weight, pos_weight, red, per, grad)
    } else if let Ok(a) = x.cast::<PyArrayDyn<f64>>() {
        ew_t(py, k, a, y, weight, pos_weight, red, per, grad)
    } else {
        Err(super::dtype_error(kind, x))
    }
}

#[allow(clippy::too_many_arguments)]
fn hinge_t<'py, T: Elem + numpy::Element>(
    py: Python<'py>,
    x: &Arr<'py, T>,
    c: usize,
    target: &Bound<'py, PyAny>,
    o: &HingeOptions<'_>,
    grad: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Option<Bound<'py, PyAny>>)> {
    c_contig(x, "input")?;
    let t = target
        .cast::<PyArrayDyn<i64>>()
        .map_err(|_| PyTypeError::new_err("class targets must be int64"))?;
    c_contig(t, "target")?;
    let tr = t.try_readonly()?;
    let ts = tr.as_slice()?;
    let res = match grad {
        None => {
            let r = x.try_readonly()?;
            let xs = r.as_slice()?;
            detached(py, || hinge::hinge(xs, c, ts, o, None))
        }
        Some(g) if g.is(x) => {
            let mut w = x.try_readwrite()?;
            let xs = w.as_slice_mut()?;
            detached(py, || hinge::hinge_inplace(xs, c, ts, o))
        }
        Some(g) => {
            let r = x.try_readonly()?;
            let mut w = cast::<T>(g, "grad_out")?.try_readwrite()?;
            let (xs, gs) = (r.as_slice()?, w.as_slice_mut()?);
            detached(py, || hinge::hinge(xs, c, ts, o, Some(gs)))
        }
    }
    .map_err(to_py)?;
    Ok((res.value, res.per_item.map(|v| v.to_pyarray(py).into_any())))
}

/// Multiclass hinge losses over C-contiguous (N, C) scores with int64 targets:
/// kind "multi_margin" (torch), "weston_watkins" or "crammer_singer" (cs231n convention).
/// Returns (reduced value, per-item float64 losses for 'none').
#[pyfunction]
#[pyo3(signature = (kind, x, c, target, p, margin, weight, reduction, grad=None))]
#[allow(clippy::too_many_arguments)]
pub fn hinge_loss<'py>(
    py: Python<'py>,
    kind: &str,
    x: &Bound<'py, PyAny>,
    c: usize,
    target: &Bound<'py, PyAny>,
    p: u32,
    margin: f64,
    weight: Option<Vec<f64>>,
    reduction: &str,
    grad: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Option<Bound<'py, PyAny>>)> {
    let kind = match kind {
        "multi_margin" => Hinge::MultiMargin,
        "weston_watkins" => Hinge::WestonWatkins,
        "crammer_singer" => Hinge::CrammerSinger,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown hinge kind {other:?}"
            )))
        }
    };
    let reduction = Reduction::parse(reduction).map_err(to_py)?;
    let o = HingeOptions {
        kind,
        p,
        margin,
        weight: weight.as_deref(),
        reduction,
    };
    if let Ok(a) = x.cast::<PyArrayDyn<f32>>() {
        hinge_t(py, a, c, target, &o, grad)
    } else if let Ok(a) = x.cast::<PyArrayDyn<f64>>() {
        hinge_t(py, a, c, target, &o, grad)
    } else {
        Err(super::dtype_error("hinge loss", x))
    }
}
