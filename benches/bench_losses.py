"""Losses, forward and forward+gradient: headstart vs numpy, torch and jax (when installed).

    python benches/bench_losses.py [--quick] [--threads N] [--rounds R] [--no-memory]

Every figure is measured in this run: the median of several repeats after a warm-up,
the best of three interleaved rounds (copy, headstart, each library), printed as a ratio
to ``np.copyto`` of the logits (the memory roof) and as headstart's speedup over each
library. Peak memory of forward+gradient is measured in a fresh
subprocess per method (peak RSS above the inputs, via /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

# torch's OpenMP workers spin after each call and would steal the cores from whatever is
# timed next; let them sleep instead (set before torch is imported).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import headstart as hs
import numpy as np

SHAPES = [(262144, 10), (16384, 1000), (1024, 32768), (128, 262144)]


def timeit(f, repeat, budget=0.2):
    """Median time of f: at least `repeat` calls, more for fast calls (about `budget`
    seconds of them, at most 500): a (262144, 10) loss takes about a millisecond, and
    7 calls of it swung the ratio by 2x on a shared machine."""
    t0 = time.perf_counter()
    f()
    first = time.perf_counter() - t0
    n = max(repeat, min(500, int(budget / max(first, 1e-6))))
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


# ---------------------------------------------------------------- numpy formulas


def np_ce(x, t, grad):
    m = x.max(axis=1, keepdims=True)
    z = x - m
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    n = x.shape[0]
    loss = (np.log(s[:, 0]) - z[np.arange(n), t]).mean()
    if not grad:
        return loss
    e /= s
    e[np.arange(n), t] -= 1
    e /= n
    return loss, e


def np_ww(x, t, grad):
    n = x.shape[0]
    xy = x[np.arange(n), t][:, None]
    z = x - xy + 1.0
    z[np.arange(n), t] = 0
    act = z > 0
    loss = np.where(act, z, 0).sum() / n
    if not grad:
        return loss
    g = act.astype(x.dtype) / n
    g[np.arange(n), t] = -act.sum(axis=1) / n
    return loss, g


def np_bce(x, y, grad):
    sp = np.logaddexp(0, -x)
    loss = ((1 - y) * x + sp).mean()
    if not grad:
        return loss
    return loss, (1 / (1 + np.exp(-x)) - y) / x.size


def np_mse(x, y, grad):
    r = x - y
    loss = (r * r).mean()
    return (loss, 2 * r / x.size) if grad else loss


# ---------------------------------------------------------------- methods


def methods(x, t, y, torch, jax):
    n = x.shape[0]
    g = np.empty_like(x)
    m = {
        "ce": {
            "headstart": lambda: hs.cross_entropy(x, t),
            "numpy": lambda: np_ce(x, t, False),
        },
        "ce+grad": {
            "headstart": lambda: hs.cross_entropy(x, t, grad_out=g),
            "numpy": lambda: np_ce(x, t, True),
        },
        "ww-hinge+grad": {
            "headstart": lambda: hs.multiclass_hinge_loss(x, t, grad_out=g),
            "numpy": lambda: np_ww(x, t, True),
        },
        "bce+grad": {
            "headstart": lambda: hs.binary_cross_entropy_with_logits(x, y, grad_out=g),
            "numpy": lambda: np_bce(x, y, True),
        },
        "mse+grad": {
            "headstart": lambda: hs.mse_loss(x, y, grad_out=g),
            "numpy": lambda: np_mse(x, y, True),
        },
    }
    if torch is not None:
        F = torch.nn.functional
        xt0 = torch.from_numpy(x)
        tt = torch.from_numpy(t)
        yt = torch.from_numpy(y)

        def tgrad(f):
            def run():
                xt = xt0.detach().requires_grad_(True)
                f(xt).backward()
                return xt.grad

            return run

        m["ce"]["torch"] = lambda: F.cross_entropy(xt0, tt)
        m["ce+grad"]["torch"] = tgrad(lambda a: F.cross_entropy(a, tt))
        m["ww-hinge+grad"]["torch"] = tgrad(lambda a: F.multi_margin_loss(a, tt))
        m["bce+grad"]["torch"] = tgrad(lambda a: F.binary_cross_entropy_with_logits(a, yt))
        m["mse+grad"]["torch"] = tgrad(lambda a: F.mse_loss(a, yt))
    if jax is not None:
        jnp = jax.numpy
        xj, tj, yj = jnp.asarray(x), jnp.asarray(t), jnp.asarray(y)

        def jce(a):
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(a, -1), tj[:, None], 1))

        f1 = jax.jit(jce)
        f2 = jax.jit(jax.value_and_grad(jce))
        m["ce"]["jax"] = lambda: f1(xj).block_until_ready()
        m["ce+grad"]["jax"] = lambda: f2(xj)[1].block_until_ready()
        del yj, n
    return m


MEM_CHILD = r"""
import sys, numpy as np
sys.path.insert(0, {bench!r})
import bench_losses as b
torch = None
if {use_torch}:
    import torch
    torch.set_num_threads({threads})
