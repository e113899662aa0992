"""Tables of every library as streams of numpy chunks, with ``column=`` for all of them.

pandas Series / DataFrame, polars Series / DataFrame / LazyFrame (streamed with
``collect_batches``), pyarrow Array / ChunkedArray / Table / RecordBatchReader /
``pyarrow.dataset.Dataset`` (streamed), Hugging Face ``datasets.Dataset`` and
``IterableDataset`` (streamed in Arrow batches; a ``ClassLabel`` column's names become the
class names). Column choice is the same everywhere: ``column=`` by name, or by 0-based
position when no column has that name; by default the only column, or the last one (the
``y`` of ``x, y``). A missing column is an error that lists the columns there are.
"""

from __future__ import annotations

from .._core import HeadstartError
from .convert import library_of, to_numpy

__all__ = ["ArrowCodes", "TableReader", "arrow_reader", "pick_column", "table_reader"]

BATCH = 1 << 20


class TableReader:
    """``chunks()``: a fresh iterator of numpy chunks of the chosen column(s) (1-D, or
    (rows, K) for several columns); ``reread``: whether ``chunks()`` may be called again;
    ``column``: the name(s) chosen; ``names``: class names of integer codes, or None
    (``codes``: the :class:`ArrowCodes` that collects them while the chunks are read);
    ``what``: how errors call the table."""

    def __init__(self, chunks, reread, column, what, names=None, width=None, codes=None):
        self.chunks = chunks
        self.reread = reread
        self.column = column
        self.what = what
        self.names = names
        self.width = width
        self.codes = codes


class ArrowCodes:
    """Categorical columns (Arrow dictionary arrays: pandas categoricals written to Parquet,
    polars Enum / Categorical, dictionary-encoded strings): the categories, in their order,
    name the outputs, unseen ones included, and the labels are their codes, so a model
    trained on the codes (``.cat.codes``, ``to_physical()``) gets its biases in the right
    slots. A chunk whose dictionary differs is mapped into the first one's codes (new
    categories are appended)."""

    def __init__(self):
        self.names: list | None = None
        self._index: dict = {}

    def __call__(self, arr):
        import numpy as np
        import pyarrow as pa

        if isinstance(arr, pa.ChunkedArray):
            parts = [self(c) for c in arr.chunks]
            return np.concatenate(parts) if parts else np.zeros(0)
        dictionary = arr.dictionary.to_pylist()
        if self.names is None:
            self.names = []
        remap = np.empty(len(dictionary), np.float64)
        for i, v in enumerate(dictionary):
            if v not in self._index:
                self._index[v] = len(self.names)
                self.names.append(v)
            remap[i] = self._index[v]
        idx = arr.indices.to_numpy(zero_copy_only=False)
        out = np.full(len(arr), np.nan)
        if arr.null_count:
            valid = arr.is_valid().to_numpy(zero_copy_only=False)
            out[valid] = remap[idx[valid].astype(np.int64)]
        elif len(remap):
            out = remap[idx.astype(np.int64)]
        return out


def arrow_reader(value=None):
    """A converter of one column's Arrow chunks to numpy, with categories kept as codes."""
    codes = ArrowCodes()

    def convert(arr):
        import pyarrow as pa

        t = arr.type
        if pa.types.is_dictionary(t):
            return codes(arr)
        return to_numpy(arr)

    return convert, codes


def pick_column(what: str, names: list, column):
    """The column name that ``column`` selects among ``names`` (see the module doc)."""
    names = list(names)
    if not names:
        raise HeadstartError(f"{what} has no columns")
    if column is None:
        return names[-1]
    if column in names:
        return column
    if isinstance(column, int) and not isinstance(column, bool):
        if not -len(names) <= column < len(names):
            raise HeadstartError(
                f"column index {column} is out of range: {what} has {len(names)} columns "
                f"({_list(names)})"
            )
        return names[column]
    raise HeadstartError(f"no column {column!r} in {what}; it has: {_list(names)}")


def _list(names, k=12):
    s = [str(n) for n in names]
    return ", ".join(s[:k]) + (f", ... ({len(s)} in all)" if len(s) > k else "")


def _columns(what, names, column):
    if isinstance(column, (list, tuple)):
        cols = [pick_column(what, names, c) for c in column]
        if len(set(cols)) != len(cols):
            raise HeadstartError(f"column= names a column twice: {cols}")
        return cols
    return pick_column(what, names, column)


