"""The one lookup of a node's devices in the rings (what replace-disk, drive-audit,
reboot-node and the size heuristics ask the builders)."""

from __future__ import annotations

from ringmgr.config import Config, Node


def node_ring_devices(config: Config, node: Node) -> dict[str, dict[str, dict]]:
    """device -> ring -> {"id", "weight", "parts"} for every device of NODE in the
    rings (matched by the node's ip)."""
    from ringmgr.rings.store import RingStore

    out: dict[str, dict[str, dict]] = {}
    for ring, b in RingStore.from_config(config).load_all().items():
        for d in b.devs:
            if d and d["ip"] == node.ip:
                out.setdefault(d["device"], {})[ring] = {
                    "id": d["id"], "weight": d["weight"], "parts": int(d.get("parts", 0))}
    return out
