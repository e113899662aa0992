"""Label statistics over arrays, chunk iterators and files: streaming, exact, bounded memory.

``scan(source, ...)`` is the one call; ``RegressionState`` and ``ClassCounts`` are the
mergeable, picklable states it is built from, for users who feed chunks themselves (threads,
processes, Dask).

Exactness: the median, quantiles and Huber location are exact (equal to the in-memory
answer) when the data can be read more than once: a path, an array, or a callable that
returns a fresh iterator of chunks. A plain iterator (or stdin) is read once; its order
statistics are then estimates whose exact value is guaranteed to lie in the reported
bounds (``RegressionStats.exact`` is False and ``quantile_bounds`` says how far off they
may be).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Callable

import numpy as np

from . import _core
from ._core import HeadstartError

__all__ = [
    "ClassCounts",
    "ClassificationStats",
    "MultilabelStats",
    "RegressionState",
    "RegressionStats",
    "scan",
]

CHUNK = 1 << 20
_METHODS = ("linear", "lower", "higher", "midpoint", "nearest", "inverted_cdf")
_KINDS = ("auto", "classification", "regression", "multilabel")
_TEXT_EXT = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None, ".dat": None}
_ARROW_EXT = (".parquet", ".pq", ".feather", ".arrow", ".ipc")


# --------------------------------------------------------------------------- results


class ClassificationStats:
    """Class counts: ``classes`` (sorted; ints or str), ``counts`` (int64), ``n``,
    ``frequencies``, ``log_priors``, ``entropy`` (nats), ``skipped``."""

    def __init__(self, classes, counts, skipped=0, source=None, column=None):
        self.classes = np.asarray(classes)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.n = int(self.counts.sum())
        self.skipped = int(skipped)
        self.source = source
        self.column = column

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

    def __init__(self, classes, positives, n, skipped=0, source=None, column=None):
        self.classes = np.asarray(classes)
        self.positives = np.asarray(positives, dtype=np.float64)
        self.n = int(n)
        self.skipped = int(skipped)
        self.source = source
        self.column = column

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

    def __init__(self, state, skipped=0, passes=None, source=None, column=None):
        self._s = state
        m = state.moments()
        self.n, self.mean, self.var, self.min, self.max = m if m else (0, math.nan, math.nan, math.nan, math.nan)
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
        a, b = self.median_low, self.median_high
        return a if a == b else (a + b) / 2

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
        nlt, slt, _, ngt, sgt = self._s.dev_sums(self.median)
        return (slt + sgt) / self.n

    def quantile(self, q: float, method: str = "linear") -> float:
        """The q-quantile with numpy's method names (``linear`` is np.quantile's default;
        ``inverted_cdf`` is the smallest y with CDF >= q, the pinball loss's minimiser)."""
        self._need()
        if method not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
        q = float(q)
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        if q not in self.quantiles_requested and q != 0.5:
            raise HeadstartError(
                f"quantile {q} was not requested: pass quantiles=[{q}] to scan (exactness "
                "needs to know the ranks before the second pass)"
            )
        n = self.n
        if method == "inverted_cdf":
            k = min(max(math.ceil(n * q) - 1, 0), n - 1)
            return self._order(k)
        h = (n - 1) * q
        lo, hi = math.floor(h), math.ceil(h)
        g = h - lo
        if method == "lower":
            return self._order(lo)
        if method == "higher":
            return self._order(hi)
        if method == "nearest":
            return self._order(int(round(h)))
        a, b = self._order(lo), self._order(hi)
        if method == "midpoint":
            return a if g == 0 else _lerp(a, b, 0.5)
        return _lerp(a, b, g)

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
        return root if root is not None else (lo + hi) / 2

    def huber_bounds(self, delta: float = 1.0):
        root, lo, hi = self._huber(delta)
        return (root, root) if root is not None else (lo, hi)

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


# ------------------------------------------------------------------ streaming states


