"""``ringmgr diff A B``: how two states of the same rings differ.

Per ring in both: the settings (part power, replicas, min_part_hours, overload,
version), the devices added, removed and changed (every field, by device id: an id
whose device name changed was reused by another device), the replica assignments
that moved, per device, node, zone and region, and balance and dispersion on each
side.

The moves are counted with numpy over the assignment arrays (``_replica2part2dev``,
read through ``numpy.frombuffer``, no copies): an assignment moved when its device
differs (swift's own count); a node, zone or region gains and loses the assignments
whose node, zone or region differs, so a move inside a zone does not count for the
zone.  Part power 20 with 1,008 devices takes a few tenths of a second.
"""

from __future__ import annotations

from ringmgr.rings.changes import INFO_FIELDS

DEVICE_FIELDS = ("region", "zone", *INFO_FIELDS, "device", "weight")
SETTINGS = ("part_power", "replicas", "min_part_hours", "overload", "version",
            "next_part_power")
BUILDER_ONLY = ("min_part_hours", "overload")


def _setting(b, key):
    v = getattr(b, key, None)
    if v is None:
        return None
    return float(v) if key in ("replicas", "overload") else int(v)


def _dev_row(d, nodes_by_ip) -> dict:
    return {"id": d["id"], "node": nodes_by_ip.get(d["ip"], d["ip"]),
            **{k: d.get(k) for k in DEVICE_FIELDS}}


def compare_devices(a, b, nodes_by_ip) -> dict:
    """added / removed / changed, by device id."""
    da = {d["id"]: d for d in a.devs if d is not None}
    db = {d["id"]: d for d in b.devs if d is not None}
    added, removed, changed = [], [], []
    for i in sorted(set(da) | set(db)):
        x, y = da.get(i), db.get(i)
        if x is not None and y is not None and x["device"] != y["device"]:
            removed.append(_dev_row(x, nodes_by_ip))  # the id was reused
            added.append(_dev_row(y, nodes_by_ip))
        elif x is None:
            added.append(_dev_row(y, nodes_by_ip))
        elif y is None:
            removed.append(_dev_row(x, nodes_by_ip))
        else:
            fields = {k: [x.get(k), y.get(k)] for k in DEVICE_FIELDS
                      if x.get(k) != y.get(k)}
            if fields:
                row = _dev_row(y, nodes_by_ip)
                row["node"] = nodes_by_ip.get(y["ip"]) or nodes_by_ip.get(x["ip"]) or y["ip"]
                changed.append({**row, "fields": fields})
    return {"added": added, "removed": removed, "changed": changed}


def _labels(devs_a, devs_b, key, size: int):
    """Device id -> label index, per side, over one label space; -1 for an id with no
    device (removed, or the unassigned marker): arrays of ``size`` so that a replica
    row indexes them directly."""
    import numpy as np

    index: dict = {}
    out = []
    for devs in (devs_a, devs_b):
        lab = np.full(size, -1, dtype=np.int32)
        for d in devs:
            if d is not None:
                lab[d["id"]] = index.setdefault(key(d), len(index))
        out.append(lab)
    return out[0], out[1], index


def _rows(builder):
    from ringmgr.rings.report import replica_rows

    return replica_rows(builder)


