"""Label statistics and ``bias_init`` over Dask collections and lists of files.

``scan(source, ...)`` takes a Dask array (1-D labels or (N, K) multi-label rows), a Dask
series or dataframe (``column=``), or a list of file paths (one partition per file) and
returns the same statistics objects as :func:`headstart.scan`. :func:`headstart.scan` and
:func:`headstart.bias_init` send Dask collections here by themselves; call
``headstart.dask.bias_init`` for a list of files or a 2-D Dask array.

How it runs: every statistic is a Dask reduction with the mergeable states of
``headstart._stats``. A partition task starts from an empty state of the current pass
(``plan.fresh()``), feeds it the partition's values, and returns it; the states are merged
in partition order in a tree (``split_every`` at a time), so the reduction's shape, and
hence every float sum, depends only on the number of partitions. Class counts and
multi-label sums take one reduction. The exact median, quantiles and Huber location take
the same passes as on one machine, one reduction each: after each reduction the driver
calls ``finish_pass()`` on the merged state, which narrows the candidates, and the next
pass ships that (small, pickled) plan to the partitions again. The data are therefore
computed once per pass: ``persist()`` a collection that is expensive to compute first.

Exactness: order statistics (median, quantiles, min, max) and counts equal the
single-machine answer bit for bit. Sums (mean, variance, mean deviations, the Huber
location, which is a ratio of sums over the values inside its bracket) are added in a
different order than on one machine and agree to a few ulps (relative 1e-12 in the tests);
the single-machine answer itself moves by the same amount with the chunk size.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

try:
    import dask
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError("headstart.dask needs dask: pip install 'headstart[dask]'") from None

from .. import _core
from .._core import HeadstartError
from ..sources.files import resolve_format, sniff_text
from ..stats.results import MultilabelStats, RegressionStats
from ..stats.scan import array_kind, check_scan_args, npy_blocks, text_kind
from ..stats.states import ClassCounts, RegressionState, huber_deltas, multilabel_array

__all__ = ["bias_init", "scan"]

# ---------------------------------------------------------------- partition readers

# Values per update inside a partition task: the float64 copy of a 2M-value chunk (16 MB)
# still sits in cache when the state reads it; larger chunks measured slower, smaller ones
# pay the per-update accumulator more often. Bounded whatever the partition size.
CHUNK = 1 << 21


class _Memory:
    """Partitions that Dask computes: numpy arrays or pandas objects."""

    def __init__(self, columns: int | None = None):
        self.columns = columns  # K for (N, K) partitions read column by column

    def arrays(self, part) -> Iterator[np.ndarray]:
        a = _aligned(_to_numpy(part))
        if self.columns is None:
            a = a.reshape(-1)
        step = CHUNK if a.ndim == 1 else max(1, CHUNK // max(1, a.shape[1]))
        if a.shape[0] == 0:
            return
        for i in range(0, a.shape[0], step):
            yield a[i : i + step]

    def classes(self, part, nan: str, where: str) -> ClassCounts:
        c = ClassCounts(nan=nan)
        for chunk in self.arrays(part):
            c.update(chunk)
        return c

    def multilabel(self, part, nan: str, where: str) -> _LabelSums:
        a = _aligned(_to_numpy(part))
        if a.ndim == 1:
            a = a[:, None]
        if a.shape[0] == 0:
            return _LabelSums(np.zeros(a.shape[1]), 0)
        r = multilabel_array(a, nan)
        return _LabelSums(r.positives, r.n)


def _aligned(a: np.ndarray) -> np.ndarray:
    # dask.distributed unpickles arrays straight out of network frames, which need not be
    # aligned to the item size; the Rust states accept only aligned buffers.
    return a if a.flags.aligned else a.copy()


def _to_numpy(part) -> np.ndarray:
    """A partition as numpy; pandas' nullable and Arrow-backed columns included (a missing
    value becomes NaN or None, which the states count or reject by their ``nan`` rule)."""
    if isinstance(part, np.ndarray):
        return part
    dtype = getattr(part, "dtype", None)
    dtypes = getattr(part, "dtypes", None)
    if dtype is None and dtypes is not None:  # a pandas DataFrame (multi-label rows)
        return part.to_numpy(dtype=np.float64, na_value=np.nan)
    if dtype is None or isinstance(dtype, np.dtype) or not hasattr(part, "isna"):
        return np.asarray(part)
    kind = getattr(dtype, "kind", "O")
    if type(dtype).__name__ == "CategoricalDtype":
        return np.asarray(part)
    if kind in "iufb":
        if bool(part.isna().any()):
            return part.to_numpy(dtype=np.float64, na_value=np.nan)
        numpy_dtype = getattr(dtype, "numpy_dtype", None)
        return part.to_numpy(dtype=numpy_dtype) if numpy_dtype is not None else np.asarray(part)
    return part.to_numpy(dtype=object, na_value=None)


class _LabelSums:
    """Multi-label positives per output and the row count; mergeable in order."""

    def __init__(self, positives, n):
        self.positives = np.asarray(positives, dtype=np.float64)
        self.n = int(n)

    def merge(self, other: _LabelSums) -> None:
        if other.positives.shape != self.positives.shape:
            raise HeadstartError(
                f"multi-label partitions disagree on the number of outputs: "
                f"{self.positives.shape[0]} and {other.positives.shape[0]}"
            )
        self.positives = self.positives + other.positives
        self.n += other.n


class _Files:
    """One partition per file; each task opens its file, so workers need the paths."""

    def __init__(self, column, delimiter, header, label_sep, nan):
        self.nan = nan
        self.column = column
        self.delimiter = delimiter
        self.header = header
        self.label_sep = label_sep

    def _format(self, path):
        # The front door's rules: format by extension, the header rule of
        # headstart.sources.files for text files (each file decides for itself).
        fmt, gz, delim = resolve_format(path, None, self.delimiter)
        if fmt in ("parquet", "ipc"):
            return "arrow", gz, None, False
        if fmt == "raw":
            raise HeadstartError(f"{path}: raw binary files are not read by headstart.dask")
        header = False
        if fmt == "text":
            rule = self.header if self.header in (True, False) else "auto"
            header = sniff_text(path, gz, delim, rule, self.column).header
        return fmt, gz, delim, header

    def arrays(self, path) -> Iterator[np.ndarray]:
        fmt, gz, delim, header = self._format(path)
        if fmt == "npy":
            yield from _npy_values(path, self.column)
        elif fmt == "arrow":
            for col in _arrow_columns(path, self.column):
                if col.null_count:
                    col = col.cast("float64").fill_null(math.nan)
                yield np.asarray(col.to_numpy(zero_copy_only=False))
        else:
            yield from _text_values(path, gz, delim, header, self.column, self.nan)

    def classes(self, path, nan: str, where: str) -> ClassCounts:
        fmt, gz, delim, header = self._format(path)
        if fmt == "arrow":
            c = ClassCounts(nan=nan)
            for col in _arrow_columns(path, self.column):
                if col.null_count:
                    if nan != "skip":
                        raise HeadstartError(
                            f"{path}: {col.null_count} null values (pass nan='skip')"
                        )
                    c.skipped += col.null_count
                    col = col.drop_null()
                c.update(col.to_numpy(zero_copy_only=False))
            return c
        s = _core.scan_classes(path, fmt, gz, delim, header, self.column, nan == "skip", None, None)
        c = ClassCounts(nan=nan, _state=s)
        c.skipped = s.info()[1]
        return c

    def multilabel(self, path, nan: str, where: str):
        fmt, gz, delim, header = self._format(path)
        if fmt == "npy":
            a = np.load(path, mmap_mode="r")  # the layout only; values by file reads
            width = a.shape[1] if a.ndim == 2 else 1
            sums = _LabelSums(np.zeros(width if a.ndim else 0), 0)
            del a
            for _, _, block in npy_blocks(path, max(1, CHUNK // width)):
                r = multilabel_array(block.reshape(len(block), -1), nan)
                sums.merge(_LabelSums(r.positives, r.n))
            return sums
        if fmt == "arrow":
            raise HeadstartError(
                f"{path}: multi-label Parquet/Arrow files are not supported by "
                "headstart.dask; use headstart.scan per file"
            )
        s = _core.scan_classes(
            path, "text", gz, delim, header, self.column, nan == "skip", self.label_sep or "|", None
        )
        c = ClassCounts(nan=nan, _state=s)
        c.skipped = s.info()[1]
        return c

    def column_name(self, path):
        fmt, gz, delim, header = self._format(path)
        if fmt == "text" and delim is not None and header:
            return _text_column(path, gz, delim, header, self.column)
        return self.column


def _npy_values(path, column):
    a = np.load(path, mmap_mode="r")  # the layout only; the values by file reads
    if a.ndim == 2 and column is None and a.shape[1] == 1:
        column = 0
    if a.ndim == 2 and column is None:
        raise ValueError(
            f"{path}: regression targets must be 1-D (one column), got shape {a.shape}; "
            "pass column= to pick one"
        )
    del a
    for _, _, block in npy_blocks(path, CHUNK, column):
        yield block


def _arrow_columns(path, column):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import ipc

    parquet = path.lower().endswith((".parquet", ".pq"))
    if parquet:
        schema = pq.ParquetFile(path).schema_arrow
    else:
        with pa.memory_map(path) as src:
            schema = ipc.open_file(src).schema
    name = _pick_column(path, schema.names, column)
    if parquet:
        for b in pq.ParquetFile(path).iter_batches(columns=[name], batch_size=CHUNK):
            yield b.column(0)
    else:
        with pa.memory_map(path) as src:
            r = ipc.open_file(src)
            for i in range(r.num_record_batches):
                yield r.get_batch(i).column(name)


def _pick_column(path, names, column):
    if column is None:
        return names[-1]
    if isinstance(column, str):
        if column not in names:
            raise HeadstartError(
                f"{path}: no column named {column!r}; the table has: {', '.join(names)}"
            )
        return column
    i = int(column)
    if not 0 <= i < len(names):
        raise HeadstartError(
            f"{path}: column index {column} is out of range ({len(names)} columns)"
        )
    return names[i]


_CSV_BLOCK = 1 << 24  # bytes of text per pyarrow batch


def _csv_reader(path, gz, delim, header, include=None, on_invalid=None, as_float=False):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    src = pa.input_stream(path, compression="gzip" if gz else None)
    kind = pa.float64() if as_float else pa.string()
    return pcsv.open_csv(
        src,
        read_options=pcsv.ReadOptions(
            block_size=_CSV_BLOCK if include else 1 << 20, autogenerate_column_names=not header
        ),
        # One value per line: a delimiter that never occurs, and no quoting. Empty lines
        # are values (empty ones), as in the Rust reader.
        parse_options=pcsv.ParseOptions(
            delimiter=delim or "\x1f",
            quote_char='"' if delim else False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pcsv.ConvertOptions(
            include_columns=include,
            column_types={c: kind for c in include} if include else None,
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _text_column(path, gz, delim, header, column):
    import pyarrow as pa

    try:
        names = _csv_reader(path, gz, delim, header).schema.names
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e):
            return None
        raise HeadstartError(f"{path}: {e}") from None
    if not header and isinstance(column, str):
        raise HeadstartError(f"{path}: column {column!r} given by name, but the file has no header")
    return _pick_column(path, names, column)


def _text_values(path, gz, delim, header, column, nan):
    """float64 chunks of one column of a delimited or one-value-per-line text file.

    The Rust reader's rules: spaces around a value are ignored, ``nan``/``inf`` are
    numbers, an empty value (or empty line) is missing: an error naming the file and row,
    or with ``nan="skip"`` a NaN the state skips and counts; anything else that is not a
    number raises. (The Rust reader streams a file through all the passes on its own, so
    per-pass partition tasks read files here, with pyarrow's CSV reader.)"""
    import pyarrow as pa
    import pyarrow.compute as pc

    name = _text_column(path, gz, delim, header, column)
    if name is None:
        return
    empty_lines = []

    def on_invalid(row):
        # a line with fewer fields than the header: empty lines are empty values
        if row.text.strip() == "":
            empty_lines.append(row.number)
            return "skip"
        return "error"

    def missing(where):
        return HeadstartError(
            f"{path}: {where}, column {name!r}: empty value (pass nan='skip' to skip NaN "
            "and empty values)"
        )

    # Fast path: pyarrow parses the column as float64 (clean files: all of them). At the
    # first value it rejects (spaces, an empty value, a typo) the file is read again as
    # text from the start, the rows already handed on are skipped, and the rest is checked
    # value by value.
    done = 0
    try:
        for batch in _csv_reader(path, gz, delim, header, [name], on_invalid, as_float=True):
            if empty_lines:
                break
            vals = batch.column(0)
            done += len(vals)
            yield vals.to_numpy(zero_copy_only=False)
        else:
            return
    except pa.ArrowInvalid:
        pass
    empty_lines.clear()
    row = 0
    try:
        for batch in _csv_reader(path, gz, delim, header, [name], on_invalid):
            if empty_lines and nan != "skip":
                n = empty_lines[0]
                raise missing(f"line {n}" if n is not None and n >= 0 else "an empty line")
            col = batch.column(0)
            if row + len(col) <= done:
                row += len(col)
                continue
            if row < done:
                col = col.slice(done - row)
                row = done
            try:
                vals = pc.cast(col, pa.float64())
            except pa.ArrowInvalid:
                col = pc.utf8_trim_whitespace(col)
                empty = pc.equal(col, "")
                if nan != "skip" and pc.any(empty).as_py():
                    i = pc.index(empty, True).as_py()
                    raise missing(f"data row {row + i + 1}") from None
                col = pc.if_else(empty, "nan", col)
                try:
                    vals = pc.cast(col, pa.float64())
                except pa.ArrowInvalid:
                    for i, v in enumerate(col.to_pylist()):
                        try:
                            float(v)
                        except ValueError:
                            raise HeadstartError(
                                f"{path}: data row {row + i + 1}, column {name!r}: expected a "
                                f"number, found {v!r}"
                            ) from None
                    raise
            row += len(col)
            yield vals.to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid as e:
        raise HeadstartError(f"{path}: {e}") from None
    if empty_lines:
        if nan != "skip":
            raise missing("an empty line")
        yield np.full(len(empty_lines), np.nan)  # skipped and counted by the state


# ---------------------------------------------------------------------- partition tasks


def _where(names, k):
    """How an error names partition k: its file, or (partition number, first row)."""
    if names is None:
        return (k, None)
    return names[k]


class _Failed:
    """A partition's HeadstartError, returned as a value: the merge keeps the first one in
    partition order, so the error reported is the one a sequential scan meets first, not
    whichever worker fails first."""

    def __init__(self, message: str):
        self.message = message


def _located(e: HeadstartError, where) -> _Failed:
    msg = str(e)
    if isinstance(where, str):  # a file
        return _Failed(msg if msg.startswith(where) else f"{where}: {msg}")
    k, start = where
    if start is None:
        return _Failed(f"Dask partition {k}: {msg} (index within the partition)")
    # the states count from the start of the partition: make the index global
    msg = re.sub(r"at index (\d+)", lambda m: f"at index {start + int(m.group(1))}", msg)
    return _Failed(f"Dask partition {k}: {msg}")


def _regression_task(plans, cols, part, reader, where):
    """One partition's contribution to this pass: fresh states of the plan, fed the values
    (``cols``: which columns of 2-D partitions the plans belong to; None for 1-D)."""
    states = [p.fresh() for p in plans]
    try:
        for chunk in reader.arrays(part):
            if cols is None:
                states[0].update(chunk)
            else:
                for j, s in zip(cols, states):
                    s.update(chunk[:, j])
    except HeadstartError as e:
        return _located(e, where)
    return states


def _classes_task(part, reader, nan, where):
    try:
        return [reader.classes(part, nan, where)]
    except HeadstartError as e:
        return _located(e, where)


def _multilabel_task(part, reader, nan, where):
    try:
        return [reader.multilabel(part, nan, where)]
    except HeadstartError as e:
        return _located(e, where)


def _merge(*groups):
    # In partition order: the first group absorbs the others (it is this task's own
    # input, used by no other task, so mutating it is safe on every scheduler).
    for g in groups:
        if isinstance(g, _Failed):
            return g
    out = groups[0]
    for g in groups[1:]:
        for a, b in zip(out, g):
            a.merge(b)
    return out


def _tree(tasks, split_every):
    level = list(tasks)
    while len(level) > 1:
        level = [
            dask.delayed(_merge)(*level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    return level[0]


def _compute(obj, scheduler):
    (out,) = dask.compute(obj, scheduler=scheduler)  # None: the client or Dask's default
    if isinstance(out, _Failed):
        raise HeadstartError(out.message)
    return out


# ---------------------------------------------------------------------- sources


class _Source:
    """What a scan reads: ordered partitions, a reader for them, and their kind."""

    def __init__(self, parts, reader, kind, *, names=None, source=None, column=None):
        self.parts = parts  # Delayed partitions, or paths
        self.reader = reader
        self.kind = kind
        self.names = names  # what to call partition k in errors
        self.source = source
        self.column = column


def _is_path_list(obj) -> bool:
    return (
        isinstance(obj, (list, tuple))
        and len(obj) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in obj)
    )


def _is_collection(obj) -> bool:
    return dask.is_dask_collection(obj)


def _frame_kind(obj) -> str | None:
    """'dataframe' or 'series' for Dask dataframe collections, told apart by their pandas
    meta (a Dask series answers hasattr(s, "columns") too)."""
    if not _is_collection(obj) or not hasattr(obj, "divisions"):
        return None
    meta = getattr(obj, "_meta", None)
    if meta is None:
        return None
    return "dataframe" if meta.ndim == 2 else "series"


def _is_dataframe(obj) -> bool:
    return _frame_kind(obj) == "dataframe"


def _is_series(obj) -> bool:
    return _frame_kind(obj) == "series"


def _dtype_kind(dtype) -> str:
    if isinstance(dtype, np.dtype):
        return dtype.kind
    if type(dtype).__name__ == "CategoricalDtype":
        return _dtype_kind(dtype.categories.dtype)
    return getattr(dtype, "kind", "O")


def _auto_kind(ndim, width, dtype, kind):
    if kind != "auto":
        return kind
    probe = np.empty((0,) * ndim if ndim != 2 else (0, width), dtype=_numpy_probe(dtype))
    return array_kind(probe, kind)


def _numpy_probe(dtype):
    k = _dtype_kind(dtype)
    return {"f": np.float64, "i": np.int64, "u": np.uint64, "b": np.bool_}.get(k, object)


def _source(source, column, kind, delimiter, header, label_sep, nan) -> _Source:
    if _is_path_list(source):
        paths = [os.fspath(p) for p in source]
        for p in paths:
            if not os.path.exists(p):
                raise FileNotFoundError(f"{p}: no such file")
            if os.path.isdir(p):
                raise IsADirectoryError(f"{p}: is a directory, expected a label file")
        reader = _Files(column, delimiter, header, label_sep, nan)
        if label_sep is not None and kind == "auto":
            kind = "multilabel"
        if kind == "auto":
            kind = _file_kind(paths[0], reader)
        return _Source(paths, reader, kind, names=paths, source=paths, column=column)
    if isinstance(source, (list, tuple)) and not source:
        raise HeadstartError("no files: the list of paths is empty")
    if not _is_collection(source):
        raise TypeError(
            "headstart.dask.scan takes a Dask array, series or dataframe, or a list of file "
            f"paths; got {type(source).__name__}"
        )
    if _is_dataframe(source):
        names = list(source.columns)
        if isinstance(column, (list, tuple)):
            missing = [c for c in column if c not in names]
            if missing:
                raise HeadstartError(
                    f"no column(s) {missing} in the dataframe; it has: {', '.join(map(str, names))}"
                )
            if kind == "auto":
                kind = "multilabel"
            frame = source[list(column)]
            return _frame_source(frame, kind, column)
        if column is None and kind == "multilabel":
            return _frame_source(source, kind, None)
        if not names:
            raise HeadstartError("the dataframe has no columns")
        name = column if column in names else _pick_column("the dataframe", names, column)
        source, column = source[name], name
    if _is_series(source):
        kind = _auto_kind(1, 1, source.dtype, kind)
        if kind == "multilabel":
            raise HeadstartError("multi-label statistics need several columns: pass column=[...]")
        parts = list(source.to_delayed())
        return _Source(parts, _Memory(), kind, column=column)
    if not hasattr(source, "chunks") or not hasattr(source, "to_delayed"):
        raise TypeError(
            f"headstart.dask.scan does not read a {type(source).__name__}; pass a Dask array, "
            "series or dataframe"
        )
    arr = source
    width = arr.shape[1] if arr.ndim == 2 else 1
    kind = _auto_kind(arr.ndim, width, arr.dtype, kind)
    if kind == "multilabel":
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(f"multi-label targets must be (N, K), got shape {arr.shape}")
        if len(arr.chunks[1]) > 1:
            arr = arr.rechunk({1: -1})
        parts = list(arr.to_delayed()[:, 0])
        reader = _Memory(columns=arr.shape[1])
    elif kind == "regression":
        if arr.ndim > 1 and not (arr.ndim == 2 and arr.shape[1] == 1):
            raise ValueError(
                f"regression targets must be 1-D (one column), got shape {arr.shape}; "
                "scan each column separately (headstart.dask.bias_init takes 2-D targets, "
                "one output per column)"
            )
        if arr.ndim == 2:
            arr = arr[:, 0]
        parts = list(arr.to_delayed().ravel())
        reader = _Memory()
    else:
        if arr.ndim > 1 and any(d != 1 for d in arr.shape[1:]):
            # headstart.scan flattens an n-D numpy array of class labels; here a 2-D array
            # is far more likely one-hot or probability rows that headstart.bias_init sent
            # as class labels, and counting its 0s and 1s would be silently wrong.
            raise HeadstartError(
                f"class labels must be 1-D, got a Dask array of shape {arr.shape}: pass "
                "kind='multilabel' for (N, K) rows (headstart.dask.bias_init does so for "
                "probability targets), or ravel() it"
            )
        parts = list(arr.to_delayed().ravel())
        reader = _Memory()
    return _Source(
        parts, reader, kind, names=_array_names(arr) if kind != "classification" else None
    )


def _frame_source(frame, kind, column):
    parts = list(frame.to_delayed())
    if kind == "regression":
        return _Source(parts, _Memory(columns=len(frame.columns)), kind, column=column)
    if kind != "multilabel":
        raise HeadstartError(
            f"several columns give multi-label (or per-column regression) statistics, not {kind}"
        )
    return _Source(parts, _Memory(columns=len(frame.columns)), kind, column=column)


def _array_names(arr):
    """(partition number, first row) of each partition, for error messages."""
    sizes = arr.chunks[0]
    if any(isinstance(s, float) and math.isnan(s) for s in sizes):
        return None
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    return [(k, int(s)) for k, s in enumerate(starts)]


def _file_kind(path, reader: _Files) -> str:
    fmt, gz, delim, header = reader._format(path)
    if fmt == "npy":
        a = np.load(path, mmap_mode="r")
        if a.ndim == 2 and reader.column is not None:
            a = a[:, int(reader.column)]
        return array_kind(
            np.empty((0,) * a.ndim if a.ndim != 2 else (0, a.shape[1]), a.dtype), "auto"
        )
    if fmt == "arrow":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if path.lower().endswith((".parquet", ".pq")):
            schema = pq.ParquetFile(path).schema_arrow
        else:
            from pyarrow import ipc

            with pa.memory_map(path) as src:
                schema = ipc.open_file(src).schema
        t = schema.field(_pick_column(path, schema.names, reader.column)).type
        return "regression" if pa.types.is_floating(t) else "classification"
    return text_kind(sniff_text(path, gz, delim, header, reader.column).values)


# --------------------------------------------------------------------------- drivers


def _run_regression(src: _Source, columns, qs, deltas, nan, split_every, scheduler):
    """Exact regression statistics of ``columns`` value streams (None: one 1-D stream),
    one Dask reduction per pass; a column whose statistics are done sits out later passes."""
    k = 1 if columns is None else columns
    states = [RegressionState(qs, deltas or None, nan=nan) for _ in range(k)]
    skipped = None
    active = list(range(k))
    reader = dask.delayed(src.reader, traverse=False)
    while active:
        plan = dask.delayed([states[j].fresh() for j in active], traverse=False)
        cols = None if columns is None else active
        tasks = [
            dask.delayed(_regression_task)(plan, cols, part, reader, _where(src.names, i))
            for i, part in enumerate(src.parts)
        ]
        merged = _compute(_tree(tasks, split_every), scheduler)
        for j, s in zip(active, merged):
            states[j] = s
        if skipped is None:  # NaN are counted on the first pass only
            skipped = [s.skipped for s in states]
        active = [j for j in active if states[j].finish_pass()]
    out = []
    for p, sk in zip(states, skipped):
        p.skipped = sk
        r = p.result()
        r.source, r.column = src.source, src.column
        out.append(r)
    return out


def _run_once(src: _Source, task, nan, split_every, scheduler):
    reader = dask.delayed(src.reader, traverse=False)
    tasks = [
        dask.delayed(task)(part, reader, nan, _where(src.names, k))
        for k, part in enumerate(src.parts)
    ]
    return _compute(_tree(tasks, split_every), scheduler)[0]


def _check_common(kind, nan, quantiles, huber_delta, split_every):
    qs = check_scan_args(kind, nan, quantiles)
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"split_every must be an int >= 2, got {split_every!r}")
    return qs, huber_deltas(huber_delta)


def scan(
    source,
    column=None,
    kind: str = "auto",
    *,
    quantiles=(),
    huber_delta=None,
    nan: str = "raise",
    delimiter: str | None = None,
    header: bool | None = None,
    label_sep: str | None = None,
    split_every: int = 8,
    scheduler: Any = None,
):
    """:func:`headstart.scan` over a Dask collection or a list of files, as Dask reductions.

    ``source``: a Dask array (1-D labels, or (N, K) 0/1 multi-label rows), a Dask series,
    a Dask dataframe (``column=`` a name or index; default the only or last column; a list
    of names gives multi-label rows), or a list of file paths that :func:`headstart.scan`
    reads (one partition per file; every worker must see the paths). ``kind``,
    ``quantiles``, ``huber_delta``, ``nan``, ``delimiter``, ``header`` and ``label_sep`` as
    in :func:`headstart.scan`. ``split_every``: how many partition states one merge task
    combines. ``scheduler``: passed to ``dask.compute`` (default: the active client or
    Dask's default scheduler).

    Exact order statistics take the same passes as on one machine, each pass one Dask
    computation of the collection (``persist()`` it first if it is expensive to compute).
    Returns ``ClassificationStats``, ``MultilabelStats`` or ``RegressionStats``.
    """
    qs, deltas = _check_common(kind, nan, quantiles, huber_delta, split_every)
    src = _source(source, column, kind, delimiter, header, label_sep, nan)
    if src.kind == "classification":
        # Integer labels (an .npy or Parquet file) and label text (a text file) are typed
        # together by ClassCounts.result: 3 and "3" are one class.
        counts = _run_once(src, _classes_task, nan, split_every, scheduler)
        column = src.column
        if isinstance(src.reader, _Files):
            column = src.reader.column_name(src.parts[0])
        return counts.result(source=src.source, column=column)
    if src.kind == "multilabel":
        acc = _run_once(src, _multilabel_task, nan, split_every, scheduler)
        if isinstance(acc, _LabelSums):
            names = (
                np.asarray(list(src.column))
                if isinstance(src.column, (list, tuple))
                else np.arange(len(acc.positives))
            )
            return MultilabelStats(names, acc.positives, acc.n, 0, src.source, src.column)
        labels, counts = acc.label_counts()
        return MultilabelStats(
            np.asarray(labels), counts, acc.rows, acc.skipped, src.source, src.column
        )
    columns = src.reader.columns if isinstance(src.reader, _Memory) else None
    if columns is not None:
        raise ValueError(
            f"regression targets must be one column, got {columns}; scan each column separately"
        )
    (stats,) = _run_regression(src, None, qs, deltas, nan, split_every, scheduler)
    if isinstance(src.reader, _Files):
        stats.column = src.reader.column_name(src.parts[0])
    return stats


def _scan_columns(source, column, qs, deltas, nan, split_every, scheduler) -> list[RegressionStats]:
    """Per-column regression statistics of a 2-D Dask array or several dataframe columns,
    all columns in the same passes over the data."""
    if _is_dataframe(source):
        src = _frame_source(source[list(column)], "regression", list(column))
        k = len(column)
    else:
        arr = source
        if len(arr.chunks[1]) > 1:
            arr = arr.rechunk({1: -1})
        k = arr.shape[1]
        src = _Source(
            list(arr.to_delayed()[:, 0]), _Memory(columns=k), "regression", names=_array_names(arr)
        )
    stats = _run_regression(src, k, qs, deltas, nan, split_every, scheduler)
    names = list(column) if column is not None else list(range(k))
    for s, name in zip(stats, names):
        s.column = name
    return stats


def bias_init(
    labels,
    loss: str = "cross_entropy",
    *,
    column=None,
    nan: str | None = None,
    scan_options: dict | None = None,
    split_every: int = 8,
    scheduler: Any = None,
    **options,
):
    """:func:`headstart.bias_init` with the label statistics computed by Dask.

    ``labels``: a Dask array (class labels; (N, C) probability or 0/1 rows; real targets,
    2-D meaning one output per column), a Dask series or dataframe (``column=`` a name,
    or a list of names: one output each), or a list of file paths (one partition per
    file). Anything else goes to :func:`headstart.bias_init` unchanged. The other options
    are :func:`headstart.bias_init`'s; ``split_every`` and ``scheduler`` as in
    :func:`scan`.
    """
    from ..bias.compute import prepare

    if not (_is_collection(labels) or _is_path_list(labels)):
        raise TypeError(
            "headstart.dask.bias_init takes a Dask collection or a list of file paths; "
            f"for a {type(labels).__name__} use headstart.bias_init"
        )
    own = ("num_classes", "classes", "floor", "dtype", "sparse_ids")
    plan = prepare(
        loss,
        {k: v for k, v in options.items() if k not in own + ("progress", "exact")},
        **{k: options[k] for k in own if k in options},
    )
    spec, opts = plan.spec, plan.opts
    # the order statistics this loss needs (as headstart.bias_init asks of headstart.scan)
    so = dict(scan_options or {})
    so.pop("progress", None)  # Dask has its own progress reporting
    qs = list(so.pop("quantiles", ()))
    delta = so.pop("huber_delta", None)
    if spec.name == "pinball_loss":
        qs = sorted(set(qs) | {float(opts["tau"])})
    elif spec.name == "huber_loss" and float(opts["delta"]) > 0:
        delta = float(opts["delta"])
    elif spec.name == "smooth_l1_loss" and float(opts["beta"]) > 0:
        delta = float(opts["beta"])
    kw = dict(so, nan=nan or "raise", split_every=split_every, scheduler=scheduler)
    two_d = _is_collection(labels) and getattr(labels, "ndim", 1) == 2 and not _is_dataframe(labels)
    several = isinstance(column, (list, tuple))
    if spec.family == "regression":
        if two_d and labels.shape[1] == 1:
            labels, two_d = labels[:, 0], False
        if (two_d or several) and not _is_path_list(labels):
            qs2, deltas = _check_common("regression", kw["nan"], qs, delta, split_every)
            stats = _scan_columns(labels, column, qs2, deltas, kw["nan"], split_every, scheduler)
        elif several:
            stats = [
                scan(labels, c, "regression", quantiles=qs, huber_delta=delta, **kw) for c in column
            ]
        else:
            stats = [scan(labels, column, "regression", quantiles=qs, huber_delta=delta, **kw)]
    elif spec.family == "sigmoid":
        multi = two_d or several or so.get("label_sep") is not None
        stats = scan(labels, column, "multilabel" if multi else "auto", **kw)
    elif spec.family == "softmax" and (two_d or several):
        stats = scan(labels, column, "multilabel", **kw)  # probability rows
    else:
        stats = scan(labels, column, "classification", **kw)
    return plan.finish(stats, None, column)
