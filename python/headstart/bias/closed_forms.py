"""The closed forms: class tables, the softmax, sigmoid and regression optima and losses."""

from __future__ import annotations

import math

import numpy as np

from .._core import HeadstartError
from .fmt import jsonable, short_list

# Integer labels index the outputs (torch's convention) unless they are too sparse for that:
# above this many outputs, and more than twice as many as there are distinct labels, they are
# ids mapped to outputs in sorted order (a recommender's hashed item ids would otherwise ask
# for a bias of 2^40 entries).
DENSE_OUTPUTS_MAX = 1 << 22
# Dense outputs beyond this are refused even when asked for (sparse_ids=False): 2^31
# float32 biases are 8 GiB.
DENSE_OUTPUTS_LIMIT = 1 << 31


class ClassTable:
    """Output order and counts from classification statistics (see :func:`class_table`)."""

    def __init__(
        self, classes, counts, n_ignored=0, *, ids=False, ignore_unmatched=False, label_values=None
    ):
        self.classes = classes  # one entry per output: label values or names
        self.counts = counts
        self.n_ignored = n_ignored
        self.ids = ids  # outputs are sparse ids in sorted order
        self.ignore_unmatched = ignore_unmatched
        self.label_values = label_values  # integer label of each output, when named


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def class_table(
    stats, *, num_classes, classes, ignore_index, ignore_explicit=False, sparse_ids=None
):
    """Dense class order and counts from classification statistics.

    Integer labels index the outputs (torch's convention): ``num_classes`` outputs (default:
    the number of names the source carries, e.g. a ``ClassLabel``, else max label + 1),
    unseen classes count 0; ``classes=`` of strings names those outputs, ``classes=`` of
    integers lists the label values in output order. Integer labels too sparse to index
    outputs (``sparse_ids``: None decides, see ``DENSE_OUTPUTS_MAX``; True / False force
    it) are ids, one output per distinct id in sorted order. Name labels are sorted, or
    ordered as ``classes=``. ``ignore_index`` must be of the labels' type."""
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
    ints = raw.dtype.kind in "iu" or raw.size == 0
    n_ignored = 0
    unmatched = False
    if ignore_index is not None:
        if ints and not _is_int(ignore_index):
            if ignore_explicit:
                raise HeadstartError(
                    f"ignore_index={ignore_index!r} but the labels are integers: ignore_index "
                    "must be an integer label"
                )
        elif not ints and not isinstance(ignore_index, str):
            if ignore_explicit:
                raise HeadstartError(
                    f"ignore_index={ignore_index!r} but the labels are names "
                    f"({short_list(raw.tolist(), 4)}): pass the name to leave out"
                )
        else:
            drop = raw == (int(ignore_index) if ints else str(ignore_index))
            n_ignored = int(cnt[drop].sum())
            unmatched = ignore_explicit and not drop.any()
            raw, cnt = raw[~drop], cnt[~drop]
    names = getattr(stats, "names", None)
    if classes is not None:
        order = list(classes.tolist() if isinstance(classes, np.ndarray) else classes)
        if len(set(map(str, order))) != len(order):
            raise HeadstartError("classes= lists a class twice")
        if num_classes is not None and num_classes != len(order):
            raise HeadstartError(f"num_classes={num_classes} but classes= lists {len(order)}")
        as_names = ints and all(isinstance(c, str) for c in order)
        if as_names:
            # Names of outputs 0..C-1 (torchvision's ImageFolder.classes, a ClassLabel).
            c = len(order)
            if raw.size and (raw.min() < 0 or raw.max() >= c):
                bad = int(raw.min()) if raw.min() < 0 else int(raw.max())
                raise HeadstartError(
                    f"label {bad} is not an output index for the {c} names of classes= "
                    f"(labels must be 0..{c - 1})"
                )
            dense = np.zeros(c, np.int64)
            np.add.at(dense, raw, cnt)
            return ClassTable(
                np.asarray(order),
                dense,
                n_ignored,
                ignore_unmatched=unmatched,
                label_values=np.arange(c),
            )
        key = (lambda v: int(v)) if ints else str
        if ints and not all(
            _is_int(c) or (isinstance(c, str) and c.strip().lstrip("+-").isdigit()) for c in order
        ):
            raise HeadstartError(
                "classes= mixes names and integers; give names of the outputs 0..C-1, or the "
                "integer labels in output order"
            )
        pos = {key(c): i for i, c in enumerate(order)}
        dense = np.zeros(len(order), np.int64)
        for c, k in zip(raw.tolist(), cnt.tolist()):
            if key(c) not in pos:
                raise HeadstartError(f"label {c!r} is not among classes= ({short_list(order)})")
            dense[pos[key(c)]] += k
        out = np.asarray([key(c) for c in order]) if ints else np.asarray(order)
        return ClassTable(out, dense, n_ignored, ignore_unmatched=unmatched)
    if ints:
        lo = int(raw.min()) if raw.size else 0
        top = int(raw.max()) + 1 if raw.size else 0
        span = top - min(lo, 0)
        if sparse_ids is None:
            use_ids = (
                num_classes is None
                and names is None
                and span > max(DENSE_OUTPUTS_MAX, 2 * raw.size)
            )
        else:
            use_ids = bool(sparse_ids)
        if use_ids:
            if num_classes is not None and num_classes != raw.size:
                raise HeadstartError(
                    f"num_classes={num_classes} but the labels hold {raw.size} distinct ids "
                    "(sparse ids: one output per id seen)"
                )
            return ClassTable(
                raw.astype(np.int64), cnt, n_ignored, ids=True, ignore_unmatched=unmatched
            )
        if lo < 0:
            raise HeadstartError(
                f"negative class label {lo} (ignore_index is {ignore_index}); integer labels "
                "must be class indices 0..C-1 (or pass sparse_ids=True to map ids to outputs "
                "in sorted order)"
            )
        if num_classes is not None:
            c = int(num_classes)
        elif names is not None:
            c = len(names)
        else:
            c = top
        if c > DENSE_OUTPUTS_LIMIT:
            raise HeadstartError(
                f"integer labels up to {top - 1} would index {c} outputs, more than any "
                f"output layer holds ({DENSE_OUTPUTS_LIMIT}); they are ids: pass "
                "sparse_ids=True (--sparse-ids) for one output per distinct id"
            )
        if top > c:
            what = (
                f"num_classes={c}"
                if num_classes is not None
                else f"the {c} class names of the source"
            )
            raise HeadstartError(f"label {top - 1} does not fit {what} (labels must be 0..{c - 1})")
        dense = np.zeros(c, np.int64)
        np.add.at(dense, raw, cnt)
        if names is not None:
            if len(names) != c:
                raise HeadstartError(f"num_classes={c} but the source names {len(names)} classes")
            return ClassTable(
                np.asarray(names),
                dense,
                n_ignored,
                ignore_unmatched=unmatched,
                label_values=np.arange(c),
            )
        return ClassTable(np.arange(c), dense, n_ignored, ignore_unmatched=unmatched)
    if sparse_ids:
        raise HeadstartError("sparse_ids=True applies to integer labels; these are names")
    if num_classes is not None and int(num_classes) != raw.shape[0]:
        raise HeadstartError(
            f"the labels have {raw.shape[0]} classes ({short_list(raw.tolist())}) but "
            f"num_classes={num_classes}; pass classes=[...] to name the ones never seen"
        )
    return ClassTable(raw, cnt, n_ignored, ignore_unmatched=unmatched)


