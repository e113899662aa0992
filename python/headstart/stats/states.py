"""Mergeable, picklable streaming states: ``RegressionState`` and ``ClassCounts``.

Feed chunks with ``update``; combine workers with ``merge``; ``result()`` gives the
statistics. Every statistic is a sum of per-chunk parts, so chunks, threads, processes and
Dask partitions combine into the same answer.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter

import numpy as np

from .. import _core
from .._core import HeadstartError
from ..sources.labels import type_labels
from .results import ClassificationStats, MultilabelStats, RegressionStats

__all__ = ["ClassCounts", "RegressionState", "huber_deltas", "multilabel_array"]

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


class _Checked:
    """Pickling of a state: the core's framed bytes and the Python fields under a CRC-32
    (:func:`pack_state`), restored by a call with checked fields (``_restore``), never an
    object patched after creation, so a corrupt pickle cannot yield a half-made state.
    Subclasses name their core type (``_core_type``)."""

    def __getstate__(self):
        return pack_state(self._s.to_bytes(), self.nan, self.skipped)

    def __setstate__(self, d):
        core, self.nan, self.skipped = unpack_state(d)
        self._s = self._core_type().from_bytes(core)
        self._seen = 0

    def __reduce__(self):
        return (_restore, (type(self).__name__, self.__getstate__()))


class RegressionState(_Checked):
    """Mergeable, picklable state of the regression statistics of one column.

    Feed every chunk with ``update``; ``finish_pass()`` returns True when the exact median,
    quantiles or Huber location need another pass over the same data (feed the same values
    again, in any chunking), False when done. ``fresh()`` gives an empty state of the same
    pass for another worker; ``merge`` adds a worker's state; ``result()`` the statistics.
    """

    @staticmethod
    def _core_type():
        return _core.RegState

    def __init__(self, quantiles=(), huber_delta=None, *, nan="raise", _state=None):
        if nan not in ("raise", "skip"):
            raise ValueError(f"nan must be 'raise' or 'skip', got {nan!r}")
        deltas = huber_deltas(huber_delta)
        self._s = (
            _state if _state is not None else _core.RegState([float(q) for q in quantiles], deltas)
        )
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


class ClassCounts(_Checked):
    """Mergeable, picklable class counts: integer labels (any integer dtype) or strings."""

    @staticmethod
    def _core_type():
        return _core.ClassState

    def __init__(self, *, nan="raise", _state=None):
        if nan not in ("raise", "skip"):
            raise ValueError(f"nan must be 'raise' or 'skip', got {nan!r}")
        self._s = _state if _state is not None else _core.ClassState()
        self.nan = nan
        self.skipped = 0
        self._seen = 0  # labels fed so far: error messages give global indices

    def update(self, chunk) -> None:
        a = np.asarray(chunk)
        if a.ndim != 1:
            a = a.reshape(-1)
        try:
            self._update(a)
        finally:
            self._seen += a.size

    def _update(self, a) -> None:
        if a.dtype.kind in "iub":
            if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
                i = int(np.argmax(a > np.iinfo(np.int64).max))
                raise HeadstartError(
                    f"class label {int(a[i])} at index {self._seen + i} does not fit in int64"
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
                    if np.isnan(a[i]):
                        raise HeadstartError(
                            f"missing label (NaN) at index {self._seen + i} (pass nan='skip' "
                            "to skip missing labels and count them)"
                        )
                    raise HeadstartError(
                        f"class label {float(a[i])!r} at index {self._seen + i} is not an "
                        "integer below 2**53 (use kind='regression' for real-valued targets)"
                    )
            self._s.update_int(np.ascontiguousarray(a, dtype=np.int64))
            return
        if a.dtype.kind in "US":
            self._add_text(a)
            return
        if a.dtype.kind == "O":
            self._update_objects(a)
            return
        raise TypeError(f"class labels must be integers or strings, got dtype {a.dtype}")

    def _add_text(self, a) -> None:
        if isinstance(a, np.ndarray):  # fixed-width numpy strings: np.unique's sort is cheaper
            labels, counts = np.unique(a.astype(str, copy=False), return_counts=True)
            self._s.add_str(labels.tolist(), counts.tolist())
            return
        # A list of Python strings: a hash count, 3x faster than sorting them.
        c = Counter(a)
        self._s.add_str(list(c), list(c.values()))

    def _update_objects(self, a) -> None:
        """Object arrays (pandas object columns, lists): str, int, bool, integer-valued float,
        None / NaN (missing); the typing rule later decides between numbers and names."""
        items = a.tolist()
        if set(map(type, items)) <= {str}:  # the common case: a column of names
            self._add_text(items)
            return
        texts, ints, miss = [], [], 0
        first_missing = None
        for i, x in enumerate(items):
            if isinstance(x, str):
                texts.append(x)
            elif isinstance(x, (bool, int, np.integer)):
                ints.append(int(x))
            elif x is None or (isinstance(x, (float, np.floating)) and x != x):
                miss += 1
                first_missing = i if first_missing is None else first_missing
            elif isinstance(x, (float, np.floating)):
                if x != math.floor(x) or abs(x) >= 2.0**53:
                    raise HeadstartError(
                        f"class label {x!r} at index {self._seen + i} is not an integer below 2**53 "
                        "(use kind='regression' for real-valued targets)"
                    )
                ints.append(int(x))
            else:
                raise TypeError(
                    f"class labels must be integers or strings; index {self._seen + i} holds a "
                    f"{type(x).__name__} object"
                )
        if miss:
            if self.nan != "skip":
                raise HeadstartError(
                    f"missing label (None / NaN) at index {self._seen + first_missing} (pass "
                    "nan='skip' to skip missing labels and count them)"
                )
            self.skipped += miss
        if ints:
            big = [v for v in ints if not -(2**63) <= v < 2**63]
            if big:
                raise HeadstartError(f"class label {big[0]} does not fit in int64")
            self._s.update_int(np.asarray(ints, dtype=np.int64))
        if texts:
            self._add_text(np.asarray(texts, dtype=str))

    def merge(self, other: ClassCounts) -> None:
        self._s.merge(other._s)
        self.skipped += other.skipped

    def label_counts(self):
        """(labels, counts) of the label texts as counted (label sets: each tag), sorted."""
        return self._s.str_counts()

    @property
    def rows(self) -> int:
        """Rows of a label-set (multi-label) scan, empty sets included."""
        return self._s.rows

    def result(
        self, source=None, column=None, *, locate=None, names=None, notes=(), as_names=None
    ) -> ClassificationStats:
        """The counts as :class:`ClassificationStats`, labels typed by the rule of
        :mod:`headstart.sources.labels`. ``locate(text)`` names where a label occurs, for
        errors; ``names``: class names of integer codes (a ``ClassLabel``, categories);
        ``as_names``: the names of ``classes=``, which let a column of numbers and names be
        read as names."""
        ik, ic = self._s.int_counts()
        sk, sc = self._s.str_counts()
        typed = type_labels(ik, ic, sk, sc, locate, as_names)
        skipped = self.skipped
        if typed.missing:
            if self.nan != "skip":
                where = locate(typed.missing_text) if locate else ""
                raise HeadstartError(
                    f"missing label {typed.missing_text!r}{where} (pass nan='skip' to skip "
                    "missing labels and count them)"
                )
            skipped += typed.missing
        return ClassificationStats(
            typed.classes, typed.counts, skipped, source, column, names=names, notes=notes
        )


def pack_state(core: bytes, nan: str, skipped: int) -> dict:
    """A state's pickle: the core's framed bytes (length + CRC-32 inside) and the Python
    fields, under one more CRC-32, so no bit of it can change without an error on load."""
    return {"s": core, "nan": nan, "skipped": int(skipped), "crc": _crc(core, nan, skipped)}


def _crc(core, nan, skipped) -> int:
    return zlib.crc32(bytes(core) + str(nan).encode() + int(skipped).to_bytes(8, "little"))


def unpack_state(d):
    try:
        core, nan, skipped, crc = d["s"], d["nan"], d["skipped"], d["crc"]
        ok = (
            isinstance(core, bytes)
            and nan in ("raise", "skip")
            and isinstance(skipped, int)
            and 0 <= skipped < 2**64
            and crc == _crc(core, nan, skipped)
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise HeadstartError(
            "cannot restore a headstart state: the pickle is corrupt or was written by an "
            "older headstart (its checksum does not match): recompute the state"
        )
    return core, nan, skipped


def _restore(name, d):
    cls = {"RegressionState": RegressionState, "ClassCounts": ClassCounts}.get(name)
    if cls is None:
        raise HeadstartError(f"cannot restore a headstart state: unknown kind {name!r}")
    obj = cls.__new__(cls)
    obj.__setstate__(d)
    return obj


def huber_deltas(huber_delta):
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


def multilabel_array(a, nan):
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
