"""``ringmgr import``: a ringmgr.toml that describes existing builders exactly.

Every field swift keeps per device (ip, port, replication ip and port, zone, region,
weight, meta) and per ring (part power, replicas, min_part_hours, overload) is
written, at the most general level that says it: a ring's usual port in
``[cluster].ports``, a node's usual zone, region, replication ip and meta on the node,
a node's port in one ring in ``nodes.N.rings.RING``, and what differs for one device
in that device's table.  A ring whose devices on a node differ from the node's usual
set gets its own ``nodes.N.rings.RING.devices``.  Loading the result and resolving
each device (``Node.device_fields``) gives back every builder's devices
(``desired.describe_differences`` is empty).

Nodes are the ips of the devices; they are named after their ip and reached at it
(``host``) until the operator renames them.  Pure: builders in, text out.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from ringmgr.errors import UsageError

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Imported:
    text: str
    nodes: int
    devices: int
    rings: list[str]
    warnings: list[str] = field(default_factory=list)


def node_name(ip: str) -> str:
    """A TOML bare key from an ip: 10.0.1.1 -> 10-0-1-1, fd00::1 -> fd00--1."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", ip)


def _mode(values, default=None):
    """The most common value (ties: the smallest, so the output is deterministic)."""
    counts = Counter(values)
    if not counts:
        return default
    top = max(counts.values())
    return min((v for v, n in counts.items() if n == top), key=_sort_key)


def _sort_key(v):
    return (str(type(v)), v) if not isinstance(v, (int, float)) else ("0", v)


