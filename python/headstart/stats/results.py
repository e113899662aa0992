"""Statistics results: class counts, multi-label rates, regression statistics.

Produced by :func:`headstart.scan` and the streaming states; read by ``bias_init``.
"""

from __future__ import annotations

import math

import numpy as np

from .._core import HeadstartError

__all__ = ["QUANTILE_METHODS", "ClassificationStats", "MultilabelStats", "RegressionStats"]

QUANTILE_METHODS = (
    "inverted_cdf",
    "averaged_inverted_cdf",
    "closest_observation",
    "interpolated_inverted_cdf",
    "hazen",
    "weibull",
    "linear",
    "median_unbiased",
    "normal_unbiased",
    "lower",
    "higher",
    "midpoint",
    "nearest",
)
# (alpha, beta) of the continuous methods: virtual index n q + alpha + q (1 - alpha - beta) - 1.
_PLOTTING_POSITIONS = {
    "interpolated_inverted_cdf": (0.0, 1.0),
    "hazen": (0.5, 0.5),
    "weibull": (0.0, 0.0),
    "linear": (1.0, 1.0),
    "median_unbiased": (1.0 / 3.0, 1.0 / 3.0),
    "normal_unbiased": (3.0 / 8.0, 3.0 / 8.0),
}


def quantile_plan(n: int, q: float, method: str):
    """numpy's rule for the q-quantile of n sorted values: ``(lo, hi, gamma)``, the two
    0-based ranks and the weight of ``hi`` (``_lerp(x[lo], x[hi], gamma)``; gamma 0 reads
    ``x[lo]`` alone). The same index arithmetic as ``np.quantile`` in float64, so the
    result is bit-identical to it."""
    last = n - 1
    if method in ("inverted_cdf", "closest_observation"):
        h = n * q - 1.0 - (0.5 if method == "closest_observation" else 0.0)
        lo = math.floor(h)
        g = h - lo
        if method == "inverted_cdf":
            k = lo if g == 0 else lo + 1
        else:  # round half to the even 1-based order statistic
            k = lo if (g == 0 and lo % 2 == 1) else lo + 1
        k = min(max(k, 0), last)
        return k, k, 0.0
    if method == "lower":
        k = math.floor(last * q)
        return k, k, 0.0
    if method == "higher":
        k = math.ceil(last * q)
        return k, k, 0.0
    if method == "nearest":
        k = int(np.around(last * q))
        return k, k, 0.0
    if method == "midpoint":
        lo, hi = math.floor(last * q), math.ceil(last * q)
        return lo, hi, (0.0 if lo == hi else 0.5)
    if method == "averaged_inverted_cdf":
        h = n * q - 1.0
    else:
        a, b = _PLOTTING_POSITIONS[method]
        h = n * q + (a + q * (1.0 - a - b)) - 1.0
    if method == "linear":
        h = last * q
    if h < 0:
        return 0, 0, 0.0
    if h >= last:
        return last, last, 0.0
    lo = math.floor(h)
    g = h - lo
    if method == "averaged_inverted_cdf":
        g = 0.5 if g == 0 else 1.0
    return lo, lo + 1, g


# --------------------------------------------------------------------------- results


