"""softmax, log_softmax and logsumexp: drop-ins for ``scipy.special``.

Everything here is argument handling; the work happens in the Rust core
(``headstart._core``), on C-contiguous ``(rows, n)`` buffers with the reduced axes last.
"""

from __future__ import annotations

import math

import numpy as np

from . import _core

try:  # numpy >= 2
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.numeric import normalize_axis_tuple

__all__ = ["log_softmax", "logsumexp", "softmax"]


def _as_real_array(x, name):
    """The input as an ndarray of a real numeric dtype, or a TypeError naming the dtype."""
    a = np.asarray(x)
    kind = a.dtype.kind
    if kind == "c":
        raise TypeError(
            f"{name}: complex input ({a.dtype}) is not supported; "
            "pass the real part, or use scipy.special for complex logsumexp"
        )
    if kind not in "biuf":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {a.dtype}")
    if kind == "f" and a.dtype.itemsize > 8:
        raise TypeError(
            f"{name}: {a.dtype} is not supported (computation is in float64); cast to float64 first"
        )
    return native(a)


def native(a):
    """``a`` in the machine's byte order (a big-endian ``>f4`` from ``np.load`` or
    ``np.frombuffer`` is converted, once; the result dtype is the native one, as numpy's
    ufuncs give)."""
    if not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


def _compute_dtype(result_dtype):
    """float16 results are computed in float32 (then rounded once)."""
    return np.dtype(np.float32) if result_dtype == np.float16 else np.dtype(result_dtype)


def _axes(ndim, axis):
    if axis is None:
        return tuple(range(ndim))
    if ndim == 0 and not isinstance(axis, tuple) and axis in (0, -1):
        # scipy's softmax / log_softmax take axis 0 or -1 on a 0-d array (numpy's reductions
        # treat a 0-d array as having that one axis); anything else is an AxisError there too.
        return ()
    return normalize_axis_tuple(axis, ndim)


def _rows(a, axes, cdt):
    """Move ``axes`` last and return (buffer as C-contiguous (rows, n) data, perm, n).

    Transposes into a contiguous buffer when the reduced axes are not already the last
    ones in C order (one copy; the kernels then stream rows).
    """
    keep = [i for i in range(a.ndim) if i not in axes]
    perm = keep + list(axes)
    n = math.prod(a.shape[i] for i in axes)
    t = a.transpose(perm) if perm != list(range(a.ndim)) else a
    buf = np.asarray(t, dtype=cdt, order="C")  # keeps 0-d (ascontiguousarray would not)
    return buf, perm, n


def _check_out(out, shape, dtype, name):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: out must be a numpy array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: out has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: out has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: out is read-only")


def _rowwise(x, axis, out, log, name):
    a = _as_real_array(x, name)
    rdt = a.dtype if a.dtype.kind == "f" else np.result_type(a.dtype, np.float16)
    cdt = _compute_dtype(rdt)
    axes = _axes(a.ndim, axis)
    if out is not None:
        _check_out(out, a.shape, rdt, name)
    identity = list(axes) == list(range(a.ndim - len(axes), a.ndim))
    if out is not None and identity and out.dtype == cdt and out.flags.c_contiguous:
        n = math.prod(a.shape[i] for i in axes)
        if a is out:  # in place: the kernels read each element before writing it
            _core.rowwise(out, out, n, log)
            return out
        src = np.asarray(a, dtype=cdt, order="C")
        if np.may_share_memory(src, out):
            src = src.copy()
        _core.rowwise(src, out, n, log)
        return out
    buf, perm, n = _rows(a, axes, cdt)
    if np.may_share_memory(buf, a):
        res = np.empty_like(buf)
        _core.rowwise(buf, res, n, log)
    else:  # buf is already a private copy: work in place, no second allocation
        res = buf
        _core.rowwise(res, res, n, log)
    if perm != list(range(a.ndim)):
        res = res.transpose(np.argsort(perm))
    if res.dtype != rdt:
        res = res.astype(rdt)
    if out is not None:
        np.copyto(out, res)
        return out
    return res[()] if res.ndim == 0 else res


def softmax(x, axis=None, *, out=None):
    """Softmax ``exp(x) / sum(exp(x))`` along ``axis``; a drop-in for ``scipy.special.softmax``.

    ``axis=None`` (the default, as in scipy) normalises over *all* elements; pass ``axis=-1``
    for per-row softmax. Integer input is promoted like numpy/scipy (int8 -> float16,
    int16 -> float32, wider -> float64); float16 is computed in float32; float32 stays
    float32. Computed with the max subtracted, in float64 internally, so no input
    overflows. Rows whose max is not finite follow scipy: an all ``-inf`` row or a row
    holding ``+inf`` gives NaN, and NaN propagates to its row.

    ``out``: an array of the result's shape and dtype to write into (``out=x`` works in
    place and allocates nothing). An empty input gives an empty result (scipy raises).
    """
    return _rowwise(x, axis, out, False, "softmax")


