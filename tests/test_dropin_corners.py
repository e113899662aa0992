"""The corners where a user moving code from scipy or torch would trip: one test per
defect class of issue 17, each written to fail on the behaviour it replaced.

References are independent of the kernels (tests/reference_losses.py, float64 numpy);
torch is compared live where it is installed."""

from __future__ import annotations

import warnings

import headstart as hs
import numpy as np
import pytest
import reference_losses as ref
from hypothesis import given, settings
from hypothesis import strategies as st

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is optional: the torch comparisons skip without it
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

ELEMENTWISE = [
    (hs.l1_loss, "l1", {}),
    (hs.mse_loss, "mse", {}),
    (hs.huber_loss, "huber", {"delta": 0.7}),
    (hs.smooth_l1_loss, "smooth_l1", {"beta": 0.5}),
    (hs.pinball_loss, "pinball", {"tau": 0.3}),
    (hs.poisson_nll_loss, "poisson", {}),
    (hs.binary_cross_entropy_with_logits, "bce", {}),
]


# ------------------------------------------------------- pos_weight broadcasts by shape


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5),
    c=st.integers(1, 5),
    form=st.sampled_from(["C", "1C", "N1", "NC", "1", "0d"]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_pos_weight_broadcasts_by_shape(n, c, form, reduction, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3, size=(n, c))
    y = rng.random((n, c))
    shape = {"C": (c,), "1C": (1, c), "N1": (n, 1), "NC": (n, c), "1": (1,), "0d": ()}[form]
    pw = rng.uniform(0.2, 4.0, size=shape)
    loss, grad = hs.binary_cross_entropy_with_logits(
        x, y, pos_weight=pw, reduction=reduction, return_grad=True
    )
    want, wgrad = ref.elementwise("bce", x, y, reduction=reduction, pos_weight=pw)
    np.testing.assert_allclose(loss, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, wgrad, rtol=1e-12, atol=1e-14)


def test_pos_weight_of_n_entries_is_not_read_along_the_last_axis():
    # The silent case: (N, 1) with N == C has as many entries as the last dimension.
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    y = np.array([[1.0, 1.0], [1.0, 0.0]])
    pw = np.array([[2.0], [5.0]])
    got = hs.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none")
    want, _ = ref.elementwise("bce", x, y, reduction="none", pos_weight=pw)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    wrong, _ = ref.elementwise("bce", x, y, reduction="none", pos_weight=pw.reshape(-1))
    assert not np.allclose(got, wrong)


def test_pos_weight_that_does_not_broadcast_is_refused():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="pos_weight of shape"):
        hs.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones(2))
    with pytest.raises(ValueError, match="does not broadcast"):
        hs.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones((4, 2, 3)))


def test_pos_weight_on_empty_input():
    # torch: the mean of nothing is NaN, the sum 0
    for shape, pw in (((0,), np.zeros(0)), ((0, 3), np.ones(3)), ((2, 0), np.zeros(0))):
        x = np.zeros(shape)
        assert np.isnan(hs.binary_cross_entropy_with_logits(x, x, pos_weight=pw))
        loss, g = hs.binary_cross_entropy_with_logits(
            x, x, pos_weight=pw, reduction="sum", return_grad=True
        )
        assert loss == 0 and g.shape == shape


@needs_torch
def test_pos_weight_matches_torch_per_sample():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 4)), rng.random((4, 4))
    pw = rng.uniform(0.5, 3, size=(4, 1))
    xt = torch.tensor(x, requires_grad=True)
    lt = F.binary_cross_entropy_with_logits(xt, torch.tensor(y), pos_weight=torch.tensor(pw))
    lt.backward()
    loss, g = hs.binary_cross_entropy_with_logits(x, y, pos_weight=pw, return_grad=True)
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-16)


# ------------------------------------- probability targets with +inf: one answer, any path


