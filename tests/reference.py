"""Independent references for the softmax family: float64 numpy from the formulas, and
mpmath at 120 digits for exact answers on single rows.

120 digits because the exact value of log_softmax at the largest entry is -log1p(s) with s
as small as e^-700: the reference must not round 1 + s itself.
"""

from __future__ import annotations

import mpmath
import numpy as np

MP_DPS = 120


def mp_logsumexp_row(row):
    """(lse, [x_i - lse]) of a 1-D row, as mpmath numbers."""
    with mpmath.workdps(MP_DPS):
        r = [mpmath.mpf(float(v)) for v in row]
        m = max(r)
        lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in r))
        return lse, [v - lse for v in r]


def mp_rel_err(got, want):
    """|got - want| / |want| in mpmath (want = 0: |got|)."""
    with mpmath.workdps(MP_DPS):
        g = mpmath.mpf(float(got))
        return float(abs(g - want) / abs(want)) if want != 0 else float(abs(g))


def logsumexp(a, axis=None):
    """float64 logsumexp by max subtraction (finite input)."""
    a = np.asarray(a, np.float64)
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)), axis=axis)


def log_softmax(x, axis=None):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    z = x - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax(x, axis=None):
    return np.exp(log_softmax(x, axis=axis))
