"""Losses: golden values, float64 references, finite differences, torch parity (stored
fixtures, and live when torch is installed), in-place gradients, bad input."""

from __future__ import annotations

import json
import math
import pathlib

import headstart as hs
import numpy as np
import pytest
import reference_losses as ref
from hypothesis import given
from hypothesis import strategies as st

FIX = pathlib.Path(__file__).parent / "fixtures" / "torch_losses.npz"


# ---------------------------------------------------------------- golden values (DESIGN §1)

SCORES = np.array([[3.2, 1.3, 2.2], [5.1, 4.9, 2.5], [-1.7, 2.0, -3.1]]).T  # rows = samples


def test_golden_course_table():
    ce = hs.cross_entropy(SCORES, [0, 1, 2], reduction="none")
    np.testing.assert_allclose(ce, [2.0404, 0.0791, 6.1565], atol=5e-5)
    assert abs(hs.cross_entropy(SCORES, [0, 1, 2]) - 2.7587) < 5e-5
    ww = hs.multiclass_hinge_loss(SCORES, [0, 1, 2], reduction="none")
    np.testing.assert_allclose(ww, [2.9, 0.0, 12.9], rtol=1e-14)


def test_golden_three_models():
    s = np.array([[5, -3, 2], [5, 10, 10], [5, -20, -20]], dtype=np.float64)
    np.testing.assert_allclose(hs.multiclass_hinge_loss(s, [0, 0, 0], reduction="none"), [0, 12, 0])
    ce = hs.cross_entropy(s, [0, 0, 0], reduction="none")
    exact = [
        math.log1p(math.exp(-8) + math.exp(-3)),
        math.log(1 + 2 * math.exp(5)),
        math.log1p(2 * math.exp(-25)),
    ]
    np.testing.assert_allclose(ce, exact, rtol=1e-15)
    np.testing.assert_allclose(ce, [0.0489, 5.6965, 2.78e-11], rtol=2e-3)


def test_golden_softmax_gradient_example():
    x = np.array([1.0, 2.0, 0.5])
    loss, g = hs.cross_entropy(x, 1, return_grad=True)
    q = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(q, [0.2312, 0.6285, 0.1402], atol=5e-5)
    assert abs(loss - 0.4644) < 5e-5
    np.testing.assert_allclose(g, q - [0, 1, 0], rtol=1e-14, atol=1e-16)


def test_balanced_init_is_log_c():
    for c in (2, 10, 1000):
        x = np.zeros((c, c))
        assert hs.cross_entropy(x, np.arange(c)) == pytest.approx(math.log(c), rel=1e-15)


# ---------------------------------------------------------------- against the references

dtypes = st.sampled_from([np.float32, np.float64])
reductions = st.sampled_from(["mean", "sum", "none"])


def tol(dt):
    return {"rtol": 2e-5, "atol": 2e-6} if dt == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


@st.composite
def logits(draw, max_n=40, max_c=40):
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(1, max_c))
    scale = draw(st.sampled_from([1.0, 10.0, 100.0]))
    seed = draw(st.integers(0, 2**31))
    x = np.random.default_rng(seed).standard_normal((n, c)) * scale
    return x, seed


@given(logits(), dtypes, reductions, st.booleans(), st.sampled_from([0.0, 0.1, 0.5]))
def test_cross_entropy_index_targets(xs, dt, red, weighted, eps):
    x, seed = xs
    rng = np.random.default_rng(seed + 1)
    n, c = x.shape
    t = rng.integers(0, c, n)
    t[rng.random(n) < 0.2] = -100
    w = rng.random(c) + 0.05 if weighted else None
    x = x.astype(dt)
    want_l, want_g = ref.cross_entropy(x, t, weight=w, reduction=red, label_smoothing=eps)
    got_l, got_g = hs.cross_entropy(
        x, t, weight=w, reduction=red, label_smoothing=eps, return_grad=True
    )
    assert got_g.dtype == dt and np.asarray(got_l).dtype == dt
    if np.all(t == -100) and red == "mean":
        assert np.isnan(got_l)
        return
    np.testing.assert_allclose(got_l, want_l, **tol(dt))
    np.testing.assert_allclose(got_g, want_g, **tol(dt))


