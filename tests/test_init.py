"""bias_init / check_init: every loss's bias and expected loss against the closed forms, the
mean loss of the constant evaluated by headstart's own loss kernels, and brute-force
minimisation over constants (scipy.optimize) on random label sets; the hinge LP against
scipy.optimize.linprog; floors, result helpers, apply_to, check_init verdicts, bad input.

The math tests feed statistics computed in numpy (tests/label_stats.py) so a failure points
at the formulas, not the scanner; the end-to-end tests go through headstart.scan."""

from __future__ import annotations

import json
import math

import headstart as hs
import label_stats as ls
import numpy as np
import pytest
from headstart.bias.hinge import ww_levels as _ww_levels
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize


def tile(bias, n):
    return np.tile(np.asarray(bias, np.float64), (n, 1))


def entropy(f):
    f = np.asarray(f, np.float64)
    f = f[f > 0]
    return float(-(f * np.log(f)).sum())


# strategies: label sets with 2..8 classes, some possibly absent
@st.composite
def class_labels(draw, min_classes=2, max_classes=8, max_n=300):
    c = draw(st.integers(min_classes, max_classes))
    n = draw(st.integers(c, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(c, draw(st.sampled_from([0.3, 1.0, 5.0]))))
    y = rng.choice(c, size=n, p=p)
    y[:2] = [0, 1]  # at least two classes present
    return y, c


def brute_min(fun, jac, x0):
    r = optimize.minimize(fun, x0, jac=jac, method="BFGS", options={"gtol": 1e-10})
    return r.fun, r.x


# ---------------------------------------------------------------- softmax cross-entropy


@settings(max_examples=40, deadline=None)
@given(class_labels())
def test_ce_closed_form_kernel_and_brute_force(lab):
    y, c = lab
    r = hs.bias_init(ls.ClassStats(y), "cross_entropy", num_classes=c)
    counts = np.bincount(y, minlength=c)
    f = counts / y.size
    seen = counts > 0
    np.testing.assert_allclose(r.bias[seen], np.log(f[seen]), rtol=1e-6)
    assert r.optimal_loss == pytest.approx(entropy(f), rel=1e-12)
    assert r.zero_bias_loss == pytest.approx(math.log(c), rel=1e-12)
    # the expected loss is the mean loss of the (floored) constant, by headstart's kernel
    kernel = hs.cross_entropy(tile(r.bias.astype(np.float64), y.size), y)
    assert r.expected_loss == pytest.approx(float(kernel), rel=1e-6)
    # nothing beats it by more than the floor's cost
    x = np.zeros(c)

    def fun(b):
        return float(hs.cross_entropy(tile(b, y.size), y))

    def jac(b):
        return hs.cross_entropy(tile(b, y.size), y, return_grad=True)[1].sum(axis=0)

    best, _ = brute_min(fun, jac, x)
    assert r.optimal_loss <= best + 1e-7
    assert r.expected_loss - r.floor.cost == pytest.approx(r.optimal_loss, abs=1e-12)
    if seen.all():
        assert r.expected_loss == pytest.approx(best, abs=1e-7)
        assert r.floor.classes == ()


@pytest.mark.parametrize("c", [2, 3, 10, 1000])
def test_balanced_is_log_c(c):
    y = np.repeat(np.arange(c), 7)
    r = hs.bias_init(ls.ClassStats(y), "ce")
    assert r.expected_loss == pytest.approx(math.log(c), rel=1e-14)
    assert r.zero_bias_loss == pytest.approx(math.log(c), rel=1e-14)
    assert r.gain == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(r.bias, np.full(c, -math.log(c), np.float32), rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    class_labels(),
    st.floats(0.0, 0.9),
    st.integers(0, 2**32 - 1),
)
def test_ce_weight_and_smoothing_against_kernel_and_brute_force(lab, eps, seed):
    y, c = lab
    w = np.random.default_rng(seed).uniform(0.2, 3.0, c)
    r = hs.bias_init(
        ls.ClassStats(y), "cross_entropy", num_classes=c, weight=w, label_smoothing=eps
    )
    f = np.bincount(y, minlength=c) / y.size
    a = w * ((1 - eps) * f + eps / c)
    assert r.optimal_loss == pytest.approx(a.sum() / np.dot(w, f) * entropy(a / a.sum()), rel=1e-12)

    def fun(b):
        return float(hs.cross_entropy(tile(b, y.size), y, weight=w, label_smoothing=eps))

    def jac(b):
        g = hs.cross_entropy(tile(b, y.size), y, weight=w, label_smoothing=eps, return_grad=True)
        return g[1].sum(axis=0)

    assert r.expected_loss == pytest.approx(fun(r.bias.astype(np.float64)), rel=1e-6)
    best, _ = brute_min(fun, jac, np.zeros(c))
    assert r.optimal_loss <= best + 1e-7
    assert r.zero_bias_loss == pytest.approx(fun(np.zeros(c)), rel=1e-10)
    if (a > 0).all():
        assert r.expected_loss == pytest.approx(best, abs=1e-7)
        np.testing.assert_allclose(
            hs.softmax(r.bias.astype(np.float64)), a / a.sum(), rtol=1e-6, atol=1e-9
        )


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(3, 80), st.integers(0, 2**32 - 1), st.floats(0.0, 0.5))
def test_ce_probability_targets(c, n, seed, eps):
    rng = np.random.default_rng(seed)
    t = rng.dirichlet(np.full(c, 0.5), size=n)
    w = rng.uniform(0.3, 2.0, c)
    r = hs.bias_init(t, "ce", weight=w, label_smoothing=eps)  # 2-D rows: probabilities
    assert r.details["probability_targets"]

    def fun(b):
        return float(hs.cross_entropy(tile(b, n), t, weight=w, label_smoothing=eps))

    def jac(b):
        g = hs.cross_entropy(tile(b, n), t, weight=w, label_smoothing=eps, return_grad=True)
        return g[1].sum(axis=0)

    # 'mean' over probability targets divides by N: (sum w a) H(p*), a = (1-eps) F + eps/C
    a = (1 - eps) * t.mean(axis=0) + eps / c
    pstar = w * a / np.dot(w, a)
    assert r.expected_loss == pytest.approx(np.dot(w, a) * entropy(pstar), rel=1e-9)
    assert r.expected_loss == pytest.approx(fun(r.bias.astype(np.float64)), rel=1e-6)
    best, _ = brute_min(fun, jac, np.zeros(c))
    assert r.expected_loss == pytest.approx(best, abs=1e-7)
    assert r.zero_bias_loss == pytest.approx(fun(np.zeros(c)), rel=1e-10)
    assert hs.check_init(tile(r.bias, n), r, target=t).ok
    with pytest.raises(hs.HeadstartError, match="sum to 1"):
        hs.bias_init(t * 0.5, "ce")


