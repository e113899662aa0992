"""Statistics of one opened source on this machine (the body of :func:`headstart.scan`).

Exactness: the median, quantiles and Huber location are exact (equal to the in-memory
answer) when the source can be read more than once: a path, an array, a table, or a
callable that returns a fresh iterator of chunks. A one-pass source (a plain iterator, a
RecordBatchReader) is read once; its order statistics are then estimates whose exact value
is guaranteed to lie in the reported bounds (``RegressionStats.exact`` is False and
``quantile_bounds`` says how far off they may be).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable
from typing import Callable

import numpy as np

from .. import _core
from .._core import HeadstartError
from ..sources import NA_TOKENS, ArraySource, ChunkSource, FileSource, Source
from .results import ClassificationStats, MultilabelStats, RegressionStats
from .states import ClassCounts, RegressionState, multilabel_array

__all__ = [
    "KINDS",
    "array_kind",
    "check_scan_args",
    "progress_callback",
    "scan_columns",
    "scan_source",
    "text_kind",
]

CHUNK = 1 << 20
KINDS = ("auto", "classification", "regression", "multilabel")


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


def progress_callback(progress, label):
    """``progress`` as a callable ``(pass, done, total)`` or None (True: a bar on stderr)."""
    if progress is True:
        return _Bar(os.path.basename(str(label)))
    if progress in (None, False):
        return None
    if not callable(progress):
        raise TypeError("progress must be a callable(pass, done, total), True or None")
    return progress


def check_scan_args(kind, nan, quantiles) -> list:
    """The scan options every entry point takes, checked; the quantiles as floats."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if nan not in ("raise", "skip"):
        raise ValueError(f"nan must be 'raise' or 'skip', got {nan!r}")
    qs = [float(q) for q in quantiles]
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantiles must be in [0, 1], got {q}")
    return qs


def array_kind(a: np.ndarray, kind: str) -> str:
    """The kind of statistics for an array: 2-D rows are multi-label, integers, booleans
    and strings are classes, floats regression targets."""
    if kind != "auto":
        return kind
    if a.ndim == 2 and a.shape[1] > 1:
        return "multilabel"
    if a.dtype.kind in "iubUSO":
        return "classification"
    return "regression"


def text_kind(values) -> str:
    """The kind of a text column from its sampled values: names or integers (at most 1000
    distinct in the sample) are classes, other numbers regression targets."""
    vals = [v for v in values if v and v not in NA_TOKENS]
    if not vals:
        return "regression"
    try:
        fl = [float(v) for v in vals]
    except ValueError:
        return "classification"
    integral = all(math.isfinite(f) and f == int(f) for f in fl)
    return "classification" if integral and len(set(fl)) <= 1000 else "regression"


def scan_source(src: Source, kind, qs, deltas, nan, label_sep, progress):
    """Statistics of ``src`` (not a Dask or statistics source: the caller routes those)."""
    if not isinstance(src, FileSource):
        progress = progress_callback(progress, src.what)
    if isinstance(src, FileSource):
        return _scan_file(src, kind, qs, deltas, nan, label_sep, progress)
    if isinstance(src, ArraySource):
        if label_sep is not None:
            return _tag_sets(lambda: iter([src.array]), kind, nan, src, label_sep)
        return _scan_array(src, kind, qs, deltas, nan)
    if isinstance(src, ChunkSource):
        if label_sep is not None:
            return _tag_sets(src.chunks, kind, nan, src, label_sep)
        return _scan_chunks(src, kind, qs, deltas, nan, progress)
    raise TypeError(f"cannot scan a {type(src).__name__}")  # pragma: no cover


def _class_result(counts: ClassCounts, src: Source, locate=None) -> ClassificationStats:
    return counts.result(
        source=src.what,
        column=src.column,
        locate=locate,
        names=src.names,
        notes=src.notes,
        as_names=src.as_names,
    )


