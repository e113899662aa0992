"""Bounded memory: a label file larger than the RSS budget scans within the budget.

A ~288 MB CSV of floats is written on the fly (distinct random blocks, shuffled and
repeated, so writing takes about a second), then scanned for the exact median, two
quantiles and a Huber location in a fresh subprocess whose peak RSS (``VmHWM``; on Linux
``ru_maxrss`` would include the pytest parent's peak, inherited across fork+exec) must
stay under ``BUDGET_MB`` and well under the file size. The figure is printed (run with
``-s`` to see it). This is in the default suite on purpose: CI must run it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

BUDGET_MB = 250
BLOCK_VALUES = 200_000  # ~3.6 MB of text per block
DISTINCT_BLOCKS = 16
TARGET_BYTES = 288 << 20

CHILD = r"""
import json, resource, sys, time
import headstart as hs
t0 = time.perf_counter()
s = hs.scan(sys.argv[1], column="y", kind="regression", quantiles=[0.1, 0.9], huber_delta=1.5)
dt = time.perf_counter() - t0
# ru_maxrss (kB on Linux) survives fork + exec: a child of a big pytest process starts with
# the parent's peak. VmHWM belongs to the exec'd address space, so it is this process's own.
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    with open("/proc/self/status") as f:
        peak_kb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({"n": s.n, "median": s.median, "huber": s.huber_location(1.5),
                  "q10": s.quantile(0.1), "peak_mb": peak_kb / 1024, "seconds": dt}))
"""


def _write_labels(path):
    rng = np.random.default_rng(7)
    blocks, values = [], []
    for b in range(DISTINCT_BLOCKS):
        v = rng.standard_t(3, size=BLOCK_VALUES) * 10 + b  # heavy tails: Huber matters
        text = [f"{x:.15g}" for x in v]
        values.append(np.array(text, dtype=np.float64))  # exactly what the file holds
        blocks.append("".join(f"{i},{t}\n" for i, t in enumerate(text)).encode())
    written, n = 0, 0
    order = []
    with open(path, "wb", buffering=1 << 20) as f:
        f.write(b"id,y\n")
        while written < TARGET_BYTES:
            k = int(rng.integers(DISTINCT_BLOCKS))
            f.write(blocks[k])
            written += len(blocks[k])
            n += BLOCK_VALUES
            order.append(k)
    return written, n, order, values


def test_scan_large_file_within_rss_budget(tmp_path):
    path = tmp_path / "labels.csv"
    size, n, order, values = _write_labels(path)
    assert size > BUDGET_MB << 20
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    size_mb = size / (1 << 20)
    print(
        f"\nscan of a {size_mb:.0f} MB CSV ({n} rows): peak RSS {out['peak_mb']:.1f} MB "
        f"(budget {BUDGET_MB} MB), {out['seconds']:.2f} s"
    )
    assert out["n"] == n
    assert out["peak_mb"] < BUDGET_MB, out
    assert out["peak_mb"] < 0.75 * size_mb, out
    # the answer is still the exact one (checked cheaply: the median of the block mixture)
    counts = np.bincount(order, minlength=DISTINCT_BLOCKS)
    allv = np.repeat(np.stack(values), counts, axis=0).reshape(-1)
    assert out["median"] == float(np.median(allv))


HOSTILE = r"""
import json, sys
import headstart as hs
kw = json.loads(sys.argv[2])
try:
    hs.scan(sys.argv[1], **kw)
    outcome = "ok"
except Exception as e:  # the outcome is checked by the parent
    outcome = f"{type(e).__name__}: {e}"
with open("/proc/self/status") as f:
    peak_kb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "peak_mb": peak_kb / 1024}))
"""


def _hostile(path, **kw):
    r = subprocess.run(
        [sys.executable, "-c", HOSTILE, str(path), json.dumps(kw)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_endless_line_and_huge_header_are_errors_in_bounded_memory(tmp_path):
    """Issue 7's hostile files: one 320 MB line, a header of 80M columns, and a gzip
    that inflates to 1 GB with no newline. Each is a clear error naming the record
    limit, raised with peak RSS far below the data (records are capped at 64 MiB)."""
    import gzip

    chunk = b"7" * (16 << 20)
    line = tmp_path / "line.txt"
    with open(line, "wb") as f:
        f.writelines(chunk for _ in range(20))
    header = tmp_path / "header.csv"
    with open(header, "wb") as f:
        f.writelines(b"a," * (8 << 20) for _ in range(10))
        f.write(b"y\n1\n")
    bomb = tmp_path / "bomb.txt.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        f.writelines(chunk for _ in range(64))
    assert bomb.stat().st_size < 8 << 20
    cases = [
        (line, {"kind": "regression"}),
        (line, {"kind": "classification"}),
        (header, {"column": "y", "kind": "regression"}),
        (bomb, {"kind": "regression"}),
    ]
    for path, kw in cases:
        out = _hostile(path, **kw)
        print(f"\n{path.name} {kw}: {out['outcome'][-120:]}; peak RSS {out['peak_mb']:.0f} MB")
        assert out["outcome"].startswith("HeadstartError"), out
        assert "longer than 64 MiB" in out["outcome"] and f"{path.name}:1:" in out["outcome"], out
        assert out["peak_mb"] < 250, out
