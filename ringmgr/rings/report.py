"""The simulation report: what a ring change moves, and what it risks.

Pure functions over two swift ``RingBuilder`` objects (``before`` and ``after``, the
latter a deepcopy of the former with the change applied and rebalanced).  Nothing
here reads files, runs commands or prints; the CLI decides what to show.

The assignment arrays (``builder._replica2part2dev``, one ``array('H'|'I')`` per
replica, partition -> device id) are read through ``numpy.frombuffer`` without
copying, so a report on a part power 20 ring costs milliseconds, not the minutes a
rebalance takes.  With fractional replicas (e.g. 2.5) the last row is shorter: it
covers only the first partitions.
"""

from __future__ import annotations

__all__ = ["ring_report", "render_text", "render_brief", "replica_rows", "parts_per_device",
           "count_moves", "failure_domain_risk", "total_assignments"]


# -- the assignment arrays -----------------------------------------------------

def replica_rows(builder) -> list:
    """One numpy view per replica row of ``builder``'s assignments (no copies)."""
    import numpy as np

    rows = []
    for row in builder._replica2part2dev or []:
        if isinstance(row, np.ndarray):
            rows.append(row)
        else:
            rows.append(np.frombuffer(row, dtype=np.dtype(row.typecode)))
    return rows


def total_assignments(builder) -> int:
    """Replica assignments the ring holds: partitions x replicas, fractional-aware."""
    return int(sum(len(r) for r in builder._replica2part2dev or []))


def parts_per_device(builder) -> "np.ndarray":
    """Array indexed by device id: replica assignments each device holds."""
    import numpy as np

    size = len(builder.devs)
    counts = np.zeros(size, dtype=np.int64)
    for row in replica_rows(builder):
        valid = row[row < size]
        counts += np.bincount(valid, minlength=size)[:size]
    return counts


def count_moves(before, after) -> int:
    """Replica assignments whose device differs between ``before`` and ``after``.

    The same count swift's ``rebalance()`` returns as its first value: rows or
    partitions that exist on one side only count as moved.
    """
    b_rows, a_rows = replica_rows(before), replica_rows(after)
    moved = 0
    for r, a in enumerate(a_rows):
        if r >= len(b_rows):
            moved += len(a)
            continue
        b = b_rows[r]
        n = min(len(a), len(b))
        moved += int((a[:n] != b[:n]).sum()) + (len(a) - n)
    return moved


def _padded(builder, labels) -> "np.ndarray":
    """(replicas, partitions) matrix of ``labels[device]``; -1 where no replica.

    In the labels' small integer type (int16 for up to 32,766 domains): at part power
    20 an int64 matrix and its sorted copy would cost the process tens of megabytes.
    """
    import numpy as np

    rows = replica_rows(builder)
    out = np.full((len(rows), builder.parts), -1, dtype=labels.dtype)
    size = len(labels)
    for r, row in enumerate(rows):
        ok = row < size
        target = out[r, :len(row)]
        target[ok] = labels[row[ok]]
    return out


def _distinct_per_column(m) -> tuple:
    """Per column of ``m``: (distinct labels >= 0, entries >= 0).

    Pairwise comparisons of the replica rows (a handful), not a sort of the matrix:
    a few milliseconds at part power 18 instead of a tenth of a second."""
    import numpy as np

    present = m >= 0
    distinct = np.zeros(m.shape[1], dtype=np.int64)
    for r in range(m.shape[0]):
        new = present[r].copy()
        for k in range(r):
            new &= m[r] != m[k]
        distinct += new
    return distinct, present.sum(axis=0)


def _label_array(builder, key) -> tuple:
    """Device id -> integer label of its failure domain (-1: no device); and the
    number of distinct domains that hold weight (where replicas may go)."""
    import numpy as np

    dtype = np.int16 if len(builder.devs) < 32767 else np.int32
    labels = np.full(len(builder.devs), -1, dtype=dtype)
    index: dict = {}
    weighted: set = set()
    for dev in builder.devs:
        if dev is None:
            continue
        k = key(dev)
        labels[dev["id"]] = index.setdefault(k, len(index))
        if dev.get("weight", 0) > 0:
            weighted.add(k)
    return labels, len(weighted)


def _zone_key(dev):
    return (dev["region"], dev["zone"])


def _node_key(dev):
    return (dev["region"], dev["zone"], dev["ip"])


def failure_domain_risk(builder) -> dict:
    """Partitions holding two replicas in one zone (one node) although enough zones
    (nodes) with weight exist to keep them apart.

    A partition with n replicas is at zone risk when its replicas span fewer than
    min(n, zones) distinct zones; likewise for nodes (a node is an ip).
    """
    import numpy as np

    out = {}
    for name, key in (("zone", _zone_key), ("node", _node_key)):
        labels, available = _label_array(builder, key)
        if builder.parts == 0 or not builder._replica2part2dev:
            out[f"parts_same_{name}"] = 0
            out[f"{name}s"] = available
            continue
        distinct, nrep = _distinct_per_column(_padded(builder, labels))
        at_risk = distinct < np.minimum(nrep, available)
        out[f"parts_same_{name}"] = int(at_risk.sum())
        out[f"{name}s"] = available
    return out


# -- the report ------------------------------------------------------------------

def _dev_identity(dev) -> tuple:
    return (dev["ip"], dev["port"], dev["device"])


# fields a device row shows old -> new when they changed (weight has its own columns)
_FIELDS = ("region", "zone", "ip", "port", "replication_ip", "replication_port", "meta")