def require_rows(n, what="labels"):
    if n <= 0:
        raise HeadstartError(f"no {what}: the input is empty (or every value was skipped)")


def require_two_classes(counts, classes, n, hint="the column, the file, or ignore_index"):
    """A constant output already predicts a single class: refuse rather than return a bias
    that goes to infinity."""
    if np.count_nonzero(counts) < 2:
        only = classes[int(np.argmax(counts))]
        raise HeadstartError(
            f"the labels hold one class only ({jsonable(only)!r}, {n} rows): a constant output "
            f"already predicts it; check {hint}"
        )


def vector_option(value, length, name):
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


def entropy_terms(a: np.ndarray, b: np.ndarray) -> float:
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


def softmax_bias(counts, opts, floor_rule, floor_value, classes, n=None, soft=False):
    """Softmax cross-entropy. ``counts``: per-class label counts, or for probability targets
    (``soft``) the per-class sums of the target rows over ``n`` rows."""
    n = int(counts.sum()) if n is None else int(n)
    require_rows(n)
    c = counts.shape[0]
    require_two_classes(counts, classes, n)
    f = counts / n
    w = vector_option(opts["weight"], c, "weight")
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
    optimal = entropy_terms(a, logq) / denom
    bias = logq.copy()
    zero = q == 0
    floored: tuple = ()
    if floor_rule == "pseudocount":
        bias[zero] = math.log(floor_value / n)
        floored = tuple(jsonable(x) for x in classes[zero])
    elif floor_rule == "min_log_prob":
        low = bias < floor_value
        floored = tuple(jsonable(x) for x in classes[low])
        bias = np.maximum(bias, floor_value)
    else:
        floored = tuple(jsonable(x) for x in classes[zero])
    expected = entropy_terms(a, bias) / denom
    zero_bias = float(a.sum()) * math.log(c) / denom
    # per-class sample loss u_c and weight v_c: the batch mean is sum u / sum v
    lse_b = lse(bias)
    if math.isfinite(lse_b):
        nll = lse_b - bias
        smooth = float(np.dot(ww, nll)) / c if eps else 0.0
        with np.errstate(invalid="ignore"):
            u = ww * (1.0 - eps) * nll + eps * smooth
    else:
        u = np.full(c, np.inf)
    details = {} if soft else {"per_class_loss": u, "per_class_weight": ww}
    return bias, expected, zero_bias, optimal, floored, details