def test_ce_ignore_index_dropped():
    y = np.array([0, 0, 1, -100, -100, 2, 1, 0])
    r = hs.bias_init(ls.ClassStats(y), "ce")
    assert r.details["ignored"] == 2 and r.n == 6
    np.testing.assert_allclose(r.counts, [3, 2, 1])
    assert r.expected_loss == pytest.approx(float(hs.cross_entropy(tile(r.bias, 8), y)), rel=1e-6)


def test_string_classes_and_explicit_order():
    y = np.array(["cat"] * 6 + ["dog"] * 3 + ["emu"])
    r = hs.bias_init(ls.ClassStats(y), "ce")
    assert list(r.classes) == ["cat", "dog", "emu"]
    np.testing.assert_allclose(r.bias, np.log([0.6, 0.3, 0.1]), rtol=1e-6)
    r2 = hs.bias_init(ls.ClassStats(y), "ce", classes=["emu", "dog", "cat", "yak"])
    assert list(r2.counts) == [1, 3, 6, 0]
    assert r2.floor.classes == ("yak",)
    assert r2.bias[3] == pytest.approx(math.log(0.5 / 10), rel=1e-6)


# ------------------------------------------------------------------------------- floors


def test_floor_rules():
    y = np.array([0] * 90 + [1] * 10)
    st_ = ls.ClassStats(y)
    r = hs.bias_init(st_, "ce", num_classes=4)
    assert r.floor.rule == "pseudocount" and r.floor.value == 0.5
    assert r.floor.classes == (2, 3)
    np.testing.assert_allclose(r.bias, np.log([0.9, 0.1, 0.005, 0.005]), rtol=1e-6)
    # softmax of the floored bias is the count vector with 0.5 in the empty cells
    np.testing.assert_allclose(
        hs.softmax(r.bias.astype(np.float64)), np.array([90, 10, 0.5, 0.5]) / 101, rtol=1e-6
    )
    assert r.floor.cost > 0
    assert r.expected_loss == pytest.approx(r.optimal_loss + r.floor.cost)
    r1 = hs.bias_init(st_, "ce", num_classes=4, floor="pseudocount:2")
    assert r1.bias[2] == pytest.approx(math.log(2 / 100), rel=1e-6)
    r2 = hs.bias_init(st_, "ce", num_classes=4, floor=-3.0)
    assert r2.floor.rule == "min_log_prob"
    np.testing.assert_allclose(r2.bias, [math.log(0.9), -2.3025851, -3, -3], rtol=1e-6)
    assert r2.floor.classes == (2, 3)
    r3 = hs.bias_init(st_, "ce", num_classes=4, floor="min_log_prob:-2")
    assert r3.floor.classes == (1, 2, 3)
    r4 = hs.bias_init(st_, "ce", num_classes=4, floor=None)
    assert np.isneginf(r4.bias[2:]).all() and r4.expected_loss == pytest.approx(r4.optimal_loss)
    assert r4.to_dict()["bias"][2] is None
    with pytest.raises(ValueError, match="floor"):
        hs.bias_init(st_, "ce", floor=0.1)
    with pytest.raises(ValueError, match="floor"):
        hs.bias_init(st_, "ce", floor="laplace")
    # smoothing makes every class reachable: nothing to floor
    r5 = hs.bias_init(st_, "ce", num_classes=4, label_smoothing=0.1)
    assert r5.floor.classes == () and np.isfinite(r5.bias).all()


