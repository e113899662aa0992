"""Label statistics: every statistic equals numpy's in-memory answer, for every reader,
chunking and merge order; bad input gets a clear exception."""

from __future__ import annotations

import gzip
import math
import pickle
import threading

import headstart as hs
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference_stats as ref

try:  # an independent Huber location (IRLS at a fixed scale), when installed
    from statsmodels.robust import norms as sm_norms
except ImportError:  # pragma: no cover
    sm_norms = None

# ----------------------------------------------------------------- strategies

# Sums of values near the float maximum overflow in any summation order; order
# statistics are still tested with +-inf below.
finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, width=64)
tiny_or_huge = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e300, 1e300, 2.5, -2.5])


@st.composite
def values(draw, min_size=1, max_size=400, inf=False):
    kind = draw(st.sampled_from(["floats", "ties", "special", "scaled", "int"]))
    n = draw(st.integers(min_size, max_size))
    if kind == "floats":
        v = draw(hnp.arrays(np.float64, n, elements=finite))
    elif kind == "ties":
        v = np.asarray(
            draw(st.lists(st.sampled_from([-3.0, 0.0, 1.0, 1.5, 7.0]), min_size=n, max_size=n))
        )
    elif kind == "special":
        v = np.asarray(draw(st.lists(st.one_of(tiny_or_huge, finite), min_size=n, max_size=n)))
    elif kind == "int":
        v = np.asarray(draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n)), float)
    else:
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        v = rng.lognormal(1.0, 2.0, n) * rng.choice([-1.0, 1.0], n) + draw(
            st.sampled_from([0.0, 1e9])
        )
    if inf and n > 2:
        v = v.copy()
        v[: draw(st.integers(0, 2))] = np.inf
        v[-draw(st.integers(0, 1)) or len(v) :] = -np.inf
    return np.asarray(v, np.float64)


def chunked(v, sizes):
    out, i, k = [], 0, 0
    while i < len(v):
        s = max(1, sizes[k % len(sizes)])
        out.append(v[i : i + s])
        i += s
        k += 1
    return out


def check_regression(r, v, qs=(), deltas=()):
    # Values near the float maximum overflow numpy's own sums (median's midpoint, var):
    # the reference and headstart must then agree on inf.
    with np.errstate(over="ignore", invalid="ignore"):
        _check_regression(r, v, qs, deltas)


def _check_regression(r, v, qs, deltas):
    assert r.exact
    assert r.n == len(v)
    assert r.median == np.median(v)
    assert r.min == v.min() and r.max == v.max()
    if np.isfinite(v).all() and np.abs(v).max() < 1e150:
        # (beyond 1e150 numpy's own var overflows; mean/var are sums either way)
        np.testing.assert_allclose(
            r.mean, np.mean(v), rtol=1e-12, atol=1e-300 + 1e-15 * np.abs(v).max()
        )
        np.testing.assert_allclose(
            r.var, np.var(v), rtol=1e-9, atol=1e-280 + 1e-13 * np.abs(v).max() ** 2
        )
        mad = ref.mad(v)
        np.testing.assert_allclose(r.mad, mad, rtol=1e-11, atol=1e-300 + 1e-14 * np.abs(v).max())
    for q in qs:
        for m in ("linear", "lower", "higher", "midpoint", "nearest", "inverted_cdf"):
            want = np.quantile(v, q, method=m)
            got = r.quantile(q, m)
            assert got == want or (math.isnan(got) and math.isnan(want)), (q, m, got, want)
    for d in deltas:
        c = r.huber_location(d)
        assert ref.huber_location_ok(v, d, c), (d, c, ref.huber_location(v, d))
        np.testing.assert_allclose(r.huber_loss(d), ref.huber_loss(v, d, c), rtol=1e-9, atol=1e-300)


# ---------------------------------------------------------------- arrays


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values(), st.lists(st.floats(0, 1), max_size=3))
def test_regression_array_equals_numpy(v, qs):
    r = hs.scan(v, kind="regression", quantiles=qs, huber_delta=[1.0, 0.1])
    check_regression(r, v, qs, [1.0, 0.1])


