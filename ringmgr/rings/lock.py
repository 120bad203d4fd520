"""The builder directory's lock: the very ``flock`` on ``<dir>/.lock`` that swift's
``lock_parent_directory`` (and so ``swift-ring-builder-safe``) takes, so that ringmgr
and swift's tool exclude each other; taken here without importing swift.

The descriptor is opened ``O_NOFOLLOW|O_CLOEXEC`` and its number is known
(``DirectoryLock.fd``), so that forked workers can close their inherited copy: a
flock belongs to the open file description, and a child that keeps the descriptor
keeps the lock after its parent died.

Holders are found by the lock itself, not by pid files: ``/proc/<pid>/fdinfo/<fd>``
lists the flock held through that descriptor, also in a forked child that inherited
it (``/proc/locks`` names only the process that took it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ringmgr.errors import LockHeld, Refused

LOCK_NAME = ".lock"


@dataclass
class Holder:
    pid: int
    command: str
    took_it: bool  # this process took the flock (else it inherited the descriptor)

    def describe(self) -> str:
        how = "" if self.took_it else ", inherited from a process that is gone"
        return f"pid {self.pid} ({self.command}{how})"


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode("utf-8", "replace")
    text = " ".join(text.split())  # one line, whatever the arguments held
    return (text[:117] + "...") if len(text) > 120 else (text or "?")


def _dev_ino(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def parse_fdinfo_locks(text: str) -> list[dict]:
    """The ``lock:`` lines of ``/proc/<pid>/fdinfo/<fd>``.

    Sample::

        pos:	0
        flags:	02100001
        mnt_id:	27
        ino:	2146562
        lock:	1: FLOCK  ADVISORY  WRITE 27954 fe:00:2146562 0 EOF

    Returns dicts with kind, access and pid (the process that took the lock).
    """
    out = []
    for line in text.splitlines():
        if not line.startswith("lock:"):
            continue
        fields = line.split()
        # lock: 1: FLOCK ADVISORY WRITE 27954 fe:00:2146562 0 EOF
        if len(fields) >= 6 and fields[2] in ("FLOCK", "POSIX", "OFDLCK", "LEASE"):
            try:
                pid = int(fields[5])
            except ValueError:
                continue
            out.append({"kind": fields[2], "access": fields[4], "pid": pid})
    return out


def lock_holders(lock_file: Path, *, proc: Path = Path("/proc")) -> list[Holder]:
    """Processes (other than this one) that hold the flock on ``lock_file`` through a
    descriptor: the taker and every child that inherited its descriptor."""
    want = _dev_ino(lock_file)
    if want is None:
        return []
    holders = []
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(fd)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) != want:
                continue
            try:
                info = (entry / "fdinfo" / fd.name).read_text()
            except OSError:
                continue
            locks = [x for x in parse_fdinfo_locks(info) if x["kind"] == "FLOCK"]
            if locks:
                holders.append(Holder(pid, _cmdline(pid), locks[0]["pid"] == pid))
                break
    return holders


def describe_holders(lock_file: Path) -> str:
    holders = lock_holders(lock_file)
    if not holders:
        return "a process this user cannot see (the lock is held, but no holder was found)"
    live_takers = [h for h in holders if h.took_it]
    shown = live_takers or holders
    return "; ".join(h.describe() for h in shown)


class DirectoryLock:
    """An exclusive flock on ``directory/.lock``; ``fd`` is its descriptor while held."""

    def __init__(self, directory: Path, timeout: float, *,
                 on_wait: Callable[[str], None] | None = None, clock=time.monotonic,
                 sleep=time.sleep):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.timeout = timeout
        self.on_wait = on_wait
        self.clock = clock
        self.sleep = sleep
        self.fd: int | None = None

    def _open(self) -> int:
        if not self.directory.is_dir():
            raise Refused(f"builder_dir {self.directory} does not exist or is not a directory")
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            kind = ("a symlink" if stat.S_ISLNK(st.st_mode) else
                    "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file")
            raise Refused(f"{self.path} is {kind}: the lock file must be an empty regular "
                          f"file; move it away (it holds no data) and run the command again")
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            return os.open(self.path, flags, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise Refused(f"{self.path} is a symlink: move it away and run the command again")
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise Refused(f"{self.directory} is not writable by this user "
                              f"({e.strerror}): nothing was changed")
            raise Refused(f"cannot open the lock file {self.path} ({e.strerror})")

    def acquire(self) -> None:
        fd = self._open()
        deadline = self.clock() + self.timeout
        announced = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not announced and self.on_wait is not None:
                        self.on_wait(f"waiting up to {self.timeout:g} s for the lock on "
                                     f"{self.directory}, held by {describe_holders(self.path)}")
                        announced = True
                    if self.clock() >= deadline:
                        raise LockHeld(
                            f"{self.directory} is locked by {describe_holders(self.path)}; "
                            f"waited {self.timeout:g} s. Let it finish (or stop it) and run "
                            f"the command again")
                    self.sleep(0.05)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None

    def __enter__(self) -> "DirectoryLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(directory: Path) -> bool:
    """Is the lock held by anyone right now (a quick non-blocking probe)?"""
    path = Path(directory) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def directory_lock(directory: Path, timeout: float, *, on_wait=None):
    """``with directory_lock(dir, 30):`` — the lock, released on exit."""
    lock = DirectoryLock(directory, timeout, on_wait=on_wait)
    with lock:
        yield lock


def release_inherited_flocks(proc_self: Path = Path("/proc/self")) -> list[int]:
    """Close every descriptor through which this (forked) process holds a flock.

    A forked child shares its parent's open files; keeping a copy of the builder_dir
    lock's descriptor would keep the lock alive after the parent died.  The parent's
    own descriptors are untouched, so the parent keeps its lock."""
    closed = []
    try:
        fds = [int(x.name) for x in (proc_self / "fd").iterdir()]
    except OSError:
        return closed
    for fd in fds:
        try:
            info = (proc_self / "fdinfo" / str(fd)).read_text()
        except OSError:
            continue
        if any(x["kind"] == "FLOCK" for x in parse_fdinfo_locks(info)):
            try:
                os.close(fd)
                closed.append(fd)
            except OSError:
                pass
    return closed
