"""``ringmgr dump RING``: a builder as deterministic, line-oriented text, to commit next
to the builders so that ``git diff`` shows what a ring change did.

Three blocks: the ring's settings (one ``key value`` line each), its devices (one
line each, every field swift keeps, by id), and per device the partitions it holds:
their count and a digest of the set (sha256 of the sorted partition numbers), so a
device whose assignments changed shows as a changed line.  Nothing time-dependent
(the min_part_hours clock, the time of the last move) is in it: dumping the same
builder twice gives the same bytes.
"""

from __future__ import annotations

import hashlib

DIGEST_CHARS = 16


def _value(v) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        import json

        return json.dumps(v, ensure_ascii=False)
    return "none" if v is None else str(v)


def partition_digests(builder) -> dict[int, tuple[int, str]]:
    """device id -> (partitions held, digest of the partition set), numpy over the
    assignment rows: one stable sort of (device, partition) pairs."""
    import numpy as np

    from ringmgr.rings.report import replica_rows

    rows = replica_rows(builder)
    if not rows:
        return {}
    ndev = len(builder.devs)
    devs = np.concatenate([r.astype(np.int64, copy=False) for r in rows])
    parts = np.concatenate([np.arange(len(r), dtype=np.int64) for r in rows])
    ok = devs < ndev
    devs, parts = devs[ok], parts[ok]
    key = devs * (1 << 32) + parts
    key = np.unique(key)  # a partition twice on one device counts once for its set
    devs_sorted = key >> 32
    parts_sorted = (key & 0xFFFFFFFF).astype("<u4")
    bounds = np.flatnonzero(np.diff(devs_sorted)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(key)]])
    out = {}
    for s, e in zip(starts, ends):
        dev = int(devs_sorted[s])
        chunk = parts_sorted[s:e]
        out[dev] = (int(e - s), hashlib.sha256(chunk.tobytes()).hexdigest()[:DIGEST_CHARS])
    return out


def dump_builder(ring: str, builder) -> str:
    from ringmgr.rings.engine import dispersion_of
    from ringmgr.rings.report import _balance, total_assignments

    marked = {d["id"] for d in builder._remove_devs}
    devs = [d for d in builder.devs if d is not None]
    balance = _balance(builder)
    dispersion = dispersion_of(builder)
    lines = [f"# ringmgr dump {ring}: settings, devices, partitions per device "
             f"(count and digest of the set)",
             f"ring {ring}",
             f"part_power {builder.part_power}",
             f"partitions {builder.parts}",
             f"replicas {_value(float(builder.replicas))}",
             f"min_part_hours {builder.min_part_hours}",
             f"overload {_value(float(builder.overload))}",
             f"version {builder.version}",
             f"id {_value(builder._id)}",
             f"next_part_power {_value(builder.next_part_power)}",
             f"assignments {total_assignments(builder)}",
             f"balance {'none' if balance is None else f'{balance:.4f}'}",
             f"dispersion {'none' if dispersion is None else f'{dispersion:.4f}'}",
             f"devices {len(devs)}",
             ""]
    for d in devs:
        flag = " marked_for_removal" if d["id"] in marked else ""
        lines.append(f"device {d['id']} region {d['region']} zone {d['zone']} "
                     f"ip {d['ip']} port {d['port']} replication_ip {d['replication_ip']} "
                     f"replication_port {d['replication_port']} name {_value(d['device'])} "
                     f"weight {_value(float(d['weight']))} meta {_value(d.get('meta', ''))}"
                     f"{flag}")
    lines.append("")
    digests = partition_digests(builder)
    for d in devs:
        n, digest = digests.get(d["id"], (0, "-"))
        lines.append(f"parts {d['id']} {d['ip']}/{d['device']} {n} {digest}")
    return "\n".join(lines) + "\n"
