"""headstart.dask: the label statistics as Dask reductions equal the single-machine scan
(order statistics and counts bit for bit, sums to 1e-12), over random partitions with empty
and one-value partitions, on the threaded scheduler and a real LocalCluster with worker
processes."""

from __future__ import annotations

import gzip
import math
import pickle

import headstart as hs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")

hd = pytest.importorskip("headstart.dask")

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ----------------------------------------------------------------- strategies

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, width=64)


@st.composite
def values(draw, min_size=0, max_size=300):
    kind = draw(st.sampled_from(["floats", "ties", "special", "scaled"]))
    n = draw(st.integers(min_size, max_size))
    if kind == "floats":
        return draw(hnp.arrays(np.float64, n, elements=finite))
    if kind == "ties":
        pool = st.sampled_from([-3.0, 0.0, -0.0, 1.0, 1.5, 7.0])
        return np.asarray(draw(st.lists(pool, min_size=n, max_size=n)), np.float64)
    if kind == "special":
        pool = st.one_of(st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-300, 2.5]), finite)
        return np.asarray(draw(st.lists(pool, min_size=n, max_size=n)), np.float64)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    v = rng.lognormal(1.0, 2.0, n) * rng.choice([-1.0, 1.0], n)
    return v + draw(st.sampled_from([0.0, 1e6]))


@st.composite
def cuts(draw, n):
    """Partition sizes summing to n, with empty and one-value partitions likely."""
    k = draw(st.integers(1, 9))
    points = sorted(draw(st.lists(st.integers(0, n), min_size=k - 1, max_size=k - 1)))
    sizes = np.diff([0, *points, n]).tolist()
    extra = draw(st.lists(st.sampled_from([0, 1]), max_size=3))
    for e in extra:  # splice in an empty or a one-value partition
        i = draw(st.integers(0, len(sizes) - 1))
        if e == 0:
            sizes.insert(i, 0)
        elif sizes[i] > 1:
            sizes[i : i + 1] = [1, sizes[i] - 1]
    return tuple(sizes)


def partitioned(x, sizes):
    d = da.from_array(x, chunks=(sizes,) + x.shape[1:])
    assert d.chunks[0] == sizes
    return d


