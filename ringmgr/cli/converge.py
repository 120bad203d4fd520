"""The config as the desired state: ``ringmgr plan`` (the differences and the safe
path) and ``ringmgr converge`` (the next safe step, then exit).

Thin: parse, call ``ringmgr.rings.converge``, print.  The live-cluster checks come
in through one function each: ``replication_gate`` (may a step move data now?) and
``safe_to_destroy_check`` (may a drained device be removed?).  Both need a [recon]
section; without one, gating is min_part_hours alone, and the output says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import click

from ringmgr.cli.app import App, json_option
from ringmgr.errors import EXIT_OK, EXIT_WARNING, NothingToDo, NotYet, Refused

SHOWN = 40   # differences listed in the text report (--json lists every one)


@dataclass
class Gate:
    """The replication gate's answer: may a step move data now?"""

    open: bool
    checked: bool
    text: str
    not_before: float | None = None

    def to_json(self) -> dict:
        return {"open": self.open, "checked": self.checked, "text": self.text}


MPH_ONLY = ("gating on min_part_hours alone: the config has no [recon] section, so a "
            "step does not wait for replication to finish (docs/health.md)")


def replication_gate(app, config, builders) -> Gate:
    """The one place converge asks whether replication has caught up with the last
    step: with a [recon] section, the live gate (``ringmgr.live.repl_gate``: every
    server of the rings finished a pass that started after the last push plus
    ``[cluster].ring_reload``); without one, min_part_hours alone, said so."""
    if not config.recon.configured:
        return Gate(True, False, MPH_ONLY)
    from ringmgr.live.repl_gate import replication_gate as live_gate

    res = live_gate(config, sorted(builders))
    for n in res.notes:
        app.note(f"note: {n}")
    app.emit({"replication_gate": {**res.to_json(), "skipped": False}})
    if res.open:
        return Gate(True, True, "replication gate open: every server of the rings "
                                "finished a pass started after the last push")
    lines = res.errors + res.pending
    what = "cannot tell" if res.errors else "replication has not caught up with the last push"
    return Gate(False, True, f"{what}: " + "; ".join(lines))


def safe_to_destroy_check(app, config):
    """``(ring, dev) -> (ok, why)`` for a drained, empty device about to be removed: with
    a [recon] section, ``ringmgr safe-to-destroy`` on it (REPLICATE against every
    primary), once per device; else None (weight 0 and no assignments suffice).  A
    device whose node is no longer in the config cannot be reached: it is held, with
    the command that removes it by hand after a check."""
    if not config.recon.configured:
        return None
    from ringmgr.cli.destroy import verdict_message
    from ringmgr.ops.safe_destroy import safe_to_destroy

    by_ip = {n.ip: name for name, n in config.nodes.items()}
    seen: dict = {}

    def check(ring: str, dev: dict):
        name = by_ip.get(dev["ip"])
        if name is None:
            return False, (f"no node in the config has ip {dev['ip']}, so it cannot be "
                           f"checked; check it by hand, then `ringmgr remove-device`")
        key = (name, dev["device"])
        if key not in seen:
            try:
                rep = safe_to_destroy(config, f"{name}/{dev['device']}", progress=app.note)
                seen[key] = (rep.verdict == "safe", verdict_message(rep))
            except Exception as e:  # noqa: BLE001 - cannot tell: hold the removal
                seen[key] = (False, f"safe-to-destroy cannot tell: {e}")
        return seen[key]

    return check


def _max_move(config, value) -> float:
    if value is not None:
        return value
    return config.converge.max_move if config.converge is not None else 10.0


def _simulate(name, builder, change, seed, pretend):
    from ringmgr.rings.engine import simulate_ring

    # the search saves nothing; the step converge writes is simulated again, validated
    return simulate_ring(name, builder, change, seed, pretend, validate=False)


def _plan(app, config, builders, max_move, seed, allow_over_limit, *, destroy_check=True):
    from ringmgr.rings.converge import plan_converge

    return plan_converge(config, builders, max_move, seed, _simulate,
                         allow_over_limit=allow_over_limit,
                         safe_to_destroy=safe_to_destroy_check(app, config)
                         if destroy_check else None)