def _scan_array(src: ArraySource, kind, qs, deltas, nan):
    a = src.array
    kind = array_kind(a, kind)
    if kind == "multilabel":
        r = multilabel_array(a, nan)
        r.notes = src.notes
        return r
    if kind == "classification":
        if a.ndim > 1 and any(d != 1 for d in a.shape[1:]):
            raise HeadstartError(
                f"class labels must be 1-D, got {src.what} of shape {a.shape}: (N, C) rows are "
                "one-hot or probability targets (kind='multilabel'), or ravel() it"
            )
        c = ClassCounts(nan=nan)
        flat = a.reshape(-1)
        for i in range(0, max(flat.size, 1), CHUNK):
            c.update(flat[i : i + CHUNK])

        def locate(text):
            hits = np.flatnonzero(flat.astype(str) == text) if flat.dtype.kind in "USO" else []
            return f" (index {int(hits[0])})" if len(hits) else ""

        return _class_result(c, src, locate)
    if a.ndim > 1 and not (a.ndim == 2 and a.shape[1] == 1):
        raise HeadstartError(
            f"regression targets must be 1-D (one column), got shape {a.shape}; "
            "scan each column separately"
        )
    flat = a.reshape(-1)
    # Larger chunks than elsewhere: the core splits each into fixed 2^20-value parts on
    # its thread pool (a 2^20 chunk would run on one core).
    step = 4 * CHUNK
    r = _drive(
        lambda: (flat[i : i + step] for i in range(0, flat.size, step)), True, qs, deltas, nan, None
    )
    r.source, r.column, r.notes = src.what, src.column, src.notes
    return r


def _drive(make_iter: Callable[[], Iterable], reread: bool, qs, deltas, nan, progress):
    st = RegressionState(qs, deltas or None, nan=nan)
    while True:
        for chunk in make_iter():
            st.update(chunk)
        more = st.finish_pass()
        if progress:
            progress(st.pass_number - 1, 1, 1)
        if not more or not reread:
            break
    return st.result()


def _peek(src: ChunkSource):
    """(first chunk or None, chain): ``chain()`` yields every chunk, the first from the
    peeked iterator, later passes from a fresh ``src.chunks()``."""
    it = iter(src.chunks())
    first = next(it, None)
    used_first = [False]

    def chain():
        if not used_first[0]:
            used_first[0] = True
            yield first
            yield from it
        else:
            yield from src.chunks()

    return first, chain


def _scan_chunks(src: ChunkSource, kind, qs, deltas, nan, progress):
    first, chain = _peek(src)
    if first is None:
        if kind == "classification":
            return _class_result(ClassCounts(nan=nan), src)
        raise HeadstartError(f"no data: {src.what} yielded no chunks")
    fa = np.asarray(first)
    if kind == "auto" and src.names is not None:
        kind = "classification"  # the codes of a categorical column
    if kind == "auto" and src.float_column is not None and fa.ndim == 1:
        kind = "regression" if src.float_column else "classification"
    kind = array_kind(fa, kind)
    try:
        return _scan_chain(src, kind, chain, qs, deltas, nan, progress)
    except HeadstartError as e:
        if src.what not in str(e):
            raise HeadstartError(f"{src.what}: {e}") from None
        raise


def _scan_chain(src, kind, chain, qs, deltas, nan, progress):
    if kind == "classification":
        c = ClassCounts(nan=nan)
        for ch in chain():
            ch = np.asarray(ch)
            if ch.ndim > 1 and any(d != 1 for d in ch.shape[1:]):
                raise HeadstartError(
                    f"class labels must be 1-D, got a chunk of shape {ch.shape} from "
                    f"{src.what}: (N, C) rows are one-hot or probability targets"
                )
            c.update(ch)
        return _class_result(c, src)
    if kind == "multilabel":
        tot, n = None, 0
        for ch in chain():
            r = multilabel_array(np.asarray(ch), nan)
            if tot is not None and r.positives.shape != tot.shape:
                raise HeadstartError(
                    f"multi-label chunks of {src.what} differ in width: {tot.shape[0]} and "
                    f"{r.positives.shape[0]} outputs"
                )
            tot = r.positives if tot is None else tot + r.positives
            n += r.n
        cls = src.column if isinstance(src.column, list) else np.arange(len(tot))
        return MultilabelStats(cls, tot, n, 0, src.what, src.column, notes=src.notes)
    r = _drive(chain, src.reread, qs, deltas, nan, progress)
    r.source, r.column, r.notes = src.what, src.column, src.notes
    return r


def scan_columns(src, qs, deltas, nan, progress) -> list:
    """Regression statistics of each column of a source of (rows, K) chunks, all columns in
    the same passes."""
    progress = progress_callback(progress, src.what)
    first, chain = _peek(src)
    if first is None:
        raise HeadstartError(f"no data: {src.what} yielded no chunks")
    k = np.asarray(first).shape[1]
    states = [RegressionState(qs, deltas or None, nan=nan) for _ in range(k)]

    active = list(range(k))
    while active:
        for ch in chain():
            ch = np.asarray(ch)
            if ch.ndim != 2 or ch.shape[1] != k:
                raise HeadstartError(f"chunks of {src.what} differ in width: {k} and {ch.shape}")
            for j in active:
                states[j].update(ch[:, j])
        active = [j for j in active if states[j].finish_pass()]
        if progress:
            progress(max(s.pass_number for s in states) - 1, 1, 1)
        if not src.reread:
            break
    out = []
    names = src.column if isinstance(src.column, list) else list(range(k))
    for j, st in enumerate(states):
        r = st.result()
        r.source, r.column, r.notes = src.what, names[j], src.notes
        out.append(r)
    return out


