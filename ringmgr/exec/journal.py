"""The journal of one host operation on the admin host: its chosen parameters and the
state of each step, so a run stopped anywhere continues where it stopped.

``Journal.open(key, state_dir=None, *, resume=False, dry_run=False, keep_finished=False,
identity=None)``
    One JSON file per operation key (``replace-disk.s02.sdb``) in ``state_dir``, else
    ``$RINGMGR_STATE_DIR``, else ``~/.local/state/ringmgr/runs/``; written atomically
    (``rings.files.atomic_write``: temp file, fsync, rename) after every state change and locked (flock) while
    open (``LockHeld`` if another run holds it).  The directory is made 0700 and
    refused (``Refused``) when anyone but this user or root could write it or one of
    its parents (``private_dir``): a journal decides what a resumed run does.  A
    journal whose ``key`` is not the one opened, or whose ``identity`` (what the
    operation is about: node, device, target, ...) differs from the caller's, is
    refused: it was edited or copied from another run.  A finished journal is archived
    (``<key>.<UTC time>.json``) and a new one started; ``resume=True`` refuses
    (``UsageError``) when no run is in progress.  With ``keep_finished=True`` a
    finished journal is returned as it is (``journal.finished``), so the caller can
    say "already done" when the state it left still stands, or ``journal.archive()``
    it and start afresh.  ``journal.param(name, factory)``
    returns the journaled value, choosing it with ``factory()`` the first time
    (``check=fn`` re-validates a value read back from the journal: fn raises
    ``Refused`` for one that no longer fits); ``journal.set_param(name, value)``
    replaces one.
    A dry run (``dry_run=True``) saves the parameters it chooses (so the real run
    uses the very UUID the dry run showed) but never step states.  The step
    states are ``done``, ``skipped``, ``started`` (killed mid-action: run again,
    its check decides), ``failed`` and ``pending``; only done/skipped are final.
    ``journal.close()`` releases the lock.  ``Journal.memory(key)`` is an unsaved
    journal for callers that need none.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from ringmgr.errors import LockHeld, Refused, UsageError
from ringmgr.exec.statedir import private_dir

def default_state_dir() -> Path:
    env = os.environ.get("RINGMGR_STATE_DIR")
    if env:
        return Path(env)
    return Path(os.path.expanduser("~/.local/state/ringmgr/runs"))


def cluster_state_dir(config) -> Path:
    """The run journals of one cluster: operation keys like ``replace-disk.s01.sdb`` are
    only unique within a cluster, so each cluster (by its builder_dir) gets its own dir.
    An explicit ``$RINGMGR_STATE_DIR`` is used as it is."""
    import hashlib

    if os.environ.get("RINGMGR_STATE_DIR"):
        return default_state_dir()
    tag = hashlib.sha1(str(Path(config.cluster.builder_dir).resolve()).encode()).hexdigest()
    return default_state_dir() / f"cluster-{tag[:12]}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Journal:
    """The saved progress of one operation (see the module docstring)."""

    def __init__(self, key: str, path: Path | None, data: dict | None = None, *,
                 dry_run: bool = False, lock_fd: int | None = None):
        self.key = key
        self.path = path
        self.dry_run = dry_run
        self._lock_fd = lock_fd
        self.identity = None
        self.data = data or self._fresh(key)

    @staticmethod
    def _fresh(key: str, identity: dict | None = None) -> dict:
        d = {"key": key, "version": 1, "created": _now(), "updated": _now(),
             "finished": False, "params": {}, "steps": {}}
        if identity is not None:
            d["identity"] = dict(identity)
        return d

    # -- opening --------------------------------------------------------------
    @classmethod
    def memory(cls, key: str = "memory") -> "Journal":
        return cls(key, None)

    @classmethod
    def open(cls, key: str, state_dir: str | os.PathLike | None = None, *,
             resume: bool = False, dry_run: bool = False,
             keep_finished: bool = False, identity: dict | None = None) -> "Journal":
        if not key or "/" in key or key.startswith("."):
            raise UsageError(f"bad operation key {key!r}")
        root = private_dir(state_dir if state_dir else default_state_dir())
        path = root / f"{key}.json"
        try:
            lock_fd = os.open(root / f".{key}.lock",
                              os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise Refused(f"cannot open the lock file {root / ('.' + key + '.lock')} "
                          f"({e.strerror}); move it away")
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(lock_fd)
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise LockHeld(f"another run of {key} is in progress (lock "
                               f"{root / ('.' + key + '.lock')}); wait for it to finish")
            raise
        data = None
        if path.exists():
            try:
                data = json.loads(path.read_text())
                if not isinstance(data, dict) or not isinstance(data.get("params"), dict) \
                        or not isinstance(data.get("steps"), dict):
                    raise ValueError("not a run journal")
            except (OSError, ValueError) as e:
                os.close(lock_fd)
                raise UsageError(f"journal {path} is unreadable ({e}); move it away "
                                 f"to start the operation afresh")
            if data.get("finished") and not keep_finished:
                _archive(path, key)
                data = None
        if data is not None:
            why = _foreign(data, key, None if data.get("finished") else identity)
            if why:
                os.close(lock_fd)
                raise Refused(f"journal {path} {why}: it was edited or copied from another "
                              f"run; nothing was done (move it away to start afresh)")
            if identity is not None and not data.get("finished"):
                data.setdefault("identity", dict(identity))
        if resume and data is None:
            os.close(lock_fd)
            raise UsageError(f"nothing to resume: no run of {key} is in progress "
                             f"(no journal in {root}); run the command without --resume")
        journal = cls(key, path, data, dry_run=dry_run, lock_fd=lock_fd)
        journal.identity = identity
        if data is None and identity is not None:
            journal.data = cls._fresh(key, identity)
        return journal

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def archive(self) -> None:
        """Move a finished journal aside (``<key>.<UTC time>.json``) and start afresh."""
        if self.path is not None and self.path.exists():
            _archive(self.path, self.key)
        self.data = self._fresh(self.key, self.identity)

    # -- contents -------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return bool(self.data.get("finished"))

    @property
    def in_progress(self) -> bool:
        """True when an earlier run left steps of this operation recorded."""
        return bool(self.data["steps"])

    @property
    def params(self) -> dict:
        return self.data["params"]

    def param(self, name: str, factory: Callable[[], Any],
              check: Callable[[Any], None] | None = None) -> Any:
        """The journaled value of ``name``; chosen with ``factory()`` the first time.
        ``check(value)`` re-validates a value read back from the journal."""
        if name not in self.data["params"]:
            self.data["params"][name] = factory()
            self._save(params_only=True)
        elif check is not None:
            check(self.data["params"][name])
        return self.data["params"][name]

    def set_param(self, name: str, value: Any) -> None:
        """Replace a journaled value (only before any step used it: the caller's call)."""
        self.data["params"][name] = value
        self._save(params_only=True)

    def step_state(self, name: str) -> str | None:
        s = self.data["steps"].get(name)
        return s["state"] if s else None

    def mark(self, name: str, state: str, reason: str = "") -> None:
        self.data["steps"][name] = {"state": state, "reason": reason, "at": _now()}
        self._save()

    def finish(self) -> None:
        self.data["finished"] = True
        self._save()

    def _save(self, params_only: bool = False) -> None:
        if self.path is None or (self.dry_run and not params_only):
            return
        if self.dry_run:
            # a dry run records only its chosen parameters, and only in a new journal
            # file or one that already exists; step states stay as they were on disk
            on_disk = self._read_disk()
            on_disk.setdefault("params", {}).update(self.data["params"])
            data = on_disk
        else:
            data = self.data
        data["updated"] = _now()
        write_json_atomic(self.path, data)

    def _read_disk(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {"key": self.key, "version": 1, "created": _now(), "finished": False,
                    "params": {}, "steps": {}}


def _foreign(data: dict, key: str, identity: dict | None) -> str | None:
    """Why a journal on disk is not this operation's (None when it is)."""
    if data.get("key") != key:
        return f"is for operation {str(data.get('key'))[:80]!r}, not {key!r}"
    theirs = data.get("identity")
    if identity is not None and theirs is not None and theirs != identity:
        diff = ", ".join(f"{k} {theirs.get(k)!r} (now {v!r})" for k, v in identity.items()
                         if theirs.get(k) != v) or "other fields"
        return f"was started for another {diff}"
    return None


def _archive(path: Path, key: str) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    os.replace(path, path.parent / f"{key}.{stamp}.json")


def write_json_atomic(path: Path, data: dict) -> None:
    """``data`` as JSON through the one atomic writer (``rings.files.atomic_write``:
    temp file in the same directory, fsync, rename, fsync the directory), readable by
    this user only (a journal decides what a resumed run does)."""
    from ringmgr.rings.files import atomic_write

    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(Path(path), text.encode(), mode=0o600)
