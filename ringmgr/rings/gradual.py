"""Gradual plans: drain a node (weights down to 0, then remove) or ramp a new one up,
in weight steps that each move at most ``max_move`` percent of any ring's replica
assignments.

Pure: builders in, a ``GradualPlan`` out.  Each step is simulated on copies chained
from the previous step's result.  Step 1 is simulated with the real min_part_hours
gate (it is what will be written now); later steps pretend the gate has opened,
which is only ever done to simulation copies.  Later steps are advice: they are
simulated again when their turn comes (run the same command again).

Weights are a common fraction ``f`` of each device's base weight (for a drain the
weights before it began, for a ramp the configured weights, or for a rejoin the
weights from the history), so that SSD rings with small weights and disk rings with
big ones move in step.  Each written step records the base, its number and the total
in the history (``ChangeSet.info["gradual"]``, see ``node_history``): the next run
continues from there, so step numbers and fractions stay true across runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ringmgr.errors import UsageError
from ringmgr.rings.engine import (
    ChangeSet, RingChange, check_weight, config_device, gate_text, live_devs, node_devs,
    plan_add_node,
)

MAX_STEPS = 60
MIN_DELTA = 0.01  # the smallest weight step tried: 1% of the base weight
TRIES = 6


@dataclass
class Step:
    number: int
    action: str                      # "set-weight", "add", "rebalance", "remove"
    fraction: float                  # of each device's base weight after this step
    weights: dict                    # ring -> {device: weight} after this step
    rings: dict = field(default_factory=dict)   # ring -> summary of the simulation
    wait_seconds: int = 0            # min_part_hours wait before this step can run
    over_limit: bool = False         # swift cannot move less than this in one step
    first: bool = False              # the step this run performs

    @property
    def worst_pct(self) -> float:
        return max((r["parts_moved_pct"] for r in self.rings.values()), default=0.0)

    def to_json(self) -> dict:
        return {"step": self.number, "action": self.action,
                "fraction": round(self.fraction, 4), "weights": self.weights,
                "rings": self.rings, "wait_before_seconds": self.wait_seconds,
                "exact": self.first and not self.wait_seconds, "over_limit": self.over_limit}


@dataclass
class GradualPlan:
    kind: str                        # "drain" or "ramp"
    node: str
    max_move: float
    seed: int
    steps: list[Step]
    wait_seconds: int                # min_part_hours between steps (largest of the rings)
    base: dict = field(default_factory=dict)        # ring -> {device: weight}
    done: int = 0                    # steps earlier runs wrote
    started: dict | None = None      # {"id", "time"} of the change that wrote step 1
    source: str = ""                 # where the base weights come from
    templates: dict = field(default_factory=dict)   # ring -> {device: definition} to add

    @property
    def total_seconds(self) -> int:
        return sum(s.wait_seconds for s in self.steps)

    @property
    def total_steps(self) -> int:
        return self.done + len(self.steps)

    def first_change(self, builders: dict, node, port_for) -> ChangeSet:
        return step_change(builders, node, self.steps[0], port_for, self)

    def schedule_json(self) -> list[dict]:
        return [s.to_json() for s in self.steps]

    def to_json(self) -> dict:
        return {"kind": self.kind, "node": self.node, "max_move_pct": self.max_move,
                "seed": self.seed, "wait_between_steps_seconds": self.wait_seconds,
                "total_wait_seconds": self.total_seconds,
                "steps_done": self.done, "steps_total": self.total_steps,
                "started_by_change": (self.started or {}).get("id"),
                "base_weights": self.base, "base_weights_from": self.source,
                "steps": self.schedule_json()}

    def render_text(self) -> str:
        from ringmgr.rings.node_history import change_text

        what = "drain" if self.kind == "drain" else "ramp up"
        left = (f", {len(self.steps)} to go (continuing the {self.kind} begun by "
                f"{change_text(self.started)})" if self.done and self.started else "")
        lines = [f"gradual plan: {what} {self.node} in {self.total_steps} step(s){left}, "
                 f"at most {self.max_move:g}% of any ring's replica assignments per step"]
        if self.source:
            lines.append(f"  weights: fractions of {self.source}")
        lines.append(f"  wait between steps: min_part_hours = {gate_text(self.wait_seconds)} "
                     f"and a finished replication pass; expected duration at least "
                     f"{gate_text(self.total_seconds) if self.total_seconds else '0 min'} "
                     f"plus replication")
        for s in self.steps:
            when = "now" if s.first and not s.wait_seconds else \
                f"after {gate_text(s.wait_seconds)}"
            if s.action == "remove":
                act = "remove the devices"
            elif s.action == "rebalance":
                act = "rebalance (finish emptying)"
            else:
                act = f"{'add at' if s.action == 'add' else 'weight'} x{s.fraction:.2f}"
            moves = ", ".join(f"{r} {v['parts_moved']} ({v['parts_moved_pct']:.2f}%)"
                              for r, v in s.rings.items())
            flag = "  [over the limit: swift moves at least this much]" if s.over_limit else ""
            exact = ", exact" if s.first and not s.wait_seconds else ""
            lines.append(f"  step {s.number} of {self.total_steps} ({when}{exact}): "
                         f"{act}; moves: {moves}{flag}")
        if len(self.steps) > 1:
            lines.append("  steps after the first are advice: run the command again when one "
                         "is due; it is simulated afresh then")
        return "\n".join(lines)


# -- changes for a step ------------------------------------------------------------

def step_change(builders: dict, node, step: Step, port_for, plan: GradualPlan | None = None
                ) -> ChangeSet:
    """The ChangeSet that makes ``builders`` look like ``step`` (devices by ip+name).
    With ``plan``, it is labelled with its true step number and total and carries the
    facts the next run continues from (``info["gradual"]``)."""
    rings = {}
    templates = plan.templates if plan is not None else {}
    for ring, devs in step.weights.items():
        if ring not in builders:
            continue
        b = builders[ring]
        if step.action == "add":
            port = port_for(ring) if port_for else None
            adds = []
            for dev, w in devs.items():
                t = templates.get(ring, {}).get(dev)
                if t is None:
                    t = config_device(node, ring, dev, port, w)
                adds.append(dict(t, weight=w))
            rings[ring] = RingChange(adds=adds)
            continue
        by_name = {d["device"]: d for d in node_devs(b, node.ip)}
        if step.action == "remove":
            rings[ring] = RingChange(removes=[by_name[n]["id"] for n in devs if n in by_name])
        elif step.action == "rebalance":
            rings[ring] = RingChange()
        else:
            rings[ring] = RingChange(weights={by_name[n]["id"]: w for n, w in devs.items()
                                              if n in by_name and by_name[n]["weight"] != w})
    labels = {"add": f"add {node.name} at x{step.fraction:.2f} of its weight",
              "set-weight": f"set {node.name}'s weight to x{step.fraction:.2f} of its base",
              "remove": f"remove {node.name} (drained) from every ring",
              "rebalance": f"rebalance to finish emptying {node.name}"}
    if plan is None:
        return ChangeSet(f"{labels[step.action]} (gradual step {step.number})", rings)
    info = {"gradual": {"kind": plan.kind, "node": node.name, "ip": node.ip,
                        "step": step.number, "of": plan.total_steps, "action": step.action,
                        "fraction": round(step.fraction, 6), "base": plan.base,
                        "started": plan.started}}
    return ChangeSet(f"{labels[step.action]} (gradual step {step.number} of "
                     f"{plan.total_steps})", rings, info)


# -- planning ----------------------------------------------------------------------

def plan_drain(builders: dict, node, max_move: float, seed: int, *,
               simulate=None, port_for=None, progress=None) -> GradualPlan:
    """``progress`` (``node_history.in_progress``): the drain earlier runs began; its
    base weights and step count carry on.  Without it the current weights are the base."""
    current = {ring: {d["device"]: float(d["weight"]) for d in node_devs(b, node.ip)}
               for ring, b in builders.items()}
    current = {r: d for r, d in current.items() if d}
    if not current:
        raise UsageError(f"node {node.name} (ip {node.ip}) has no devices in any ring")
    base = current
    if progress is not None:
        old = progress.base or {}
        base = {r: {dev: float(old.get(r, {}).get(dev, w)) for dev, w in devs.items()}
                for r, devs in current.items()}
    return _plan("drain", builders, node, base, max_move, seed, simulate, port_for,
                 start=_fraction(current, base), progress=progress,
                 source=(f"{node.name}'s current weights" if progress is None
                         else "the weights before the drain"))


def plan_ramp(builders: dict, node, port_for, max_move: float, seed: int, *,
              simulate=None, progress=None, base=None, templates=None,
              source=None) -> GradualPlan:
    """Add ``node`` at a low weight and raise it in steps.  ``progress``: a ramp earlier
    runs began (its devices are in the rings); ``base``/``templates``: the weights and
    device definitions to add (rejoin-node), else the config's."""
    if progress is not None:
        current = {ring: {d["device"]: float(d["weight"]) for d in node_devs(b, node.ip)}
                   for ring, b in builders.items()}
        current = {r: d for r, d in current.items() if d}
        old = progress.base or {}
        base = {r: {dev: float(old.get(r, {}).get(dev, w)) for dev, w in devs.items()}
                for r, devs in current.items()}
        return _plan("ramp", builders, node, base, max_move, seed, simulate, port_for,
                     start=min(_fraction(current, base), 1.0), progress=progress,
                     source="the weights the ramp aims at")
    if base is None:
        plan_add_node(builders, node, port_for)  # the same checks as a plain add-node
        base = {}
        for ring in builders:
            devs = node.devices_for(ring)
            if devs:
                base[ring] = {dev: check_weight(w) for dev, w in devs.items()}
        source = source or "the config's weights"
    return _plan("ramp", builders, node, base, max_move, seed, simulate, port_for,
                 start=0.0, templates=templates, source=source)


