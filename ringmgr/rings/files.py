"""Durable file primitives: atomic writes, directory fsync, md5, the directory lock.

Every write goes to a temp file in the target's directory (named ``.ringmgr-tmp.*``
so that recovery can sweep leftovers safely), is fsynced, renamed over the target,
and the directory is fsynced.  Power-loss durability rests on fsync; it cannot be
tested on this machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
from pathlib import Path

from ringmgr.errors import LockHeld, Refused

TMP_PREFIX = ".ringmgr-tmp."
FAULT_ENV = "RINGMGR_TEST_FAULT"


def fault_point(point: str) -> None:
    """A place where tests may kill this process with SIGKILL.

    Switched on only by ``$RINGMGR_TEST_FAULT``: a point's name (e.g.
    ``rename:object.builder``) kills there; a number N kills at the N-th point reached,
    so a test can walk through every write, fsync and rename of a change.
    """
    target = os.environ.get(FAULT_ENV)
    if not target:
        return
    if target.isdigit():
        fault_point.seen = getattr(fault_point, "seen", 0) + 1
        hit = fault_point.seen == int(target)
    else:
        hit = target == point
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix."""
    path = Path(path)
    tmp = path.parent / f"{TMP_PREFIX}{path.name}.{os.getpid()}"
    fault_point(f"write:{path.name}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        fault_point(f"fsync:{path.name}")
        os.fsync(f.fileno())
    if mode is not None:
        os.chmod(tmp, mode)
    fault_point(f"rename:{path.name}")
    os.rename(tmp, path)
    fsync_dir(path.parent)


def sweep_temp_files(directory: Path) -> list[Path]:
    """Remove temp files a killed ringmgr left in ``directory``; return them."""
    removed = []
    if directory.is_dir():
        for p in directory.iterdir():
            if p.name.startswith(TMP_PREFIX):
                p.unlink()
                removed.append(p)
    return removed


def md5_file(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "md5").hexdigest()
    except FileNotFoundError:
        return None


def parse_proc_locks(text: str) -> list[dict]:
    """Parse /proc/locks.

    Sample::

        1: FLOCK  ADVISORY  WRITE 6893 fe:00:2146953 0 EOF
        2: POSIX  ADVISORY  READ 812 00:19:18 0 EOF
        3: FLOCK  ADVISORY  WRITE 77 00:19:20 0 EOF
        3: -> FLOCK  ADVISORY  WRITE 99 00:19:20 0 EOF

    Returns dicts with kind, access, pid, inode, and waiting (the ``->`` lines are
    processes blocked on the lock, not holders).
    """
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        waiting = fields[1] == "->"
        f = fields[2:] if waiting else fields[1:]
        try:
            pid = int(f[3])
            inode = int(f[4].split(":")[2])
        except (IndexError, ValueError):
            continue
        out.append({"kind": f[0], "access": f[2], "pid": pid, "inode": inode,
                    "waiting": waiting})
    return out


def lock_holders(lock_file: Path) -> list[tuple[int, str]]:
    """(pid, command line) of processes holding a lock on ``lock_file``."""
    try:
        inode = os.stat(lock_file).st_ino
        text = Path("/proc/locks").read_text()
    except OSError:
        return []
    holders = []
    for entry in parse_proc_locks(text):
        if entry["inode"] == inode and not entry["waiting"] and entry["pid"] != os.getpid():
            try:
                cmd = Path(f"/proc/{entry['pid']}/cmdline").read_bytes()
                cmd = cmd.replace(b"\0", b" ").decode("utf-8", "replace").strip()
            except OSError:
                cmd = "?"
            holders.append((entry["pid"], cmd))
    return holders


@contextlib.contextmanager
def directory_lock(directory: Path, timeout: float, *, swift_lock: bool = True):
    """swift's own ``lock_parent_directory`` on ``directory`` (the ``.lock`` file that
    ``swift-ring-builder-safe`` takes), so ringmgr and swift's tool exclude each other.

    ``swift_lock=False`` takes the very same lock (an exclusive ``flock`` on the same
    ``.lock`` file, polled until ``timeout``) without importing swift, whose import
    pulls in eventlet (~0.2 s): for ``push``, which needs no other part of swift.
    """
    if not Path(directory).is_dir():
        raise Refused(f"builder_dir {directory} does not exist or is not a directory")
    if not os.access(directory, os.W_OK):
        raise Refused(f"{directory} is not writable by this user: nothing was changed")
    if swift_lock:
        from swift.common.exceptions import LockTimeout
        from swift.common.utils import lock_parent_directory

        lock = lock_parent_directory(str(directory / "ringmgr"), timeout)
        timeout_error: type[BaseException] = LockTimeout
    else:
        lock = _flock(directory / ".lock", timeout)
        timeout_error = TimeoutError
    try:
        with lock:
            yield
    except timeout_error:
        holders = lock_holders(directory / ".lock")
        who = "; ".join(f"pid {pid} ({cmd})" for pid, cmd in holders) or "a process not found"
        raise LockHeld(f"{directory} is locked by {who}; waited {timeout:g} s. "
                       f"Let it finish (or stop it) and run the command again")


@contextlib.contextmanager
def _flock(path: Path, timeout: float):
    import fcntl
    import time

    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(str(path))
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)


_RING_RE = re.compile(r"^(account|container|object(-[0-9]+)?)$")


def is_ring_name(name: str) -> bool:
    return bool(_RING_RE.match(name))
