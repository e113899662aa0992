"""Independent float64 references for the losses, written from the formulas in
REFERENCE.md d3 (torch semantics). Plain numpy, loops where clarity beats speed.

Each function returns (loss, grad) where loss is reduced as asked and grad is
d(reduced loss)/d(input) ('none': the gradient of the sum).
"""

from __future__ import annotations

import numpy as np


def _lse(row):
    m = np.max(row)
    return m + np.log(np.sum(np.exp(row - m)))


def cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    x = np.asarray(x, np.float64)
    n, c = x.shape
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    eps = label_smoothing
    probs = np.asarray(t).dtype.kind == "f"
    per = np.zeros(n)
    grad = np.zeros_like(x)
    denom = 0.0
    for i in range(n):
        lse = _lse(x[i])
        logp = x[i] - lse
        p = np.exp(logp)
        if probs:
            y = (1 - eps) * np.asarray(t[i], np.float64) + eps / c
            per[i] = -np.sum(w * y * logp)
            grad[i] = p * np.sum(w * y) - w * y
            denom += 1
            continue
        yi = int(t[i])
        if yi == ignore_index:
            continue
        onehot = np.zeros(c)
        onehot[yi] = 1.0
        per[i] = (1 - eps) * w[yi] * (-logp[yi])
        if eps > 0:  # (at eps = 0 a -inf logit would make this 0 * inf)
            per[i] += eps / c * np.sum(w * -logp)
        grad[i] = (1 - eps) * w[yi] * (p - onehot) + eps / c * (p * w.sum() - w)
        denom += w[yi]
    if reduction == "none":
        return per, grad
    if reduction == "sum":
        return per.sum(), grad
    with np.errstate(invalid="ignore", divide="ignore"):
        return per.sum() / denom, grad / denom


def _reduce(per, grad, reduction):
    if reduction == "none":
        return per, grad
    if reduction == "sum":
        return per.sum(), grad
    return per.mean(), grad / per.size


def elementwise(kind, x, y, reduction="mean", **kw):
    x = np.asarray(x, np.float64)
    y = np.broadcast_to(np.asarray(y, np.float64), x.shape)
    r = x - y
    if kind == "l1":
        per, g = np.abs(r), np.sign(r)
    elif kind == "mse":
        per, g = r * r, 2 * r
    elif kind == "huber":
        d = kw.get("delta", 1.0)
        a = np.abs(r)
        per = np.where(a < d, 0.5 * r * r, d * (a - 0.5 * d))
        g = np.clip(r, -d, d)
    elif kind == "smooth_l1":
        b = kw.get("beta", 1.0)
        a = np.abs(r)
        if b == 0:
            per, g = a, np.sign(r)
        else:
            per = np.where(a < b, 0.5 * r * r / b, a - 0.5 * b)
            g = np.where(a < b, r / b, np.sign(r))
    elif kind == "pinball":
        tau = kw.get("tau", 0.5)
        u = y - x
        per = np.maximum(tau * u, (tau - 1) * u)
        g = np.where(u > 0, -tau, np.where(u < 0, 1 - tau, 0.0))
    elif kind == "poisson":
        log_input = kw.get("log_input", True)
        eps = kw.get("eps", 1e-8)
        if log_input:
            per, g = np.exp(x) - y * x, np.exp(x) - y
        else:
            per, g = x - y * np.log(x + eps), 1 - y / (x + eps)
        if kw.get("full", False):
            with np.errstate(divide="ignore", invalid="ignore"):
                st = y * np.log(y) - y + 0.5 * np.log(2 * np.pi * y)
            per = per + np.where(y > 1, st, 0.0)
    elif kind == "bce":
        w = np.broadcast_to(np.asarray(kw.get("weight", 1.0), np.float64), x.shape)
        pw = np.broadcast_to(np.asarray(kw.get("pos_weight", 1.0), np.float64), x.shape)
        # log sigma(x) and log(1 - sigma(x)) written with logaddexp, a different route
        # from the kernel's softplus split.
        log_sig = -np.logaddexp(0, -x)
        log_1m = -np.logaddexp(0, x)
        per = -w * (pw * y * log_sig + (1 - y) * log_1m)
        sig = np.exp(log_sig)
        g = w * (sig * (1 + (pw - 1) * y) - pw * y)
    else:
        raise ValueError(kind)
    return _reduce(per, g, reduction)


def hinge(kind, x, t, p=1, margin=1.0, weight=None, reduction="mean"):
    x = np.asarray(x, np.float64)
    n, c = x.shape
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    per = np.zeros(n)
    grad = np.zeros_like(x)
    for i in range(n):
        y = int(t[i])
        if kind in ("multi_margin", "weston_watkins"):
            div = c if kind == "multi_margin" else 1
            for k in range(c):
                if k == y:
                    continue
                z = margin - x[i, y] + x[i, k]
                if z > 0:
                    per[i] += w[y] * z**p / div
                    gk = w[y] * p * z ** (p - 1) / div
                    grad[i, k] += gk
                    grad[i, y] -= gk
        else:  # crammer_singer
            others = [k for k in range(c) if k != y]
            if not others:
                continue
            k = max(others, key=lambda j: (x[i, j], -j))
            z = margin + x[i, k] - x[i, y]
            if z > 0:
                per[i] = w[y] * z
                grad[i, k] += w[y]
                grad[i, y] -= w[y]
    if reduction == "none":
        return per, grad
    if reduction == "sum":
        return per.sum(), grad
    return per.mean(), grad / n
