"""Many Python threads calling headstart at once.

The kernels and scans release the GIL, so threads really run together: these tests check
that concurrent calls give bit-identical answers to serial ones (no shared scratch state,
results independent of scheduling), and that a file scan running in one thread leaves
another thread free to do numpy work (the GIL is released during the scan: the two time
windows overlap). Only overlap is asserted, never a speed-up: the CI machine may have two
noisy cores.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import headstart as hs

THREADS = 8


def _same(a, b):
    """Bit-identical, NaN-aware, for nested results."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def _run_both(fn, inputs):
    serial = [fn(x) for x in inputs]
    with ThreadPoolExecutor(THREADS) as ex:
        # every input several times, interleaved, so identical calls overlap too
        futures = [ex.submit(fn, x) for _ in range(3) for x in inputs]
        parallel = [f.result(timeout=120) for f in futures]
    for i, got in enumerate(parallel):
        _same(serial[i % len(inputs)], got)


def test_softmax_threads():
    rng = np.random.default_rng(0)
    inputs = [
        rng.normal(size=(257, 1000 + 37 * i)).astype(dt)
        for i, dt in enumerate([np.float32, np.float64] * 4)
    ]
    _run_both(lambda x: hs.softmax(x, axis=-1), inputs)
    _run_both(lambda x: hs.log_softmax(x, axis=0), inputs)
    _run_both(lambda x: hs.logsumexp(x, axis=-1), inputs)


def test_cross_entropy_with_grad_threads():
    rng = np.random.default_rng(1)
    inputs = []
    for i in range(8):
        c = 10 + 13 * i
        x = rng.normal(size=(4096, c)).astype(np.float32 if i % 2 else np.float64)
        y = rng.integers(0, c, size=4096)
        inputs.append((x, y))
    _run_both(lambda a: hs.cross_entropy(a[0], a[1], return_grad=True, label_smoothing=0.1), inputs)

    # grad_out= the caller's own buffer (in place) in each thread
    def inplace(a):
        x = a[0].copy()
        loss, g = hs.cross_entropy(x, a[1], grad_out=x)
        return loss, g

    _run_both(inplace, inputs)


@pytest.fixture(scope="module")
def label_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("conc")
    rng = np.random.default_rng(2)
    paths = []
    for i in range(4):
        v = rng.lognormal(size=200_000 + 1000 * i)
        p = d / f"reg{i}.csv"
        np.savetxt(p, v, fmt="%.17g", header="y", comments="")
        paths.append(p)
        c = d / f"cls{i}.txt"
        np.savetxt(c, rng.integers(0, 50 + i, size=100_000), fmt="%d")
        paths.append(c)
    big = d / "big.csv"
    with open(big, "w") as f:
        f.write("id,y\n")
        for k in range(8):
            n = 250_000
            v = rng.normal(size=n)
            f.write("".join(f"{k * n + j},{x:.17g}\n" for j, x in enumerate(v)))
    return paths, big


def _stats_key(s):
    if isinstance(s, hs.RegressionStats):
        return (
            s.n,
            s.mean,
            s.std,
            s.min,
            s.max,
            s.median,
            s.quantile(0.1),
            s.quantile(0.9),
            s.huber_location(1.0),
            s.mad,
        )
    return (tuple(np.asarray(s.classes).tolist()), tuple(np.asarray(s.counts).tolist()))


def test_scan_threads(label_files):
    paths, _ = label_files
    fn = lambda p: _stats_key(hs.scan(p, quantiles=[0.1, 0.9], huber_delta=1.0))  # noqa: E731
    serial = [fn(p) for p in paths]
    with ThreadPoolExecutor(THREADS) as ex:
        parallel = list(ex.map(fn, paths * 2, timeout=300))
    for i, got in enumerate(parallel):
        assert got == serial[i % len(paths)], paths[i % len(paths)]


def test_bias_init_threads(label_files):
    paths, _ = label_files
    rng = np.random.default_rng(3)
    jobs = [
        (paths[0], "huber", {"delta": 0.5}),
        (paths[1], "ce", {}),
        (paths[2], "l1", {}),
        (paths[3], "multi_margin_loss", {}),
        (rng.integers(0, 7, size=50_000), "ce", {"label_smoothing": 0.1}),
        (rng.normal(size=50_000), "pinball", {"tau": 0.3}),
        (rng.poisson(2.0, size=50_000).astype(float), "poisson", {}),
        ((rng.random((20_000, 5)) < 0.3).astype(np.float32), "bce", {}),
    ]

    def fn(j):
        r = hs.bias_init(j[0], j[1], **j[2])
        return (np.asarray(r.bias), np.float64(r.expected_loss))

    _run_both(fn, jobs)


def test_scan_does_not_block_numpy(label_files):
    """While one thread scans a file, another thread's numpy work proceeds: their time
    windows overlap (as safetensors' test_threadable). numpy's matmul releases the GIL too,
    so the worker does a pure-Python-driven loop of small numpy calls, which needs the GIL
    between calls: it only makes progress during the scan if the scan has released it."""
    _, big = label_files
    barrier = threading.Barrier(2)
    windows = {}

    def scanner():
        barrier.wait()
        t0 = time.perf_counter()
        s = hs.scan(big, huber_delta=1.0, quantiles=[0.25, 0.75])
        windows["scan"] = (t0, time.perf_counter())
        return s.n

    ticks = []

    def worker():
        barrier.wait()
        t0 = time.perf_counter()
        a = np.arange(1000.0)
        # run until the scan is done (bounded), recording when each small step finished
        while "scan" not in windows and time.perf_counter() - t0 < 60:
            a = np.sqrt(a * a + 1.0)
            ticks.append(time.perf_counter())
        windows["numpy"] = (t0, time.perf_counter())

    with ThreadPoolExecutor(2) as ex:
        fs = ex.submit(scanner)
        fw = ex.submit(worker)
        n = fs.result(timeout=120)
        fw.result(timeout=120)
    assert n == 2_000_000
    s0, s1 = windows["scan"]
    inside = [t for t in ticks if s0 < t < s1]
    duration = s1 - s0
    print(f"scan {duration:.3f} s; numpy steps during it: {len(inside)}")
    # With the GIL held for the whole scan the worker would record no step strictly inside
    # the scan's window (beyond the switch interval at its start). Ask for steps spread over
    # the window: some in its second half.
    late = [t for t in inside if t > s0 + duration / 2]
    assert len(inside) > 10 and late, (len(inside), len(late), duration)
