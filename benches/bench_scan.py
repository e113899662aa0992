"""Label-file scans: headstart vs polars, duckdb and numpy, with the I/O floor and peak RSS.

    python ../shared/bench/gen_labels.py --out /tmp/headstart-bench   # ~1 GB files, once
    python benches/bench_scan.py [--data /tmp/headstart-bench] [--repeat 3]

Every job runs in a fresh subprocess (so peak RSS is its own), after one untimed warm-up
read of the file so every contender sees the page cache warm; times are the median of
--repeat runs, all in this run, and every figure is printed as a ratio to headstart's
time. "I/O floor" reads the file once in 16 MiB blocks and does nothing else.

Jobs:
- reg.csv (`id,y`, 60M rows): the full regression report: count, mean, var, min, max,
  exact median, mean |y - median|, and (headstart only: polars and duckdb have none) the
  exact Huber location. polars and duckdb compute the same statistics with their exact
  median.
- cls.csv (`id,label`, 60M rows of 1000 string classes): class counts.
- reg.npy (250M float32): exact median; headstart vs np.median on the memory map.
- tokens.bin (500M uint16 tokens, 1 GiB, nanoGPT's format; generated here on first use from
  a Zipf law over a 50257-token vocabulary, ids shuffled): class counts (the unigram
  prior); headstart vs a chunked np.bincount over np.memmap.

Rounds are interleaved: each round runs every job of a file once, so a slow spell of the
shared machine falls on all of them. Peak RSS is the job process's VmHWM.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

JOBS = {
    "floor": """
import time
t = time.perf_counter()
with open(PATH, 'rb', buffering=0) as f:
    while f.read(1 << 24):
        pass
T = time.perf_counter() - t
""",
    "hs_reg": """
import time, headstart as hs
t = time.perf_counter()
r = hs.scan(PATH, kind='regression', huber_delta=1.0)
out = (r.n, r.mean, r.var, r.min, r.max, r.median, r.mad, r.huber_location(1.0))
T = time.perf_counter() - t
EXTRA = {'passes': r.passes, 'median': r.median, 'mad': r.mad}
""",
    "polars_reg": """
import time, polars as pl
t = time.perf_counter()
y = pl.col('y')
df = pl.scan_csv(PATH).select(
    pl.len().alias('n'), y.mean().alias('mean'), y.var(ddof=0).alias('var'),
    y.min().alias('min'), y.max().alias('max'), y.median().alias('median'),
    (y - y.median()).abs().mean().alias('mad')).collect()
T = time.perf_counter() - t
EXTRA = {'median': df['median'][0], 'mad': df['mad'][0]}
""",
    "duckdb_reg": """