@pytest.mark.skipif(sm_norms is None, reason="statsmodels is not installed")
@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.integers(1, 300),
        elements=st.one_of(st.floats(-1e3, 1e3), st.integers(-20, 20).map(float)),
    ),
    st.sampled_from([0.05, 1.0, 1.345, 30.0]),
)
def test_huber_location_matches_statsmodels(v, d):
    """statsmodels' M-estimate of location with HuberT(t=delta) at scale 1 is the root
    of sum clip(y - c, -delta, delta): it must agree with ours to ~1e-12 of the data's
    magnitude. Where psi is zero on a whole interval both are roots; ours is the
    midpoint (the documented convention), so there the check is that both are roots."""
    big = max(1.0, float(np.abs(v).max()))
    try:
        want = float(
            sm_norms.estimate_location(
                v, 1.0, norm=sm_norms.HuberT(t=d), tol=1e-14 * big, maxiter=100_000
            )
        )
    except ValueError:  # its IRLS did not converge at this tolerance
        assume(False)
    got = hs.scan(v, kind="regression", huber_delta=d).huber_location(d)
    if not math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-11 * big):
        psi = lambda c: float(np.clip(v - c, -d, d).sum())  # noqa: E731
        tol = 1e-9 * d * v.size
        assert abs(psi(got)) <= tol and abs(psi(want)) <= tol, (got, want)


@settings(max_examples=40, deadline=None)
@given(values(min_size=3, inf=True))
def test_infinite_targets_raise_or_are_skipped(v):
    """An infinite regression target is a data error like NaN: raised with its index by
    default, skipped and counted with nan='skip'. (Order statistics over infinities are
    covered by the Rust tests of the selector.)"""
    finite = v[np.isfinite(v)]
    if len(finite) < len(v):
        i = int(np.flatnonzero(~np.isfinite(v))[0])
        with pytest.raises(hs.HeadstartError, match=f"non-finite value -?inf at index {i}"):
            hs.scan(v, kind="regression")
    if len(finite):
        r = hs.scan(v, kind="regression", quantiles=[0.25], nan="skip")
        assert r.skipped == len(v) - len(finite)
        assert r.median == np.median(finite)
        assert r.quantile(0.25, "lower") == np.quantile(finite, 0.25, method="lower")


@pytest.mark.parametrize("dt", [np.float32, np.int16, np.uint8, np.int64, np.bool_])
def test_dtypes(dt):
    rng = np.random.default_rng(1)
    v = (rng.standard_normal(2001) * 100).astype(dt)
    r = hs.scan(v, kind="regression", quantiles=[0.3])
    check_regression(r, v.astype(np.float64), [0.3])


def test_large_array_parallel_update_exact_and_thread_independent():
    """An array of several million values: the core splits each 4M-value chunk into
    fixed 2^20-value parts on its pool. The answers equal numpy's, and the bits do not
    depend on the thread count."""
    rng = np.random.default_rng(7)
    v = np.concatenate([rng.lognormal(0, 2, 2_500_000) - 3.0, rng.integers(-5, 5, 23_457)])
    rng.shuffle(v)
    got = {}
    try:
        for n in (1, 2, 3):
            hs.set_num_threads(n)
            r = hs.scan(v, kind="regression", quantiles=[0.1, 0.9], huber_delta=1.0)
            got[n] = (
                r.n,
                r.mean,
                r.var,
                r.min,
                r.max,
                r.median,
                r.quantile(0.1),
                r.quantile(0.9),
                r.mad,
                r.huber_location(1.0),
                r.abs_mean,
            )
    finally:
        hs.set_num_threads(0)
    assert got[1] == got[2] == got[3]
    # numpy directly (the float64 reference's Huber bisection takes minutes at this size)
    med = np.median(v)
    assert (r.n, r.min, r.max, r.median) == (v.size, v.min(), v.max(), med)
    assert r.quantile(0.1) == np.quantile(v, 0.1) and r.quantile(0.9) == np.quantile(v, 0.9)
    assert math.isclose(r.mean, v.mean(), rel_tol=1e-12)
    assert math.isclose(r.var, v.var(), rel_tol=1e-12)
    assert math.isclose(r.mad, np.abs(v - med).mean(), rel_tol=1e-12)
    assert math.isclose(r.abs_mean, np.abs(v).mean(), rel_tol=1e-12)
    c = r.huber_location(1.0)
    assert abs(np.clip(v - c, -1.0, 1.0).sum()) <= 1e-9 * v.size  # the root of psi


