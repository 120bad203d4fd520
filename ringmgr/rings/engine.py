"""Change sets across rings, and their simulation on copies of the real builders.

Pure: no files, no click.  A ``ChangeSet`` says per ring which devices to remove,
re-weight or add; ``simulate`` applies it to ``copy.deepcopy`` of each builder (never
``from_dict``: it shares arrays with the original) and rebalances with one seed.
The outcome's builders are what a real change writes, byte for byte.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ringmgr.errors import UsageError
from ringmgr.rings.changes import ChangeSet, RingChange  # noqa: F401  (re-exported)
from ringmgr.rings.devices import (  # noqa: F401  (re-exported)
    DEV_FIELDS, dev_definition, live_devs, node_devs,
)
from ringmgr.rings.files import device_name_problem
from ringmgr.rings.gate import clock_text, gate_text  # noqa: F401  (re-exported)
from ringmgr.rings.weights import check_weight, typo_message, typo_problem

# Balance above this (and above the overload) makes swift-ring-builder say "push this
# ring, wait min_part_hours, and rebalance again": a warning, exit 1.
BALANCE_WARN = 5.0


@dataclass
class Outcome:
    ring: str
    before: object
    after: object
    parts_moved: int
    balance: float
    removed_devs: list[dict]
    gate_seconds_left: int
    changed: bool
    blocked: bool
    refusal: str | None = None  # why an unchanged ring was not saved (swift's words)
    rebalanced: bool = True     # False: the marks or edits were saved without a rebalance
    note: str | None = None     # why the rebalance after the marks was not saved
    edited: tuple = ()          # device ids whose ip/port/... changed in place (set_info)
    layout_dispersion: float | None = None  # not rebalanced: the dispersion of the new
                                            # layout (the builder keeps its old figure)

    @property
    def dispersion(self) -> float:
        if self.layout_dispersion is not None:
            return self.layout_dispersion
        return self.after.dispersion or 0.0

    def needs_more(self) -> bool:
        """More rebalancing will be due: the ring is not yet as balanced as it can get."""
        b = self.after
        return (self.dispersion > 0 or
                (self.balance > BALANCE_WARN and self.balance / 100.0 > b.overload))


def plan_remove(builders: dict, node, device: str | None = None) -> ChangeSet:
    what = f"remove {node.name}" + (f"/{device}" if device else "") + " from every ring"
    rings = {}
    for name, b in builders.items():
        devs = node_devs(b, node.ip, device)
        if devs:
            rings[name] = RingChange(removes=[d["id"] for d in devs])
    if not rings:
        target = f"device {device} of node {node.name}" if device else f"node {node.name}"
        raise UsageError(f"{target} (ip {node.ip}) has no devices in any ring "
                         f"({', '.join(builders)})")
    return ChangeSet(what, rings)


def plan_set_weight(builders: dict, node, device: str | None, weight: float, *,
                    force: bool = False) -> ChangeSet:
    """``force`` allows a weight more than ten times a ring's median (a typo guard)."""
    w = check_weight(weight)
    if device is not None and not device:
        raise UsageError(f"{node.name}/: the device name is empty (give NODE for every "
                         f"device of the node, or NODE/DEV for one)")
    target = f"{node.name}/{device}" if device else node.name
    rings = {}
    typos = []
    for name, b in builders.items():
        devs = node_devs(b, node.ip, device)
        changes = {d["id"]: w for d in devs if d["weight"] != w}
        if changes and not force:
            problem = typo_problem(name, w, b)
            if problem:
                typos.append(problem)
        if devs:
            rings[name] = RingChange(weights=changes)
    if not rings:
        raise UsageError(f"{target} (ip {node.ip}) has no devices in any ring "
                         f"({', '.join(builders)})")
    if all(c.empty for c in rings.values()):
        raise UsageError(f"{target} already has weight {w:g} in every ring: nothing to change")
    if typos:
        raise UsageError(typo_message(w, typos))
    return ChangeSet(f"set weight of {target} to {w:g} in every ring",
                     {n: c for n, c in rings.items() if not c.empty})


