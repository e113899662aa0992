"""Losses with torch.nn.functional's names, options and semantics, fused with their gradient.

Every loss takes ``return_grad=False`` and ``grad_out=None``. With ``return_grad=True`` (or a
``grad_out`` array) it returns ``(loss, grad)`` where ``grad`` is d(reduced loss)/d(input):
exactly what ``loss.backward()`` leaves in ``input.grad`` in torch (for ``reduction='none'``,
the gradient of the sum). ``grad_out`` may be the input itself: the gradient then overwrites
the logits and peak memory stays at one array.
"""

from __future__ import annotations

import operator
import warnings

import numpy as np

from . import _core
from ._ops import native

__all__ = ["cross_entropy"]

_REDUCTIONS = ("mean", "sum", "none")


def _float_input(x, name):
    a = np.asarray(x)
    if a.dtype.kind != "f" or a.dtype.itemsize > 8:
        raise TypeError(
            f"{name}: input must be a float16, float32 or float64 array of logits, got {a.dtype}"
        )
    a = native(a)  # big-endian '>f4' from np.load / np.frombuffer / FITS
    cdt = np.dtype(np.float32) if a.dtype == np.float16 else a.dtype
    return a, cdt


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _legacy(size_average, reduce, reduction):
    """torch's deprecated ``size_average`` / ``reduce`` slots, read as torch reads them
    (``torch.nn._reduction.legacy_get_string``): when either is given it decides the
    reduction, with torch's warning. The slots are there so that calls passing later
    arguments by position (``cross_entropy(x, t, w, None, 3)``) mean what they mean in torch."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if (size_average and reduce) else ("sum" if reduce else "none")
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
        UserWarning,
        stacklevel=3,
    )
    return ret


def _class_weight(weight, c, name):
    """torch's class weight: a 1-D array of C entries (a (C, 1) or 0-d one is an error there)."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != c:
        raise ValueError(
            f"{name}: weight must be a 1-D array with one entry per class ({c}), "
            f"got shape {w.shape}"
        )
    return w


def _class_last(a, c_axis):
    """Move the class axis last and flatten to (rows, C), C-contiguous."""
    if a.ndim >= 3:
        a = np.moveaxis(a, c_axis, -1)
    return a


def _to_dtype(v, dtype):
    # Losses accumulate in float64; one beyond float32's range (a row with logits near
    # +-3.4e38) is inf in float32, as torch computes it, without numpy's cast warning.
    with np.errstate(over="ignore"):
        return np.asarray(v).astype(dtype)