@settings(max_examples=60, deadline=None)
@given(
    values(min_size=1, max_size=300),
    st.lists(st.integers(1, 50), min_size=1, max_size=5),
    st.integers(1, 64),
)
def test_any_chunking_and_merge_order(v, sizes, cmax):
    """Workers each hold a fresh state per pass; merged in any grouping they give the
    exact answer. A tiny collect threshold forces every histogram refinement level."""
    parts = chunked(v, sizes)
    st0 = hs.RegressionState(quantiles=[0.1, 0.9], huber_delta=0.5)
    st0._s = hs._core.RegState([0.1, 0.9], [0.5], cmax)
    while True:
        workers = [st0.fresh() for _ in parts]
        for w, p in zip(workers, parts):
            w.update(p)
        # merge through pickling, as between processes
        for w in workers:
            st0.merge(pickle.loads(pickle.dumps(w)))
        if not st0.finish_pass():
            break
    check_regression(st0.result(), v, [0.1, 0.9], [0.5])


def test_one_pass_iterator_is_approximate_with_bounds():
    rng = np.random.default_rng(2)
    v = rng.lognormal(1, 1, 50_000)
    r = hs.scan(iter([v[:20000], v[20000:]]), kind="regression", quantiles=[0.9])
    assert not r.exact and r.passes == 1
    lo, hi = r.quantile_bounds(0.5)
    k = (len(v) - 1) // 2
    assert lo <= np.sort(v)[k] <= hi
    assert lo <= r.median_low <= hi
    assert math.isnan(r.mad)
    assert "approximate" in repr(r)
    # a callable that re-opens is exact
    r2 = hs.scan(lambda: iter([v[:20000], v[20000:]]), kind="regression", quantiles=[0.9])
    check_regression(r2, v, [0.9])


def test_nan_policy():
    v = np.array([1.0, np.nan, 3.0, 2.0])
    with pytest.raises(hs.HeadstartError, match="NaN at index 1"):
        hs.scan(v, kind="regression")
    r = hs.scan(v, kind="regression", nan="skip")
    assert r.skipped == 1 and r.n == 3 and r.median == 2.0


def test_empty_and_requests():
    with pytest.raises(hs.HeadstartError, match="no values"):
        hs.scan(np.array([], float), kind="regression")
    r = hs.scan(np.arange(10.0))
    with pytest.raises(hs.HeadstartError, match="quantiles=\\[0.3\\]"):
        r.quantile(0.3)
    with pytest.raises(hs.HeadstartError, match="huber_delta=2"):
        r.huber_location(2)
    with pytest.raises(ValueError, match="huber_delta"):
        hs.scan(np.arange(3.0), huber_delta=-1)
    with pytest.raises(ValueError, match="kind"):
        hs.scan(np.arange(3.0), kind="nope")
    with pytest.raises(TypeError, match="complex"):
        hs.scan(np.ones(3, complex), kind="regression")


def test_data_changing_between_passes_is_detected():
    calls = [0]

    def source():
        calls[0] += 1
        return iter([np.arange(10.0 + calls[0])])

    with pytest.raises(hs.HeadstartError, match="changed between passes"):
        hs.scan(source, kind="regression")


# ---------------------------------------------------------------- classification


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-200, 2**40), min_size=1, max_size=300),
    st.lists(st.integers(1, 40), min_size=1, max_size=4),
)
def test_int_class_counts(labels, sizes):
    y = np.asarray(labels, np.int64)
    parts = chunked(y, sizes)
    acc = hs.ClassCounts()
    for p in parts:
        c = hs.ClassCounts()
        c.update(p.astype(np.int32) if np.abs(p).max() < 2**31 else p)
        acc.merge(pickle.loads(pickle.dumps(c)))
    r = acc.result()
    want_c, want_n = np.unique(y, return_counts=True)
    np.testing.assert_array_equal(r.classes, want_c)
    np.testing.assert_array_equal(r.counts, want_n)
    assert r.n == len(y)
    f = want_n / want_n.sum()
    np.testing.assert_allclose(r.entropy, -(f * np.log(f)).sum(), rtol=1e-12, atol=1e-15)


def test_string_classes_sorted():
    y = np.array(["dog", "cat", "dog", "émeu", "cat", "dog"])
    r = hs.scan(y)
    assert list(r.classes) == ["cat", "dog", "émeu"]
    assert list(r.counts) == [2, 3, 1]
    assert r.num_classes == 3
    np.testing.assert_allclose(r.log_priors, np.log([2 / 6, 3 / 6, 1 / 6]))
    assert "dog" in repr(r)


