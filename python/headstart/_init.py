"""Optimal output-layer bias from label statistics, and the check of a model's first loss.

With the last layer's weights at zero (or outputs that do not yet depend on the input),
the network outputs one constant vector ``b`` for every sample, and the loss at
initialisation is the mean loss of that constant over the training labels. The best ``b``
and that loss depend only on a few statistics of the labels (class frequencies F, positive
rates, mean / median / quantiles / Huber location of the targets), which
:func:`headstart.scan` computes in one streaming pass over arrays or files. The formulas
(DESIGN.md section 1, REFERENCE.md d4):

============================  ==========================================  =======================
loss                          bias b*                                     loss at b*
============================  ==========================================  =======================
cross_entropy                 log F (+ any shared constant)               H(F); log C balanced
  + weight w                  log(w F / sum w F)                          H of that distribution
  + label_smoothing eps       log a, a = w ((1-eps) F + eps/C)            (sum a / sum wF) H(a/sum a)
BCE with logits, rate p       log(p / (1-p)); pos_weight w: log(w p/(1-p))  binary entropy (weighted)
mse_loss                      mean                                        variance (ddof=0)
l1_loss                       median (midpoint of the two middle values)  mean |y - median|
huber_loss(delta)             Huber location: sum clip(y-b, -d, d) = 0    mean Huber loss at b*
smooth_l1_loss(beta)          Huber location with delta = beta            Huber loss / beta
pinball_loss(tau)             tau-quantile (lowest optimal order stat.)   mean pinball loss
poisson_nll_loss (log link)   log(mean)                                   m - m log m
multi_margin / WW hinge       exact LP optimum (see _ww_levels)           < (C-1) margin [/ C]
Crammer-Singer hinge          top class ahead by the margin iff F_1 > 1/2  min(1, 2 (1-F_1)) margin
============================  ==========================================  =======================

Classes that never occur (or outputs whose rate is 0 or 1, or a Poisson mean of 0) have an
optimal bias of -inf. A real layer needs a finite value, chosen by the ``floor`` rule:

- ``"pseudocount"`` (default, alpha = 0.5) or ``"pseudocount:ALPHA"``: every empty cell is
  treated as if it had been seen ALPHA times. For softmax losses an unseen class gets the
  logit ``log(ALPHA / N)`` while seen classes keep ``log F`` exactly (softmax of the result
  is the count vector with ALPHA in the empty cells, normalised); a sigmoid output with no
  positives gets ``p = ALPHA / (N + ALPHA)`` (no negatives: ``N / (N + ALPHA)``); a Poisson
  mean of 0 becomes ``ALPHA / N``.
- a negative number ``m`` or ``"min_log_prob:m"``: every log-probability is clipped below at
  ``m`` (softmax: ``b = max(log p, m)``; sigmoid: ``p`` and ``1 - p`` clipped at ``exp(m)``;
  Poisson: the log-rate clipped at ``m``).
- ``None`` or ``"none"``: keep ``-inf``.

The expected loss is always the loss at the bias actually returned (after the floor), and
``result.floor.cost`` says how much the floor added to the unfloored optimum.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._core import HeadstartError

__all__ = ["BiasInit", "FloorInfo", "InitCheck", "bias_init", "check_init", "loss_names"]


# ------------------------------------------------------------------------------ loss table


@dataclass(frozen=True)
class _LossSpec:
    name: str  # canonical torch-style name
    family: str  # "softmax" | "sigmoid" | "regression" | "hinge"
    options: dict  # option -> default
    doc: str


_SPECS = {
    s.name: s
    for s in (
        _LossSpec(
            "cross_entropy",
            "softmax",
            {"weight": None, "label_smoothing": 0.0, "ignore_index": -100, "reduction": "mean"},
            "softmax cross-entropy (torch F.cross_entropy)",
        ),
        _LossSpec(
            "binary_cross_entropy_with_logits",
            "sigmoid",
            {"pos_weight": None, "reduction": "mean"},
            "sigmoid / binary cross-entropy on logits, one output per label",
        ),
        _LossSpec("mse_loss", "regression", {"reduction": "mean"}, "mean squared error"),
        _LossSpec("l1_loss", "regression", {"reduction": "mean"}, "mean absolute error"),
        _LossSpec("huber_loss", "regression", {"delta": 1.0, "reduction": "mean"}, "Huber(delta)"),
        _LossSpec(
            "smooth_l1_loss",
            "regression",
            {"beta": 1.0, "reduction": "mean"},
            "smooth L1(beta) = Huber(beta) / beta",
        ),
        _LossSpec(
            "pinball_loss",
            "regression",
            {"tau": 0.5, "reduction": "mean"},
            "pinball / quantile loss at level tau",
        ),
        _LossSpec(
            "poisson_nll_loss",
            "regression",
            {"log_input": True, "full": False, "eps": 1e-8, "reduction": "mean"},
            "Poisson NLL with a log link (torch log_input=True)",
        ),
        _LossSpec(
            "multi_margin_loss",
            "hinge",
            {"margin": 1.0, "p": 1, "weight": None, "reduction": "mean"},
            "torch multi_margin_loss (Weston-Watkins hinge divided by C)",
        ),
        _LossSpec(
            "multiclass_hinge_loss",
            "hinge",
            {
                "margin": 1.0,
                "variant": "weston_watkins",
                "p": 1,
                "weight": None,
                "reduction": "mean",
            },
            "multiclass SVM (cs231n): Weston-Watkins or Crammer-Singer, no 1/C",
        ),
    )
}

# alias -> (canonical name, preset options)
_ALIASES: dict[str, tuple[str, dict]] = {
    "ce": ("cross_entropy", {}),
    "softmax": ("cross_entropy", {}),
    "softmax_cross_entropy": ("cross_entropy", {}),
    "categorical_crossentropy": ("cross_entropy", {}),
    "sparse_categorical_crossentropy": ("cross_entropy", {}),
    "bce": ("binary_cross_entropy_with_logits", {}),
    "bce_with_logits": ("binary_cross_entropy_with_logits", {}),
    "binary_crossentropy": ("binary_cross_entropy_with_logits", {}),
    "sigmoid": ("binary_cross_entropy_with_logits", {}),
    "logistic": ("binary_cross_entropy_with_logits", {}),
    "multilabel": ("binary_cross_entropy_with_logits", {}),
    "mse": ("mse_loss", {}),
    "l2": ("mse_loss", {}),
    "squared_error": ("mse_loss", {}),
    "l1": ("l1_loss", {}),
    "mae": ("l1_loss", {}),
    "absolute_error": ("l1_loss", {}),
    "huber": ("huber_loss", {}),
    "smooth_l1": ("smooth_l1_loss", {}),
    "pinball": ("pinball_loss", {}),
    "quantile": ("pinball_loss", {}),
    "quantile_loss": ("pinball_loss", {}),
    "poisson": ("poisson_nll_loss", {}),
    "poisson_nll": ("poisson_nll_loss", {}),
    "multi_margin": ("multi_margin_loss", {}),
    "hinge": ("multiclass_hinge_loss", {}),
    "svm": ("multiclass_hinge_loss", {}),
    "multiclass_hinge": ("multiclass_hinge_loss", {}),
    "weston_watkins": ("multiclass_hinge_loss", {"variant": "weston_watkins"}),
    "ww": ("multiclass_hinge_loss", {"variant": "weston_watkins"}),
    "crammer_singer": ("multiclass_hinge_loss", {"variant": "crammer_singer"}),
    "cs": ("multiclass_hinge_loss", {"variant": "crammer_singer"}),
}


def loss_names() -> dict[str, str]:
    """Every loss name :func:`bias_init` accepts, mapped to its canonical (torch) name."""
    out = {name: name for name in _SPECS}
    out.update({alias: target for alias, (target, _) in _ALIASES.items()})
    return dict(sorted(out.items()))


def _resolve_loss(loss) -> tuple[_LossSpec, dict]:
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a loss name (str), got {type(loss).__name__}")
    key = loss.strip().lower().replace("-", "_").replace(" ", "_")
    key = key.removeprefix("f.")
    if key in _SPECS:
        return _SPECS[key], {}
    if key in _ALIASES:
        name, preset = _ALIASES[key]
        return _SPECS[name], dict(preset)
    raise ValueError(
        f"unknown loss {loss!r}; valid names: {', '.join(_SPECS)}; aliases: {', '.join(_ALIASES)}"
    )


def _check_options(spec: _LossSpec, preset: dict, given: dict) -> dict:
    """Merge defaults, alias presets and user options; name the options the loss lacks."""
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        takes = ", ".join(spec.options) if spec.options else "no options"
        raise TypeError(
            f"{spec.name} does not take option(s) {', '.join(unknown)}; it takes: {takes}"
        )
    for k, v in preset.items():
        if k in given and given[k] != v:
            raise ValueError(f"the loss name implies {k}={v!r}, but {k}={given[k]!r} was passed")
    opts = dict(spec.options)
    opts.update(preset)
    opts.update(given)
    if opts.get("reduction", "mean") != "mean":
        raise ValueError(
            f"reduction={opts['reduction']!r}: bias_init reports the loss for reduction='mean' "
            "(the optimal bias is the same for 'sum')"
        )
    return opts


# ------------------------------------------------------------------------------- the floor


@dataclass(frozen=True)
class FloorInfo:
    """How outputs whose optimal bias is -inf (classes never seen, rates of 0 or 1, a Poisson
    mean of 0) were given a finite value.

    ``rule``: ``"pseudocount"``, ``"min_log_prob"`` or ``"none"``; ``value``: the
    pseudocount alpha or the minimum log-probability; ``classes``: the classes (outputs)
    that were floored; ``cost``: expected loss minus the unfloored optimum (>= 0).
    """

    rule: str
    value: float | None
    classes: tuple = ()
    cost: float = 0.0

    def __str__(self) -> str:
        if not self.classes:
            return "no output needed a floor"
        what = {
            "pseudocount": f"pseudocount {self.value:g} (as if seen {self.value:g} times)",
            "min_log_prob": f"log-probability clipped at {self.value:g}",
            "none": "left at -inf (floor=None)",
        }[self.rule]
        names = ", ".join(str(c) for c in self.classes[:8])
        more = f" and {len(self.classes) - 8} more" if len(self.classes) > 8 else ""
        return f"{len(self.classes)} floored ({names}{more}): {what}; cost {self.cost:.3g}"

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "value": self.value,
            "classes": [_jsonable(c) for c in self.classes],
            "cost": self.cost,
        }


def _parse_floor(floor) -> tuple[str, float | None]:
    if floor is None:
        return "none", None
    if isinstance(floor, bool):
        raise TypeError("floor must be 'pseudocount[:alpha]', a negative number or None")
    if isinstance(floor, numbers.Real):
        v = float(floor)
        if not (v < 0 and math.isfinite(v)):
            raise ValueError(
                f"floor={floor!r}: a number is a minimum log-probability and must be < 0 "
                "(e.g. -20); use 'pseudocount:ALPHA' for a pseudocount"
            )
        return "min_log_prob", v
    if isinstance(floor, str):
        name, _, arg = floor.strip().lower().partition(":")
        if name == "none" and not arg:
            return "none", None
        if name == "pseudocount":
            alpha = 0.5 if not arg else _parse_float(arg, "pseudocount alpha")
            if not (alpha > 0 and math.isfinite(alpha)):
                raise ValueError(f"floor={floor!r}: the pseudocount must be > 0")
            return "pseudocount", alpha
        if name in ("min_log_prob", "min_logprob") and arg:
            return _parse_floor(_parse_float(arg, "min_log_prob"))
    raise ValueError(
        f"floor={floor!r}: expected 'pseudocount', 'pseudocount:ALPHA', 'min_log_prob:M' "
        "(M < 0), a negative number, or None"
    )


def _parse_float(text, what):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number") from None


# ------------------------------------------------------------------------- statistics input


def _stats_kind(obj) -> str | None:
    if hasattr(obj, "counts") and hasattr(obj, "classes"):
        return "classification"
    if hasattr(obj, "positives") and hasattr(obj, "n"):
        return "multilabel"
    if hasattr(obj, "mean") and hasattr(obj, "var") and hasattr(obj, "n"):
        return "regression"
    return None


def _scan(source, *, kind, column, nan, progress, requests, scan_options):
    import headstart

    scan = getattr(headstart, "scan", None)
    if scan is None:  # pragma: no cover - only before the statistics module is built in
        raise HeadstartError(
            "this build of headstart has no scan(): pass a statistics object instead of raw labels"
        )
    kwargs: dict[str, Any] = dict(scan_options or {})
    kwargs.update(column=column, kind=kind)
    if kind == "regression":
        for key, value in requests.items():
            if key == "quantiles":  # union with quantiles asked for in scan_options
                value = sorted(set(kwargs.get("quantiles", ())) | set(value))
            kwargs[key] = value
    else:
        kwargs.pop("quantiles", None)
        kwargs.pop("huber_delta", None)
    if nan is not None:
        kwargs["nan"] = nan
    if progress is not None:
        kwargs["progress"] = progress
    return scan(source, **kwargs)


def _gather(labels, family, *, column, nan, progress, requests, scan_options):
    """Statistics for ``labels``: a list with one stats object per output column (regression),
    or a single classification / multilabel stats object. Also returns the in-memory targets
    of a regression array (used for the zero-bias loss of L1 / Huber / pinball) or None."""
    if _stats_kind(labels) is not None:
        return labels, None
    if (
        isinstance(labels, (list, tuple))
        and labels
        and all(_stats_kind(s) == "regression" for s in labels)
    ):
        return list(labels), None
    if isinstance(labels, (str, bytes)) or hasattr(labels, "__fspath__"):
        arr = None
    elif isinstance(labels, np.ndarray) or (
        isinstance(labels, (list, tuple)) and not _looks_like_chunks(labels)
    ):
        arr = np.asarray(labels)
    else:
        arr = None  # an iterable of chunks, or something scan knows (dask, pyarrow, ...)

    def run(src, kind, col=column):
        return _scan(
            src,
            kind=kind,
            column=col,
            nan=nan,
            progress=progress,
            requests=requests,
            scan_options=scan_options,
        )

    multi_columns = isinstance(column, (list, tuple))
    if family == "regression":
        if arr is not None:
            if arr.ndim == 0:
                raise HeadstartError("labels must be an array of targets, got a scalar")
            if arr.ndim > 2:
                raise HeadstartError(f"regression targets must be 1-D or 2-D, got {arr.shape}")
            if arr.ndim == 2:
                cols = [np.ascontiguousarray(arr[:, j]) for j in range(arr.shape[1])]
                return [run(c, "regression", None) for c in cols], cols
            return [run(arr, "regression", None)], [arr]
        if multi_columns:
            return [run(labels, "regression", c) for c in column], None
        return [run(labels, "regression")], None
    if family == "sigmoid":
        multilabel = (
            (arr is not None and arr.ndim == 2)
            or multi_columns
            or (scan_options or {}).get("label_sep") is not None
        )
        kind = "multilabel" if multilabel else "auto"
        return run(arr if arr is not None else labels, kind), None
    if arr is not None and arr.ndim == 2 and family == "softmax":
        return run(arr, "multilabel"), None  # probability targets (one row per sample)
    if arr is not None and arr.ndim != 1:
        raise HeadstartError(f"class labels must be 1-D, got an array of shape {arr.shape}")
    return run(arr if arr is not None else labels, "classification"), None


def _validate_scalars(spec: _LossSpec, opts: dict) -> None:
    """Check scalar options before any file is read."""

    def num(key):
        v = opts[key]
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{key} must be a number, got {v!r}")
        return float(v)

    if spec.name == "pinball_loss" and not 0.0 < num("tau") < 1.0:
        raise HeadstartError(f"tau must be in (0, 1), got {opts['tau']!r}")
    if spec.name == "huber_loss" and not _positive(num("delta")):
        raise HeadstartError(f"delta must be a finite number > 0, got {opts['delta']!r}")
    if spec.name == "smooth_l1_loss" and not (num("beta") >= 0 and math.isfinite(opts["beta"])):
        raise HeadstartError(f"beta must be a finite number >= 0, got {opts['beta']!r}")
    if spec.family == "hinge":
        if not _positive(num("margin")):
            raise HeadstartError(f"margin must be a finite number > 0, got {opts['margin']!r}")
        if opts["p"] != 1:
            raise HeadstartError(
                f"p={opts['p']!r}: bias_init solves the hinge with p=1 (the squared hinge, "
                "p=2, is not supported)"
            )
        if opts.get("variant", "weston_watkins") not in ("weston_watkins", "crammer_singer"):
            raise HeadstartError(
                f"variant must be 'weston_watkins' or 'crammer_singer', got {opts['variant']!r}"
            )
    if spec.name == "cross_entropy" and not 0.0 <= num("label_smoothing") <= 1.0:
        raise HeadstartError(f"label_smoothing must be in [0, 1], got {opts['label_smoothing']!r}")


def _positive(v) -> bool:
    try:
        return float(v) > 0 and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _looks_like_chunks(seq) -> bool:
    return len(seq) > 0 and all(isinstance(x, np.ndarray) and x.ndim >= 1 for x in seq)


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _class_table(stats, *, num_classes, classes, ignore_index):
    """Dense class order and counts from classification statistics.

    Integer labels index the outputs directly (torch's convention): the table has
    ``num_classes`` (default max label + 1) rows and unseen classes count 0. Other labels
    (strings) are listed in sorted order, or in the order of ``classes=`` when given.
    Returns (classes, counts, n_ignored)."""
    raw = np.asarray(stats.classes)
    cnt = np.asarray(stats.counts).astype(np.int64, copy=False).reshape(-1)
    if raw.shape[0] != cnt.shape[0]:
        raise HeadstartError(
            f"statistics are inconsistent: {raw.shape[0]} classes but {cnt.shape[0]} counts"
        )
    if raw.dtype.kind == "f" and raw.size and np.all(raw == np.round(raw)):
        raw = raw.astype(np.int64)
    if raw.dtype.kind == "b":
        raw = raw.astype(np.int64)
    n_ignored = 0
    if ignore_index is not None and raw.dtype.kind in "iu":
        drop = raw == ignore_index
        n_ignored = int(cnt[drop].sum())
        raw, cnt = raw[~drop], cnt[~drop]
    if classes is not None:
        order = list(classes)
        if len(set(order)) != len(order):
            raise HeadstartError("classes= lists a class twice")
        if num_classes is not None and num_classes != len(order):
            raise HeadstartError(f"num_classes={num_classes} but classes= lists {len(order)}")
        pos = {c: i for i, c in enumerate(order)}
        dense = np.zeros(len(order), np.int64)
        for c, k in zip(raw.tolist(), cnt.tolist()):
            if c not in pos:
                raise HeadstartError(f"label {c!r} is not among classes= ({_short(order)})")
            dense[pos[c]] += k
        return np.asarray(order), dense, n_ignored
    if raw.dtype.kind in "iu":
        if raw.size and raw.min() < 0:
            raise HeadstartError(
                f"negative class label {int(raw.min())} (ignore_index is {ignore_index}); "
                "integer labels must be class indices 0..C-1"
            )
        top = int(raw.max()) + 1 if raw.size else 0
        c = top if num_classes is None else int(num_classes)
        if top > c:
            raise HeadstartError(
                f"label {top - 1} does not fit num_classes={c} (labels must be 0..{c - 1})"
            )
        dense = np.zeros(c, np.int64)
        np.add.at(dense, raw, cnt)
        return np.arange(c), dense, n_ignored
    if num_classes is not None and int(num_classes) != raw.shape[0]:
        raise HeadstartError(
            f"the labels have {raw.shape[0]} classes ({_short(raw.tolist())}) but "
            f"num_classes={num_classes}; pass classes=[...] to name the ones never seen"
        )
    return raw, cnt, n_ignored


def _short(items, k=6):
    items = [str(_jsonable(x)) for x in items]
    return ", ".join(items[:k]) + (f", ... ({len(items)} in all)" if len(items) > k else "")


def _require_rows(n, what="labels"):
    if n <= 0:
        raise HeadstartError(f"no {what}: the input is empty (or every value was skipped)")


def _vector_option(value, length, name):
    if value is None:
        return None
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    if v.shape[0] == 1 and length != 1:
        v = np.repeat(v, length)
    if v.shape[0] != length:
        raise HeadstartError(f"{name} has {v.shape[0]} entries; the labels have {length} classes")
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise HeadstartError(f"{name} must hold finite values >= 0")
    return v


# --------------------------------------------------------------------------- the result


@dataclass(repr=False)
class BiasInit:
    """The optimal constant output for a loss and a set of labels.

    Attributes: ``bias`` (one entry per output, ``dtype`` float32 by default),
    ``expected_loss`` (the mean loss of a model that outputs exactly ``bias``: what the
    first loss should be), ``zero_bias_loss`` (the same with a zero bias, the usual init;
    None when the statistics cannot give it, e.g. L1 on a file of mixed-sign targets),
    ``optimal_loss`` (the unfloored optimum), ``classes`` (class labels or output names in
    bias order; None for one regression output), ``counts`` (per class, classification),
    ``n`` (labels used), ``stats`` (the statistics behind it), ``loss`` (canonical name),
    ``options`` (the loss options used), ``floor`` (:class:`FloorInfo`), ``details``
    (loss-specific extras: per-output losses, the hinge's class levels, ignored labels...).
    """

    bias: np.ndarray
    expected_loss: float
    zero_bias_loss: float | None
    optimal_loss: float
    loss: str
    options: dict
    floor: FloorInfo
    classes: np.ndarray | None
    counts: np.ndarray | None
    n: int
    stats: Any
    family: str
    details: dict = field(default_factory=dict)

    @property
    def gain(self) -> float | None:
        """``zero_bias_loss - expected_loss``: what the init saves at step 0."""
        if self.zero_bias_loss is None:
            return None
        return self.zero_bias_loss - self.expected_loss

    @property
    def frequencies(self) -> np.ndarray | None:
        """Class frequencies F aligned with ``classes`` (classification only)."""
        if self.counts is None:
            return None
        return self.counts / max(self.n, 1)

    def to_numpy(self) -> np.ndarray:
        """A copy of the bias as a numpy array (e.g. ``keras.initializers.Constant``, JAX)."""
        return np.array(self.bias, copy=True)

    def __len__(self) -> int:
        return int(self.bias.shape[0])

    def __repr__(self) -> str:
        with np.printoptions(precision=4, threshold=12, edgeitems=4, suppress=True):
            b = np.array2string(np.asarray(self.bias), separator=", ")
        lines = [f"BiasInit(loss={self.loss!r}, n={self.n}, outputs={len(self)},"]
        defaults = _SPECS[self.loss].options
        opts = {
            k: v
            for k, v in self.options.items()
            if v is not None and not (k in defaults and _same(defaults[k], v))
        }
        if opts:
            lines.append(f"  options={_fmt_opts(opts)},")
        if self.classes is not None:
            lines.append(f"  classes=[{_short(self.classes, 8)}],")
        lines.append(f"  bias={b} ({np.asarray(self.bias).dtype}),")
        tail = f"  expected_loss={self.expected_loss:.6g}"
        if self.zero_bias_loss is not None:
            tail += f" (zero bias: {self.zero_bias_loss:.6g}, gain {self.gain:.4g})"
        lines.append(tail + ",")
        lines.append(f"  floor: {self.floor})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready summary (non-finite numbers become None)."""
        return {
            "loss": self.loss,
            "options": {k: _json_value(v) for k, v in self.options.items()},
            "n": self.n,
            "classes": None if self.classes is None else [_jsonable(c) for c in self.classes],
            "counts": None if self.counts is None else [int(c) for c in self.counts],
            "bias": [_finite_or_none(v) for v in np.asarray(self.bias, np.float64)],
            "dtype": str(np.asarray(self.bias).dtype),
            "expected_loss": _finite_or_none(self.expected_loss),
            "zero_bias_loss": _finite_or_none(self.zero_bias_loss),
            "optimal_loss": _finite_or_none(self.optimal_loss),
            "floor": self.floor.to_dict(),
            "details": {k: _json_value(v) for k, v in self.details.items()},
        }

    def torch_line(self, layer: str = "model.fc", *, inline_max: int = 32) -> str:
        """A ready-to-paste PyTorch line that sets ``layer``'s bias.

        Up to ``inline_max`` outputs the values are written inline (shortest float32 repr);
        beyond that the line loads ``bias.npy`` (write it with ``np.save`` or the CLI's
        ``--out``)."""
        if len(self) > inline_max:
            vals = 'torch.from_numpy(np.load("bias.npy"))'
        else:
            vals = "torch.tensor([" + ", ".join(_short_float(v) for v in self.bias) + "])"
        return f"with torch.no_grad(): {layer}.bias.copy_({vals})"

    def apply_to(self, layer):
        """Set ``layer``'s bias to this result in place and return ``layer``.

        ``layer`` may be a torch module with a ``.bias`` (``nn.Linear``, ``nn.Conv*``), a
        tensor or parameter, a Keras layer or variable (``.assign``), a numpy array, or any
        object whose ``.bias`` is one of those (or has a ``.data`` numpy array / ``copy_``).
        torch is imported only when the target is a torch tensor. Raises
        :class:`HeadstartError` when the sizes differ and TypeError for immutable targets
        (JAX arrays: use ``to_numpy()``)."""
        target = layer.bias if hasattr(layer, "bias") else layer
        if target is None:
            raise HeadstartError(f"{type(layer).__name__} has no bias (bias=None / bias=False)")
        size = _size_of(target)
        if size != len(self):
            raise HeadstartError(
                f"the layer's bias has {size} entries but bias_init computed {len(self)} "
                f"({self._what()}): check num_classes / the output layer"
            )
        values = np.asarray(self.bias)
        if _is_torch_tensor(target):
            import torch

            with torch.no_grad():
                src = torch.as_tensor(values.astype(np.float64)).to(
                    dtype=target.dtype, device=target.device
                )
                target.copy_(src.reshape(target.shape))
            return layer
        if isinstance(target, np.ndarray):
            _copy_into_array(target, values)
            return layer
        data = getattr(target, "data", None)
        if isinstance(data, np.ndarray):
            _copy_into_array(data, values)
            return layer
        if hasattr(target, "copy_"):
            shape = getattr(target, "shape", values.shape)
            target.copy_(values.reshape(tuple(shape)))
            return layer
        if hasattr(target, "assign"):  # keras / tf variables
            shape = getattr(target, "shape", values.shape)
            target.assign(values.reshape(tuple(shape)))
            return layer
        raise TypeError(
            f"cannot set a bias of type {type(target).__name__} in place; use "
            "result.to_numpy() (e.g. JAX: params['bias'] = jnp.asarray(result.bias))"
        )

    def _what(self) -> str:
        if self.classes is not None:
            return f"{len(self.classes)} classes/outputs"
        return "outputs"


def _same(a, b) -> bool:
    try:
        return bool(np.all(np.asarray(a) == np.asarray(b))) and np.shape(a) == np.shape(b)
    except (TypeError, ValueError):
        return False


def _fmt_opts(opts):
    parts = []
    for k, v in opts.items():
        if isinstance(v, np.ndarray):
            v = np.round(v, 4).tolist()
        parts.append(f"{k}={v!r}")
    return "{" + ", ".join(parts) + "}"


def _finite_or_none(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _json_value(v):
    if isinstance(v, np.ndarray):
        return [_json_value(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return _finite_or_none(v)
    return _jsonable(v)


def _short_float(v) -> str:
    v = np.float32(v)
    if np.isneginf(v):
        return "-float('inf')"
    if np.isposinf(v):
        return "float('inf')"
    return np.format_float_positional(v, unique=True, trim="-")


def _is_torch_tensor(obj) -> bool:
    mod = type(obj).__module__ or ""
    return (mod == "torch" or mod.startswith("torch.")) and hasattr(obj, "copy_")


def _size_of(target) -> int:
    if hasattr(target, "numel") and callable(target.numel):
        return int(target.numel())
    shape = getattr(target, "shape", None)
    if shape is None and isinstance(getattr(target, "data", None), np.ndarray):
        shape = target.data.shape
    if shape is not None:
        return int(np.prod(tuple(shape), dtype=np.int64))
    try:
        return len(target)
    except TypeError:
        raise TypeError(f"cannot tell the size of a bias of type {type(target).__name__}") from None


def _copy_into_array(dst: np.ndarray, values: np.ndarray) -> None:
    if not dst.flags.writeable:
        raise TypeError("the bias array is read-only")
    np.copyto(dst, values.reshape(dst.shape).astype(dst.dtype, copy=False))


# ---------------------------------------------------------------------------- the math


def _entropy_terms(a: np.ndarray, b: np.ndarray) -> float:
    """sum_c a_c (lse(b) - b_c), with 0 * inf = 0 and an all -inf b giving inf."""
    finite = np.isfinite(b)
    if not finite.any():
        return math.inf
    m = b[finite].max()
    lse = m + math.log(np.exp(b[finite] - m).sum())
    live = a > 0
    if np.any(live & ~finite):
        return math.inf
    return float(np.dot(a[live], lse - b[live]))


def _softmax_bias(counts, opts, floor_rule, floor_value, classes, n=None, soft=False):
    """Softmax cross-entropy. ``counts``: per-class label counts, or for probability targets
    (``soft``) the per-class sums of the target rows over ``n`` rows."""
    n = int(counts.sum()) if n is None else int(n)
    _require_rows(n)
    c = counts.shape[0]
    if np.count_nonzero(counts) < 2:
        only = classes[int(np.argmax(counts))]
        raise HeadstartError(
            f"the labels hold one class only ({_jsonable(only)!r}, {n} rows): a constant output "
            "already predicts it; check the column, the file, or ignore_index"
        )
    f = counts / n
    w = _vector_option(opts["weight"], c, "weight")
    eps = float(opts["label_smoothing"])
    if not 0.0 <= eps <= 1.0:
        raise HeadstartError(f"label_smoothing must be in [0, 1], got {eps}")
    ww = np.ones(c) if w is None else w
    # index targets: 'mean' divides by the targets' total weight; probability targets by N
    denom = 1.0 if soft else float(np.dot(ww, f))
    if denom <= 0:
        raise HeadstartError("weight is zero for every class that occurs: the loss is 0/0")
    a = ww * ((1.0 - eps) * f + eps / c)  # the loss is sum_c a_c (lse(b) - b_c) / denom
    q = a / a.sum()
    with np.errstate(divide="ignore"):
        logq = np.log(q)
    optimal = _entropy_terms(a, logq) / denom
    bias = logq.copy()
    zero = q == 0
    floored: tuple = ()
    if floor_rule == "pseudocount":
        bias[zero] = math.log(floor_value / n)
        floored = tuple(_jsonable(x) for x in classes[zero])
    elif floor_rule == "min_log_prob":
        low = bias < floor_value
        floored = tuple(_jsonable(x) for x in classes[low])
        bias = np.maximum(bias, floor_value)
    else:
        floored = tuple(_jsonable(x) for x in classes[zero])
    expected = _entropy_terms(a, bias) / denom
    zero_bias = float(a.sum()) * math.log(c) / denom
    # per-class sample loss u_c and weight v_c: the batch mean is sum u / sum v
    lse_b = _lse(bias)
    if math.isfinite(lse_b):
        nll = lse_b - bias
        smooth = float(np.dot(ww, nll)) / c if eps else 0.0
        with np.errstate(invalid="ignore"):
            u = ww * (1.0 - eps) * nll + eps * smooth
    else:
        u = np.full(c, np.inf)
    details = {} if soft else {"per_class_loss": u, "per_class_weight": ww}
    return bias, expected, zero_bias, optimal, floored, details


def _lse(b):
    finite = np.isfinite(b)
    if not finite.any():
        return -math.inf
    m = b[finite].max()
    return float(m + math.log(np.exp(b[finite] - m).sum()))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid_bias(p, n, opts, floor_rule, floor_value, names):
    """Per-output logits for positive rates ``p`` (n rows)."""
    k = p.shape[0]
    pw = _vector_option(opts["pos_weight"], k, "pos_weight")
    w = np.ones(k) if pw is None else pw
    pf = p.astype(np.float64).copy()
    edge = (pf <= 0) | (pf >= 1)
    floored: tuple = ()
    if floor_rule == "pseudocount":
        pf[pf <= 0] = floor_value / (n + floor_value)
        pf[pf >= 1] = n / (n + floor_value)
        floored = tuple(_jsonable(x) for x in names[edge])
    elif floor_rule == "none":
        floored = tuple(_jsonable(x) for x in names[edge])
    with np.errstate(divide="ignore"):
        bias = np.log(w * pf) - np.log1p(-pf)
        exact = np.log(w * p) - np.log1p(-p)
    if floor_rule == "min_log_prob":
        # clip q = sigmoid(b) to [exp(m), 1 - exp(m)]: b in [m - log(1 - e^m), -(...)]
        bmin = floor_value - math.log(-math.expm1(floor_value))
        low = (bias < bmin) | (bias > -bmin)
        floored = tuple(_jsonable(x) for x in names[low])
        bias = np.clip(bias, bmin, -bmin)

    def loss_at(b):
        with np.errstate(invalid="ignore"):
            pos = np.where(p > 0, w * p * _softplus(-b), 0.0)
            neg = np.where(p < 1, (1 - p) * _softplus(b), 0.0)
        return pos + neg

    per = loss_at(bias)
    opt = loss_at(exact)
    zero = (w * p + 1 - p) * math.log(2.0)
    details = {
        "per_output_loss": per,
        "rates": p,
        "per_output_sample_loss": (w * _softplus(-bias), _softplus(bias)),
    }
    return bias, float(per.mean()), float(zero.mean()), float(opt.mean()), floored, details


def _stat(stats, name):
    v = getattr(stats, name)
    return v() if callable(v) else v


def _regression_bias(stats, spec, opts, floor_rule, floor_value, values):
    """bias, expected, zero-bias loss (or None), optimal, floored?, for one target column."""
    n = int(_stat(stats, "n"))
    _require_rows(n, "targets")
    name = spec.name
    mean = float(_stat(stats, "mean"))
    lo, hi = float(_stat(stats, "min")), float(_stat(stats, "max"))
    zero = None
    floored = False
    if name == "mse_loss":
        b, loss = mean, float(_stat(stats, "var"))
        zero = loss + mean * mean
        return b, loss, zero, loss, floored
    if name == "poisson_nll_loss":
        if opts["full"]:
            raise HeadstartError(
                "poisson_nll_loss(full=True) adds a Stirling term that does not depend on the "
                "output (the bias is the same): pass full=False; the loss is reported without it"
            )
        if not opts["log_input"]:
            raise HeadstartError(
                "poisson_nll_loss(log_input=False) takes the rate itself as output; bias_init "
                "supports the log link (log_input=True), where the bias is log(mean)"
            )
        if lo < 0:
            raise HeadstartError(f"Poisson targets must be >= 0; the minimum is {lo:g}")
        optimal = mean - mean * math.log(mean) if mean > 0 else 0.0
        if mean > 0:
            b = math.log(mean)
        else:
            floored = True
            b = math.log(floor_value / n) if floor_rule == "pseudocount" else -math.inf
        if floor_rule == "min_log_prob" and b < floor_value:
            b, floored = floor_value, True
        # exp(b) - mean * b, with the limit 0 at b = -inf, mean = 0
        loss = optimal if b == -math.inf else math.exp(b) - mean * b
        return b, loss, 1.0, optimal, floored
    if name == "l1_loss" or (name == "smooth_l1_loss" and float(opts["beta"]) == 0.0):
        b, loss = float(_stat(stats, "median")), float(_stat(stats, "mad"))
        if hasattr(stats, "abs_mean"):
            zero = float(stats.abs_mean)
        elif lo >= 0:
            zero = mean
        elif hi <= 0:
            zero = -mean
        elif values is not None:
            zero = float(np.mean(np.abs(values), dtype=np.float64))
        return b, loss, zero, loss, floored
    if name in ("huber_loss", "smooth_l1_loss"):
        key = "delta" if name == "huber_loss" else "beta"
        d = float(opts[key])
        if not (d > 0 and math.isfinite(d)):
            raise HeadstartError(f"{key} must be a finite number > 0, got {opts[key]!r}")
        b = float(stats.huber_location(d))
        loss = float(stats.huber_loss(d))
        scale = 1.0 if name == "huber_loss" else d
        if hasattr(stats, "zero_huber_loss"):
            zero = float(stats.zero_huber_loss(d))
        elif lo >= d:
            zero = d * (mean - 0.5 * d)
        elif hi <= -d:
            zero = d * (-mean - 0.5 * d)
        elif max(abs(lo), abs(hi)) < d:
            zero = 0.5 * (float(_stat(stats, "var")) + mean * mean)
        elif values is not None:
            r = np.abs(np.asarray(values, np.float64))
            zero = float(np.mean(np.where(r < d, 0.5 * r * r, d * (r - 0.5 * d))))
        if zero is not None:
            zero /= scale
        return b, loss / scale, zero, loss / scale, floored
    if name == "pinball_loss":
        tau = float(opts["tau"])
        if not 0.0 < tau < 1.0:
            raise HeadstartError(f"tau must be in (0, 1), got {opts['tau']!r}")
        b = float(stats.quantile(tau, method="inverted_cdf"))
        loss = float(stats.pinball_loss(tau))
        if hasattr(stats, "zero_pinball_loss"):
            zero = float(stats.zero_pinball_loss(tau))
        elif lo >= 0:
            zero = tau * mean
        elif hi <= 0:
            zero = (tau - 1.0) * mean
        elif values is not None:
            v = np.asarray(values, np.float64)
            zero = float(np.mean(np.maximum(tau * v, (tau - 1.0) * v)))
        return b, loss, zero, loss, floored
    raise AssertionError(name)  # pragma: no cover


# ------------------------------------------------------------------- multiclass hinge (LP)


def _ww_levels(g: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact minimiser of the Weston-Watkins objective over constant scores.

    Minimises ``L(s) = sum_c g_c sum_{k != c} max(0, 1 + s_k - s_c)`` (margin 1; scale by the
    margin) over s in R^C for class masses g >= 0. Returns integer levels z (the optimal
    scores are ``margin * z``) and the optimal value.

    Why this is exact. L is convex and piecewise linear, with kinks on the hyperplanes
    s_c - s_k = 1, whose normals span every direction except the shared shift. So a minimum
    is attained at a vertex of that arrangement, where C-1 independent equalities
    s_c - s_k = 1 hold: they form a spanning tree, so every score is an integer. On integer
    scores a pair costs 0 if z_c > z_k, 1 if equal, and 1 + z_k - z_c if z_k > z_c. Swapping
    the levels of two classes so that the heavier class is higher never increases L (the two
    classes exchange their costs; the other terms are unchanged as a multiset), and closing a
    gap of more than one level only lowers the costs of the classes below it. Hence an
    optimum sorts classes by g (descending) into consecutive groups on consecutive levels.
    With prefix masses P, total T and cuts B (a cut after position t puts the first t
    classes above the rest), a class in the group (a, b] costs (b - 1) + sum_{t in B, t <= a} t,
    so ``L = sum_groups (b - 1) (P_b - P_a) + sum_{t in B} t (T - P_t)``. The best cuts follow
    from ``D[b] = (b - 1) P_b + min_a (D[a] + a (T - P_a) - (b - 1) P_a)``, a minimum over
    lines of slope -P_a (non-increasing in a) queried at increasing x = b - 1: a monotone
    convex-hull trick, O(C) after the sort. tests/test_init.py checks it against
    scipy.optimize.linprog and an O(C^2) dynamic programme.
    """
    g = np.asarray(g, np.float64)
    c = g.shape[0]
    order = np.argsort(-g, kind="stable")
    gs = g[order]
    p = np.concatenate(([0.0], np.cumsum(gs)))
    t = p[-1]
    d = np.zeros(c + 1)
    parent = np.zeros(c + 1, np.int64)
    slope = -p  # line a: y = slope[a] * x + icept[a]
    icept = np.zeros(c + 1)
    hull: list[int] = []
    head = 0

    def value(a, x):
        return slope[a] * x + icept[a]

    for b in range(1, c + 1):
        a_new = b - 1
        icept[a_new] = d[a_new] + a_new * (t - p[a_new])
        # insert line a_new (slopes arrive non-increasing)
        while len(hull) > head:
            last = hull[-1]
            if slope[last] == slope[a_new]:
                if icept[last] <= icept[a_new]:
                    break
                hull.pop()
                continue
            if len(hull) - head >= 2:
                l1, l2 = hull[-2], hull[-1]
                # l2 is useless if l1 and a_new cross at or before l1 and l2 do
                lhs = (icept[a_new] - icept[l1]) * (slope[l1] - slope[l2])
                rhs = (icept[l2] - icept[l1]) * (slope[l1] - slope[a_new])
                if lhs <= rhs:
                    hull.pop()
                    continue
            hull.append(a_new)
            break
        else:
            hull.append(a_new)
        x = b - 1.0
        while len(hull) - head >= 2 and value(hull[head + 1], x) < value(hull[head], x):
            head += 1
        best = hull[head]
        d[b] = (b - 1) * p[b] + value(best, x)
        parent[b] = best
    # cuts, then levels: the top group gets the highest level
    cuts = []
    b = c
    while b > 0:
        cuts.append(b)
        b = int(parent[b])
    ends = cuts[::-1]  # group end positions, top group first
    z_sorted = np.empty(c, np.int64)
    start = 0
    for j, e in enumerate(ends):
        z_sorted[start:e] = len(ends) - 1 - j
        start = e
    tied = (c - 1) * t
    value_opt = _ww_value_levels(gs, z_sorted)
    if tied <= value_opt * (1 + 1e-12) + 1e-300:
        z_sorted[:] = 0  # prefer equal scores (the zero bias) when it is as good
        value_opt = tied
    z = np.empty(c, np.int64)
    z[order] = z_sorted
    return z, float(value_opt)


def _ww_value_levels(gs_sorted: np.ndarray, z_sorted: np.ndarray) -> float:
    """The WW objective (margin 1) at integer levels that are non-increasing along the
    sorted masses and step by one, computed in O(C) from the group formula."""
    c = gs_sorted.shape[0]
    if c == 0:
        return 0.0
    p = np.concatenate(([0.0], np.cumsum(gs_sorted)))
    t = p[-1]
    # group boundaries where the level drops
    ends = list(np.flatnonzero(np.diff(z_sorted) != 0) + 1) + [c]
    total = 0.0
    a = 0
    for e in ends:
        total += (e - 1) * (p[e] - p[a])
        if a > 0:
            total += a * (t - p[a])
        a = e
    return float(total)


def _hinge_bias(counts, opts, spec, classes):
    n = int(counts.sum())
    _require_rows(n)
    c = counts.shape[0]
    if np.count_nonzero(counts) < 2:
        only = classes[int(np.argmax(counts))]
        raise HeadstartError(
            f"the labels hold one class only ({_jsonable(only)!r}, {n} rows): a constant output "
            "already predicts it; check the column or the file"
        )
    margin = float(opts["margin"])
    if not (margin > 0 and math.isfinite(margin)):
        raise HeadstartError(f"margin must be a finite number > 0, got {opts['margin']!r}")
    if int(opts["p"]) != 1 or opts["p"] != 1:
        raise HeadstartError(
            f"p={opts['p']!r}: bias_init solves the hinge with p=1 (the squared hinge, p=2, "
            "is not supported)"
        )
    variant = opts.get("variant", "weston_watkins")
    if variant not in ("weston_watkins", "crammer_singer"):
        raise HeadstartError(
            f"variant must be 'weston_watkins' or 'crammer_singer', got {variant!r}"
        )
    w = _vector_option(opts["weight"], c, "weight")
    f = counts / n
    g = f if w is None else f * w
    scale = margin / c if spec.name == "multi_margin_loss" else margin
    total = float(g.sum())
    if variant == "crammer_singer":
        top = int(np.argmax(g))
        levels = np.zeros(c, np.int64)
        if 2.0 * (total - g[top]) < total:
            levels[top] = 1
            value = 2.0 * (total - g[top])
        else:
            value = total
        per = np.where(np.arange(c) == top, 0.0, 2.0) if levels[top] else np.ones(c)
        zero = total
    else:
        levels, value = _ww_levels(g)
        zero = (c - 1) * total
        # per-class cost at these levels (for check_init's batch-size tolerance)
        diff = levels[None, :] - levels[:, None]  # z_k - z_c, rows = true class c
        if c <= 2048:
            cost = np.maximum(0, 1 + diff)
            np.fill_diagonal(cost, 0)
            per = cost.sum(axis=1).astype(np.float64)
        else:
            per = None
    bias = margin * levels.astype(np.float64)
    details = {"levels": levels}
    if per is not None:
        details["per_class_loss"] = scale * per * (np.ones(c) if w is None else w)
    return bias, scale * value, scale * zero, scale * value, details


# --------------------------------------------------------------------------- bias_init


def bias_init(
    labels,
    loss: str = "cross_entropy",
    *,
    column=None,
    num_classes: int | None = None,
    classes=None,
    floor="pseudocount",
    dtype=np.float32,
    nan: str | None = None,
    progress=None,
    scan_options: dict | None = None,
    **loss_options,
) -> BiasInit:
    """The optimal constant output (the last layer's bias) for ``loss`` and the labels, and
    the loss a model shows at initialisation with it.

    ``labels``: an array (class labels; for ``cross_entropy`` also (N, C) class-probability
    rows, soft or one-hot; for BCE 0/1 multi-label rows; or real targets, 2-D meaning one
    output per column), a path to a file :func:`headstart.scan` reads (with
    ``column=``), an iterable of chunks, or a finished statistics object from
    :func:`headstart.scan` (or a list of them, one per regression output).

    ``loss``: a torch name (``cross_entropy``, ``binary_cross_entropy_with_logits``,
    ``mse_loss``, ``l1_loss``, ``huber_loss``, ``smooth_l1_loss``, ``pinball_loss``,
    ``poisson_nll_loss``, ``multi_margin_loss``, ``multiclass_hinge_loss``) or an alias
    (``ce``, ``bce``, ``mse``, ``l1``/``mae``, ``huber``, ``pinball``/``quantile``,
    ``poisson``, ``hinge``, ``crammer_singer``; see :func:`loss_names`).
    ``**loss_options``: that loss's options with torch's names and defaults (``weight``,
    ``label_smoothing``, ``ignore_index``, ``pos_weight``, ``delta``, ``beta``, ``tau``,
    ``margin``, ``p``, ``variant``, ``log_input``, ``full``, ``eps``); an option the loss does
    not take raises TypeError.

    Classes: integer labels are output indices (``num_classes`` outputs, default max + 1;
    unseen classes count 0); other labels are sorted, or ordered as ``classes=``. For
    ``binary_cross_entropy_with_logits`` a 2-class column gives one output (positive class =
    the larger label) and more classes give one-vs-rest outputs; 2-D 0/1 rows are multi-label.

    ``floor``: how outputs with an optimal bias of -inf get a finite one
    (``"pseudocount"``, ``"pseudocount:ALPHA"``, a negative minimum log-probability, or
    None); see the module docs. ``dtype``: of the returned bias (float32). ``nan`` and
    ``progress`` go to :func:`headstart.scan`.

    Returns a :class:`BiasInit`. Raises :class:`headstart.HeadstartError` (a ValueError)
    for empty input, a single class, a class count that disagrees with ``num_classes``, and
    option values out of range; ValueError for an unknown loss name.
    """
    spec, preset = _resolve_loss(loss)
    opts = _check_options(spec, preset, loss_options)
    floor_rule, floor_value = _parse_floor(floor)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a float dtype, got {dtype}")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
            raise TypeError(f"num_classes must be an int, got {num_classes!r}")
        if num_classes < 1:
            raise HeadstartError(f"num_classes must be >= 1, got {num_classes}")
    if spec.family == "regression" and classes is not None:
        raise TypeError("classes= applies to classification losses only")
    _validate_scalars(spec, opts)
    requests: dict[str, Any] = {}
    if spec.name == "pinball_loss":
        requests["quantiles"] = (float(opts["tau"]),)
    elif spec.name == "huber_loss" and _positive(opts["delta"]):
        requests["huber_delta"] = float(opts["delta"])
    elif spec.name == "smooth_l1_loss" and _positive(opts["beta"]):
        requests["huber_delta"] = float(opts["beta"])
    stats, values = _gather(
        labels,
        spec.family,
        column=column,
        nan=nan,
        progress=progress,
        requests=requests,
        scan_options=scan_options,
    )
    details: dict[str, Any] = {}
    result_classes = None
    counts = None
    if spec.family == "softmax" and _stats_kind(stats) == "multilabel":
        # probability (soft / one-hot) targets: F = the mean target row
        n = int(_stat(stats, "n"))
        _require_rows(n)
        sums = np.asarray(_stat(stats, "positives"), np.float64).reshape(-1)
        result_classes = np.asarray(getattr(stats, "classes", np.arange(sums.shape[0])))
        if num_classes is not None and num_classes != sums.shape[0]:
            raise HeadstartError(
                f"the targets have {sums.shape[0]} columns but num_classes={num_classes}"
            )
        mean_row = float(sums.sum()) / n
        if abs(mean_row - 1.0) > 1e-6 * max(1.0, sums.shape[0] ** 0.5):
            raise HeadstartError(
                "cross_entropy: 2-D targets are class probabilities and every row must sum "
                f"to 1; the rows sum to {mean_row:.6g} on average"
            )
        if sums.shape[0] < 2:
            raise HeadstartError("cross_entropy needs at least 2 classes")
        bias, expected, zero, optimal, floored, extra = _softmax_bias(
            sums, opts, floor_rule, floor_value, result_classes, n=n, soft=True
        )
        details.update(extra, probability_targets=True)
        counts = sums
    elif spec.family in ("softmax", "hinge"):
        if _stats_kind(stats) != "classification":
            raise HeadstartError(
                f"{spec.name} needs class labels; the statistics are of kind "
                f"{_stats_kind(stats) or type(stats).__name__}"
            )
        ignore = opts.get("ignore_index") if spec.family == "softmax" else None
        result_classes, counts, n_ignored = _class_table(
            stats, num_classes=num_classes, classes=classes, ignore_index=ignore
        )
        _require_rows(int(counts.sum()))
        if counts.shape[0] < 2:
            raise HeadstartError(
                f"the labels hold one class only ({_short(result_classes.tolist())}): "
                f"{spec.name} needs at least 2 classes (num_classes= or classes= declares "
                "the ones never seen)"
            )
        if n_ignored:
            details["ignored"] = n_ignored
        if spec.family == "softmax":
            bias, expected, zero, optimal, floored, extra = _softmax_bias(
                counts, opts, floor_rule, floor_value, result_classes
            )
        else:
            bias, expected, zero, optimal, extra = _hinge_bias(counts, opts, spec, result_classes)
            floored = ()
        details.update(extra)
        n = int(counts.sum())
    elif spec.family == "sigmoid":
        kind = _stats_kind(stats)
        if kind == "multilabel":
            n = int(_stat(stats, "n"))
            _require_rows(n)
            pos = np.asarray(_stat(stats, "positives"), np.float64).reshape(-1)
            rates = getattr(stats, "rates", None)
            p = np.asarray(rates, np.float64).reshape(-1) if rates is not None else pos / n
            names = np.asarray(getattr(stats, "classes", np.arange(p.shape[0])))
            if num_classes is not None and num_classes != p.shape[0]:
                raise HeadstartError(
                    f"the labels have {p.shape[0]} outputs but num_classes={num_classes}"
                )
            result_classes = names
        elif kind == "classification":
            names, cnt, _ = _class_table(
                stats,
                num_classes=None if num_classes in (None, 1) else num_classes,
                classes=classes,
                ignore_index=None,
            )
            n = int(cnt.sum())
            _require_rows(n)
            if np.count_nonzero(cnt) < 2 and cnt.shape[0] <= 2:
                raise HeadstartError(
                    f"the labels hold one class only ({_jsonable(names[int(np.argmax(cnt))])!r}, "
                    f"{n} rows): nothing to learn; check the column or the file"
                )
            counts = cnt
            if cnt.shape[0] == 2 and num_classes in (None, 1):
                p = np.array([cnt[1] / n])
                result_classes = names[1:]
                details["positive_class"] = _jsonable(names[1])
            else:
                p = cnt / n
                result_classes = names
        elif kind == "regression":
            s = stats[0] if isinstance(stats, list) else stats
            if isinstance(stats, list) and len(stats) != 1:
                raise HeadstartError("pass 2-D multi-label targets as one array")
            n = int(_stat(s, "n"))
            _require_rows(n)
            lo, hi = float(_stat(s, "min")), float(_stat(s, "max"))
            if lo < 0 or hi > 1:
                raise HeadstartError(
                    f"BCE targets must lie in [0, 1]; they range over [{lo:g}, {hi:g}]"
                )
            p = np.array([float(_stat(s, "mean"))])
            result_classes = None
        else:
            raise HeadstartError(f"cannot use statistics of type {type(stats).__name__}")
        if classes is not None and kind == "multilabel":
            raise TypeError("classes= does not apply to multi-label statistics")
        bias, expected, zero, optimal, floored, extra = _sigmoid_bias(
            p,
            n,
            opts,
            floor_rule,
            floor_value,
            result_classes if result_classes is not None else np.array(["output"]),
        )
        details.update(extra)
    else:
        cols = stats if isinstance(stats, list) else [stats]
        if any(_stats_kind(s) != "regression" for s in cols):
            raise HeadstartError(
                f"{spec.name} needs real-valued targets; got statistics of kind "
                f"{_stats_kind(cols[0])}"
            )
        if num_classes is not None and num_classes != len(cols):
            raise HeadstartError(
                f"the targets have {len(cols)} outputs but num_classes={num_classes}"
            )
        rows = [
            _regression_bias(
                s, spec, opts, floor_rule, floor_value, None if values is None else values[j]
            )
            for j, s in enumerate(cols)
        ]
        bias = np.array([r[0] for r in rows], np.float64)
        per = np.array([r[1] for r in rows])
        expected = float(per.mean())
        zeros = [r[2] for r in rows]
        zero = None if any(z is None for z in zeros) else float(np.mean(zeros))
        optimal = float(np.mean([r[3] for r in rows]))
        floored = tuple(j for j, r in enumerate(rows) if r[4])
        n = int(_stat(cols[0], "n"))
        if len(cols) > 1:
            details["per_output_loss"] = per
            result_classes = (
                np.asarray(column) if isinstance(column, (list, tuple)) else (np.arange(len(cols)))
            )
        if any(getattr(s, "exact", True) is False for s in cols):
            details["approximate"] = (
                "the targets were read once (a plain iterator): order statistics are "
                "estimates and the losses that need them are NaN; pass a path, an array or a "
                "callable returning a fresh iterator for exact answers"
            )
        if zero is None:
            details["zero_bias_loss"] = (
                "the loss at a zero output needs mean |y| (L1, pinball) or the Huber loss at 0, "
                "which these statistics (not from headstart.scan) do not carry"
            )
        stats = cols if len(cols) > 1 else cols[0]
    bias = np.asarray(bias, np.float64)
    floor_info = FloorInfo(
        rule=floor_rule,
        value=floor_value,
        classes=tuple(floored),
        cost=max(0.0, float(expected) - float(optimal)) if floored else 0.0,
    )
    options = {k: v for k, v in opts.items()}
    return BiasInit(
        bias=bias.astype(dtype),
        expected_loss=float(expected),
        zero_bias_loss=None if zero is None else float(zero),
        optimal_loss=float(optimal),
        loss=spec.name,
        options=options,
        floor=floor_info,
        classes=result_classes,
        counts=counts,
        n=n,
        stats=stats,
        family=spec.family,
        details=details,
    )


# --------------------------------------------------------------------------- check_init

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
    than any constant output can reach: labels or loss options differ from the model's).
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
    pos = {_jsonable(c): i for i, c in enumerate(result.classes)}
    try:
        return np.array([pos[_jsonable(x)] for x in t.reshape(-1)], np.int64).reshape(t.shape)
    except KeyError as e:
        raise HeadstartError(f"target label {e.args[0]!r} is not one of the classes") from None


def _observed_loss(result: BiasInit, logits, target) -> tuple[float, int]:
    """The model's loss on (logits, target) with the result's loss and options, and the
    batch size."""
    from . import _losses as L

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


def check_init(
    loss_value_or_logits,
    labels_or_result,
    loss: str | None = None,
    *,
    target=None,
    batch_size: int | None = None,
    tolerance: float | None = None,
    **options,
) -> InitCheck:
    """Is the model's output layer initialised well? Compare its first loss with the best
    constant output (:func:`bias_init`) and with the zero-bias ("uniform") value.

    ``loss_value_or_logits``: the first loss a model reported (a number), or the model's
    outputs for a batch (logits / predictions), in which case ``target`` holds that batch's
    labels (when omitted, ``labels_or_result`` is used if it is an array of the same length)
    and the loss is computed with headstart's own losses and the same options.
    ``labels_or_result``: a :class:`BiasInit` from :func:`bias_init`, or anything
    :func:`bias_init` accepts (then ``loss`` and ``**options`` are passed on).

    The tolerance is, unless given, the largest of: three standard errors of a batch mean at
    the optimum (when the batch size is known: from the logits, or ``batch_size=``), 5% of
    the gap between the optimum and the zero-bias value, and 1% of the optimum.

    Returns an :class:`InitCheck`; ``str()`` of it is one sentence, e.g. "first loss 2.3 vs
    optimum 1.37 and uniform 2.3: your output bias is off, use bias_init".
    """
    if isinstance(labels_or_result, BiasInit):
        result = labels_or_result
        if loss is not None and _resolve_loss(loss)[0].name != result.loss:
            raise HeadstartError(f"loss={loss!r} but the bias_init result is for {result.loss!r}")
        if options:
            raise TypeError(
                f"options {', '.join(sorted(options))} conflict with a bias_init result; the "
                "result's options are used"
            )
    else:
        result = bias_init(labels_or_result, loss or "cross_entropy", **options)
    if np.ndim(loss_value_or_logits) == 0:
        if target is not None:
            raise TypeError("target= is for logits; a loss value needs none")
        lv = np.asarray(loss_value_or_logits)
        if lv.dtype.kind not in "fiub":
            raise TypeError(
                "loss_value_or_logits must be the first loss (a number) or logits (an "
                f"array), got {type(loss_value_or_logits).__name__} {loss_value_or_logits!r}"
            )
        observed = float(lv)
        b = batch_size
    else:
        if target is None:
            cand = labels_or_result
            if isinstance(cand, (np.ndarray, list, tuple)) and len(cand) == len(
                np.asarray(loss_value_or_logits)
            ):
                target = cand
            else:
                raise TypeError("pass target= (the batch's labels) with logits")
        observed, b = _observed_loss(result, loss_value_or_logits, target)
        if batch_size is not None:
            b = batch_size
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
    if tolerance is None:
        tol = max(0.01 * abs(opt), 1e-6)
        if naive is not None:
            tol = max(tol, 0.05 * abs(naive - opt))
        sd = _sampling_sd(result)
        if sd is not None and b:
            tol = max(tol, 3.0 * sd / math.sqrt(b))
    else:
        tol = float(tolerance)
        if not tol >= 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    o_s, opt_s, naive_s = _fmt_distinct([observed, opt, naive])
    name = _NAIVE_NAME[result.family]
    if naive is not None:
        head = f"first loss {o_s} vs optimum {opt_s} and {name} {naive_s}"
    else:
        head = f"first loss {o_s} vs optimum {opt_s}"
    if observed < opt - tol:
        verdict = "below_optimum"
        msg = (
            f"first loss {o_s} is below the optimum {opt_s} a constant output can reach: the "
            "labels or loss options differ from the model's, or it has already trained"
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