def _scalar(v, dtype):
    return _to_dtype(v, dtype)[()]


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
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
    Targets out of range raise IndexError (torch does the same). ``size_average`` and
    ``reduce`` are torch's deprecated slots (see the README), kept so positional calls match.
    """
    reduction = _legacy(size_average, reduce, reduction)
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
        ignore = _ignore_index(ignore_index)
        if ignore >= 0:
            # torch: "ignore_index is not supported for floating point target"; a
            # negative one (the default -100) matches no class and is accepted.
            raise ValueError(
                f"cross_entropy: ignore_index={ignore_index!r} cannot apply to probability "
                "targets (it selects class-index rows); leave it at the default"
            )
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
            raise IndexError(
                f"cross_entropy: target {int(ts.max())} is out of range (class indices fit int64)"
            )
        tbuf = np.ascontiguousarray(ts, dtype=np.int64).reshape(-1)
        ignore = _ignore_index(ignore_index)
    w = None
    if weight is not None:
        w = _class_weight(weight, c, "cross_entropy")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")

    if (
        grad_out is not None
        and isinstance(grad_out, np.ndarray)
        and np.may_share_memory(grad_out, target)
    ):
        raise ValueError(
            "cross_entropy: grad_out overlaps the target array; the gradient may overwrite "
            "the input (grad_out=input), not the targets"
        )
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
        loss = _to_dtype(per, x.dtype).reshape(shape)
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


def _ignore_index(v):
    try:
        return operator.index(v)  # torch: an int; 1.5 is a TypeError
    except TypeError:
        raise TypeError(f"cross_entropy: ignore_index must be an integer, got {v!r}") from None


def _check_probs(t):
    """Probability targets: no negative entry, rows summing to 1 (say which row)."""
    if t.size == 0:
        return
    bad = np.flatnonzero((t < 0).any(axis=1) | np.isnan(t).any(axis=1))
    if bad.size:
        raise ValueError(f"cross_entropy: probability targets must be >= 0; row {bad[0]} is not")
    tol = 1e-6 if t.dtype == np.float64 else 1e-3
    sums = t.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1.0) > tol * max(1.0, t.shape[1] ** 0.5))
    if bad.size:
        raise ValueError(
            f"cross_entropy: probability targets must sum to 1 over the classes; "
            f"row {bad[0]} sums to {sums[bad[0]]:.6g}"
        )


def _elementwise(
    kind,
    name,
    input,
    target,
    reduction,
    return_grad,
    grad_out,
    param=0.0,
    full=False,
    eps=0.0,
    weight=None,
    pos_weight=None,
):
    _check_reduction(reduction)
    x, cdt = _float_input(input, name)
    t = np.asarray(target)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"{name}: target must be numeric, got {t.dtype}")
    try:
        t = np.broadcast_to(t, x.shape)
    except ValueError:
        raise ValueError(
            f"{name}: target of shape {t.shape} does not broadcast to input shape {x.shape}"
        ) from None
    # np.asarray(order="C"), not np.ascontiguousarray: that one turns 0-d into (1,).
    xbuf = x if (x.dtype == cdt and x.flags.c_contiguous) else np.asarray(x, cdt, order="C")
    tbuf = np.asarray(t, dtype=cdt, order="C")
    wbuf = None
    if weight is not None:
        w = np.asarray(weight)
        try:
            wbuf = np.asarray(np.broadcast_to(w, x.shape), dtype=cdt, order="C")
        except ValueError:
            raise ValueError(
                f"{name}: weight of shape {w.shape} does not broadcast to input shape {x.shape}"
            ) from None
    pw = None
    if pos_weight is not None:
        p = np.asarray(pos_weight)
        if p.dtype.kind not in "biuf":
            raise TypeError(f"{name}: pos_weight must be numeric, got {p.dtype}")
        p = p.astype(np.float64)
        try:
            fits = np.broadcast_shapes(p.shape, x.shape) == x.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"{name}: pos_weight of shape {p.shape} does not broadcast to input shape "
                f"{x.shape} (torch broadcasts it by shape: one entry per class of the last "
                "dimension is shape (C,))"
            )
        lead = 0
        while lead < p.ndim - 1 and p.shape[lead] == 1:
            lead += 1
        p = p.reshape(p.shape[lead:])
        if p.ndim > 1 or (p.ndim == 1 and x.ndim == 0):
            # Varies along more than the last axis: torch's broadcast, evaluated in float64.
            return _bce_broadcast(name, x, t, weight, p, reduction, return_grad, grad_out)
        k = x.shape[-1] if x.ndim else 1
        # no elements, nothing to weigh (torch: NaN mean, 0 sum); the kernel wants C > 0
        pw = np.broadcast_to(p, (k,)).tolist() if x.size else None
    per = np.empty(x.shape, dtype=cdt) if reduction == "none" else None
    want_grad = return_grad or grad_out is not None
    into_out = False
    gbuf = None
    if grad_out is not None:
        _check_grad_out(name, grad_out, x)
        if grad_out.dtype == cdt and grad_out.flags.c_contiguous:
            if grad_out is input and xbuf is input:
                gbuf = xbuf
                into_out = True
            elif not (
                np.may_share_memory(grad_out, tbuf)
                or (wbuf is not None and np.may_share_memory(grad_out, wbuf))
                or np.may_share_memory(grad_out, xbuf)
            ):
                gbuf = grad_out
                into_out = True
    if want_grad and gbuf is None:
        gbuf = xbuf if xbuf is not x and not np.may_share_memory(xbuf, x) else np.empty_like(xbuf)
    value = _core.elementwise_loss(
        kind, float(param), bool(full), float(eps), xbuf, tbuf, wbuf, pw, reduction, per, gbuf
    )
    if reduction == "none":
        loss = per.astype(x.dtype, copy=False)
        loss = loss[()] if loss.ndim == 0 else loss
    else:
        loss = _scalar(value, x.dtype)
    if not want_grad:
        return loss
    if into_out:
        return loss, grad_out
    if grad_out is not None:
        np.copyto(grad_out, gbuf)
        return loss, grad_out
    return loss, gbuf.astype(x.dtype, copy=False)


def _bce_broadcast(name, x, t, weight, pw, reduction, return_grad, grad_out):
    """BCE with logits for a ``pos_weight`` that varies along more than the last axis
    (e.g. (N, 1) per sample), broadcast as torch broadcasts it. The same stable formula
    as the kernels, in float64 numpy: this shape is rare, the kernels take one weight per
    column."""
    with np.errstate(all="ignore"):
        xd = x.astype(np.float64)
        y = np.broadcast_to(t, x.shape).astype(np.float64)
        p = np.broadcast_to(pw, x.shape)
        w = 1.0 if weight is None else np.broadcast_to(np.asarray(weight, np.float64), x.shape)
        c = 1.0 + (p - 1.0) * y
        e = np.exp(-np.abs(xd))
        lp = np.log1p(e)
        per = w * np.where(xd >= 0, (1.0 - y) * xd + c * lp, xd * (1.0 - y - c) + c * lp)
        n = per.size
        if reduction == "none":
            loss = _to_dtype(per, x.dtype)
            loss = loss[()] if loss.ndim == 0 else loss
        else:
            total = per.sum()
            loss = _scalar(total / n if reduction == "mean" else total, x.dtype)
        if not (return_grad or grad_out is not None):
            return loss
        sig = np.where(xd >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        g = w * (sig * c - p * y)
        if reduction == "mean":
            g = g / n
    g = _to_dtype(g, x.dtype)
    if grad_out is not None:
        _check_grad_out(name, grad_out, x)
        np.copyto(grad_out, g)
        return loss, grad_out
    return loss, g


def _check_grad_out(name, grad_out, x):
    if not isinstance(grad_out, np.ndarray):
        raise TypeError(f"{name}: grad_out must be a numpy array")
    if grad_out.shape != x.shape or grad_out.dtype != x.dtype:
        raise ValueError(
            f"{name}: grad_out must have the input's shape {x.shape} and dtype {x.dtype}"
        )
    if not grad_out.flags.writeable:
        raise ValueError(f"{name}: grad_out is read-only")


_GRAD_DOC = """
    With ``return_grad=True`` (or ``grad_out=``) returns ``(loss, grad)``, ``grad`` being
    d(reduced loss)/d(input) as torch autograd gives it; ``grad_out`` may be the input itself.
    ``target`` must broadcast to the input's shape. ``'mean'`` averages over all elements."""


