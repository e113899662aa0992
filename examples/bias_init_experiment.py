"""Does a correctly initialised output bias make early training faster?

The same small MLP (numpy, headstart's fused cross-entropy gradient) is trained on an
imbalanced synthetic 10-class problem, several seeds, twice per seed with identical data
order and weights: once with the usual zero output bias, once with ``headstart.bias_init``.
Prints a markdown table (initial loss vs the predicted H(F) and log C, loss after k steps,
steps to reach target losses) and saves the loss curves as a PNG.

    python examples/bias_init_experiment.py [--out docs/bias_init_experiment.png] [--seeds 5]

Needs numpy and headstart; matplotlib for the figure (``pip install 'headstart[plot]'``).
Runs in well under a minute on two cores.
"""

from __future__ import annotations

import argparse
import math
import time

import headstart as hs
import numpy as np

C = 10  # classes
D = 32  # input features
H = 64  # hidden units
N_TRAIN, N_EVAL = 20_000, 5_000
STEPS, BATCH, LR = 1500, 128, 1e-3
EVAL_EVERY = 10
CHECKPOINTS = (0, 10, 50, 200, 1500)


def make_data(seed: int = 0):
    """Gaussian classes around random means, class frequencies F_k proportional to 0.55^k."""
    rng = np.random.default_rng(seed)
    f = 0.55 ** np.arange(C)
    f /= f.sum()
    means = rng.normal(0.0, 0.3, (C, D))
    y = rng.choice(C, size=N_TRAIN + N_EVAL, p=f)
    x = means[y] + rng.normal(0.0, 1.0, (y.size, D))
    return (
        x[:N_TRAIN].astype(np.float32),
        y[:N_TRAIN],
        x[N_TRAIN:].astype(np.float32),
        y[N_TRAIN:],
    )


def init_params(seed: int, out_bias):
    rng = np.random.default_rng(1000 + seed)
    return {
        "W1": (rng.normal(0, math.sqrt(2.0 / D), (D, H))).astype(np.float32),  # He
        "b1": np.zeros(H, np.float32),
        # torch nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        "W2": rng.uniform(-1 / math.sqrt(H), 1 / math.sqrt(H), (H, C)).astype(np.float32),
        "b2": np.asarray(out_bias, np.float32).copy(),
    }


def forward(p, x):
    z = x @ p["W1"] + p["b1"]
    h = np.maximum(z, 0.0)
    return h, h @ p["W2"] + p["b2"]


def train(xtr, ytr, xev, yev, seed: int, out_bias):
    """Adam on mini-batches; returns (eval steps, eval losses, first batch loss)."""
    p = init_params(seed, out_bias)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    order = np.random.default_rng(2000 + seed)
    steps, losses = [], []
    first = None
    for t in range(STEPS + 1):
        if t <= 100 or t % EVAL_EVERY == 0:
            steps.append(t)
            losses.append(float(hs.cross_entropy(forward(p, xev)[1], yev)))
        if t == STEPS:
            break
        idx = order.integers(0, xtr.shape[0], BATCH)
        x, y = xtr[idx], ytr[idx]
        h, logits = forward(p, x)
        loss, g = hs.cross_entropy(logits, y, grad_out=logits)  # gradient over the logits
        if first is None:
            first = (float(loss), logits is g)
        grads = {"W2": h.T @ g, "b2": g.sum(axis=0)}
        dh = (g @ p["W2"].T) * (h > 0)
        grads["W1"] = x.T @ dh
        grads["b1"] = dh.sum(axis=0)
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            mh = m[k] / (1 - b1 ** (t + 1))
            vh = v[k] / (1 - b2 ** (t + 1))
            p[k] -= (LR * mh / (np.sqrt(vh) + eps)).astype(np.float32)
    return np.array(steps), np.array(losses), first[0]


def steps_to(steps, losses, target):
    hit = np.flatnonzero(losses <= target)
    return int(steps[hit[0]]) if hit.size else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="docs/bias_init_experiment.png")
    args = ap.parse_args()
    t0 = time.perf_counter()
    xtr, ytr, xev, yev = make_data()
    init = hs.bias_init(ytr, "cross_entropy")
    h_f, log_c = init.expected_loss, math.log(C)
    print(f"train labels: {np.bincount(ytr, minlength=C).tolist()}")
    print(f"bias_init: expected loss H(F) = {h_f:.4f}, zero bias log C = {log_c:.4f}")
    runs = {"zero bias": [], "bias_init": []}
    for seed in range(args.seeds):
        for name, bias in (("zero bias", np.zeros(C)), ("bias_init", init.bias)):
            steps, losses, first = train(xtr, ytr, xev, yev, seed, bias)
            runs[name].append((losses, first))
            if seed == 0:
                print(
                    f"  seed 0, {name}: check_init -> {hs.check_init(first, init, batch_size=BATCH)}"
                )
    curves = {k: np.array([r[0] for r in v]) for k, v in runs.items()}
    targets = (round(h_f, 2), round(0.8 * h_f, 2))
    print()
    head = (
        "| init | loss at step 0 (eval) | predicted | "
        + " | ".join(f"after {k} steps" for k in CHECKPOINTS[1:])
        + " | "
        + " | ".join(f"steps to {t}" for t in targets)
        + " |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, cur in curves.items():
        at = {k: cur[:, list(steps).index(k)] for k in CHECKPOINTS}
        pred = f"H(F) = {h_f:.3f}" if name == "bias_init" else f"log C = {log_c:.3f}"
        reach = []
        for t in targets:
            s = [steps_to(steps, c, t) for c in cur]
            if any(v is None for v in s):
                reach.append(f"not in {STEPS} ({sum(v is not None for v in s)}/{len(s)} seeds)")
            else:
                reach.append(f"{np.mean(s):.0f} ({min(s)}-{max(s)})")
        cells = [f"{at[k].mean():.3f} ± {at[k].std():.3f}" for k in CHECKPOINTS]
        print(
            f"| {name} | {cells[0]} | {pred} | "
            + " | ".join(cells[1:])
            + " | "
            + " | ".join(reach)
            + " |"
        )
    print(
        f"\n{args.seeds} seeds (mean ± sd over seeds); eval loss on {N_EVAL} held-out samples; "
        f"Adam lr {LR}, batch {BATCH}; {time.perf_counter() - t0:.0f} s"
    )
    try:
        import matplotlib
    except ImportError:
        print("no figure: pip install 'headstart[plot]' for matplotlib")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=100)
    for (name, cur), color in zip(curves.items(), ("#888", "#c33")):
        x = steps + 1
        ax.fill_between(x, cur.min(axis=0), cur.max(axis=0), color=color, alpha=0.2, lw=0)
        ax.plot(
            x, cur.mean(axis=0), color=color, label=f"{name} (mean, min-max of {args.seeds} seeds)"
        )
    ax.axhline(log_c, color="#888", ls=":", lw=1)
    ax.axhline(h_f, color="#c33", ls=":", lw=1)
    ax.text(STEPS + 1, log_c, "log C: uniform", ha="right", va="bottom", fontsize=8, color="#555")
    ax.text(
        STEPS + 1,
        h_f,
        "H(F): bias_init's prediction",
        ha="right",
        va="bottom",
        fontsize=8,
        color="#c33",
    )
    ax.set_xscale("log")
    ax.set_xlim(1, STEPS + 1)
    ax.set_xlabel("training step + 1")
    ax.set_ylabel("eval cross-entropy")
    ax.set_title("10 imbalanced classes, same MLP and data: zero bias vs bias_init", fontsize=10)
    ax.legend(loc="lower left", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
