"""Losses with torch.nn.functional's names, options and semantics, fused with their gradient.

Every loss takes ``return_grad=False`` and ``grad_out=None``. With ``return_grad=True`` (or a
``grad_out`` array) it returns ``(loss, grad)`` where ``grad`` is d(reduced loss)/d(input):
exactly what ``loss.backward()`` leaves in ``input.grad`` in torch (for ``reduction='none'``,
the gradient of the sum). ``grad_out`` may be the input itself: the gradient then overwrites
the logits and peak memory stays at one array.
"""

from __future__ import annotations

import numpy as np

from . import _core

__all__ = ["cross_entropy"]

_REDUCTIONS = ("mean", "sum", "none")


def _float_input(x, name):
    a = np.asarray(x)
    if a.dtype.kind != "f" or a.dtype.itemsize > 8:
        raise TypeError(
            f"{name}: input must be a float16, float32 or float64 array of logits, got {a.dtype}"
        )
    cdt = np.dtype(np.float32) if a.dtype == np.float16 else a.dtype
    return a, cdt


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_last(a, c_axis):
    """Move the class axis last and flatten to (rows, C), C-contiguous."""
    if a.ndim >= 3:
        a = np.moveaxis(a, c_axis, -1)
    return a


def _scalar(v, dtype):
    return np.asarray(v, dtype=dtype)[()]


def cross_entropy(
    input,
    target,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    label_smoothing=0.0,
    *,
    return_grad=False,
    grad_out=None,
):
    """Cross-entropy between logits and class targets, as ``torch.nn.functional.cross_entropy``.

    ``input``: logits of shape (C,), (N, C) or (N, C, d1, ..., dK) (class dimension 1, as
    in torch). ``target``: class indices of any integer dtype, shape (), (N,) or
    (N, d1, ..., dK); or class probabilities of the input's shape (a float array).

    - ``weight``: per-class weights (length C). With index targets ``'mean'`` divides by
      the sum of the targets' weights (torch's weighted mean); with probabilities by N.
    - ``ignore_index``: rows whose target equals it have loss 0 and gradient 0 and are not
      counted; a batch where every row is ignored gives NaN for ``'mean'`` (as torch).
    - ``label_smoothing``: eps in [0, 1]; the target becomes (1-eps) onehot + eps/C, with
      the weights applied as torch applies them.
    - ``reduction``: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns the loss (a numpy scalar of the input dtype, or an array for ``'none'``), or
    ``(loss, grad)`` with ``return_grad=True`` / ``grad_out=``. NaN in the input propagates
    to that row's loss and gradient; a row holding ``+inf`` gives inf/NaN like torch.
    Targets out of range raise IndexError (torch does the same).
    """
    _check_reduction(reduction)
    x, cdt = _float_input(input, "cross_entropy")
    if x.ndim == 0:
        raise ValueError("cross_entropy: input must have at least 1 dimension (the classes)")
    single = x.ndim == 1
    xs = x.reshape(1, -1) if single else x
    c = xs.shape[1]
    c_axis = 1
    t = np.asarray(target)
    probs = t.dtype.kind == "f"
    if probs:
        if t.shape != x.shape:
            raise ValueError(
                f"cross_entropy: probability targets have shape {t.shape}, input {x.shape}"
            )
        ts = t.reshape(1, -1) if single else t
        tbuf = np.ascontiguousarray(_class_last(ts, c_axis), dtype=cdt).reshape(-1, c)
        _check_probs(tbuf)
        ignore = ignore_index
    else:
        if t.dtype.kind not in "iu":
            raise TypeError(
                f"cross_entropy: target must hold integer class indices or float "
                f"probabilities, got {t.dtype}"
            )
        want = xs.shape[:1] + xs.shape[2:]
        ts = t.reshape(1) if single and t.ndim == 0 else t
        if ts.shape != want:
            raise ValueError(
                f"cross_entropy: target has shape {t.shape}; expected "
                f"{() if single else want} for input of shape {x.shape}"
            )
        if t.dtype == np.uint64 and ts.size and ts.max() > np.iinfo(np.int64).max:
            raise IndexError("cross_entropy: target out of range for int64")
        tbuf = np.ascontiguousarray(ts, dtype=np.int64).reshape(-1)
        ignore = int(ignore_index)
    w = None
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64).reshape(-1)
        if w.shape[0] != c:
            raise ValueError(f"cross_entropy: weight has {w.shape[0]} entries for {c} classes")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")

    moved = _class_last(xs, c_axis)
    want_grad = return_grad or grad_out is not None
    if grad_out is not None:
        if not isinstance(grad_out, np.ndarray):
            raise TypeError("grad_out must be a numpy array")
        if grad_out.shape != x.shape or grad_out.dtype != x.dtype:
            raise ValueError(
                f"grad_out must have the input's shape {x.shape} and dtype {x.dtype}, "
                f"got {grad_out.shape} {grad_out.dtype}"
            )
        if not grad_out.flags.writeable:
            raise ValueError("grad_out is read-only")

    direct = (
        grad_out is not None
        and x.ndim <= 2
        and x.dtype == cdt
        and x.flags.c_contiguous
        and grad_out.flags.c_contiguous
    )
    into_out = False  # the kernel writes straight into grad_out
    if direct and grad_out is input:
        buf = x.reshape(-1, c)  # a view of the caller's array: gradient written in place
        gbuf = buf
        into_out = True
    else:
        buf = np.ascontiguousarray(moved, dtype=cdt).reshape(-1, c)
        if direct and not np.may_share_memory(grad_out, buf):
            gbuf = grad_out.reshape(-1, c)
            into_out = True
        elif want_grad:
            # A private copy of the logits can take the gradient in place.
            gbuf = buf if not np.may_share_memory(buf, x) else np.empty_like(buf)
        else:
            gbuf = None
    value, per = _core.cross_entropy(
        buf,
        c,
        tbuf,
        probs,
        None if w is None else w.tolist(),
        ignore,
        float(label_smoothing),
        reduction,
        gbuf,
    )
    if reduction == "none":
        shape = () if single else xs.shape[:1] + xs.shape[2:]
        loss = per.astype(x.dtype).reshape(shape)
        loss = loss[()] if loss.ndim == 0 else loss
    else:
        loss = _scalar(value, x.dtype)
    if not want_grad:
        return loss
    if into_out:
        return loss, grad_out
    g = gbuf.reshape(moved.shape)
    if x.ndim >= 3:
        g = np.moveaxis(g, -1, c_axis)
    g = g.reshape(x.shape)
    if grad_out is not None:
        np.copyto(grad_out, g)
        return loss, grad_out
    return loss, g.astype(x.dtype, copy=False)


def _check_probs(t):
    """Probability targets: no negative entry, rows summing to 1 (say which row)."""
    if t.size == 0:
        return
    bad = np.flatnonzero((t < 0).any(axis=1) | np.isnan(t).any(axis=1))
    if bad.size:
        raise ValueError(
            f"cross_entropy: probability targets must be >= 0; row {bad[0]} is not"
        )
    tol = 1e-6 if t.dtype == np.float64 else 1e-3
    sums = t.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1.0) > tol * max(1.0, t.shape[1] ** 0.5))
    if bad.size:
        raise ValueError(
            f"cross_entropy: probability targets must sum to 1 over the classes; "
            f"row {bad[0]} sums to {sums[bad[0]]:.6g}"
        )