def _stack(arrays):
    import numpy as np

    return np.stack([np.asarray(a, dtype=np.float64) for a in arrays], axis=1)


def _category_names(series):
    dtype = getattr(series, "dtype", None)
    if type(dtype).__name__ == "CategoricalDtype":
        return [c.item() if hasattr(c, "item") else c for c in dtype.categories.tolist()]
    return None


def table_reader(obj, column) -> TableReader | None:
    """A reader for ``obj`` if it is a table or column of a library we know, else None."""
    lib = library_of(obj)
    if lib == "pandas":
        return _pandas(obj, column)
    if lib == "polars":
        return _polars(obj, column)
    if lib == "pyarrow":
        return _arrow(obj, column)
    if lib == "datasets":
        return _hf(obj, column)
    return None


# ------------------------------------------------------------------------------ pandas


def _pandas(obj, column):
    if hasattr(obj, "columns") and hasattr(obj, "iloc"):  # DataFrame
        what = "the pandas DataFrame"
        cols = _columns(what, list(obj.columns), column)
        if isinstance(cols, list):
            frame = obj[cols]
            return TableReader(
                lambda: iter([_stack([to_numpy(frame[c]) for c in cols])]),
                True,
                cols,
                what,
                width=len(cols),
            )
        obj, column = obj[cols], cols
    elif column is not None and column != getattr(obj, "name", None):
        raise HeadstartError(
            f"column={column!r} but the input is a pandas Series named {obj.name!r}: pass "
            "the DataFrame, or the Series without column="
        )
    if not hasattr(obj, "dtype"):
        return None
    series = obj
    return TableReader(
        lambda: iter([to_numpy(series)]),
        True,
        getattr(series, "name", None),
        "the pandas Series",
        names=_category_names(series),
    )


# ------------------------------------------------------------------------------ polars


def _polars(obj, column):
    import polars as pl

    if isinstance(obj, pl.Series):
        if column is not None and column != obj.name:
            raise HeadstartError(
                f"column={column!r} but the input is a polars Series named {obj.name!r}"
            )
        s = obj
        conv, codes = arrow_reader(s)
        return TableReader(
            lambda: (conv(c) for c in _series_chunks(s)),
            True,
            s.name,
            "the polars Series",
            codes=codes,
        )
    if isinstance(obj, pl.DataFrame):
        what = "the polars DataFrame"
        cols = _columns(what, obj.columns, column)
        if isinstance(cols, list):
            df = obj
            return TableReader(
                lambda: iter([_stack([to_numpy(df.get_column(c)) for c in cols])]),
                True,
                cols,
                what,
                width=len(cols),
            )
        s = obj.get_column(cols)
        conv, codes = arrow_reader(s)
        return TableReader(
            lambda: (conv(c) for c in _series_chunks(s)), True, cols, what, codes=codes
        )
    if isinstance(obj, pl.LazyFrame):
        what = "the polars LazyFrame"
        cols = _columns(what, obj.collect_schema().names(), column)
        sel = cols if isinstance(cols, list) else [cols]
        lf = obj.select(sel)

        def batches():
            if hasattr(lf, "collect_batches"):
                # Streamed: the query runs once per pass and never materialises whole.
                for df in lf.collect_batches(chunk_size=BATCH):
                    yield df
            else:  # older polars: one column collected by the streaming engine
                yield lf.collect(engine="streaming")

        conv, codes = arrow_reader(None)

        def chunks():
            for df in batches():
                if len(sel) > 1:
                    yield _stack([to_numpy(df.get_column(c)) for c in sel])
                else:
                    for c in _series_chunks(df.get_column(sel[0])):
                        yield conv(c)

        return TableReader(
            chunks, True, cols, what, width=len(sel) if len(sel) > 1 else None, codes=codes
        )
    return None


def _series_chunks(s):
    arr = s.to_arrow()
    chunks = getattr(arr, "chunks", None)
    return chunks if chunks is not None else [arr]


# ----------------------------------------------------------------------------- pyarrow