def test_multilabel_matrix():
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]])
    r = hs.scan(y)
    assert isinstance(r, hs.MultilabelStats)
    np.testing.assert_array_equal(r.positives, [2, 1, 3])
    assert r.n == 4
    with pytest.raises(hs.HeadstartError, match="row 0, column 1"):
        hs.scan(np.array([[1, 2], [0, 1]]), kind="multilabel")


# ---------------------------------------------------------------- files


def _write(path, text, gz=False):
    data = text.encode("utf-8")
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values(min_size=1, max_size=300),
    st.sampled_from(["csv", "tsv", "txt", "csv.gz", "txt.gz", "npy"]),
    st.booleans(),
    st.booleans(),
)
def test_files_round_trip(tmp_path, v, fmt, crlf, bom):
    nl = "\r\n" if crlf else "\n"
    p = tmp_path / f"y.{fmt}"
    if fmt == "npy":
        np.save(p, v)
    else:
        vals = [repr(float(x)) for x in v]
        if fmt.startswith("txt"):
            text = nl.join(vals) + nl
        else:
            d = "\t" if fmt == "tsv" else ","
            text = f"id{d}y{nl}" + "".join(f"{i}{d}{x}{nl}" for i, x in enumerate(vals))
        if bom:
            text = "\ufeff" + text
        _write(p, text, gz=fmt.endswith(".gz"))
    r = hs.scan(p, kind="regression", quantiles=[0.75], huber_delta=1.0)
    check_regression(r, v, [0.75], [1.0])


def test_csv_quoting_and_column_selection(tmp_path):
    p = _write(
        tmp_path / "q.csv",
        'name,"y, value",label\n"a ""x""",1.5,cat\n"b\nmultiline",2.5,dog\nc,-1,"cat"\n',
    )
    r = hs.scan(p, column="y, value", kind="regression")
    assert r.n == 3 and r.median == 1.5
    r = hs.scan(p, column=2)
    assert list(r.classes) == ["cat", "dog"] and list(r.counts) == [2, 1]
    r = hs.scan(p)  # last column by default
    assert list(r.counts) == [2, 1]


def test_csv_errors_name_line_and_column(tmp_path):
    p = _write(tmp_path / "bad.csv", "id,y\n0,1.5\n1,abc\n2,3\n")
    with pytest.raises(
        hs.HeadstartError, match=r"bad.csv:3: column 2: expected a number, found \"abc\""
    ):
        hs.scan(p, kind="regression")
    p = _write(tmp_path / "short.csv", "id,y\n0,1.5\n1\n")
    with pytest.raises(hs.HeadstartError, match=r"short.csv:3: .*expected 2 fields, found 1"):
        hs.scan(p, kind="regression")
    p = _write(tmp_path / "empty.txt", "1\n\n3\n")
    with pytest.raises(hs.HeadstartError, match=r"empty.txt:2: .*empty value"):
        hs.scan(p, kind="regression")
    r = hs.scan(p, kind="regression", nan="skip")
    assert r.skipped == 1 and r.n == 2
    with pytest.raises(hs.HeadstartError, match="no column named .z.; the header has: id, y"):
        hs.scan(tmp_path / "bad.csv", column="z")
    with pytest.raises(FileNotFoundError):
        hs.scan(tmp_path / "missing.csv")
    with pytest.raises(IsADirectoryError):
        hs.scan(tmp_path)
    p = tmp_path / "bad.npy"
    p.write_bytes(b"not a numpy file at all")
    with pytest.raises(hs.HeadstartError, match="bad.npy: not a readable .npy"):
        hs.scan(p, kind="regression")


