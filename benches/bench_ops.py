"""softmax / log_softmax / logsumexp: headstart vs numpy, scipy, torch and jax.

    python benches/bench_ops.py [--quick] [--threads N]

Every figure is measured in this run: the median of several repeats after a warm-up,
as a ratio to ``np.copyto`` of the same array (the memory roof) and as headstart's speedup
over each library (torch and jax with the same thread count; skipped when not installed).
Reduction over the last axis of a C-contiguous array.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

# torch's OpenMP workers spin after each call and would steal the cores from whatever is
# timed next; let them sleep instead (set before torch is imported).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import headstart as hs
import numpy as np
import scipy.special as sp

SHAPES = [(262144, 10), (16384, 1000), (1024, 32768), (128, 262144)]


def timeit(f, repeat):
    f()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def np_log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_logsumexp(x):
    m = x.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[..., 0]


def methods(x, out, torch, jax):
    m = {
        "softmax": {
            "headstart": lambda: hs.softmax(x, axis=-1, out=out),
            "numpy": lambda: np_softmax(x),
            "scipy": lambda: sp.softmax(x, axis=-1),
        },
        "log_softmax": {
            "headstart": lambda: hs.log_softmax(x, axis=-1, out=out),
            "numpy": lambda: np_log_softmax(x),
            "scipy": lambda: sp.log_softmax(x, axis=-1),
        },
        "logsumexp": {
            "headstart": lambda: hs.logsumexp(x, axis=-1),
            "numpy": lambda: np_logsumexp(x),
            "scipy": lambda: sp.logsumexp(x, axis=-1),
        },
    }
    if torch is not None:
        xt = torch.from_numpy(x)
        m["softmax"]["torch"] = lambda: torch.softmax(xt, -1)
        m["log_softmax"]["torch"] = lambda: torch.log_softmax(xt, -1)
        m["logsumexp"]["torch"] = lambda: torch.logsumexp(xt, -1)
    if jax is not None:
        xj = jax.numpy.asarray(x)
        f1 = jax.jit(lambda a: jax.nn.softmax(a, -1))
        f2 = jax.jit(lambda a: jax.nn.log_softmax(a, -1))
        f3 = jax.jit(lambda a: jax.nn.logsumexp(a, -1))
        m["softmax"]["jax"] = lambda: f1(xj).block_until_ready()
        m["log_softmax"]["jax"] = lambda: f2(xj).block_until_ready()
        m["logsumexp"]["jax"] = lambda: f3(xj).block_until_ready()
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, float32 only")
    ap.add_argument("--threads", type=int, default=0, help="threads for every library")
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
    repeat = 3 if args.quick else 9
    libs = ["numpy", "scipy"] + (["torch"] if torch else []) + (["jax"] if jax else [])
    print(
        f"\nheadstart {hs.__version__}, SIMD {hs.simd_level()}, {threads} threads; "
        "x copy = time / np.copyto(same array); vs = other's time / headstart's\n"
    )
    head = (
        "| dtype | shape | op | copy ms | headstart (x copy) | "
        + " | ".join(f"vs {lib}" for lib in libs)
        + " |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    rng = np.random.default_rng(0)
    for dtype in [np.float32] if args.quick else [np.float32, np.float64]:
        for shape in SHAPES:
            x = (rng.standard_normal(shape) * 4).astype(dtype)
            out = np.empty_like(x)
            ms = methods(x, out, torch, jax)
            # headstart and the copy first, each library after: other libraries' thread
            # pools keep spinning for a while after their calls.
            time.sleep(0.5)
            copy = timeit(lambda o=out, a=x: np.copyto(o, a), repeat)
            ours = {op: timeit(impls["headstart"], repeat) for op, impls in ms.items()}
            others = {}
            for lib in libs:
                for op, impls in ms.items():
                    others[lib, op] = timeit(impls[lib], repeat)
            for op in ms:
                th = ours[op]
                cells = [f"{copy * 1e3:.2f}", f"{th / copy:.2f}"]
                cells += [f"{others[lib, op] / th:.1f}x" for lib in libs]
                print(f"| {np.dtype(dtype).name} | {shape} | {op} | " + " | ".join(cells) + " |")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
