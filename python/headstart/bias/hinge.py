"""The multiclass hinge: the exact optimum of the Weston-Watkins LP and Crammer-Singer."""

from __future__ import annotations

import math

import numpy as np

from .._core import HeadstartError
from .closed_forms import require_rows, require_two_classes, vector_option

# ------------------------------------------------------------------- multiclass hinge (LP)


def ww_levels(g: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact minimiser of the Weston-Watkins objective over constant scores.

    Minimises ``L(s) = sum_c g_c sum_{k != c} max(0, 1 + s_k - s_c)`` (margin 1; scale by the
    margin) over s in R^C for class masses g >= 0. Returns integer levels z (the optimal
    scores are ``margin * z``) and the optimal value.

    Why this is exact. L is convex and piecewise linear, with kinks on the hyperplanes
    s_c - s_k = 1, whose normals span every direction except the shared shift. So a minimum
    is attained at a vertex of that arrangement, where C-1 independent equalities
    s_c - s_k = 1 hold: they form a spanning tree, so every score is an integer. On integer
    scores a pair costs 0 if z_c > z_k, 1 if equal, and 1 + z_k - z_c if z_k > z_c. Swapping
    the levels of two classes so that the heavier class is higher never increases L (the two
    classes exchange their costs; the other terms are unchanged as a multiset), and closing a
    gap of more than one level only lowers the costs of the classes below it. Hence an
    optimum sorts classes by g (descending) into consecutive groups on consecutive levels.
    With prefix masses P, total T and cuts B (a cut after position t puts the first t
    classes above the rest), a class in the group (a, b] costs (b - 1) + sum_{t in B, t <= a} t,
    so ``L = sum_groups (b - 1) (P_b - P_a) + sum_{t in B} t (T - P_t)``. The best cuts follow
    from ``D[b] = (b - 1) P_b + min_a (D[a] + a (T - P_a) - (b - 1) P_a)``, a minimum over
    lines of slope -P_a (non-increasing in a) queried at increasing x = b - 1: a monotone
    convex-hull trick, O(C) after the sort. tests/test_init.py checks it against
    scipy.optimize.linprog and an O(C^2) dynamic programme.
    """
    g = np.asarray(g, np.float64)
    c = g.shape[0]
    order = np.argsort(-g, kind="stable")
    gs = g[order]
    p = np.concatenate(([0.0], np.cumsum(gs)))
    t = p[-1]
    d = np.zeros(c + 1)
    parent = np.zeros(c + 1, np.int64)
    slope = -p  # line a: y = slope[a] * x + icept[a]
    icept = np.zeros(c + 1)
    hull: list[int] = []
    head = 0

    def value(a, x):
        return slope[a] * x + icept[a]

    for b in range(1, c + 1):
        a_new = b - 1
        icept[a_new] = d[a_new] + a_new * (t - p[a_new])
        # insert line a_new (slopes arrive non-increasing)
        while len(hull) > head:
            last = hull[-1]
            if slope[last] == slope[a_new]:
                if icept[last] <= icept[a_new]:
                    break
                hull.pop()
                continue
            if len(hull) - head >= 2:
                l1, l2 = hull[-2], hull[-1]
                # l2 is useless if l1 and a_new cross at or before l1 and l2 do
                lhs = (icept[a_new] - icept[l1]) * (slope[l1] - slope[l2])
                rhs = (icept[l2] - icept[l1]) * (slope[l1] - slope[a_new])
                if lhs <= rhs:
                    hull.pop()
                    continue
            hull.append(a_new)
            break
        else:
            hull.append(a_new)
        x = b - 1.0
        while len(hull) - head >= 2 and value(hull[head + 1], x) < value(hull[head], x):
            head += 1
        best = hull[head]
        d[b] = (b - 1) * p[b] + value(best, x)
        parent[b] = best
    # cuts, then levels: the top group gets the highest level
    cuts = []
    b = c
    while b > 0:
        cuts.append(b)
        b = int(parent[b])
    ends = cuts[::-1]  # group end positions, top group first
    z_sorted = np.empty(c, np.int64)
    start = 0
    for j, e in enumerate(ends):
        z_sorted[start:e] = len(ends) - 1 - j
        start = e
    tied = (c - 1) * t
    value_opt = ww_value_levels(gs, z_sorted)
    if tied <= value_opt * (1 + 1e-12) + 1e-300:
        z_sorted[:] = 0  # prefer equal scores (the zero bias) when it is as good
        value_opt = tied
    z = np.empty(c, np.int64)
    z[order] = z_sorted
    return z, float(value_opt)


def ww_value_levels(gs_sorted: np.ndarray, z_sorted: np.ndarray) -> float:
    """The WW objective (margin 1) at integer levels that are non-increasing along the
    sorted masses and step by one, computed in O(C) from the group formula."""
    c = gs_sorted.shape[0]
    if c == 0:
        return 0.0
    p = np.concatenate(([0.0], np.cumsum(gs_sorted)))
    t = p[-1]
    # group boundaries where the level drops
    ends = list(np.flatnonzero(np.diff(z_sorted) != 0) + 1) + [c]
    total = 0.0
    a = 0
    for e in ends:
        total += (e - 1) * (p[e] - p[a])
        if a > 0:
            total += a * (t - p[a])
        a = e
    return float(total)


def hinge_bias(counts, opts, spec, classes):
    n = int(counts.sum())
    require_rows(n)
    c = counts.shape[0]
    require_two_classes(counts, classes, n, hint="the column or the file")
    margin = float(opts["margin"])
    if not (margin > 0 and math.isfinite(margin)):
        raise HeadstartError(f"margin must be a finite number > 0, got {opts['margin']!r}")
    if int(opts["p"]) != 1 or opts["p"] != 1:
        raise HeadstartError(
            f"p={opts['p']!r}: bias_init solves the hinge with p=1 (the squared hinge, p=2, "
            "is not supported)"
        )
    variant = opts.get("variant", "weston_watkins")
    if variant not in ("weston_watkins", "crammer_singer"):
        raise HeadstartError(
            f"variant must be 'weston_watkins' or 'crammer_singer', got {variant!r}"
        )
    w = vector_option(opts["weight"], c, "weight")
    f = counts / n
    g = f if w is None else f * w
    scale = margin / c if spec.name == "multi_margin_loss" else margin
    total = float(g.sum())
    if variant == "crammer_singer":
        top = int(np.argmax(g))
        levels = np.zeros(c, np.int64)
        if 2.0 * (total - g[top]) < total:
            levels[top] = 1
            value = 2.0 * (total - g[top])
        else:
            value = total
        per = np.where(np.arange(c) == top, 0.0, 2.0) if levels[top] else np.ones(c)
        zero = total
    else:
        levels, value = ww_levels(g)
        zero = (c - 1) * total
        # per-class cost at these levels (for check_init's batch-size tolerance)
        diff = levels[None, :] - levels[:, None]  # z_k - z_c, rows = true class c
        if c <= 2048:
            cost = np.maximum(0, 1 + diff)
            np.fill_diagonal(cost, 0)
            per = cost.sum(axis=1).astype(np.float64)
        else:
            per = None
    bias = margin * levels.astype(np.float64)
    details = {"levels": levels}
    if per is not None:
        details["per_class_loss"] = scale * per * (np.ones(c) if w is None else w)
    return bias, scale * value, scale * zero, scale * value, details


# --------------------------------------------------------------------------- bias_init