# ------------------------------------------------------------------------- sigmoid / BCE


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(5, 200), st.integers(0, 2**32 - 1), st.booleans())
def test_bce_multilabel_against_kernel_and_brute_force(k, n, seed, weighted):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < rng.uniform(0.05, 0.95, k)).astype(np.float64)
    y[0], y[1] = 1.0, 0.0  # every output has both values
    pw = rng.uniform(0.3, 4.0, k) if weighted else None
    r = hs.bias_init(ls.MultiLabelStats(y), "bce", pos_weight=pw)
    p = y.mean(axis=0)
    w = np.ones(k) if pw is None else pw
    np.testing.assert_allclose(r.bias, np.log(w * p / (1 - p)), rtol=1e-5, atol=1e-6)

    def fun(b):
        return float(hs.binary_cross_entropy_with_logits(tile(b, n), y, pos_weight=pw))

    assert r.expected_loss == pytest.approx(fun(r.bias.astype(np.float64)), rel=1e-6)
    assert r.zero_bias_loss == pytest.approx(fun(np.zeros(k)), rel=1e-10)
    for j in range(k):  # each output separately: brute force in one dimension

        def f1(b, j=j):
            x = np.zeros((n, 1)) + b
            return float(hs.binary_cross_entropy_with_logits(x, y[:, j : j + 1], pos_weight=w[j]))

        best = optimize.minimize_scalar(
            f1, bounds=(-30, 30), method="bounded", options={"xatol": 1e-10}
        ).fun
        assert r.details["per_output_loss"][j] == pytest.approx(best, abs=1e-8)
    if pw is None:
        q = p
        h = -(q * np.log(q) + (1 - q) * np.log1p(-q))
        assert r.expected_loss == pytest.approx(h.mean(), rel=1e-12)


def test_bce_binary_column_and_floors():
    y = np.array([0] * 75 + [1] * 25)
    r = hs.bias_init(ls.ClassStats(y), "bce")
    assert len(r) == 1 and r.details["positive_class"] == 1
    assert r.bias[0] == pytest.approx(math.log(25 / 75), rel=1e-6)
    assert r.zero_bias_loss == pytest.approx(math.log(2))
    # one-vs-rest outputs for more classes
    y3 = np.array([0] * 5 + [1] * 3 + [2] * 2)
    r3 = hs.bias_init(ls.ClassStats(y3), "bce")
    np.testing.assert_allclose(
        r3.bias, np.log(np.array([5, 3, 2]) / np.array([5, 7, 8])), rtol=1e-6
    )
    # an output that never fires gets the pseudocount
    m = np.zeros((10, 2))
    m[:4, 0] = 1
    rm = hs.bias_init(ls.MultiLabelStats(m), "bce")
    assert rm.floor.classes == (1,)
    assert rm.bias[1] == pytest.approx(math.log(0.5 / 10), rel=1e-6)  # p = 0.5 / 10.5
    rm2 = hs.bias_init(ls.MultiLabelStats(m), "bce", floor=-5.0)
    q = 1 / (1 + math.exp(-float(rm2.bias[1])))
    assert q == pytest.approx(math.exp(-5), rel=1e-5)


def test_bce_soft_targets_from_regression_stats():
    t = np.array([0.1, 0.3, 0.2, 0.9])
    r = hs.bias_init(ls.RegressionStats(t), "bce")
    p = t.mean()
    assert r.bias[0] == pytest.approx(math.log(p / (1 - p)), rel=1e-6)
    x = np.full(4, float(r.bias[0]))
    assert r.expected_loss == pytest.approx(
        float(hs.binary_cross_entropy_with_logits(x, t)), rel=1e-6
    )
    with pytest.raises(hs.HeadstartError, match=r"\[0, 1\]"):
        hs.bias_init(ls.RegressionStats([0.5, 2.0]), "bce")


# --------------------------------------------------------------------------- regression

REG = {
    "mse": (lambda x, y: hs.mse_loss(x, y), {}),
    "l1": (lambda x, y: hs.l1_loss(x, y), {}),
    "huber": (lambda x, y, d=0.7: hs.huber_loss(x, y, delta=d), {"delta": 0.7}),
    "smooth_l1": (lambda x, y, b=1.3: hs.smooth_l1_loss(x, y, beta=b), {"beta": 1.3}),
    "pinball": (lambda x, y, t=0.8: hs.pinball_loss(x, y, tau=t), {"tau": 0.8}),
    "pinball_low": (lambda x, y, t=0.1: hs.pinball_loss(x, y, tau=t), {"tau": 0.1}),
}


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(sorted(REG)),
    st.integers(1, 120),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["normal", "skewed", "ties", "positive"]),
)
def test_regression_losses_against_kernel_and_brute_force(name, n, seed, shape):
    rng = np.random.default_rng(seed)
    y = {
        "normal": lambda: rng.normal(2.0, 3.0, n),
        "skewed": lambda: rng.lognormal(0.0, 1.5, n) - 1.0,
        "ties": lambda: rng.integers(-3, 4, n).astype(np.float64),
        "positive": lambda: rng.exponential(2.0, n),
    }[shape]()
    kernel, opts = REG[name]
    loss = name.removesuffix("_low")
    r = hs.bias_init(y, loss, **opts)  # through headstart.scan
    s = hs.bias_init(ls.RegressionStats(y), loss, **opts)  # numpy statistics
    assert r.bias[0] == pytest.approx(s.bias[0], rel=1e-6, abs=1e-6)
    assert r.expected_loss == pytest.approx(s.expected_loss, rel=1e-9, abs=1e-12)

    def fun(b):
        return float(kernel(np.full(n, b, np.float64), y))

    assert r.expected_loss == pytest.approx(fun(float(r.bias[0])), rel=1e-5, abs=1e-6)
    # brute force over constants: the loss is convex in b, minimise on [min, max]
    best = optimize.minimize_scalar(
        fun, bounds=(y.min(), y.max() + 1e-12), method="bounded", options={"xatol": 1e-11}
    ).fun
    assert r.expected_loss <= best + 1e-7 * max(1.0, abs(best))
    assert r.expected_loss == pytest.approx(best, rel=1e-6, abs=1e-8)
    if r.zero_bias_loss is not None:
        assert r.zero_bias_loss == pytest.approx(fun(0.0), rel=1e-9, abs=1e-12)


