"""The ring store: builders and rings in ``builder_dir``, changed all or nothing.

A change of several rings is one transaction:

1. ``.ringmgr/txn/`` is created (a change is now in progress);
2. the current builder and ring of every ring in the change are copied to
   ``backups/`` (``<unix time>.<name>``, like swift-ring-builder);
3. the new builders (pickled exactly as ``RingBuilder.save`` does) and rings
   (``RingData.save`` under their final base name, so the gzip header is the one
   swift-ring-builder writes) are staged in ``txn/`` and fsynced;
4. ``txn/journal.json`` is written atomically: the commit point;
5. each staged file is renamed over its final name; ``builder_dir`` is fsynced;
6. the history record is appended and ``txn/`` removed.

A process killed before 4 leaves the old files in place: the next ``resume`` undoes
the change (removes ``txn/``).  Killed after 4: ``resume`` finishes the renames.
Until then ``status`` reports it and every other change refuses.  Readers that look
between two renames of step 5 can see a mix of old and new rings; that is what the
journal repairs.
"""

from __future__ import annotations

import getpass
import json
import os
import pickle
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ringmgr.errors import BuilderError, Refused
from ringmgr.rings.files import (
    TMP_PREFIX, atomic_write, directory_lock, fault_point, fsync_dir, is_ring_name,
    md5_file, sweep_temp_files,
)