def plan_add_node(builders: dict, node, port_for, weight_factor: float = 1.0) -> ChangeSet:
    """Add the node's configured devices (per-ring overrides honoured) to every ring."""
    rings = {}
    for name, b in builders.items():
        devices = node.devices_for(name)
        port = port_for(name)
        adds = []
        for dev, weight in devices.items():
            problem = device_name_problem(dev)
            if problem:
                raise UsageError(f"nodes.{node.name}: {problem}")
            fields = config_device(node, name, dev, port, weight)
            existing = [d for d in live_devs(b) if d["ip"] == node.ip and
                        d["port"] == fields["port"] and d["device"] == dev]
            if existing:
                raise UsageError(f"{name}: {node.name}/{dev} ({node.ip}:{fields['port']}) is "
                                 f"already in the ring as device id {existing[0]['id']}")
            fields["weight"] = config_weight(node, name, dev, weight) * weight_factor
            adds.append(fields)
        if adds:
            rings[name] = RingChange(adds=adds)
    if not rings:
        raise UsageError(f"node {node.name} has no devices in the config "
                         f"(nodes.{node.name}.devices)")
    return ChangeSet(f"add {node.name} to every ring", rings)


def config_device(node, ring: str, dev: str, port: int, weight) -> dict:
    """The device definition the config gives (``Node.device_fields``), or for a node
    described without one (a scenario's inline node) its ip, zone and ``port``."""
    if hasattr(node, "device_fields"):
        return node.device_fields(ring, dev, port)
    return {"region": node.region, "zone": node.zone, "ip": node.ip, "port": port,
            "replication_ip": getattr(node, "replication_ip", None) or node.ip,
            "replication_port": port, "device": dev, "weight": weight, "meta": ""}


def config_weight(node, ring: str, dev: str, weight) -> float:
    """A configured device weight for add-node: a device added at weight 0 takes no data."""
    try:
        return check_weight(weight, allow_zero=False)
    except UsageError:
        key = (f"nodes.{node.name}.rings.{ring}.devices.{dev}" if ring in node.ring_devices
               else f"nodes.{node.name}.devices.{dev}")
        raise UsageError(f"{key} = {weight!r}: add-node needs a positive weight "
                         f"(to add gradually, use --max-move)")


def plan_rebalance(builders: dict, *, force: bool = False) -> ChangeSet:
    what = "rebalance every ring" + (" (forced)" if force else "")
    return ChangeSet(what, {n: RingChange(force=force) for n in builders})


def swift_seed(seed):
    """The seed as swift-ring-builder hands it to ``RingBuilder.rebalance``: the string
    it read from the command line (``random.seed("7")`` and ``random.seed(7)`` differ),
    so that ``--seed 7`` and ``swift-ring-builder X rebalance 7`` give the same ring."""
    return None if seed is None else str(seed)


def dispersion_of(builder) -> float | None:
    """The builder's dispersion; computed on a copy for builders saved without one
    (older swift), where ``builder.dispersion`` is None and would read as 0, and for
    builders whose devices changed since their last rebalance (a zone saved without a
    rebalance, as swift-ring-builder set_zone does): the stored figure is then stale."""
    if not builder._replica2part2dev or (builder.dispersion is not None
                                         and not builder.devs_changed):
        return builder.dispersion
    b = copy.deepcopy(builder)
    b._build_dispersion_graph()
    return b.dispersion


# -- simulation -----------------------------------------------------------------------

def apply_change(builder, change: RingChange) -> None:
    """Mark the change on ``builder`` (nothing moves until rebalance), in the order
    ``replay.replay_commands`` gives swift-ring-builder."""
    for dev_id in change.removes:
        builder.remove_dev(dev_id)
    for dev_id, w in change.weights.items():
        builder.set_dev_weight(dev_id, w)
    for dev in change.adds:
        builder.add_dev(dict(dev))
    for dev_id, region in change.regions.items():
        builder.set_dev_region(dev_id, region)
    for dev_id, zone in change.zones.items():
        builder.set_dev_zone(dev_id, zone)
    for dev_id, fields in change.info.items():
        dev = builder.devs[dev_id]
        for key, value in fields.items():  # as swift-ring-builder set_info: in place,
            dev[key] = value               # no version bump
        builder._ring = None
    if change.overload is not None:
        builder.set_overload(change.overload)
    if change.replicas is not None:
        builder.set_replicas(change.replicas)
    if change.min_part_hours is not None:
        builder.change_min_part_hours(change.min_part_hours)