def _float_chunk(chunk, nan: str, offset: int = 0):
    """float64 C-contiguous 1-D copy of a chunk, NaN handled; (values, skipped)."""
    a = np.asarray(chunk)
    if a.dtype.kind == "c":
        raise TypeError("regression targets must be real numbers, got a complex array")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"regression targets must be numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(a.reshape(-1), dtype=np.float64)
    nanmask = ~np.isfinite(a)
    if nanmask.any():
        if nan != "skip":
            i = int(np.flatnonzero(nanmask)[0])
            what = "NaN" if np.isnan(a[i]) else f"non-finite value {float(a[i])}"
            raise HeadstartError(
                f"{what} at index {offset + i} (pass nan='skip' to skip NaN and infinite values)"
            )
        keep = ~nanmask
        return np.ascontiguousarray(a[keep]), int(nanmask.sum())
    return a, 0


class RegressionState:
    """Mergeable, picklable state of the regression statistics of one column.

    Feed every chunk with ``update``; ``finish_pass()`` returns True when the exact median,
    quantiles or Huber location need another pass over the same data (feed the same values
    again, in any chunking), False when done. ``fresh()`` gives an empty state of the same
    pass for another worker; ``merge`` adds a worker's state; ``result()`` the statistics.
    """

    def __init__(self, quantiles=(), huber_delta=None, *, nan="raise", _state=None):
        if nan not in ("raise", "skip"):
            raise ValueError(f"nan must be 'raise' or 'skip', got {nan!r}")
        deltas = _deltas(huber_delta)
        self._s = _state if _state is not None else _core.RegState([float(q) for q in quantiles], deltas)
        self.nan = nan
        self.skipped = 0
        self._seen = 0

    def update(self, chunk) -> None:
        v, sk = _float_chunk(chunk, self.nan, self._seen)
        self._seen += v.size + sk
        if self._s.pass_number == 1:
            self.skipped += sk
        if v.size:
            self._s.update(v)

    def merge(self, other: RegressionState) -> None:
        self._s.merge(other._s)
        self.skipped += other.skipped

    def finish_pass(self) -> bool:
        self._seen = 0
        return self._s.finish_pass()

    def fresh(self) -> RegressionState:
        r = RegressionState(nan=self.nan, _state=self._s.fresh())
        return r

    @property
    def pass_number(self) -> int:
        return self._s.pass_number

    @property
    def done(self) -> bool:
        return self._s.done

    def result(self) -> RegressionStats:
        m = self._s.moments()
        if m is None:
            raise HeadstartError("result() needs at least one finished pass (call finish_pass)")
        if m[0] == 0:
            raise HeadstartError(
                "no values: the state was fed no targets"
                + (f" ({self.skipped} NaN/infinite values skipped)" if self.skipped else "")
            )
        return RegressionStats(self._s, skipped=self.skipped, passes=self._s.pass_number - 1)

    def __getstate__(self):
        return {"s": self._s.to_bytes(), "nan": self.nan, "skipped": self.skipped}

    def __setstate__(self, d):
        self._s = _core.RegState.from_bytes(d["s"])
        self.nan = d["nan"]
        self.skipped = d["skipped"]
        self._seen = 0


