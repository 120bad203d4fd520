"""The rings as the config describes them, and how the builders differ from that.

``config_devices(config, ring)`` resolves every configured device of every node into
the device definition swift would hold (``Node.device_fields``: the device's own
table, the node's table for the ring, the node, the cluster).  ``describe_differences``
lists, per ring, the devices the builders lack or have beyond the config, every field
that differs, and the ring settings of ``[rings.NAME]`` that differ: empty when the
builders are what the config says (after ``ringmgr import``, for instance).
"""

from __future__ import annotations

from ringmgr.rings.changes import INFO_FIELDS

FIELDS = ("region", "zone", *INFO_FIELDS, "weight")


def device_key(dev: dict) -> tuple:
    """How a device is identified across the config and a builder: ip, port, name."""
    return (dev["ip"], dev["port"], dev["device"])


def config_devices(config, ring: str) -> dict[tuple, dict]:
    """(ip, port, device) -> the definition the config gives, for every node."""
    out = {}
    port = config.cluster.port_for(ring)
    for node in config.nodes.values():
        for dev in node.devices_for(ring):
            d = node.device_fields(ring, dev, port)
            d["node"] = node.name
            out[device_key(d)] = d
    return out


def builder_devices(builder) -> dict[tuple, dict]:
    from ringmgr.rings.devices import live_devs

    return {device_key(d): d for d in live_devs(builder)}


def describe_differences(config, builders: dict) -> list[str]:
    """One line per difference between the config and ``builders`` ([] when none)."""
    lines = []
    for ring, b in builders.items():
        want, have = config_devices(config, ring), builder_devices(b)
        for key in sorted(set(want) - set(have)):
            lines.append(f"{ring}: {want[key]['node']}/{key[2]} ({key[0]}:{key[1]}) is in "
                         f"the config, not in the ring")
        for key in sorted(set(have) - set(want)):
            lines.append(f"{ring}: device {have[key]['id']} {key[0]}:{key[1]}/{key[2]} is in "
                         f"the ring, not in the config")
        for key in sorted(set(want) & set(have)):
            w, h = want[key], have[key]
            for f in FIELDS:
                if (float(w[f]) != float(h[f])) if f == "weight" else (w[f] != h[f]):
                    lines.append(f"{ring}: {w['node']}/{key[2]}: {f} {h[f]!r} in the ring, "
                                 f"{w[f]!r} in the config")
        s = config.ring_settings.get(ring)
        if s is not None:
            for f in ("part_power", "replicas", "min_part_hours", "overload"):
                v = getattr(s, f)
                if v is not None and float(v) != float(getattr(b, f)):
                    lines.append(f"{ring}: {f} {getattr(b, f)!r} in the ring, {v!r} in the "
                                 f"config")
    return lines
