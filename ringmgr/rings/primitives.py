"""Planners for the rest of swift-ring-builder, on every ring at once: set_info,
set_zone, set_region, set_overload, set_replicas, set_min_part_hours, and create.

Each takes the loaded builders and returns a ``ChangeSet`` (or raises: ``UsageError``
for bad input, ``NothingToDo`` when every ring is already so); ``service.run_change``
simulates, reports and commits it like any other change.  The checks are
swift-ring-builder's own (a device address used twice, a replica count below 1, a
min_part_hours swift cannot count to) plus what an operator needs from a tool that
changes every ring at once (an ip another node has, an erasure-coded ring's replica
count).  Pure: no files, no click.
"""

from __future__ import annotations

import math

from ringmgr.errors import NothingToDo, Refused, UsageError
from ringmgr.rings.changes import ChangeSet, RingChange
from ringmgr.rings.devices import live_devs, node_devs


# -- values from the command line ---------------------------------------------------

def positive_int(value, what: str) -> int:
    """A zone or region: an integer of 1 or more, given as text."""
    text = str(value).strip()
    try:
        n = int(text)
    except ValueError:
        n = None
    if n is None or n < 1 or text.startswith("+"):
        raise UsageError(f"{what} must be a positive integer (1, 2, ...), not {value!r}")
    return n


