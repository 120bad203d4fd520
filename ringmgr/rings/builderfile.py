"""Builder files as bytes: what ``RingBuilder.save`` writes, what ``RingBuilder.load``
reads, and a short account of how two builders differ (for refusals)."""

from __future__ import annotations

import io
import pickle
import uuid
from pathlib import Path

from ringmgr.errors import BuilderError

DEV_KEYS = ("ip", "port", "device", "weight", "zone", "region", "replication_ip",
            "replication_port", "meta")


def builder_pickle(builder) -> bytes:
    """The bytes ``RingBuilder.save`` writes for ``builder`` (an id is given if none)."""
    if builder._id is None:
        builder._id = uuid.uuid4().hex
    return pickle.dumps(builder.to_dict(), protocol=2)


def builder_from_bytes(data: bytes, path: Path, backup_dir: Path | None = None):
    """A RingBuilder from a builder file's bytes, loaded the way ``RingBuilder.load``
    loads it (old builder objects and dicts alike)."""
    from swift.common.ring import RingBuilder

    try:
        builder = RingBuilder.load(str(path), open=lambda *_a, **_k: io.BytesIO(data))
    except Exception as e:  # pickle raises many kinds on a damaged file
        where = f" from {backup_dir}" if backup_dir else ""
        raise BuilderError(f"{path} is truncated or corrupt ({type(e).__name__}); "
                           f"restore it{where} or `ringmgr rollback`")
    if not hasattr(builder, "_replica2part2dev"):
        raise BuilderError(f"{path} is not a ring builder")
    return builder


def describe_difference(old: bytes | None, new: bytes | None, path: Path) -> str:
    """'version 13 -> 14; device 3: weight' style: how builder file ``new`` differs
    from ``old`` (both raw file bytes)."""
    if new is None:
        return "it was removed"
    try:
        before = builder_from_bytes(old, path) if old else None
        after = builder_from_bytes(new, path)
    except BuilderError:
        return "it is no longer a readable builder"
    if before is None:
        return f"now version {after.version}"
    diffs = []
    b_devs = {d["id"]: d for d in before.devs if d is not None}
    a_devs = {d["id"]: d for d in after.devs if d is not None}
    for i in sorted(set(b_devs) | set(a_devs)):
        b, a = b_devs.get(i), a_devs.get(i)
        if b is None:
            diffs.append(f"device {i} added")
        elif a is None:
            diffs.append(f"device {i} removed")
        else:
            keys = [k for k in DEV_KEYS if b.get(k) != a.get(k)]
            if keys:
                diffs.append(f"device {i}: {', '.join(keys)}")
    if len(after._remove_devs) != len(before._remove_devs):
        diffs.append("devices marked for removal")
    if before.version != after.version:
        diffs.insert(0, f"version {before.version} -> {after.version}")
    shown = diffs[:4] + ([f"{len(diffs) - 4} more"] if len(diffs) > 4 else [])
    return "; ".join(shown) or "its bytes differ"


class ReadOnlyBuilder:
    """The parts of a builder the read-only risk checks use (``devs``, ``parts``,
    ``replicas``, ``part_power``, ``_replica2part2dev``, ``min_part_hours``), read from
    the plain pickle of dicts and arrays that ``RingBuilder.save`` writes, without
    importing swift (whose ring module costs more than the unpickling: eventlet)."""

    def __init__(self, d: dict):
        self.devs = d["devs"]
        self.part_power = d["part_power"]
        self.parts = 2 ** d["part_power"]
        self.replicas = d["replicas"]
        self.min_part_hours = d.get("min_part_hours", 0)
        self._replica2part2dev = d.get("_replica2part2dev")
        self.version = d.get("version", 0)
        self.next_part_power = d.get("next_part_power")


def read_only_builder(data: bytes, path: Path, backup_dir: Path | None = None):
    """A ReadOnlyBuilder from a builder file's bytes; an old pickled RingBuilder object
    (or anything unusual) goes through ``builder_from_bytes``."""
    try:
        d = pickle.loads(data) if data[:2] == b"\x80\x02" else None
    except Exception:
        d = None
    if isinstance(d, dict) and {"devs", "part_power", "replicas"} <= set(d) \
            and "_replica2part2dev" in d:
        return ReadOnlyBuilder(d)
    return builder_from_bytes(data, path, backup_dir)