@given(logits(), dtypes, reductions, st.booleans(), st.sampled_from([0.0, 0.2]))
def test_cross_entropy_probability_targets(xs, dt, red, weighted, eps):
    x, seed = xs
    rng = np.random.default_rng(seed + 2)
    p = rng.random(x.shape) ** 3
    p /= p.sum(axis=1, keepdims=True)
    w = rng.random(x.shape[1]) + 0.05 if weighted else None
    x, p = x.astype(dt), p.astype(dt)
    want_l, want_g = ref.cross_entropy(x, p, weight=w, reduction=red, label_smoothing=eps)
    got_l, got_g = hs.cross_entropy(
        x, p, weight=w, reduction=red, label_smoothing=eps, return_grad=True
    )
    np.testing.assert_allclose(got_l, want_l, **tol(dt))
    np.testing.assert_allclose(got_g, want_g, **tol(dt))


@given(
    st.integers(1, 4),
    st.integers(1, 6),
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.integers(0, 2**31),
)
def test_cross_entropy_nd_matches_flattened(n, c, extra, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *extra))
    t = rng.integers(0, c, (n, *extra))
    got_l, got_g = hs.cross_entropy(x, t, reduction="none", return_grad=True)
    flat = np.moveaxis(x, 1, -1).reshape(-1, c)
    want_l, want_g = ref.cross_entropy(flat, t.reshape(-1), reduction="none")
    np.testing.assert_allclose(got_l, want_l.reshape(t.shape), rtol=1e-13)
    np.testing.assert_allclose(
        got_g, np.moveaxis(want_g.reshape(n, *extra, c), -1, 1), rtol=1e-12, atol=1e-15
    )


KINDS = {
    "l1": (hs.l1_loss, {}),
    "mse": (hs.mse_loss, {}),
    "huber": (hs.huber_loss, {"delta": 0.7}),
    "smooth_l1": (hs.smooth_l1_loss, {"beta": 0.4}),
    "pinball": (hs.pinball_loss, {"tau": 0.3}),
}


@given(st.sampled_from(sorted(KINDS)), logits(max_n=30, max_c=30), dtypes, reductions)
def test_regression_losses(kind, xs, dt, red):
    fn, kw = KINDS[kind]
    x, seed = xs
    y = (np.random.default_rng(seed + 3).standard_normal(x.shape) * 3).astype(dt)
    x = x.astype(dt)
    want_l, want_g = ref.elementwise(kind, x, y, reduction=red, **kw)
    got_l, got_g = fn(x, y, reduction=red, return_grad=True, **kw)
    np.testing.assert_allclose(got_l, want_l, **tol(dt))
    np.testing.assert_allclose(got_g, want_g, **tol(dt))


@given(logits(max_n=30, max_c=10), dtypes, reductions, st.booleans(), st.booleans())
def test_poisson(xs, dt, red, log_input, full):
    x, seed = xs
    x = x / 10 if log_input else np.abs(x) + 0.01
    y = np.random.default_rng(seed).poisson(3.0, x.shape).astype(dt)
    x = x.astype(dt)
    want_l, want_g = ref.elementwise("poisson", x, y, reduction=red, log_input=log_input, full=full)
    got_l, got_g = hs.poisson_nll_loss(
        x, y, log_input=log_input, full=full, reduction=red, return_grad=True
    )
    np.testing.assert_allclose(got_l, want_l, **tol(dt))
    np.testing.assert_allclose(got_g, want_g, **tol(dt))