def _tag_sets(make_iter, kind, nan, src, sep="|"):
    """Multi-label statistics of label-set strings ("a|b|c"; an empty string is the empty
    set, a row with no positives)."""
    if kind not in ("auto", "multilabel"):
        raise HeadstartError(f"label_sep= means multi-label targets, not kind={kind!r}")
    acc: dict = {}
    rows = skipped = 0
    for ch in make_iter():
        for v in np.asarray(ch, dtype=object).reshape(-1).tolist():
            if v is None or (isinstance(v, float) and v != v):
                if nan != "skip":
                    raise HeadstartError(
                        f"missing label set (None / NaN) at row {rows + skipped} of {src.what}: "
                        "if it means 'no labels' (pandas reads an empty cell as NaN), fill it "
                        "with '' (e.g. df[col].fillna('')), the empty set; nan='skip' drops "
                        "such rows instead"
                    )
                skipped += 1
                continue
            if not isinstance(v, str):
                raise TypeError(
                    f"label_sep= needs strings of labels; row {rows + skipped} holds a "
                    f"{type(v).__name__}"
                )
            rows += 1
            for lab in {t.strip() for t in v.split(sep)}:
                if lab:
                    acc[lab] = acc.get(lab, 0) + 1
    labels = sorted(acc)
    return MultilabelStats(
        np.asarray(labels),
        [acc[k] for k in labels],
        rows,
        skipped,
        src.what,
        src.column,
        notes=src.notes,
    )


