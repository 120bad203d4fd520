"""Is a ``*.ring.gz`` the ring its builder makes?  Checked the way swift-ring-builder
decides "up-to-date", plus what swift's loader lets through.

A ring file is **up to date** only when all of these hold:

- it is a regular file that inflates to a sane size (no gzip bomb is inflated whole);
- its gzip header names this ring (``RingData.save`` writes the file's own name there,
  without ``.gz``, so ``object-1.ring.gz`` copied over ``object.ring.gz`` is caught:
  "foreign");
- swift can read it and every replica row is complete (a truncated v1 file still
  loads, with short rows: "corrupt");
- its content equals ``builder.get_ring().to_dict()`` without ``dev_id_bytes``
  (swift-ring-builder's own test; it sees device edits such as ``set_info`` that do
  not bump the builder's version: "stale").

States: ``up to date``, ``missing``, ``stale``, ``corrupt``, ``foreign``.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from ringmgr.errors import BuilderError
from ringmgr.rings.files import is_ring_name, read_regular

CURRENT = "up to date"


@dataclass
class RingCheck:
    state: str
    detail: str = ""
    version: int | None = None

    @property
    def current(self) -> bool:
        return self.state == CURRENT


def gzip_name(data: bytes) -> str | None:
    """The file name in a gzip header (FNAME), if there is one.

    Header layout (RFC 1952): ID1 ID2 CM FLG MTIME(4) XFL OS, then FEXTRA (2-byte length
    + data) if FLG & 4, then FNAME (zero-terminated) if FLG & 8.
    """
    if len(data) < 10 or data[:2] != b"\x1f\x8b":
        return None
    flg = data[3]
    pos = 10
    if flg & 4:
        if len(data) < pos + 2:
            return None
        (xlen,) = struct.unpack("<H", data[pos:pos + 2])
        pos += 2 + xlen
    if not flg & 8:
        return None
    end = data.find(b"\0", pos)
    if end < 0:
        return None
    return data[pos:end].decode("latin-1")


def inflated_size(data: bytes, limit: int) -> int:
    """Bytes ``data`` inflates to, stopping (with ``limit + 1``) past ``limit``."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0
    buf = data
    while buf:
        out = d.decompress(buf, 1 << 20)
        total += len(out)
        if total > limit:
            return limit + 1
        buf = d.unconsumed_tail
        if d.eof:
            break
    return total


def size_limit(builder) -> int:
    """The most a ring of ``builder``'s shape can inflate to, with room to spare."""
    replicas = max(1, math.ceil(float(getattr(builder, "replicas", 1) or 1)))
    parts = 2 ** int(getattr(builder, "part_power", 0) or 0)
    devs = len(getattr(builder, "devs", []) or [])
    return 64 * 1024 * 1024 + 4 * replicas * parts + 4096 * devs


def load_ring_bytes(data: bytes):
    """RingData from a ring file's bytes (what ``RingData.load`` does with a path)."""
    from swift.common.ring.io import RingReader
    from swift.common.ring.ring import RING_CODECS, RingData

    reader = RingReader(io.BytesIO(data))
    if reader.version not in RING_CODECS:
        raise ValueError(f"unknown ring format version {reader.version}")
    ring_dict = RING_CODECS[reader.version]["deserialize"](RingData, reader, False, True)
    ring = RingData.from_dict(ring_dict)
    ring.format_version = reader.version
    return ring


def check_ring_file(path: Path, name: str, builder) -> RingCheck:
    path = Path(path)
    try:
        data = read_regular(path, what="ring file", limit=size_limit(builder))
    except FileNotFoundError:
        return RingCheck("missing", "not written yet")
    except BuilderError as e:
        return RingCheck("corrupt", str(e).split(": ", 1)[-1] if ": " in str(e) else str(e))
    # gzip records the name without ".gz": "object-1.ring" in object-1.ring.gz
    header_name = gzip_name(data)
    other = header_name[: -len(".ring")] if header_name and header_name.endswith(".ring") \
        else None
    if other and other != name and is_ring_name(other):
        return RingCheck("foreign", f"it is {other}'s ring (its gzip header names "
                                    f"{header_name}.gz)")
    limit = size_limit(builder)
    try:
        if inflated_size(data, limit) > limit:
            return RingCheck("corrupt", f"it inflates past {limit} bytes (not a ring of "
                                        f"this builder's size)")
        ring = load_ring_bytes(data)
    except Exception as e:  # zlib, struct, json and swift's own errors alike
        return RingCheck("corrupt", f"swift cannot read it ({type(e).__name__})")
    version = getattr(ring, "version", None)
    problem = _row_problem(ring)
    if problem is None and version == builder.version:
        want_rows = [len(r) for r in builder._replica2part2dev or []]
        have_rows = [len(r) for r in ring._replica2part2dev_id]
        if want_rows != have_rows:
            problem = (f"its replica rows hold {have_rows} partitions where version "
                       f"{version} has {want_rows}: the file is truncated")
    if problem:
        return RingCheck("corrupt", problem, version)
    want = builder.get_ring().to_dict()
    have = ring.to_dict()
    want.pop("dev_id_bytes", None)
    have.pop("dev_id_bytes", None)
    if want == have:
        return RingCheck(CURRENT, "", version)
    return RingCheck("stale", _difference(want, have), version)


def _row_problem(ring) -> str | None:
    """Truncation and impossible ids: what swift's loader lets through."""
    rows = ring._replica2part2dev_id
    parts = 2 ** ring.part_power
    lengths = [len(r) for r in rows]
    for i, n in enumerate(lengths):
        if n > parts:
            return f"replica row {i} has {n} entries for {parts} partitions"
        if i < len(lengths) - 1 and n < parts:
            return (f"replica row {i} has {n} of {parts} partitions: the file is "
                    f"truncated")
        if n == 0:
            return f"replica row {i} is empty: the file is truncated"
    import numpy as np

    ndevs = len(ring.devs)
    for i, r in enumerate(rows):
        if not len(r):
            continue
        ids = np.frombuffer(r, dtype=np.dtype(r.typecode))
        if int(ids.max()) >= ndevs:
            return f"replica row {i} names device ids that the ring does not have"
        used = np.flatnonzero(np.bincount(ids, minlength=ndevs))
        if any(ring.devs[int(d)] is None for d in used):
            return f"replica row {i} names removed devices"
    return None


def _difference(want: dict, have: dict) -> str:
    if have.get("version") != want.get("version"):
        v_have, v_want = have.get("version"), want.get("version")
        newer = (isinstance(v_have, int) and isinstance(v_want, int) and v_have > v_want)
        return (f"version {v_have}, the builder is version {v_want}"
                + (" (the ring is newer than the builder: was the builder restored from "
                   "an old copy?)" if newer else ""))
    if have.get("devs") != want.get("devs"):
        return (f"its devices differ from the builder's (same version {want.get('version')}:"
                f" an edit such as set_info that swift does not version)")
    if have.get("part_shift") != want.get("part_shift") or \
            have.get("next_part_power") != want.get("next_part_power"):
        return "its partition power differs from the builder's"
    return "its partition assignments differ from the builder's"