class ClassificationStats:
    """Class counts: ``classes`` (sorted; int64 labels or str names), ``counts`` (int64),
    ``n``, ``frequencies``, ``log_priors``, ``entropy`` (nats), ``skipped``.

    ``names``: class names of integer labels when the source carries them (a Hugging Face
    ``ClassLabel``, pandas categories: label k is ``names[k]``), else None. ``source`` and
    ``column``: what was read; ``notes``: what the reader decided that a user should know
    (e.g. whether the first line was taken as a header)."""

    is_label_statistics = True  # recognised by headstart.sources

    def __init__(
        self, classes, counts, skipped=0, source=None, column=None, *, names=None, notes=()
    ):
        self.classes = np.asarray(classes)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.n = int(self.counts.sum())
        self.skipped = int(skipped)
        self.source = source
        self.column = column
        self.names = None if names is None else list(names)
        self.notes = tuple(notes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def frequencies(self) -> np.ndarray:
        return self.counts / self.n if self.n else np.zeros(len(self.counts))

    @property
    def log_priors(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.frequencies)

    @property
    def entropy(self) -> float:
        f = self.frequencies[self.counts > 0]
        return float(-(f * np.log(f)).sum())

    def __repr__(self) -> str:
        head = f"ClassificationStats(n={self.n}, classes={self.num_classes}"
        if self.skipped:
            head += f", skipped={self.skipped}"
        lines = [head + f", entropy={self.entropy:.6g} nats)"]
        order = np.argsort(-self.counts, kind="stable")
        for i in order[:10]:
            lines.append(
                f"  {self.classes[i]!s:>20}  {self.counts[i]:>12}  {self.frequencies[i]:.4%}"
            )
        if len(order) > 10:
            lines.append(f"  ... {len(order) - 10} more classes")
        return "\n".join(lines)


class MultilabelStats:
    """Multi-label (sigmoid outputs): ``classes``, ``positives`` per output, ``n`` rows,
    ``rates`` = positives / n."""

    is_label_statistics = True  # recognised by headstart.sources

    def __init__(self, classes, positives, n, skipped=0, source=None, column=None, *, notes=()):
        self.classes = np.asarray(classes)
        self.positives = np.asarray(positives, dtype=np.float64)
        self.n = int(n)
        self.skipped = int(skipped)
        self.source = source
        self.column = column
        self.notes = tuple(notes)

    @property
    def rates(self) -> np.ndarray:
        return self.positives / self.n if self.n else np.full(len(self.positives), np.nan)

    def __repr__(self) -> str:
        lines = [f"MultilabelStats(n={self.n}, outputs={len(self.classes)})"]
        for c, p, r in list(zip(self.classes, self.positives, self.rates))[:10]:
            lines.append(f"  {c!s:>20}  {p:>12g}  {r:.4%}")
        return "\n".join(lines)


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's _lerp: exact at both ends, monotone.
    d = b - a
    return b - d * (1.0 - t) if t >= 0.5 else a + d * t


class RegressionStats:
    """Statistics of one regression target column.

    Fields: ``n``, ``mean``, ``var`` (population, ddof=0), ``std``, ``min``, ``max``,
    ``median`` (np.median's midpoint convention), ``median_low``, ``median_high``, ``mad``
    (mean absolute deviation from the median), ``skipped``, ``exact``, ``passes``.
    Methods: ``quantile(q, method)``, ``huber_location(delta)``, ``huber_loss(delta)``,
    ``pinball_loss(tau)``, ``quantile_bounds(q)``. Quantiles and Huber deltas must have
    been requested from ``scan`` (``quantiles=``, ``huber_delta=``); the median always is.
    """

    is_label_statistics = True  # recognised by headstart.sources

    def __init__(self, state, skipped=0, passes=None, source=None, column=None, *, notes=()):
        self.notes = tuple(notes)
        self._s = state
        m = state.moments()
        self.n, self.mean, self.var, self.min, self.max = (
            m if m else (0, math.nan, math.nan, math.nan, math.nan)
        )
        self.n = int(self.n)
        self.skipped = int(skipped)
        self.exact = bool(state.done)
        self.passes = passes if passes is not None else state.pass_number - 1
        self.source = source
        self.column = column
        self.quantiles_requested, self.huber_deltas = state.requests()

    def _need(self):
        if self.n == 0:
            raise HeadstartError("no values: the statistics of an empty column are undefined")

    def _order(self, k: int) -> float:
        v = self._s.order_stat(int(k))
        if v is None:
            est = self._s.order_stat_bounds(int(k))
            if est is None:
                raise HeadstartError(f"order statistic {k} was not requested from scan")
            return est[0]
        return v

    @property
    def std(self) -> float:
        return math.sqrt(self.var) if self.var == self.var else math.nan

    @property
    def median_low(self) -> float:
        self._need()
        return self._order((self.n - 1) // 2)

    @property
    def median_high(self) -> float:
        self._need()
        return self._order(self.n // 2)

    @property
    def median(self) -> float:
        """np.median bit for bit: the mean of the middle value(s), a sum that starts at
        +0.0 (so a median of signed zeros is +0.0, as numpy's); where a + b overflows
        (values near the float64 maximum) a / 2 + b / 2, where numpy returns inf."""
        a, b = self.median_low, self.median_high
        if a == b:
            return a + 0.0
        m = (a + b) / 2
        return m if math.isfinite(m) else a / 2 + b / 2

    def _zero(self):
        z = self._s.zero_losses()
        if z is None:
            raise HeadstartError("no values: the losses of a zero output are undefined")
        return z

    @property
    def abs_mean(self) -> float:
        """mean |y|: the L1 loss of a zero output."""
        return self._zero()[0]

    def zero_pinball_loss(self, tau: float) -> float:
        """Mean pinball loss of a zero output: tau E[y+] + (1 - tau) E[y-]."""
        absm, pos, _ = self._zero()
        return tau * pos + (1.0 - tau) * (absm - pos)

    def zero_huber_loss(self, delta: float = 1.0) -> float:
        """Mean Huber loss of a zero output (delta must have been requested)."""
        _, _, hub = self._zero()
        try:
            return hub[self.huber_deltas.index(float(delta))]
        except ValueError:
            raise HeadstartError(
                f"Huber delta {delta} was not requested: pass huber_delta={delta} to scan"
            ) from None

    @property
    def mad(self) -> float:
        """Mean absolute deviation from the median (the L1 loss at the median)."""
        self._need()
        if not self.exact:
            return math.nan
        lo, hi = self.median_low, self.median_high
        # at the data point itself when the middle values are equal (the median may be
        # +0.0 where the data hold -0.0: the same point, another key in the core)
        nlt, slt, _, ngt, sgt = self._s.dev_sums(lo if lo == hi else self.median)
        return (slt + sgt) / self.n

    def quantile(self, q: float, method: str = "linear") -> float:
        """The q-quantile with numpy's method names (``linear`` is np.quantile's default;
        ``inverted_cdf`` is the smallest y with CDF >= q, the pinball loss's minimiser)."""
        self._need()
        if method not in QUANTILE_METHODS:
            raise ValueError(f"method must be one of {', '.join(QUANTILE_METHODS)}, got {method!r}")
        q = float(q)
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        if q not in self.quantiles_requested and q != 0.5:
            raise HeadstartError(
                f"quantile {q} was not requested: pass quantiles=[{q}] to scan (exactness "
                "needs to know the ranks before the second pass)"
            )
        lo, hi, g = quantile_plan(self.n, q, method)
        a = self._order(lo)
        return a if g == 0 else _lerp(a, self._order(hi), g)

    def quantile_bounds(self, q: float):
        """(lower, upper): the exact value of the q-quantile (method 'lower') lies in it.
        Equal bounds once exact."""
        self._need()
        k = math.floor((self.n - 1) * float(q))
        v = self._s.order_stat(k)
        if v is not None:
            return (v, v)
        b = self._s.order_stat_bounds(k)
        return (b[1], b[2])

    def rank_bounds(self, k: int):
        v = self._s.order_stat(int(k))
        if v is not None:
            return (v, v)
        b = self._s.order_stat_bounds(int(k))
        return (b[1], b[2])

    def median_bounds(self):
        """(lower, upper): the exact median (the midpoint of the two middle values) lies
        in it. Equal bounds once exact."""
        self._need()
        return (self.rank_bounds((self.n - 1) // 2)[0], self.rank_bounds(self.n // 2)[1])

    def pinball_loss(self, tau: float) -> float:
        """Mean pinball loss at the tau-quantile (its minimiser, method 'inverted_cdf')."""
        q = self.quantile(tau, "inverted_cdf")
        if not self.exact:
            return math.nan
        _, slt, _, _, sgt = self._s.dev_sums(q)
        return (tau * sgt + (1.0 - tau) * slt) / self.n

    def _huber(self, delta):
        self._need()
        h = self._s.huber(float(delta))
        if h is None:
            raise HeadstartError(
                f"Huber delta {delta} was not requested: pass huber_delta={delta} to scan"
            )
        return h

    def huber_location(self, delta: float = 1.0) -> float:
        """Root of sum clip(y - c, -delta, delta) = 0 (midpoint of the zero set if flat)."""
        root, lo, hi = self._huber(delta)
        c = root if root is not None else (lo + hi) / 2
        return self._flat_midpoint(float(delta), c)

    def _flat_midpoint(self, d: float, c: float) -> float:
        # psi is flat at zero exactly when no value lies within delta of c and the counts
        # balance: n even and c in [y_lo + d, y_hi - d] for the two middle values. That
        # interval is the whole zero set, and its midpoint is the median. (The core's root
        # is the midpoint of the zero set clipped to its last bracket, which bisection may
        # have narrowed inside a flat zero set.)
        if not self.exact or self.n % 2:
            return c
        lo, hi = self.median_low, self.median_high
        if hi - lo >= 2 * d and lo + d <= c <= hi - d:
            return self.median
        return c

    def huber_bounds(self, delta: float = 1.0):
        root, lo, hi = self._huber(delta)
        if root is not None:
            c = self._flat_midpoint(float(delta), root)
            return (c, c)
        return (lo, hi)

    def huber_loss(self, delta: float = 1.0) -> float:
        """Mean Huber loss (torch's huber_loss, delta) at the Huber location."""
        root, _, _ = self._huber(delta)
        if root is None:
            return math.nan
        return self._s.huber_sum(float(delta), root) / self.n

    def __repr__(self) -> str:
        if self.n == 0:
            return "RegressionStats(n=0)"
        tag = "exact" if self.exact else "approximate (one pass)"
        rows = [
            ("n", f"{self.n}"),
            ("mean", f"{self.mean:.8g}"),
            ("std", f"{self.std:.8g}"),
            ("min", f"{self.min:.8g}"),
            ("median", f"{self.median:.8g}"),
            ("max", f"{self.max:.8g}"),
            ("mean |y - median|", f"{self.mad:.8g}"),
        ]
        for d in self.huber_deltas:
            rows.append((f"Huber location (delta={d:g})", f"{self.huber_location(d):.8g}"))
        for q in self.quantiles_requested:
            rows.append((f"quantile {q:g}", f"{self.quantile(q):.8g}"))
        if self.skipped:
            rows.append(("skipped (NaN/empty)", f"{self.skipped}"))
        w = max(len(r[0]) for r in rows)
        return f"RegressionStats({tag}, {self.passes} passes)\n" + "\n".join(
            f"  {k:<{w}}  {v}" for k, v in rows
        )
