"""In-memory values to numpy: tensors, arrays and columns of every library, one way.

Nothing here imports torch, jax, pandas, polars or pyarrow: objects are recognised by their
module, so a library that is not installed costs nothing.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._core import HeadstartError

__all__ = ["is_torch_tensor", "library_of", "loss_value", "to_numpy"]


def library_of(obj) -> str:
    """The top-level package an object's type comes from ("numpy", "torch", "pandas", ...)."""
    mod = type(obj).__module__ or ""
    return mod.split(".", 1)[0]


def is_torch_tensor(obj) -> bool:
    return library_of(obj) == "torch" and hasattr(obj, "detach") and hasattr(obj, "dtype")


def _torch_to_numpy(t) -> np.ndarray:
    # Detached and on the CPU, so a tensor that requires grad or lives on a GPU reads the
    # same as its .numpy(); bfloat16 / float16 have no exact numpy twin for bfloat16 and go
    # through float32 (every value of both is exactly a float32).
    import torch

    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.to(torch.float32)
    if t.is_complex():
        raise TypeError("labels and losses must be real numbers, got a complex tensor")
    return t.numpy()


def _pandas_to_numpy(obj) -> np.ndarray:
    """A pandas Series / Index: nullable and Arrow-backed dtypes included (a missing value
    becomes NaN for numbers and None for the rest, which the states count or reject)."""
    dtype = obj.dtype
    if type(dtype).__name__ == "CategoricalDtype":
        # Codes of the categories (-1 is missing): the categories name the classes.
        codes = np.asarray(obj.cat.codes if hasattr(obj, "cat") else obj.codes)
        out = codes.astype(np.float64)
        out[codes < 0] = np.nan
        return out
    if isinstance(dtype, np.dtype):
        return obj.to_numpy()
    kind = getattr(dtype, "kind", "O")
    if kind in "iufb":
        if bool(obj.isna().any()):
            return obj.to_numpy(dtype=np.float64, na_value=np.nan)
        numpy_dtype = getattr(dtype, "numpy_dtype", None)
        return obj.to_numpy(dtype=numpy_dtype) if numpy_dtype is not None else obj.to_numpy()
    return obj.to_numpy(dtype=object, na_value=None)


def _arrow_to_numpy(arr) -> np.ndarray:
    """A pyarrow Array / ChunkedArray: numbers with nulls become float64 with NaN; strings
    and dictionary arrays become object arrays with None for nulls."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        if arr.null_count:
            return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return arr.to_numpy(zero_copy_only=False)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return arr.to_numpy(zero_copy_only=False)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        rows = arr.to_pylist()
        if any(r is None for r in rows):
            raise HeadstartError("a list column holds a null row: every row needs its values")
        return np.asarray(rows, dtype=np.float64) if rows else np.zeros((0, 0))
    raise TypeError(f"cannot read an Arrow column of type {t} as labels")


def to_numpy(obj) -> np.ndarray:
    """``obj`` as a numpy array, whatever library it comes from.

    torch tensors (detached, on the CPU, bfloat16/float16 as float32), JAX and TensorFlow
    arrays (``np.asarray``), pandas Series / Index (nullable dtypes: NaN or None for
    missing; categorical: float codes with NaN for missing), polars Series, pyarrow Arrays
    and ChunkedArrays, lists and scalars."""
    if isinstance(obj, np.ndarray):
        return obj
    lib = library_of(obj)
    if lib == "torch" and is_torch_tensor(obj):
        return _torch_to_numpy(obj)
    if lib == "pandas" and hasattr(obj, "dtype") and hasattr(obj, "to_numpy"):
        return _pandas_to_numpy(obj)
    if lib == "polars" and hasattr(obj, "to_arrow") and hasattr(obj, "dtype"):
        return _arrow_to_numpy(obj.to_arrow())
    if lib == "pyarrow" and hasattr(obj, "type"):
        return _arrow_to_numpy(obj)
    if isinstance(obj, (list, tuple)) and obj and all(is_torch_tensor(x) for x in obj):
        return np.stack([_torch_to_numpy(x) for x in obj])
    return np.asarray(obj)


def loss_value(obj):
    """The first loss a training loop reports, as a float, or None when ``obj`` is not one.

    A Python or numpy number, a 0-d (or one-element) tensor of any library, a torch loss
    that requires grad, a Keras ``evaluate()`` result (``[loss, *metrics]`` or
    ``{"loss": ..., ...}``)."""
    if isinstance(obj, dict):
        if "loss" not in obj:
            raise HeadstartError(
                f"a dict of results needs a 'loss' entry (Keras evaluate(return_dict=True)); "
                f"it has: {', '.join(map(str, obj))}"
            )
        return _as_float(obj["loss"], "the 'loss' entry")
    if isinstance(obj, bool):
        raise TypeError("the first loss must be a number, got a bool")
    if isinstance(obj, numbers.Real):
        return float(obj)
    if isinstance(obj, (list, tuple)) and obj and all(_scalar_like(x) for x in obj):
        return None  # a list of numbers: logits or [loss, *metrics]; the caller decides
    a = to_numpy(obj) if not isinstance(obj, (list, tuple)) else None
    if a is not None and a.ndim == 0:
        return _as_float(a, "the first loss")
    return None


def _scalar_like(x) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, numbers.Real):
        return True
    return library_of(x) != "builtins" and np.ndim(_safe(x)) == 0


def _safe(x):
    try:
        return to_numpy(x)
    except Exception:  # an object numpy cannot read is not a scalar
        return np.empty((0,))


def _as_float(x, what) -> float:
    a = to_numpy(x)
    if a.size != 1:
        raise TypeError(f"{what} must be one number, got an array of shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{what} must be a number, got {a.dtype}")
    v = float(a.reshape(-1)[0])
    return v if not math.isnan(v) else math.nan