@given(logits(max_n=30, max_c=12), dtypes, reductions, st.booleans(), st.booleans())
def test_bce_with_logits(xs, dt, red, weighted, posw):
    x, seed = xs
    rng = np.random.default_rng(seed + 4)
    y = (rng.random(x.shape) > 0.5).astype(dt)
    w = rng.random(x.shape[1]) if weighted else None
    pw = rng.random(x.shape[1]) * 4 if posw else None
    x = x.astype(dt)
    kw = {}
    if w is not None:
        kw["weight"] = w
    if pw is not None:
        kw["pos_weight"] = pw
    want_l, want_g = ref.elementwise("bce", x, y, reduction=red, **kw)
    got_l, got_g = hs.binary_cross_entropy_with_logits(x, y, reduction=red, return_grad=True, **kw)
    np.testing.assert_allclose(got_l, want_l, **tol(dt))
    np.testing.assert_allclose(got_g, want_g, **tol(dt))


@given(
    logits(max_n=40, max_c=12),
    dtypes,
    reductions,
    st.sampled_from([1, 2]),
    st.sampled_from(["multi_margin", "weston_watkins", "crammer_singer"]),
    st.booleans(),
)
def test_hinge_losses(xs, dt, red, p, kind, weighted):
    x, seed = xs
    rng = np.random.default_rng(seed + 5)
    n, c = x.shape
    t = rng.integers(0, c, n)
    w = rng.random(c) + 0.1 if weighted else None
    if kind == "crammer_singer":
        p = 1
    x = x.astype(dt)
    want_l, want_g = ref.hinge(kind, x, t, p=p, margin=0.9, weight=w, reduction=red)
    if kind == "multi_margin":
        got = hs.multi_margin_loss(x, t, p=p, margin=0.9, weight=w, reduction=red, return_grad=True)
    else:
        got = hs.multiclass_hinge_loss(
            x, t, margin=0.9, variant=kind, p=p, weight=w, reduction=red, return_grad=True
        )
    np.testing.assert_allclose(got[0], want_l, **tol(dt))
    np.testing.assert_allclose(got[1], want_g, **tol(dt))


# ---------------------------------------------------------------- extremes


def test_cross_entropy_extreme_logits():
    for dt in (np.float32, np.float64):
        big = np.finfo(dt).max
        x = np.array([[big, -big, 0.0], [1e30, 0, 0], [0.0, -np.inf, 3.0]], dtype=dt)
        loss, g = hs.cross_entropy(x, [0, 1, 2], reduction="none", return_grad=True)
        assert loss[0] == 0.0 and np.isfinite(loss).all()
        assert loss[1] == pytest.approx(1e30, rel=1e-6)
        np.testing.assert_allclose(loss[2], math.log1p(math.exp(-3)), rtol=1e-6)
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-6)


def test_nan_propagates_to_its_row_only():
    x = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]])
    loss, g = hs.cross_entropy(x, [0, 1], reduction="none", return_grad=True)
    assert np.isnan(loss[0]) and np.isnan(g[0]).all()
    assert np.isfinite(loss[1]) and np.isfinite(g[1]).all()


def test_bce_extremes_match_torch_semantics():
    x = np.array([1e30, -1e30, np.finfo(np.float64).max, 0.0])
    y = np.array([0.0, 1.0, 1.0, 1.0])
    loss = hs.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss, [1e30, 1e30, 0.0, math.log(2)], rtol=1e-15)


# ---------------------------------------------------------------- finite differences


