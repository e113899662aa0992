"""check_init's verdict: a model's first loss against the optimum and the zero-bias value."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._core import HeadstartError
from .fmt import jsonable
from .result import BiasInit

__all__ = ["InitCheck", "batch_references", "check_width", "observed_loss", "verdict"]
_NAIVE_NAME = {
    "softmax": "uniform",
    "sigmoid": "zero logits",
    "hinge": "equal scores",
    "regression": "zero output",
}


@dataclass(repr=False)
class InitCheck:
    """The verdict of :func:`check_init`. ``str(check)`` is one sentence to act on.

    ``verdict``: ``"ok"`` (within ``tolerance`` of the optimum), ``"bias_off"`` (at the
    zero-bias value: the bias was not set), ``"partial"`` (between the two), ``"too_high"``
    (above even the zero-bias value: the initial outputs are too large), ``"above_optimum"``
    (above the optimum when the zero-bias value is unknown) or ``"below_optimum"`` (lower
    than any constant output can reach: labels or loss options differ from the model's) or
    ``"inconclusive"`` (the first loss is within ``tolerance`` of both the optimum and the
    zero-bias value: their gap is over 1% of the optimum, but a batch mean of this size
    cannot tell them apart).

    With logits and targets, the optimum and the zero-bias value are the losses of the
    bias_init constant and of zero logits on that very batch (no sampling noise), and the
    tolerance is the larger of 1% of the optimum and 5% of their gap; with a loss value
    alone they are the dataset's, and the tolerance also covers three standard errors of a
    batch mean (``batch_size=``).
    """

    observed: float
    optimum: float
    naive: float | None
    tolerance: float
    batch_size: int | None
    verdict: str
    message: str
    result: BiasInit

    @property
    def ok(self) -> bool:
        """True when the first loss is within ``tolerance`` of the optimum."""
        return self.verdict == "ok"

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"InitCheck({self.verdict!r}: {self.message})"

    def to_dict(self) -> dict:
        return {
            "observed": self.observed,
            "optimum": self.optimum,
            "naive": self.naive,
            "tolerance": self.tolerance,
            "batch_size": self.batch_size,
            "verdict": self.verdict,
            "message": self.message,
        }


def _fmt_distinct(values) -> list[str]:
    """Format numbers with 3 significant digits, more where distinct values would print alike."""
    vals = [v for v in values if v is not None]
    for digits in range(3, 10):
        out = [f"{v:#.{digits}g}".rstrip(".") for v in vals]  # 2.30, not 2.3
        clash = any(
            out[i] == out[j] and vals[i] != vals[j]
            for i in range(len(vals))
            for j in range(i + 1, len(vals))
        )
        if not clash:
            break
    it = iter(out)
    return [None if v is None else next(it) for v in values]


def _sampling_sd(result: BiasInit) -> float | None:
    """Standard deviation of one sample's contribution to the mean loss at the optimum (a batch
    of B labels drawn from the training set has sd / sqrt(B)), or None when unknown."""
    d = result.details
    if result.family in ("softmax", "hinge") and d.get("per_class_loss") is not None:
        f = result.frequencies
        u = np.asarray(d["per_class_loss"], np.float64)
        v = np.asarray(d.get("per_class_weight", np.ones_like(u)), np.float64)
        live = f > 0
        if not np.all(np.isfinite(u[live])):
            return None
        ev = float(np.dot(f, v))
        mean = float(np.dot(f[live], u[live])) / ev
        # delta method for the ratio sum(u) / sum(v) of a weighted batch mean
        var = float(np.dot(f[live], (u[live] - mean * v[live]) ** 2)) / ev**2
        return math.sqrt(max(var, 0.0))
    if result.family == "sigmoid" and "per_output_sample_loss" in d:
        pos, neg = (np.asarray(x, np.float64) for x in d["per_output_sample_loss"])
        p = np.asarray(d["rates"], np.float64)
        with np.errstate(invalid="ignore"):
            terms = np.where((p > 0) & (p < 1), p * (1 - p) * (pos - neg) ** 2, 0.0)
        if not np.all(np.isfinite(terms)):
            return None
        return math.sqrt(float(terms.sum())) / p.shape[0]
    return None


def _class_indices(result: BiasInit, target) -> np.ndarray:
    t = np.asarray(target)
    if t.dtype.kind in "iu":
        return t.astype(np.int64, copy=False)
    if t.dtype.kind == "b":
        return t.astype(np.int64)
    if t.dtype.kind == "f" and t.size and np.all(t == np.round(t)):
        return t.astype(np.int64)
    pos = {jsonable(c): i for i, c in enumerate(result.classes)}
    try:
        return np.array([pos[jsonable(x)] for x in t.reshape(-1)], np.int64).reshape(t.shape)
    except KeyError as e:
        raise HeadstartError(f"target label {e.args[0]!r} is not one of the classes") from None


def observed_loss(result: BiasInit, logits, target) -> tuple[float, int]:
    """The model's loss on (logits, target) with the result's loss and options, and the
    batch size."""
    from .. import _losses as L

    x = np.asarray(logits)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    o = result.options
    fam = result.family
    if fam == "softmax":
        t = np.asarray(target)
        if t.ndim == x.ndim and t.dtype.kind == "f" and t.shape == x.shape:
            val = L.cross_entropy(
                x,
                t.astype(x.dtype),
                weight=None if o["weight"] is None else np.asarray(o["weight"], x.dtype),
                label_smoothing=o["label_smoothing"],
            )
            return float(val), int(t.shape[0]) if t.ndim > 1 else 1
        t = _class_indices(result, target)
        val = L.cross_entropy(
            x,
            t,
            weight=None if o["weight"] is None else np.asarray(o["weight"], x.dtype),
            ignore_index=o["ignore_index"],
            label_smoothing=o["label_smoothing"],
        )
        return float(val), int(t.size)
    if fam == "hinge":
        t = _class_indices(result, target)
        w = None if o["weight"] is None else np.asarray(o["weight"], np.float64)
        if result.loss == "multi_margin_loss":
            val = L.multi_margin_loss(x, t, p=o["p"], margin=o["margin"], weight=w)
        else:
            val = L.multiclass_hinge_loss(
                x, t, margin=o["margin"], variant=o["variant"], p=o["p"], weight=w
            )
        return float(val), int(t.size)
    if fam == "sigmoid":
        t = np.asarray(target)
        k = len(result)
        if "positive_class" in result.details and t.ndim <= 1:
            pos = result.details["positive_class"]
            if t.dtype.kind not in "f" or not np.all((t == 0) | (t == 1)):
                t = (t == np.asarray(pos, dtype=t.dtype)).astype(np.float64)
            x = x.reshape(t.shape) if x.size == t.size else x
        elif t.ndim == 1 and k > 1 and t.dtype.kind not in "f":
            onehot = np.zeros((t.shape[0], k))
            onehot[np.arange(t.shape[0]), _class_indices(result, t)] = 1.0
            t = onehot
        pw = o["pos_weight"]
        val = L.binary_cross_entropy_with_logits(
            x, t.astype(x.dtype), pos_weight=None if pw is None else np.asarray(pw, np.float64)
        )
        return float(val), int(t.shape[0]) if t.ndim else 1
    t = np.asarray(target, dtype=x.dtype)
    if x.shape != t.shape and x.size == t.size:
        x = x.reshape(t.shape)
    name = result.loss
    if name == "mse_loss":
        val = L.mse_loss(x, t)
    elif name == "l1_loss":
        val = L.l1_loss(x, t)
    elif name == "huber_loss":
        val = L.huber_loss(x, t, delta=o["delta"])
    elif name == "smooth_l1_loss":
        val = L.smooth_l1_loss(x, t, beta=o["beta"])
    elif name == "pinball_loss":
        val = L.pinball_loss(x, t, tau=o["tau"])
    else:
        val = L.poisson_nll_loss(x, t, log_input=True, full=False, eps=o["eps"])
    return float(val), int(t.shape[0]) if t.ndim else 1


def check_width(result: BiasInit, logits: np.ndarray) -> None:
    """The model's outputs must have as many columns as the result has outputs."""
    k = len(result)
    if result.family in ("softmax", "hinge"):
        width = logits.shape[1] if logits.ndim >= 2 else logits.shape[0] if logits.ndim else 1
    else:
        width = 1 if logits.ndim <= 1 else logits.shape[-1]
    if width != k:
        raise HeadstartError(
            f"the logits have {width} outputs per sample (shape {logits.shape}) but bias_init "
            f"computed {k}: the output layer and the labels disagree (check num_classes)"
        )


