# Hand-written stub for the Rust extension (checked with mypy.stubtest).
from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ClassState",
    "HeadstartError",
    "RegState",
    "_panic_for_tests",
    "available_simd_levels",
    "parse_simd_level",
    "cross_entropy",
    "elementwise_loss",
    "get_num_threads",
    "hinge_loss",
    "logsumexp_rows",
    "raw_info",
    "rowwise",
    "scan_classes",
    "scan_raw_classes",
    "scan_regression",
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
def parse_simd_level(name: str) -> str | None: ...
def set_simd_level(name: str) -> str: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def _panic_for_tests(on_pool: bool) -> None: ...
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

@final
class RegState:
    def __new__(
        cls, probs: list[float], deltas: list[float], collect_max: int | None = None
    ) -> RegState: ...
    def update(self, x: npt.NDArray[np.float64]) -> None: ...
    def merge(self, other: RegState) -> None: ...
    def finish_pass(self) -> bool: ...
    def fresh(self) -> RegState: ...
    @property
    def pass_number(self) -> int: ...
    @property
    def done(self) -> bool: ...
    def moments(self) -> tuple[int, float, float, float, float] | None: ...
    def zero_losses(self) -> tuple[float, float, list[float]] | None: ...
    def order_stat(self, k: int) -> float | None: ...
    def order_stat_bounds(self, k: int) -> tuple[float, float, float, int] | None: ...
    def dev_sums(self, q: float) -> tuple[int, float, int, int, float]: ...
    def huber(self, delta: float) -> tuple[float | None, float, float] | None: ...
    def huber_sum(self, delta: float, c: float) -> float: ...
    def requests(self) -> tuple[list[float], list[float]]: ...
    def info(self) -> tuple[int, int, int, str]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(b: bytes) -> RegState: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...

@final
class ClassState:
    def __new__(cls) -> ClassState: ...
    def update_int(self, x: npt.NDArray[np.int64]) -> None: ...
    def add_str(self, labels: list[str], counts: list[int]) -> None: ...
    def add_rows(self, n: int) -> None: ...
    def merge(self, other: ClassState) -> None: ...
    def int_counts(self) -> tuple[list[int], list[int]]: ...
    def str_counts(self) -> tuple[list[str], list[int]]: ...
    @property
    def rows(self) -> int: ...
    def info(self) -> tuple[int, int, int, str]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(b: bytes) -> ClassState: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...

def scan_regression(
    path: str,
    fmt: str,
    gz: bool,
    delimiter: str | None,
    header: bool,
    column: int | str | None,
    skip_nan: bool,
    probs: list[float],
    deltas: list[float],
    progress: object | None = None,
) -> RegState: ...
def scan_classes(
    path: str,
    fmt: str,
    gz: bool,
    delimiter: str | None,
    header: bool,
    column: int | str | None,
    skip_nan: bool,
    multilabel_sep: str | None = None,
    progress: object | None = None,
) -> ClassState: ...
def scan_raw_classes(
    path: str,
    dtype: str | None = None,
    header: str = "auto",
    progress: object | None = None,
) -> ClassState: ...
def raw_info(
    path: str, dtype: str | None = None, header: str = "auto"
) -> tuple[str, int, int, int, str, int]: ...
