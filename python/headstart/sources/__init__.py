"""The front door: every source of labels, recognised and read one way.

:func:`open_source` turns what a user passes (an array, a tensor, a table of any library, a
file, a Dask collection, chunks, statistics) into one of four kinds of :class:`Source`,
which :func:`headstart.scan`, ``bias_init``, ``check_init``, the streaming states, the CLI
and :mod:`headstart.dask` all go through:

- :class:`FileSource`: a path the Rust readers scan (text, ``.npy``, raw binary), after
  the format and the header rule of :mod:`.files`; Parquet / Arrow files become chunks;
- :class:`ChunkSource`: a stream of numpy chunks (1-D labels or (rows, K) rows) that can
  be read again (``reread``) or not (a plain iterator, a RecordBatchReader);
- :class:`ArraySource`: one in-memory numpy array (numpy, lists, torch, JAX, ...);
- :class:`DaskSource` and :class:`StatsSource`: handed on as they are.

How labels are typed is :mod:`.labels`; the table of sources is in the README.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np

from .._core import HeadstartError
from .convert import is_torch_tensor, library_of, loss_value, to_numpy
from .files import (
    FORMATS,
    detect_format,
    known_extension,
    locate_label,
    resolve_format,
    sniff_text,
    spool,
)
from .labels import NA_TOKENS, type_labels
from .tables import BATCH, arrow_reader, pick_column, table_reader

__all__ = [
    "FORMATS",
    "NA_TOKENS",
    "ArraySource",
    "ChunkSource",
    "DaskSource",
    "FileSource",
    "Source",
    "StatsSource",
    "is_torch_tensor",
    "loss_value",
    "open_source",
    "pick_column",
    "to_numpy",
    "type_labels",
]

RAW_DTYPES = ("uint8", "uint16", "uint32", "int32", "int64")


class Source:
    """Base of the source kinds. ``what``: how errors and reports call the source;
    ``column``: the column read (name, index or list), when there is one; ``names``:
    class names of integer labels carried by the source; ``reread``: whether it can be read
    more than once (exact order statistics need it); ``notes``: decisions a user should
    know about."""

    what: str = "the input"
    column: Any = None
    names: list | None = None
    reread: bool = True
    notes: tuple = ()
    # Names given by classes= (strings): a column that mixes numbers and names is then read
    # as names, each label matched to one of them (set by bias_init before the scan).
    as_names: frozenset | None = None

    spooled: str | None = None  # a temporary copy of a pipe, removed by close()

    def close(self) -> None:
        """Release what opening took (a spooled copy of a pipe)."""
        if self.spooled:
            try:
                os.unlink(self.spooled)
            except OSError:
                pass
            self.spooled = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class StatsSource(Source):
    def __init__(self, stats):
        self.stats = stats


class DaskSource(Source):
    def __init__(self, obj, column):
        self.obj = obj
        self.column = column
        self.what = f"the Dask {type(obj).__name__}"


class ArraySource(Source):
    def __init__(self, array: np.ndarray, what="the array", names=None, column=None):
        self.array = array
        self.what = what
        self.names = names
        self.column = column


class ChunkSource(Source):
    """``chunks()``: a fresh iterator of numpy chunks (only once unless ``reread``)."""

    def __init__(
        self,
        chunks: Callable[[], Iterator],
        reread: bool,
        what,
        names=None,
        column=None,
        width=None,
        codes=None,
    ):
        self.chunks = chunks
        self.reread = reread
        self.what = what
        self._names = names
        self.column = column
        self.width = width
        self.codes = codes  # an ArrowCodes collecting the categories of a categorical column
        self.float_column = None  # True / False when a schema says so (Arrow files)

    @property
    def names(self):
        if self._names is None and self.codes is not None:
            return self.codes.names
        return self._names


class FileSource(Source):
    """A label file for the Rust readers. ``path``: the file read (a temporary copy for a
    pipe); ``shown``: the path as the user gave it; ``format``: "text", "npy" or "raw";
    ``gz``, ``delimiter``, ``header`` (resolved to a bool for text); ``sniff``: the first
    64 KiB of a text file (:class:`.files.TextSniff`); ``dtype`` and ``raw_header`` for
    raw files."""

    def __init__(
        self,
        path,
        shown,
        format,
        *,
        gz=False,
        delimiter=None,
        header=False,
        column=None,
        sniff=None,
        dtype=None,
        raw_header="auto",
        spooled=None,
        notes=(),
    ):
        self.path = path
        self.shown = shown
        self.what = shown
        self.format = format
        self.gz = gz
        self.delimiter = delimiter
        self.header = header
        self.column = column
        self.sniff = sniff
        self.dtype = dtype
        self.raw_header = raw_header
        self.spooled = spooled
        self.notes = tuple(notes)

    def locate(self, text: str) -> str:
        """Where label ``text`` first occurs, for an error message (text files only)."""
        if self.format != "text" or self.sniff is None:
            return ""
        return locate_label(
            self.path, self.gz, self.delimiter, self.header, self.sniff.index, text, self.shown
        )


def _is_stats(obj) -> bool:
    # The statistics classes (headstart.stats.results) mark themselves; importing them
    # here would make the two packages import each other.
    return getattr(type(obj), "is_label_statistics", False) is True


def open_source(
    obj,
    *,
    column=None,
    format=None,
    delimiter=None,
    header="auto",
    dtype=None,
    raw_header="auto",
) -> Source:
    """Recognise ``obj`` and return the :class:`Source` that reads it (see the module doc).

    ``column``: name or 0-based position for tables and delimited files (a list: several
    columns, as (rows, K) chunks); ``format``: one of ``FORMATS`` to override the file
    extension; ``delimiter``; ``header``: True, False or "auto" for text files; ``dtype``
    and ``raw_header`` ("auto", "llmc", "none") for raw binary files."""
    if header not in (True, False, "auto", None):
        raise ValueError(f"header must be True, False or 'auto', got {header!r}")
    if header is None:
        header = "auto"
    if isinstance(obj, Source):
        return obj
    if _is_stats(obj):
        return StatsSource(obj)
    if isinstance(obj, (str, os.PathLike)):
        return _open_path(os.fspath(obj), column, format, delimiter, header, dtype, raw_header)
    if isinstance(obj, bytes):
        raise TypeError("a path must be str or os.PathLike, not bytes; decode it first")
    if hasattr(obj, "__dask_graph__"):
        return DaskSource(obj, column)
    reader = table_reader(obj, column)
    if reader is not None:
        return ChunkSource(
            reader.chunks,
            reader.reread,
            reader.what,
            reader.names,
            reader.column,
            reader.width,
            reader.codes,
        )
    if (
        isinstance(obj, np.ndarray)
        or is_torch_tensor(obj)
        or library_of(obj) in ("jax", "jaxlib", "tensorflow")
    ):
        _no_column(column, "an array")
        return ArraySource(
            to_numpy(obj),
            f"the {library_of(obj)} array" if not isinstance(obj, np.ndarray) else "the array",
        )
    if (
        isinstance(obj, (list, tuple))
        and obj
        and all((isinstance(x, np.ndarray) or is_torch_tensor(x)) and np.ndim(x) >= 1 for x in obj)
    ):
        # A list of arrays or tensors is a list of chunks (e.g. the label batches of a data
        # loader), even when they have equal lengths; a list of lists is an array.
        _no_column(column, "a list of chunks")
        chunks = list(obj)
        return ChunkSource(lambda: (to_numpy(c) for c in chunks), True, "the list of chunks")
    if isinstance(obj, Iterator):
        _no_column(column, "an iterator")
        it = obj
        return ChunkSource(lambda: (to_numpy(c) for c in it), False, "the iterator")
    if callable(obj):
        _no_column(column, "a callable")
        make = obj

        def chunks():
            it = make()
            if not hasattr(it, "__iter__"):
                raise TypeError(
                    f"a callable source must return an iterator of chunks, got {type(it).__name__}"
                )
            return (to_numpy(c) for c in it)

        return ChunkSource(chunks, True, "the chunks")
    if isinstance(obj, (list, tuple, int, float, np.generic)) or hasattr(obj, "__array__"):
        _no_column(column, "an array")
        return ArraySource(to_numpy(obj))
    if hasattr(obj, "__iter__") and not isinstance(obj, (dict, set)):
        # A re-iterable collection of chunks (e.g. a torch DataLoader of label tensors).
        coll = obj
        return ChunkSource(lambda: (to_numpy(c) for c in coll), True, f"the {type(obj).__name__}")
    raise TypeError(
        f"cannot read labels from a {type(obj).__module__}.{type(obj).__name__}; pass an "
        "array, a tensor, a table, a path, or an iterator of chunks"
    )


def _no_column(column, what):
    if column is not None:
        raise HeadstartError(
            f"column={column!r} applies to tables and delimited files, not to {what}"
        )


def _open_path(
    path, column, format, delimiter, header, dtype, raw_header
) -> FileSource | ChunkSource:
    shown = path
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory, expected a label file")
    fmt, gz, delim = resolve_format(path, format, delimiter)
    tmp = spool(path, ".gz" if gz else "")  # pipes and devices: a regular copy, read whole
    real = tmp or path
    notes: list = []
    try:
        if format is None and not known_extension(path):
            fmt, gz, delim, note = detect_format(real, delimiter)
            notes.append(note)
        if fmt in ("parquet", "ipc"):
            src = _arrow_file(real, fmt, column, shown)
            src.notes = tuple(notes)
            src.spooled = tmp
            return src
        if dtype is not None and fmt != "raw":
            raise TypeError(
                f"label_dtype= applies to raw binary files (format='raw'), not to {fmt} files"
            )
        if fmt == "npy":
            if header not in ("auto", False):
                raise TypeError("header= applies to text files, not to .npy")
            return FileSource(real, shown, "npy", column=column, spooled=tmp, notes=notes)
        if fmt == "raw":
            if column is not None:
                raise HeadstartError(
                    f"{shown}: a raw binary file has no columns (got column={column!r})"
                )
            if dtype is not None and str(np.dtype(dtype)) not in RAW_DTYPES:
                raise TypeError(
                    f"dtype for raw files must be one of {', '.join(RAW_DTYPES)}, got {dtype!r}"
                )
            if raw_header not in ("auto", "llmc", "none"):
                raise ValueError(f"raw_header must be 'auto', 'llmc' or 'none', got {raw_header!r}")
            return FileSource(
                real,
                shown,
                "raw",
                dtype=None if dtype is None else str(np.dtype(dtype)),
                raw_header=raw_header,
                spooled=tmp,
                notes=notes,
            )
        if isinstance(column, (list, tuple)):
            raise HeadstartError(
                f"{shown}: several columns at once are read from tables; scan each column "
                "of a text file separately"
            )
        sn = sniff_text(real, gz, delim, header, column, shown)
        if sn.note:
            notes.append(sn.note)
        if isinstance(column, str) and not (sn.names and column in sn.names):
            if not sn.header:
                raise HeadstartError(
                    f"{shown}: no column named {column!r}: the file has no header line (its "
                    f"first line, {sn.first!r}, is data); pass a 0-based column index, or "
                    "header=True (--header) if the first line does name the columns"
                )
            if delim is None and sn.names:
                raise HeadstartError(
                    f"{shown}: no column named {column!r}; the header has: {sn.names[0]}"
                )
        return FileSource(
            real,
            shown,
            "text",
            gz=gz,
            delimiter=delim,
            header=sn.header,
            column=column,
            sniff=sn,
            spooled=tmp,
            notes=notes,
        )
    except BaseException:
        if tmp:
            os.unlink(tmp)
        raise


def _arrow_file(path, fmt, column, shown=None) -> ChunkSource:
    shown = shown or path
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pyarrow import ipc
    except ImportError:
        raise ImportError(
            f"{shown}: reading Parquet/Arrow needs pyarrow: pip install 'headstart[arrow]'"
        ) from None
    try:
        if fmt == "parquet":
            schema = pq.ParquetFile(path).schema_arrow
        else:
            with pa.memory_map(path) as src:
                schema = ipc.open_file(src).schema
    except (pa.ArrowInvalid, OSError) as e:
        raise HeadstartError(f"{shown}: not a readable {fmt} file: {e}") from None
    cols = (
        [pick_column(shown, schema.names, c) for c in column]
        if isinstance(column, (list, tuple))
        else pick_column(shown, schema.names, column)
    )
    sel = cols if isinstance(cols, list) else [cols]

    def batches():
        if fmt == "parquet":
            yield from pq.ParquetFile(path).iter_batches(columns=sel, batch_size=BATCH)
        else:
            with pa.memory_map(path) as src:
                r = ipc.open_file(src)
                for i in range(r.num_record_batches):
                    yield r.get_batch(i).select(sel)

    conv, codes = arrow_reader()

    def chunks():
        for b in batches():
            if len(sel) > 1:
                yield np.stack([np.asarray(to_numpy(b.column(c)), np.float64) for c in sel], axis=1)
            else:
                yield conv(b.column(0) if fmt == "parquet" else b.column(sel[0]))

    src = ChunkSource(
        chunks, True, shown, None, cols, len(sel) if len(sel) > 1 else None, codes=codes
    )
    src.float_column = pa.types.is_floating(schema.field(sel[0]).type)
    return src
