"""rejoin-node: re-add the devices a node had before it was removed, as they were."""

from __future__ import annotations

from ringmgr.errors import UsageError
from ringmgr.rings.changes import ChangeSet, RingChange
from ringmgr.rings.devices import dev_definition, live_devs
from ringmgr.rings.engine import config_weight
from ringmgr.rings.node_history import change_text, last_removal, weights_before_drain


def plan_rejoin(builders: dict, node, history: list[dict], *, config_weights: bool = False,
                load_backup=None) -> ChangeSet:
    """Re-add the devices ``node`` had before it was removed.

    The definitions come from the history (the newest change that removed devices with
    the node's ip), not from the config: region, zone, ports, replication addresses and
    meta are restored as they were.  Devices are matched by ring, ip, port and name,
    never by id (swift reuses ids).  The weights are those the node had before a drain
    began (``node_history.weights_before_drain``: a drained node was removed at weight
    0), or with ``config_weights`` the config's.  ``info["rejoin"]`` says which.
    """
    found = last_removal(history, node)
    if found is None:
        raise UsageError(f"no change in the history removed devices of {node.name} "
                         f"(ip {node.ip}); to add it from the config use `ringmgr add-node "
                         f"{node.name}`")
    entry, devs = found
    rings: dict[str, RingChange] = {}
    present = []
    for d in devs:
        ring = d["ring"]
        if ring not in builders:
            continue
        same = [x for x in live_devs(builders[ring]) if (x["ip"], x["port"], x["device"]) ==
                (d["ip"], d["port"], d["device"])]
        if same:
            present.append(f"{ring}:{d['device']}")
            continue
        rings.setdefault(ring, RingChange()).adds.append(dev_definition(d, with_id=False))
    if not rings:
        raise UsageError(f"{node.name}'s devices removed by change #{entry['id']} are all "
                         f"back in the rings already ({', '.join(present)})")
    if config_weights:
        for ring, c in rings.items():
            configured = node.devices_for(ring)
            for a in c.adds:
                if a["device"] not in configured:
                    key = (f"nodes.{node.name}.rings.{ring}.devices"
                           if ring in node.ring_devices else f"nodes.{node.name}.devices")
                    raise UsageError(f"--config-weights: {key} has no {a['device']} "
                                     f"({ring} had it until {change_text(entry)}): add it "
                                     f"to the config, or rejoin without --config-weights")
                a["weight"] = config_weight(node, ring, a["device"], configured[a["device"]])
        kind, source = "config", f"the config's weights (nodes.{node.name}.devices)"
    else:
        found = weights_before_drain(history, entry, devs, node, load_backup)
        if found is None:
            raise UsageError(f"{node.name}'s devices were at weight 0 when {change_text(entry)}"
                             f" removed them, and the history does not say what they had "
                             f"before: pass --config-weights to use the config's weights")
        base, source = found
        kind = "history"
        for ring, c in rings.items():
            for a in c.adds:
                a["weight"] = float(base.get(ring, {}).get(a["device"], a["weight"]))
    n = sum(len(c.adds) for c in rings.values())
    return ChangeSet(f"rejoin {node.name}: re-add the {n} device(s) change #{entry['id']} "
                     f"removed, at {source}", rings,
                     {"rejoin": {"removed_by": entry["id"], "weights_from": kind,
                                 "weights_source": source,
                                 "weights": {r: {a["device"]: a["weight"] for a in c.adds}
                                             for r, c in rings.items()}}})