def plan_json(plan, gate: Gate) -> dict:
    return {"converged": plan.converged,
            "differences": [d.to_json() for d in plan.differences],
            "max_move_pct": plan.max_move,
            "next_step": {r: s.to_json() for r, s in plan.steps.items()},
            "estimated_steps": plan.estimated_steps,
            "later_steps": plan.path(),
            "over_limit": plan.over_limit,
            "part_power": [{"ring": r, "have": d.part_power[0], "want": d.part_power[1]}
                           for r, d in plan.diffs.items() if d.part_power],
            "removals_held": list(plan.removal_held),
            "drain_stuck": plan.stuck,
            "stale_previous_ip": list(plan.stale_previous_ip),
            "gate": gate.to_json(),
            "safe_to_destroy_checked": plan.safe_to_destroy_checked}


def plan_text(plan, builders, gate: Gate) -> str:
    from ringmgr.rings.engine import gate_text

    diffs = plan.differences
    stale = [f"note: nodes.{n}.previous_ip matches no device in the rings any more: "
             f"remove it from the config" for n in plan.stale_previous_ip]
    if plan.converged:
        return "\n".join(["converged: the rings are what the config describes "
                          "(0 differences)", *stale])
    lines = [f"{len(diffs)} difference(s) between the config and the rings:"]
    lines += [f"  {d.text()}" for d in diffs[:SHOWN]]
    if len(diffs) > SHOWN:
        lines.append(f"  ... and {len(diffs) - SHOWN} more (--json lists every one)")
    lines.append(f"safe path, at most {plan.max_move:g}% of any ring's replica assignments "
                 f"per step:")
    for r, s in plan.steps.items():
        what = {"weights": f"weights x{s.fraction:.2f} of the way",
                "domains": f"zone/region moves ({s.fraction:.0%} of them)",
                "settings": "replicas/overload", "edits": "device info and removals"
                }.get(s.phase, s.phase)
        flag = ""
        if s.over_limit:
            flag = " [over_limit: swift cannot do this within the cap; converge does it " \
                   "only with --allow-over-limit]"
        elif s.held == "gate":
            flag = f" [waits {gate_text(s.wait_seconds)} for min_part_hours]"
        elif s.held == "stuck":
            flag = " [drain_stuck: swift's rebalance moves none of what is left]"
        exact = "exact" if not s.held else "simulated as if the gate were open"
        lines.append(f"  {r}: step 1 {what}: moves {s.parts_moved} "
                     f"({s.parts_moved_pct:.2f}%), {exact}{flag}; about "
                     f"{s.estimated_steps_left} more step(s) (estimated)")
    wait = max((int(b.min_part_hours) for b in builders.values()), default=0) * 3600
    names = {"weights": "weights", "domains": "zone/region moves", "settings":
             "replicas/overload", "edits": "remove the drained devices"}
    for later in plan.path():
        lines.append(f"  step {later['step']} (estimated, after min_part_hours and "
                     f"replication): " + "; ".join(f"{r} {names.get(p, p)}"
                                                   for r, p in later["rings"].items()))
    n = plan.estimated_steps
    if n > 1:
        lines.append(f"  in all about {n} step(s), each after min_part_hours "
                     f"({gate_text(wait) if wait else '0 h'}) and a finished replication "
                     f"pass: at least {gate_text((n - 1) * wait) if wait else '0 min'} "
                     f"plus replication")
    for r, d in plan.diffs.items():
        if d.part_power:
            lines.append(f"  {r}: part_power {d.part_power[0]} -> {d.part_power[1]}: "
                         f"`ringmgr increase-part-power {r}` (converge does not)")
    lines += [f"  held: {h}" for h in plan.removal_held]
    lines += [f"  stuck: {h}" for h in plan.stuck]
    lines += [f"  {line}" for line in stale]
    lines.append(gate.text if not gate.checked else f"replication gate: {gate.text}")
    return "\n".join(lines)


def _steps_today(history: list[dict], now: float) -> list[float]:
    return sorted(e["time"] for e in history
                  if (e.get("change") or {}).get("info", {}).get("converge") is not None
                  and e.get("time", 0) > now - 86400)