def _device_rows(before, after, nodes_by_ip, edited=()) -> list[dict]:
    """``edited``: ids whose address changed in place (set_info), the same device: not a
    slot reused by another device."""
    pb, pa = parts_per_device(before), parts_per_device(after)
    rows = []
    for dev_id in range(max(len(before.devs), len(after.devs))):
        b = before.devs[dev_id] if dev_id < len(before.devs) else None
        a = after.devs[dev_id] if dev_id < len(after.devs) else None
        if b is None and a is None:
            continue
        pairs = [(b, a)]
        if b is not None and a is not None and _dev_identity(b) != _dev_identity(a) \
                and dev_id not in edited:
            pairs = [(b, None), (None, a)]  # slot reused by another device
        for db, da in pairs:
            dev = da if da is not None else db
            parts_before = int(pb[dev_id]) if db is not None and dev_id < len(pb) else 0
            parts_after = int(pa[dev_id]) if da is not None and dev_id < len(pa) else 0
            fields = ({k: [db.get(k), da.get(k)] for k in _FIELDS if db.get(k) != da.get(k)}
                      if db is not None and da is not None else {})
            rows.append({
                "id": dev_id,
                "node": nodes_by_ip.get(dev["ip"]) or (nodes_by_ip.get(db["ip"]) if db
                                                       else None) or dev["ip"],
                "ip": dev["ip"],
                "port": dev["port"],
                "device": dev["device"],
                "zone": dev["zone"],
                "region": dev["region"],
                "weight_before": float(db["weight"]) if db is not None else None,
                "weight_after": float(da["weight"]) if da is not None else None,
                "parts_before": parts_before,
                "parts_after": parts_after,
                "delta": parts_after - parts_before,
                "status": ("removed" if da is None else "added" if db is None
                           else "changed" if parts_after != parts_before or fields
                           or db["weight"] != da["weight"] else "unchanged"),
                **({"fields": fields} if fields else {}),
            })
    return _group_by_node(rows)


def _group_by_node(rows: list[dict]) -> list[dict]:
    """Nodes with the biggest change first; within a node, biggest |delta| first."""
    by_node: dict[str, list[dict]] = {}
    for row in rows:
        by_node.setdefault(row["node"], []).append(row)
    for devs in by_node.values():
        devs.sort(key=lambda d: (-abs(d["delta"]), d["id"]))
    order = sorted(by_node, key=lambda n: (-sum(abs(d["delta"]) for d in by_node[n]), n))
    return [d for n in order for d in by_node[n]]


def _round(x, nd=4):
    return None if x is None else round(float(x), nd)


def ring_report(ring: str, before, after, parts_moved: int | None,
                nodes_by_ip: dict[str, str],
                used_bytes: float | None = None, edited=()) -> dict:
    """The CONTRACT's per-ring simulation report for one ring change.

    ``parts_moved`` is what ``after.rebalance()`` returned.  The report's
    ``parts_moved`` is recounted exactly from the two assignment tables
    (``count_moves``): swift 2.38 counts moves while iterating
    ``zip(*_replica2part2dev)``, which stops at the short last row of a
    fractional-replica ring, so its number misses moves in the partitions that row
    does not cover.  When they differ for that reason (fractional or changed
    replica count), swift's number is kept as ``parts_moved_swift``; None (or 0
    from a caller that has no rebalance result) is simply ignored.  ``used_bytes`` is the ring's total stored bytes (all
    replicas); without it the byte estimate is "unknown" rather than a guess.
    """
    swift_moved = None if parts_moved is None else int(parts_moved)
    parts_moved = count_moves(before, after)
    fractional = (after.replicas != int(after.replicas)
                  or before.replicas != after.replicas)
    if swift_moved == parts_moved or not fractional:
        swift_moved = None
    total = total_assignments(after) or total_assignments(before)
    pct = 100.0 * parts_moved / total if total else 0.0
    report = {
        "ring": ring,
        "parts": after.parts,
        "replicas": float(after.replicas),
        "assignments": total,
        "parts_moved": int(parts_moved),
        "parts_moved_pct": _round(pct),
        **({"parts_moved_swift": swift_moved} if swift_moved is not None else {}),
        "balance_before": _round(_balance(before)),
        "balance_after": _round(_balance(after)),
        "dispersion_before": _round(before.dispersion),
        "dispersion_after": _round(after.dispersion),
    }
    if used_bytes is None:
        report["bytes_moved"] = None
        report["bytes_estimate"] = "unknown (no used_bytes given for this ring)"
    else:
        report["bytes_moved"] = int(round(parts_moved / total * used_bytes)) if total else 0
        report["bytes_estimate"] = (
            f"from used_bytes={int(used_bytes)}: moved share of {total} replica "
            f"assignments x used bytes (assumes evenly filled partitions)")
    report["risk_before"] = failure_domain_risk(before)
    report["risk_after"] = failure_domain_risk(after)
    report["devices"] = _device_rows(before, after, nodes_by_ip, edited)
    settings = {k: [_setting(before, k), _setting(after, k)] for k in SETTINGS
                if _setting(before, k) != _setting(after, k)}
    if settings:
        report["settings"] = settings
    return report


# ring settings a report shows old -> new when a change set them
SETTINGS = ("part_power", "replicas", "min_part_hours", "overload")


def _setting(builder, key):
    v = getattr(builder, key)
    return float(v) if key in ("replicas", "overload") else int(v)


def _balance(builder) -> float | None:
    """``builder.get_balance()``; None for a builder without weighted devices."""
    from swift.common.exceptions import RingBuilderError

    try:
        return builder.get_balance()
    except (ValueError, ZeroDivisionError, RingBuilderError):
        return None


# -- text (report_text.py) -------------------------------------------------------

from ringmgr.rings.report_text import render_brief, render_text  # noqa: E402,F401
