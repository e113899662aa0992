"""headstart: start your output layer right, and do the math at the end of every
classifier fast and exactly on CPU.

Kernels (drop-ins for ``scipy.special``): :func:`softmax`, :func:`log_softmax`,
:func:`logsumexp`.

Losses (torch.nn.functional names and semantics, fused with their gradient):
:func:`cross_entropy`, :func:`binary_cross_entropy_with_logits`, :func:`l1_loss`,
:func:`mse_loss`, :func:`huber_loss`, :func:`smooth_l1_loss`, :func:`pinball_loss`,
:func:`poisson_nll_loss`, :func:`multi_margin_loss`, :func:`multiclass_hinge_loss`.

Labels: :func:`scan` (statistics of any source: arrays, tensors, tables, files, Dask),
:func:`bias_init` (the optimal output bias and the loss at init), :func:`check_init` (a
model's first loss against it), the streaming states :class:`RegressionState` and
:class:`ClassCounts`; every source goes through :mod:`headstart.sources`.

Runtime: :func:`set_num_threads` / :func:`get_num_threads` (default: ``RAYON_NUM_THREADS``
or the CPU count), :func:`simd_level` (``HEADSTART_SIMD=scalar|avx2|avx512`` forces a
lower instruction set at import).
"""

from __future__ import annotations

from . import _core
from ._core import (
    HeadstartError,
    available_simd_levels,
    get_num_threads,
    set_num_threads,
    simd_level,
)
from ._losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    multi_margin_loss,
    multiclass_hinge_loss,
    pinball_loss,
    poisson_nll_loss,
    quantile_loss,
    smooth_l1_loss,
)
from ._ops import log_softmax, logsumexp, softmax
from .api import bias_init, check_init, scan
from .bias import BiasInit, InitCheck, loss_names
from .stats import (
    ClassCounts,
    ClassificationStats,
    MultilabelStats,
    RegressionState,
    RegressionStats,
)

__version__ = "0.1.0"


def _check_environment() -> None:
    """Say so when an environment setting cannot be honoured (never ignore it silently)."""
    import os
    import warnings

    v = os.environ.get("HEADSTART_SIMD")
    if v is not None and v.strip():
        want = _core.parse_simd_level(v)  # the core's own names for the levels
        if want is None:
            warnings.warn(
                f"HEADSTART_SIMD={v!r} is not a level (scalar, avx2 or avx512): ignored, "
                f"running at {simd_level()}",
                RuntimeWarning,
                stacklevel=3,
            )
        elif want != simd_level():
            warnings.warn(
                f"HEADSTART_SIMD={v!r}: this CPU lacks it, running at {simd_level()}",
                RuntimeWarning,
                stacklevel=3,
            )
    t = os.environ.get("RAYON_NUM_THREADS", "").strip()
    if t:
        try:
            ok = int(t) >= 0
        except ValueError:
            ok = False
        if not ok:
            warnings.warn(
                f"RAYON_NUM_THREADS={t!r} is not a thread count: ignored, using "
                f"{get_num_threads()} threads",
                RuntimeWarning,
                stacklevel=3,
            )
        elif int(t) > get_num_threads() and int(t) > 0:
            warnings.warn(
                f"RAYON_NUM_THREADS={t} is above headstart's cap: using {get_num_threads()} "
                "threads (8 per CPU, at least 64)",
                RuntimeWarning,
                stacklevel=3,
            )


_check_environment()

__all__ = [
    "BiasInit",
    "ClassCounts",
    "ClassificationStats",
    "HeadstartError",
    "InitCheck",
    "MultilabelStats",
    "RegressionState",
    "RegressionStats",
    "available_simd_levels",
    "bias_init",
    "binary_cross_entropy_with_logits",
    "check_init",
    "cross_entropy",
    "get_num_threads",
    "huber_loss",
    "l1_loss",
    "log_softmax",
    "logsumexp",
    "loss_names",
    "mse_loss",
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "pinball_loss",
    "poisson_nll_loss",
    "quantile_loss",
    "scan",
    "set_num_threads",
    "set_simd_level",
    "simd_level",
    "smooth_l1_loss",
    "softmax",
]


def set_simd_level(name: str) -> str:
    """Force the SIMD level ("scalar", "avx2", "avx512"); returns the level now in use.

    A level the CPU lacks is lowered to the best one it has. Meant for testing and
    benchmarking; the default is the best level available.
    """
    return _core.set_simd_level(name)