def l1_loss(
    input,
    target,
    size_average=None,
    reduce=None,
    reduction="mean",
    *,
    return_grad=False,
    grad_out=None,
):
    """Mean absolute error ``|input - target|`` (torch ``F.l1_loss``); gradient sign(r), 0 at 0."""
    reduction = _legacy(size_average, reduce, reduction)
    return _elementwise("l1", "l1_loss", input, target, reduction, return_grad, grad_out)


def mse_loss(
    input,
    target,
    size_average=None,
    reduce=None,
    reduction="mean",
    *,
    return_grad=False,
    grad_out=None,
):
    """Squared error ``(input - target)**2`` (torch ``F.mse_loss``; not optax's 0.5 r^2)."""
    reduction = _legacy(size_average, reduce, reduction)
    return _elementwise("mse", "mse_loss", input, target, reduction, return_grad, grad_out)


def huber_loss(input, target, reduction="mean", delta=1.0, *, return_grad=False, grad_out=None):
    """Huber loss (torch ``F.huber_loss``): 0.5 r^2 if |r| < delta else delta (|r| - delta/2);
    gradient clip(r, -delta, delta)."""
    return _elementwise(
        "huber", "huber_loss", input, target, reduction, return_grad, grad_out, param=delta
    )


def smooth_l1_loss(
    input,
    target,
    size_average=None,
    reduce=None,
    reduction="mean",
    beta=1.0,
    *,
    return_grad=False,
    grad_out=None,
):
    """Smooth L1 (torch ``F.smooth_l1_loss``) = Huber_beta / beta; beta = 0 gives L1."""
    reduction = _legacy(size_average, reduce, reduction)
    return _elementwise(
        "smooth_l1", "smooth_l1_loss", input, target, reduction, return_grad, grad_out, param=beta
    )


