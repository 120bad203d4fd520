"""``ringmgr status``: every ring at a glance, devices grouped by node."""

from __future__ import annotations

from datetime import datetime, timezone

from ringmgr.errors import EXIT_OK, EXIT_WARNING
from ringmgr.rings.engine import dispersion_of, gate_text
from ringmgr.rings.files import device_name_problem
from ringmgr.rings.store import RingStore


def ring_status(config) -> dict:
    store = RingStore.from_config(config)
    pending = store.pending()
    builders = store.load_all()
    by_ip = {n.ip: name for name, n in config.nodes.items()}
    rings = {}
    problems = []
    for name, b in builders.items():
        devs = [d for d in b.devs if d is not None]
        check = store.ring_check(name, b)
        state = check.state
        if not check.current and b._replica2part2dev:
            problems.append(f"{name}.ring.gz is {state} ({check.detail}): "
                            f"`ringmgr write-rings` writes it from {name}.builder")
        balance = b.get_balance() if b._replica2part2dev else None
        nodes: dict[str, list] = {}
        for d in devs:
            nodes.setdefault(by_ip.get(d["ip"], d["ip"]), []).append({
                "id": d["id"], "device": d["device"], "ip": d["ip"], "port": d["port"],
                "region": d["region"], "zone": d["zone"], "weight": d["weight"],
                "parts": d.get("parts", 0)})
        rings[name] = {
            "part_power": b.part_power, "partitions": b.parts, "replicas": b.replicas,
            "devices": len(devs), "zones": len({(d["region"], d["zone"]) for d in devs}),
            "balance": None if balance is None else round(balance, 2),
            "dispersion": round(dispersion_of(b) or 0.0, 2),
            "min_part_hours": b.min_part_hours,
            "min_part_seconds_left": b.min_part_seconds_left,
            "version": b.version, "ring_gz": state, "ring_gz_detail": check.detail,
            "next_part_power": b.next_part_power,
            "nodes": nodes,
        }
    try:
        history, damage = store.read_history()
    except Exception as e:  # a history that is a directory or unreadable
        history, damage = [], [(0, str(e))]
    if damage:
        problems.append(store.damage_message(damage))
    warnings = ring_warnings(config, builders, history)
    if pending:
        if pending.get("running"):
            problems.insert(0, "a ring change is being written right now (the builder_dir "
                               "lock is held)")
        else:
            problems.insert(0, "an interrupted ring change is pending: run `ringmgr resume`")
    return {"builder_dir": str(store.dir), "rings": rings, "pending_change": pending,
            "problems": problems, "warnings": warnings,
            "exit_code": EXIT_WARNING if problems else EXIT_OK, "written": False}


def ring_warnings(config, builders: dict, history: list[dict]) -> list[str]:
    """What the config and the rings disagree on: a node ip that matches no device (and
    whether a recorded change removed it), device names that are not safe paths."""
    all_ips = {d["ip"] for b in builders.values() for d in b.devs if d is not None}
    removed_by = {}
    for e in history:
        for d in e.get("removed_devices", []):
            removed_by[d.get("ip")] = e
    out = []
    for name, node in config.nodes.items():
        if node.ip in all_ips:
            continue
        e = removed_by.get(node.ip)
        if e is not None:
            when = datetime.fromtimestamp(e["time"], timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            out.append(f"nodes.{name} ({node.ip}) is in no ring: removed on {when} by change "
                       f"#{e['id']} ({e.get('description', '')}); `ringmgr rejoin-node {name}` "
                       f"brings it back")
        else:
            out.append(f"{config.path}: nodes.{name}.ip: {node.ip} matches no device in any "
                       f"ring (not yet added? `ringmgr add-node {name}`)")
    for ring, b in builders.items():
        for d in b.devs:
            if d is not None and device_name_problem(d["device"]):
                out.append(f"{ring}: device id {d['id']} ({d['ip']}) is named {d['device']!r}, "
                           f"which is not a safe directory name under mount_root; rename it "
                           f"by removing and re-adding the device")
    return out


def render_status(data: dict) -> str:
    lines = [f"builder_dir: {data['builder_dir']}"]
    for p in data["problems"]:
        lines.append(f"!! {p}")
    for w in data["warnings"]:
        lines.append(f"warning: {w}")
    for name, r in data["rings"].items():
        gate = r["min_part_seconds_left"]
        gate_s = f"{gate_text(gate)} left" if gate else "open"
        bal = "n/a (not yet rebalanced)" if r["balance"] is None else f"{r['balance']:.2f}%"
        lines.append("")
        lines.append(f"{name}: {r['partitions']} partitions (power {r['part_power']}), "
                     f"{r['replicas']:g} replicas, {r['devices']} devices in {r['zones']} "
                     f"zone(s), version {r['version']}")
        lines.append(f"  balance {bal}, dispersion {r['dispersion']:.2f}, "
                     f"min_part_hours {r['min_part_hours']} ({gate_s}), ring.gz {r['ring_gz']}")
        if r["next_part_power"]:
            lines.append(f"  !! partition power increase in progress "
                         f"(next_part_power {r['next_part_power']})")
        for node, devs in sorted(r["nodes"].items()):
            cells = ", ".join(f"{d['device']}(id {d['id']}, w {d['weight']:g}, "
                              f"{d['parts']} parts)" for d in sorted(devs, key=lambda d: d["device"]))
            z = sorted({(d["region"], d["zone"]) for d in devs})
            lines.append(f"  {node:<12} r{z[0][0]}z{z[0][1]}  {cells}")
    return "\n".join(lines)