def _natural(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def describe_builders(builders: dict, builder_dir) -> Imported:
    """The ringmgr.toml text for ``builders`` (ring -> RingBuilder) in ``builder_dir``."""
    from ringmgr.rings.devices import live_devs

    warnings = []
    rings = list(builders)
    devs: dict[str, dict[str, dict[str, dict]]] = {}   # ip -> ring -> name -> dev
    for ring, b in builders.items():
        marked = [d for d in b._remove_devs]
        if marked:
            warnings.append(f"{ring}: {len(marked)} device(s) marked for removal (ids "
                            f"{', '.join(str(d['id']) for d in marked)}) are left out: the "
                            f"next rebalance removes them")
        if b.next_part_power:
            warnings.append(f"{ring}: a partition-power increase is in progress "
                            f"(next_part_power {b.next_part_power}); part_power is the "
                            f"current {b.part_power}")
        for d in live_devs(b):
            by_name = devs.setdefault(d["ip"], {}).setdefault(ring, {})
            if d["device"] in by_name:
                other = by_name[d["device"]]
                raise UsageError(f"{ring}: {d['ip']} has two devices named {d['device']} "
                                 f"(ids {other['id']} and {d['id']}, ports {other['port']} "
                                 f"and {d['port']}); the config names a node's devices by "
                                 f"name: rename one with swift-ring-builder set_info first")
            by_name[d["device"]] = d
    _check_addresses(devs)

    ports = {r: _mode([d["port"] for d in live_devs(b)], 6200) for r, b in builders.items()}
    rep_ports = {}
    for r, b in builders.items():
        same = [d["replication_port"] for d in live_devs(b) if d["port"] == ports[r]]
        rp = _mode(same, ports[r])
        if rp != ports[r]:
            rep_ports[r] = rp

    out = _Writer()
    count = sum(len(x) for per_ring in devs.values() for x in per_ring.values())
    out.comment(f"ringmgr.toml written by `ringmgr import` from {len(rings)} builder(s) in "
                f"{builder_dir}: {', '.join(rings)}; {len(devs)} node(s), {count} device(s).")
    out.comment("Nodes are named after their ip and reached over SSH at it (host): rename "
                "them and set host")
    out.comment("to each node's SSH address; ringmgr finds a node's devices by its ip.")
    out.comment("Set [cluster].swift_conf for erasure-coded policies, [ssh] for access.")
    out.blank()
    out.section("cluster")
    out.key("builder_dir", str(builder_dir))
    out.inline("ports", ports)
    if rep_ports:
        out.inline("replication_ports", rep_ports)
    for r, b in builders.items():
        out.blank()
        out.section(f"rings.{r}")
        out.key("part_power", int(b.part_power))
        out.key("replicas", float(b.replicas))
        out.key("min_part_hours", int(b.min_part_hours))
        out.key("overload", float(b.overload))
    for ip in sorted(devs, key=_ip_key):
        _node(out, ip, devs[ip], rings, ports, rep_ports)
    return Imported(out.text(), len(devs), count, rings, warnings)


def _ip_key(ip: str):
    import ipaddress

    try:
        return (0, ipaddress.ip_address(ip))
    except ValueError:
        return (1, ip)


def _check_addresses(devs) -> None:
    """A disk (ip and device name) has one replication address in every ring."""
    for ip, per_ring in devs.items():
        seen: dict[str, tuple[str, str]] = {}
        for ring, by_name in per_ring.items():
            for name, d in by_name.items():
                rip = d["replication_ip"]
                if name in seen and seen[name][1] != rip:
                    raise UsageError(
                        f"the builders disagree on the address of {ip}/{name}: replication "
                        f"ip {seen[name][1]} in {seen[name][0]}, {rip} in {ring}; one disk "
                        f"has one replication address: fix it with swift-ring-builder "
                        f"set_info, then import again")
                seen.setdefault(name, (ring, rip))


def _node(out, ip, per_ring, rings, ports, rep_ports) -> None:
    every = [d for by_name in per_ring.values() for d in by_name.values()]
    region = _mode([d["region"] for d in every])
    zone = _mode([d["zone"] for d in every if d["region"] == region])
    rip = _mode([d["replication_ip"] for d in every])
    meta = _mode([d["meta"] for d in every])
    node = {"region": region, "zone": zone, "replication_ip": rip, "meta": meta}
    ring_ports: dict[str, dict] = {}
    specs: dict[str, dict] = {}
    for ring in rings:
        by_name = per_ring.get(ring, {})
        if not by_name:
            specs[ring] = {}
            continue
        own = {}
        port = _mode([d["port"] for d in by_name.values()])
        if port != ports[ring]:
            own["port"] = port
        default_rp = rep_ports.get(ring)
        wanted = [d["replication_port"] for d in by_name.values()
                  if d["replication_port"] != (d["port"] if default_rp is None else default_rp)]
        if len(wanted) == len(by_name) and len(set(wanted)) == 1:
            own["replication_port"] = wanted[0]
        ring_ports[ring] = own
        specs[ring] = {name: _device_spec(d, node, ports[ring], own, default_rp)
                       for name, d in sorted(by_name.items(), key=lambda kv: _natural(kv[0]))}
    present = [r for r in rings if specs[r]]
    base = _mode_spec([specs[r] for r in present]) if present else {}
    name = node_name(ip)
    out.blank()
    out.section(f"nodes.{name}")
    out.key("host", ip)
    out.key("ip", ip)
    out.key("region", region)
    out.key("zone", zone)
    if rip != ip:
        out.key("replication_ip", rip)
    if meta:
        out.key("meta", meta)
    out.blank()
    out.section(f"nodes.{name}.devices")
    _devices(out, base)
    for ring in rings:
        if ring_ports.get(ring):
            out.blank()
            out.section(f"nodes.{name}.rings.{ring}")
            for k, v in ring_ports[ring].items():
                out.key(k, v)
        if specs[ring] != base:
            out.blank()
            out.section(f"nodes.{name}.rings.{ring}.devices")
            _devices(out, specs[ring])


def _device_spec(d, node, ring_port, own, default_rp) -> tuple:
    """(weight, attrs): what the config must say for ``d`` beyond the node's and ring's
    defaults (the resolution of ``Node.device_fields``)."""
    attrs = {}
    port = own.get("port", ring_port)
    if d["port"] != port:
        attrs["port"] = d["port"]
    rp = own.get("replication_port", default_rp if default_rp is not None else d["port"])
    if d["replication_port"] != rp:
        attrs["replication_port"] = d["replication_port"]
    if d["replication_ip"] != node["replication_ip"]:
        attrs["replication_ip"] = d["replication_ip"]
    for k in ("zone", "region", "meta"):
        if d[k] != node[k]:
            attrs[k] = d[k]
    return (float(d["weight"]), tuple(sorted(attrs.items())))


def _mode_spec(specs: list[dict]) -> dict:
    """The most common device set of a node across rings (ties: the first ring's)."""
    keys = [json.dumps(sorted(s.items())) for s in specs]
    counts = Counter(keys)
    top = max(counts.values())
    return next(s for s, k in zip(specs, keys) if counts[k] == top)


def _devices(out, spec: dict) -> None:
    for name, (weight, attrs) in spec.items():
        if attrs:
            out.inline(name, {"weight": weight, **dict(attrs)})
        else:
            out.key(name, weight)


class _Writer:
    """Just enough TOML: sections, keys, inline tables, comments; values as TOML 1.0
    writes them (strings escaped, floats exactly as Python reads them back)."""

    def __init__(self):
        self.lines: list[str] = []

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def blank(self):
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def comment(self, text: str):
        self.lines.append(f"# {text}")

    def section(self, dotted: str):
        self.lines.append(f"[{'.'.join(toml_key(k) for k in _split(dotted))}]")

    def key(self, k: str, v):
        self.lines.append(f"{toml_key(k)} = {toml_value(v)}")

    def inline(self, k: str, table: dict):
        body = ", ".join(f"{toml_key(x)} = {toml_value(y)}" for x, y in table.items())
        self.lines.append(f"{toml_key(k)} = {{ {body} }}")


def _split(dotted: str) -> list[str]:
    """'nodes.10-0-1-1.rings.object-1' -> its keys (our keys never contain dots, except
    device names, which are never part of a section name)."""
    return dotted.split(".")


def toml_key(k: str) -> str:
    return k if _BARE.match(k) else toml_string(k)


def toml_string(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b",
                        "\f": "\\f"}.get(ch, f"\\u{o:04x}"))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(x)} = {toml_value(y)}" for x, y in v.items()) + " }"
    raise TypeError(f"no TOML for {type(v).__name__}")