def pinball_loss(input, target, tau=0.5, reduction="mean", *, return_grad=False, grad_out=None):
    """Pinball (quantile) loss at level ``tau`` on u = target - input: max(tau u, (tau-1) u).

    Minimised by the tau-quantile of the targets. Gradient -tau where u > 0, 1 - tau where
    u < 0, and 0 at u = 0."""
    return _elementwise(
        "pinball", "pinball_loss", input, target, reduction, return_grad, grad_out, param=tau
    )


quantile_loss = pinball_loss


def poisson_nll_loss(
    input,
    target,
    log_input=True,
    full=False,
    size_average=None,
    eps=1e-8,
    reduce=None,
    reduction="mean",
    *,
    return_grad=False,
    grad_out=None,
):
    """Poisson negative log-likelihood (torch ``F.poisson_nll_loss``).

    ``log_input=True``: exp(input) - target * input. ``log_input=False``:
    input - target * log(input + eps). ``full=True`` adds torch's Stirling term
    target log target - target + 0.5 log(2 pi target) where target > 1 (no gradient)."""
    reduction = _legacy(size_average, reduce, reduction)
    kind = "poisson_log" if log_input else "poisson"
    return _elementwise(
        kind,
        "poisson_nll_loss",
        input,
        target,
        reduction,
        return_grad,
        grad_out,
        full=full,
        eps=eps,
    )


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction="mean",
    pos_weight=None,
    *,
    return_grad=False,
    grad_out=None,
):
    """Binary cross-entropy on logits (torch ``F.binary_cross_entropy_with_logits``).

    Stable for logits of any magnitude: l = w [(1 - y) x + (1 + (pw - 1) y) softplus(-x)],
    evaluated for x < 0 as w [x (1 - y - c) + c log1p(e^x)] (c = 1 + (pw - 1) y), so tiny
    losses keep their value where torch's order of operations cancels them to 0 (x = -41,
    y = 0: 1.3e-18, torch 0). Infinite logits: NaN where that formula is 0 * inf (as torch),
    +inf where the loss tends to +inf (x = -inf, y = 1; torch gives NaN there).
    ``weight`` broadcasts to the input; ``pos_weight`` has one entry per class of the last
    dimension (shape (C,)), or any shape that broadcasts to the input (torch's rule:
    (N, 1) weighs each sample). ``'mean'`` is over all elements and is not normalised by
    the weights."""
    reduction = _legacy(size_average, reduce, reduction)
    return _elementwise(
        "bce",
        "binary_cross_entropy_with_logits",
        input,
        target,
        reduction,
        return_grad,
        grad_out,
        weight=weight,
        pos_weight=pos_weight,
    )


for _f in (
    l1_loss,
    mse_loss,
    huber_loss,
    smooth_l1_loss,
    pinball_loss,
    poisson_nll_loss,
    binary_cross_entropy_with_logits,
):
    _f.__doc__ += _GRAD_DOC
del _f

__all__ += [
    "binary_cross_entropy_with_logits",
    "huber_loss",
    "l1_loss",
    "mse_loss",
    "pinball_loss",
    "poisson_nll_loss",
    "quantile_loss",
    "smooth_l1_loss",
]


