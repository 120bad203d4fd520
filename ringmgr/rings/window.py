"""The change window of ``[converge].window``: when an unattended converge may write.

Grammar (case-insensitive), one or more windows separated by ``;``::

    [DAYS] HH:MM-HH:MM        e.g. "Mon-Fri 09:00-17:00", "Sat,Sun 10:00-12:00",
                              "22:00-06:00" (every day, across midnight)

DAYS is a day (``Mon``), a range (``Mon-Fri``, ``Fri-Mon`` wraps) or a comma list
of either.  A window that ends before it starts runs past midnight and belongs to the
day it starts on.  Times are the admin host's local time: the caller passes an aware
``datetime`` (``datetime.now().astimezone()``).  Pure: no clock of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class Span:
    days: frozenset[int]   # weekday numbers (Mon = 0) the span starts on
    start: int             # minutes after midnight
    end: int               # minutes after midnight; <= start: runs past midnight

    def contains(self, t: datetime) -> bool:
        m = t.hour * 60 + t.minute
        day = t.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= m < self.end
        # past midnight: the evening part on a listed day, the morning after one
        return (day in self.days and m >= self.start) or \
            ((day - 1) % 7 in self.days and m < self.end)


@dataclass(frozen=True)
class Window:
    text: str
    spans: tuple[Span, ...]

    def contains(self, t: datetime) -> bool:
        return any(s.contains(t) for s in self.spans)

    def next_open(self, t: datetime) -> datetime:
        """The first minute at or after ``t`` inside the window (within 8 days)."""
        probe = t.replace(second=0, microsecond=0)
        if probe < t:
            probe += timedelta(minutes=1)
        for _ in range(8 * 24 * 60):
            if self.contains(probe):
                return probe
            probe += timedelta(minutes=1)
        raise ValueError(f"window {self.text!r} never opens")  # parse_window refuses it


def parse_window(text: str) -> Window:
    """``text`` -> Window; ValueError in one line saying what is wrong and the form."""
    form = 'expected [DAYS] HH:MM-HH:MM, e.g. "Mon-Fri 09:00-17:00"'
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"an empty window; {form}")
    spans = []
    for part in text.split(";"):
        words = part.split()
        if len(words) == 1:
            days, hours = frozenset(range(7)), words[0]
        elif len(words) == 2:
            days, hours = _days(words[0], form), words[1]
        else:
            raise ValueError(f"{part.strip()!r}: {form}")
        start, dash, end = hours.partition("-")
        if not dash:
            raise ValueError(f"{hours!r} is not a time range HH:MM-HH:MM; {form}")
        a, b = _minutes(start, form), _minutes(end, form)
        if a == b:
            raise ValueError(f"{hours!r} is an empty time range; {form}")
        spans.append(Span(days, a, b))
    return Window(text, tuple(spans))


def _minutes(text: str, form: str) -> int:
    m = _TIME.match(text.strip())
    if not m or (int(m.group(1)) == 24 and m.group(2) != "00"):
        raise ValueError(f"{text!r} is not a time HH:MM (00:00-24:00); {form}")
    return int(m.group(1)) * 60 + int(m.group(2))


def _day(text: str, form: str) -> int:
    t = text.strip().lower()
    for i, full in enumerate(FULL_DAYS):
        if t in (full, full[:3]):
            return i
    raise ValueError(f"{text!r} is not a day (Mon, Tue, ... Sun); {form}")


def _days(text: str, form: str) -> frozenset[int]:
    out: set[int] = set()
    for item in text.split(","):
        a, dash, b = item.partition("-")
        if not dash:
            out.add(_day(a, form))
            continue
        i, j = _day(a, form), _day(b, form)
        k = i
        while True:
            out.add(k)
            if k == j:
                break
            k = (k + 1) % 7
    return frozenset(out)


def describe_next(window: Window, now: datetime) -> str:
    """'outside the change window Mon-Fri 09:00-17:00 (admin host time); it opens
    Mon 09:00 (in 2 h 13 min)'."""
    from ringmgr.rings.gate import gate_text

    at = window.next_open(now)
    secs = int((at - now).total_seconds())
    return (f"outside the change window {window.text!r} (admin host time, now "
            f"{now.strftime('%a %H:%M')}); it opens {at.strftime('%a %Y-%m-%d %H:%M')} "
            f"(in {gate_text(max(secs, 60))})")
