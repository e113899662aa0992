"""Small formatting helpers shared by the result objects, the report and the CLI."""

from __future__ import annotations

import math

import numpy as np


def jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def short_list(items, k=6):
    items = [str(jsonable(x)) for x in items]
    return ", ".join(items[:k]) + (f", ... ({len(items)} in all)" if len(items) > k else "")


def same_value(a, b) -> bool:
    try:
        return bool(np.all(np.asarray(a) == np.asarray(b))) and np.shape(a) == np.shape(b)
    except (TypeError, ValueError):
        return False


def fmt_opts(opts):
    parts = []
    for k, v in opts.items():
        if isinstance(v, np.ndarray):
            v = np.round(v, 4).tolist()
        parts.append(f"{k}={v!r}")
    return "{" + ", ".join(parts) + "}"


def finite_or_none(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def json_value(v):
    if isinstance(v, np.ndarray):
        return [json_value(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return finite_or_none(v)
    return jsonable(v)


def short_float(v) -> str:
    v = np.float32(v)
    if np.isneginf(v):
        return "-float('inf')"
    if np.isposinf(v):
        return "float('inf')"
    return np.format_float_positional(v, unique=True, trim="-")