def test_regression_closed_forms():
    y = np.array([1.0, 2.0, 4.0, 10.0])
    s = ls.RegressionStats(y)
    r = hs.bias_init(s, "mse")
    assert (r.bias[0], r.expected_loss) == (np.float32(4.25), pytest.approx(y.var()))
    assert r.zero_bias_loss == pytest.approx(np.mean(y**2))
    r = hs.bias_init(s, "mae")
    assert r.bias[0] == 3.0 and r.expected_loss == pytest.approx(np.mean(np.abs(y - 3)))
    assert r.zero_bias_loss == pytest.approx(y.mean())  # y >= 0: mean |y| is the mean
    r = hs.bias_init(s, "quantile", tau=0.25)  # n tau = 1: y_(1) is the lowest optimum
    assert r.bias[0] == 1.0
    r = hs.bias_init(s, "huber", delta=1e9)  # huge delta: the mean, half the variance
    assert r.bias[0] == pytest.approx(4.25) and r.expected_loss == pytest.approx(y.var() / 2)
    r = hs.bias_init(s, "smooth_l1", beta=0.0)  # beta 0 is L1
    assert r.bias[0] == 3.0
    r = hs.bias_init(s, "poisson")
    m = y.mean()
    assert r.bias[0] == pytest.approx(math.log(m)) and r.expected_loss == pytest.approx(
        m - m * math.log(m)
    )
    assert r.zero_bias_loss == 1.0
    assert r.expected_loss == pytest.approx(
        float(hs.poisson_nll_loss(np.full(4, math.log(m)), y)), rel=1e-12
    )


def test_mixed_sign_zero_bias_loss_unknown_from_stats():
    y = np.array([-3.0, 1.0, 2.0])
    r = hs.bias_init(ls.RegressionStats(y), "l1")
    assert r.zero_bias_loss is None and "mean |y|" in r.details["zero_bias_loss"]
    assert r.gain is None


def test_poisson_rules():
    zero = ls.RegressionStats(np.zeros(8))
    r = hs.bias_init(zero, "poisson")
    assert r.bias[0] == pytest.approx(math.log(0.5 / 8), rel=1e-6) and r.floor.classes == (0,)
    with pytest.raises(hs.HeadstartError, match=">= 0"):
        hs.bias_init(ls.RegressionStats([-1.0, 2.0]), "poisson")
    with pytest.raises(hs.HeadstartError, match="full=False"):
        hs.bias_init(ls.RegressionStats([1.0, 2.0]), "poisson", full=True)
    with pytest.raises(hs.HeadstartError, match="log_input"):
        hs.bias_init(ls.RegressionStats([1.0, 2.0]), "poisson", log_input=False)


def test_multi_output_regression_from_stats_list():
    rng = np.random.default_rng(3)
    y = rng.normal([0.0, 5.0, -2.0], [1.0, 2.0, 0.5], (200, 3))
    r = hs.bias_init([ls.RegressionStats(y[:, j]) for j in range(3)], "mse")
    np.testing.assert_allclose(r.bias, y.mean(axis=0), rtol=1e-6)
    assert r.expected_loss == pytest.approx(y.var(axis=0).mean())
    assert r.expected_loss == pytest.approx(float(hs.mse_loss(tile(r.bias, 200), y)), rel=1e-6)


# ----------------------------------------------------------------------- hinge (the LP)


LP_TOL = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def ww_linprog(g):
    """min sum_c g_c sum_{k != c} t_ck  s.t.  t_ck >= 1 + s_k - s_c, t >= 0, s_0 = 0."""
    c = len(g)
    pairs = [(i, k) for i in range(c) for k in range(c) if i != k]
    nv = c + len(pairs)
    cost = np.concatenate([np.zeros(c), [g[i] for i, _ in pairs]])
    a = np.zeros((len(pairs), nv))
    for r, (i, k) in enumerate(pairs):
        a[r, k], a[r, i], a[r, c + r] = 1.0, -1.0, -1.0
    bounds = [(0, 0)] + [(None, None)] * (c - 1) + [(0, None)] * len(pairs)
    res = optimize.linprog(
        cost, A_ub=a, b_ub=-np.ones(len(pairs)), bounds=bounds, method="highs", options=LP_TOL
    )
    assert res.status == 0
    return res.fun


