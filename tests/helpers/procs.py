"""The ringmgr processes of one test, found in /proc by a marker in their command line
(the test's config path): to see forked workers start and prove none outlives a kill."""

from __future__ import annotations

from pathlib import Path


def ringmgr_processes(marker: str) -> list[int]:
    """pids of the processes whose command line names ringmgr and ``marker``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmd and b"ringmgr" in cmd:
                out.append(int(d.name))
    return out
