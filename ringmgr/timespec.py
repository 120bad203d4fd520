"""A moment given as text: ``--since`` and ``[drive_audit].since`` (a duration back
from now, or an ISO date/time).  Pure; the config checks the value with it, the
kernel-log window uses it."""

from __future__ import annotations

import re
from datetime import datetime

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|min|m|h|d|w)")


def parse_since(text: str, now: float) -> float:
    """``24h``, ``30m``, ``7d``, ``2w``, ``90s`` back from ``now``, or an ISO date/time
    (``2026-12-01``, ``2026-12-01T08:00``, with or without a zone; without one it is
    the admin host's local time) -> epoch seconds.  ValueError otherwise.

    >>> parse_since("2h", 10000.0)
    2800.0
    >>> parse_since("1970-01-01T01:00:00+00:00", 0.0)
    3600.0
    """
    text = text.strip()
    m = _DURATION.fullmatch(text)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 24h, 7d, 2w) nor a date "
                         f"or time (2026-12-01, 2026-12-01T08:00:00+00:00)") from None