def cs_linprog(g):
    """min sum_c g_c t_c  s.t.  t_c >= 1 + s_k - s_c for k != c, t >= 0, s_0 = 0."""
    c = len(g)
    rows = []
    for i in range(c):
        for k in range(c):
            if i != k:
                row = np.zeros(2 * c)
                row[k], row[i], row[c + i] = 1.0, -1.0, -1.0
                rows.append(row)
    cost = np.concatenate([np.zeros(c), g])
    bounds = [(0, 0)] + [(None, None)] * (c - 1) + [(0, None)] * c
    res = optimize.linprog(
        cost,
        A_ub=np.array(rows),
        b_ub=-np.ones(len(rows)),
        bounds=bounds,
        method="highs",
        options=LP_TOL,
    )
    assert res.status == 0
    return res.fun


def ww_dp_quadratic(g):
    """The O(C^2) dynamic programme over cut positions (independent of the hull trick)."""
    gs = np.sort(np.asarray(g, np.float64))[::-1]
    c = len(gs)
    p = np.concatenate([[0.0], np.cumsum(gs)])
    t = p[-1]
    d = np.full(c + 1, np.inf)
    d[0] = 0.0
    for b in range(1, c + 1):
        d[b] = min(d[a] + a * (t - p[a]) + (b - 1) * (p[b] - p[a]) for a in range(b))
    return d[c]


def ww_value(g, s, margin=1.0):
    s = np.asarray(s, np.float64)
    m = np.maximum(0.0, margin + s[None, :] - s[:, None])
    np.fill_diagonal(m, 0.0)
    return float((np.asarray(g) * m.sum(axis=1)).sum())


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 9), st.integers(0, 2**32 - 1), st.sampled_from([0.2, 1.0, 10.0]))
def test_ww_levels_match_linprog(c, seed, conc):
    rng = np.random.default_rng(seed)
    g = rng.dirichlet(np.full(c, conc))
    if seed % 3 == 0:
        g[rng.integers(c)] = 0.0  # an absent class
        g /= g.sum()
    z, value = _ww_levels(g)
    lp = ww_linprog(g)
    assert value == pytest.approx(lp, abs=1e-9)
    assert ww_value(g, z) == pytest.approx(lp, abs=1e-9)
    assert value == pytest.approx(ww_dp_quadratic(g), abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(10, 300), st.integers(0, 2**32 - 1))