def _preconditions(app, config, store, dry_run: bool, now: float) -> None:
    """Pause file, change window and steps per day: NotYet (exit 1, nothing written)."""
    from datetime import datetime

    from ringmgr.rings.window import describe_next, parse_window

    cc = config.converge
    problems = []
    if cc.pause_file is not None and cc.pause_file.exists():
        problems.append(("paused", f"paused: {cc.pause_file} exists (remove it to let "
                                   f"converge run); nothing was written", None))
    if cc.window is not None:
        w = parse_window(cc.window)
        local = datetime.fromtimestamp(now).astimezone()
        if not w.contains(local):
            problems.append(("outside_window", describe_next(w, local) +
                             "; nothing was written", w.next_open(local).timestamp()))
    if cc.max_steps_per_day is not None:
        done = _steps_today(store.history(), now)
        if len(done) >= cc.max_steps_per_day:
            problems.append(("step_limit", f"{len(done)} converge step(s) in the last 24 h "
                                           f"(max_steps_per_day = {cc.max_steps_per_day}); "
                                           f"nothing was written", done[0] + 86400))
    if not problems:
        return
    if dry_run:
        for _, msg, _ in problems:
            app.warn(msg.replace("; nothing was written", "") +
                     " (a real run would stop here)", prefix="note: ")
        return
    reason, msg, when = problems[0]
    raise NotYet(msg, reason=reason, not_before=when)


def register(group: click.Group) -> None:
    from ringmgr.cli.ringflow import change_options

    @group.command("plan")
    @click.option("--max-move", "max_move", type=float, default=None, metavar="PCT",
                  help="the most any step may move of any ring's replica assignments, in "
                       "percent (default: [converge].max_move, else 10)")
    @click.option("--allow-over-limit", is_flag=True,
                  help="plan changes swift cannot split under the cap as one step each")
    @click.option("--seed", type=int, default=None, help="rebalance seed of the simulation")
    @json_option
    def plan(max_move, allow_over_limit, seed):
        """The differences between the config (the desired state) and the rings, and the
        safe path to reach it: the first step simulated exactly, later ones estimated.
        Exit 0 when they agree, 1 when they differ.  Writes nothing."""
        from ringmgr.rings.service import new_seed
        from ringmgr.rings.store import RingStore

        app = App.current()
        config = app.config
        store = RingStore.from_config(config)
        builders = store.load_all()
        seed = new_seed() if seed is None else seed
        # plan reads recon (the gate) but runs no REPLICATE sweep: converge checks a
        # removal with safe-to-destroy right before it makes it
        p = _plan(app, config, builders, _max_move(config, max_move), seed, allow_over_limit,
                  destroy_check=False)
        gate = replication_gate(app, config, builders)
        app.out(plan_text(p, builders, gate))
        app.emit({**plan_json(p, gate), "seed": seed})
        if p.converged:
            return EXIT_OK
        app.reason = "check_failed"
        if p.has_step or not p.part_power_only:
            app.add_next(app.cmd("converge", *(["--max-move", f"{max_move:g}"]
                                               if max_move is not None else [])))
        for r, d in p.diffs.items():
            if d.part_power:
                app.add_next(app.cmd("increase-part-power", r))
        return EXIT_WARNING

    @group.command("converge")
    @click.option("--max-move", "max_move", type=float, default=None, metavar="PCT",
                  help="the most this step may move of any ring's replica assignments, in "
                       "percent (default: [converge].max_move, else 10)")
    @click.option("--allow-over-limit", is_flag=True,
                  help="do a change swift cannot split under the cap (a zone move, an "
                       "integer replica change) in one step")
    @change_options
    def converge(max_move, allow_over_limit, **kw):
        """Perform the next safe step towards the config and exit: 0 converged, 1 a
        step was written and more remain (next[] says when) or nothing can be done yet
        (reason), 2 error.  Honours [converge].pause_file, window and
        max_steps_per_day; one at a time (the builder lock); every step in the history."""
        return run_converge(max_move, allow_over_limit, kw)


