"""headstart.dask vs the single-process scan of the same 1 GB label set, in the same run.

    python ../shared/bench/gen_labels.py --out /tmp/headstart-bench   # once: reg.npy, 250M float32
    python benches/bench_dask.py [--data /tmp/headstart-bench] [--parts 8] [--repeat 3] [--cluster]

The label set is reg.npy (250M float32 = 1 GB). Contenders, all computing the same exact
statistics (count, mean, var, min, max, exact median, and per row the extra order
statistics):

- ``hs.scan(path)``: the single-process scan of the file (Rust reader, memory-mapped,
  multi-threaded): the reference every ratio divides by;
- ``hs.scan(memmap)``: the same data as a numpy memory map through the streaming states in
  one process (what every Dask partition task does, without Dask);
- ``dask array``: ``headstart.dask.scan`` of ``da.from_array(memmap, chunks=N/parts)`` on
  Dask's default threaded scheduler;
- ``dask files``: ``headstart.dask.scan`` of ``parts`` .npy files (written once next to
  reg.npy), one partition per file, threaded scheduler;
- ``--cluster``: the file list again on a ``LocalCluster`` of 2 worker processes (1 thread
  each): the partition states travel between processes pickled.

``--csv`` adds two rows on the CSV files, each cut into ``parts`` CSV files at line
boundaries: class counts of cls.csv (one pass; the Rust reader per file) and the exact
median of reg.csv (its partitions re-read once per pass with pyarrow's CSV reader).

Each of --repeat rounds runs ``hs.scan(path)`` and then every contender, after one untimed
warm-up read (page cache warm); a time is the median over rounds, and "x single" is the
median over rounds of the contender's time / ``hs.scan(path)``'s in the same round. "passes" is how many passes over
the data the statistics took (single path / Dask). Answers are checked equal (order
statistics bit for bit) before anything is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial

import numpy as np

STATS = [
    ("mean, var, median", {}),
    ("+ quantiles 0.1, 0.9", {"quantiles": [0.1, 0.9]}),
    ("+ Huber location (delta=1)", {"huber_delta": 1.0}),
]


def race(ref, contenders, repeat):
    """Rounds of ref then each contender; the median time of each, and the median over
    rounds of contender / ref within the same round (robust to load that comes and goes)."""
    times = [[] for _ in range(1 + len(contenders))]
    outs = [None] * (1 + len(contenders))
    for _ in range(repeat):
        for i, fn in enumerate([ref, *contenders]):
            t = time.perf_counter()
            outs[i] = fn()
            times[i].append(time.perf_counter() - t)
    ratios = [statistics.median(a / b for a, b in zip(ts, times[0])) for ts in times[1:]]
    return statistics.median(times[0]), [statistics.median(ts) for ts in times[1:]], ratios, outs


def split_files(path, mm, parts):
    folder = os.path.join(os.path.dirname(path), f"dask-parts-{parts}")
    os.makedirs(folder, exist_ok=True)
    bounds = np.linspace(0, mm.shape[0], parts + 1).astype(np.int64)
    paths = []
    for k in range(parts):
        p = os.path.join(folder, f"part-{k}.npy")
        want = int(bounds[k + 1] - bounds[k])
        if not os.path.exists(p) or np.load(p, mmap_mode="r").shape != (want,):
            np.save(p, mm[bounds[k] : bounds[k + 1]])
        paths.append(p)
    return paths


def split_csv(path, parts):
    """Cut a CSV with a header into parts at line boundaries, the header in each part."""
    folder = os.path.join(os.path.dirname(path), f"dask-parts-{parts}")
    os.makedirs(folder, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    out = [os.path.join(folder, f"{stem}-{k}.csv") for k in range(parts)]
    size = os.path.getsize(path)
    if all(os.path.exists(p) for p in out) and sum(map(os.path.getsize, out)) > size:
        return out
    with open(path, "rb") as f:
        header = f.readline()
        cuts = [f.tell()]
        for k in range(1, parts):
            f.seek(max(cuts[-1], size * k // parts))
            f.readline()
            cuts.append(f.tell())
        cuts.append(size)
        for p, a, b in zip(out, cuts[:-1], cuts[1:]):
            f.seek(a)
            with open(p, "wb") as g:
                g.write(header)
                left = b - a
                while left:
                    block = f.read(min(left, 1 << 24))
                    g.write(block)
                    left -= len(block)
    return out


def warm(paths):
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.read(1 << 24):
                pass


def same(a, b, opts):
    if any(getattr(a, f) != getattr(b, f) for f in ("n", "min", "max", "median")):
        return False
    for q in opts.get("quantiles", ()):
        if a.quantile(q) != b.quantile(q):
            return False
    d = opts.get("huber_delta")
    if d is not None and abs(a.huber_location(d) - b.huber_location(d)) > 1e-12 * abs(
        b.max - b.min
    ):
        return False
    return abs(a.mean - b.mean) <= 1e-12 * max(abs(b.mean), 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/tmp/headstart-bench")
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cluster", action="store_true", help="also time a 2-process LocalCluster")
    ap.add_argument("--csv", action="store_true", help="also cls.csv counts and reg.csv median")
    args = ap.parse_args()

    import dask
    import dask.array as da
    import headstart as hs
    import headstart.dask as hd

    path = os.path.join(args.data, "reg.npy")
    if not os.path.exists(path):
        sys.exit(f"{path} missing: python ../shared/bench/gen_labels.py --out {args.data}")
    mm = np.load(path, mmap_mode="r")
    paths = split_files(path, mm, args.parts)
    warm([path, *paths])
    arr = da.from_array(mm, chunks=(-(-mm.shape[0] // args.parts),))
    print(
        f"reg.npy: {mm.shape[0]:,} {mm.dtype} ({mm.nbytes / 2**30:.2f} GiB), {args.parts} partitions; "
        f"{os.cpu_count()} CPUs, headstart threads {hs.get_num_threads()}, "
        f"dask {dask.__version__}, median of {args.repeat} runs"
    )

    contenders = [
        ("hs.scan(memmap)", lambda o: hs.scan(mm, kind="regression", **o)),
        ("dask array", lambda o: hd.scan(arr, kind="regression", **o)),
        ("dask files", lambda o: hd.scan(paths, kind="regression", **o)),
    ]
    cluster = client = None
    if args.cluster:
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster, set_as_default=False)
        contenders.append(
            ("cluster files", lambda o: hd.scan(paths, kind="regression", scheduler=client, **o))
        )

    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    head = ["statistics", "passes", "hs.scan(path) s"] + [f"{c} (x single)" for c, _ in contenders]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    try:
        for label, opts in STATS:
            t0, ts, ratios, outs = race(
                partial(hs.scan, path, kind="regression", **opts),
                [partial(fn, opts) for _, fn in contenders],
                args.repeat,
            )
            ref = outs[0]
            for (name, _), r in zip(contenders, outs[1:]):
                if not same(r, ref, opts):
                    raise SystemExit(
                        f"{name} disagrees with hs.scan(path) on {label}: {r} vs {ref}"
                    )
            cells = [f"{t:.2f} s ({q:.2f}x)" for t, q in zip(ts, ratios)]
            row = [label, f"{ref.passes} / {outs[2].passes}", f"{t0:.2f}", *cells]
            print("| " + " | ".join(row) + " |", flush=True)
        if args.csv:
            csv_rows(args, hs, hd, client)
    finally:
        if client is not None:
            client.close()
            cluster.close()
    print(f"load average at end: {os.getloadavg()[0]:.2f} (other work on the machine skews times)")


def csv_rows(args, hs, hd, client):
    for name, kind in (("cls.csv", "classification"), ("reg.csv", "regression")):
        path = os.path.join(args.data, name)
        if not os.path.exists(path):
            print(f"{path} missing: row skipped")
            continue
        parts = split_csv(path, args.parts)
        warm([path, *parts])
        runs = [partial(hd.scan, parts, kind=kind)]
        if client is not None:
            runs.append(partial(hd.scan, parts, kind=kind, scheduler=client))
        t0, ts, ratios, outs = race(partial(hs.scan, path, kind=kind), runs, args.repeat)
        ref, r = outs[0], outs[1]
        if kind == "classification":
            ok = np.array_equal(r.counts, ref.counts) and np.array_equal(r.classes, ref.classes)
            label, passes = f"{name}: class counts", "1 / 1"
        else:
            ok = same(r, ref, {})
            label, passes = f"{name}: mean, var, median", f"{ref.passes} / {r.passes}"
        if not ok:
            raise SystemExit(f"dask files disagree with hs.scan(path) on {name}")
        cells = [label, passes, f"{t0:.2f}", "", ""]
        cells += [f"{t:.2f} s ({q:.2f}x)" for t, q in zip(ts, ratios)]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
