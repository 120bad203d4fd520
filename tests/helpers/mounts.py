"""A directory made read-only for a while by a real bind mount (root ignores file
modes, so mode bits would prove nothing), and an umount that waits for it to be free."""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager


def umount_when_free(d: str, seconds: float = 10) -> None:
    """umount ``d``, retrying while it is busy (the node-side process of a failed push may
    still be exiting on a loaded machine)."""
    deadline = time.monotonic() + seconds
    while True:
        r = subprocess.run(["umount", d], capture_output=True, text=True)
        if r.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"umount {d}: {r.stderr.strip()}")
        time.sleep(0.2)


@contextmanager
def read_only(d):
    """``d`` bind-mounted on itself read-only for the ``with`` block; unmounted after,
    also when the block fails."""
    d = str(d)
    subprocess.run(["mount", "--bind", d, d], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", d], check=True)
        yield d
    finally:
        umount_when_free(d)