def _arrow(obj, column):
    import pyarrow as pa

    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        if column is not None:
            raise HeadstartError(f"column={column!r} but the input is one Arrow array")
        chunks = obj.chunks if isinstance(obj, pa.ChunkedArray) else [obj]
        conv, codes = arrow_reader(obj)
        return TableReader(
            lambda: (conv(c) for c in chunks), True, None, "the Arrow array", codes=codes
        )
    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        what = "the Arrow table"
        cols = _columns(what, obj.schema.names, column)
        table = obj
        if isinstance(cols, list):
            return TableReader(
                lambda: iter([_stack([to_numpy(table.column(c)) for c in cols])]),
                True,
                cols,
                what,
                width=len(cols),
            )
        col = table.column(cols)
        chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
        conv, codes = arrow_reader(col)
        return TableReader(lambda: (conv(c) for c in chunks), True, cols, what, codes=codes)
    if isinstance(obj, pa.RecordBatchReader):
        what = "the Arrow RecordBatchReader"
        cols = _columns(what, obj.schema.names, column)
        reader = obj
        conv, codes = arrow_reader(None)
        return TableReader(
            lambda: _batch_columns(reader, cols, conv), False, cols, what, codes=codes
        )
    try:
        import pyarrow.dataset as pads
    except ImportError:  # pragma: no cover - pyarrow without its dataset module
        pads = None
    if pads is not None and isinstance(obj, pads.Dataset):
        what = "the Arrow dataset"
        cols = _columns(what, obj.schema.names, column)
        sel = cols if isinstance(cols, list) else [cols]
        ds = obj
        conv, codes = arrow_reader(None)
        return TableReader(
            lambda: _batch_columns(ds.to_batches(columns=sel, batch_size=BATCH), cols, conv),
            True,
            cols,
            what,
            width=len(sel) if len(sel) > 1 else None,
            codes=codes,
        )
    return None


def _batch_columns(batches, cols, conv=to_numpy):
    for b in batches:
        if isinstance(cols, list):
            yield _stack([to_numpy(b.column(c)) for c in cols])
        else:
            yield conv(b.column(cols))


# ----------------------------------------------------------------- Hugging Face datasets


def _hf(obj, column):
    import datasets

    is_iterable = isinstance(obj, datasets.IterableDataset)
    if not (is_iterable or isinstance(obj, datasets.Dataset)):
        if isinstance(obj, datasets.DatasetDict):
            raise HeadstartError(
                "a DatasetDict holds several splits: pass one, e.g. ds['train']; it has: "
                + ", ".join(obj)
            )
        return None
    what = "the Hugging Face IterableDataset" if is_iterable else "the Hugging Face Dataset"
    features = obj.features
    if features is None:
        # An IterableDataset from a generator does not know its columns until it is read:
        # rows are read as dicts, one batch at a time.
        if column is None or isinstance(column, (list, tuple)):
            raise HeadstartError(
                f"{what} does not know its columns (no features): pass column= (one name)"
            )
        name = column

        def rows():
            for batch in obj.iter(batch_size=BATCH):
                if name not in batch:
                    raise HeadstartError(f"no column {name!r} in {what}; it has: {_list(batch)}")
                yield to_numpy(batch[name])

        return TableReader(rows, True, name, what)
    names_avail = list(features)
    if column is None:
        # A ClassLabel column says it holds the labels: the default when there is one.
        labels = [k for k, f in features.items() if type(f).__name__ == "ClassLabel"]
        if len(labels) == 1:
            column = labels[0]
    cols = _columns(what, names_avail, column)
    sel = cols if isinstance(cols, list) else [cols]
    class_names = None
    if not isinstance(cols, list):
        feat = features.get(cols)
        if type(feat).__name__ == "ClassLabel":
            class_names = list(feat.names)
    ds = obj.select_columns(sel)

    def chunks():
        # Arrow batches: no Python objects per row; the Dataset's indices mapping (after
        # select / shuffle / filter) is applied by iter().
        for table in ds.with_format("arrow").iter(batch_size=BATCH):
            if len(sel) > 1:
                yield _stack([to_numpy(table.column(c)) for c in sel])
                continue
            a = to_numpy(table.column(sel[0]))
            if class_names is not None and a.dtype.kind in "iu" and (a == -1).any():
                # ClassLabel's -1 is "no label" (e.g. GLUE's test splits): a missing value.
                a = a.astype("float64")
                a[a == -1] = float("nan")
            yield a

    return TableReader(
        chunks, True, cols, what, names=class_names, width=len(sel) if len(sel) > 1 else None
    )
