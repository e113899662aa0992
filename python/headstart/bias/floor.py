"""The floor: finite values for outputs whose optimal bias is -inf."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .fmt import jsonable

__all__ = ["FloorInfo", "parse_floor"]


@dataclass(frozen=True)
class FloorInfo:
    """How outputs whose optimal bias is -inf (classes never seen, rates of 0 or 1, a Poisson
    mean of 0) were given a finite value.

    ``rule``: ``"pseudocount"``, ``"min_log_prob"`` or ``"none"``; ``value``: the
    pseudocount alpha or the minimum log-probability; ``classes``: the classes (outputs)
    that were floored; ``cost``: expected loss minus the unfloored optimum (>= 0).
    """

    rule: str
    value: float | None
    classes: tuple = ()
    cost: float = 0.0

    def __str__(self) -> str:
        if not self.classes:
            return "no output needed a floor"
        what = {
            "pseudocount": f"pseudocount {self.value:g} (as if seen {self.value:g} times)",
            "min_log_prob": f"log-probability clipped at {self.value:g}",
            "none": "left at -inf (floor=None)",
        }[self.rule]
        names = ", ".join(str(c) for c in self.classes[:8])
        more = f" and {len(self.classes) - 8} more" if len(self.classes) > 8 else ""
        return f"{len(self.classes)} floored ({names}{more}): {what}; cost {self.cost:.3g}"

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "value": self.value,
            "classes": [jsonable(c) for c in self.classes],
            "cost": self.cost,
        }


def parse_floor(floor) -> tuple[str, float | None]:
    if floor is None:
        return "none", None
    if isinstance(floor, bool):
        raise TypeError("floor must be 'pseudocount[:alpha]', a negative number or None")
    if isinstance(floor, numbers.Real):
        v = float(floor)
        if not (v < 0 and math.isfinite(v)):
            raise ValueError(
                f"floor={floor!r}: a number is a minimum log-probability and must be < 0 "
                "(e.g. -20); use 'pseudocount:ALPHA' for a pseudocount"
            )
        return "min_log_prob", v
    if isinstance(floor, str):
        name, _, arg = floor.strip().lower().partition(":")
        if name == "none" and not arg:
            return "none", None
        if name == "pseudocount":
            alpha = 0.5 if not arg else _parse_float(arg, "pseudocount alpha")
            if not (alpha > 0 and math.isfinite(alpha)):
                raise ValueError(f"floor={floor!r}: the pseudocount must be > 0")
            return "pseudocount", alpha
        if name in ("min_log_prob", "min_logprob") and arg:
            return parse_floor(_parse_float(arg, "min_log_prob"))
    raise ValueError(
        f"floor={floor!r}: expected 'pseudocount', 'pseudocount:ALPHA', 'min_log_prob:M' "
        "(M < 0), a negative number, or None"
    )


def _parse_float(text, what):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number") from None


# ------------------------------------------------------------------------- statistics input
