"""bias_init's math once the statistics are in: from statistics to a :class:`BiasInit`."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .._core import HeadstartError
from .closed_forms import (
    class_table,
    regression_bias,
    require_rows,
    sigmoid_bias,
    softmax_bias,
    stat,
)
from .floor import FloorInfo, parse_floor
from .fmt import jsonable, short_list
from .hinge import hinge_bias
from .losses import check_options, positive, resolve_loss, validate_scalars
from .result import BiasInit

__all__ = [
    "ORDER_LOSSES",
    "Prepared",
    "approximate_bounds",
    "bias_from_stats",
    "prepare",
    "stats_kind",
]

# Losses whose optimum is an order statistic (or the Huber location): exact only when the
# labels can be read more than once.
ORDER_LOSSES = ("l1_loss", "huber_loss", "smooth_l1_loss", "pinball_loss")


class Prepared:
    """A loss and its options, checked before any data is read: ``spec``, ``opts``, the
    floor rule, ``requests`` (the order statistics the loss needs from a scan) and the
    output options; :meth:`finish` turns statistics into the :class:`BiasInit`."""

    def __init__(
        self,
        spec,
        opts,
        floor_rule,
        floor_value,
        requests,
        *,
        ignore_explicit,
        num_classes,
        classes,
        sparse_ids,
        dtype,
    ):
        self.spec = spec
        self.opts = opts
        self.floor_rule = floor_rule
        self.floor_value = floor_value
        self.requests = requests
        self.ignore_explicit = ignore_explicit
        self.num_classes = num_classes
        self.classes = classes
        self.sparse_ids = sparse_ids
        self.dtype = dtype

    def finish(self, stats, values=None, column=None) -> BiasInit:
        outputs = None
        if isinstance(stats, list):
            outputs = len(stats)
        elif getattr(stats, "positives", None) is not None:
            outputs = len(stats.positives)
        if outputs == 0:
            raise HeadstartError(
                "the targets have 0 columns: there is no output to initialise (an (N, 0) array?)"
            )
        return bias_from_stats(
            stats,
            self.spec,
            self.opts,
            floor_rule=self.floor_rule,
            floor_value=self.floor_value,
            num_classes=self.num_classes,
            classes=self.classes,
            values=values,
            column=column,
            ignore_explicit=self.ignore_explicit,
            sparse_ids=self.sparse_ids,
            dtype=self.dtype,
        )


def prepare(
    loss,
    loss_options,
    *,
    floor="pseudocount",
    dtype=np.float32,
    num_classes=None,
    classes=None,
    sparse_ids=None,
) -> Prepared:
    """Check ``loss`` and its options (torch names) and the output options."""
    spec, preset = resolve_loss(loss)
    ignore_explicit = "ignore_index" in loss_options
    opts = check_options(spec, preset, loss_options)
    floor_rule, floor_value = parse_floor(floor)
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
    if sparse_ids not in (None, True, False):
        raise TypeError(f"sparse_ids must be None, True or False, got {sparse_ids!r}")
    validate_scalars(spec, opts)
    requests: dict[str, Any] = {}
    if spec.name == "pinball_loss":
        requests["quantiles"] = (float(opts["tau"]),)
    elif spec.name == "huber_loss" and positive(opts["delta"]):
        requests["huber_delta"] = float(opts["delta"])
    elif spec.name == "smooth_l1_loss" and positive(opts["beta"]):
        requests["huber_delta"] = float(opts["beta"])
    return Prepared(
        spec,
        opts,
        floor_rule,
        floor_value,
        requests,
        ignore_explicit=ignore_explicit,
        num_classes=num_classes,
        classes=classes,
        sparse_ids=sparse_ids,
        dtype=dtype,
    )


def stats_kind(obj) -> str | None:
    """ "classification", "multilabel" or "regression" for statistics (duck-typed, so
    statistics from elsewhere work too), else None."""
    if hasattr(obj, "counts") and hasattr(obj, "classes"):
        return "classification"
    if hasattr(obj, "positives") and hasattr(obj, "n"):
        return "multilabel"
    if hasattr(obj, "mean") and hasattr(obj, "var") and hasattr(obj, "n"):
        return "regression"
    return None


def _table_details(table, details, ignore):
    if table.ids:
        details["sparse_ids"] = (
            f"the labels are {len(table.classes)} sparse integer ids (from "
            f"{int(table.classes[0])} to {int(table.classes[-1])}): output k is the k-th "
            "smallest id (result.classes holds them; --out writes them beside the bias)"
        )
    if table.ignore_unmatched:
        details["ignore_index_unmatched"] = (
            f"ignore_index={ignore!r} matched no label: nothing was left out"
        )
    if table.label_values is not None:
        details["named_outputs"] = True


def _reorder_outputs(p, names, classes):
    """Multi-label rates in the order of ``classes=`` (names never seen get rate 0)."""
    order = [str(c) for c in classes]
    if len(set(order)) != len(order):
        raise HeadstartError("classes= lists a class twice")
    have = {str(n): i for i, n in enumerate(names.tolist())}
    extra = [n for n in have if n not in set(order)]
    if extra:
        raise HeadstartError(f"label {extra[0]!r} is not among classes= ({short_list(order)})")
    out = np.zeros(len(order))
    for j, c in enumerate(order):
        if c in have:
            out[j] = p[have[c]]
    return out, np.asarray(list(classes))


def approximate_bounds(s, spec, opts):
    """((lo, hi) of the optimal constant, an upper bound of the loss at the estimate) for
    one-pass statistics. The bound uses the exact mean and variance: for any c,
    E|y - c| <= sqrt(var + (mean - c)^2) =: r, pinball <= max(tau, 1 - tau) r, Huber
    <= min(delta r, r^2 / 2)."""
    name = spec.name
    if name == "l1_loss" or (name == "smooth_l1_loss" and float(opts["beta"]) == 0.0):
        lo, hi = s.median_bounds()
        c = s.median
    elif name == "pinball_loss":
        tau = float(opts["tau"])
        k = min(max(math.ceil(s.n * tau) - 1, 0), s.n - 1)  # inverted_cdf's rank
        lo, hi = s.rank_bounds(k) if hasattr(s, "rank_bounds") else s.quantile_bounds(tau)
        c = s.quantile(tau, "inverted_cdf")
    else:
        d = float(opts["delta"] if name == "huber_loss" else opts["beta"])
        lo, hi = s.huber_bounds(d)
        c = s.huber_location(d)
    r2 = float(s.var) + (float(s.mean) - c) ** 2
    r = math.sqrt(max(r2, 0.0))
    if name == "pinball_loss":
        tau = float(opts["tau"])
        bound = max(tau, 1.0 - tau) * r
    elif name == "l1_loss" or (name == "smooth_l1_loss" and float(opts["beta"]) == 0.0):
        bound = r
    else:
        d = float(opts["delta"] if name == "huber_loss" else opts["beta"])
        bound = min(d * r, 0.5 * r2)
        if name == "smooth_l1_loss":
            bound /= d
    return (float(lo), float(hi)), bound


def bias_from_stats(
    stats,
    spec,
    opts,
    *,
    floor_rule,
    floor_value,
    num_classes=None,
    classes=None,
    values=None,
    column=None,
    ignore_explicit=False,
    sparse_ids=None,
    dtype=np.float32,
) -> BiasInit:
    """The optimal bias for loss ``spec`` (options ``opts``, already checked) from
    statistics: one classification / multi-label statistics object, or a list of
    regression statistics (one per output). ``values``: the in-memory regression columns
    when there are any (for the zero-output loss of L1 / Huber / pinball)."""
    details: dict[str, Any] = {}
    result_classes = None
    counts = None
    if spec.family == "softmax" and stats_kind(stats) == "multilabel":
        # probability (soft / one-hot) targets: F = the mean target row
        n = int(stat(stats, "n"))
        require_rows(n)
        sums = np.asarray(stat(stats, "positives"), np.float64).reshape(-1)
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
        bias, expected, zero, optimal, floored, extra = softmax_bias(
            sums, opts, floor_rule, floor_value, result_classes, n=n, soft=True
        )
        details.update(extra, probability_targets=True)
        counts = sums
    elif spec.family in ("softmax", "hinge"):
        if stats_kind(stats) != "classification":
            raise HeadstartError(
                f"{spec.name} needs class labels; the statistics are of kind "
                f"{stats_kind(stats) or type(stats).__name__}"
            )
        ignore = opts.get("ignore_index") if spec.family == "softmax" else None
        table = class_table(
            stats,
            num_classes=num_classes,
            classes=classes,
            ignore_index=ignore,
            ignore_explicit=ignore_explicit,
            sparse_ids=sparse_ids,
        )
        result_classes, counts, n_ignored = table.classes, table.counts, table.n_ignored
        _table_details(table, details, ignore)
        require_rows(int(counts.sum()))
        if counts.shape[0] < 2:
            raise HeadstartError(
                f"the labels hold one class only ({short_list(result_classes.tolist())}): "
                f"{spec.name} needs at least 2 classes (num_classes= or classes= declares "
                "the ones never seen)"
            )
        if n_ignored:
            details["ignored"] = n_ignored
        if spec.family == "softmax":
            bias, expected, zero, optimal, floored, extra = softmax_bias(
                counts, opts, floor_rule, floor_value, result_classes
            )
        else:
            bias, expected, zero, optimal, extra = hinge_bias(counts, opts, spec, result_classes)
            floored = ()
        details.update(extra)
        n = int(counts.sum())
    elif spec.family == "sigmoid":
        kind = stats_kind(stats)
        if kind == "multilabel":
            n = int(stat(stats, "n"))
            require_rows(n)
            pos = np.asarray(stat(stats, "positives"), np.float64).reshape(-1)
            rates = getattr(stats, "rates", None)
            p = np.asarray(rates, np.float64).reshape(-1) if rates is not None else pos / n
            names = np.asarray(getattr(stats, "classes", np.arange(p.shape[0])))
            if classes is not None:
                p, names = _reorder_outputs(p, names, classes)
            if num_classes is not None and num_classes != p.shape[0]:
                raise HeadstartError(
                    f"the labels have {p.shape[0]} outputs but num_classes={num_classes}"
                )
            result_classes = names
        elif kind == "classification":
            seen = np.asarray(getattr(stats, "classes", ()))
            if seen.dtype.kind == "i" and seen.size and int(seen.min()) < 0:
                # (class_table's message would speak of ignore_index, which BCE has not)
                raise HeadstartError(
                    "binary cross-entropy targets are 0 / 1 (or rates in [0, 1]); the labels "
                    f"include {int(seen.min())}: map -1 / +1 labels to 0 / 1 first, "
                    "(y + 1) / 2"
                )
            table = class_table(
                stats,
                num_classes=None if num_classes in (None, 1) else num_classes,
                classes=classes,
                ignore_index=None,
                sparse_ids=sparse_ids,
            )
            names, cnt = table.classes, table.counts
            _table_details(table, details, None)
            n = int(cnt.sum())
            require_rows(n)
            if np.count_nonzero(cnt) < 2 and cnt.shape[0] <= 2:
                raise HeadstartError(
                    f"the labels hold one class only ({jsonable(names[int(np.argmax(cnt))])!r}, "
                    f"{n} rows): nothing to learn; check the column or the file"
                )
            counts = cnt
            if cnt.shape[0] == 2 and num_classes in (None, 1):
                p = np.array([cnt[1] / n])
                result_classes = names[1:]
                details["positive_class"] = jsonable(names[1])
            else:
                p = cnt / n
                result_classes = names
        elif kind == "regression":
            s = stats[0] if isinstance(stats, list) else stats
            if isinstance(stats, list) and len(stats) != 1:
                raise HeadstartError("pass 2-D multi-label targets as one array")
            n = int(stat(s, "n"))
            require_rows(n)
            lo, hi = float(stat(s, "min")), float(stat(s, "max"))
            if lo < 0 or hi > 1:
                raise HeadstartError(
                    f"BCE targets must lie in [0, 1]; they range over [{lo:g}, {hi:g}]"
                )
            p = np.array([float(stat(s, "mean"))])
            result_classes = None
        else:
            raise HeadstartError(f"cannot use statistics of type {type(stats).__name__}")
        bias, expected, zero, optimal, floored, extra = sigmoid_bias(
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
        if any(stats_kind(s) != "regression" for s in cols):
            raise HeadstartError(
                f"{spec.name} needs real-valued targets; got statistics of kind "
                f"{stats_kind(cols[0])}"
            )
        if num_classes is not None and num_classes != len(cols):
            raise HeadstartError(
                f"the targets have {len(cols)} outputs but num_classes={num_classes}"
            )
        rows = [
            regression_bias(
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
        n = int(stat(cols[0], "n"))
        if len(cols) > 1:
            details["per_output_loss"] = per
            result_classes = (
                np.asarray(column) if isinstance(column, (list, tuple)) else (np.arange(len(cols)))
            )
        if any(getattr(s, "exact", True) is False for s in cols) and spec.name in ORDER_LOSSES:
            bounds = [approximate_bounds(s, spec, opts) for s in cols]
            details["approximate"] = (
                "the targets were read once (a one-pass source, exact=False): the bias is an "
                "estimate inside bias_bounds, and expected_loss is an upper bound of the loss "
                "at it (from the mean and variance)"
            )
            details["bias_bounds"] = [b[0] for b in bounds]
            expected = float(np.mean([b[1] for b in bounds]))
            optimal = expected
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
