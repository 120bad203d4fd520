"""The parts of ringmgr.toml that describe rings: ``[rings.NAME]`` (what ``create``
builds), device tables (a device's weight, and where it differs from its node: port,
replication address, zone, region, meta) and a node's per-ring table (its devices,
port and replication port in that ring).

Used by ``config.parse_config`` and ``config_nodes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ringmgr.config_check import is_number, tname
from ringmgr.rings.files import is_ring_name
from ringmgr.rings.gate import MAX_MIN_PART_HOURS, min_part_hours_problem

RING_SETTINGS = {"part_power": "integer", "replicas": "number",
                 "min_part_hours": "integer", "overload": "number"}
DEVICE_KEYS = {"weight": "number", "port": "integer", "replication_ip": "string",
               "replication_port": "integer", "zone": "integer", "region": "integer",
               "meta": "string"}
NODE_RING_KEYS = ("devices", "port", "replication_port")


@dataclass(frozen=True)
class RingSettings:
    """``[rings.NAME]``: None where the file does not say."""

    part_power: int | None = None
    replicas: float | None = None
    min_part_hours: int | None = None
    overload: float | None = None


def parse_ring_settings(v, table) -> dict[str, RingSettings]:
    """``[rings]``: ring name -> RingSettings, each value checked."""
    v.table("rings", table)
    out = {}
    for ring, t in table.items():
        key = f"rings.{ring}"
        if not is_ring_name(ring):
            v.fail(key, f"{ring!r} is not a ring name (account, container, object, object-N)")
        v.keys(key, t, RING_SETTINGS)
        pp = t.get("part_power")
        if pp is not None and not 0 <= pp <= 32:
            v.fail(f"{key}.part_power", f"must be 0-32 (swift's limit), not {pp}")
        replicas = t.get("replicas")
        if replicas is not None and replicas < 1:
            v.fail(f"{key}.replicas", f"must be at least 1, not {replicas}")
        mph = t.get("min_part_hours")
        if mph is not None and mph > MAX_MIN_PART_HOURS:
            v.fail(f"{key}.min_part_hours", min_part_hours_problem(mph))
        overload = t.get("overload")
        out[ring] = RingSettings(pp, None if replicas is None else float(replicas), mph,
                                 None if overload is None else float(overload))
    return out


def parse_device_table(v, key: str, table) -> tuple[dict[str, float], dict[str, dict]]:
    """``devices = { sdb = 4000.0, sdc = { weight = 4000.0, port = 6210 } }`` ->
    (name -> weight, name -> the other keys given for it)."""
    v.table(key, table)
    weights: dict[str, float] = {}
    attrs: dict[str, dict] = {}
    for dev, value in table.items():
        dkey = f"{key}.{dev}"
        if isinstance(value, dict):
            v.keys(dkey, value, DEVICE_KEYS)
            if "weight" not in value:
                v.fail(f"{dkey}.weight", "required key is missing (a device table needs "
                                         "its weight)")
            w = value["weight"]
            extra = {k: x for k, x in value.items() if k != "weight"}
            for k in ("port", "replication_port"):
                if k in extra:
                    v.port(f"{dkey}.{k}", extra[k])
            if "replication_ip" in extra and not extra["replication_ip"]:
                v.fail(f"{dkey}.replication_ip", "must not be empty")
            if extra:
                attrs[dev] = extra
        else:
            w = value
            if not is_number(w):
                v.fail(dkey, f"weight must be a finite number, not {w!r}"
                       if isinstance(w, float) else
                       f"weight must be a number or a table with weight = ..., not "
                       f"{tname(w)}")
            if w < 0:
                v.fail(dkey, f"weight must not be negative ({w})")
        weights[dev] = float(w)
    return weights, attrs


def parse_node_rings(v, key: str, table, replication_ports: dict[str, int]):
    """A node's ``rings`` table -> (ring -> weights, ring -> device attrs, ring ->
    {"port", "replication_port"}).  ``[cluster].replication_ports`` fills the
    replication port of every ring the node does not set itself."""
    v.table(key, table)
    devices: dict[str, dict[str, float]] = {}
    attrs: dict[str, dict[str, dict]] = {}
    ports: dict[str, dict[str, int]] = {ring: {"replication_port": p}
                                        for ring, p in replication_ports.items()}
    for ring, override in table.items():
        rkey = f"{key}.{ring}"
        v.table(rkey, override)
        for k in override:
            if k not in NODE_RING_KEYS:
                v.fail(f"{rkey}.{k}", f"unknown key (known: {', '.join(NODE_RING_KEYS)})")
        if "devices" in override:
            devices[ring], attrs[ring] = parse_device_table(v, f"{rkey}.devices",
                                                            override["devices"])
        for k in ("port", "replication_port"):
            if k in override:
                v.check(f"{rkey}.{k}", override[k], "integer")
                v.port(f"{rkey}.{k}", override[k])
                ports.setdefault(ring, {})[k] = override[k]
    return devices, attrs, ports
