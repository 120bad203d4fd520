"""Real XFS disks on loop devices for tests; every loop device and mount is cleaned up.

``LoopDisks(workdir)`` (a context manager; the ``loopdisks`` fixture gives one per test)::

    disk = disks.create(label=disks.unique_label())   # sparse 300 MB file, losetup, mkfs.xfs
    disk.dev          # "/dev/loop7"
    blank = disks.create(mkfs=False)                   # a "new disk": no filesystem
    disks.detach(disk)                                 # pull the disk (unmounts it first)
    disks.cleanup()                                    # unmount + detach all; also on failure

Loop devices share the machine's kernel with other engineers' tests, so labels are
random (``unique_label()``) and only the loop devices created here are touched.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SIZE_MB = 300  # xfsprogs on Debian 12 refuses smaller filesystems


@dataclass
class LoopDisk:
    file: Path
    dev: str
    label: str | None


def unique_label(prefix: str = "rt") -> str:
    """A label no other loop device on this machine carries (12 characters at most)."""
    return (prefix + secrets.token_hex(5))[:12]


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def mounts_of(dev: str) -> list[str]:
    """Mount points where ``dev`` is mounted (innermost last), from mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-", 6)
            if parts[sep + 2] == dev:
                out.append(parts[4].replace("\\040", " "))
    return out


class LoopDisks:
    def __init__(self, workdir: str | os.PathLike):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.disks: list[LoopDisk] = []

    def __enter__(self) -> "LoopDisks":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    unique_label = staticmethod(unique_label)

    def create(self, label: str | None = None, *, mkfs: bool = True,
               size_mb: int = SIZE_MB) -> LoopDisk:
        file = self.workdir / f"disk{len(self.disks)}-{secrets.token_hex(3)}.img"
        with open(file, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        dev = _run("losetup", "--find", "--show", str(file)).stdout.strip()
        disk = LoopDisk(file, dev, None)
        self.disks.append(disk)
        if mkfs:
            disk.label = label or unique_label()
            _run("mkfs.xfs", "-q", "-f", "-L", disk.label, dev)
        return disk

    def detach(self, disk: LoopDisk) -> None:
        for mp in reversed(mounts_of(disk.dev)):
            _run("umount", "-l", mp, check=False)
        _run("losetup", "-d", disk.dev, check=False)

    def cleanup(self) -> None:
        for disk in reversed(self.disks):
            try:
                backing = _run("losetup", "-n", "-O", "BACK-FILE", disk.dev,
                               check=False).stdout.strip()
                if backing and Path(backing.split(" (")[0]) == disk.file:
                    self.detach(disk)
            finally:
                disk.file.unlink(missing_ok=True)
        self.disks.clear()


@pytest.fixture
def loopdisks(tmp_path):
    with LoopDisks(tmp_path / "disks") as disks:
        yield disks
