"""A node's kernel log, and what it takes to date its lines.

Read wherever the node keeps it (``journalctl -k``, ``dmesg``, ``/var/log/kern.log``:
the first that answers with something); dmesg's seconds since boot are dated with
the node's boot time (``disk/node.py``'s clocks, else ``/proc/stat``).  The mount
root's birth time tells how old a device's filesystem is.  Read-only; the parsers
are ``facts.parse_kernel_log`` and ``logwindow``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ringmgr.exec.base import Executor
from ringmgr.ops import facts, logwindow

KERNEL_LOG_SOURCES = (
    ("journalctl -k", ("journalctl", "-k", "--no-pager", "-o", "short-iso-precise", "-q")),
    ("dmesg", ("dmesg", "--color=never")),
    ("/var/log/kern.log", ("cat", "/var/log/kern.log")),
)


def read_kernel_log(ex: Executor) -> tuple[str, str]:
    """(source, text) from the first kernel log source that answers; ("", "") if none."""
    for name, argv in KERNEL_LOG_SOURCES:
        r = ex.run(argv, check=False, mutates=False)
        text = r.stdout.strip()
        if r.ok and text and not text.startswith("-- No entries --"):
            return name, r.stdout
    return "", ""


@dataclass
class KernelLog:
    """A node's kernel log with what it takes to date its lines."""

    source: str
    text: str
    boot: float | None = None   # the node's boot time (dmesg's times count from it)
    now: float = 0.0

    def timed(self, errors: list[facts.DiskError]) -> list[tuple[facts.DiskError, float | None]]:
        return [(e, logwindow.line_time(e.when, boot=self.boot, now=self.now)[0])
                for e in errors]

    def times_note(self, errors: list[facts.DiskError]) -> str:
        approx = any(logwindow.line_time(e.when, boot=self.boot, now=self.now)[1]
                     for e in errors)
        if self.source == "dmesg":
            base = (f"the node's boot time {logwindow.utc(self.boot)}" if self.boot
                    else "no boot time (the window cannot be applied)")
            return f"times approximate: dmesg's seconds since boot + {base}"
        return "times approximate (syslog lines carry no year)" if approx else "times exact"


def node_boot_time(ex: Executor) -> float | None:
    """real-time minus monotonic, read together on the node; else /proc/stat's btime."""
    from ringmgr.errors import StepFailed
    from ringmgr.ops.disk.safety import node_op

    try:
        return logwindow.boot_time(node_op(ex, "clock", mutates=False))
    except StepFailed:
        r = ex.run(["cat", "/proc/stat"], check=False, mutates=False)
        for line in r.stdout.splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    return None


def read_log(ex: Executor, now: float | None = None) -> KernelLog:
    source, text = read_kernel_log(ex)
    log = KernelLog(source, text, now=time.time() if now is None else now)
    if source == "dmesg":
        log.boot = node_boot_time(ex)
    return log


def mount_root_birth(ex: Executor, mount_point: str) -> float | None:
    """``stat -c %.9W`` of a mounted filesystem's root (0 or '-' when unknown)."""
    r = ex.run(["stat", "-c", "%.9W", "--", mount_point], check=False, mutates=False)
    try:
        t = float(r.stdout.strip()) if r.ok else 0.0
    except ValueError:
        return None
    return t if t > 0 else None
