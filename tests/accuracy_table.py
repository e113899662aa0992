"""The accuracy headstart holds, in ulps of the result dtype, against an extended-precision
reference: float64 for float32 results, numpy's longdouble (x87 80-bit: 11 more bits than
float64) for float64 results. At least 1e6 elements per (dtype, class count).

``python tests/accuracy_table.py`` prints the README's table; tests/test_accuracy.py
holds the bounds. Inputs: logits N(0, 3^2), one row in eight scaled by 10 (confident
rows, where the largest probability is close to 1 and the loss is tiny).
"""

from __future__ import annotations

import headstart as hs
import numpy as np

CLASSES = (2, 10, 100, 1000, 40000)
ELEMENTS = 1_000_000


def _ref_dtype(dtype):
    return np.float64 if dtype == np.float32 else np.longdouble


def _ulps(got, ref, dtype, scale=None):
    """|got - ref| in ulps of ref rounded to dtype (np.spacing; subnormals included), or
    in ulps of ``scale`` where the result is a difference that cancels."""
    r = (ref if scale is None else scale).astype(dtype)
    sp = np.abs(np.spacing(r)).astype(np.float64)
    err = np.abs(got.astype(_ref_dtype(dtype)) - ref).astype(np.float64)
    fin = np.isfinite(ref) & (sp > 0)
    return err[fin] / sp[fin]


def logits(c, dtype, seed=0):
    rng = np.random.default_rng(seed + c)
    n = max(1, -(-ELEMENTS // c))
    x = rng.normal(scale=3.0, size=(n, c))
    x[::8] *= 10.0
    return x.astype(dtype), rng.integers(0, c, size=n)


def reference(x, t):
    """log_softmax, softmax, logsumexp, CE loss (per row) and its gradient ('sum'), in the
    reference precision, with one max entry (or the target) left out of each sum so that
    the reference keeps relative accuracy where the result is tiny."""
    xr = x.astype(_ref_dtype(x.dtype))
    rows = np.arange(len(t))
    k = xr.argmax(axis=1)
    m = xr[rows, k][:, None]
    e = np.exp(xr - m)
    e[rows, k] = 0.0
    s = e.sum(axis=1, keepdims=True)  # without one max entry
    lse = m + np.log1p(s)
    ls = (xr - m) - np.log1p(s)
    sm = np.exp(ls)
    u = np.exp(xr - xr[rows, t][:, None])
    u[rows, t] = 0.0
    q = u.sum(axis=1)  # sum over the other classes of e^(x_i - x_t)
    loss = np.log1p(q)
    g = sm.copy()
    g[rows, t] = -q / (1.0 + q)
    # logsumexp = m + log1p(s) cancels when m < 0 is close to -log1p(s) (two classes,
    # logits near 0): its error is measured in ulps of the larger term, which is what
    # any float evaluation of the sum can hold.
    lse_scale = np.maximum(np.abs(m), np.log1p(s))[:, 0]
    return ls, sm, lse[:, 0], lse_scale, loss, g


def measure(c, dtype):
    x, t = logits(c, dtype)
    ls, sm, lse, lse_scale, loss, g = reference(x, t)
    got_loss, got_g = hs.cross_entropy(x, t, reduction="none", return_grad=True)
    rows = {
        "softmax": _ulps(hs.softmax(x, axis=-1), sm, dtype),
        "log_softmax": _ulps(hs.log_softmax(x, axis=-1), ls, dtype),
        "logsumexp": _ulps(hs.logsumexp(x, axis=-1), lse, dtype, lse_scale),
        "cross_entropy loss": _ulps(got_loss, loss, dtype),
        "cross_entropy grad": _ulps(got_g, g, dtype),
    }
    return {k: (float(v.max()), float(np.quantile(v, 0.999))) for k, v in rows.items()}


def table():
    out = {}
    for dtype in (np.float32, np.float64):
        for c in CLASSES:
            out[(np.dtype(dtype).name, c)] = measure(c, dtype)
    return out


if __name__ == "__main__":
    print(f"simd level: {hs.simd_level()}")
    res = table()
    names = list(next(iter(res.values())))
    print("| dtype | C | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for (dt, c), r in res.items():
        cells = " | ".join(f"{r[k][0]:.2f} / {r[k][1]:.2f}" for k in names)
        print(f"| {dt} | {c} | {cells} |")
