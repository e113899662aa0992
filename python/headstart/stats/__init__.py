"""Label statistics: results, mergeable streaming states, and the local scan of a source."""

from .results import ClassificationStats, MultilabelStats, RegressionStats
from .states import ClassCounts, RegressionState

__all__ = [
    "ClassCounts",
    "ClassificationStats",
    "MultilabelStats",
    "RegressionState",
    "RegressionStats",
]