def test_large_csv_crosses_blocks_with_correct_line_numbers(tmp_path):
    # ~10 MB: several 4 MiB blocks; a bad value near the end must report its true line.
    n = 600_000
    v = np.random.default_rng(3).lognormal(0, 1, n)
    lines = [f"{i},{x:.17g}" for i, x in enumerate(v)]
    lines[n - 5] = f"{n - 5},oops"
    p = _write(tmp_path / "big.csv", "id,y\n" + "\n".join(lines) + "\n")
    with pytest.raises(hs.HeadstartError, match=rf"big.csv:{n - 5 + 2}: column 2"):
        hs.scan(p, kind="regression")
    lines[n - 5] = f"{n - 5},{v[n - 5]:.17g}"
    p = _write(tmp_path / "big.csv", "id,y\n" + "\n".join(lines) + "\n")
    seen = []
    r = hs.scan(p, kind="regression", huber_delta=1.0, progress=lambda *a: seen.append(a))
    check_regression(r, v, [], [1.0])
    assert seen and seen[-1][0] >= 2  # later passes reported too
    assert r.passes >= 2


def test_class_files(tmp_path):
    p = _write(
        tmp_path / "c.csv", "id,label\n" + "".join(f"{i},{'abc'[i % 3]}\n" for i in range(1000))
    )
    r = hs.scan(p)
    assert list(r.classes) == ["a", "b", "c"] and r.counts.sum() == 1000
    p = _write(tmp_path / "i.txt", "".join(f"{i % 4}\n" for i in range(100)))
    r = hs.scan(p, kind="classification")
    assert r.classes.dtype.kind == "i" and list(r.counts) == [25] * 4
    p = _write(tmp_path / "m.csv", "id,tags\n0,cat|dog\n1,dog\n2,\n3,cat|bird\n")
    r = hs.scan(p, label_sep="|")
    assert isinstance(r, hs.MultilabelStats)
    assert dict(zip(r.classes, r.positives)) == {"bird": 1, "cat": 2, "dog": 2}
    assert r.n == 4
    p = tmp_path / "labels.npy"
    np.save(p, np.array([3, 1, 3, 3], np.int16))
    r = hs.scan(p)
    assert list(r.classes) == [1, 3] and list(r.counts) == [1, 3]


def test_npy_big_endian_and_2d_column(tmp_path):
    v = np.random.default_rng(4).standard_normal((1000, 3))
    p = tmp_path / "be.npy"
    np.save(p, v.astype(">f8"))
    r = hs.scan(p, column=1, kind="regression")
    check_regression(r, v[:, 1])


def test_parquet_and_feather(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    v = np.random.default_rng(5).standard_normal(5000)
    t = pa.table({"id": np.arange(5000), "y": v, "c": np.array(["a", "b"])[np.arange(5000) % 2]})
    pq.write_table(t, tmp_path / "t.parquet", row_group_size=999)
    feather.write_feather(t, tmp_path / "t.feather")
    for name in ("t.parquet", "t.feather"):
        r = hs.scan(tmp_path / name, column="y", quantiles=[0.2])
        check_regression(r, v, [0.2])
        r = hs.scan(tmp_path / name, column="c")
        assert list(r.counts) == [2500, 2500]


def test_scan_releases_the_gil(tmp_path):
    """A scan in one thread lets another thread's Python run meanwhile."""
    v = np.random.default_rng(6).standard_normal(3_000_000)
    p = tmp_path / "g.npy"
    np.save(p, v)
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)

    t = threading.Thread(target=count)
    t.start()
    try:
        hs.scan(p, kind="regression", huber_delta=1.0)
    finally:
        done.set()
        t.join()
    assert len(ticks) > 100


def test_progress_callback_exception_stops_the_scan(tmp_path):
    p = tmp_path / "p.npy"
    np.save(p, np.arange(5_000_000, dtype=np.float32))

    def boom(*a):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hs.scan(p, kind="regression", progress=boom)


@settings(max_examples=40, deadline=None)
@given(values(min_size=1, max_size=300), st.floats(0.01, 0.99))
def test_losses_of_a_zero_output(v, tau):
    """What bias_init reports as the zero-bias loss: exact sums from pass 1."""
    r = hs.scan(v, kind="regression", huber_delta=[0.5, 2.0])
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(r.abs_mean, np.mean(np.abs(v)), rtol=1e-12, atol=1e-300)
        want = np.mean(np.maximum(tau * v, (tau - 1) * v))
        np.testing.assert_allclose(
            r.zero_pinball_loss(tau), want, rtol=1e-9, atol=1e-12 * np.abs(v).max()
        )
        for d in (0.5, 2.0):
            np.testing.assert_allclose(
                r.zero_huber_loss(d), ref.huber_loss(v, d, 0.0), rtol=1e-12, atol=1e-300
            )