class ClassCounts:
    """Mergeable, picklable class counts: integer labels (any integer dtype) or strings."""

    def __init__(self, *, nan="raise", _state=None):
        if nan not in ("raise", "skip"):
            raise ValueError(f"nan must be 'raise' or 'skip', got {nan!r}")
        self._s = _state if _state is not None else _core.ClassState()
        self.nan = nan
        self.skipped = 0

    def update(self, chunk) -> None:
        a = np.asarray(chunk)
        if a.ndim != 1:
            a = a.reshape(-1)
        if a.dtype.kind in "iub":
            if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
                i = int(np.argmax(a > np.iinfo(np.int64).max))
                raise HeadstartError(
                    f"class label {int(a[i])} at index {i} does not fit in int64"
                )
            self._s.update_int(np.ascontiguousarray(a, dtype=np.int64))
            return
        if a.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(a) | (a != np.round(a)) | (np.abs(a) >= 2.0**53)
            if bad.any():
                nanmask = np.isnan(a)
                if self.nan == "skip" and not (bad & ~nanmask).any():
                    self.skipped += int(nanmask.sum())
                    a = a[~nanmask]
                else:
                    i = int(np.flatnonzero(bad)[0])
                    raise HeadstartError(
                        f"class label {float(a[i])!r} at index {i} is not an integer "
                        "below 2**53 (use kind='regression' for real-valued targets)"
                    )
            self._s.update_int(np.ascontiguousarray(a, dtype=np.int64))
            return
        if a.dtype.kind in "USO":
            if a.dtype.kind == "O":
                for i, x in enumerate(a):
                    if not (x is None or isinstance(x, (str, float))):
                        raise TypeError(
                            f"class labels must be integers or strings; index {i} holds a "
                            f"{type(x).__name__} object"
                        )
                miss = np.array([x is None or (isinstance(x, float) and x != x) for x in a], bool)
                if miss.any():
                    if self.nan != "skip":
                        i = int(np.flatnonzero(miss)[0])
                        raise HeadstartError(f"missing label at index {i} (pass nan='skip')")
                    self.skipped += int(miss.sum())
                    a = a[~miss]
                a = a.astype(str)
            labels, counts = np.unique(a, return_counts=True)
            self._s.add_str([str(x) for x in labels], [int(c) for c in counts])
            return
        raise TypeError(f"class labels must be integers or strings, got dtype {a.dtype}")

    def merge(self, other: ClassCounts) -> None:
        self._s.merge(other._s)
        self.skipped += other.skipped

    def result(self, source=None, column=None) -> ClassificationStats:
        ik, ic = self._s.int_counts()
        sk, sc = self._s.str_counts()
        if ik and sk:
            # Mixed: integers and names (e.g. a CSV column): report all as strings.
            labels = [str(x) for x in ik] + list(sk)
            counts = list(ic) + list(sc)
            order = np.argsort(np.asarray(labels, dtype=object), kind="stable")
            classes = np.asarray(labels, dtype=object)[order].astype(str)
            return ClassificationStats(classes, np.asarray(counts)[order], self.skipped, source, column)
        if sk:
            # Labels that are all integers become integer classes (CSV files).
            try:
                ints = [int(x) for x in sk]
                lim = np.iinfo(np.int64)
                if all(lim.min <= i <= lim.max for i in ints) and all(
                    str(i) == s.strip() or s.strip().lstrip("+") == str(i) for i, s in zip(ints, sk)
                ):
                    order = np.argsort(ints, kind="stable")
                    return ClassificationStats(
                        np.asarray(ints, dtype=np.int64)[order], np.asarray(sc)[order], self.skipped, source, column
                    )
            except ValueError:
                pass
            return ClassificationStats(np.asarray(sk), np.asarray(sc), self.skipped, source, column)
        return ClassificationStats(np.asarray(ik, dtype=np.int64), np.asarray(ic, dtype=np.int64), self.skipped, source, column)

    def __getstate__(self):
        return {"s": self._s.to_bytes(), "nan": self.nan, "skipped": self.skipped}

    def __setstate__(self, d):
        self._s = _core.ClassState.from_bytes(d["s"])
        self.nan = d["nan"]
        self.skipped = d["skipped"]


# --------------------------------------------------------------------------- scan


def _deltas(huber_delta):
    if huber_delta is None:
        return []
    ds = [huber_delta] if np.isscalar(huber_delta) else list(huber_delta)
    out = []
    for d in ds:
        d = float(d)
        if not (d > 0 and math.isfinite(d)):
            raise ValueError(f"huber_delta must be positive and finite, got {d}")
        out.append(d)
    return out


class _Bar:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label):
        self.label = label
        self.t0 = time.monotonic()
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, pass_no, done, total):
        now = time.monotonic()
        if not self.tty or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(
            f"\r{self.label} pass {pass_no} [{bar:<30}] {frac:6.1%} {now - self.t0:6.1f}s"
        )
        if done >= total:
            sys.stderr.write("\r" + " " * 80 + "\r")
        sys.stderr.flush()


def _progress(progress, path):
    if progress is True:
        return _Bar(os.path.basename(str(path)))
    if progress in (None, False):
        return None
    if not callable(progress):
        raise TypeError("progress must be a callable(pass, done, total), True or None")
    return progress


