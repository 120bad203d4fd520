"""The min_part_hours gate: its limit, and how long until it opens, in words an
operator reads at 2 a.m.: '2 h 13 min', '14:10 UTC'."""

from __future__ import annotations

import math

# swift keeps "hours since moved" in one byte (saturating at 255): a min_part_hours
# above it would keep every partition from ever moving again
MAX_MIN_PART_HOURS = 255


def min_part_hours_problem(hours) -> str:
    return (f"must be at most {MAX_MIN_PART_HOURS}, not {hours} (swift counts the hours since "
            f"a partition moved in one byte: above {MAX_MIN_PART_HOURS} no partition could "
            f"ever move again)")


def gate_text(seconds: int) -> str:
    """'2 h 13 min' style, for min_part_hours messages."""
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m = math.ceil(rem / 60) if h == 0 else rem // 60
    if h and m:
        return f"{h} h {m} min"
    if h:
        return f"{h} h"
    return f"{max(m, 1)} min"


def clock_text(seconds: int, now: float | None = None) -> str:
    """The UTC clock time ``seconds`` from ``now`` (default: now): '14:10 UTC', with the
    date in front when that is not today."""
    import time as _time
    from datetime import datetime, timezone

    now = _time.time() if now is None else now
    at = datetime.fromtimestamp(now + int(seconds), timezone.utc)
    today = datetime.fromtimestamp(now, timezone.utc).date()
    return at.strftime("%H:%M UTC" if at.date() == today else "%Y-%m-%d %H:%M UTC")