def _ce_all_paths(x, t, **kw):
    """The loss through every route the wrapper can take: C order, Fortran order (a private
    copy that takes the gradient in place), return_grad, grad_out apart, grad_out=input."""
    out = [hs.cross_entropy(x, t, reduction="none", **kw)]
    out.append(hs.cross_entropy(np.asfortranarray(x), t, reduction="none", **kw))
    out.append(hs.cross_entropy(x, t, reduction="none", return_grad=True, **kw)[0])
    out.append(
        hs.cross_entropy(np.asfortranarray(x), t, reduction="none", return_grad=True, **kw)[0]
    )
    g = np.empty_like(x)
    out.append(hs.cross_entropy(x, t, reduction="none", grad_out=g, **kw)[0])
    g = x.copy()
    out.append(hs.cross_entropy(g, t, reduction="none", grad_out=g, **kw)[0])
    return out


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 20),
    c=st.integers(1, 40),
    dtype=st.sampled_from([np.float32, np.float64]),
    smoothing=st.sampled_from([0.0, 0.1]),
    probs=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_special_rows_give_one_answer_on_every_path(n, c, dtype, smoothing, probs, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c)).astype(dtype)
    k = rng.integers(0, n * c, size=rng.integers(1, 4))
    x.flat[k] = rng.choice([np.inf, -np.inf, np.nan], size=k.size)
    if probs:
        t = (rng.random((n, c)) * (rng.random((n, c)) < 0.5)).astype(dtype)
        t[:, 0] += 0.01
        t /= t.sum(1, keepdims=True)
    else:
        t = rng.integers(0, c, size=n)
    outs = _ce_all_paths(x, t, label_smoothing=smoothing)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_probability_targets_with_inf_follow_the_index_rule():
    x = np.array([[np.inf, 1.0, 2.0]] * 3)
    t = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    for o in _ce_all_paths(x, t):
        # no target mass on the +inf entry: +inf (as an index target elsewhere); some: NaN
        assert o[0] == np.inf and np.isnan(o[1]) and np.isnan(o[2])
    idx = hs.cross_entropy(x[:2], np.array([1, 0]), reduction="none")
    assert idx[0] == np.inf and np.isnan(idx[1])


# ---------------------------------------------------------------- non-native byte order


def _be(a):
    return np.asarray(a).astype(np.asarray(a).dtype.newbyteorder(">"))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_big_endian_kernels(dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 7)).astype(dtype)
    xb = _be(x)
    assert not xb.dtype.isnative
    for f in (hs.softmax, hs.log_softmax):
        for axis in (None, -1, 0):
            got = f(xb, axis=axis)
            assert got.dtype == x.dtype and got.dtype.isnative
            np.testing.assert_array_equal(got, f(x, axis=axis))
    for axis in (None, 1):
        np.testing.assert_array_equal(hs.logsumexp(xb, axis=axis), hs.logsumexp(x, axis=axis))
        np.testing.assert_array_equal(
            hs.logsumexp(xb, axis=axis, b=_be(x)), hs.logsumexp(x, axis=axis, b=x)
        )


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_big_endian_losses(dtype):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 4)).astype(dtype)
    xb = _be(x)
    t = rng.integers(0, 4, size=6)
    for a, b in (
        (hs.cross_entropy(xb, _be(t), return_grad=True), hs.cross_entropy(x, t, return_grad=True)),
        (hs.multi_margin_loss(xb, _be(t), return_grad=True), hs.multi_margin_loss(x, t, return_grad=True)),
    ):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[1].dtype.isnative
    y = rng.random((6, 4)).astype(dtype)
    for f, _, kw in ELEMENTWISE:
        a = f(xb, _be(y), return_grad=True, **kw)
        b = f(x, y, return_grad=True, **kw)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


# ------------------------------------------------------------- weak Python scalars in b


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_logsumexp_python_scalar_keeps_precision(dtype):
    a = np.array([1.0, 2.0, 3.0], dtype=dtype)
    for b in (2.0, 2, True):
        assert hs.logsumexp(a, b=b).dtype == dtype
        assert hs.logsumexp(a, b=b, return_sign=True)[1].dtype == dtype
    assert hs.logsumexp(1.0, b=np.array([2.0], dtype=dtype)).dtype == dtype
    # a numpy scalar or array is not weak: float32 with float64 is float64
    assert hs.logsumexp(a, b=np.float64(2.0)).dtype == np.result_type(dtype, np.float64)


def test_logsumexp_weak_scalars_match_scipy():
    sp = pytest.importorskip("scipy.special")
    cases = [
        (np.float32([1, 2]), 2.0),
        (1.0, np.float32(2)),
        (np.int32([1, 2]), np.float32(1)),
        (np.float16([1, 2]), 2),
        ([1, 2], 3.0),
    ]
    for a, b in cases:
        assert hs.logsumexp(a, b=b).dtype == sp.logsumexp(a, b=b).dtype, (a, b)


# ----------------------------------------------------------------- 0-d and the +inf limit


@pytest.mark.parametrize("axis", [0, -1, None, ()])
def test_zero_d_softmax_axis(axis):
    x = np.array(2.5)
    assert hs.softmax(x, axis=axis) == 1.0
    assert hs.log_softmax(x, axis=axis) == 0.0
    out = np.empty(())
    assert hs.softmax(x, axis=axis, out=out) is out and out == 1.0


@pytest.mark.parametrize("axis", [1, -2, (0,), (0, -1)])
def test_zero_d_softmax_bad_axis(axis):
    # scipy refuses these too (numpy's reductions take only 0 / -1 on a 0-d array)
    with pytest.raises(np.exceptions.AxisError):
        hs.softmax(np.array(2.5), axis=axis)