def test_ww_hull_matches_quadratic_dp_many_classes(c, seed):
    g = np.random.default_rng(seed).dirichlet(np.full(c, 0.3))
    z, value = _ww_levels(g)
    assert value == pytest.approx(ww_dp_quadratic(g), rel=1e-12, abs=1e-12)
    assert ww_value(g, z) == pytest.approx(value, rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(class_labels(max_classes=6, max_n=200), st.sampled_from([0.5, 1.0, 2.0]), st.booleans())
def test_hinge_bias_init_against_kernels_and_linprog(lab, margin, torch_convention):
    y, c = lab
    f = np.bincount(y, minlength=c) / y.size
    name = "multi_margin_loss" if torch_convention else "hinge"
    r = hs.bias_init(ls.ClassStats(y), name, num_classes=c, margin=margin)
    x = tile(r.bias.astype(np.float64), y.size)
    if torch_convention:
        kernel = hs.multi_margin_loss(x, y, margin=margin)
        scale = margin / c
    else:
        kernel = hs.multiclass_hinge_loss(x, y, margin=margin)
        scale = margin
    assert r.expected_loss == pytest.approx(float(kernel), rel=1e-6)
    assert r.expected_loss == pytest.approx(scale * ww_linprog(f), rel=1e-7, abs=1e-9)
    assert r.zero_bias_loss == pytest.approx(scale * (c - 1), rel=1e-12)
    assert r.expected_loss <= r.zero_bias_loss + 1e-12


@settings(max_examples=30, deadline=None)
@given(class_labels(max_classes=6, max_n=200), st.sampled_from([0.5, 1.0, 3.0]))
def test_crammer_singer_against_kernel_and_linprog(lab, margin):
    y, c = lab
    f = np.bincount(y, minlength=c) / y.size
    r = hs.bias_init(ls.ClassStats(y), "crammer_singer", num_classes=c, margin=margin)
    x = tile(r.bias.astype(np.float64), y.size)
    kernel = hs.multiclass_hinge_loss(x, y, margin=margin, variant="crammer_singer")
    assert r.expected_loss == pytest.approx(float(kernel), rel=1e-6)
    assert r.expected_loss == pytest.approx(margin * cs_linprog(f), rel=1e-7, abs=1e-9)
    assert r.expected_loss == pytest.approx(margin * min(1.0, 2 * (1 - f.max())), rel=1e-12)


def test_hinge_structure_and_golden():
    # the majority class ahead by the margin, the rest tied, an absent class one level down
    r = hs.bias_init(ls.ClassStats([0] * 5 + [1] * 3 + [2] * 2), "hinge", num_classes=4)
    np.testing.assert_array_equal(r.details["levels"], [2, 1, 1, 0])
    assert r.expected_loss == pytest.approx(ww_linprog([0.5, 0.3, 0.2, 0.0]))
    # balanced: equal scores, (C - 1) * margin (cs231n) and (C - 1) margin / C (torch)
    y = np.repeat(np.arange(5), 3)
    assert hs.bias_init(ls.ClassStats(y), "hinge", margin=2.0).expected_loss == pytest.approx(8.0)
    rt = hs.bias_init(ls.ClassStats(y), "multi_margin_loss")
    assert rt.expected_loss == pytest.approx(4 / 5) and not rt.bias.any()
    with pytest.raises(hs.HeadstartError, match="p=2"):
        hs.bias_init(ls.ClassStats(y), "hinge", p=2)
    with pytest.raises(hs.HeadstartError, match="margin"):
        hs.bias_init(ls.ClassStats(y), "hinge", margin=0.0)


def test_hinge_class_weights_match_kernel():
    y = np.array([0] * 6 + [1] * 3 + [2])
    w = np.array([0.2, 1.0, 3.0])
    r = hs.bias_init(ls.ClassStats(y), "multi_margin_loss", weight=w)
    kernel = hs.multi_margin_loss(tile(r.bias, 10), y, weight=w)
    assert r.expected_loss == pytest.approx(float(kernel), rel=1e-6)
    assert r.expected_loss == pytest.approx(ww_linprog(w * np.bincount(y) / 10) / 3, rel=1e-7)


# ------------------------------------------------------------------------- bad input


def test_bad_input_messages():
    s = ls.ClassStats([0, 1, 1, 2])
    with pytest.raises(ValueError, match="unknown loss 'kl'.*cross_entropy.*mse_loss"):
        hs.bias_init(s, "kl")
    with pytest.raises(TypeError, match="mse_loss does not take option.*delta"):
        hs.bias_init(ls.RegressionStats([1.0, 2.0]), "mse", delta=1.0)
    with pytest.raises(TypeError, match="cross_entropy does not take option.*margin"):
        hs.bias_init(s, "ce", margin=1.0)
    with pytest.raises(hs.HeadstartError, match="num_classes=2"):
        hs.bias_init(s, "ce", num_classes=2)
    with pytest.raises(hs.HeadstartError, match="3 classes.*num_classes=5"):
        hs.bias_init(ls.ClassStats(["a", "b", "c"]), "ce", num_classes=5)
    with pytest.raises(hs.HeadstartError, match="one class only"):
        hs.bias_init(ls.ClassStats([3, 3, 3]), "ce")
    with pytest.raises(hs.HeadstartError, match="one class only"):
        hs.bias_init(ls.ClassStats(["x"] * 4), "hinge")
    with pytest.raises(hs.HeadstartError, match="empty"):
        hs.bias_init(ls.ClassStats(np.array([], np.int64)), "ce")
    with pytest.raises(hs.HeadstartError, match="empty"):
        hs.bias_init(ls.RegressionStats([]), "mse")
    with pytest.raises(hs.HeadstartError, match="weight has 2 entries"):
        hs.bias_init(s, "ce", weight=[1.0, 2.0])
    with pytest.raises(hs.HeadstartError, match="label_smoothing"):
        hs.bias_init(s, "ce", label_smoothing=1.5)
    with pytest.raises(hs.HeadstartError, match="tau"):
        hs.bias_init(ls.RegressionStats([1.0, 2.0]), "pinball", tau=1.0)
    with pytest.raises(hs.HeadstartError, match="delta"):
        hs.bias_init(ls.RegressionStats([1.0, 2.0]), "huber", delta=-1)
    with pytest.raises(ValueError, match="reduction"):
        hs.bias_init(s, "ce", reduction="sum")
    with pytest.raises(ValueError, match="variant"):
        hs.bias_init(s, "crammer_singer", variant="weston_watkins")
    with pytest.raises(hs.HeadstartError, match="negative class label"):
        hs.bias_init(ls.ClassStats([0, 1, -2]), "ce")
    with pytest.raises(hs.HeadstartError, match="class labels"):
        hs.bias_init(ls.RegressionStats([1.0, 2.0]), "ce")
    with pytest.raises(TypeError, match="dtype"):
        hs.bias_init(s, "ce", dtype=np.int32)
    assert issubclass(hs.HeadstartError, ValueError)


def test_loss_names_and_aliases():
    names = hs.loss_names()
    assert names["mae"] == "l1_loss" and names["quantile"] == "pinball_loss"
    s = ls.ClassStats([0, 1, 1, 2])
    a = hs.bias_init(s, "F.cross_entropy")
    b = hs.bias_init(s, "CE")
    np.testing.assert_array_equal(a.bias, b.bias)


# --------------------------------------------------------------------- result helpers


def test_result_helpers_repr_json_torch_line():
    r = hs.bias_init(ls.ClassStats(["b", "a", "a", "c", "a", "b"]), "ce")
    assert r.bias.dtype == np.float32
    assert hs.bias_init(r.stats, "ce", dtype=np.float64).bias.dtype == np.float64
    text = repr(r)
    assert "cross_entropy" in text and "expected_loss=" in text and "gain" in text
    d = json.loads(json.dumps(r.to_dict()))
    assert d["classes"] == ["a", "b", "c"] and d["counts"] == [3, 2, 1]
    assert d["expected_loss"] == pytest.approx(r.expected_loss)
    line = r.torch_line("net.head")
    assert line.startswith("with torch.no_grad(): net.head.bias.copy_(torch.tensor([")
    vals = [float(v) for v in line.split("[")[1].split("]")[0].split(",")]
    np.testing.assert_array_equal(np.float32(vals), r.bias)  # shortest repr round-trips
    big = hs.bias_init(ls.ClassStats(np.arange(100)), "ce")
    assert "np.load" in big.torch_line()
    out = r.to_numpy()
    out[:] = 0
    assert r.bias.any()


class DuckTensor:
    """A torch-like parameter: shape, numel(), copy_()."""

    def __init__(self, n):
        self.values = np.zeros(n, np.float32)
        self.shape = (n,)

    def numel(self):
        return self.values.size

    def copy_(self, src):
        self.values[...] = np.asarray(src)


class DuckLayer:
    def __init__(self, bias):
        self.bias = bias


def test_apply_to_duck_typed_and_numpy():
    r = hs.bias_init(ls.ClassStats([0, 0, 1, 2, 2, 2]), "ce")
    layer = DuckLayer(DuckTensor(3))
    assert r.apply_to(layer) is layer
    np.testing.assert_array_equal(layer.bias.values, r.bias)
    arr = np.zeros(3, np.float64)
    r.apply_to(arr)
    np.testing.assert_array_equal(arr, r.bias.astype(np.float64))

    class Holder:  # .bias with a .data numpy array (e.g. a hand-written module)
        def __init__(self):
            self.bias = type("P", (), {"data": np.zeros((1, 3))})()

    h = Holder()
    r.apply_to(h)
    np.testing.assert_array_equal(h.bias.data[0], r.bias)
    with pytest.raises(hs.HeadstartError, match="has 4 entries but bias_init computed 3"):
        r.apply_to(DuckLayer(DuckTensor(4)))
    with pytest.raises(hs.HeadstartError, match="no bias"):
        r.apply_to(DuckLayer(None))
    with pytest.raises(TypeError, match="read-only"):
        ro = np.zeros(3)
        ro.flags.writeable = False
        r.apply_to(ro)
    with pytest.raises(TypeError, match="to_numpy"):
        r.apply_to((1.0, 2.0, 3.0))


def test_apply_to_torch_linear():
    torch = pytest.importorskip("torch")
    r = hs.bias_init(ls.ClassStats([0, 0, 1, 2, 2, 2]), "ce")
    lin = torch.nn.Linear(4, 3)
    r.apply_to(lin)
    np.testing.assert_allclose(lin.bias.detach().numpy(), r.bias, rtol=1e-7)
    assert lin.bias.requires_grad
    with pytest.raises(hs.HeadstartError, match="entries"):
        r.apply_to(torch.nn.Linear(4, 5))
    t = torch.zeros(3, dtype=torch.float64)
    r.apply_to(t)
    np.testing.assert_allclose(t.numpy(), r.bias.astype(np.float64))


# ------------------------------------------------------------------------- check_init


def test_check_init_verdicts():
    y = np.array([0] * 70 + [1] * 20 + [2] * 10)
    r = hs.bias_init(ls.ClassStats(y), "ce")
    opt, uni = r.expected_loss, math.log(3)
    c = hs.check_init(opt * 1.001, r)
    assert c.ok and c.verdict == "ok" and "initialised well" in str(c)
    c = hs.check_init(uni, r)
    assert c.verdict == "bias_off"
    assert str(c) == (
        f"first loss {uni:#.3g} vs optimum {opt:#.3g} and uniform {uni:#.3g}: "
        "your output bias is off, use bias_init"
    )
    assert hs.check_init(uni + 1.0, r).verdict == "too_high"
    assert hs.check_init((opt + uni) / 2, r).verdict == "partial"
    assert hs.check_init(opt / 2, r).verdict == "below_optimum"
    assert hs.check_init(float("nan"), r).verdict == "too_high"


def test_check_init_from_logits_and_batch_tolerance():
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=4000, p=[0.55, 0.25, 0.15, 0.05])
    r = hs.bias_init(ls.ClassStats(y), "ce")
    batch = y[:64]
    # with logits and targets the references are the batch's own: the bias_init constant
    # and zero logits on these 64 labels, so no sampling noise enters
    good = hs.check_init(tile(r.bias, 64), r, target=batch)
    assert good.batch_size == 64 and good.ok, str(good)
    assert good.optimum == pytest.approx(good.observed)
    assert good.naive == pytest.approx(np.log(4))
    zero = hs.check_init(np.zeros((64, 4)), r, target=batch)
    assert zero.verdict == "bias_off", str(zero)
    # a loss value alone: the dataset's references, and a tolerance that shrinks with the
    # batch (three standard errors of a batch mean at the optimum)
    v = float(r.expected_loss)
    small = hs.check_init(v, r, batch_size=64)
    big = hs.check_init(v, r, batch_size=4000)
    assert small.ok and big.ok and big.tolerance < small.tolerance
    assert small.tolerance > 0.01 * r.expected_loss
    # labels as the target (same length), loss named explicitly
    s = hs.check_init(tile(r.bias, 4000), ls.ClassStats(y), "ce", target=y)
    assert s.ok