def _file_format(path: str, delimiter):
    p = path.lower()
    gz = p.endswith(".gz")
    if gz:
        p = p[:-3]
    ext = os.path.splitext(p)[1]
    if ext == ".npy":
        if gz:
            raise ValueError(f"{path}: gzip-compressed .npy is not supported; decompress it")
        return "npy", False, None
    if ext in _ARROW_EXT:
        return "arrow", gz, None
    if delimiter is None:
        delimiter = _TEXT_EXT.get(ext)
    return "text", gz, delimiter


def _sniff_kind(path, gz, delimiter, header, column):
    """Decide classification vs regression from the first lines of a text file."""
    import csv
    import gzip
    import io

    opener = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as f:
        head = f.read(1 << 16)
    if delimiter is None:
        rows = [[ln] for ln in head.splitlines()]
        idx = 0
    else:
        rows = list(csv.reader(io.StringIO(head), delimiter=delimiter))
        names = rows[0] if header and rows else []
        rows = rows[1:] if header else rows
        if column is None:
            idx = (len(names) if names else len(rows[0]) if rows else 1) - 1
        elif isinstance(column, str):
            idx = names.index(column) if column in names else -1
        else:
            idx = int(column)
    vals = [r[idx].strip() for r in rows[:-1] if 0 <= idx < len(r) and r[idx].strip()]
    if not vals:
        return "regression"
    try:
        fl = [float(v) for v in vals]
    except ValueError:
        return "classification"
    if all(v.lstrip("+-").isdigit() for v in vals) and len(set(fl)) <= 1000:
        return "classification"
    return "regression"


