"""How class labels are typed: one rule for files, arrays, tables and tensors.

A column of class labels holds either numbers or names, decided once the whole column has
been counted:

- integers of any dtype, booleans (0 / 1) and integer-valued floats (``2.0``) are integer
  classes; so is text that reads as one: ``"2"``, ``" 2"``, ``"+2"``, ``"2.0"`` and ``"2e0"``
  are all class 2 (leading zeros are not significant: ``"007"`` is 7; give ``classes=`` to
  keep such codes as names). Integer 4 from an array and ``"4"`` from a file are the same
  class, so states fed from both merge right;
- other text is a class name (surrounding whitespace removed): names sort as strings, or
  follow ``classes=``;
- a column that mixes numbers and names is an error naming one of each, never a silent
  string sort (which would put class 10 between 1 and 2); so is a non-integer number
  (``2.5``) among class labels;
- missing values: empty text, and in a column of numbers the tokens pandas, R and SQL write
  for a missing value (``nan``, ``NaN``, ``NA``, ``N/A``, ``null``, ``None``, ``<NA>``);
  NaN floats and ``None`` objects. They raise unless ``nan="skip"``, which counts them.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .._core import HeadstartError

__all__ = ["NA_TOKENS", "TypedLabels", "type_labels"]

NA_TOKENS = frozenset({"nan", "NaN", "NAN", "NA", "N/A", "n/a", "null", "NULL", "None", "<NA>"})

_INT = re.compile(r"[+-]?[0-9]+\Z")
_NUM = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_I64 = (-(2**63), 2**63 - 1)


class TypedLabels:
    """Classes and counts after the typing rule: ``kind`` is ``"int"`` (``classes`` int64,
    sorted) or ``"str"`` (sorted names); ``missing`` counts NA tokens dropped from a
    numeric column."""

    def __init__(self, kind, classes, counts, missing=0, missing_text=None):
        self.kind = kind
        self.classes = classes
        self.counts = counts
        self.missing = missing
        self.missing_text = missing_text  # the first missing label's text, to locate it


def _read_int(text: str):
    """The integer a label's text stands for, or None (a name); raises ValueError for a
    number that is not an integer."""
    if _INT.match(text):
        return int(text)
    if _NUM.match(text):
        v = float(text)
        if not math.isfinite(v) or v != math.floor(v):
            raise ValueError(text)
        if abs(v) >= 2.0**53:  # an integer, but its decimal form is not exact in a float
            raise OverflowError(text)
        return int(v)
    return None


def _safe_int(text):
    try:
        return _read_int(text)
    except (ValueError, OverflowError):
        return None


def type_labels(ints, int_counts, texts, text_counts, locate=None, as_names=None) -> TypedLabels:
    """Apply the typing rule to integer labels (from arrays) and label texts (from files
    and string arrays), each with counts. ``locate(text)`` returns where a label first
    occurs (", line 7 of train.csv") for error messages, or "".

    ``as_names``: names given by ``classes=``; when every label's text is one of them, a
    column of numbers and names is read as names (``"3"`` and ``"cat"``).

    Raises HeadstartError for a mix of numbers and names or a non-integer number."""
    if as_names is not None and len(texts):
        every = {t.strip() for t in texts if t.strip()} | {str(int(v)) for v in ints}
        if (
            every <= set(as_names)
            and not every <= {str(int(v)) for v in ints}
            and (any(_safe_int(t.strip()) is None for t in texts if t.strip()))
        ):
            named: dict = {}
            for v, c in zip(ints, int_counts):
                named[str(int(v))] = named.get(str(int(v)), 0) + int(c)
            missing = 0
            for t, c in zip(texts, text_counts):
                if t.strip():
                    named[t.strip()] = named.get(t.strip(), 0) + int(c)
                else:
                    missing += int(c)
            keys = sorted(named)
            return TypedLabels(
                "str",
                np.asarray(keys),
                np.asarray([named[k] for k in keys], np.int64),
                missing,
                "" if missing else None,
            )
    where = locate or (lambda text: "")
    merged: dict = {}
    for v, c in zip(ints, int_counts):
        merged[int(v)] = merged.get(int(v), 0) + int(c)
    names: dict = {}
    first_number = None
    missing = 0
    na_seen = None
    for t, c in zip(texts, text_counts):
        s = t.strip()
        if not s:
            missing += int(c)
            na_seen = na_seen or t
            continue
        try:
            v = _read_int(s)
        except OverflowError:
            raise HeadstartError(
                f"class label {s!r}{where(t)} is too large to be read exactly as an integer "
                "from a float form (|label| >= 2**53): write ids as plain integers, or pass "
                "classes=[...] to read every label as a name"
            ) from None
        except ValueError:
            raise HeadstartError(
                f"class label {s!r}{where(t)} is a number but not an integer: class labels "
                "must be integers or names (for real-valued targets use a regression loss, "
                "or kind='regression')"
            ) from None
        if v is None:
            names[s] = names.get(s, 0) + int(c)
            continue
        if not _I64[0] <= v <= _I64[1]:
            raise HeadstartError(
                f"class label {s!r}{where(t)} does not fit in int64; pass classes=[...] "
                "(--classes) to read every label as a name"
            )
        if first_number is None:
            first_number = t
        merged[v] = merged.get(v, 0) + int(c)
    if merged:
        # In a column of numbers, the usual missing-value tokens are missing values.
        for s in [s for s in names if s in NA_TOKENS]:
            missing += names.pop(s)
            na_seen = na_seen or s
    if merged and names:
        name = next(iter(sorted(names)))
        num = first_number if first_number is not None else str(next(iter(merged)))
        raise HeadstartError(
            f"the labels mix numbers and names: {num.strip()!r}{where(num) if first_number else ''} "
            f"is a number and {name!r}{where(name)} is not; a column of class labels holds "
            "either integers or names. Pass classes=[...] (--classes) to list every label "
            "as a name, in output order"
        )
    if names:
        keys = sorted(names)
        return TypedLabels(
            "str",
            np.asarray(keys),
            np.asarray([names[k] for k in keys], np.int64),
            missing,
            na_seen,
        )
    keys = sorted(merged)
    return TypedLabels(
        "int",
        np.asarray(keys, dtype=np.int64),
        np.asarray([merged[k] for k in keys], np.int64),
        missing,
        na_seen,
    )