def port_number(value, what: str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise UsageError(f"{what}: {value!r} is not a port number")
    if not 1 <= n <= 65535:
        raise UsageError(f"{what}: port {n} is outside 1-65535")
    return n


def ring_ports(values, option: str) -> dict[str, int]:
    """``--port object=6200,account=6202`` (repeatable) -> {ring: port}."""
    from ringmgr.rings.files import is_ring_name

    out: dict[str, int] = {}
    for v in values:
        for item in str(v).split(","):
            ring, eq, port = item.strip().partition("=")
            if not eq or not is_ring_name(ring.strip()):
                raise UsageError(f"{option} {item.strip()!r}: expected RING=PORT (ports differ "
                                 f"per ring), e.g. {option} object=6200,account=6202")
            out[ring.strip()] = port_number(port, f"{option} {ring.strip()}")
    return out


def address(value, option: str) -> str:
    """An ip (or hostname) as swift-ring-builder stores it (IPv6 expanded, lower case)."""
    from swift.common.ring.utils import validate_and_normalize_address

    try:
        return validate_and_normalize_address(str(value).strip())
    except ValueError:
        raise UsageError(f"{option} {value!r} is not an ip address or host name")


def overload_value(value, *, force: bool = False) -> float:
    """swift-ring-builder's ``set_overload X`` or ``X%``, as the fraction swift keeps."""
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        x = float(text.rstrip("%"))
    except ValueError:
        raise UsageError(f"overload {value!r} is not a number (give a fraction such as 0.1 "
                         f"or a percentage such as 10%)")
    if not math.isfinite(x):
        raise UsageError(f"overload must be a finite number, not {value!r}")
    if percent:
        x *= 0.01
    if x < 0:
        raise UsageError(f"overload must not be negative ({value})")
    if x > 1 and not percent and not force:
        raise UsageError(f"overload {text} means {x * 100:g}% (swift takes a fraction): for "
                         f"{text} percent write {text}%; --force sets {x * 100:g}%")
    return x


def replicas_value(value) -> float:
    try:
        x = float(str(value).strip())
    except ValueError:
        raise UsageError(f"replicas {value!r} is not a number")
    if not math.isfinite(x):
        raise UsageError(f"replicas must be a finite number, not {value!r}")
    if x < 1:
        raise UsageError(f"replicas must be at least 1 (swift's rule), not {value}")
    return x


def min_part_hours_value(value) -> int:
    from ringmgr.rings.gate import MAX_MIN_PART_HOURS, min_part_hours_problem

    text = str(value).strip()
    try:
        h = int(text)
    except ValueError:
        h = None
    if h is None or h < 0:
        raise UsageError(f"min_part_hours must be a whole number of hours (0 or more), "
                         f"not {value!r}")
    if h > MAX_MIN_PART_HOURS:
        raise UsageError(f"min_part_hours {min_part_hours_problem(h)}")
    return h


def pick_rings(builders: dict, ring: str | None) -> dict:
    if ring is None:
        return builders
    if ring not in builders:
        raise UsageError(f"no ring {ring!r} in the builder directory (rings: "
                         f"{', '.join(builders)})")
    return {ring: builders[ring]}


def _target(node, device) -> str:
    return f"{node.name}/{device}" if device else node.name


def _devices_of(builders: dict, node, device) -> dict[str, list[dict]]:
    found = {n: node_devs(b, node.ip, device) for n, b in builders.items()}
    found = {n: d for n, d in found.items() if d}
    if not found:
        what = f"device {device} of node {node.name}" if device else f"node {node.name}"
        raise UsageError(f"{what} (ip {node.ip}) has no devices in any ring "
                         f"({', '.join(builders)})")
    return found


# -- set_info ------------------------------------------------------------------------

def plan_set_info(builders: dict, config, node, device: str | None = None, *,
                  ip: str | None = None, ports: dict[str, int] | None = None,
                  replication_ip: str | None = None,
                  replication_ports: dict[str, int] | None = None,
                  meta: str | None = None) -> ChangeSet:
    """swift-ring-builder's ``set_info`` for NODE's devices (or one) in every ring.

    ``ip`` and ``replication_ip`` normalised as swift does; ``ports`` and
    ``replication_ports`` per ring.  Refused: no change given, an ip that another node
    of the config (or another device in a ring) has, a port for a ring that does not
    exist, and swift's own rule that no two devices share ip, port and name (checked
    device by device, in the order swift-ring-builder would apply them)."""
    ports, replication_ports = dict(ports or {}), dict(replication_ports or {})
    if ip is None and replication_ip is None and meta is None and not ports \
            and not replication_ports:
        raise UsageError("set-info: give what to change: --ip, --port RING=PORT, "
                         "--replication-ip, --replication-port RING=PORT or --meta")
    if device is not None and ip is not None:
        raise UsageError(f"--ip belongs to the node: give {node.name}, not "
                         f"{node.name}/{device} (ringmgr finds a node's devices by its ip)")
    for option, table in (("--port", ports), ("--replication-port", replication_ports)):
        for ring in table:
            if ring not in builders:
                raise UsageError(f"{option} {ring}=...: no ring {ring!r} (rings: "
                                 f"{', '.join(builders)})")
    if ip is not None and ip != node.ip:
        other = config.node_by_ip(ip)
        if other is not None and other.name != node.name:
            raise UsageError(f"--ip {ip} is the ip of node {other.name} (nodes.{other.name}"
                             f".ip): two nodes cannot share an ip")
        for name, b in builders.items():
            taken = [d["id"] for d in live_devs(b) if d["ip"] == ip]
            if taken:
                raise UsageError(f"--ip {ip}: the {name} ring already has devices with that ip "
                                 f"(ids {', '.join(map(str, taken[:5]))}) that are not "
                                 f"{node.name}'s")
    found = _devices_of(builders, node, device)
    rings = {}
    for name, devs in found.items():
        want = {"ip": ip, "port": ports.get(name), "replication_ip": replication_ip,
                "replication_port": replication_ports.get(name), "meta": meta}
        addresses = {d["id"]: (d["ip"], d["port"], d["device"])
                     for d in builders[name].devs if d is not None}
        info = {}
        for d in devs:
            fields = {k: v for k, v in want.items() if v is not None and d.get(k) != v}
            if not fields:
                continue
            new = (fields.get("ip", d["ip"]), fields.get("port", d["port"]), d["device"])
            clash = [i for i, a in addresses.items() if i != d["id"] and a == new]
            if clash:
                raise UsageError(f"{name}: device {clash[0]} already uses "
                                 f"{new[0]}:{new[1]}/{new[2]} (swift-ring-builder refuses "
                                 f"two devices at one address)")
            addresses[d["id"]] = new
            info[d["id"]] = fields
        if info:
            rings[name] = RingChange(info=info)
    if not rings:
        raise NothingToDo(f"{_target(node, device)} already has these values in every ring: "
                          f"nothing to change")
    what = ", ".join(k for k, v in (("ip", ip), ("port", ports),
                                    ("replication ip", replication_ip),
                                    ("replication port", replication_ports),
                                    ("meta", meta)) if v not in (None, {}))
    return ChangeSet(f"set info ({what}) of {_target(node, device)} in every ring", rings)


# -- zone and region -----------------------------------------------------------------

def plan_set_domain(builders: dict, node, device: str | None, kind: str,
                    value: int) -> ChangeSet:
    """``set_zone`` / ``set_region`` (``kind``: "zone" or "region") of NODE's devices
    (or one) in every ring; moves data at the rebalance that follows."""
    found = _devices_of(builders, node, device)
    rings = {}
    for name, devs in found.items():
        values = {d["id"]: value for d in devs if d[kind] != value}
        if values:
            rings[name] = (RingChange(zones=values) if kind == "zone"
                           else RingChange(regions=values))
    if not rings:
        raise NothingToDo(f"{_target(node, device)} is already in {kind} {value} in every "
                          f"ring: nothing to change")
    return ChangeSet(f"set {kind} of {_target(node, device)} to {value} in every ring", rings)


# -- ring settings -------------------------------------------------------------------

def plan_set_overload(builders: dict, ring: str | None, overload: float) -> ChangeSet:
    rings = {n: RingChange(overload=overload) for n, b in pick_rings(builders, ring).items()
             if float(b.overload) != overload}
    if not rings:
        raise NothingToDo(f"overload is already {overload * 100:g}% in "
                          f"{ring or 'every ring'}: nothing to change")
    where = ring or "every ring"
    return ChangeSet(f"set overload to {overload * 100:g}% ({overload:g}) in {where}", rings)


def required_overload(builder) -> float | None:
    """swift's ``get_required_overload()``: the overload at which swift can spread
    replicas as widely as the failure domains allow (None: no weighted devices)."""
    from swift.common import exceptions

    try:  # reads the devices and tiers only; the builder is left as it was
        return float(builder.get_required_overload())
    except (exceptions.RingBuilderError, ZeroDivisionError, ValueError, KeyError):
        return None


def plan_set_replicas(builders: dict, ring: str, replicas: float, policies: dict | None,
                      *, force: bool = False) -> ChangeSet:
    """``set_replicas`` of one ring: refused on an erasure-coded ring (swift loads an EC
    policy's ring only with (k+m) x duplication replicas), and above the devices with
    weight (swift cannot place more replicas than that)."""
    from ringmgr.rings.policies import policy_for_ring

    b = pick_rings(builders, ring)[ring]
    if ring.startswith("object"):
        if policies is None and not force:
            raise Refused(f"[cluster].swift_conf is not set, so ringmgr cannot tell whether "
                          f"{ring} is erasure coded (its replica count must then stay "
                          f"(k+m) x duplication or swift refuses to load it): set swift_conf,"
                          f" or pass --force for a replicated ring")
        policy = policy_for_ring(policies or {}, ring)
        if policy.is_ec:
            raise Refused(f"{ring} is the ring of {policy.name}, {policy.describe()}: its "
                          f"replica count must stay {policy.unique_fragments} x "
                          f"{policy.ec_duplication_factor} = "
                          f"{policy.unique_fragments * policy.ec_duplication_factor} or swift "
                          f"refuses to load it; nothing was changed")
    weighted = sum(1 for d in live_devs(b) if d["weight"] > 0)
    if replicas > weighted:
        raise UsageError(f"{ring}: {replicas:g} replicas need at least {math.ceil(replicas)} "
                         f"devices with weight; the ring has {weighted}")
    if float(b.replicas) == replicas:
        raise NothingToDo(f"{ring} already has {replicas:g} replicas: nothing to change")
    return ChangeSet(f"set replicas of {ring} from {b.replicas:g} to {replicas:g}",
                     {ring: RingChange(replicas=replicas)})


def plan_set_min_part_hours(builders: dict, ring: str | None, hours: int) -> ChangeSet:
    rings = {n: RingChange(min_part_hours=hours) for n, b in pick_rings(builders, ring).items()
             if int(b.min_part_hours) != hours}
    if not rings:
        raise NothingToDo(f"min_part_hours is already {hours} in {ring or 'every ring'}: "
                          f"nothing to change")
    return ChangeSet(f"set min_part_hours to {hours} in {ring or 'every ring'}", rings)