def lse(b):
    finite = np.isfinite(b)
    if not finite.any():
        return -math.inf
    m = b[finite].max()
    return float(m + math.log(np.exp(b[finite] - m).sum()))


def softplus(x):
    return np.logaddexp(0.0, x)


def sigmoid_bias(p, n, opts, floor_rule, floor_value, names):
    """Per-output logits for positive rates ``p`` (n rows)."""
    k = p.shape[0]
    pw = vector_option(opts["pos_weight"], k, "pos_weight")
    w = np.ones(k) if pw is None else pw
    pf = p.astype(np.float64).copy()
    edge = (pf <= 0) | (pf >= 1)
    floored: tuple = ()
    if floor_rule == "pseudocount":
        pf[pf <= 0] = floor_value / (n + floor_value)
        pf[pf >= 1] = n / (n + floor_value)
        floored = tuple(jsonable(x) for x in names[edge])
    elif floor_rule == "none":
        floored = tuple(jsonable(x) for x in names[edge])
    with np.errstate(divide="ignore"):
        bias = np.log(w * pf) - np.log1p(-pf)
        exact = np.log(w * p) - np.log1p(-p)
    if floor_rule == "min_log_prob":
        # clip q = sigmoid(b) to [exp(m), 1 - exp(m)]: b in [m - log(1 - e^m), -(...)]
        bmin = floor_value - math.log(-math.expm1(floor_value))
        low = (bias < bmin) | (bias > -bmin)
        floored = tuple(jsonable(x) for x in names[low])
        bias = np.clip(bias, bmin, -bmin)

    def loss_at(b):
        with np.errstate(invalid="ignore"):
            pos = np.where(p > 0, w * p * softplus(-b), 0.0)
            neg = np.where(p < 1, (1 - p) * softplus(b), 0.0)
        return pos + neg

    per = loss_at(bias)
    opt = loss_at(exact)
    zero = (w * p + 1 - p) * math.log(2.0)
    details = {
        "per_output_loss": per,
        "rates": p,
        "per_output_sample_loss": (w * softplus(-bias), softplus(bias)),
    }
    return bias, float(per.mean()), float(zero.mean()), float(opt.mean()), floored, details


def stat(stats, name):
    v = getattr(stats, name)
    return v() if callable(v) else v


def regression_bias(stats, spec, opts, floor_rule, floor_value, values):
    """bias, expected, zero-bias loss (or None), optimal, floored?, for one target column."""
    n = int(stat(stats, "n"))
    require_rows(n, "targets")
    name = spec.name
    mean = float(stat(stats, "mean"))
    lo, hi = float(stat(stats, "min")), float(stat(stats, "max"))
    zero = None
    floored = False
    if name == "mse_loss":
        b, loss = mean, float(stat(stats, "var"))
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
        b, loss = float(stat(stats, "median")), float(stat(stats, "mad"))
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
            zero = 0.5 * (float(stat(stats, "var")) + mean * mean)
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