def batch_references(result: BiasInit, logits: np.ndarray, target) -> tuple[float, float] | None:
    """(loss of the bias_init constant, loss of zero logits) on this very batch, or None
    when the outputs' layout is not one row per sample."""
    bias = np.asarray(result.bias, np.float64)
    if logits.ndim == 2 and logits.shape[1] == bias.shape[0]:
        const = np.broadcast_to(bias.astype(logits.dtype), logits.shape).copy()
    elif logits.ndim == 1 and bias.shape[0] == 1 and result.family in ("sigmoid", "regression"):
        const = np.full(logits.shape, bias[0], logits.dtype)
    else:
        return None
    opt, _ = observed_loss(result, const, target)
    zero, _ = observed_loss(result, np.zeros_like(const), target)
    return opt, zero


def verdict(result: BiasInit, observed: float, b, tolerance, batch=None) -> InitCheck:
    """The :class:`InitCheck` for a first loss ``observed`` over a batch of ``b`` (or None).

    ``batch``: (loss of the bias_init constant, loss of zero logits) on the same batch, when
    the logits and targets are known; then the comparison has no sampling noise and the
    tolerance is 1% of the optimum or 5% of the gap, whichever is larger."""
    if not math.isfinite(observed):
        msg = (
            f"first loss is {observed}: the model's outputs overflow or the labels do not fit "
            "the outputs; check the last layer and the targets"
        )
        return InitCheck(
            observed,
            result.expected_loss,
            result.zero_bias_loss,
            math.nan,
            b,
            "too_high",
            msg,
            result,
        )
    opt = result.expected_loss
    naive = result.zero_bias_loss
    approximate = "approximate" in result.details
    if batch is not None:
        opt, naive = batch
        approximate = False
    if tolerance is None:
        tol = max(0.01 * abs(opt), 1e-6)
        if naive is not None:
            tol = max(tol, 0.05 * abs(naive - opt))
        sd = _sampling_sd(result) if batch is None else None
        if sd is not None and b:
            tol = max(tol, 3.0 * sd / math.sqrt(b))
    else:
        tol = float(tolerance)
        if not tol >= 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    o_s, opt_s, naive_s = _fmt_distinct([observed, opt, naive])
    name = _NAIVE_NAME[result.family]
    at = "at most " if approximate else ""
    if naive is not None:
        head = f"first loss {o_s} vs optimum {at}{opt_s} and {name} {naive_s}"
    else:
        head = f"first loss {o_s} vs optimum {at}{opt_s}"
    if approximate:
        head += " (a one-pass estimate)"
    if batch is not None:
        head += " on this batch"
    if observed < opt - tol and not approximate:
        verdict = "below_optimum"
        msg = (
            f"first loss {o_s} is below the optimum {opt_s} a constant output can reach: the "
            "labels or loss options differ from the model's, or it has already trained"
        )
    elif (
        naive is not None
        and abs(observed - naive) <= tol
        and abs(naive - opt) <= tol
        and abs(naive - opt) > max(0.01 * abs(opt), 1e-6)
    ):
        # The gap matters (over 1% of the optimum) but the batch's sampling noise hides it.
        verdict = "inconclusive"
        more = (
            "a larger batch" if batch is not None else "the logits and targets, or a larger batch"
        )
        msg = (
            f"{head}: inconclusive: the optimum and the {name} value differ by less than the "
            f"tolerance {_fmt_distinct([tol])[0]}; pass {more} to tell them apart"
        )
    elif observed <= opt + tol:
        verdict = "ok"
        msg = f"{head}: the output layer is initialised well"
    elif naive is not None and abs(observed - naive) <= tol:
        verdict = "bias_off"
        msg = f"{head}: your output bias is off, use bias_init"
    elif naive is not None and observed > naive:
        verdict = "too_high"
        msg = (
            f"{head}: the initial outputs are too large; start the last layer's weights small "
            "(or at zero) and set its bias with bias_init"
        )
    elif naive is not None:
        verdict = "partial"
        msg = (
            f"{head}: partly there; check that bias_init's bias is applied and start the last "
            "layer's weights smaller"
        )
    else:
        verdict = "above_optimum"
        msg = (
            f"{head}: above the best constant output; set the bias with bias_init and start "
            "the last layer's weights small"
        )
    return InitCheck(observed, opt, naive, tol, b, verdict, msg, result)