def compare_moves(a, b, nodes_by_ip) -> dict:
    """Replica assignments moved (their device changed), in total and per device,
    node, zone and region.  At each level an assignment counts as gained and lost only
    when it moved across that level's boundary (a move between two disks of one node
    is not a move for the node); ``parts_before``/``parts_after`` count what each holds
    (a device that changed zone changes its zones' counts without moving data)."""
    import numpy as np

    ra, rb = _rows(a), _rows(b)
    total = int(sum(len(r) for r in rb)) or int(sum(len(r) for r in ra))
    if a.part_power != b.part_power:
        return {"comparable": False, "assignments": total, "moved": None, "moved_pct": None,
                "why": f"part power {a.part_power} -> {b.part_power}: partitions are "
                       f"numbered differently"}
    # a label array indexed by any id a row can hold (the unassigned marker included)
    size = max([len(a.devs), len(b.devs)] + [int(r.max()) + 1 for r in ra + rb if len(r)])
    nrows = max(len(ra), len(rb))
    empty = np.empty(0, dtype=np.uint32)
    pairs = []
    moved_total = 0
    for r in range(nrows):
        xa = ra[r] if r < len(ra) else empty
        xb = rb[r] if r < len(rb) else empty
        m = min(len(xa), len(xb))
        moved = xa[:m] != xb[:m]
        moved_total += int(np.count_nonzero(moved)) + (len(xa) - m) + (len(xb) - m)
        pairs.append((xa, xb, m, moved))
    out = {"comparable": True, "assignments": total, "moved": moved_total,
           "moved_pct": round(100.0 * moved_total / total, 4) if total else 0.0}
    levels = {"device": lambda d: d["id"], "node": lambda d: d["ip"],
              "zone": lambda d: (d["region"], d["zone"]), "region": lambda d: d["region"]}
    for level, key in levels.items():
        la, lb, index = _labels(a.devs, b.devs, key, size)
        n = len(index) + 1
        before, after, gained, lost = (np.zeros(n, dtype=np.int64) for _ in range(4))
        for xa, xb, m, moved in pairs:
            ya, yb = la[xa] + 1, lb[xb] + 1   # 0: no device
            before += np.bincount(ya, minlength=n)
            after += np.bincount(yb, minlength=n)
            across = moved & (ya[:m] != yb[:m])
            lost += np.bincount(ya[:m][across], minlength=n) + np.bincount(ya[m:], minlength=n)
            gained += np.bincount(yb[:m][across], minlength=n) + \
                np.bincount(yb[m:], minlength=n)
        names = {v: k for k, v in index.items()}
        rows = []
        for i in range(n - 1):
            g, lo = int(gained[i + 1]), int(lost[i + 1])
            pb, pa = int(before[i + 1]), int(after[i + 1])
            if not (g or lo or pb != pa):
                continue
            rows.append({**_label_fields(level, names[i], a, b, nodes_by_ip),
                         "parts_before": pb, "parts_after": pa, "gained": g, "lost": lo})
        rows.sort(key=lambda x: (-(x["gained"] + x["lost"] + abs(x["parts_after"] -
                                                                  x["parts_before"])),
                                 str(x)))
        out[f"{level}s"] = rows
    return out


def _label_fields(level, key, a, b, nodes_by_ip) -> dict:
    if level == "device":
        d = (b.devs[key] if key < len(b.devs) and b.devs[key] is not None else a.devs[key])
        return {"id": key, "node": nodes_by_ip.get(d["ip"], d["ip"]), "device": d["device"]}
    if level == "node":
        return {"node": nodes_by_ip.get(key, key), "ip": key}
    if level == "zone":
        return {"region": key[0], "zone": key[1]}
    return {"region": key}


def _balance(builder):
    from ringmgr.rings.report import _balance

    return _balance(builder)


def diff_ring(ring: str, a, b, *, nodes_by_ip: dict, a_ring: bool = False,
              b_ring: bool = False) -> dict:
    """The comparison of one ring (``a_ring``/``b_ring``: that side is a ring file,
    whose builder-only settings are unknown and not compared)."""
    settings = {}
    for key in SETTINGS:
        if key in BUILDER_ONLY and (a_ring or b_ring):
            continue
        va, vb = _setting(a, key), _setting(b, key)
        if va != vb:
            settings[key] = [va, vb]
    if not (a_ring or b_ring) and a._id and b._id and a._id != b._id:
        settings["id"] = [a._id, b._id]
    devices = compare_devices(a, b, nodes_by_ip)
    moves = compare_moves(a, b, nodes_by_ip)
    out = {"ring": ring, "settings": settings, "devices": devices, "moves": moves,
           "balance_before": _round(_balance(a)), "balance_after": _round(_balance(b)),
           "dispersion_before": None if a_ring else _round(_dispersion(a)),
           "dispersion_after": None if b_ring else _round(_dispersion(b))}
    out["same"] = not (settings or any(devices.values()) or moves.get("moved"))
    return out


def _dispersion(b):
    from ringmgr.rings.engine import dispersion_of

    return dispersion_of(b)


def _round(x):
    return None if x is None else round(float(x), 4)