def test_check_init_other_losses_and_errors():
    y = np.array([1.0, 2.0, 3.0, 10.0])
    r = hs.bias_init(ls.RegressionStats(y), "mse")
    assert hs.check_init(np.full(4, float(r.bias[0])), r, target=y).ok
    assert "zero output" in str(hs.check_init(r.zero_bias_loss, r))
    h = hs.bias_init(ls.ClassStats([0, 0, 0, 1]), "hinge")
    assert hs.check_init(tile(h.bias, 4), h, target=[0, 0, 0, 1]).ok
    b = hs.bias_init(ls.ClassStats(["no"] * 3 + ["yes"]), "bce")
    assert b.details["positive_class"] == "yes"
    assert hs.check_init(np.full(4, float(b.bias[0])), b, target=["no", "no", "no", "yes"]).ok
    with pytest.raises(hs.HeadstartError, match="bias_init result is for"):
        hs.check_init(1.0, r, loss="l1")
    with pytest.raises(TypeError, match="target"):
        hs.check_init(np.zeros((3, 2)), r)


# ------------------------------------------------------------------ end to end (scan)


def test_end_to_end_arrays_match_stats_path():
    rng = np.random.default_rng(1)
    y = rng.choice(5, size=2000, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    a = hs.bias_init(y, "ce")
    b = hs.bias_init(ls.ClassStats(y), "ce")
    np.testing.assert_array_equal(a.bias, b.bias)
    assert a.expected_loss == pytest.approx(b.expected_loss, rel=1e-12)
    t = rng.lognormal(size=(500, 2))
    r = hs.bias_init(t, "huber", delta=0.5)
    for j in range(2):
        s = ls.RegressionStats(t[:, j])
        assert r.bias[j] == pytest.approx(s.huber_location(0.5), rel=1e-6)
    assert r.zero_bias_loss is not None


def test_end_to_end_csv(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("id,label\n" + "".join(f"{i},{'ab'[i % 3 == 0]}\n" for i in range(30)))
    r = hs.bias_init(p, "ce", column="label")
    assert list(r.classes) == ["a", "b"]
    np.testing.assert_array_equal(r.counts, [20, 10])


def test_end_to_end_chunks_and_one_pass_iterator():
    rng = np.random.default_rng(5)
    y = rng.normal(size=3000)
    chunks = [y[i : i + 700] for i in range(0, 3000, 700)]
    exact = hs.bias_init(lambda: iter(chunks), "l1")  # re-readable: exact
    assert exact.bias[0] == pytest.approx(np.median(y), rel=1e-6)
    assert "approximate" not in exact.details
    with pytest.raises(hs.HeadstartError, match="read only once.*exact=False"):
        hs.bias_init(iter(chunks), "l1")  # read once: refused, never a silent estimate
    once = hs.bias_init(iter(chunks), "l1", exact=False)  # asked for: an estimate, said so
    assert "approximate" in once.details
    ((lo, hi),) = once.details["bias_bounds"]
    assert lo <= np.median(y) <= hi and lo <= once.bias[0] <= hi
    mad = float(np.mean(np.abs(y - np.median(y))))
    assert mad <= once.expected_loss <= np.sqrt(y.var() + (y.mean() - once.bias[0]) ** 2) + 1e-6
    check = hs.check_init(once.expected_loss, once)
    assert check.ok and "at most" in str(check) and "one-pass" in str(check)
    for loss in ("huber", "pinball"):
        with pytest.raises(hs.HeadstartError, match="read only once"):
            hs.bias_init(iter(chunks), loss)
    mse = hs.bias_init(iter(chunks), "mse")  # exact in one pass: the mean and variance
    assert mse.bias[0] == pytest.approx(y.mean()) and "approximate" not in mse.details
    cls = hs.bias_init(iter([np.array([0, 1, 1]), np.array([2, 1])]), "ce")
    np.testing.assert_array_equal(cls.counts, [1, 3, 1])


def test_end_to_end_pinball_requests_the_quantile(tmp_path):
    y = np.random.default_rng(9).exponential(size=1001)
    p = tmp_path / "y.npy"
    np.save(p, y)
    r = hs.bias_init(p, "pinball", tau=0.3)
    assert r.bias[0] == pytest.approx(np.quantile(y, 0.3, method="inverted_cdf"), rel=1e-6)
    assert r.zero_bias_loss == pytest.approx(0.3 * y.mean())


def test_bce_with_minus_one_labels_says_how_to_map_them():
    # -1 / +1 labels (SVM style): the message is BCE's, not the cross-entropy table's
    # (which spoke of ignore_index, an option BCE does not take)
    for y in (np.array([-1, 1, 1]), [-1, 1]):
        with pytest.raises(hs.HeadstartError, match=r"include -1: map -1 / \+1 labels to 0 / 1"):
            hs.bias_init(y, "bce")