def _fd(f, x, h=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


FD_CASES = [
    (
        "ce",
        lambda x: hs.cross_entropy(
            x, [0, 2, 1], weight=[1, 2, 0.5], label_smoothing=0.1, return_grad=True
        ),
    ),
    ("ce-probs", lambda x: hs.cross_entropy(x, np.full((3, 3), 1 / 3), return_grad=True)),
    (
        "bce",
        lambda x: hs.binary_cross_entropy_with_logits(
            x, np.eye(3), pos_weight=[1, 2, 3], weight=[[1.0], [0.5], [2.0]], return_grad=True
        ),
    ),
    ("mse", lambda x: hs.mse_loss(x, np.ones((3, 3)), return_grad=True)),
    ("huber", lambda x: hs.huber_loss(x, np.ones((3, 3)) * 0.2, delta=0.5, return_grad=True)),
    ("sl1", lambda x: hs.smooth_l1_loss(x, np.ones((3, 3)) * 0.2, beta=0.5, return_grad=True)),
    ("l1", lambda x: hs.l1_loss(x, np.full((3, 3), 5.0), return_grad=True)),
    ("pinball", lambda x: hs.pinball_loss(x, np.full((3, 3), 5.0), tau=0.2, return_grad=True)),
    ("poisson", lambda x: hs.poisson_nll_loss(x, np.full((3, 3), 2.0), return_grad=True)),
    ("mm", lambda x: hs.multi_margin_loss(x, [0, 1, 2], p=2, margin=3.0, return_grad=True)),
    ("ww", lambda x: hs.multiclass_hinge_loss(x, [0, 1, 2], margin=5.0, return_grad=True)),
]


@pytest.mark.parametrize("name,f", FD_CASES, ids=[c[0] for c in FD_CASES])
def test_gradient_matches_finite_differences(name, f):
    # Points away from the kinks: random logits in [-1, 1], margins that keep hinges active.
    x = np.random.default_rng(7).uniform(-1, 1, (3, 3))
    _, g = f(x)
    fd = _fd(lambda v: float(f(v)[0]), x)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- torch parity


def _fixture_cases():
    if not FIX.exists():
        return []
    data = np.load(FIX)
    meta = json.loads(str(data["meta"]))
    return [(i, c) for i, c in enumerate(meta["cases"])]


FN = {
    "cross_entropy": hs.cross_entropy,
    "binary_cross_entropy_with_logits": hs.binary_cross_entropy_with_logits,
    "l1_loss": hs.l1_loss,
    "mse_loss": hs.mse_loss,
    "huber_loss": hs.huber_loss,
    "smooth_l1_loss": hs.smooth_l1_loss,
    "poisson_nll_loss": hs.poisson_nll_loss,
    "multi_margin_loss": hs.multi_margin_loss,
}


def test_fixture_file_is_present():
    assert FIX.exists(), "tests/fixtures/torch_losses.npz missing: run make_torch_fixtures.py"
    assert len(_fixture_cases()) > 50


@pytest.mark.parametrize("i,case", _fixture_cases(), ids=[c["name"] for _, c in _fixture_cases()])
def test_torch_fixture(i, case):
    data = np.load(FIX)
    x = data[f"x{i}"]
    t = data[f"t{i}"]
    opts = {
        k: (data[v[1:]] if isinstance(v, str) and v.startswith("@") else v)
        for k, v in case["opts"].items()
    }
    loss, g = FN[case["fn"]](x, t, return_grad=True, **opts)
    t_loss, t_grad = data[f"loss{i}"], data[f"grad{i}"]
    k = tol(x.dtype.type)
    np.testing.assert_allclose(loss, t_loss, **k)
    np.testing.assert_allclose(g, t_grad, **k)
    assert g.dtype == x.dtype


def test_torch_live():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 33)).astype(np.float32) * 5
    t = rng.integers(0, 33, 64)
    xt = torch.tensor(x, requires_grad=True)
    F.cross_entropy(xt, torch.tensor(t), label_smoothing=0.1).backward()
    _, g = hs.cross_entropy(x, t, label_smoothing=0.1, return_grad=True)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=2e-5, atol=1e-7)


