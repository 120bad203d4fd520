"""Measured bytes and predicted fullness of a ring change (pure).

Input: per (node, device) the bytes each ring's datadir holds and the filesystem's
size and use (``ringmgr.ops.usage``), and the ring reports of the change (parts per
device before and after).  Per ring and device, bytes per partition-replica =
the datadir's bytes / the partitions the device holds; a device with none (a new
one) gets the ring's mean.  After the change a device keeps the partitions it still
has at its own size and receives new ones at the ring's mean:

    ring_bytes_after = min(before, after) * own + max(0, after - before) * mean
    fs_used_after = fs_used - sum(ring_bytes) + sum(ring_bytes_after)

Bytes moved per ring = the bytes of the partition-replicas that leave devices.
"""

from __future__ import annotations


def per_part(reports: dict, usage: dict) -> dict[str, dict]:
    """ring -> {"mean": bytes, (node, device): bytes per partition-replica}."""
    out = {}
    for ring, rep in reports.items():
        total_b = total_p = 0
        own = {}
        for d in rep["devices"]:
            u = usage.get(d["node"])
            b = None if u is None else u.rings.get(d["device"], {}).get(ring)
            if b is None and u is not None and d["device"] in u.rings:
                b = 0  # measured: no datadir of this ring yet
            if b is not None and d["parts_before"]:
                own[(d["node"], d["device"])] = b / d["parts_before"]
                total_b += b
                total_p += d["parts_before"]
        out[ring] = {"mean": (total_b / total_p) if total_p else 0.0, **own}
    return out


def predict(reports: dict, usage: dict, full_percent: float) -> dict:
    """Fills each report's device rows with ``bytes_before``/``bytes_after`` and the
    ring's ``bytes_moved`` (measured); returns per filesystem (node/device) the
    prediction, and the devices past ``full_percent``."""
    sizes = per_part(reports, usage)
    fs: dict[tuple[str, str], dict] = {}
    for ring, rep in reports.items():
        mean = sizes[ring]["mean"]
        moved = 0.0
        measured_all = True
        for d in rep["devices"]:
            key = (d["node"], d["device"])
            u = usage.get(d["node"])
            fsys = None if u is None else u.filesystems.get(d["device"])
            own = sizes[ring].get(key)
            if u is None or d["device"] not in u.rings:
                measured_all = False
                d["bytes_before"] = d["bytes_after"] = None
                continue
            per = mean if own is None else own
            before = u.rings[d["device"]].get(ring, 0)
            keep = min(d["parts_before"], d["parts_after"])
            after = keep * per + max(0, d["parts_after"] - d["parts_before"]) * mean
            moved += max(0, d["parts_before"] - d["parts_after"]) * per
            d["bytes_before"], d["bytes_after"] = int(before), int(round(after))
            if fsys is not None:
                f = fs.setdefault(key, {"node": d["node"], "device": d["device"],
                                        "size": fsys.size, "used_before": fsys.used,
                                        "delta": 0.0})
                f["delta"] += after - before
        if measured_all:
            rep["bytes_moved"] = int(round(moved))
            rep["bytes_estimate"] = ("measured: the bytes of each device's partition-replicas "
                                     "that move (du of its datadir / its partitions; a new "
                                     "device: the ring's mean)")
        rep["bytes_per_partition_replica"] = int(round(mean))
    out, over = [], []
    for key, f in sorted(fs.items()):
        after = f["used_before"] + f["delta"]
        row = {"node": f["node"], "device": f["device"], "size": f["size"],
               "used_before": f["used_before"], "used_after": int(round(after)),
               "percent_before": round(100.0 * f["used_before"] / f["size"], 2) if f["size"] else None,
               "percent_after": round(100.0 * after / f["size"], 2) if f["size"] else None}
        out.append(row)
        if row["percent_after"] is not None and row["percent_after"] > full_percent \
                and after > f["used_before"]:
            over.append(row)
    return {"devices": out, "over": over, "full_percent": full_percent}


def over_text(over: list[dict], full_percent: float) -> str:
    return ", ".join(f"{r['node']}/{r['device']} {r['percent_before']:g}% -> "
                     f"{r['percent_after']:g}%" for r in over) + \
        f" (over [cluster].full_percent = {full_percent:g}%)"
