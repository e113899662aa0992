"""The public entry points that read labels: :func:`scan`, :func:`bias_init`, :func:`check_init`.

Each opens its input through :func:`headstart.sources.open_source` (one set of rules for
every kind of source), computes statistics here or on Dask, and hands them to the math in
:mod:`headstart.bias`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ._core import HeadstartError
from .bias.check import InitCheck, batch_references, check_width, observed_loss, verdict
from .bias.compute import ORDER_LOSSES, prepare, stats_kind
from .bias.losses import resolve_loss
from .bias.result import BiasInit
from .sources import (
    ArraySource,
    ChunkSource,
    DaskSource,
    StatsSource,
    is_torch_tensor,
    loss_value,
    open_source,
    to_numpy,
)
from .stats.scan import check_scan_args, scan_columns, scan_source
from .stats.states import huber_deltas

__all__ = ["bias_init", "check_init", "scan"]


def scan(
    source,
    column=None,
    kind: str = "auto",
    *,
    quantiles: Iterable[float] = (),
    huber_delta=None,
    nan: str = "raise",
    delimiter: str | None = None,
    header="auto",
    label_sep: str | None = None,
    format: str | None = None,
    label_dtype=None,
    progress: Any = None,
):
    """Statistics of training labels for bias initialisation.

    ``source``: anything the front door reads (the README's table): numpy arrays (1-D
    labels, or (N, K) rows), lists, torch / JAX tensors, pandas / polars / pyarrow / Hugging
    Face tables and columns (``column=``), a path (``.csv``, ``.tsv``, ``.txt`` one value
    per line, ``.npy``, ``.bin`` raw binary, their text formats ``.gz``-compressed,
    ``.parquet`` / ``.feather`` / ``.arrow`` with pyarrow), a Dask collection, a callable
    returning a fresh iterator of chunks (re-readable: exact), or an iterator of chunks
    (read once: approximate order statistics with bounds).

    ``column``: name, or 0-based position (default: the only column, or the last one, e.g.
    ``y`` in ``id,y``). ``kind``: "classification", "regression", "multilabel" or "auto"
    (strings and integers are classes, floats are regression targets, 2-D arrays and
    ``label_sep`` are multi-label). ``quantiles`` and ``huber_delta`` (a number or a list)
    name the exact quantiles and Huber locations to compute besides the median.
    ``nan="skip"`` skips missing values and counts them (``result.skipped``); the default
    raises naming the file, line and column. ``header``: True, False or "auto" (the rule of
    :mod:`headstart.sources.files`); ``format``: "csv", "tsv", "text", "npy", "raw",
    "parquet", "ipc" to override the extension; ``label_dtype``: the element type of a raw
    binary file (uint8, uint16, uint32, int32, int64; an llm.c header gives it).
    ``progress``: True for a bar on stderr, or a callable ``(pass, done, total)``. Ctrl-C
    interrupts between chunks.

    Returns ``ClassificationStats``, ``MultilabelStats`` or ``RegressionStats``.
    """
    qs = check_scan_args(kind, nan, quantiles)
    deltas = huber_deltas(huber_delta)
    if label_sep is not None:
        if kind == "auto":
            kind = "multilabel"
        elif kind != "multilabel":
            raise HeadstartError(f"label_sep= means multi-label targets, not kind={kind!r}")
    src = open_source(
        source, column=column, format=format, delimiter=delimiter, header=header, dtype=label_dtype
    )
    with src:
        return _scan_open(src, kind, qs, deltas, huber_delta, nan, label_sep, progress)


def _scan_open(src, kind, qs, deltas, huber_delta, nan, label_sep, progress):
    if isinstance(src, StatsSource):
        return src.stats
    if isinstance(src, DaskSource):
        from .dask import scan as dask_scan  # optional extra

        return dask_scan(
            src.obj,
            column=src.column,
            kind=kind,
            quantiles=qs,
            huber_delta=huber_delta,
            nan=nan,
            label_sep=label_sep,
        )
    return scan_source(src, kind, qs, deltas, nan, label_sep, progress)


# --------------------------------------------------------------------------- bias_init


def _gather(src, spec, *, nan, progress, requests, label_sep, exact):
    """(statistics, in-memory regression columns or None) for an opened source."""
    nan = "raise" if nan is None else nan
    qs = list(requests.get("quantiles", ()))
    deltas = huber_deltas(requests.get("huber_delta"))
    family = spec.family
    if isinstance(src, StatsSource):
        return src.stats, None
    if label_sep is not None and family != "sigmoid":
        raise HeadstartError(
            f"label_sep= (--label-sep) means multi-label targets (several labels per row), "
            f"which {spec.name} cannot take: it has one class per row. Use "
            "loss='bce' (--loss bce: binary_cross_entropy_with_logits), one sigmoid output "
            "per label"
        )
    if not src.reread and spec.name in ORDER_LOSSES and exact:
        raise HeadstartError(
            f"{src.what} can be read only once, and the exact "
            f"{'median' if spec.name == 'l1_loss' else 'optimum'} of {spec.name} needs a "
            "second read: pass a path, an array, or a callable that returns a fresh "
            "iterator (e.g. lambda: iter(chunks)); or exact=False for an estimate with "
            "bounds (result.details['bias_bounds'])"
        )
    if isinstance(src, DaskSource):
        from .dask import scan as dask_scan

        kind = {"regression": "regression", "sigmoid": "auto"}.get(family, "classification")
        stats = dask_scan(
            src.obj,
            column=src.column,
            kind=kind,
            quantiles=qs,
            huber_delta=requests.get("huber_delta"),
            nan=nan,
            label_sep=label_sep,
        )
        return (stats if family != "regression" else [stats]), None
    two_d = (isinstance(src, ArraySource) and src.array.ndim == 2) or (
        isinstance(src, ChunkSource) and src.width is not None
    )
    if family == "regression":
        if isinstance(src, ArraySource):
            arr = src.array
            if arr.ndim == 0:
                raise HeadstartError("labels must be an array of targets, got a scalar")
            if arr.ndim > 2:
                raise HeadstartError(f"regression targets must be 1-D or 2-D, got {arr.shape}")
            if arr.ndim == 2:
                cols = [np.ascontiguousarray(arr[:, j]) for j in range(arr.shape[1])]
                return [
                    scan_source(ArraySource(c, src.what), "regression", qs, deltas, nan, None, None)
                    for c in cols
                ], cols
            return [scan_source(src, "regression", qs, deltas, nan, None, progress)], [
                arr.reshape(-1)
            ]
        if two_d:
            return scan_columns(src, qs, deltas, nan, progress), None
        return [scan_source(src, "regression", qs, deltas, nan, None, progress)], None
    if family == "sigmoid":
        kind = "multilabel" if (two_d or label_sep is not None) else "auto"
        return scan_source(src, kind, qs, deltas, nan, label_sep, progress), None
    if two_d and family == "softmax":
        return scan_source(
            src, "multilabel", qs, deltas, nan, None, progress
        ), None  # probability rows
    if (
        isinstance(src, ArraySource)
        and src.array.ndim not in (1,)
        and not (src.array.ndim == 2 and src.array.shape[1] == 1)
    ):
        if src.array.ndim == 0:
            raise HeadstartError("labels must be an array of class labels, got a scalar")
        raise HeadstartError(f"class labels must be 1-D, got an array of shape {src.array.shape}")
    return scan_source(src, "classification", qs, deltas, nan, None, progress), None


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
    exact: bool = True,
    sparse_ids: bool | None = None,
    label_sep: str | None = None,
    header="auto",
    format: str | None = None,
    delimiter: str | None = None,
    label_dtype=None,
    scan_options: dict | None = None,
    **loss_options,
) -> BiasInit:
    """The optimal constant output (the last layer's bias) for ``loss`` and the labels, and
    the loss a model shows at initialisation with it.

    ``labels``: anything :func:`headstart.scan` reads (arrays, tensors, tables with
    ``column=``, files, Dask collections, chunks), or finished statistics from it (or a
    list of them, one per regression output). Arrays: class labels; for ``cross_entropy``
    also (N, C) class-probability rows, soft or one-hot; for BCE 0/1 multi-label rows; or
    real targets, 2-D meaning one output per column.

    ``loss``: a torch name (``cross_entropy``, ``binary_cross_entropy_with_logits``,
    ``mse_loss``, ``l1_loss``, ``huber_loss``, ``smooth_l1_loss``, ``pinball_loss``,
    ``poisson_nll_loss``, ``multi_margin_loss``, ``multiclass_hinge_loss``) or an alias
    (``ce``, ``bce``, ``mse``, ``l1``/``mae``, ``huber``, ``pinball``/``quantile``,
    ``poisson``, ``hinge``, ``crammer_singer``; ``headstart.bias.loss_names()`` lists all).
    ``**loss_options``: that loss's options with torch's names and defaults (``weight``,
    ``label_smoothing``, ``ignore_index``, ``pos_weight``, ``delta``, ``beta``, ``tau``,
    ``margin``, ``p``, ``variant``, ``log_input``, ``full``, ``eps``); an option the loss does
    not take raises TypeError. An explicit ``ignore_index`` must be of the labels' type;
    when it matches no label, ``details["ignore_index_unmatched"]`` says so.

    Outputs: integer labels index them (``num_classes`` outputs, default the class names the
    source carries, else max + 1; unseen classes count 0) and ``classes=`` names them
    (e.g. torchvision's ``ImageFolder.classes``; a ``ClassLabel``'s names are used by
    themselves); integer labels too sparse to index outputs (hashed ids: more than 2^22
    outputs and more than twice the distinct labels; ``sparse_ids=True`` / ``False``
    forces the choice) become one output per id in sorted order, and ``classes`` holds the
    ids. Name labels are sorted, or ordered as ``classes=``. For
    ``binary_cross_entropy_with_logits`` a 2-class column gives one output (positive class =
    the larger label), more classes one-vs-rest outputs; 2-D 0/1 rows and ``label_sep``
    are multi-label, ordered as ``classes=`` when given.

    ``exact``: the L1 / Huber / pinball optimum is an order statistic, which needs a second
    read: a one-pass source (a plain iterator) is refused unless ``exact=False``, which
    returns an estimate (``details["bias_bounds"]``) and an upper bound as
    ``expected_loss``. ``floor``: how outputs with an optimal bias of -inf get a finite one
    (``"pseudocount"``, ``"pseudocount:ALPHA"``, a negative minimum log-probability, or
    None). ``dtype``: of the returned bias (float32). ``nan``, ``progress``, ``label_sep``,
    ``header``, ``format``, ``delimiter`` and ``label_dtype`` (a raw file's element type)
    are :func:`headstart.scan`'s.

    Returns a :class:`BiasInit`. Raises :class:`headstart.HeadstartError` (a ValueError)
    for empty input, a single class, a class count that disagrees with ``num_classes``, and
    option values out of range; ValueError for an unknown loss name.
    """
    plan = prepare(
        loss,
        loss_options,
        floor=floor,
        dtype=dtype,
        num_classes=num_classes,
        classes=classes,
        sparse_ids=sparse_ids,
    )
    spec, requests = plan.spec, plan.requests
    so = dict(scan_options or {})
    label_sep = so.pop("label_sep", label_sep)
    header = so.pop("header", header)
    format = so.pop("format", format)
    delimiter = so.pop("delimiter", delimiter)
    label_dtype = so.pop("dtype", label_dtype)
    if "quantiles" in so and spec.family == "regression":
        requests["quantiles"] = tuple(
            sorted(set(requests.get("quantiles", ())) | {float(q) for q in so.pop("quantiles")})
        )
    so.pop("quantiles", None)
    if so:
        raise TypeError(f"unknown scan_options: {', '.join(sorted(so))}")
    if not isinstance(labels, (str, np.ndarray)) and stats_kind(labels) is not None:
        stats, values = labels, None  # statistics (headstart's, or any with their fields)
    elif (
        isinstance(labels, (list, tuple))
        and labels
        and all(stats_kind(s) == "regression" for s in labels)
    ):
        stats, values = list(labels), None
    elif isinstance(column, (list, tuple)) and isinstance(labels, str):
        if spec.family != "regression":
            raise HeadstartError(
                "several columns of a text file are read as regression outputs; for "
                "multi-label targets put the label set in one column with label_sep="
            )
        stats = [
            scan(
                labels,
                c,
                "regression",
                nan=nan or "raise",
                progress=progress,
                header=header,
                format=format,
                delimiter=delimiter,
                quantiles=requests.get("quantiles", ()),
                huber_delta=requests.get("huber_delta"),
            )
            for c in column
        ]
        values = None
    else:
        src = open_source(
            labels,
            column=column,
            format=format,
            delimiter=delimiter,
            header=header,
            dtype=label_dtype,
        )
        if classes is not None and any(isinstance(c, str) for c in classes):
            src.as_names = frozenset(str(c).strip() for c in classes)
        with src:
            stats, values = _gather(
                src,
                spec,
                nan=nan,
                progress=progress,
                requests=requests,
                label_sep=label_sep,
                exact=exact,
            )
    return plan.finish(stats, values, column)


# --------------------------------------------------------------------------- check_init


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

    ``loss_value_or_logits``: the first loss a training loop reported (a number, a 0-d
    tensor of torch / JAX / TensorFlow, a torch loss that requires grad, a Keras
    ``evaluate()`` result ``[loss, *metrics]`` or ``{"loss": ...}``), or the model's
    outputs for a batch (logits / predictions; tensors that require grad too), in which
    case ``target`` holds that batch's labels (when omitted, ``labels_or_result`` is used
    if it is an array of the same length) and the loss is computed with headstart's own
    losses and the same options. ``labels_or_result``: a :class:`BiasInit` from
    :func:`bias_init`, or anything :func:`bias_init` accepts (then ``loss`` and
    ``**options`` are passed on).

    The tolerance is, unless given, the largest of: three standard errors of a batch mean at
    the optimum (when the batch size is known: from the logits, or ``batch_size=``), 5% of
    the gap between the optimum and the zero-bias value, and 1% of the optimum.

    Returns an :class:`InitCheck`; ``str()`` of it is one sentence, e.g. "first loss 2.3 vs
    optimum 1.37 and uniform 2.3: your output bias is off, use bias_init".
    """
    if isinstance(labels_or_result, BiasInit):
        result = labels_or_result
        if loss is not None and resolve_loss(loss)[0].name != result.loss:
            raise HeadstartError(f"loss={loss!r} but the bias_init result is for {result.loss!r}")
        if options:
            raise TypeError(
                f"options {', '.join(sorted(options))} conflict with a bias_init result; the "
                "result's options are used"
            )
    else:
        result = bias_init(labels_or_result, loss or "cross_entropy", **options)
    x = loss_value_or_logits
    if isinstance(x, (list, tuple)) and not x:
        raise TypeError("loss_value_or_logits is empty: pass the first loss or the logits")
    value = loss_value(x)
    if (
        value is None
        and isinstance(x, (list, tuple))
        and target is None
        and not _same_length(x, labels_or_result)
    ):
        # Keras evaluate(): [loss, *metrics]
        value = loss_value(x[0])
    if value is not None:
        if target is not None:
            raise TypeError("target= is for logits; a loss value needs none")
        return verdict(result, value, batch_size, tolerance)
    try:
        logits = to_numpy(x)
    except ValueError as e:  # ragged lists
        raise TypeError(
            f"loss_value_or_logits is neither a loss nor an array of logits: {e}"
        ) from None
    if logits.dtype.kind not in "fiub":
        raise TypeError(
            "loss_value_or_logits must be the first loss (a number) or logits (an array), "
            f"got {type(x).__name__} of dtype {logits.dtype}"
        )
    if target is None:
        if _same_length(logits, labels_or_result):
            target = labels_or_result
        else:
            raise TypeError("pass target= (the batch's labels) with logits")
    check_width(result, logits)
    t = to_numpy(target)
    observed, b = observed_loss(result, logits, t)
    if batch_size is not None:
        b = batch_size
    return verdict(result, observed, b, tolerance, batch_references(result, logits, t))


def _same_length(x, labels) -> bool:
    """Whether ``labels`` (an array, list or tensor of a batch's labels) lines up with the
    outputs ``x``, so that it can serve as their target."""
    if not (isinstance(labels, (np.ndarray, list, tuple)) or is_torch_tensor(labels)):
        return False
    try:
        n = len(labels)
        return n > 0 and n == len(x)
    except TypeError:
        return False
