"""Test scaffolding: statistics objects with the fields of ``headstart.scan``'s results,
computed in plain numpy (float64, in memory). They let the bias_init tests feed exact,
independently computed statistics, and tell the math apart from the scanner."""

from __future__ import annotations

import numpy as np


class ClassStats:
    def __init__(self, labels):
        y = np.asarray(labels).reshape(-1)
        self.classes, counts = np.unique(y, return_counts=True)
        self.counts = counts.astype(np.int64)
        self.n = int(y.size)
        self.frequencies = self.counts / max(self.n, 1)
        self.skipped = 0


class MultiLabelStats:
    def __init__(self, rows):
        y = np.asarray(rows, np.float64)
        self.n = int(y.shape[0])
        self.classes = np.arange(y.shape[1])
        self.positives = y.sum(axis=0)
        self.rates = self.positives / max(self.n, 1)
        self.skipped = 0


def huber_location(y, delta):
    """Exact root of sum clip(y - b, -delta, delta): bisection, then the closed form on the
    linear piece that holds the root (the midpoint of the zero set when psi is flat there)."""
    y = np.sort(np.asarray(y, np.float64))

    def psi(b):
        return np.clip(y - b, -delta, delta).sum()

    lo, hi = y[0], y[-1]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if psi(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 4 * np.finfo(float).eps * max(1.0, abs(mid)):
            break
    b = 0.5 * (lo + hi)
    for _ in range(50):
        inner = np.abs(y - b) < delta
        k = inner.sum()
        if k == 0:  # psi is flat at 0 here: the midpoint of the zero set (scan's convention)
            lo = (y[y <= b - delta] + delta).max()
            hi = (y[y >= b + delta] - delta).min()
            return float(0.5 * (lo + hi))
        above = (y >= b + delta).sum()
        below = (y <= b - delta).sum()
        nb = (y[inner].sum() + delta * (above - below)) / k
        if nb == b:
            break
        b = nb
    return float(b)


def huber(r, delta):
    a = np.abs(r)
    return np.where(a < delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def pinball(u, tau):
    return np.maximum(tau * u, (tau - 1) * u)


class RegressionStats:
    def __init__(self, values):
        y = np.asarray(values, np.float64).reshape(-1)
        self._y = np.sort(y)
        self.n = int(y.size)
        self.mean = float(y.mean()) if y.size else float("nan")
        self.var = float(y.var()) if y.size else float("nan")
        self.min = float(self._y[0]) if y.size else float("nan")
        self.max = float(self._y[-1]) if y.size else float("nan")
        if y.size:
            self.median = float(np.median(y))
            self.median_low = float(self._y[(self.n - 1) // 2])
            self.median_high = float(self._y[self.n // 2])
            self.mad = float(np.mean(np.abs(y - self.median)))
        self.skipped = 0
        self.exact = True

    def quantile(self, q, method="linear"):
        return float(np.quantile(self._y, q, method=method))

    def huber_location(self, delta):
        return huber_location(self._y, delta)

    def huber_loss(self, delta):
        return float(huber(self._y - self.huber_location(delta), delta).mean())

    def pinball_loss(self, tau):
        q = self.quantile(tau, method="inverted_cdf")
        return float(pinball(self._y - q, tau).mean())