STATE_DIR = ".ringmgr"
TXN_DIR = "txn"
JOURNAL = "journal.json"
HISTORY = "history.jsonl"
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

    # -- discovery and loading -----------------------------------------------
    def discover(self) -> list[str]:
        """Ring names in builder_dir: account, container, object, object-N (in that order)."""
        self.require_dir()
        if self.only is not None:
            for name in self.only:
                if not is_ring_name(name):
                    raise BuilderError(f"cluster.rings: {name!r} is not a ring name "
                                       f"(account, container, object, object-N)")
                if not self.files(name).builder.exists():
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
        from swift.common.ring import RingBuilder

        path = self.files(name).builder
        if not path.exists():
            raise BuilderError(f"{path} is missing")
        try:
            builder = RingBuilder.load(str(path))
        except Exception as e:  # pickle raises many kinds on a damaged file
            raise BuilderError(f"{path} is truncated or corrupt ({type(e).__name__}); "
                               f"restore it from {self.backup_dir} or `ringmgr rollback`")
        if not hasattr(builder, "_replica2part2dev"):
            raise BuilderError(f"{path} is not a ring builder")
        return builder

    def load_all(self) -> dict:
        return {name: self.load(name) for name in self.discover()}

    def ring_state(self, name: str, builder) -> str:
        """'up to date', 'missing', 'stale' (older than the builder) or 'corrupt'."""
        from swift.common.ring import RingData

        path = self.files(name).ring
        if not path.exists():
            return "missing"
        try:
            data = RingData.load(str(path))
        except Exception:
            return "corrupt"
        if getattr(data, "version", None) != builder.version:
            return "stale"
        return "up to date"

    def check_rings_readable(self, builders: dict) -> None:
        """Refuse a change when a ring.gz is missing or corrupt next to its builder."""
        for name, builder in builders.items():
            state = self.ring_state(name, builder)
            if state in ("missing", "corrupt") and builder._replica2part2dev:
                raise BuilderError(
                    f"{self.files(name).ring} is {state}; write it from the builder with "
                    f"`ringmgr write-rings` (or restore it from {self.backup_dir})")

    def refuse_unchangeable(self, builders: dict) -> None:
        for name, b in builders.items():
            if b.next_part_power:
                raise Refused(f"{name}: a partition-power increase is in progress "
                              f"(next_part_power={b.next_part_power}); finish or cancel it "
                              f"with swift-ring-builder before changing this ring")

    # -- locking and the interrupted change ------------------------------------
    def lock(self):
        self.require_dir()
        return directory_lock(self.dir, self.lock_timeout)

    def pending(self) -> dict | None:
        if not self.txn_dir.exists():
            return None
        journal = self.txn_dir / JOURNAL
        try:
            data = json.loads(journal.read_text())
            return {"id": data["record"]["id"], "committed": True,
                    "description": data["record"].get("description", ""),
                    "rings": sorted(data["record"]["rings"])}
        except FileNotFoundError:
            return {"id": None, "committed": False, "description": "", "rings": []}
        except (ValueError, KeyError):
            # journal.json is written atomically, so a half file cannot exist
            raise BuilderError(f"{journal} is unreadable; inspect {self.txn_dir} by hand")

    def refuse_if_pending(self) -> None:
        p = self.pending()
        if p is not None:
            state = "committed, not yet finished" if p["committed"] else "not committed"
            raise Refused(f"an interrupted ring change ({state}) is pending in "
                          f"{self.txn_dir}: run `ringmgr resume` to "
                          f"{'finish' if p['committed'] else 'undo'} it first")

    def recover(self) -> str | None:
        """Finish a committed interrupted change or undo an uncommitted one (call locked)."""
        p = self.pending()
        if p is None:
            sweep_temp_files(self.dir)
            sweep_temp_files(self.backup_dir)
            return None
        if p["committed"]:
            journal = json.loads((self.txn_dir / JOURNAL).read_text())
            self._install(journal)
            msg = f"finished interrupted change #{p['id']} ({p['description']})"
        else:
            shutil.rmtree(self.txn_dir)
            fsync_dir(self.state_dir)
            msg = "undid an interrupted change that had not been committed; the old rings stand"
        sweep_temp_files(self.dir)
        sweep_temp_files(self.backup_dir)
        return msg

    # -- the transaction -------------------------------------------------------
    def commit(self, new_builders: dict, record: dict) -> dict:
        """Write ``new_builders`` (name -> RingBuilder) all or nothing; call locked.

        ``record`` is the history entry (description, argv, seed, ...); this fills in
        id, time, user and per ring the versions, md5s and backups, and returns it.
        """
        self.refuse_if_pending()
        if not os.access(self.dir, os.W_OK):
            raise Refused(f"{self.dir} is not writable by this user: nothing was changed")
        sweep_temp_files(self.dir)
        self.state_dir.mkdir(exist_ok=True)
        record = dict(record)
        record.setdefault("id", self.next_id())
        record.setdefault("time", self.clock())
        record.setdefault("user", _user())
        record.setdefault("rings", {})

        self.txn_dir.mkdir()
        fsync_dir(self.state_dir)
        fault_point("txn:begin")
        self.backup_dir.mkdir(exist_ok=True)
        stamp = int(record["time"])
        staged = []
        for name, builder in new_builders.items():
            f = self.files(name)
            entry = record["rings"].setdefault(name, {})
            entry.update({
                "builder_md5_before": md5_file(f.builder),
                "ring_md5_before": md5_file(f.ring),
            })
            for src in (f.builder, f.ring):
                if src.exists():
                    dest = self.backup_dir / f"{stamp}.{record['id']}.{src.name}"
                    atomic_write(dest, src.read_bytes())
                    entry["backup_" + ("builder" if src == f.builder else "ring")] = \
                        str(dest.relative_to(self.dir))
            if builder._id is None:
                builder._id = uuid.uuid4().hex
            data = pickle.dumps(builder.to_dict(), protocol=2)
            atomic_write(self.txn_dir / f.builder.name, data)
            staged.append(f.builder.name)
            entry["builder_md5_after"] = md5_file(self.txn_dir / f.builder.name)
            entry["version_after"] = builder.version
            entry["id"] = builder.id
            if builder._replica2part2dev:
                fault_point(f"write:{f.ring.name}")
                kw = {} if self.format_version is None else {"format_version": self.format_version}
                builder.get_ring().save(str(self.txn_dir / f.ring.name), **kw)
                staged.append(f.ring.name)
                entry["ring_md5_after"] = md5_file(self.txn_dir / f.ring.name)
            else:
                entry["ring_md5_after"] = entry["ring_md5_before"]
        fsync_dir(self.txn_dir)
        fault_point("txn:staged")
        journal = {"record": record, "files": staged}
        atomic_write(self.txn_dir / JOURNAL, json.dumps(journal).encode())
        fault_point("txn:committed")
        self._install(journal)
        return record

    def _install(self, journal: dict) -> None:
        for fname in journal["files"]:
            src = self.txn_dir / fname
            if src.exists():
                fault_point(f"install:{fname}")
                os.rename(src, self.dir / fname)
        fsync_dir(self.dir)
        fault_point("txn:installed")
        record = journal["record"]
        if not any(r.get("id") == record["id"] for r in self.history()):
            self._append_history(record)
        fault_point("txn:recorded")
        shutil.rmtree(self.txn_dir)
        fsync_dir(self.state_dir)

    # -- history ---------------------------------------------------------------
    def history(self) -> list[dict]:
        self.require_dir()
        try:
            text = self.history_path.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue  # a torn last line from a crash mid-append: the journal redoes it
        return out

    def pushes(self) -> list[dict]:
        """Push records (``record_push``), oldest first."""
        self.require_dir()
        return _read_jsonl(self.state_dir / PUSHES)

    def record_push(self, record: dict) -> None:
        """Append one push record (where the rings went, per host), next to the history:
        ``{"change_id", "time", "user", "ok", "rings": {name: md5}, "hosts": {...}}``."""
        self.state_dir.mkdir(exist_ok=True)
        record = {"time": self.clock(), "user": _user(), **record}
        _append_line(self.state_dir / PUSHES, json.dumps(record, sort_keys=True))

    def next_id(self) -> int:
        return max((r["id"] for r in self.history()), default=0) + 1

    def _append_history(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.history_path, "a+b") as f:
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a torn line from a killed append
                    line = "\n" + line
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())


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


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


__all__ = ["RingStore", "pending_change", "TMP_PREFIX"]
