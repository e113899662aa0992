# Hand-written stub for the Rust extension (checked with mypy.stubtest).
import numpy as np
import numpy.typing as npt

__all__ = [
    "HeadstartError",
    "available_simd_levels",
    "cross_entropy",
    "elementwise_loss",
    "get_num_threads",
    "hinge_loss",
    "logsumexp_rows",
    "rowwise",
    "set_num_threads",
    "set_simd_level",
    "simd_level",
]

class HeadstartError(ValueError): ...

def rowwise(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    out: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    n: int,
    log: bool,
) -> None: ...
def logsumexp_rows(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    out: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    n: int,
) -> None: ...
def simd_level() -> str: ...
def available_simd_levels() -> list[str]: ...
def set_simd_level(name: str) -> str: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def cross_entropy(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    c: int,
    target: npt.NDArray[np.int64] | npt.NDArray[np.float32] | npt.NDArray[np.float64],
    probs: bool,
    weight: list[float] | None,
    ignore_index: int,
    label_smoothing: float,
    reduction: str,
    grad: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
) -> tuple[float, npt.NDArray[np.float64] | None]: ...
def elementwise_loss(
    kind: str,
    param: float,
    full: bool,
    eps: float,
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    y: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    weight: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None,
    pos_weight: list[float] | None,
    reduction: str,
    per: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
    grad: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
) -> float: ...
def hinge_loss(
    kind: str,
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    c: int,
    target: npt.NDArray[np.int64],
    p: int,
    margin: float,
    weight: list[float] | None,
    reduction: str,
    grad: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
) -> tuple[float, npt.NDArray[np.float64] | None]: ...
