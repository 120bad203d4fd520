"""``ringmgr create``: new builders for the rings of the config, as swift-ring-builder's
``create``, one ``add`` per configured device, then the first ``rebalance``.

The settings come from ``[rings.NAME]`` (``part_power`` required, ``replicas``
default 3, ``min_part_hours`` default 1, ``overload`` default 0) and, for an object
ring, the policy in swift.conf: an erasure-coded policy needs exactly (k+m) x
duplication replicas.  Devices come from every node's configured devices for the ring
(``Node.device_fields``), in config order.

The builders are planned on as empty ``RingBuilder`` objects (``CreateLoader``), so the
change goes through ``service.run_change`` like any other: simulation, report,
``--plan-out``, the transaction (which refuses if a builder appeared meanwhile), the
history and its swift-ring-builder replay.
"""

from __future__ import annotations

import os

from ringmgr.errors import Refused, UsageError
from ringmgr.rings.changes import ChangeSet, RingChange
from ringmgr.rings.files import device_name_problem

DEFAULT_REPLICAS = 3.0
DEFAULT_MIN_PART_HOURS = 1


def ring_settings(config, ring: str, policies: dict | None) -> dict:
    """part_power, replicas, min_part_hours and overload for a new ``ring``."""
    from ringmgr.rings.policies import policy_for_ring

    s = config.ring_settings[ring]
    if s.part_power is None:
        raise UsageError(f"{config.path}: rings.{ring}.part_power is missing: create needs "
                         f"it (2^part_power partitions, e.g. part_power = 18; it cannot be "
                         f"lowered later)")
    replicas = s.replicas
    policy = policy_for_ring(policies or {}, ring) if ring.startswith("object") else None
    if policy is not None and policy.is_ec:
        need = float(policy.unique_fragments * policy.ec_duplication_factor)
        if replicas is None:
            replicas = need
        elif replicas != need:
            raise UsageError(f"{config.path}: rings.{ring}.replicas = {replicas:g}, but {ring} "
                             f"is the ring of {policy.name}, {policy.describe()}: swift "
                             f"loads it only with {need:g} replicas")
    return {"part_power": s.part_power,
            "replicas": DEFAULT_REPLICAS if replicas is None else replicas,
            "min_part_hours": (DEFAULT_MIN_PART_HOURS if s.min_part_hours is None
                               else s.min_part_hours),
            "overload": s.overload or 0.0}


def rings_to_create(config, names) -> list[str]:
    if not config.ring_settings:
        raise UsageError(f"{config.path} has no [rings.NAME] section: create builds the "
                         f"rings listed there (e.g. [rings.object] with part_power = 18)")
    names = list(names) or list(config.ring_settings)
    for ring in names:
        if ring not in config.ring_settings:
            raise UsageError(f"no [rings.{ring}] section in {config.path} (rings there: "
                             f"{', '.join(config.ring_settings)})")
        if config.cluster.rings is not None and ring not in config.cluster.rings:
            raise UsageError(f"{ring} is not in [cluster].rings ({', '.join(config.cluster.rings)}"
                             f"): add it there too, or ringmgr would not manage it")
    return names


class CreateLoader:
    """``run_change``'s ``load``: empty builders for ``rings``, refused if any of them
    has a builder or ring file already (ringmgr never replaces what it did not write)."""

    def __init__(self, config, rings: list[str], policies: dict | None):
        self.rings = rings
        self.settings = {r: ring_settings(config, r, policies) for r in rings}

    def check(self, store) -> None:
        store.require_dir()
        found = []
        for ring in self.rings:
            f = store.files(ring)
            found += [p.name for p in (f.builder, f.ring) if os.path.lexists(p)]
        if found:
            missing = [r for r in self.rings if not os.path.lexists(store.files(r).builder)
                       and not os.path.lexists(store.files(r).ring)]
            hint = (f"; to build only the missing rings: ringmgr create {' '.join(missing)}"
                    if missing else "")
            verb = "exists" if len(found) == 1 else "exist"
            raise Refused(f"create: {', '.join(found)} already {verb} in {store.dir}: "
                          f"create never replaces a ring{hint}")

    def __call__(self, store) -> dict:
        from swift.common.ring import RingBuilder

        self.check(store)
        out = {}
        for ring in self.rings:
            s = self.settings[ring]
            out[ring] = RingBuilder(s["part_power"], s["replicas"], s["min_part_hours"])
            store.loaded[ring] = None   # the commit refuses if a builder appears meanwhile
        return out


def plan_create(config, loader: CreateLoader, builders: dict) -> ChangeSet:
    """Add every configured device of every node to each new ring (the first rebalance
    follows in the simulation)."""
    rings = {}
    for ring, b in builders.items():
        s = loader.settings[ring]
        port = config.cluster.port_for(ring)
        adds = []
        seen = {}
        for node in config.nodes.values():
            for dev in node.devices_for(ring):
                problem = device_name_problem(dev)
                if problem:
                    raise UsageError(f"nodes.{node.name}: {problem}")
                d = node.device_fields(ring, dev, port)
                key = (d["ip"], d["port"], d["device"])
                if key in seen:
                    raise UsageError(f"{ring}: {node.name}/{dev} and {seen[key]} both are "
                                     f"{key[0]}:{key[1]}/{key[2]}")
                seen[key] = f"{node.name}/{dev}"
                adds.append(d)
        weighted = sum(1 for d in adds if d["weight"] > 0)
        if weighted < s["replicas"]:
            raise UsageError(f"{ring}: {s['replicas']:g} replicas need at least "
                             f"{-(-s['replicas'] // 1):g} devices with weight; the config "
                             f"gives {weighted} (nodes.NAME.devices)")
        rings[ring] = RingChange(adds=adds, overload=s["overload"] or None)
    info = {"create": {r: {k: loader.settings[r][k] for k in
                           ("part_power", "replicas", "min_part_hours")} for r in rings}}
    return ChangeSet(f"create {', '.join(rings)} from the config", rings, info)