def run_converge(max_move, allow_over_limit, kw) -> int:
    from ringmgr.cli.ringflow import run_ring_change
    from ringmgr.rings.engine import gate_text
    from ringmgr.rings.reconcile import ring_diff
    from ringmgr.rings.service import new_seed
    from ringmgr.rings.store import RingStore

    app = App.current()
    config = app.config
    if config.converge is None:
        raise Refused(f"{config.path} has no [converge] section: add one to make the config "
                      f"the desired state of the rings (`ringmgr plan` shows what converge "
                      f"would do); nothing was changed")
    mm = _max_move(config, max_move)
    store = RingStore.from_config(config)
    now = time.time()
    _preconditions(app, config, store, kw.get("dry_run") or kw.get("plan_out"), now)
    if kw.get("seed") is None:
        kw["seed"] = new_seed()
    extra: dict = {}
    state: dict = {}

    def planner(builders):
        gate = replication_gate(app, config, builders)
        # safe-to-destroy (REPLICATE against every primary) only when a step may run
        p = _plan(app, config, builders, mm, kw["seed"], allow_over_limit,
                  destroy_check=gate.open)
        state["plan"] = p
        app.emit(plan_json(p, gate))
        if p.converged:
            raise NothingToDo("converged: the rings are what the config describes; nothing "
                              "to do")
        if not gate.open:
            raise NotYet(f"replication gate closed: {gate.text}; nothing was written",
                         reason="gate_closed", not_before=gate.not_before)
        if not p.has_step:
            raise _why_nothing(p, gate_text)
        if not gate.checked:
            app.note(f"note: {gate.text}")
        app.out(plan_text(p, builders, gate))
        return p.change_set()

    code = run_ring_change(planner, extra_json=extra, sync_config=False, **kw)
    p = state.get("plan")
    if app.written and p is not None:
        after = store.load_all()
        left = [d for r, b in after.items() for d in ring_diff(config, r, b).differences]
        extra["differences_left"] = len(left)
        app.emit({"differences_left": len(left)})
        if left:
            gates = [int(b.min_part_seconds_left) for b in after.values()]
            wait = max(gates, default=0)
            app.reason = "replication_pending"
            app.remark(f"{len(left)} difference(s) remain: the next step is due "
                       f"{'in ' + gate_text(wait) + ' (min_part_hours)' if wait else 'now'} "
                       f"and after a finished replication pass; run `ringmgr converge` "
                       f"again then")
            app.add_next(app.cmd("converge"), now + wait if wait else None)
            code = max(code, EXIT_WARNING)
    return code


def _why_nothing(plan, gate_text) -> Exception:
    """Nothing can be written now: the reason, most specific first."""
    gated = {r: s for r, s in plan.steps.items() if s.held == "gate"}
    if gated:
        wait = max(s.wait_seconds for s in gated.values())
        return NotYet(f"min_part_hours blocks the next step on {', '.join(gated)}: it can "
                      f"run in {gate_text(wait)}; nothing was written",
                      reason="gate_closed", not_before=time.time() + wait)
    over = plan.over_limit
    if over:
        return NotYet(f"over_limit: {', '.join(over)}: the next change moves more than "
                      f"{plan.max_move:g}% of the ring at its smallest step (a zone move, a "
                      f"replica change, ...); run `ringmgr converge --allow-over-limit` to "
                      f"do it in one step; nothing was written", reason="over_limit")
    if plan.removal_held:
        return NotYet("; ".join(plan.removal_held) + "; nothing was written",
                      reason="gate_closed")
    if plan.stuck:
        return NotYet(f"drain_stuck: {'; '.join(plan.stuck)}: drained to weight 0, but "
                      f"swift's rebalance moves none of these assignments (the devices the "
                      f"config keeps cannot take them: too few failure domains or too "
                      f"little weight for the replicas); give the config room for them, or "
                      f"remove the device with `ringmgr remove-device` after checking "
                      f"`ringmgr ok-to-stop`; nothing was written", reason="drain_stuck")
    if plan.part_power_only or any(d.part_power for d in plan.diffs.values()):
        rings = [r for r, d in plan.diffs.items() if d.part_power]
        return NotYet(f"only part_power differs ({', '.join(rings)}): `ringmgr "
                      f"increase-part-power {' '.join(rings)}` changes it; converge does "
                      f"not; nothing was written", reason="part_power",
                      next=[f"ringmgr increase-part-power {' '.join(rings)}"])
    return NotYet("nothing can be done yet; nothing was written", reason="nothing_to_do")
