"""The result of bias_init: the bias, the loss at init, and helpers to set a layer's bias."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._core import HeadstartError
from .floor import FloorInfo
from .fmt import finite_or_none, fmt_opts, json_value, jsonable, same_value, short_float, short_list
from .losses import SPECS

__all__ = ["BiasInit"]


@dataclass(repr=False)
class BiasInit:
    """The optimal constant output for a loss and a set of labels.

    Attributes: ``bias`` (one entry per output, ``dtype`` float32 by default),
    ``expected_loss`` (the mean loss of a model that outputs exactly ``bias``: what the
    first loss should be), ``zero_bias_loss`` (the same with a zero bias, the usual init;
    None when the statistics cannot give it, e.g. L1 on a file of mixed-sign targets),
    ``optimal_loss`` (the unfloored optimum), ``classes`` (class labels or output names in
    bias order; None for one regression output), ``counts`` (per class, classification),
    ``n`` (labels used), ``stats`` (the statistics behind it), ``loss`` (canonical name),
    ``options`` (the loss options used), ``floor`` (:class:`FloorInfo`), ``details``
    (loss-specific extras: per-output losses, the hinge's class levels, ignored labels...).
    """

    bias: np.ndarray
    expected_loss: float
    zero_bias_loss: float | None
    optimal_loss: float
    loss: str
    options: dict
    floor: FloorInfo
    classes: np.ndarray | None
    counts: np.ndarray | None
    n: int
    stats: Any
    family: str
    details: dict = field(default_factory=dict)

    @property
    def gain(self) -> float | None:
        """``zero_bias_loss - expected_loss``: what the init saves at step 0."""
        if self.zero_bias_loss is None:
            return None
        return self.zero_bias_loss - self.expected_loss

    @property
    def frequencies(self) -> np.ndarray | None:
        """Class frequencies F aligned with ``classes`` (classification only)."""
        if self.counts is None:
            return None
        return self.counts / max(self.n, 1)

    def to_numpy(self) -> np.ndarray:
        """A copy of the bias as a numpy array (e.g. ``keras.initializers.Constant``, JAX)."""
        return np.array(self.bias, copy=True)

    def __len__(self) -> int:
        return int(self.bias.shape[0])

    def __repr__(self) -> str:
        with np.printoptions(precision=4, threshold=12, edgeitems=4, suppress=True):
            b = np.array2string(np.asarray(self.bias), separator=", ")
        lines = [f"BiasInit(loss={self.loss!r}, n={self.n}, outputs={len(self)},"]
        defaults = SPECS[self.loss].options
        opts = {
            k: v
            for k, v in self.options.items()
            if v is not None and not (k in defaults and same_value(defaults[k], v))
        }
        if opts:
            lines.append(f"  options={fmt_opts(opts)},")
        if self.classes is not None:
            lines.append(f"  classes=[{short_list(self.classes, 8)}],")
        lines.append(f"  bias={b} ({np.asarray(self.bias).dtype}),")
        tail = f"  expected_loss={self.expected_loss:.6g}"
        if self.zero_bias_loss is not None:
            tail += f" (zero bias: {self.zero_bias_loss:.6g}, gain {self.gain:.4g})"
        lines.append(tail + ",")
        for note in self.notes():
            lines.append(f"  note: {note}")
        lines.append(f"  floor: {self.floor})")
        return "\n".join(lines)

    @property
    def skipped(self) -> int:
        """Values the ``nan='skip'`` policy left out (NaN / empty), over every statistic."""
        stats = self.stats if isinstance(self.stats, list) else [self.stats]
        return int(sum(getattr(s, "skipped", 0) or 0 for s in stats))

    def to_dict(self) -> dict:
        """JSON-ready summary (non-finite numbers become None)."""
        return {
            "loss": self.loss,
            "options": {k: json_value(v) for k, v in self.options.items()},
            "n": self.n,
            "skipped": self.skipped,
            "classes": None if self.classes is None else [jsonable(c) for c in self.classes],
            "counts": None if self.counts is None else [int(c) for c in self.counts],
            "bias": [finite_or_none(v) for v in np.asarray(self.bias, np.float64)],
            "dtype": str(np.asarray(self.bias).dtype),
            "expected_loss": finite_or_none(self.expected_loss),
            "zero_bias_loss": finite_or_none(self.zero_bias_loss),
            "optimal_loss": finite_or_none(self.optimal_loss),
            "floor": self.floor.to_dict(),
            "details": {k: json_value(v) for k, v in self.details.items()},
        }

    def torch_line(
        self, layer: str = "model.fc", *, inline_max: int = 32, path: str = "bias.npy"
    ) -> str:
        """A ready-to-paste PyTorch line that sets ``layer``'s bias.

        Up to ``inline_max`` outputs the values are written inline (shortest float32 repr);
        beyond that the line loads ``path`` (write it with ``np.save`` or the CLI's
        ``--out``)."""
        if len(self) > inline_max:
            vals = f"torch.from_numpy(np.load({str(path)!r}))"
        else:
            vals = "torch.tensor([" + ", ".join(short_float(v) for v in self.bias) + "])"
        return f"with torch.no_grad(): {layer}.bias.copy_({vals})"

    def notes(self) -> list[str]:
        """What a user should know about how the labels were read and the outputs laid out
        (sparse ids, an ignore_index that matched nothing, a header decision, an estimate)."""
        out = [
            self.details[k]
            for k in ("sparse_ids", "ignore_index_unmatched", "approximate")
            if k in self.details
        ]
        stats = self.stats if isinstance(self.stats, list) else [self.stats]
        for s in stats:
            for note in getattr(s, "notes", ()):
                if note not in out:
                    out.append(note)
        return out

    def apply_to(self, layer):
        """Set ``layer``'s bias to this result in place and return ``layer``.

        ``layer`` may be a torch module with a ``.bias`` (``nn.Linear``, ``nn.Conv*``), a
        tensor or parameter, a Keras layer or variable (``.assign``), a numpy array, or any
        object whose ``.bias`` is one of those (or has a ``.data`` numpy array / ``copy_``).
        torch is imported only when the target is a torch tensor. Raises
        :class:`HeadstartError` when the sizes differ and TypeError for immutable targets
        (JAX arrays: use ``to_numpy()``)."""
        target = layer.bias if hasattr(layer, "bias") else layer
        if target is None:
            raise HeadstartError(f"{type(layer).__name__} has no bias (bias=None / bias=False)")
        size = _size_of(target)
        if size != len(self):
            raise HeadstartError(
                f"the layer's bias has {size} entries but bias_init computed {len(self)} "
                f"({self._what()}): check num_classes / the output layer"
            )
        values = np.asarray(self.bias)
        if is_torch_tensor(target):
            import torch

            with torch.no_grad():
                src = torch.as_tensor(values.astype(np.float64)).to(
                    dtype=target.dtype, device=target.device
                )
                target.copy_(src.reshape(target.shape))
            return layer
        if isinstance(target, np.ndarray):
            _copy_into_array(target, values)
            return layer
        data = getattr(target, "data", None)
        if isinstance(data, np.ndarray):
            _copy_into_array(data, values)
            return layer
        if hasattr(target, "copy_"):
            shape = getattr(target, "shape", values.shape)
            target.copy_(values.reshape(tuple(shape)))
            return layer
        if hasattr(target, "assign"):  # keras / tf variables
            shape = getattr(target, "shape", values.shape)
            target.assign(values.reshape(tuple(shape)))
            return layer
        raise TypeError(
            f"cannot set a bias of type {type(target).__name__} in place; use "
            "result.to_numpy() (e.g. JAX: params['bias'] = jnp.asarray(result.bias))"
        )

    def _what(self) -> str:
        if self.classes is not None:
            return f"{len(self.classes)} classes/outputs"
        return "outputs"


def is_torch_tensor(obj) -> bool:
    mod = type(obj).__module__ or ""
    return (mod == "torch" or mod.startswith("torch.")) and hasattr(obj, "copy_")


def _size_of(target) -> int:
    if hasattr(target, "numel") and callable(target.numel):
        return int(target.numel())
    shape = getattr(target, "shape", None)
    if shape is None and isinstance(getattr(target, "data", None), np.ndarray):
        shape = target.data.shape
    if shape is not None:
        return int(np.prod(tuple(shape), dtype=np.int64))
    try:
        return len(target)
    except TypeError:
        raise TypeError(f"cannot tell the size of a bias of type {type(target).__name__}") from None


def _copy_into_array(dst: np.ndarray, values: np.ndarray) -> None:
    if not dst.flags.writeable:
        raise TypeError("the bias array is read-only")
    np.copyto(dst, values.reshape(dst.shape).astype(dst.dtype, copy=False))


# ---------------------------------------------------------------------------- the math