def diff_sources(a, b, nodes_by_ip: dict) -> dict:
    """Every ring the two sources share, compared; refused when they share none."""
    from ringmgr.errors import UsageError

    common = [r for r in a.rings if r in b.rings]
    if not common and len(a.rings) == 1 and len(b.rings) == 1:
        (ra, ba), (rb, bb) = next(iter(a.rings.items())), next(iter(b.rings.items()))
        if ra in ("builder", "ring") or rb in ("builder", "ring"):  # name unknown
            common = [ra if ra not in ("builder", "ring") else rb]
            a.rings = {common[0]: ba}
            b.rings = {common[0]: bb}
    if not common:
        raise UsageError(f"unrelated: {a.describe()} and {b.describe()} share no ring; "
                         f"diff compares two states of the same ring")
    rings = {r: diff_ring(r, a.rings[r], b.rings[r], nodes_by_ip=nodes_by_ip,
                          a_ring=r in a.from_ring, b_ring=r in b.from_ring) for r in common}
    return {"a": a.label, "b": b.label, "a_kind": a.kind, "b_kind": b.kind,
            "rings": rings,
            "only_in_a": sorted(set(a.rings) - set(common)),
            "only_in_b": sorted(set(b.rings) - set(common)),
            "same": all(r["same"] for r in rings.values())
            and not (set(a.rings) ^ set(b.rings))}


# -- text ------------------------------------------------------------------------------

def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.2f}%"


def _setting_text(key, v) -> str:
    if v is None:
        return "none"
    if key == "overload":
        return f"{v * 100:.2f}%"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _dev_text(d: dict) -> str:
    meta = f" meta {d['meta']!r}" if d.get("meta") else ""
    return (f"id {d['id']} {d['node']}/{d['device']} {d['ip']}:{d['port']} "
            f"R{d['replication_ip']}:{d['replication_port']} r{d['region']}z{d['zone']} "
            f"weight {d['weight']:g}{meta}")


def render_diff(result: dict, *, top: int = 10) -> str:
    lines = [f"--- {result['a']} ({result['a_kind']})",
             f"+++ {result['b']} ({result['b_kind']})"]
    for side in ("a", "b"):
        if result[f"only_in_{side}"]:
            lines.append(f"only in {result[side]}: {', '.join(result[f'only_in_{side}'])}")
    for ring, r in result["rings"].items():
        if r["same"]:
            lines.append(f"{ring}: same")
            continue
        lines.append(f"{ring}:")
        for key, (x, y) in r["settings"].items():
            lines.append(f"  {key.replace('_', ' ')}: {_setting_text(key, x)} -> "
                         f"{_setting_text(key, y)}")
        dv = r["devices"]
        for sign, kind in (("+", "added"), ("-", "removed")):
            for d in dv[kind][:top]:
                lines.append(f"  {sign} {_dev_text(d)}")
            if len(dv[kind]) > top:
                lines.append(f"  {sign} ... {len(dv[kind]) - top} more devices {kind}")
        for d in dv["changed"][:top]:
            what = ", ".join(f"{k} {x!r} -> {y!r}" if isinstance(x, str) else
                             f"{k} {x:g} -> {y:g}" if isinstance(x, float) else
                             f"{k} {x} -> {y}" for k, (x, y) in d["fields"].items())
            lines.append(f"  ~ id {d['id']} {d['node']}/{d['device']}: {what}")
        if len(dv["changed"]) > top:
            lines.append(f"  ~ ... {len(dv['changed']) - top} more devices changed")
        m = r["moves"]
        if not m["comparable"]:
            lines.append(f"  replica assignments: not compared ({m['why']})")
        else:
            lines.append(f"  replica assignments moved: {m['moved']} of {m['assignments']} "
                         f"({m['moved_pct']:.2f}%)")
            for level in ("region", "zone", "node", "device"):
                rows = m[f"{level}s"]
                if not rows or (level == "region" and len(rows) < 2 and not
                                any(x["gained"] != x["lost"] for x in rows)):
                    continue
                lines.append(f"  per {level} (assignments before -> after, in / out):")
                for x in rows[:top]:
                    lines.append(f"    {_label_text(level, x):<28} {x['parts_before']:>9} -> "
                                 f"{x['parts_after']:>9}  +{x['gained']} / -{x['lost']}")
                if len(rows) > top:
                    lines.append(f"    ... {len(rows) - top} more")
        lines.append(f"  balance {_pct(r['balance_before'])} -> {_pct(r['balance_after'])}, "
                     f"dispersion {_pct(r['dispersion_before'])} -> "
                     f"{_pct(r['dispersion_after'])}")
    verdict = "same" if result["same"] else "different"
    lines.append(f"{verdict}: {len(result['rings'])} ring(s) compared")
    return "\n".join(lines)


def _label_text(level: str, x: dict) -> str:
    if level == "device":
        return f"{x['node']}/{x['device']} (id {x['id']})"
    if level == "node":
        return x["node"] if x["node"] == x["ip"] else f"{x['node']} ({x['ip']})"
    if level == "zone":
        return f"r{x['region']}z{x['zone']}"
    return f"r{x['region']}"