# ---------------------------------------------------------------- gradient buffers


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_in_place_and_grad_out_equal_fresh_gradient(dt):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 17)).astype(dt)
    t = rng.integers(0, 17, 50)
    y = rng.standard_normal((50, 17)).astype(dt)
    cases = [
        lambda a, **k: hs.cross_entropy(a, t, label_smoothing=0.1, **k),
        lambda a, **k: hs.mse_loss(a, y, **k),
        lambda a, **k: hs.binary_cross_entropy_with_logits(a, (y > 0).astype(dt), **k),
        lambda a, **k: hs.multi_margin_loss(a, t, **k),
    ]
    for f in cases:
        loss, g = f(x, return_grad=True)
        buf = np.empty_like(x)
        loss2, g2 = f(x, grad_out=buf)
        assert g2 is buf
        np.testing.assert_array_equal(g2, g)
        xi = x.copy()
        loss3, g3 = f(xi, grad_out=xi)
        assert g3 is xi
        np.testing.assert_array_equal(xi, g)
        assert loss == loss2 == loss3


def test_strided_input_works():
    rng = np.random.default_rng(1)
    big = rng.standard_normal((40, 30))
    x = big[::2, ::3]
    t = rng.integers(0, x.shape[1], x.shape[0])
    l1, g1 = hs.cross_entropy(x, t, return_grad=True)
    l2, g2 = hs.cross_entropy(np.ascontiguousarray(x), t, return_grad=True)
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)
    xf = np.asfortranarray(big)
    assert hs.mse_loss(xf, 0.0) == hs.mse_loss(big, 0.0)


def test_any_integer_target_dtype():
    x = np.random.default_rng(2).standard_normal((6, 4))
    want = hs.cross_entropy(x, np.array([0, 1, 2, 3, 0, 1]))
    for dt in (np.int8, np.uint8, np.int16, np.int32, np.uint32, np.uint64):
        assert hs.cross_entropy(x, np.array([0, 1, 2, 3, 0, 1], dtype=dt)) == want


# ---------------------------------------------------------------- bad input