def _hinge(kind, name, input, target, p, margin, weight, reduction, return_grad, grad_out):
    _check_reduction(reduction)
    x, cdt = _float_input(input, name)
    if x.ndim > 2:
        raise ValueError(f"{name}: input must be (), (C,) or (N, C), got shape {x.shape}")
    single = x.ndim < 2  # torch: a 0-d input is one sample of one class
    xs = x.reshape(1, -1) if single else x
    n, c = xs.shape
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices, got {t.dtype}")
    if (single and t.shape not in ((), (1,))) or (not single and t.shape != (n,)):
        raise ValueError(
            f"{name}: target has shape {t.shape} for input of shape {x.shape}; expected "
            f"{'() or (1,)' if single else (n,)}"
        )
    tbuf = np.asarray(t, dtype=np.int64).reshape(-1)
    if p not in (1, 2):
        raise ValueError(f"{name}: p must be 1 or 2, got {p}")
    w = None
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64)
        if w.ndim != 1 or w.shape[0] != c:
            raise ValueError(
                f"{name}: weight must be a 1-D array with one entry per class ({c}), "
                f"got shape {w.shape}"
            )
        w = w.tolist()
    want_grad = return_grad or grad_out is not None
    if grad_out is not None:
        if not isinstance(grad_out, np.ndarray):
            raise TypeError(f"{name}: grad_out must be a numpy array")
        if grad_out.shape != x.shape or grad_out.dtype != x.dtype:
            raise ValueError(f"{name}: grad_out must have the input's shape and dtype")
        if not grad_out.flags.writeable:
            raise ValueError(f"{name}: grad_out is read-only")
    buf = xs if (xs.dtype == cdt and xs.flags.c_contiguous) else np.ascontiguousarray(xs, cdt)
    into_out = False
    gbuf = None
    if grad_out is not None and grad_out.dtype == cdt and grad_out.flags.c_contiguous:
        if grad_out is input and (buf is input or buf.base is input):
            gbuf, into_out = buf, True
        elif not np.may_share_memory(grad_out, buf):
            gbuf, into_out = grad_out.reshape(buf.shape), True
    if want_grad and gbuf is None:
        gbuf = buf if not np.may_share_memory(buf, x) else np.empty_like(buf)
    value, per = _core.hinge_loss(kind, buf, c, tbuf, int(p), float(margin), w, reduction, gbuf)
    if reduction == "none":
        loss = _to_dtype(per, x.dtype)
        if single:  # torch: the target's shape, () or (1,)
            loss = loss.reshape(t.shape)
            loss = loss[()] if loss.ndim == 0 else loss
    else:
        loss = _scalar(value, x.dtype)
    if not want_grad:
        return loss
    if into_out:
        return loss, grad_out
    g = gbuf.reshape(x.shape)
    if grad_out is not None:
        np.copyto(grad_out, g)
        return loss, grad_out
    return loss, g.astype(x.dtype, copy=False)


def multi_margin_loss(
    input,
    target,
    p=1,
    margin=1.0,
    weight=None,
    size_average=None,
    reduce=None,
    reduction="mean",
    *,
    return_grad=False,
    grad_out=None,
):
    """Multiclass hinge loss as ``torch.nn.functional.multi_margin_loss`` (Weston-Watkins,
    divided by C): (1/C) sum_{i != y} w_y max(0, margin - x_y + x_i)^p, p in {1, 2}.
    ``'mean'`` averages over N. The subgradient at the hinge (z = 0) is 0, as torch.
    A NaN score counts as a violation, so its row's loss is NaN (torch's CPU kernel skips
    it: its ``z > 0`` test fails for NaN, leaving a finite loss)."""
    reduction = _legacy(size_average, reduce, reduction)
    return _hinge(
        "multi_margin",
        "multi_margin_loss",
        input,
        target,
        p,
        margin,
        weight,
        reduction,
        return_grad,
        grad_out,
    )


def multiclass_hinge_loss(
    input,
    target,
    margin=1.0,
    variant="weston_watkins",
    p=1,
    weight=None,
    reduction="mean",
    *,
    return_grad=False,
    grad_out=None,
):
    """The course's multiclass SVM losses (cs231n convention, no 1/C).

    ``variant='weston_watkins'``: sum_{k != y} max(0, s_k - s_y + margin)^p.
    ``variant='crammer_singer'``: max(0, margin + max_{k != y} s_k - s_y) (``p`` must be 1);
    its subgradient puts +1 on the first (lowest-index) largest other score.
    ``weight`` scales each sample's loss by w_y; ``'mean'`` averages over N."""
    if variant not in ("weston_watkins", "crammer_singer"):
        raise ValueError(f"variant must be 'weston_watkins' or 'crammer_singer', got {variant!r}")
    if variant == "crammer_singer" and p != 1:
        raise ValueError("crammer_singer takes p=1 only")
    return _hinge(
        variant,
        "multiclass_hinge_loss",
        input,
        target,
        p,
        margin,
        weight,
        reduction,
        return_grad,
        grad_out,
    )


multi_margin_loss.__doc__ += _GRAD_DOC
multiclass_hinge_loss.__doc__ += _GRAD_DOC
__all__ += ["multi_margin_loss", "multiclass_hinge_loss"]
