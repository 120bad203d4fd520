"""The safe path from the builders to the config, one step at a time.

Per ring (``reconcile.ring_diff``) a step holds what moves nothing at once (set_info,
min_part_hours, removing devices already drained and empty) and at most one phase of
what moves data, in this order:

1. weights: additions ramped up, devices not in the config drained to 0, weights
   changed, all as one fraction ``f`` of the way from the current weights to the
   wanted ones, ``f`` as large as keeps the step within ``max_move``;
2. zones and regions: as many devices' moves as fit under the cap (a single device
   that does not fit is ``over_limit``);
3. replicas and overload (not split: ``over_limit`` when over the cap).

A phase swift cannot do within the cap (it moves more than ``max_move`` even at the
smallest fraction) is ``over_limit``: left out unless ``allow_over_limit``, which does
it whole.  The first step is simulated exactly (with the real min_part_hours gate);
later steps are estimated from it, never simulated (``ringmgr converge`` simulates
each when its time comes).  A device not in the config is removed only at weight 0
with no assignments left and, when a ``safe_to_destroy`` check is given, once it says
so.  ``part_power`` is never converged: ``increase-part-power`` does it.

Pure: builders in, a ``ConvergePlan`` out; ``simulate`` is injected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ringmgr.rings.changes import ChangeSet, RingChange
from ringmgr.rings.converge_weights import MIN_FRACTION, fraction_for, weights_at
from ringmgr.rings.reconcile import RingDiff, check_rings_named, ring_diff

TRIES = 6
MAX_ESTIMATED_STEPS = 1000


@dataclass
class RingStep:
    """Ring ``ring``'s part of the next step."""

    ring: str
    change: RingChange
    phase: str                     # weights, domains, settings, edits, none
    fraction: float = 1.0          # weights: how far towards the wanted weights
    parts_moved: int = 0
    parts_moved_pct: float = 0.0
    over_limit: bool = False       # the phase cannot be done within the cap
    held: str | None = None        # why the moving part was left out (gate, over_limit)
    wait_seconds: int = 0          # min_part_hours left before it can move data
    later: list = field(default_factory=list)   # the phases of the steps after this
                                                # one (estimated, not simulated)
    outcome: object = None
    tries: int = 0
    stuck: list = field(default_factory=list)   # drained devices a rebalance cannot empty

    @property
    def estimated_steps_left(self) -> int:
        return len(self.later)

    def to_json(self) -> dict:
        return {"phase": self.phase, "fraction": round(self.fraction, 4),
                "parts_moved": self.parts_moved,
                "parts_moved_pct": round(self.parts_moved_pct, 4),
                "over_limit": self.over_limit, "held": self.held,
                "wait_seconds": self.wait_seconds,
                "estimated_steps_after": self.estimated_steps_left,
                "later_phases": list(self.later),
                "change": self.change.to_json()}


@dataclass
class ConvergePlan:
    max_move: float
    seed: int
    diffs: dict[str, RingDiff]
    steps: dict[str, RingStep] = field(default_factory=dict)
    safe_to_destroy_checked: bool = False
    removal_held: list[str] = field(default_factory=list)
    stale_previous_ip: list[str] = field(default_factory=list)  # renumbering done

    @property
    def differences(self) -> list:
        return [d for rd in self.diffs.values() for d in rd.differences]

    @property
    def converged(self) -> bool:
        return not self.differences

    @property
    def part_power_only(self) -> bool:
        return bool(self.differences) and all(d.kind == "part_power"
                                              for d in self.differences)

    @property
    def over_limit(self) -> list[str]:
        return [r for r, s in self.steps.items() if s.over_limit]

    @property
    def stuck(self) -> list[str]:
        """Drained devices whose last assignments swift's rebalance moves none of."""
        return [f"{r}: {d}" for r, s in self.steps.items() for d in s.stuck]

    @property
    def gate_seconds(self) -> int:
        return max((s.wait_seconds for s in self.steps.values() if s.held == "gate"),
                   default=0)

    def change_set(self) -> ChangeSet:
        """The next step as one ChangeSet (the rings with something to do)."""
        acting = {r: s for r, s in self.steps.items() if s.change.acts}
        parts = []
        for r, s in acting.items():
            what = {"weights": f"weights x{s.fraction:.2f} of the way",
                    "domains": "zone/region moves", "settings": "ring settings",
                    "edits": "device info and removals"}.get(s.phase, s.phase)
            parts.append(f"{r} {what}")
        info = {"converge": {"max_move": self.max_move,
                             "rings": {r: {"phase": s.phase,
                                           "fraction": round(s.fraction, 6),
                                           "over_limit": s.over_limit,
                                           "estimated_steps_after": s.estimated_steps_left}
                                       for r, s in acting.items()}}}
        return ChangeSet("converge towards the config: " + "; ".join(parts),
                         {r: s.change for r, s in acting.items()}, info)

    @property
    def has_step(self) -> bool:
        return any(s.change.acts for s in self.steps.values())

    def path(self) -> list[dict]:
        """The steps after the next one, per ring its phase (estimated)."""
        n = max((len(s.later) for s in self.steps.values()), default=0)
        return [{"step": k + 2, "exact": False,
                 "rings": {r: s.later[k] for r, s in self.steps.items() if k < len(s.later)}}
                for k in range(n)]

    @property
    def estimated_steps(self) -> int:
        """Steps to reach the config, this one included (rings go in parallel)."""
        if not self.steps:
            return 0
        return 1 + max((s.estimated_steps_left for s in self.steps.values()), default=0)


