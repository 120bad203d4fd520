"""The one rule for numbers an operator types: weights, their typo check, used bytes.

Weights are relative, so there is no natural unit; but a weight past ``MAX_WEIGHT``
only ever comes from a slip (1e300 is written by swift and breaks its balance maths,
1e308 on a whole node overflows to inf), and a weight more than ``TYPO_FACTOR`` times a
ring's median device weight is almost always a typo (50000 for 5000).  Weight 0 and
small weights stay allowed: draining, failed disks and ramp steps use them.
"""

from __future__ import annotations

import math
import statistics

from ringmgr.errors import UsageError

MAX_WEIGHT = 1e12
TYPO_FACTOR = 10.0
MAX_BYTES = 1e21  # a zettabyte: beyond any cluster


def finite_number(value, what: str, *, maximum: float, allow_zero: bool = True) -> float:
    """``value`` as a float: finite, not negative, at most ``maximum``; else one line."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} {value!r} is not a number")
    if not math.isfinite(x):
        raise UsageError(f"{what} {value!r} must be a finite number")
    if x < 0 or (x == 0 and not allow_zero):
        raise UsageError(f"{what} {value!r} must be a "
                         f"{'non-negative' if allow_zero else 'positive'} number")
    if x > maximum:
        raise UsageError(f"{what} {value!r} is beyond the sane bound {maximum:g}; weights "
                         f"are relative (e.g. a disk's size in GB)")
    return x


def check_weight(weight, *, allow_zero: bool = True) -> float:
    return finite_number(weight, "weight", maximum=MAX_WEIGHT, allow_zero=allow_zero)


def check_used_bytes(ring: str, value) -> float:
    try:
        return finite_number(value, f"--used-bytes {ring}=", maximum=MAX_BYTES)
    except UsageError as e:
        raise UsageError(f"{e}; expected RING=BYTES, e.g. object=1.2e15") from None


def median_weight(builder) -> float | None:
    """The median weight of the ring's weighted devices (None if it has none)."""
    ws = [d["weight"] for d in builder.devs if d is not None and d.get("weight", 0) > 0]
    return statistics.median(ws) if ws else None


def typo_problem(ring: str, weight: float, builder) -> str | None:
    """'object (median 4000, 12x)' when ``weight`` is over ``TYPO_FACTOR`` times the
    ring's median device weight (None when it is not)."""
    med = median_weight(builder)
    if med is None or weight <= TYPO_FACTOR * med:
        return None
    return f"{ring} (median {med:g}, {weight / med:.0f}x)"


def typo_message(weight: float, problems: list[str]) -> str:
    return (f"refused, nothing was changed: weight {weight:g} is more than {TYPO_FACTOR:g}x "
            f"the median device weight of {', '.join(problems)}; a typo? (set-weight sets "
            f"every ring; add --force if it is meant)")