def test_log_softmax_dtype_error_names_itself():
    with pytest.raises(TypeError, match="^log_softmax:"):
        hs.log_softmax(np.array(["a"]))


def test_logsumexp_weighted_inf_limit():
    # [inf, 1] with b = [1, -1]: the finite term vanishes beside +inf, the limit is +inf
    assert hs.logsumexp([np.inf, 1.0], b=[1, -1]) == np.inf
    assert hs.logsumexp([np.inf, 1.0], b=[1, -1], return_sign=True) == (np.inf, 1.0)
    assert hs.logsumexp([np.inf, 1.0], b=[-1, 1], return_sign=True) == (np.inf, -1.0)
    assert np.isnan(hs.logsumexp([np.inf, 1.0], b=[-1, 1]))  # negative sum, no sign asked
    # opposite weights on +inf entries have no limit; NaN anywhere stays NaN
    assert np.isnan(hs.logsumexp([np.inf, np.inf], b=[1, -1]))
    assert np.isnan(hs.logsumexp([np.inf, np.nan], b=[1, 1]))
    assert hs.logsumexp([np.inf, 1.0], b=[0, 1]) == 1.0  # b = 0 removes the +inf
    rows = hs.logsumexp(np.array([[np.inf, 1.0], [0.0, 1.0]]), axis=1, b=[1, -1])
    assert rows[0] == np.inf and np.isnan(rows[1])


# --------------------------------------------------------------- multi_margin_loss shapes


def test_multi_margin_zero_d_and_single_sample_shapes():
    loss, g = hs.multi_margin_loss(np.array(1.5), np.array(0), return_grad=True)
    assert loss == 0 and g.shape == () and g == 0
    assert hs.multi_margin_loss(np.array(1.5), np.array([0]), reduction="none").shape == (1,)
    assert hs.multi_margin_loss(np.array(1.5), np.array(0), reduction="none").shape == ()
    x = np.array([1.0, 2.0, 3.0])
    assert hs.multi_margin_loss(x, np.array([1]), reduction="none").shape == (1,)
    assert hs.multi_margin_loss(x, np.array(1), reduction="none").shape == ()
    for bad in (np.array([[0]]), np.array([0, 1])):
        with pytest.raises(ValueError, match="target has shape"):
            hs.multi_margin_loss(x, bad)
    with pytest.raises(IndexError):
        hs.multi_margin_loss(np.array(1.5), np.array(1))


@needs_torch
def test_multi_margin_shapes_match_torch():
    for x, t in (
        (np.array(1.5), np.array(0)),
        (np.array(1.5), np.array([0])),
        (np.array([1.0, 2.0, 3.0]), np.array([1])),
        (np.array([1.0, 2.0, 3.0]), np.array(2)),
    ):
        for reduction in ("none", "mean", "sum"):
            xt = torch.tensor(x, requires_grad=True)
            lt = F.multi_margin_loss(xt, torch.tensor(t), reduction=reduction)
            lt.sum().backward()
            loss, g = hs.multi_margin_loss(x, t, reduction=reduction, return_grad=True)
            assert np.shape(loss) == tuple(lt.shape)
            np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-14)
            np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-14)
            assert g.shape == x.shape


# ----------------------------------------------------------- 0-d float16 elementwise grads


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("f,kind,kw", ELEMENTWISE)
def test_zero_d_elementwise_gradient_shape(f, kind, kw, dtype):
    x, y = np.array(0.3, dtype), np.array(0.8, dtype)
    for reduction in ("mean", "none"):
        loss, g = f(x, y, reduction=reduction, return_grad=True, **kw)
        assert np.shape(loss) == () and g.shape == () and g.dtype == dtype
        want_l, want_g = ref.elementwise(kind, x, y, reduction=reduction, **kw)
        tol = 2e-3 if dtype == np.float16 else 1e-6
        np.testing.assert_allclose(float(g), float(want_g), rtol=tol)
        np.testing.assert_allclose(float(loss), float(want_l), rtol=tol)


# ----------------------------------------------------------------- zero total class weight


def test_zero_total_weight_is_nan_like_torch():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]])
    w = [0.0, 1.0, 1.0]
    for eps in (0.0, 0.1):
        loss, g = hs.cross_entropy(
            x, np.array([0, 0]), weight=w, label_smoothing=eps, return_grad=True
        )
        assert np.isnan(loss) and np.isnan(g).all()
        loss, g = hs.cross_entropy(
            x, np.array([-100, 0]), weight=w, label_smoothing=eps, return_grad=True
        )
        assert np.isnan(loss) and (g[0] == 0).all() and np.isnan(g[1]).all()
        loss, g = hs.cross_entropy(x, np.array([-100, -100]), label_smoothing=eps, return_grad=True)
        assert np.isnan(loss) and (g == 0).all()