def _edits(diff: RingDiff, builder, safe_to_destroy, held: list) -> RingChange:
    c = RingChange(info={i: dict(f) for i, f in diff.info.items()})
    if "min_part_hours" in diff.settings:
        c.min_part_hours = int(diff.settings["min_part_hours"])
    for i in diff.removable:
        ok = True
        if safe_to_destroy is not None:
            ok, why = safe_to_destroy(diff.ring, builder.devs[i])
            if not ok:
                held.append(f"{diff.ring}: device {i} ({builder.devs[i]['ip']}/"
                            f"{builder.devs[i]['device']}) is drained and empty, but not "
                            f"yet safe to destroy: {why}")
        if ok:
            c.removes.append(i)
    return c


def _merge(base: RingChange, moving: RingChange) -> RingChange:
    out = RingChange(removes=list(base.removes), info=dict(base.info),
                     min_part_hours=base.min_part_hours)
    out.weights, out.adds = dict(moving.weights), list(moving.adds)
    out.zones, out.regions = dict(moving.zones), dict(moving.regions)
    out.overload, out.replicas = moving.overload, moving.replicas
    out.force = moving.force
    return out


def plan_ring(name: str, builder, diff: RingDiff, max_move: float, seed: int, simulate, *,
              allow_over_limit: bool = False, safe_to_destroy=None, held: list | None = None,
              exact: bool = True) -> RingStep:
    """Ring ``name``'s part of the next step (see the module docstring).

    ``simulate(name, builder, change, seed, pretend_gate_open)`` -> engine.Outcome.
    With the gate closed the moving phase is simulated as if it had opened (for the
    plan) and held back (``held = "gate"``, converge writes only the edits)."""
    from ringmgr.rings.report import count_moves, total_assignments

    held = [] if held is None else held
    edits = _edits(diff, builder, safe_to_destroy, held)
    gate = int(builder.min_part_seconds_left) if builder._replica2part2dev else 0
    pretend = gate > 0
    total = total_assignments(builder) or 1

    def run(change: RingChange, step: RingStep):
        o = simulate(name, builder, change, seed, pretend)
        step.outcome = o
        step.tries += 1
        step.parts_moved = int(count_moves(o.before, o.after)) if o.after._replica2part2dev \
            else 0
        step.parts_moved_pct = 100.0 * step.parts_moved / total
        return o

    moving = None
    step = RingStep(name, edits, "edits")
    if diff.weight_work:
        step.phase = "weights"
        if diff.targets or diff.adds:
            f = fraction_for(builder, diff, max_move)
            while True:
                _, moving = weights_at(builder, diff, f)
                step.fraction = f
                run(_merge(edits, moving), step)
                if step.parts_moved_pct <= max_move or step.tries >= TRIES \
                        or f <= MIN_FRACTION:
                    break
                f = max(MIN_FRACTION, f * 0.9 * max_move / step.parts_moved_pct)
        else:  # only emptying drained devices: a rebalance
            moving = RingChange(force=True)
            run(_merge(edits, moving), step)
            if step.parts_moved == 0 and not pretend:
                step.stuck = _still_holding(builder, diff)
        if step.parts_moved_pct > max_move:
            step.over_limit = True
        step.later = ["weights"] * _weight_steps_left(step, max_move, diff) + \
            _after_weights(diff)
    elif diff.zones or diff.regions:
        step.phase = "domains"
        ids = sorted(set(diff.zones) | set(diff.regions))
        n = len(ids)
        while True:
            chosen = ids[:n]
            moving = RingChange(zones={i: diff.zones[i] for i in chosen if i in diff.zones},
                                regions={i: diff.regions[i] for i in chosen
                                         if i in diff.regions})
            run(_merge(edits, moving), step)
            if step.parts_moved_pct <= max_move or n == 1 or step.tries >= TRIES:
                break
            n = max(1, int(n * 0.9 * max_move / step.parts_moved_pct))
        step.fraction = n / len(ids)
        if step.parts_moved_pct > max_move:
            step.over_limit = True
            if allow_over_limit and n < len(ids):
                moving = RingChange(zones=dict(diff.zones), regions=dict(diff.regions))
                run(_merge(edits, moving), step)
                step.fraction, n = 1.0, len(ids)
        left = len(ids) - n
        step.later = ["domains"] * (math.ceil(left / max(n, 1)) if left else 0) + \
            _settings_left(diff)
    elif {"replicas", "overload"} & set(diff.settings):
        step.phase = "settings"
        moving = RingChange(replicas=diff.settings.get("replicas"),
                            overload=diff.settings.get("overload"))
        run(_merge(edits, moving), step)
        step.over_limit = step.parts_moved_pct > max_move
    if step.phase == "weights" and step.over_limit and allow_over_limit and step.fraction < 1:
        _, moving = weights_at(builder, diff, 1.0)
        step.fraction = 1.0
        run(_merge(edits, moving), step)
        step.later = _after_weights(diff)
    if moving is None:
        if edits.removes:  # the rebalance after a removal: simulated, to be reported
            run(edits, step)
        step.change = edits
        return step
    if step.stuck:
        step.held = "stuck"
        step.change = edits
        return step
    if step.over_limit and not allow_over_limit:
        step.held = "over_limit"
        step.change = edits
        return step
    if pretend:
        step.held = "gate"
        step.wait_seconds = gate
        step.change = edits
        return step
    step.change = _merge(edits, moving)
    return step


