"""``ringmgr status``: every ring at a glance, devices grouped by node."""

from __future__ import annotations

from ringmgr.config import config_warnings
from ringmgr.errors import EXIT_OK, EXIT_WARNING
from ringmgr.rings.engine import gate_text
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
        state = store.ring_state(name, b)
        if state != "up to date":
            problems.append(f"{name}.ring.gz is {state}")
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
            "dispersion": round(b.dispersion or 0.0, 2),
            "min_part_hours": b.min_part_hours,
            "min_part_seconds_left": b.min_part_seconds_left,
            "version": b.version, "ring_gz": state,
            "next_part_power": b.next_part_power,
            "nodes": nodes,
        }
    ips = {n: {d["ip"] for d in b.devs if d is not None} for n, b in builders.items()}
    warnings = config_warnings(config, ips)
    if pending:
        problems.insert(0, "an interrupted ring change is pending: run `ringmgr resume`")
    return {"builder_dir": str(store.dir), "rings": rings, "pending_change": pending,
            "problems": problems, "warnings": warnings,
            "exit_code": EXIT_WARNING if problems else EXIT_OK, "written": False}


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