def close(a, b, scale=0.0, rel=1e-12):
    """Equal, or within rel of the larger magnitude (and of the data's scale)."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    # a few subnormal ulps: the mean of [5e-324, 0] rounds to either neighbour
    return abs(a - b) <= max(rel * max(abs(a), abs(b), scale), 4 * 5e-324)


def check_regression(r, ref, quantiles=(), deltas=()):
    assert r.n == ref.n and r.skipped == ref.skipped
    assert r.exact and ref.exact and r.passes == ref.passes
    if ref.n == 0:
        return
    scale = max(abs(ref.min), abs(ref.max))
    for f in ("min", "max", "median", "median_low", "median_high"):
        assert getattr(r, f) == getattr(ref, f), f
    assert close(r.mean, ref.mean, scale)
    assert close(r.var, ref.var, scale * scale)
    assert close(r.mad, ref.mad, scale)
    for q in quantiles:
        for m in ("linear", "lower", "higher", "nearest", "midpoint", "inverted_cdf"):
            assert r.quantile(q, m) == ref.quantile(q, m), (q, m)
        assert close(r.pinball_loss(q), ref.pinball_loss(q), scale)
    for d in deltas:
        # The Huber location is exact given the bracket, but a ratio of sums over the
        # values inside it: the sums' order moves it by ulps, as chunking does on one
        # machine.
        assert close(r.huber_location(d), ref.huber_location(d), scale)
        assert close(r.huber_loss(d), ref.huber_loss(d), scale * max(d, 1.0))


# ----------------------------------------------------------------- regression


@SETTINGS
@given(
    data=st.data(),
    x=values(),
    qs=st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), max_size=2, unique=True),
    deltas=st.lists(st.sampled_from([0.5, 1.0, 3.0]), max_size=2, unique=True),
    split_every=st.sampled_from([2, 3, 8]),
)
def test_regression_matches_single_machine(data, x, qs, deltas, split_every):
    sizes = data.draw(cuts(len(x)))
    kw = {"kind": "regression", "quantiles": qs, "huber_delta": deltas or None}
    if len(x) == 0:  # no targets: an error on both paths
        with pytest.raises(hs.HeadstartError, match="no values"):
            hs.scan(x, **kw)
        with pytest.raises(hs.HeadstartError, match="no values"):
            hd.scan(partitioned(x, sizes), split_every=split_every, **kw)
        return
    ref = hs.scan(x, **kw)
    r = hd.scan(partitioned(x, sizes), split_every=split_every, **kw)
    check_regression(r, ref, qs, deltas)


def test_regression_through_headstart_scan_many_passes():
    # ties and a wide spread need the most passes; headstart.scan routes Dask here
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(50_000) * 1e3, np.full(20_000, 2.5), [1e300, -1e300]])
    rng.shuffle(x)
    sizes = (0, 1, 30_000, 0, 20_000, 1, 20_000)
    ref = hs.scan(x, quantiles=[0.01, 0.7], huber_delta=[0.1, 10.0])
    r = hs.scan(partitioned(x, sizes), quantiles=[0.01, 0.7], huber_delta=[0.1, 10.0])
    assert r.passes >= 2
    for f in ("min", "max", "median", "n", "passes"):
        assert getattr(r, f) == getattr(ref, f)
    assert r.quantile(0.01) == ref.quantile(0.01) and r.quantile(0.7) == ref.quantile(0.7)
    for d in (0.1, 10.0):
        assert r.huber_bounds(d) == pytest.approx(ref.huber_bounds(d), rel=1e-12)


def test_all_partitions_empty():
    x = np.zeros(0)
    with pytest.raises(hs.HeadstartError, match="no values"):
        hs.scan(x, kind="regression")
    with pytest.raises(hs.HeadstartError, match="no values"):
        hd.scan(partitioned(x, (0, 0, 0)), kind="regression")


def test_nan_policy_and_global_index():
    x = np.arange(100, dtype=np.float64)
    x[[57, 90]] = np.nan
    d = partitioned(x, (50, 0, 25, 25))
    with pytest.raises(hs.HeadstartError, match=r"partition 2: NaN at index 57"):
        hd.scan(d)
    r = hd.scan(d, nan="skip", quantiles=[0.3])
    ref = hs.scan(x, nan="skip", quantiles=[0.3])
    assert r.skipped == ref.skipped == 2
    check_regression(r, ref, [0.3])


def test_float32_and_column_vector():
    x = np.random.default_rng(1).standard_normal(1001).astype(np.float32)
    ref = hs.scan(x)
    check_regression(hd.scan(partitioned(x, (500, 1, 500))), ref)
    check_regression(hd.scan(partitioned(x[:, None], (300, 701))), ref)


def test_states_pickle_between_passes():
    # what travels between worker processes: every pass's states through bytes
    x = np.random.default_rng(2).standard_normal(5000)
    ref = hs.scan(x, quantiles=[0.2], huber_delta=1.0)
    r = hd.scan(
        partitioned(x, (1000,) * 5), quantiles=[0.2], huber_delta=1.0, scheduler="processes"
    )
    check_regression(r, ref, [0.2], [1.0])
    # errors travel back too: the class is found by its module path, headstart._core
    err = pickle.loads(pickle.dumps(hs.HeadstartError("row 3: bad label")))
    assert type(err) is hs.HeadstartError and str(err) == "row 3: bad label"
    assert hs.HeadstartError.__module__ == "headstart._core"


# ----------------------------------------------------------------- classes


@SETTINGS
@given(
    data=st.data(),
    labels=st.lists(st.integers(-3, 40), max_size=300),
    as_str=st.booleans(),
)
def test_classification_matches_single_machine(data, labels, as_str):
    y = np.asarray(labels, np.int64)
    if as_str:
        y = np.asarray([f"c{v}" for v in labels], dtype="U4") if labels else np.zeros(0, "U4")
    sizes = data.draw(cuts(len(y)))
    ref = hs.scan(y, kind="classification")
    r = hd.scan(partitioned(y, sizes), kind="classification")
    assert r.n == ref.n
    np.testing.assert_array_equal(r.classes, ref.classes)
    np.testing.assert_array_equal(r.counts, ref.counts)


@SETTINGS
@given(
    data=st.data(),
    x=hnp.arrays(
        np.int8, st.tuples(st.integers(0, 200), st.integers(1, 5)), elements=st.integers(0, 1)
    ),
    soft=st.booleans(),
)
def test_multilabel_matches_single_machine(data, x, soft):
    if soft:
        x = x * 0.25
    sizes = data.draw(cuts(x.shape[0]))
    ref = hs.scan(x, kind="multilabel")
    r = hd.scan(partitioned(x, sizes), kind="multilabel")
    assert r.n == ref.n
    np.testing.assert_allclose(r.positives, ref.positives, rtol=1e-12)
    assert np.array_equal(r.positives, ref.positives) or soft


# ----------------------------------------------------------------- dataframes


def frame(pdf, sizes):
    """A Dask dataframe with exactly these partition sizes (empty ones included)."""
    starts = np.concatenate([[0], np.cumsum(sizes)])
    parts = [dask.delayed(pdf.iloc[a:b]) for a, b in zip(starts[:-1], starts[1:])]
    return dd.from_delayed(parts, meta=pdf.iloc[:0], verify_meta=False)


@SETTINGS
@given(data=st.data(), x=values(min_size=1, max_size=200))
def test_dataframe_columns(data, x):
    n = len(x)
    rng = np.random.default_rng(n)
    pdf = pd.DataFrame(
        {
            "id": np.arange(n),
            "cls": rng.choice(["cat", "dog", "emu"], n),
            "k": pd.array(rng.integers(0, 4, n), dtype="Int64"),
            "y": x,
        }
    )
    ddf = frame(pdf, data.draw(cuts(n)))
    # no column: the last one
    check_regression(hd.scan(ddf, quantiles=[0.9]), hs.scan(x, quantiles=[0.9]), [0.9])
    check_regression(hd.scan(ddf["y"]), hs.scan(x))
    for col in ("cls", "k", 1):
        r = hd.scan(ddf, column=col)
        ref = hs.scan(pdf.iloc[:, 1].to_numpy() if col == 1 else pdf[col].to_numpy(dtype=None))
        np.testing.assert_array_equal(r.classes, ref.classes)
        np.testing.assert_array_equal(r.counts, ref.counts)


def test_dataframe_missing_values():
    pdf = pd.DataFrame(
        {
            "k": pd.array([1, None, 2, 2], dtype="Int64"),
            "s": ["a", None, "b", "a"],
            "y": [1.0, np.nan, 2.0, 3.0],
        }
    )
    ddf = frame(pdf, (2, 0, 2))
    for col in ("k", "s", "y"):
        with pytest.raises(hs.HeadstartError):
            hd.scan(ddf, column=col)
        assert hd.scan(ddf, column=col, nan="skip").skipped == 1
    assert list(hd.scan(ddf, column="s", nan="skip").counts) == [2, 1]
    with pytest.raises(hs.HeadstartError, match="no column named 'nope'"):
        hd.scan(ddf, column="nope")


def test_dataframe_multilabel_columns():
    pdf = pd.DataFrame({"a": [1, 0, 1, 1], "b": [0, 0, 1, 0], "c": [0.5, 0.5, 0.0, 1.0]})
    r = hd.scan(frame(pdf, (1, 0, 3)), column=["a", "c"])
    assert r.n == 4 and list(r.positives) == [3.0, 2.0] and list(r.classes) == ["a", "c"]


# ----------------------------------------------------------------- files


def write(path, values, header="y", sep=",", gz=False, id_col=True, pad=""):
    if path.endswith(".npy"):
        np.save(path, values)
        return path
    if path.endswith(".parquet"):
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        pq.write_table(pa.table({"id": np.arange(len(values)), "y": values}), path)
        return path
    rows = [repr(v.item()) if isinstance(v, np.generic) else str(v) for v in values]
    if sep is None:
        lines = rows
    elif id_col:
        lines = [f"id{sep}{header}"] + [f"{i}{sep}{pad}{v}{pad}" for i, v in enumerate(rows)]
    else:
        lines = [header] + rows
    data = ("\r\n".join(lines) + ("\r\n" if lines else "")).encode()
    if gz:
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + data if sep == "," and not gz else data)
    return path


def file_set(tmp_path, x, pad=""):
    sizes = [0, 1, len(x) // 3, 1, len(x) - len(x) // 3 - 2, 0]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    names = ["a.csv", "b.txt", "c.npy", "d.csv.gz", "e.tsv", "f.parquet"]
    paths = []
    for name, a, b in zip(names, starts[:-1], starts[1:]):
        sep = {".csv": ",", ".tsv": "\t", ".txt": None, ".gz": ","}.get(name[name.rfind(".") :])
        paths.append(write(str(tmp_path / name), x[a:b], sep=sep, gz=name.endswith(".gz"), pad=pad))
    return paths


def test_file_list_regression(tmp_path):
    x = np.round(np.random.default_rng(4).standard_normal(3000) * 5, 2)
    paths = file_set(tmp_path, x, pad=" ")  # spaces around numbers are allowed
    ref = hs.scan(x, quantiles=[0.25], huber_delta=2.0)
    r = hd.scan(paths, quantiles=[0.25], huber_delta=2.0, split_every=2)
    check_regression(r, ref, [0.25], [2.0])
    assert r.column == "y" and r.source == paths


def test_file_list_classes(tmp_path):
    y = np.random.default_rng(5).integers(0, 6, 2000)
    paths = file_set(tmp_path, y)
    r = hd.scan(paths, kind="classification")
    ref = hs.scan(y)
    np.testing.assert_array_equal(r.classes, ref.classes)
    np.testing.assert_array_equal(r.counts, ref.counts)
    names = [
        write(str(tmp_path / f"s{i}.csv"), ["cat", "dog", "cat"][i:], id_col=False)
        for i in range(3)
    ]
    r = hd.scan(names)
    assert list(r.classes) == ["cat", "dog"] and list(r.counts) == [4, 2]
    # integer labels from .npy and the same labels as text are one class
    ints = [
        write(str(tmp_path / "i.npy"), np.array([3, 4, 3])),
        write(str(tmp_path / "t.csv"), [3, 5], id_col=False),
    ]
    r = hd.scan(ints)
    assert list(r.classes) == [3, 4, 5] and list(r.counts) == [3, 1, 1]
    # numbers and names in one set of labels: an error, as on one machine
    with pytest.raises(hs.HeadstartError, match="mix numbers and names"):
        hd.scan(ints + [names[0]])


def test_file_list_multilabel(tmp_path):
    paths = []
    for i, rows in enumerate([["a|b", "b"], [], ["c|a", ""]]):
        paths.append(write(str(tmp_path / f"m{i}.csv"), rows, id_col=False))
    r = hd.scan(paths, label_sep="|")
    assert r.n == 4 and list(r.classes) == ["a", "b", "c"] and list(r.positives) == [2, 2, 1]


@pytest.mark.parametrize("nan", ["raise", "skip"])
def test_csv_fallback_after_batches(tmp_path, monkeypatch, nan):
    # pyarrow parses clean batches as float64; at the first value it rejects, the file is
    # read again as text, skipping the rows already counted
    monkeypatch.setattr(hd, "_CSV_BLOCK", 256)
    x = np.round(np.random.default_rng(8).standard_normal(2000), 3)
    rows = [repr(float(v)) for v in x]
    rows[1500] = f"  {rows[1500]} "
    if nan == "skip":
        rows[1700] = ""
    p = tmp_path / "late.csv"
    p.write_text("y\n" + "\n".join(rows) + "\n")
    r = hd.scan([str(p)], kind="regression", nan=nan, quantiles=[0.3])
    ref = hs.scan(str(p), kind="regression", nan=nan, quantiles=[0.3])
    check_regression(r, ref, [0.3])
    assert r.n == 2000 - (nan == "skip")


def test_file_errors(tmp_path):
    good = write(str(tmp_path / "g.csv"), [1.0, 2.0], id_col=False)
    p = tmp_path / "bad.csv"
    p.write_text("y\n1.5\n\n2\nabc\n")
    with pytest.raises(hs.HeadstartError, match=r"bad\.csv: data row 2, column 'y': empty value"):
        hd.scan([good, str(p)], kind="regression")
    with pytest.raises(
        hs.HeadstartError, match=r"bad\.csv: data row 4, column 'y': expected a number, found 'abc'"
    ):
        hd.scan([good, str(p)], kind="regression", nan="skip")
    p.write_text("y\n1.5\n\n2\nnan\n")
    r = hd.scan([good, str(p)], kind="regression", nan="skip")
    ref = hs.scan(str(p), kind="regression", nan="skip")
    assert (r.n, r.skipped) == (ref.n + 2, ref.skipped) == (4, 2)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        hd.scan([good, str(tmp_path / "nope.csv")])
    with pytest.raises(TypeError, match="Dask array"):
        hd.scan(np.arange(3))


# ----------------------------------------------------------------- bias_init


def test_bias_init_on_dask_collections(tmp_path):
    rng = np.random.default_rng(6)
    y = rng.integers(0, 5, 4001)
    t = rng.gamma(2.0, 1.5, (4001, 2))
    sizes = (0, 1, 2000, 0, 2000)
    cases = [
        (y, "cross_entropy", {}),
        (y, "multiclass_hinge_loss", {}),
        (y, "bce", {}),
        (t[:, 0], "mse", {}),
        (t[:, 0], "l1", {}),
        (t[:, 0], "huber", {"delta": 0.5}),
        (t[:, 0], "pinball", {"tau": 0.8}),
        (t[:, 0], "poisson", {}),
    ]
    for labels, loss, opts in cases:
        ref = hs.bias_init(labels, loss, **opts)
        for got in (
            hs.bias_init(partitioned(labels, sizes), loss, **opts),  # through headstart.scan
            hd.bias_init(partitioned(labels, sizes), loss, **opts),
        ):
            np.testing.assert_allclose(got.bias, ref.bias, rtol=1e-6, err_msg=loss)
            assert got.expected_loss == pytest.approx(ref.expected_loss, rel=1e-9), loss
    # 2-D: one regression output per column, probability rows, multi-label rows
    for labels, loss in [(t, "huber"), (t, "mse")]:
        ref = hs.bias_init(labels, loss)
        got = hd.bias_init(partitioned(labels, sizes), loss)
        np.testing.assert_allclose(got.bias, ref.bias, rtol=1e-6)
    probs = rng.dirichlet(np.ones(3), 500)
    np.testing.assert_allclose(
        hd.bias_init(partitioned(probs, (250, 0, 250)), "cross_entropy").bias,
        hs.bias_init(probs, "cross_entropy").bias,
        rtol=1e-6,
    )
    multi = (rng.random((500, 4)) < 0.3).astype(np.float32)
    np.testing.assert_allclose(
        hd.bias_init(partitioned(multi, (1, 499)), "bce").bias,
        hs.bias_init(multi, "bce").bias,
        rtol=1e-6,
    )
    # dataframe columns and a list of files
    pdf = pd.DataFrame({"a": t[:, 0], "b": t[:, 1], "cls": y})
    ddf = frame(pdf, sizes)
    np.testing.assert_allclose(
        hd.bias_init(ddf, "l1", column=["a", "b"]).bias, hs.bias_init(t, "l1").bias, rtol=1e-6
    )
    np.testing.assert_allclose(
        hs.bias_init(ddf, "ce", column="cls").bias, hs.bias_init(y, "ce").bias, rtol=1e-6
    )
    paths = file_set(tmp_path, t[:, 0])
    np.testing.assert_allclose(
        hd.bias_init(paths, "pinball", tau=0.3).bias, hs.bias_init(t[:, 0], "pinball", tau=0.3).bias
    )
    with pytest.raises(hs.HeadstartError, match="tau"):
        hd.bias_init(paths, "pinball", tau=1.5)
    # headstart.bias_init cannot tell 2-D Dask rows from labels: an error, never a wrong bias
    onehot = np.eye(3, dtype=np.int64)[y % 3]
    with pytest.raises(hs.HeadstartError, match="kind='multilabel'"):
        hs.bias_init(partitioned(onehot, sizes), "cross_entropy")
    np.testing.assert_allclose(
        hd.bias_init(partitioned(onehot, sizes), "cross_entropy").bias,
        hs.bias_init(onehot, "cross_entropy").bias,
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="one output per column"):
        hs.bias_init(partitioned(t, sizes), "mse")


# ----------------------------------------------------------------- a real cluster


def test_local_cluster_with_worker_processes(tmp_path):
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(40_000), np.full(5_000, 0.25)])
    rng.shuffle(x)
    y = rng.integers(0, 7, 20_000)
    paths = file_set(tmp_path, np.round(x[:3000], 3))
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    )
    with cluster, distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        ref = hs.scan(x, quantiles=[0.1], huber_delta=1.0)
        r = hs.scan(partitioned(x, (0, 1, 20_000, 24_999)), quantiles=[0.1], huber_delta=1.0)
        check_regression(r, ref, [0.1], [1.0])
        check_regression(hd.scan(paths), hs.scan(np.round(x[:3000], 3)))
        c = hd.scan(frame(pd.DataFrame({"y": y}), (5_000, 0, 15_000)))
        np.testing.assert_array_equal(c.counts, hs.scan(y).counts)
        bad = x.copy()
        bad[30_000] = np.nan
        with pytest.raises(hs.HeadstartError, match="NaN at index 30000"):
            hd.scan(partitioned(bad, (20_000, 25_000)))


def test_npy_partitions_read_by_file_reads(tmp_path):
    # .npy partitions are read block by block with file reads (no memory map: a file
    # truncated under a worker is an OSError, not SIGBUS): 2-D columns and multi-hot rows
    rng = np.random.default_rng(8)
    y = rng.normal(size=(500, 3))
    ps = [str(tmp_path / f"y{i}.npy") for i in range(2)]
    np.save(ps[0], y[:200])
    np.save(ps[1], y[200:])
    r = hd.scan(ps, column=2, quantiles=[0.5])
    assert r.n == 500 and r.median == np.median(y[:, 2])
    m = (rng.random((300, 4)) < 0.3).astype(np.uint8)
    ms = [str(tmp_path / f"m{i}.npy") for i in range(2)]
    np.save(ms[0], m[:100])
    np.save(ms[1], m[100:])
    r = hd.scan(ms, kind="multilabel")
    np.testing.assert_array_equal(r.positives, m.sum(axis=0))
    assert r.n == 300