def log_softmax(x, axis=None, *, out=None):
    """Logarithm of softmax along ``axis``; a drop-in for ``scipy.special.log_softmax``.

    Computed as ``x - max - log1p(sum_{i != argmax} exp(x_i - max))``, so the largest
    entry's value is ``-log1p(s)`` to full relative accuracy (scipy rounds it through
    ``log(1 + s)``). Special values follow scipy: a row holding ``+inf`` gives NaN at the
    ``+inf`` entries and ``-inf`` elsewhere; an all ``-inf`` row gives NaN.
    ``out`` as in :func:`softmax`.
    """
    return _rowwise(x, axis, out, True, "log_softmax")


def _keep(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``log(sum(b * exp(a)))`` along ``axis``; a drop-in for ``scipy.special.logsumexp``.

    Same signature, defaults and edge semantics as scipy: ``axis=None`` reduces over all
    elements, ``axis`` may be a tuple, ``keepdims``; ``b`` broadcasts against ``a`` and an
    element with ``b == 0`` adds nothing; with ``return_sign=False`` a negative sum gives
    NaN, with ``return_sign=True`` the result is ``(log|sum|, sign)``. An empty reduction
    gives ``-inf``. Integer input gives float64; float32 stays float32.

    Without ``b`` the Rust kernel computes ``m + log1p(sum_{i != argmax} exp(a_i - m))``
    in one multi-threaded pass; with ``b`` a numpy path of the same formula is used.
    """
    a_in = a
    a = _as_real_array(a, "logsumexp")
    if a.ndim == 0:
        a = a.reshape(1)
    if b is not None:
        return _logsumexp_b(a, a_in, b, axis, keepdims, return_sign)
    rdt = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
    cdt = _compute_dtype(rdt)
    axes = _axes(a.ndim, axis)
    buf, perm, n = _rows(a, axes, cdt)
    kept = tuple(a.shape[i] for i in perm[: a.ndim - len(axes)])
    res = np.empty(kept, dtype=cdt)
    _core.logsumexp_rows(buf, res, n)
    if res.dtype != rdt:
        res = res.astype(rdt)
    if keepdims:
        res = res.reshape(_keep(a.shape, axes))
    if return_sign:
        with np.errstate(invalid="ignore"):
            sgn = (
                np.sign(res)
                if a.size == 0
                else np.where(res == -np.inf, 0.0, np.sign(res + np.inf))
            )
        sgn = np.asarray(sgn, dtype=rdt)
        return (res[()] if res.ndim == 0 else res), (sgn[()] if sgn.ndim == 0 else sgn)
    return res[()] if res.ndim == 0 else res


def _weak(v, arr):
    """A Python scalar stays weak in the result dtype (numpy 2 / array API promotion):
    ``logsumexp(float32_array, b=2.0)`` is float32, as in scipy."""
    return v if isinstance(v, (bool, int, float)) else arr.dtype


def _logsumexp_b(a, a_in, b_in, axis, keepdims, return_sign):
    """The weighted form, in numpy (float64 or the common float dtype of a and b)."""
    b = _as_real_array(b_in, "logsumexp")
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(
            f"logsumexp: b of shape {b.shape} does not broadcast against a of shape {a.shape}"
        ) from None
    rdt = np.result_type(_weak(a_in, a), _weak(b_in, b))
    if rdt.kind != "f":
        rdt = np.dtype(np.float64)
    cdt = np.dtype(np.float64) if rdt == np.float16 else rdt
    axes = _axes(a.ndim, axis)
    a = a.astype(cdt)
    b = b.astype(cdt)
    with np.errstate(all="ignore"):
        if a.size == 0:
            out = np.full(_keep(a.shape, axes), -np.inf, dtype=cdt)
            sgn = np.sign(out)
        else:
            a = np.where(b == 0, -np.inf, a)  # a zero weight removes the element
            m = np.max(a, axis=axes, keepdims=True)
            shift = np.where(np.isfinite(m), m, 0.0)
            s = np.sum(b * np.exp(a - shift), axis=axes, keepdims=True)
            # Where the max is +inf the finite terms vanish beside it: the limit is
            # log|sum of b over the +inf entries| + inf, so [inf, 1] with b = [1, -1] is
            # +inf (sign +1), not inf - inf. Opposite weights on +inf entries that cancel
            # exactly stay NaN: that sum has no limit.
            posinf = m == np.inf
            if posinf.any():
                s_inf = np.sum(np.where(a == np.inf, b, 0.0), axis=axes, keepdims=True)
                s_inf = np.where(np.isnan(s), np.nan, s_inf)  # NaN elsewhere in the row wins
                s = np.where(posinf, np.where(s_inf == 0, np.nan, s_inf), s)
            sgn = np.sign(s)
            out = np.log(np.abs(s)) + shift
            out = np.where(posinf & ~np.isnan(s), np.inf, out)
            if not return_sign:
                out = np.where(sgn < 0, np.nan, out)
    if not keepdims:
        out = out.reshape([s for i, s in enumerate(out.shape) if i not in axes])
        sgn = sgn.reshape(out.shape)
    out = out.astype(rdt, copy=False)
    sgn = sgn.astype(rdt, copy=False)
    out = out[()] if out.ndim == 0 else out
    sgn = sgn[()] if sgn.ndim == 0 else sgn
    return (out, sgn) if return_sign else out
