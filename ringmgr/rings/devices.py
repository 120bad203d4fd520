"""Devices in the rings: selecting them from builders, their full definition, and the
one lookup of a config node's devices across every ring.

Pure over builders, except ``ring_devices``, which loads them through the store.
Devices are matched by ip (and name), never by id: swift reuses ids.
"""

from __future__ import annotations

DEV_FIELDS = ("region", "zone", "ip", "port", "replication_ip", "replication_port",
              "device", "weight", "meta")


def dev_definition(dev: dict, *, with_id: bool = True) -> dict:
    """A device's full definition (no builder-only keys such as parts): for the history,
    saved plans, and re-adding a device exactly as it was."""
    keys = ("id", *DEV_FIELDS) if with_id else DEV_FIELDS
    return {k: dev.get(k) for k in keys}


def live_devs(builder):
    return [d for d in builder.devs if d is not None and d["id"] not in
            {r["id"] for r in builder._remove_devs}]


def node_devs(builder, ip: str, device: str | None = None) -> list[dict]:
    return [d for d in live_devs(builder)
            if d["ip"] == ip and (device is None or d["device"] == device)]


def ring_devices(config, node, device: str | None = None) -> dict[str, dict[str, dict]]:
    """device -> ring -> {"id", "weight", "parts"} for NODE's devices in the builders (by
    its ip; ``device``: that one only).  Devices marked for removal but not yet
    rebalanced away count: they still hold their partitions."""
    from ringmgr.rings.store import RingStore

    out: dict[str, dict[str, dict]] = {}
    for ring, b in RingStore.from_config(config).load_all().items():
        for d in b.devs:
            if d and d["ip"] == node.ip and (device is None or d["device"] == device):
                out.setdefault(d["device"], {})[ring] = {
                    "id": d["id"], "weight": d["weight"], "parts": int(d.get("parts", 0))}
    return out