def simulate_ring(name: str, builder, change: RingChange, seed: int,
                  pretend_gate_open: bool = False, validate: bool = True) -> Outcome:
    """Apply ``change`` to a deep copy of ``builder`` and rebalance it with ``seed``.

    A change of edits only (set_info, min_part_hours) is not rebalanced.  A change of
    settings marks only (zone, region, overload, replicas) keeps swift-ring-builder's
    result: the marks are saved, and the rebalance after them only where swift's save
    rule keeps it (else ``rebalanced`` is False and ``note`` says why).

    ``validate=False`` skips swift's full ``validate()`` (a fifth of a second at part
    power 18): only for a dry run that saves nothing, since a real run simulates
    again and validates before it writes."""
    from swift.common import exceptions

    after = copy.deepcopy(builder)
    if pretend_gate_open:
        after.pretend_min_part_hours_passed()
    gate = after.min_part_seconds_left
    removed_defs = [copy.deepcopy(after.devs[i]) for i in change.removes]
    try:
        apply_change(after, change)
    except ValueError as e:  # swift refuses a mark (a device marked for removal)
        raise UsageError(f"{name}: {e}")
    edited = tuple(i for i, f in change.info.items()
                   if any(k in f for k in ("ip", "port", "replication_ip",
                                           "replication_port")))
    if not change.needs_rebalance:
        if validate and after._replica2part2dev:
            after.validate()
        return Outcome(name, builder, after, 0, _balance_of(after), [], gate, True, False,
                       rebalanced=False, edited=edited)
    devs_changed = after.devs_changed
    marked = copy.deepcopy(after) if change.settings_only else None
    base = marked if marked is not None else builder
    last_balance = _balance_of(base) if base._replica2part2dev else 0.0
    last_dispersion = base.dispersion
    try:
        parts, balance, n_removed = after.rebalance(seed=swift_seed(seed))
        if validate:
            after.validate()
    except exceptions.RingBuilderError as e:
        raise UsageError(f"{name}: swift cannot build a valid ring after this change "
                         f"({e}); are enough devices left for {after.replicas:g} replicas?")
    blocked = change.moves_asked and parts == 0 and not n_removed and gate > 0
    refusal = None
    note = None
    if blocked:
        changed = False
    elif change.empty:
        refusal = _swift_save_refusal(builder, after, change.force, parts, n_removed,
                                      devs_changed, last_balance, balance, last_dispersion,
                                      gate)
        changed = refusal is None
    else:
        changed = True
        if marked is not None:
            note = _swift_save_refusal(marked, after, change.force, parts, n_removed,
                                       devs_changed, last_balance, balance,
                                       last_dispersion, gate)
    if note is not None:
        if parts:  # the layout swift keeps is the marked one, not the rebalanced one
            layout = copy.deepcopy(marked)
            layout._build_dispersion_graph()
        else:
            layout = after
        return Outcome(name, builder, marked, 0, _balance_of(marked), removed_defs, gate,
                       True, False, rebalanced=False, note=note, edited=edited,
                       layout_dispersion=layout.dispersion or 0.0)
    return Outcome(name, builder, after, parts, balance, removed_defs, gate, changed,
                   blocked, refusal, edited=edited)


def _balance_of(builder) -> float:
    """``get_balance()``, 0 for a ring without weighted devices or assignments."""
    from swift.common import exceptions

    try:
        return builder.get_balance()
    except (exceptions.RingBuilderError, ValueError, ZeroDivisionError):
        return 0.0


def _swift_save_refusal(before, after, force, parts, n_removed, devs_changed,
                        last_balance, balance, last_dispersion, gate) -> str | None:
    """swift-ring-builder's rule for saving a plain rebalance (None: save it).

    Nothing is saved unless partitions moved, devices were removed, or ``force``;
    and even then only if a device changed, balance or dispersion changed by at
    least 1, or ``force`` (swift/cli/ringbuilder.py, the rebalance command)."""
    from swift.common.ring.builder import MAX_BALANCE

    if not (parts or force or n_removed):
        if gate > 0:
            return (f"No partitions could be reassigned: the time between rebalances must "
                    f"be at least min_part_hours: {before.min_part_hours} hours "
                    f"({gate_text(gate)} remaining)")
        return "No partitions could be reassigned: there is no need to do so at this time"
    if force or devs_changed:
        return None
    balance_changed = (abs(last_balance - balance) >= 1 or
                       (last_balance == MAX_BALANCE and balance == MAX_BALANCE))
    dispersion_changed = last_dispersion is None or (
        abs(last_dispersion - (after.dispersion or 0)) >= 1)
    if balance_changed or dispersion_changed:
        return None
    return ("Cowardly refusing to save rebalance as it did not change at least 1% "
            "(add --force to save it anyway)")


def simulate(builders: dict, changes: ChangeSet, seed: int,
             pretend_gate_open: bool = False, progress=None,
             validate: bool = True) -> dict[str, Outcome]:
    out = {}
    for name, change in changes.rings.items():
        if progress:
            progress(name)
        out[name] = simulate_ring(name, builders[name], change, seed, pretend_gate_open,
                                  validate)
    return out
