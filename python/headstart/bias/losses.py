"""The loss registry: torch names, aliases, options and their defaults, option checks."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .._core import HeadstartError

__all__ = ["ALIASES", "SPECS", "LossSpec", "check_options", "loss_names", "resolve_loss"]


@dataclass(frozen=True)
class LossSpec:
    name: str  # canonical torch-style name
    family: str  # "softmax" | "sigmoid" | "regression" | "hinge"
    options: dict  # option -> default
    doc: str


SPECS = {
    s.name: s
    for s in (
        LossSpec(
            "cross_entropy",
            "softmax",
            {"weight": None, "label_smoothing": 0.0, "ignore_index": -100, "reduction": "mean"},
            "softmax cross-entropy (torch F.cross_entropy)",
        ),
        LossSpec(
            "binary_cross_entropy_with_logits",
            "sigmoid",
            {"pos_weight": None, "reduction": "mean"},
            "sigmoid / binary cross-entropy on logits, one output per label",
        ),
        LossSpec("mse_loss", "regression", {"reduction": "mean"}, "mean squared error"),
        LossSpec("l1_loss", "regression", {"reduction": "mean"}, "mean absolute error"),
        LossSpec("huber_loss", "regression", {"delta": 1.0, "reduction": "mean"}, "Huber(delta)"),
        LossSpec(
            "smooth_l1_loss",
            "regression",
            {"beta": 1.0, "reduction": "mean"},
            "smooth L1(beta) = Huber(beta) / beta",
        ),
        LossSpec(
            "pinball_loss",
            "regression",
            {"tau": 0.5, "reduction": "mean"},
            "pinball / quantile loss at level tau",
        ),
        LossSpec(
            "poisson_nll_loss",
            "regression",
            {"log_input": True, "full": False, "eps": 1e-8, "reduction": "mean"},
            "Poisson NLL with a log link (torch log_input=True)",
        ),
        LossSpec(
            "multi_margin_loss",
            "hinge",
            {"margin": 1.0, "p": 1, "weight": None, "reduction": "mean"},
            "torch multi_margin_loss (Weston-Watkins hinge divided by C)",
        ),
        LossSpec(
            "multiclass_hinge_loss",
            "hinge",
            {
                "margin": 1.0,
                "variant": "weston_watkins",
                "p": 1,
                "weight": None,
                "reduction": "mean",
            },
            "multiclass SVM (cs231n): Weston-Watkins or Crammer-Singer, no 1/C",
        ),
    )
}

# alias -> (canonical name, preset options)
ALIASES: dict[str, tuple[str, dict]] = {
    "ce": ("cross_entropy", {}),
    "softmax": ("cross_entropy", {}),
    "softmax_cross_entropy": ("cross_entropy", {}),
    "categorical_crossentropy": ("cross_entropy", {}),
    "sparse_categorical_crossentropy": ("cross_entropy", {}),
    "bce": ("binary_cross_entropy_with_logits", {}),
    "bce_with_logits": ("binary_cross_entropy_with_logits", {}),
    "binary_crossentropy": ("binary_cross_entropy_with_logits", {}),
    "sigmoid": ("binary_cross_entropy_with_logits", {}),
    "logistic": ("binary_cross_entropy_with_logits", {}),
    "multilabel": ("binary_cross_entropy_with_logits", {}),
    "mse": ("mse_loss", {}),
    "l2": ("mse_loss", {}),
    "squared_error": ("mse_loss", {}),
    "l1": ("l1_loss", {}),
    "mae": ("l1_loss", {}),
    "absolute_error": ("l1_loss", {}),
    "huber": ("huber_loss", {}),
    "smooth_l1": ("smooth_l1_loss", {}),
    "pinball": ("pinball_loss", {}),
    "quantile": ("pinball_loss", {}),
    "quantile_loss": ("pinball_loss", {}),
    "poisson": ("poisson_nll_loss", {}),
    "poisson_nll": ("poisson_nll_loss", {}),
    "multi_margin": ("multi_margin_loss", {}),
    "hinge": ("multiclass_hinge_loss", {}),
    "svm": ("multiclass_hinge_loss", {}),
    "multiclass_hinge": ("multiclass_hinge_loss", {}),
    "weston_watkins": ("multiclass_hinge_loss", {"variant": "weston_watkins"}),
    "ww": ("multiclass_hinge_loss", {"variant": "weston_watkins"}),
    "crammer_singer": ("multiclass_hinge_loss", {"variant": "crammer_singer"}),
    "cs": ("multiclass_hinge_loss", {"variant": "crammer_singer"}),
}


def loss_names() -> dict[str, str]:
    """Every loss name :func:`bias_init` accepts, mapped to its canonical (torch) name."""
    out = {name: name for name in SPECS}
    out.update({alias: target for alias, (target, _) in ALIASES.items()})
    return dict(sorted(out.items()))


def resolve_loss(loss) -> tuple[LossSpec, dict]:
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a loss name (str), got {type(loss).__name__}")
    key = loss.strip().lower().replace("-", "_").replace(" ", "_")
    key = key.removeprefix("f.")
    if key in SPECS:
        return SPECS[key], {}
    if key in ALIASES:
        name, preset = ALIASES[key]
        return SPECS[name], dict(preset)
    raise ValueError(
        f"unknown loss {loss!r}; valid names: {', '.join(SPECS)}; aliases: {', '.join(ALIASES)}"
    )


def check_options(spec: LossSpec, preset: dict, given: dict) -> dict:
    """Merge defaults, alias presets and user options; name the options the loss lacks."""
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        takes = ", ".join(spec.options) if spec.options else "no options"
        raise TypeError(
            f"{spec.name} does not take option(s) {', '.join(unknown)}; it takes: {takes}"
        )
    for k, v in preset.items():
        if k in given and given[k] != v:
            raise ValueError(f"the loss name implies {k}={v!r}, but {k}={given[k]!r} was passed")
    opts = dict(spec.options)
    opts.update(preset)
    opts.update(given)
    if opts.get("reduction", "mean") != "mean":
        raise ValueError(
            f"reduction={opts['reduction']!r}: bias_init reports the loss for reduction='mean' "
            "(the optimal bias is the same for 'sum')"
        )
    return opts


# ------------------------------------------------------------------------------- the floor


def validate_scalars(spec: LossSpec, opts: dict) -> None:
    """Check scalar options before any file is read."""

    def num(key):
        v = opts[key]
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{key} must be a number, got {v!r}")
        return float(v)

    if spec.name == "pinball_loss" and not 0.0 < num("tau") < 1.0:
        raise HeadstartError(f"tau must be in (0, 1), got {opts['tau']!r}")
    if spec.name == "huber_loss" and not positive(num("delta")):
        raise HeadstartError(f"delta must be a finite number > 0, got {opts['delta']!r}")
    if spec.name == "smooth_l1_loss" and not (num("beta") >= 0 and math.isfinite(opts["beta"])):
        raise HeadstartError(f"beta must be a finite number >= 0, got {opts['beta']!r}")
    if spec.family == "hinge":
        if not positive(num("margin")):
            raise HeadstartError(f"margin must be a finite number > 0, got {opts['margin']!r}")
        if opts["p"] != 1:
            raise HeadstartError(
                f"p={opts['p']!r}: bias_init solves the hinge with p=1 (the squared hinge, "
                "p=2, is not supported)"
            )
        if opts.get("variant", "weston_watkins") not in ("weston_watkins", "crammer_singer"):
            raise HeadstartError(
                f"variant must be 'weston_watkins' or 'crammer_singer', got {opts['variant']!r}"
            )
    if spec.name == "cross_entropy" and not 0.0 <= num("label_smoothing") <= 1.0:
        raise HeadstartError(f"label_smoothing must be in [0, 1], got {opts['label_smoothing']!r}")


def positive(v) -> bool:
    try:
        return float(v) > 0 and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