def _still_holding(builder, diff: RingDiff) -> list[str]:
    """The drained devices that still hold assignments, named with their counts."""
    left = {d.dev_id: d.have for d in diff.differences if d.kind == "empty"}
    return [f"{builder.devs[i]['ip']}/{builder.devs[i]['device']} (id {i}, "
            f"{left.get(i, '?')} assignment(s))" for i in diff.emptying]


def _settings_left(diff: RingDiff) -> list[str]:
    return ["settings"] if {"replicas", "overload"} & set(diff.settings) else []


def _after_weights(diff: RingDiff) -> list[str]:
    """The phases after the weights: zone moves (one step estimated), settings, and the
    removal of what was drained (in the next step's edits, or a step of its own)."""
    out = ["domains"] if diff.zones or diff.regions else []
    out += _settings_left(diff)
    if any(d.kind in ("drain", "empty") for d in diff.differences) and not out:
        out.append("edits")
    return out


def _weight_steps_left(step: RingStep, max_move: float, diff: RingDiff) -> int:
    """Weight steps after this one, from the rate this one moved at."""
    if step.fraction >= 1.0 or step.over_limit:
        return 0
    rate = step.parts_moved_pct / step.fraction if step.fraction > 0 else 0.0
    if rate <= 0:
        return 1
    left = rate * (1.0 - step.fraction)
    return min(MAX_ESTIMATED_STEPS, max(1, math.ceil(left / (0.9 * max_move))))


def plan_converge(config, builders: dict, max_move: float, seed: int, simulate, *,
                  allow_over_limit: bool = False, safe_to_destroy=None) -> ConvergePlan:
    """The differences of every ring and its part of the next step."""
    from ringmgr.rings.gradual import _check_max_move

    max_move = _check_max_move(max_move)
    check_rings_named(config, builders)
    check_enough_devices(config, builders)
    plan = ConvergePlan(max_move, seed, {r: ring_diff(config, r, b)
                                         for r, b in builders.items()},
                        safe_to_destroy_checked=safe_to_destroy is not None)
    from ringmgr.rings.engine import live_devs

    ips = {d["ip"] for b in builders.values() for d in live_devs(b)}
    plan.stale_previous_ip = sorted(n.name for n in config.nodes.values()
                                    if n.previous_ip and n.previous_ip not in ips)
    for r, diff in plan.diffs.items():
        if diff.converged or (len(diff.differences) == 1 and diff.part_power):
            continue
        plan.steps[r] = plan_ring(r, builders[r], diff, max_move, seed, simulate,
                                  allow_over_limit=allow_over_limit,
                                  safe_to_destroy=safe_to_destroy, held=plan.removal_held)
    return plan


def check_enough_devices(config, builders: dict) -> None:
    """The config must leave every ring enough devices with weight for its replicas
    (swift refuses to rebalance with fewer): UsageError, before anything is drained."""
    from ringmgr.errors import UsageError
    from ringmgr.rings.desired import config_devices

    for ring, b in builders.items():
        s = config.ring_settings.get(ring)
        replicas = s.replicas if s is not None and s.replicas is not None else b.replicas
        n = sum(1 for d in config_devices(config, ring).values() if float(d["weight"]) > 0)
        if n < math.ceil(replicas):
            raise UsageError(f"{config.path}: the config gives the {ring} ring {n} device(s) "
                             f"with weight; its {replicas:g} replicas need at least "
                             f"{math.ceil(replicas)} (swift refuses to rebalance with fewer): "
                             f"nothing was planned")
