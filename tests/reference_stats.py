"""Independent float64 references for the label statistics (numpy, sorting, bisection)."""

from __future__ import annotations

import math

import numpy as np


def mad(v):
    """Mean absolute deviation from np.median, summed with math.fsum (exact rounding)."""
    m = np.median(v)
    return math.fsum(abs(float(x) - m) for x in v) / len(v)


def huber_psi(v, d, c):
    return math.fsum(min(max(float(y) - c, -d), d) for y in v)


def huber_location(v, d):
    """Root of psi by bisection over [min, max] in float64."""
    a, b = float(np.min(v)), float(np.max(v))
    for _ in range(2000):
        m = a + (b - a) / 2
        if m <= a or m >= b:
            break
        if huber_psi(v, d, m) > 0:
            a = m
        else:
            b = m
    return a + (b - a) / 2


def huber_location_ok(v, d, c):
    """c is a root: psi changes sign within a few ulps of c (or psi(c) ~ 0), or c is within
    1e-12 relative of the bisection root."""
    want = huber_location(v, d)
    scale = max(abs(want), 1.0)
    if abs(c - want) <= 1e-12 * scale:
        return True
    eps = 4 * np.spacing(max(abs(c), 1e-300))
    lo, hi = huber_psi(v, d, c - eps), huber_psi(v, d, c + eps)
    return lo >= 0 >= hi or abs(huber_psi(v, d, c)) <= 1e-9 * d * len(v)


def huber_loss(v, d, c):
    with np.errstate(over="ignore"):
        r = np.abs(np.asarray(v, np.float64) - c)
        terms = np.where(r < d, 0.5 * r * r, d * (r - 0.5 * d)).tolist()
    try:
        return math.fsum(terms) / len(v)
    except OverflowError:  # the exact sum exceeds the float range
        return math.inf
