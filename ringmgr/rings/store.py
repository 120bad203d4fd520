"""The ring store: builders and rings in ``builder_dir``, changed all or nothing.

A change of several rings is one transaction:

1. every target is checked first: replaceable (a regular file, not immutable, in a
   writable directory), and still the very file the change was computed from (the
   md5 taken when it was loaded: compare-and-swap, so an edit made meanwhile by
   ``swift-ring-builder`` is never overwritten);
2. ``.ringmgr/txn/`` is created (a change is now in progress);
3. the builder and ring of every ring in the change are copied to ``backups/``
   (``<unix time>.<change id>.<name>``, like swift-ring-builder);
4. the new builders (pickled exactly as ``RingBuilder.save`` does) and rings
   (``RingData.save`` under their final base name, so the gzip header is the one
   swift-ring-builder writes) are staged in ``txn/`` and fsynced;
5. ``txn/journal.json`` is written atomically: the commit point;
6. each staged file is renamed over its final name; ``builder_dir`` is fsynced;
7. the history record is added and ``txn/`` removed.

Anything that fails before 5 is undone at once (nothing changed).  A process killed
before 5 leaves the old files in place: ``resume`` undoes the change.  Killed or
failed after 5: ``resume`` finishes the renames, again only over files that are still
the ones the change replaces.  Until then ``status`` reports it and every other
change refuses.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from ringmgr.errors import BuilderError, Refused
from ringmgr.rings import txn
from ringmgr.rings.files import (
    check_replaceable, check_writable_dir, is_ring_name, md5_file, read_regular,
)
from ringmgr.rings.builderfile import builder_from_bytes, builder_pickle
from ringmgr.rings.historylog import HistoryDamaged, HistoryLog
from ringmgr.rings.lock import DirectoryLock, describe_holders, is_locked
from ringmgr.rings.ringfile import RingCheck, check_ring_file

STATE_DIR = ".ringmgr"
TXN_DIR = "txn"
JOURNAL = "journal.json"
HISTORY = "history.jsonl"
SET_ASIDE = "set-aside"
PUSHES = "pushes.jsonl"


def pending_change(builder_dir) -> dict | None:
    """The interrupted change in ``builder_dir``, if any: {"id", "committed", ...}."""
    return RingStore(Path(builder_dir)).pending()


@dataclass
class RingFiles:
    name: str
    builder: Path
    ring: Path


class RingStore:
    def __init__(self, builder_dir: Path, rings: tuple[str, ...] | None = None,
                 lock_timeout: float = 30.0, format_version: int | None = None,
                 clock=time.time):
        self.dir = Path(builder_dir)
        self.only = rings
        self.lock_timeout = lock_timeout
        self.format_version = format_version
        self.clock = clock
        self.loaded: dict[str, str] = {}  # ring -> md5 of the builder bytes loaded
        self._loaded_bytes: dict[str, bytes] = {}
        self.log = HistoryLog(self.history_path, self.state_dir / SET_ASIDE, clock)

    @classmethod
    def from_config(cls, config) -> "RingStore":
        c = config.cluster
        return cls(c.builder_dir, c.rings, c.lock_timeout, c.format_version)

    # -- paths ----------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.dir / STATE_DIR

    @property
    def txn_dir(self) -> Path:
        return self.state_dir / TXN_DIR

    @property
    def history_path(self) -> Path:
        return self.state_dir / HISTORY

    @property
    def backup_dir(self) -> Path:
        return self.dir / "backups"

    def files(self, name: str) -> RingFiles:
        return RingFiles(name, self.dir / f"{name}.builder", self.dir / f"{name}.ring.gz")

    def require_dir(self) -> None:
        """builder_dir must be a directory (a file or a typo is bad input, exit 2)."""
        if not self.dir.is_dir():
            raise BuilderError(f"builder_dir {self.dir} does not exist or is not a directory")
        st = _lstat(self.state_dir)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise BuilderError(f"{self.state_dir} is not a directory (ringmgr keeps its "
                               f"history and transactions there): move it away")

    # -- discovery and loading -----------------------------------------------
    def discover(self) -> list[str]:
        """Ring names in builder_dir: account, container, object, object-N (in that order)."""
        self.require_dir()
        if self.only is not None:
            for name in self.only:
                if not is_ring_name(name):
                    raise BuilderError(f"cluster.rings: {name!r} is not a ring name "
                                       f"(account, container, object, object-N)")
                if not os.path.lexists(self.files(name).builder):
                    raise BuilderError(f"{self.files(name).builder} is missing "
                                       f"(listed in cluster.rings)")
            names = list(self.only)
        else:
            names = [p.name[: -len(".builder")] for p in self.dir.glob("*.builder")]
            names = [n for n in names if is_ring_name(n)]
            for ring in self.dir.glob("*.ring.gz"):
                name = ring.name[: -len(".ring.gz")]
                if is_ring_name(name) and name not in names:
                    raise BuilderError(
                        f"{self.files(name).builder} is missing but {ring.name} exists: restore "
                        f"the builder from {self.backup_dir} (rebuilding one from a ring is lossy)")
        if not names:
            raise BuilderError(f"no *.builder files in {self.dir}")
        return sorted(names, key=_ring_order)

    def load(self, name: str):
        """The builder of ``name``, read once (its md5 is kept for compare-and-swap)."""
        path = self.files(name).builder
        try:
            data = read_regular(path, what="builder")
        except FileNotFoundError:
            raise BuilderError(f"{path} is missing")
        builder = builder_from_bytes(data, path, self.backup_dir)
        self.loaded[name] = hashlib.md5(data).hexdigest()
        self._loaded_bytes[name] = data
        return builder

    def load_all(self) -> dict:
        return {name: self.load(name) for name in self.discover()}

    def load_all_read_only(self) -> dict:
        """Every builder as a ``ReadOnlyBuilder`` (no swift import): for checks that
        only read the assignments (ok-to-stop, failure-impact)."""
        from ringmgr.rings.builderfile import read_only_builder

        out = {}
        for name in self.discover():
            path = self.files(name).builder
            try:
                data = read_regular(path, what="builder")
            except FileNotFoundError:
                raise BuilderError(f"{path} is missing")
            out[name] = read_only_builder(data, path, self.backup_dir)
        return out

    def ring_check(self, name: str, builder) -> RingCheck:
        """Is ``name``.ring.gz current: the ring swift would write from ``builder``?"""
        return check_ring_file(self.files(name).ring, name, builder)

    def ring_checks(self, names, *, ring_md5s: dict | None = None) -> dict[str, RingCheck]:
        """``ring_check`` for each ring, cheaply where ringmgr wrote both files: when the
        builder and the ring.gz still have the md5s the latest change recorded for
        them, the ring is the one that change made from that builder.  Anything else
        (edited by swift-ring-builder, no history) gets the full check."""
        try:
            last = {}
            for rec in self.history():
                for ring, r in rec.get("rings", {}).items():
                    last[ring] = (r.get("builder_md5_after"), r.get("ring_md5_after"))
        except (HistoryDamaged, BuilderError, OSError):
            last = {}
        out = {}
        for name in names:
            f = self.files(name)
            ring_md5 = (ring_md5s or {}).get(name) or md5_file(f.ring)
            pair = last.get(name)
            if (pair and pair[1] and ring_md5 == pair[1] and not f.builder.is_symlink()
                    and md5_file(f.builder) == pair[0]):
                out[name] = RingCheck("up to date", "as ringmgr wrote it")
            else:
                out[name] = self.ring_check(name, self.load(name))
        return out

    def ring_state(self, name: str, builder) -> str:
        """'up to date', 'missing', 'stale', 'corrupt' or 'foreign' (see ringfile.py)."""
        return self.ring_check(name, builder).state

    def check_rings_readable(self, builders: dict) -> None:
        """Refuse a change when a ring.gz is missing or corrupt next to its builder."""
        for name, builder in builders.items():
            check = self.ring_check(name, builder)
            if check.state in ("missing", "corrupt") and builder._replica2part2dev:
                raise BuilderError(
                    f"{self.files(name).ring} is {check.state} ({check.detail}); write it "
                    f"from the builder with `ringmgr write-rings` (or restore it from "
                    f"{self.backup_dir})")

    def refuse_unchangeable(self, builders: dict) -> None:
        for name, b in builders.items():
            if b.next_part_power:
                raise Refused(f"{name}: a partition-power increase is in progress "
                              f"(next_part_power={b.next_part_power}); continue it with "
                              f"`ringmgr increase-part-power` (or cancel it with --cancel) "
                              f"before changing this ring")

    # -- locking and the interrupted change ------------------------------------
    def lock(self, on_wait=None) -> DirectoryLock:
        """The builder_dir lock (swift-ring-builder-safe's); while waiting for it,
        ``on_wait(message)`` is told once who holds it (default: a logged warning)."""
        self.require_dir()
        if on_wait is None:
            import logging

            on_wait = logging.getLogger("ringmgr").warning
        return DirectoryLock(self.dir, self.lock_timeout, on_wait=on_wait)

    def pending(self, *, held: bool = False) -> dict | None:
        """The change in ``txn/``, if any: id, committed, description, rings, and
        ``running`` (another process holds the lock: a change is being written now, not
        interrupted).  ``held``: this process holds the lock itself."""
        if not os.path.lexists(self.txn_dir):
            return None
        journal = self.txn_dir / JOURNAL
        running = not held and is_locked(self.dir)
        try:
            data = json.loads(read_regular(journal, what="journal"))
            return {"id": data["record"]["id"], "committed": True,
                    "description": data["record"].get("description", ""),
                    "rings": sorted(data["record"]["rings"]), "running": running}
        except FileNotFoundError:
            return {"id": None, "committed": False, "description": "", "rings": [],
                    "running": running}
        except (ValueError, KeyError, TypeError):
            # journal.json is written atomically, so a half file cannot exist
            raise BuilderError(f"{journal} is unreadable; inspect {self.txn_dir} by hand")

    def refuse_if_pending(self, *, held: bool = False) -> None:
        p = self.pending(held=held)
        if p is None:
            return
        if p["running"]:
            raise Refused(f"a ring change is being written right now by "
                          f"{describe_holders(self.dir / '.lock')}; let it finish, then "
                          f"run the command again")
        state = "committed, not yet finished" if p["committed"] else "not committed"
        raise Refused(f"an interrupted ring change ({state}) is pending in "
                      f"{self.txn_dir}: run `ringmgr resume` to "
                      f"{'finish' if p['committed'] else 'undo'} it first")

    # -- the transaction -------------------------------------------------------
    def preflight(self, names) -> None:
        """Before a change: every file it replaces can be replaced (no symlink, no
        immutable file, writable directories), and ringmgr's own state is sound."""
        self.require_dir()
        check_writable_dir(self.dir)
        for name in names:
            f = self.files(name)
            check_replaceable(f.builder, "builder")
            check_replaceable(f.ring, "ring file")
        for d in (self.backup_dir, self.state_dir):
            st = _lstat(d)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                raise Refused(f"{d} is not a directory: move it away; nothing was changed")
            if st is not None:
                check_writable_dir(d)
        st = _lstat(self.history_path)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise Refused(f"{self.history_path} is not a regular file: move it away; "
                          f"nothing was changed")

    # -- the transaction (see txn.py) -------------------------------------------
    def commit(self, new_builders: dict, record: dict, *,
               expected_md5: dict | None = None) -> dict:
        """Write ``new_builders`` (name -> RingBuilder) all or nothing; call locked.

        ``record`` is the history entry (description, argv, seed, ...); this fills in
        id, time, user and per ring the versions, md5s and backups, and returns it.
        ``expected_md5`` (default: what this store loaded) is the md5 each builder file
        must still have: if another tool changed one meanwhile, nothing is written.
        """
        return txn.commit(self, new_builders, record, expected_md5=expected_md5)

    def recover(self, *, discard: bool = False, force: bool = False) -> str | None:
        """Finish a committed interrupted change or undo an uncommitted one (call
        locked); never over a file edited meanwhile unless ``force`` (see txn.py)."""
        return txn.recover(self, discard=discard, force=force)

    # -- history (see historylog.py) ---------------------------------------------
    def read_history(self) -> tuple[list[dict], list[tuple[int, str]]]:
        """(records, damage): damaged lines are reported, never skipped silently."""
        self.require_dir()
        return self.log.read()

    def history(self) -> list[dict]:
        """Every change record; HistoryDamaged if a line is damaged."""
        self.require_dir()
        return self.log.records()

    def damage_message(self, damage) -> str:
        return self.log.damage_message(damage)

    def repair_history(self):
        return self.log.repair()

    def pushes(self) -> list[dict]:
        """Push records (``record_push``), oldest first."""
        self.require_dir()
        return _read_jsonl(self.state_dir / PUSHES)

    def record_push(self, record: dict) -> None:
        """Append one push record (where the rings went, per host), next to the history:
        ``{"change_id", "time", "user", "ok", "rings": {name: md5}, "hosts": {...}}``."""
        self.state_dir.mkdir(exist_ok=True)
        record = {"time": self.clock(), "user": txn.user_name(), **record}
        _append_line(self.state_dir / PUSHES, json.dumps(record, sort_keys=True))

    def next_id(self) -> int:
        return self.log.next_id()

def _lstat(path: Path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _read_jsonl(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn line from a killed append
    return out


def _append_line(path: Path, line: str) -> None:
    with open(path, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write((line + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


def _ring_order(name: str):
    order = {"account": (0, 0), "container": (1, 0), "object": (2, 0)}
    if name in order:
        return order[name]
    return (2, int(name.split("-", 1)[1]))



PartlyInstalled = txn.PartlyInstalled

__all__ = ["RingStore", "pending_change", "PartlyInstalled", "HistoryDamaged",
           "builder_pickle", "builder_from_bytes"]  # the last three re-exported