import headstart as hs
hs.set_num_threads({threads})
rng = np.random.default_rng(0)
x = (rng.standard_normal({shape}) * 3).astype(np.{dtype})
t = rng.integers(0, {shape}[1], {shape}[0])
y = (rng.random({shape}) > 0.5).astype(np.{dtype})
f = b.methods(x, t, y, torch, None)[{op!r}][{lib!r}] if {lib!r} != "headstart-inplace" else (
    lambda: hs.cross_entropy(x, t, grad_out=x))
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")
base = hwm()
f()
print(hwm() - base)
"""


def peak_memory(op, lib, shape, dtype, threads, use_torch):
    code = MEM_CHILD.format(
        bench=os.path.dirname(os.path.abspath(__file__)),
        use_torch=use_torch,
        threads=threads,
        shape=shape,
        dtype=dtype,
        op=op,
        lib=lib,
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return None
    return int(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, float32 only")
    ap.add_argument("--threads", type=int, default=0, help="threads for every library")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory table")
    args = ap.parse_args()
    if args.threads:
        hs.set_num_threads(args.threads)
    threads = hs.get_num_threads()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
        print("torch not installed: torch columns skipped")
    try:
        import jax

        jax.config.update("jax_platforms", "cpu")
        # Without x64, jnp.asarray turns float64 data into float32 and the float64 rows
        # would time jax in single precision.
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = None
        print("jax not installed: jax columns skipped")
    repeat = 3 if args.quick else 7
    rounds = 1 if args.quick else args.rounds
    libs = ["numpy"] + (["torch"] if torch else []) + (["jax"] if jax else [])
    print(
        f"\nheadstart {hs.__version__}, SIMD {hs.simd_level()}, {threads} threads; "
        "ratio = time / np.copyto(logits); speedup = other / headstart\n"
    )
    head = (
        "| dtype | shape | op | headstart (x copy) | "
        + " | ".join(f"{lib} (x copy) | vs {lib}" for lib in libs)
        + " |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    rng = np.random.default_rng(0)
    for dtype in [np.float32] if args.quick else [np.float32, np.float64]:
        for shape in SHAPES:
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            t = rng.integers(0, shape[1], shape[0])
            y = (rng.random(shape) > 0.5).astype(dtype)
            out = np.empty_like(x)
            ms = methods(x, t, y, torch, jax)
            # headstart and the copy first, each library after: other libraries' thread
            # pools keep spinning for a while after their calls.
            # Rounds: the copy and every method again, keeping each one's best median.
            # On a shared machine a slow spell lasting seconds lifted whichever op it
            # fell on (the first op of a run read 30% high); interleaved rounds let each
            # figure come from a quiet stretch, for every library alike.
            copy, ours, others = np.inf, {}, {}
            for _ in range(rounds):
                time.sleep(0.5)
                copy = min(copy, timeit(lambda o=out, a=x: np.copyto(o, a), repeat))
                for op, impls in ms.items():
                    ours[op] = min(ours.get(op, np.inf), timeit(impls["headstart"], repeat))
                for lib in libs:
                    for op, impls in ms.items():
                        if lib in impls:
                            t_ = timeit(impls[lib], repeat)
                            others[lib, op] = min(others.get((lib, op), np.inf), t_)
            for op in ms:
                th = ours[op]
                cells = [f"{th / copy:.2f}"]
                for lib in libs:
                    if (lib, op) in others:
                        tl = others[lib, op]
                        cells += [f"{tl / copy:.2f}", f"{tl / th:.1f}x"]
                    else:
                        cells += ["-", "-"]
                print(f"| {np.dtype(dtype).name} | {shape} | {op} | " + " | ".join(cells) + " |")

    if args.no_memory:
        return
    shape = (16384, 1000)
    mb = 16384 * 1000 * 4 / 2**20
    print(
        f"\nPeak memory of cross-entropy forward+gradient, float32 {shape} "
        f"(logits = {mb:.0f} MiB), above the inputs:\n"
    )
    print("| method | peak extra MiB | x logits |")
    print("|---|---|---|")
    rows = [("ce+grad", "headstart"), ("ce+grad", "headstart-inplace"), ("ce+grad", "numpy")]
    if torch:
        rows.append(("ce+grad", "torch"))
    for op, lib in rows:
        peak = peak_memory(op, lib, shape, "float32", threads, torch is not None)
        if peak is None:
            print(f"| {lib} | failed | |")
            continue
        print(f"| {lib} | {peak / 2**20:.0f} | {peak / 2**20 / mb:.2f} |")
    import resource

    print(
        f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