def _fraction(current: dict, base: dict) -> float:
    """Where the node's weights stand as one fraction of the base weights."""
    ratios = [w / base[r][dev] for r, devs in current.items() for dev, w in devs.items()
              if base.get(r, {}).get(dev)]
    return max(ratios, default=0.0)


def _check_max_move(max_move) -> float:
    try:
        m = float(max_move)
    except (TypeError, ValueError):
        raise UsageError(f"--max-move {max_move!r} is not a number")
    if not 0 < m <= 100:
        raise UsageError(f"--max-move {max_move!r} must be a percentage above 0 and at most 100")
    return m


def _share(builders, node, base, fraction_end) -> float:
    """The largest share of a ring's weight the node's devices hold (at full weight)."""
    worst = 0.0
    for ring, devs in base.items():
        b = builders[ring]
        mine = sum(devs.values())
        others = sum(d["weight"] for d in live_devs(b) if d["ip"] != node.ip)
        if mine + others > 0:
            worst = max(worst, mine / (mine + others))
    return worst or 1.0


def _plan(kind, builders, node, base, max_move, seed, simulate, port_for, *, start,
          progress=None, templates=None, source=None) -> GradualPlan:
    from ringmgr.rings.engine import simulate as simulate_seq

    max_move = _check_max_move(max_move)
    done = progress.done if progress is not None else 0
    plan = GradualPlan(kind, node.name, max_move, seed, [], 0, base=base, done=done,
                       started=progress.started if progress is not None else None,
                       source=source or "", templates=templates or {})
    simulate = simulate or simulate_seq
    wait = max(int(builders[r].min_part_hours) * 3600 for r in base)
    # pacing: a step starts only once min_part_hours have passed since the last
    # rebalance (swift itself would already move the partitions that did not move then)
    gate = max(int(builders[r].min_part_seconds_left) for r in base)
    current = {r: builders[r] for r in base}
    steps: list[Step] = []
    if kind == "drain":
        f, target = min(start, 1.0), 0.0
    else:
        f, target = start, 1.0
    adding = kind == "ramp" and progress is None
    share = _share(builders, node, base, target)
    rate = None  # observed percent moved per unit of fraction

    def run(step: Step, pretend: bool):
        cs = step_change(current, node, step, port_for, plan)
        outs = simulate(current, cs, seed + step.number - 1, pretend_gate_open=pretend)
        step.rings = {r: _summary(o) for r, o in outs.items()}
        return outs

    while True:
        if len(steps) >= MAX_STEPS:
            raise UsageError(f"--max-move {max_move:g}% would need more than {MAX_STEPS} "
                             f"steps; allow a larger --max-move")
        n = done + len(steps) + 1
        first = not steps
        if f == target:
            # weights reached their end: for a drain, empty what remains, then remove
            if kind == "ramp":
                break
            left = sum(d.get("parts", 0) or 0 for r in current
                       for d in node_devs(current[r], node.ip))
            action = "rebalance" if left else "remove"
            if action == "remove" and not any(node_devs(current[r], node.ip) for r in current):
                break
            step = Step(n, action, 0.0, {r: {k: 0.0 for k in base[r]} for r in base},
                        first=first)
            outs = _run_step(run, step, first, gate)
            steps.append(step)
            current = {r: outs[r].after if r in outs else current[r] for r in current}
            if action == "remove":
                break
            continue
        if rate is None:
            delta = 0.9 * max_move / (100.0 * share)
        else:
            delta = 0.9 * max_move / rate if rate > 0 else 1.0
        delta = max(min(delta, 1.0), MIN_DELTA)
        best = None
        for _ in range(TRIES):
            nf = max(f - delta, target) if kind == "drain" else min(f + delta, target)
            if kind == "drain" and nf < MIN_DELTA / 2:
                nf = 0.0
            action = "add" if adding and first else "set-weight"
            step = Step(n, action, nf,
                        {r: {k: round(w * nf, 6) for k, w in base[r].items()} for r in base},
                        first=first)
            outs = _run_step(run, step, first, gate)
            moved = abs(nf - f)
            if step.worst_pct > 0 and moved > 0:
                rate = step.worst_pct / moved
            best = (step, outs, nf)
            if step.worst_pct <= max_move:
                break
            if delta <= MIN_DELTA:
                step.over_limit = True
                break
            delta = max(MIN_DELTA, delta * 0.9 * max_move / step.worst_pct)
        step, outs, nf = best
        if step.worst_pct > max_move:
            step.over_limit = True
        steps.append(step)
        current = {r: outs[r].after if r in outs else current[r] for r in current}
        f = nf
    for st in steps[1:]:
        st.wait_seconds = wait
    plan.steps, plan.wait_seconds = steps, wait
    return plan


def _run_step(run, step: Step, first: bool, gate: int):
    """Simulate ``step``: the first with the real builders' state when it can start now;
    when it must wait for the gate (and every later step), pretending the gate opened."""
    if first:
        step.wait_seconds = gate
    return run(step, pretend=not first or gate > 0)


def _summary(o) -> dict:
    from ringmgr.rings.report import count_moves, total_assignments

    moved = count_moves(o.before, o.after)
    total = total_assignments(o.after) or 1
    return {"parts_moved": int(moved), "parts_moved_pct": round(100.0 * moved / total, 4),
            "balance_after": round(float(o.balance), 4),
            "dispersion_after": round(float(o.after.dispersion or 0.0), 4)}
