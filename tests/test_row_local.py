"""Row-local results: a row's softmax / log_softmax / logsumexp, and its loss and gradient,
are bit-identical whatever other rows share the batch, wherever the row sits in it (a
full group, the leftover rows of a task, alone), with or without a gradient, in place or
not. Run at the detected SIMD level here; `test_row_local_every_level` reruns the core
check in subprocesses with HEADSTART_SIMD forced to each lower level."""

from __future__ import annotations

import os
import subprocess
import sys

import headstart as hs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

CLASSES = [1, 2, 3, 7, 8, 10, 15, 16, 17, 31, 32, 33, 100, 1000]


def _batch(rng, row, n, pos, dtype, special):
    c = row.size
    b = (rng.normal(size=(n, c)) * rng.choice([1.0, 30.0])).astype(dtype)
    if special and n > 1:  # specials in the other rows must not move this row's bits
        k = rng.integers(0, n * c, size=3)
        b.flat[k] = rng.choice([np.inf, -np.inf, np.nan], size=3)
    b[pos] = row
    return b


def check_row(seed, c, n, dtype, special):
    rng = np.random.default_rng(seed)
    row = (rng.normal(size=c) * rng.choice([0.1, 1.0, 30.0])).astype(dtype)
    pos = int(rng.integers(0, n))
    b = _batch(rng, row, n, pos, dtype, special)
    one = row[None]
    for f in (hs.softmax, hs.log_softmax):
        np.testing.assert_array_equal(f(b, axis=-1)[pos], f(one, axis=-1)[0])
        ip = b.copy()
        f(ip, axis=-1, out=ip)
        np.testing.assert_array_equal(ip[pos], f(one, axis=-1)[0])
        np.testing.assert_array_equal(ip, f(b, axis=-1))  # the special rows too
    np.testing.assert_array_equal(hs.logsumexp(b, axis=-1)[pos], hs.logsumexp(one, axis=-1)[0])

    t = rng.integers(0, c, size=n)
    t1 = t[pos : pos + 1]
    w = rng.uniform(0.1, 2.0, size=c)
    probs = rng.random((n, c)).astype(dtype)
    probs /= probs.sum(1, keepdims=True)
    for kw in ({}, {"weight": w}, {"label_smoothing": 0.1}, {"ignore_index": int(t[pos])}):
        alone = hs.cross_entropy(one, t1, reduction="none", **kw)
        lb, gb = hs.cross_entropy(b, t, reduction="none", return_grad=True, **kw)
        la, ga = hs.cross_entropy(one, t1, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(lb[pos], la[0])
        np.testing.assert_array_equal(alone[0], la[0])  # with or without a gradient
        np.testing.assert_array_equal(gb[pos], ga[0])
        ip = b.copy()
        li, gi = hs.cross_entropy(ip, t, reduction="none", grad_out=ip, **kw)
        np.testing.assert_array_equal(li[pos], la[0])
        np.testing.assert_array_equal(gi[pos], ga[0])
        np.testing.assert_array_equal(li, lb)  # the special rows too
        np.testing.assert_array_equal(gi, gb)
    lb, gb = hs.cross_entropy(b, probs, reduction="none", return_grad=True)
    la, ga = hs.cross_entropy(one, probs[pos : pos + 1], reduction="none", return_grad=True)
    np.testing.assert_array_equal(lb[pos], la[0])
    np.testing.assert_array_equal(gb[pos], ga[0])
    for f, kw in (
        (hs.multi_margin_loss, {}),
        (hs.multi_margin_loss, {"p": 2, "weight": w}),
        (hs.multiclass_hinge_loss, {}),
        (hs.multiclass_hinge_loss, {"variant": "crammer_singer"}),
    ):
        lb, gb = f(b, t, reduction="none", return_grad=True, **kw)
        la, ga = f(one, t1, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(lb[pos], la[0])
        np.testing.assert_array_equal(gb[pos], ga[0])
        np.testing.assert_array_equal(f(one, t1, reduction="none", **kw)[0], la[0])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    c=st.sampled_from(CLASSES),
    n=st.integers(1, 80),
    dtype=st.sampled_from([np.float32, np.float64]),
    special=st.booleans(),
)
def test_row_is_local(seed, c, n, dtype, special):
    check_row(seed, c, n, dtype, special)


@pytest.mark.parametrize("c", [3, 10, 16, 40])
def test_row_is_local_across_task_boundaries(c):
    # Tasks hold about 32768 elements: a batch of 7000 rows of 10 has three tasks, each
    # with leftover rows at its end; every position must give the lone row's bits.
    rng = np.random.default_rng(c)
    n = 70000 // c
    b = rng.normal(size=(n, c)).astype(np.float32)
    t = rng.integers(0, c, size=n)
    lb, gb = hs.cross_entropy(b, t, reduction="none", return_grad=True)
    sm = hs.softmax(b, axis=-1)
    for pos in list(range(0, n, max(1, n // 97))) + [n - 1]:
        la, ga = hs.cross_entropy(b[pos : pos + 1], t[pos : pos + 1], reduction="none", return_grad=True)
        assert lb[pos] == la[0] and np.array_equal(gb[pos], ga[0]), pos
        assert np.array_equal(sm[pos], hs.softmax(b[pos : pos + 1], axis=-1)[0]), pos


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_row_split_or_not(dtype):
    # A row of 40000 alone is split across tasks; among 8 rows it is not: same bits.
    rng = np.random.default_rng(9)
    b = (rng.normal(size=(8, 40000)) * 5).astype(dtype)
    for f in (hs.softmax, hs.log_softmax):
        np.testing.assert_array_equal(f(b, axis=-1)[3], f(b[3:4], axis=-1)[0])
    np.testing.assert_array_equal(hs.logsumexp(b, axis=-1)[3], hs.logsumexp(b[3:4], axis=-1)[0])
    np.testing.assert_array_equal(hs.logsumexp(b[3]), hs.logsumexp(b[3:4], axis=-1)[0])


@pytest.mark.parametrize("level", ["avx2", "scalar"])
def test_row_local_every_level(level):
    if level == os.environ.get("HEADSTART_SIMD"):
        pytest.skip("this process already runs at that level")
    code = (
        "import sys, numpy as np; sys.path.insert(0, %r); import test_row_local as t\n"
        "rng = np.random.default_rng(0)\n"
        "for i in range(150):\n"
        "    t.check_row(int(rng.integers(2**32)), int(rng.choice(t.CLASSES)),\n"
        "                int(rng.integers(1, 80)), rng.choice([np.float32, np.float64]),\n"
        "                bool(rng.integers(2)))\n"
        "print('ok')\n"
    ) % os.path.dirname(__file__)
    env = dict(os.environ, HEADSTART_SIMD=level)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