def scan(
    source,
    column=None,
    kind: str = "auto",
    *,
    quantiles: Iterable[float] = (),
    huber_delta=None,
    nan: str = "raise",
    delimiter: str | None = None,
    header: bool | None = None,
    label_sep: str | None = None,
    progress: Any = None,
):
    """Statistics of training labels for bias initialisation.

    ``source``: a numpy array (1-D labels, or (N, K) 0/1 multi-label), a list, a path
    (``.csv``, ``.tsv``, ``.txt`` one value per line, ``.npy``, any of the text formats
    ``.gz``-compressed, and ``.parquet``/``.feather``/``.arrow`` when pyarrow is
    installed), a callable returning a fresh iterator of chunks (re-readable: exact), or an
    iterator of chunks (read once: approximate order statistics with bounds).

    ``column``: name or 0-based index for delimited files and Arrow tables (default: the
    only column, or the last one, e.g. ``y`` in ``id,y``). ``kind``: "classification",
    "regression", "multilabel" or "auto" (strings and integers are classes, floats are
    regression targets, 2-D arrays and ``label_sep`` are multi-label). ``quantiles`` and
    ``huber_delta`` (a number or a list) name the exact quantiles and Huber locations to
    compute besides the median. ``nan="skip"`` skips NaN and empty values and counts them
    (``result.skipped``); the default raises naming the file, line and column.
    ``progress``: True for a bar on stderr, or a callable ``(pass, done, total)``. Ctrl-C
    interrupts between chunks.

    Returns ``ClassificationStats``, ``MultilabelStats`` or ``RegressionStats``.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    if nan not in ("raise", "skip"):
        raise ValueError(f"nan must be 'raise' or 'skip', got {nan!r}")
    qs = [float(q) for q in quantiles]
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantiles must be in [0, 1], got {q}")
    deltas = _deltas(huber_delta)
    if label_sep is not None and kind == "auto":
        kind = "multilabel"
    if isinstance(source, (str, os.PathLike)):
        return _scan_path(os.fspath(source), column, kind, qs, deltas, nan, delimiter, header, label_sep, progress)
    if isinstance(source, (ClassificationStats, MultilabelStats, RegressionStats)):
        return source
    if hasattr(source, "__dask_graph__"):
        from .dask import scan as dask_scan  # optional extra

        return dask_scan(source, column=column, kind=kind, quantiles=qs, huber_delta=huber_delta, nan=nan)
    if callable(source):
        return _scan_chunks(source, True, kind, qs, deltas, nan, progress)
    if isinstance(source, Iterator):
        return _scan_chunks(lambda: source, False, kind, qs, deltas, nan, progress)
    a = np.asarray(source)
    if a.dtype.kind == "O" and a.ndim == 1 and len(a) and all(isinstance(x, str) for x in a[:100]):
        a = a.astype(str)
    return _scan_array(a, kind, qs, deltas, nan)


def _array_kind(a: np.ndarray, kind: str) -> str:
    if kind != "auto":
        return kind
    if a.ndim == 2 and a.shape[1] > 1:
        return "multilabel"
    if a.dtype.kind in "iubUSO":
        return "classification"
    return "regression"


def _scan_array(a: np.ndarray, kind: str, qs, deltas, nan):
    kind = _array_kind(a, kind)
    if kind == "multilabel":
        return _multilabel_array(a, nan)
    if kind == "classification":
        c = ClassCounts(nan=nan)
        flat = a.reshape(-1)
        for i in range(0, max(flat.size, 1), CHUNK):
            c.update(flat[i : i + CHUNK])
        return c.result()
    if a.ndim > 1 and not (a.ndim == 2 and a.shape[1] == 1):
        raise ValueError(
            f"regression targets must be 1-D (one column), got shape {a.shape}; "
            "scan each column separately"
        )
    flat = a.reshape(-1)
    # Larger chunks than elsewhere: the core splits each into fixed 2^20-value parts on
    # its thread pool (a 2^20 chunk would run on one core).
    step = 4 * CHUNK
    return _drive(lambda: (flat[i : i + step] for i in range(0, flat.size, step)), True, qs, deltas, nan, None)


def _multilabel_array(a, nan):
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"multi-label targets must be (N, K), got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"multi-label targets must be 0/1 numbers, got dtype {a.dtype}")
    x = a.astype(np.float64, copy=False)
    if np.isnan(x).any():
        raise HeadstartError("NaN in multi-label targets")
    bad = (x < 0) | (x > 1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise HeadstartError(
            f"multi-label targets must be in [0, 1] (soft labels allowed): row {i}, column {j} is {float(x[i, j]):g}"
        )
    return MultilabelStats(np.arange(a.shape[1]), x.sum(axis=0), a.shape[0])


def _drive(make_iter: Callable[[], Iterable], reread: bool, qs, deltas, nan, progress):
    st = RegressionState(qs, deltas or None, nan=nan)
    while True:
        n = 0
        for chunk in make_iter():
            st.update(chunk)
            n += 1
        more = st.finish_pass()
        if progress:
            progress(st.pass_number - 1, 1, 1)
        if not more:
            break
        if not reread:
            break
    return st.result()


def _scan_chunks(make_iter, reread, kind, qs, deltas, nan, progress):
    it = iter(make_iter())
    first = next(it, None)
    if first is None:
        if kind == "classification":
            return ClassCounts(nan=nan).result()
        raise HeadstartError("no data: the iterator yielded no chunks")
    fa = np.asarray(first)
    kind = _array_kind(fa, kind)
    done_first = [False]

    def chain():
        if not done_first[0]:
            done_first[0] = True
            yield first
            yield from it
        else:
            yield from make_iter()

    if kind == "classification":
        c = ClassCounts(nan=nan)
        for ch in chain():
            c.update(ch)
        return c.result()
    if kind == "multilabel":
        tot, n = None, 0
        for ch in chain():
            r = _multilabel_array(np.asarray(ch), nan)
            tot = r.positives if tot is None else tot + r.positives
            n += r.n
        return MultilabelStats(np.arange(len(tot)), tot, n)
    return _drive(chain, reread, qs, deltas, nan, progress)


def _scan_path(path, column, kind, qs, deltas, nan, delimiter, header, label_sep, progress):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory, expected a label file")
    fmt, gz, delim = _file_format(path, delimiter)
    cb = _progress(progress, path)
    skip = nan == "skip"
    if fmt == "arrow":
        return _scan_arrow(path, column, kind, qs, deltas, nan, label_sep)
    if fmt == "npy":
        if kind in ("auto", "multilabel"):
            try:
                a = np.load(path, mmap_mode="r", allow_pickle=False)
            except Exception as e:  # numpy's reasons, with the file named
                raise HeadstartError(f"{path}: not a readable .npy file: {e}") from None
            if kind == "multilabel" or _array_kind(a, kind) == "multilabel":
                return _multilabel_array(a, nan)
            kind = _array_kind(a, kind)
            del a
        if kind == "classification":
            s = _core.scan_classes(path, "npy", False, None, False, column, skip, None, cb)
            records, skipped, _, col = s.info()
            return ClassCounts(_state=s).result(source=path, column=col)
        s = _core.scan_regression(path, "npy", False, None, False, column, skip, qs, deltas, cb)
        records, skipped, passes, col = s.info()
        return RegressionStats(s, skipped=skipped, passes=passes, source=path, column=col)
    if header is None:
        header = delim is not None
    if kind == "auto":
        try:
            kind = _sniff_kind(path, gz, delim, header, column)
        except (OSError, EOFError) as e:  # gzip: bad header, truncated stream
            raise OSError(f"{path}: cannot read the start of the file: {e}") from None
        except Exception as e:
            import zlib

            if isinstance(e, zlib.error):  # a corrupt deflate block
                raise OSError(f"{path}: corrupt compressed data: {e}") from None
            # csv.Error, UnicodeError: malformed content
            raise HeadstartError(f"{path}: malformed file: {e}") from None
    if kind in ("classification", "multilabel"):
        sep = label_sep if kind == "multilabel" else None
        if kind == "multilabel" and sep is None:
            sep = "|"
        s = _core.scan_classes(path, "text", gz, delim, header, column, skip, sep, cb)
        records, skipped, _, col = s.info()
        if kind == "multilabel":
            labels, counts = s.str_counts()
            return MultilabelStats(np.asarray(labels), counts, s.rows, skipped, path, col)
        cc = ClassCounts(_state=s)
        cc.skipped = skipped
        return cc.result(source=path, column=col)
    s = _core.scan_regression(path, "text", gz, delim, header, column, skip, qs, deltas, cb)
    records, skipped, passes, col = s.info()
    return RegressionStats(s, skipped=skipped, passes=passes, source=path, column=col)


def _scan_arrow(path, column, kind, qs, deltas, nan, label_sep):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pyarrow import ipc
    except ImportError:
        raise ImportError(
            f"{path}: reading Parquet/Arrow needs pyarrow: pip install 'headstart[arrow]'"
        ) from None
    low = path.lower()
    if low.endswith((".parquet", ".pq")):
        schema = pq.ParquetFile(path).schema_arrow
    else:
        with pa.memory_map(path) as src:
            schema = ipc.open_file(src).schema
    names = schema.names
    if column is None:
        name = names[-1]
    elif isinstance(column, str):
        if column not in names:
            raise HeadstartError(f"{path}: no column named {column!r}; the table has: {', '.join(names)}")
        name = column
    else:
        if not 0 <= int(column) < len(names):
            raise HeadstartError(f"{path}: column index {column} is out of range ({len(names)} columns)")
        name = names[int(column)]

    def batches():
        if low.endswith((".parquet", ".pq")):
            for b in pq.ParquetFile(path).iter_batches(columns=[name], batch_size=CHUNK):
                yield b.column(0)
        else:
            with pa.memory_map(path) as src:
                r = ipc.open_file(src)
                for i in range(r.num_record_batches):
                    yield r.get_batch(i).column(name)

    def as_numpy(col):
        if label_sep is not None:
            return col
        if col.null_count:
            if nan != "skip":
                raise HeadstartError(f"{path}: column {name!r} has {col.null_count} null values (pass nan='skip')")
            col = col.drop_null()
        return col.to_numpy(zero_copy_only=False)

    if kind == "auto":
        t = schema.field(name).type
        kind = "regression" if pa.types.is_floating(t) else "classification"
    if kind == "classification":
        c = ClassCounts(nan=nan)
        for col in batches():
            c.update(as_numpy(col))
        return c.result(source=path, column=name)
    if kind == "multilabel":
        sep = label_sep or "|"
        acc: dict = {}
        rows = 0
        for col in batches():
            for v in col.to_pylist():
                rows += 1
                for lab in (v or "").split(sep):
                    lab = lab.strip()
                    if lab:
                        acc[lab] = acc.get(lab, 0) + 1
        labels = sorted(acc)
        return MultilabelStats(np.asarray(labels), [acc[k] for k in labels], rows, 0, path, name)
    st = _drive(lambda: (as_numpy(c) for c in batches()), True, qs, deltas, nan, None)
    st.source, st.column = path, name
    return st