def _load_npy(src: FileSource):
    with open(src.path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        # numpy would say "pickled (object) data" of any file without the magic
        raise HeadstartError(
            f"{src.shown}: not a readable .npy file: missing the \\x93NUMPY magic "
            f"(it starts with {magic!r})"
        )
    try:
        return np.load(src.path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # numpy's reasons (bad header, pickled objects), the file named
        raise HeadstartError(f"{src.shown}: not a readable .npy file: {e}") from None


def npy_blocks(path: str, rows_per_block: int, column=None, shown=None):
    """(rows done, rows, block) of the .npy array at ``path``, read with plain file reads
    (not a memory map: a file that shrinks during the scan is an OSError naming it, where
    reading through a map would fault with SIGBUS). ``block`` is column ``column`` of a
    2-D array (1-D), the values of a 1-D array, or the rows of a 2-D one."""
    shown = path if shown is None else shown
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise HeadstartError(f"{shown}: not a readable .npy file: missing the \\x93NUMPY magic")
        f.seek(0)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
        if dtype.hasobject:
            raise HeadstartError(f"{shown}: not a readable .npy file: it holds Python objects")
        rows = shape[0] if shape else 1
        cols = shape[1] if len(shape) == 2 else 1
        if len(shape) > 2:
            raise HeadstartError(f"{shown}: expected a 1-D or 2-D array, got shape {shape}")
        if fortran and len(shape) == 2 and rows > 1 and cols > 1:
            raise HeadstartError(
                f"{shown}: Fortran-ordered 2-D arrays are not supported; save with "
                "np.ascontiguousarray"
            )
        if column is not None and not 0 <= int(column) < cols:
            raise HeadstartError(
                f"{shown}: column {column} is out of range for an array with {cols} columns"
            )
        row_bytes = cols * dtype.itemsize
        for r in range(0, rows, rows_per_block):
            k = min(rows_per_block, rows - r)
            f.seek(offset + r * row_bytes)
            buf = f.read(k * row_bytes)
            if len(buf) < k * row_bytes:
                now = os.path.getsize(path)
                raise OSError(
                    f"{shown}: the file shrank to {now} bytes while being read "
                    f"({offset + rows * row_bytes} expected)"
                )
            block = np.frombuffer(buf, dtype=dtype)
            if len(shape) == 2:
                block = block.reshape(k, cols)
                if column is not None:
                    block = np.ascontiguousarray(block[:, int(column)])
            yield r + k, rows, block


def _file_kind(src: FileSource, kind) -> str:
    if kind != "auto":
        return kind
    if src.format == "raw":
        return "classification"
    if src.format == "npy":
        a = _load_npy(src)
        if a.ndim == 2 and src.column is not None:
            return array_kind(np.empty((0,), a.dtype), "auto")
        return array_kind(
            np.empty((0,) * a.ndim if a.ndim != 2 else (0, a.shape[1]), a.dtype), "auto"
        )
    return text_kind(src.sniff.values)


def _scan_file(src: FileSource, kind, qs, deltas, nan, label_sep, progress):
    try:
        r = _scan_file_named(src, kind, qs, deltas, nan, label_sep, progress)
    except (HeadstartError, OSError) as e:
        if src.path != src.shown and src.path in str(e):
            # a spooled pipe: errors name what the user gave, not the temporary copy
            raise type(e)(str(e).replace(src.path, src.shown)) from None
        raise
    if src.sniff is not None and src.sniff.names and src.delimiter is None:
        r.column = src.sniff.names[0]  # the header line of a one-value-per-line file
    return r


def _scan_file_named(src: FileSource, kind, qs, deltas, nan, label_sep, progress):
    cb = progress_callback(progress, src.shown)
    skip = nan == "skip"
    if label_sep is not None:
        if kind not in ("auto", "multilabel"):
            raise HeadstartError(f"label_sep= means multi-label targets, not kind={kind!r}")
        kind = "multilabel"
        if src.format != "text":
            raise HeadstartError(f"{src.shown}: label_sep= applies to text files, not {src.format}")
    kind = _file_kind(src, kind)
    if src.format == "raw":
        if kind != "classification":
            raise HeadstartError(
                f"{src.shown}: raw binary files hold integer ids (tokens, item ids): their "
                f"statistics are class counts, not {kind}"
            )
        return _scan_raw(src, cb)
    if src.format == "npy":
        if kind == "multilabel":
            r = multilabel_array(_load_npy(src), nan)
            r.source, r.notes = src.shown, src.notes
            return r
        if kind == "classification":
            a = _load_npy(src)
            if a.dtype.kind in "iu" and a.dtype.itemsize == 8:
                # 64-bit ids (hashed item ids) beyond 2^53 have no exact float64: count them
                # as integers, block by block.
                col = 0 if src.column is None else int(src.column)
                cc = ClassCounts(nan=nan)
                for done, total, block in npy_blocks(src.path, 4 * CHUNK, col, src.shown):
                    cc.update(block)
                    if cb:
                        cb(1, done, total)
                return cc.result(
                    source=src.shown, column=f"column {col}", notes=src.notes, as_names=src.as_names
                )
            del a
            s = _core.scan_classes(src.path, "npy", False, None, False, src.column, skip, None, cb)
            _, _, _, col = s.info()
            return ClassCounts(_state=s).result(
                source=src.shown, column=col, notes=src.notes, as_names=src.as_names
            )
        s = _core.scan_regression(
            src.path, "npy", False, None, False, src.column, skip, qs, deltas, cb
        )
        _, skipped, passes, col = s.info()
        return RegressionStats(
            s, skipped=skipped, passes=passes, source=src.shown, column=col, notes=src.notes
        )
    args = (src.path, "text", src.gz, src.delimiter, src.header, src.column, skip)
    if kind in ("classification", "multilabel"):
        sep = (label_sep or "|") if kind == "multilabel" else None
        s = _core.scan_classes(*args, sep, cb)
        _, skipped, _, col = s.info()
        if kind == "multilabel":
            labels, counts = s.str_counts()
            return MultilabelStats(
                np.asarray(labels), counts, s.rows, skipped, src.shown, col, notes=src.notes
            )
        cc = ClassCounts(_state=s, nan=nan)
        cc.skipped = skipped
        return cc.result(
            source=src.shown, column=col, locate=src.locate, notes=src.notes, as_names=src.as_names
        )
    s = _core.scan_regression(*args, qs, deltas, cb)
    _, skipped, passes, col = s.info()
    return RegressionStats(
        s, skipped=skipped, passes=passes, source=src.shown, column=col, notes=src.notes
    )


def _scan_raw(src: FileSource, cb) -> ClassificationStats:
    """Class counts of a raw binary file of ids (a token file), in the Rust core."""
    s = _core.scan_raw_classes(src.path, src.dtype, src.raw_header, cb)
    _, _, _, desc = s.info()
    return ClassCounts(_state=s).result(source=src.shown, column=None, notes=(*src.notes, desc))
