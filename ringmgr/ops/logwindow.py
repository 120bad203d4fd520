"""Which kernel-log disk errors count: inside the window, and newer than the filesystem.

A kernel log outlives the disk it complains about: after a swap, the new ``sdb`` (or
the same ``loop3``) inherits every line about the old one.  So an error counts only
when it is newer than the device's current filesystem (its mount root's birth time,
or the replace-disk run that made it, or, while a replacement is under way, the moment
the old disk was taken out) and inside the window (``--since``, default
``[drive_audit].since``).  Pure: every clock reading comes in as an argument.

Log times: ``journalctl -o short-iso-precise`` and rsyslog's RFC 3339 lines carry the
wall-clock time; ``dmesg`` prints seconds since boot, converted here with the node's
boot time (its real-time minus its monotonic clock, read together), which is
approximate (the kernel's clock drifts from the wall clock; suspends are not counted);
a classic syslog line has no year (the current one is assumed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ringmgr.timespec import parse_since

_SYSLOG = re.compile(r"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def window_for(since: str | None, config, now: float) -> "Window":
    """The window from ``--since`` (``since``), else ``[drive_audit].since``, else 24h.
    A bad value is a UsageError (exit 2)."""
    from ringmgr.errors import UsageError

    da = config.drive_audit
    given = since if since is not None else da.since
    origin = ("--since" if since is not None else
              "[drive_audit].since" if da.explicit else "the default; [drive_audit].since")
    try:
        return Window(parse_since(given, now), given, origin)
    except ValueError as e:
        raise UsageError(f"--since: {e}") from None


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Window:
    start: float     # epoch seconds
    given: str       # what was asked: "24h"
    origin: str      # "--since" or "[drive_audit].since" or "default"

    def describe(self) -> str:
        return f"errors since {utc(self.start)} ({self.given}, {self.origin})"

    def to_json(self) -> dict:
        return {"since": utc(self.start), "since_epoch": self.start, "given": self.given,
                "from": self.origin}


def boot_time(clock: dict) -> float | None:
    """The node's boot time from ``disk/node.py``'s clock (``realtime``, ``monotonic``)."""
    try:
        return float(clock["realtime"]) - float(clock["monotonic"])
    except (KeyError, TypeError, ValueError):
        return None


def line_time(when: str, *, boot: float | None, now: float) -> tuple[float | None, bool]:
    """(epoch seconds or None, approximate?) of a kernel-log timestamp as printed.

    >>> line_time("812.5", boot=1000.0, now=0)
    (1812.5, True)
    >>> line_time("1970-01-01T00:01:00.500000+0000", boot=None, now=0)
    (60.5, False)
    >>> line_time("812.5", boot=None, now=0)
    (None, True)
    """
    if not when:
        return None, False
    if re.fullmatch(r"\d+\.\d+", when):
        return (boot + float(when) if boot is not None else None), True
    m = _SYSLOG.fullmatch(when)
    if m:
        mon, day, hh, mm, ss = m.groups()
        if mon not in _MONTHS:
            return None, False
        year = datetime.fromtimestamp(now).year
        for y in (year, year - 1):  # a line from "Dec 31" read on Jan 1 is last year's
            try:
                t = datetime(y, _MONTHS.index(mon) + 1, int(day), int(hh), int(mm),
                             int(ss)).timestamp()
            except ValueError:
                continue
            if t <= now + 86400:
                return t, True
        return None, True
    try:
        dt = datetime.fromisoformat(when)
    except ValueError:
        return None, False
    return dt.timestamp(), dt.tzinfo is None


@dataclass
class Counted:
    """One device's errors split by the rules (see the module docstring)."""

    counted: list = field(default_factory=list)
    older_than_fs: int = 0
    before_window: int = 0
    untimed: int = 0


def count_errors(timed: list[tuple[object, float | None]], window_start: float,
                 fs_since: float | None) -> Counted:
    """``timed``: (error, epoch or None).  An error without a time counts (it cannot be
    shown to be old) and is tallied in ``untimed``.

    >>> c = count_errors([("a", 10.0), ("b", 20.0), ("c", 30.0), ("d", None)], 25.0, 15.0)
    >>> (c.counted, c.older_than_fs, c.before_window, c.untimed)
    (['c', 'd'], 1, 1, 1)
    """
    out = Counted()
    for err, at in timed:
        if at is None:
            out.untimed += 1
            out.counted.append(err)
        elif fs_since is not None and at <= fs_since:
            out.older_than_fs += 1
        elif at < window_start:
            out.before_window += 1
        else:
            out.counted.append(err)
    return out