@needs_torch
def test_zero_total_weight_matches_torch():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]])
    for t, eps in (([0, 0], 0.1), ([-100, 0], 0.1), ([0, 0], 0.0), ([-100, -100], 0.1)):
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
        lt = F.cross_entropy(xt, torch.tensor(t), weight=wt, label_smoothing=eps)
        lt.backward()
        loss, g = hs.cross_entropy(
            x, np.array(t), weight=wt.numpy(), label_smoothing=eps, return_grad=True
        )
        np.testing.assert_array_equal(np.isnan(g), np.isnan(xt.grad.numpy()))
        np.testing.assert_allclose(loss, lt.item())
        np.testing.assert_allclose(g, xt.grad.numpy())


# ----------------------------------------------------------- what torch refuses, refused


def test_probability_targets_refuse_a_nonnegative_ignore_index():
    x = np.zeros((2, 3))
    t = np.full((2, 3), 1 / 3)
    for ig in (0, 3, np.int64(1)):
        with pytest.raises(ValueError, match="ignore_index"):
            hs.cross_entropy(x, t, ignore_index=ig)
    # a negative one selects nothing, as in torch
    assert hs.cross_entropy(x, t, ignore_index=-1) == hs.cross_entropy(x, t)
    with pytest.raises(TypeError, match="ignore_index must be an integer"):
        hs.cross_entropy(x, t, ignore_index=1.5)


@pytest.mark.parametrize("shape", [(3, 1), (1, 3), ()])
def test_class_weight_must_be_one_dimensional(shape):
    x = np.zeros((2, 3)) if shape != () else np.zeros((2, 1))
    c = x.shape[1]
    w = np.ones(shape if shape != () else ())
    t = np.array([0, 0])
    with pytest.raises(ValueError, match="1-D array with one entry per class"):
        hs.cross_entropy(x, t, weight=w)
    if shape != ():
        with pytest.raises(ValueError, match="1-D array with one entry per class"):
            hs.multi_margin_loss(x, t, weight=w)
    assert c >= 1


# ----------------------------------------------- torch's positional order (legacy slots)


def test_positional_arguments_land_where_torch_puts_them():
    rng = np.random.default_rng(5)
    x, t = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    # cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, eps)
    np.testing.assert_array_equal(
        hs.cross_entropy(x, t, None, None, 1), hs.cross_entropy(x, t, ignore_index=1)
    )
    np.testing.assert_array_equal(
        hs.cross_entropy(x, t, None, None, -100, None, "sum", 0.2),
        hs.cross_entropy(x, t, reduction="sum", label_smoothing=0.2),
    )
    y = rng.random((6, 4))
    np.testing.assert_array_equal(
        hs.binary_cross_entropy_with_logits(x, y, None, None, None, "none", np.full(4, 2.0)),
        hs.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=np.full(4, 2.0)),
    )
    np.testing.assert_array_equal(
        hs.smooth_l1_loss(x, y, None, None, "sum", 0.5),
        hs.smooth_l1_loss(x, y, reduction="sum", beta=0.5),
    )
    np.testing.assert_array_equal(
        hs.poisson_nll_loss(x, y, True, False, None, 1e-8, None, "none"),
        hs.poisson_nll_loss(x, y, reduction="none"),
    )
    np.testing.assert_array_equal(
        hs.multi_margin_loss(x, t, 2, 0.5, None, None, None, "sum"),
        hs.multi_margin_loss(x, t, p=2, margin=0.5, reduction="sum"),
    )
    np.testing.assert_array_equal(hs.huber_loss(x, y, "sum", 0.5), hs.huber_loss(x, y, reduction="sum", delta=0.5))


@pytest.mark.parametrize(
    "size_average,reduce,want", [(False, None, "sum"), (None, False, "none"), (True, True, "mean")]
)
def test_legacy_size_average_reduce(size_average, reduce, want):
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(3, 4)), rng.random((3, 4))
    t = rng.integers(0, 4, 3)
    with pytest.warns(UserWarning, match=f"reduction='{want}'"):
        got = hs.mse_loss(x, y, size_average, reduce, "none" if want != "none" else "mean")
    np.testing.assert_array_equal(got, hs.mse_loss(x, y, reduction=want))
    with pytest.warns(UserWarning):
        got = hs.cross_entropy(x, t, size_average=size_average, reduce=reduce)
    np.testing.assert_array_equal(got, hs.cross_entropy(x, t, reduction=want))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hs.mse_loss(x, y, None, None, "sum")  # both None: no warning