import time, duckdb
t = time.perf_counter()
con = duckdb.connect(); con.execute('SET enable_progress_bar=false')
r = con.execute(f\"\"\"
  WITH d AS (SELECT y FROM read_csv('{PATH}', columns={{'id': 'BIGINT', 'y': 'DOUBLE'}}, header=true)),
       m AS (SELECT median(y) AS med FROM d)
  SELECT count(*), avg(y), var_pop(y), min(y), max(y), (SELECT med FROM m),
         avg(abs(y - (SELECT med FROM m))) FROM d\"\"\").fetchall()[0]
T = time.perf_counter() - t
EXTRA = {'median': r[5], 'mad': r[6]}
""",
    "hs_cls": """
import time, headstart as hs
t = time.perf_counter()
r = hs.scan(PATH, kind='classification')
T = time.perf_counter() - t
EXTRA = {'classes': int(r.num_classes), 'top': int(r.counts.max())}
""",
    "polars_cls": """
import time, polars as pl
t = time.perf_counter()
df = pl.scan_csv(PATH).group_by('label').len().collect()
T = time.perf_counter() - t
EXTRA = {'classes': df.height, 'top': int(df['len'].max())}
""",
    "duckdb_cls": """
import time, duckdb
t = time.perf_counter()
con = duckdb.connect(); con.execute('SET enable_progress_bar=false')
r = con.execute(f"SELECT label, count(*) AS c FROM read_csv('{PATH}', header=true) GROUP BY label").fetchall()
T = time.perf_counter() - t
EXTRA = {'classes': len(r), 'top': max(c for _, c in r)}
""",
    "hs_npy": """
import time, headstart as hs
t = time.perf_counter()
r = hs.scan(PATH, kind='regression')
m = r.median
T = time.perf_counter() - t
EXTRA = {'passes': r.passes, 'median': m}
""",
    "hs_tok": """
import time, headstart as hs
t = time.perf_counter()
r = hs.scan(PATH, label_dtype='uint16')
T = time.perf_counter() - t
EXTRA = {'classes': int(r.num_classes), 'top': int(r.counts.max())}
""",
    "numpy_tok": """
import time, numpy as np
t = time.perf_counter()
m = np.memmap(PATH, dtype=np.uint16, mode='r')
c = np.zeros(1 << 16, np.int64)
for i in range(0, m.shape[0], 1 << 24):
    c += np.bincount(m[i : i + (1 << 24)], minlength=1 << 16)
T = time.perf_counter() - t
EXTRA = {'classes': int((c > 0).sum()), 'top': int(c.max())}
""",
    "numpy_npy": """
import time, numpy as np
t = time.perf_counter()
m = float(np.median(np.load(PATH, mmap_mode='r')))
T = time.perf_counter() - t
EXTRA = {'median': m}
""",
}

RUNNER = """
import json, sys
PATH = sys.argv[1]
EXTRA = {{}}
{code}
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(json.dumps({{'t': T, 'rss': int(hwm) / 1024, **EXTRA}}))
"""


def make_tokens(path, n=500_000_000, vocab=50257, seed=0):
    """A nanoGPT-style train.bin: n uint16 tokens, Zipf-like over `vocab`, written in
    chunks (bounded memory)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    p = 1.0 / (np.arange(vocab) + 2.7) ** 1.07
    cdf = np.cumsum(p / p.sum())
    ids = rng.permutation(vocab).astype(np.uint16)  # rank -> token id
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        for i in range(0, n, 1 << 24):
            k = min(1 << 24, n - i)
            ranks = np.minimum(np.searchsorted(cdf, rng.random(k)), vocab - 1)
            ids[ranks].tofile(f)
    os.replace(tmp, path)


def run(job, path, threads):
    env = dict(os.environ)
    if threads:
        env.update(RAYON_NUM_THREADS=str(threads), POLARS_MAX_THREADS=str(threads))
    code = RUNNER.format(code=JOBS[job])
    if job.startswith("duckdb") and threads:
        code = code.replace("duckdb.connect()", f"duckdb.connect(config={{'threads': {threads}}})")
    r = subprocess.run(
        [sys.executable, "-c", code, path], capture_output=True, text=True, env=env, check=False
    )
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def summary(rs):
    ok = [r for r in rs if "error" not in r]
    if not ok:
        return rs[0]
    ok.sort(key=lambda r: r["t"])
    med = dict(ok[len(ok) // 2])
    med["rss"] = max(r["rss"] for r in ok)
    med["spread"] = (ok[0]["t"], ok[-1]["t"])
    return med


def interleaved(jobs, path, repeat, threads):
    """Each round runs every job once; the median (and spread) per job."""
    runs = {j: [] for j in jobs}
    for _ in range(repeat):
        for j in jobs:
            runs[j].append(run(j, path, threads))
    return {j: summary(rs) for j, rs in runs.items()}


def available(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/headstart-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="threads for every library (0 = all)")
    ap.add_argument("--only", nargs="*", help="files to run (e.g. tokens.bin); default: all")
    a = ap.parse_args()
    libs = [m for m in ("polars", "duckdb") if available(m)]
    for m in ("polars", "duckdb"):
        if m not in libs:
            print(f"{m} not installed: its rows are skipped (pip install {m})")
    groups = [
        ("reg.csv", "full regression report", ["hs_reg"] + [f"{m}_reg" for m in libs]),
        ("cls.csv", "class counts", ["hs_cls"] + [f"{m}_cls" for m in libs]),
        ("reg.npy", "exact median", ["hs_npy", "numpy_npy"]),
        ("tokens.bin", "token counts (uint16)", ["hs_tok", "numpy_tok"]),
    ]
    print(
        f"\nthreads: {a.threads or os.cpu_count()}; median of {a.repeat} runs; "
        "ratio = time / headstart's time (> 1: headstart is faster)\n"
    )
    print("| file | job | method | seconds | x headstart | peak RSS MiB | notes |")
    print("|---|---|---|---|---|---|---|")
    for fname, what, jobs in groups:
        if a.only and fname not in a.only:
            continue
        path = os.path.join(a.data, fname)
        if fname == "tokens.bin" and not os.path.exists(path):
            print(f"(generating {path}: 500M Zipf tokens, 1 GiB)", file=sys.stderr)
            os.makedirs(a.data, exist_ok=True)
            make_tokens(path)
        if not os.path.exists(path):
            print(f"| {fname} | {what} | missing: run ../shared/bench/gen_labels.py | | | | |")
            continue
        size = os.path.getsize(path) / 2**20
        run("floor", path, a.threads)  # warm the page cache
        res = interleaved(["floor", *jobs], path, a.repeat, a.threads)
        floor = res["floor"]
        ours = res[jobs[0]]["t"]
        print(
            f"| {fname} ({size:.0f} MiB) | {what} | I/O floor (read once) | {floor['t']:.2f} | "
            f"{floor['t'] / ours:.2f} | {floor['rss']:.0f} | |"
        )
        for j in jobs:
            r = res[j]
            if "error" in r:
                print(f"| | | {j} | error | | | {r['error'][:80]} |")
                continue
            lo, hi = r["spread"]
            notes = ", ".join(
                [f"runs {lo:.2f}-{hi:.2f} s"]
                + [
                    f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in r.items()
                    if k not in ("t", "rss", "spread")
                ]
            )
            print(f"| | | {j} | {r['t']:.2f} | {r['t'] / ours:.2f} | {r['rss']:.0f} | {notes} |")


if __name__ == "__main__":
    main()
