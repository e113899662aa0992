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
    """Exact root of psi(b) = sum clip(y - b, -delta, delta), from its breakpoints: psi is
    piecewise linear and non-increasing with kinks at y_i -+ delta, so the root lies on the
    piece between the last breakpoint where psi > 0 and the first where psi < 0 (the
    closed form on that piece), unless psi is flat at zero (the midpoint of the zero set,
    scan's convention)."""
    y = np.sort(np.asarray(y, np.float64))
    n = y.size
    # psi is flat at zero exactly when no value lies within delta of c and the counts
    # balance: n even, c - delta >= the lower middle value, c + delta <= the upper one.
    # Its zero set is then [y_lo + delta, y_hi - delta], whose midpoint is the median.
    if n % 2 == 0 and y[n // 2] - y[n // 2 - 1] >= 2 * delta:
        return float(0.5 * (y[n // 2 - 1] + y[n // 2]))

    def psi(b):
        return np.clip(y - b, -delta, delta).sum()

    knots = np.unique(np.concatenate([y - delta, y + delta]))
    vals = np.array([psi(k) for k in knots])
    pos = knots[vals > 0]
    neg = knots[vals < 0]
    lo = pos.max() if pos.size else knots[0]
    hi = neg.min() if neg.size else knots[-1]
    zero = knots[(vals == 0) & (knots >= lo) & (knots <= hi)]
    if zero.size:
        return float(zero[0])
    # linear between lo and hi: psi(b) = sum(inner y) - k b + delta (above - below)
    b = 0.5 * (lo + hi)
    inner = np.abs(y - b) < delta
    k = inner.sum()
    above = (y >= b + delta).sum()
    below = (y <= b - delta).sum()
    return float((y[inner].sum() + delta * (above - below)) / k)


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
