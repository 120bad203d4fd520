"""What ``ringmgr diff`` and ``ringmgr dump`` can read: a builder, a ring.gz, a backup
of either, a history change id, a saved plan, or a ring name (its builder in
builder_dir).  Each becomes ring name -> RingBuilder.

A ring file becomes a builder the way ``swift-ring-builder X write_builder`` makes
one (devices, assignments, version; per-device partition counts from the assignments),
without the builder-only settings a ring does not keep (min_part_hours, overload,
dispersion): ``Source.from_ring`` names those rings so that they are not compared.

What is read is identified by its content, not its name; anything else is refused
with what it is ("a TOML text file", "JSON, not a ringmgr plan", ...).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.errors import UsageError
from ringmgr.rings.files import is_ring_name, read_regular

MAX_FILE = 1 << 30


@dataclass
class Source:
    label: str                      # as given
    kind: str                       # "builder", "ring file", "backup of a builder", ...
    rings: dict = field(default_factory=dict)   # ring name -> RingBuilder
    from_ring: set = field(default_factory=set)  # rings rebuilt from a ring.gz

    def describe(self) -> str:
        """'object.builder (the object builder, part power 10, 3 replicas, 12 devices)'."""
        parts = []
        for ring, b in self.rings.items():
            n = sum(1 for d in b.devs if d is not None)
            parts.append(f"{ring}: part power {b.part_power}, {b.replicas:g} replicas, "
                         f"{n} devices, version {b.version}")
        return f"{self.label} ({self.kind}; {'; '.join(parts)})"


def ring_name_of(filename: str) -> str | None:
    """The ring a file name names: object.builder, 1712345678.12.object-1.ring.gz
    (a ringmgr backup), 1712345678.object.builder (swift-ring-builder's)."""
    name = os.path.basename(filename)
    for suffix in (".builder", ".ring.gz", ".ring"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    last = name.split(".")[-1]
    return last if is_ring_name(last) else None


def _what_is(data: bytes) -> str:
    """A short description of a file that is none of the things diff reads."""
    import json
    import tomllib

    if not data:
        return "an empty file"
    if data[:2] == b"\x1f\x8b":
        return "a gzip file that is not a swift ring"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data"
    try:
        json.loads(text)
        return "a JSON file that is not a ringmgr plan"
    except ValueError:
        pass
    try:
        tomllib.loads(text)
        return "a TOML text file" + (" (a ringmgr config?)" if "[cluster]" in text else "")
    except tomllib.TOMLDecodeError:
        pass
    return "a text file"


def load_file(path: str, *, key_dir=None) -> Source:
    """A builder, ring file, backup or saved plan at ``path``."""
    from ringmgr.errors import BuilderError

    p = Path(path)
    try:
        data = read_regular(p, limit=MAX_FILE, what="file")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file")
    backup = bool(re.match(r"^\d+\.", p.name))
    if data[:2] == b"\x1f\x8b":
        from ringmgr.rings.ringfile import gzip_name, load_ring_bytes

        try:
            ring = load_ring_bytes(data)
        except Exception:
            raise UsageError(f"{path} is {_what_is(data)}: diff reads builders, ring files, "
                             f"their backups, saved plans and history change ids")
        header = gzip_name(data) or ""
        name = ring_name_of(header) or ring_name_of(p.name) or "ring"
        kind = "backup of a ring file" if backup else "ring file"
        return Source(path, kind, {name: builder_from_ring(ring)}, {name})
    if data.lstrip()[:1] == b"{" and b'"ringmgr-plan"' in data[:200]:
        return load_plan(path, key_dir)
    if data[:1] == b"\x80":
        from ringmgr.rings.builderfile import builder_from_bytes

        try:
            b = builder_from_bytes(data, p)
        except BuilderError as e:
            raise UsageError(str(e))
        name = ring_name_of(p.name) or "builder"
        return Source(path, "backup of a builder" if backup else "builder", {name: b})
    raise UsageError(f"{path} is {_what_is(data)}, not a builder, ring file, backup or "
                     f"saved plan")


def load_plan(path, key_dir) -> Source:
    from ringmgr.rings.plan import Plan

    if key_dir is None:
        raise UsageError(f"{path} is a saved plan: reading it needs the config (its "
                         f"builder_dir holds the key the plan is sealed with)")
    plan = Plan.load(path, key_dir)
    return Source(path, f"saved plan: {plan.description}", plan.result_builders())


def builder_from_ring(ring):
    """A RingBuilder holding a ring file's devices and assignments (what
    ``swift-ring-builder X write_builder`` recovers), for comparison only."""
    from array import array

    import numpy as np
    from swift.common.ring import RingBuilder

    rows = [array(r.typecode, r) for r in ring._replica2part2dev_id]
    part_power = 32 - ring._part_shift
    parts = 2 ** part_power
    devs = [None if d is None else dict(d, parts=0, parts_wanted=0) for d in ring.devs]
    counts = np.zeros(len(devs), dtype=np.int64)
    for r in rows:
        ids = np.frombuffer(r, dtype=np.dtype(r.typecode))
        ids = ids[ids < len(devs)]
        counts += np.bincount(ids, minlength=len(devs))[:len(devs)]
    for d in devs:
        if d is not None:
            d["parts"] = int(counts[d["id"]])
    replicas = (sum(len(r) for r in rows) / parts) if rows else 1.0
    return RingBuilder.from_dict({
        "part_power": part_power, "replicas": float(replicas), "min_part_hours": 0,
        "parts": parts, "devs": devs, "devs_changed": False,
        "version": getattr(ring, "version", None) or 0,
        "_replica2part2dev": rows or None, "_last_part_moves_epoch": None,
        "_last_part_moves": None, "_last_part_gather_start": 0, "_remove_devs": [],
        "next_part_power": getattr(ring, "next_part_power", None),
        "dispersion": None,
    })


def state_after(store, change_id: int) -> dict:
    """ring -> builder as it was right after change ``change_id``: the pre-change backup
    of the next change that touched the ring, else the builder file now (if it is
    still what the history last recorded for it)."""
    from ringmgr.errors import BuilderError
    from ringmgr.rings.files import md5_file
    from ringmgr.rings.history import _load_backup

    hist = store.history()
    ids = [e["id"] for e in hist]
    if change_id not in ids:
        known = f"{ids[0]}..{ids[-1]}" if ids else "none yet"
        raise UsageError(f"no change #{change_id} in the history (known: {known})")
    rings = set()
    for e in hist:
        rings |= set(e.get("rings", {}))
    try:
        rings |= set(store.discover())
    except BuilderError:
        pass
    out = {}
    for ring in sorted(rings):
        later = next((e for e in hist if e["id"] > change_id and ring in e.get("rings", {})),
                     None)
        if later is not None:
            r = later["rings"][ring]
            if "backup_builder" not in r:
                continue  # the ring did not exist yet
            out[ring] = _load_backup(store, r["backup_builder"], r.get("builder_md5_before"))
            continue
        last = next((e for e in reversed(hist) if e["id"] <= change_id and
                     ring in e.get("rings", {})), None)
        path = store.files(ring).builder
        if not path.exists():
            continue
        if last is not None and md5_file(path) != last["rings"][ring].get("builder_md5_after"):
            raise BuilderError(f"{path} was changed outside ringmgr after change "
                               f"#{last['id']}: its state right after change #{change_id} "
                               f"is not kept")
        out[ring] = store.load(ring)
    return out


def resolve(arg: str, config_loader) -> Source:
    """One argument of ``diff``: a file, else a change id (``12`` or ``#12``), else a
    ring name (its builder in builder_dir).  ``config_loader()`` gives the config (or
    raises) only when one is needed."""
    if os.path.lexists(arg):
        if os.path.isdir(arg):
            raise UsageError(f"{arg} is a directory: give a builder, ring file, backup, plan "
                             f"or change id")
        data_head = b""
        if os.path.isfile(arg) and not os.path.islink(arg):
            with open(arg, "rb") as f:
                data_head = f.read(200)
        key_dir = None
        if data_head.lstrip()[:1] == b"{" and b'"ringmgr-plan"' in data_head:
            key_dir = _store(config_loader).state_dir
        return load_file(arg, key_dir=key_dir)
    m = re.fullmatch(r"#?(\d+)", arg)
    if m:
        store = _store(config_loader)
        n = int(m.group(1))
        return Source(arg, f"the rings right after change #{n}", state_after(store, n))
    if is_ring_name(arg):
        store = _store(config_loader)
        return Source(arg, f"the {arg} builder in {store.dir}", {arg: store.load(arg)})
    raise UsageError(f"{arg}: no such file, and not a change id (12, #12) or a ring name")


def _store(config_loader):
    from ringmgr.rings.store import RingStore

    return RingStore.from_config(config_loader())