def test_bad_inputs():
    x = np.zeros((3, 4))
    with pytest.raises(IndexError, match="target 4 at position 1"):
        hs.cross_entropy(x, [0, 4, 1])
    with pytest.raises(IndexError, match="out of range"):
        hs.cross_entropy(x, [0, -1, 1])
    with pytest.raises(IndexError):
        hs.multi_margin_loss(x, [0, 9, 1])
    with pytest.raises(ValueError, match=r"one entry per class \(4\), got shape \(3,\)"):
        hs.cross_entropy(x, [0, 1, 2], weight=[1, 2, 3])
    with pytest.raises(ValueError, match="target has shape"):
        hs.cross_entropy(x, [0, 1])
    with pytest.raises(TypeError, match="integer class indices or float"):
        hs.cross_entropy(x, np.array(["a", "b", "c"]))
    with pytest.raises(TypeError, match="logits"):
        hs.cross_entropy(np.zeros((3, 4), dtype=np.int32), [0, 1, 2])
    with pytest.raises(ValueError, match="row 1 sums to"):
        hs.cross_entropy(x, np.array([[1, 0, 0, 0], [0.5, 0, 0, 0], [0, 0, 0, 1.0]]))
    with pytest.raises(ValueError, match="must be >= 0; row 2"):
        hs.cross_entropy(x, np.array([[1, 0, 0, 0], [1, 0, 0, 0], [1.5, -0.5, 0, 0]]))
    with pytest.raises(ValueError, match="label_smoothing"):
        hs.cross_entropy(x, [0, 1, 2], label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        hs.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="does not broadcast"):
        hs.mse_loss(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(3,\) does not broadcast to input shape \(3, 4\)"):
        hs.binary_cross_entropy_with_logits(x, x, pos_weight=[1, 2, 3])
    with pytest.raises(ValueError, match="delta must be > 0"):
        hs.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match="tau must be in"):
        hs.pinball_loss(x, x, tau=1.5)
    with pytest.raises(ValueError, match="grad_out must have"):
        hs.cross_entropy(x, [0, 1, 2], grad_out=np.zeros((3, 4), np.float32))
    ro = np.zeros((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        hs.mse_loss(x, x, grad_out=ro)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        hs.multi_margin_loss(x, [0, 1, 2], p=3)


def test_bce_tiny_losses_keep_their_value():
    # x < 0, y = 0: loss = log1p(e^x); torch's (1 - y) x + softplus(-x) cancels it to 0
    x = np.array([-41.0, -60.0, -700.0, -20.0])
    for dt, rtol in ((np.float64, 1e-14), (np.float32, 1e-6)):
        loss, g = hs.binary_cross_entropy_with_logits(
            x.astype(dt), np.zeros(4, dt), reduction="none", return_grad=True
        )
        want = np.log1p(np.exp(x))
        ok = want > np.finfo(dt).tiny
        np.testing.assert_allclose(loss[ok], want[ok], rtol=rtol)
        np.testing.assert_allclose(g[ok], (1 / (1 + np.exp(-x)))[ok], rtol=rtol)
    # x > 0, y = 1: gradient sigma(x) - 1 = -sigma(-x), tiny but not 0
    xp = np.array([30.0, 50.0, 17.0])
    for dt, rtol in ((np.float64, 1e-14), (np.float32, 1e-6)):
        _, g = hs.binary_cross_entropy_with_logits(
            xp.astype(dt), np.ones(3, dt), pos_weight=[2.0], reduction="sum", return_grad=True
        )
        np.testing.assert_allclose(g, -2.0 / (1 + np.exp(xp)), rtol=rtol)


@given(
    st.integers(16, 70),
    st.integers(1, 40),
    st.sampled_from([1.0, 30.0, 1e4, 1e30, 3e38]),
    st.booleans(),
    st.integers(0, 2**31),
)
def test_cross_entropy_float32_groups_and_extremes(n, c, scale, specials, seed):
    """float32 batches big enough for the AVX-512 kernels' 16-row groups and wide rows
    (when the CPU has AVX-512; the generic paths otherwise), at every magnitude up to the
    dtype's max, with -inf entries, ties and ignored rows: the float64 reference on the same
    float32 values, and the in-place gradient identical to the out-of-place one."""
    rng = np.random.default_rng(seed)
    x = np.clip(rng.standard_normal((n, c)) * scale, -3.4e38, 3.4e38).astype(np.float32)
    t = rng.integers(0, c, n)
    t[rng.random(n) < 0.15] = -100
    if specials:
        x[rng.random((n, c)) < 0.05] = -np.inf
        x[::3, 0] = x[::3].max(axis=1)  # ties for the max
        x[np.all(x == -np.inf, axis=1), -1] = 0.0  # keep every row max finite
    # The reference on x - max in float64 (exact for float32 inputs up to rounding of the
    # difference): without the shift, float64 itself loses logits of 1e38 (lse rounds).
    x64 = x.astype(np.float64)
    x64 -= x64.max(axis=1, keepdims=True)
    want_l, want_g = ref.cross_entropy(x64, t, reduction="none")
    got_l, got_g = hs.cross_entropy(x, t, reduction="none", return_grad=True)
    keep = t != -100
    # A loss beyond float32's range is inf in float32 (as torch's).
    with np.errstate(over="ignore"):
        want_l32 = want_l.astype(np.float32).astype(np.float64)
    big = ~np.isfinite(want_l32)
    np.testing.assert_array_equal(got_l[keep & big], want_l32[keep & big])
    np.testing.assert_allclose(got_l[keep & ~big], want_l[keep & ~big], rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-6, atol=1e-15)
    xi = x.copy()
    li, _ = hs.cross_entropy(xi, t, reduction="none", grad_out=xi)
    np.testing.assert_array_equal(xi, got_g)
    np.testing.assert_array_equal(li, got_l)
