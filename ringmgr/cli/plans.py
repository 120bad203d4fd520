"""Saved plans, gradual changes and scenarios: apply, drain-node, simulate (the
--plan-out and --chart hooks every ring-changing command gets are in ``cli.ringflow``).

Thin: parse, call ``ringmgr.rings.plan`` / ``gradual`` / ``scenario``, print.  Heavy
imports stay inside the functions so that ``ringmgr --help`` is fast.
"""

from __future__ import annotations


import click

from ringmgr.cli.app import App, json_option
from ringmgr.cli.replication import gate_options, pop_gate
from ringmgr.cli.ringflow import after_write, argv_of, change_options, run_ring_change


def run_gradual(kind: str, node_name: str, max_move: float, *, command: str | None = None,
                rejoin=None, gate: dict | None = None, **kw) -> int:
    """drain-node, add-node --max-move and rejoin-node --max-move: plan the steps (going
    on from what earlier runs did, by the history), show them, then run the next step as
    a normal change (or only simulate it with --dry-run / save it with --plan-out).

    ``rejoin(builders)`` gives the ChangeSet of a plain rejoin (devices, weights, and
    where the weights come from): a ramp towards it is planned."""
    from ringmgr.errors import EXIT_OK, EXIT_WARNING
    from ringmgr.rings.engine import clock_text, gate_text
    from ringmgr.rings.gradual import _check_max_move, plan_drain, plan_ramp, step_change
    from ringmgr.rings.node_history import (
        change_text, gradual_info, in_progress, last_removal, node_ids,
    )
    from ringmgr.rings.parallel import simulate_all
    from ringmgr.rings.service import new_seed
    from ringmgr.rings.store import RingStore

    app = App.current()
    config = app.config
    node = config.node(node_name)
    command = command or ("drain-node" if kind == "drain" else "add-node")
    _check_max_move(max_move)  # before anything is printed or loaded
    if kw.get("seed") is None:
        kw["seed"] = new_seed()
    seed = kw["seed"]
    store = RingStore.from_config(config)
    store.refuse_if_pending()
    builders = store.load_all()
    store.refuse_unchangeable(builders)
    history = store.history()
    ids = node_ids(builders, node)
    progress = in_progress(history, node, ids, kind)

    if kind == "drain" and not any(ids.values()):
        removal = last_removal(history, node)
        if removal is not None:
            entry = removal[0]
            g = gradual_info(entry) or {}
            drained = g.get("kind") == "drain" or "drain-node" in (entry.get("argv") or [])
            what = "drained and removed" if drained else "removed"
            msg = (f"{node.name} is already {what} ({change_text(entry)}): nothing to do; "
                   f"`ringmgr rejoin-node {node.name}` brings it back")
            app.out(msg)
            app.reason = "nothing_to_do"
            app.emit({"written": False, "rings": {}, "steps": [], "message": msg,
                      "already_removed": {"change_id": entry.get("id"),
                                          "time": entry.get("time"),
                                          "description": entry.get("description")}})
            return EXIT_OK

    def sim(b, cs, s, pretend_gate_open=False):
        return simulate_all(b, cs, s, pretend_gate_open=pretend_gate_open)

    verb = "drain" if kind == "drain" else "ramp"
    app.note(f"planning the gradual {verb} of {node.name} (each step simulated"
             f"{f'; continuing after step {progress.done}' if progress else ''}) ...")
    if kind == "drain":
        g = plan_drain(builders, node, max_move, seed, simulate=sim,
                       port_for=config.cluster.port_for, progress=progress)
    elif rejoin is not None and progress is None:
        cs = rejoin(builders)
        base = {r: {a["device"]: float(a["weight"]) for a in c.adds} for r, c in cs.rings.items()}
        templates = {r: {a["device"]: {k: v for k, v in a.items() if k != "weight"}
                         for a in c.adds} for r, c in cs.rings.items()}
        g = plan_ramp(builders, node, config.cluster.port_for, max_move, seed, simulate=sim,
                      base=base, templates=templates,
                      source=cs.info.get("rejoin", {}).get("weights_source"))
    else:
        g = plan_ramp(builders, node, config.cluster.port_for, max_move, seed, simulate=sim,
                      progress=progress)
    del builders
    app.out(g.render_text())
    app.out("")
    first = g.steps[0]
    again = f"`ringmgr {command} {node.name} --max-move {g.max_move:g}`"
    if first.wait_seconds:
        from ringmgr.errors import NotYet

        msg = (f"min_part_hours have not passed since the last rebalance: step "
               f"{first.number} of {g.total_steps} can run in {gate_text(first.wait_seconds)}"
               f" (at {clock_text(first.wait_seconds)}), after a finished replication pass; "
               f"nothing was written. Run {again} then")
        import time

        if kw.get("dry_run") and not kw.get("plan_out"):
            # the plan itself is still worth having: show it, then say when it can start
            app.warn(msg, prefix="note: ")
            app.reason = "gate_closed"
            app.add_next(app.rerun(drop=()), time.time() + first.wait_seconds)
            app.emit({"written": False, "rings": {}, "message": msg, "host_steps": [],
                      **g.to_json()})
            return EXIT_WARNING
        raise NotYet(msg, not_before=time.time() + first.wait_seconds)
    from ringmgr.cli.replication import enforce

    gate = gate or {}
    enforce(app, config, sorted(g.base), gate,
            dry_run=bool(kw.get("dry_run") or kw.get("plan_out")))
    if kind == "drain" and first.action == "remove" and not (kw.get("dry_run") or
                                                              kw.get("plan_out")):
        from ringmgr.cli.destroy import removal_gate

        removal_gate(app, node.name, bool(kw.get("force")))
    schedule = g.schedule_json()
    extra = {k: v for k, v in g.to_json().items() if k.startswith(("steps_", "base_weights"))}
    def step(b):
        cs = step_change(b, node, first, config.cluster.port_for, g)
        if gate.get("no_replication_check"):
            cs.description += " (replication check skipped: --no-replication-check)"
        return cs

    code = run_ring_change(step, schedule=schedule, extra_json=extra, **kw)
    if app.written and len(g.steps) > 1:
        nxt = g.steps[1]
        import time

        pushed = kw.get("push") if kw.get("push") is not None else config.cluster.push
        when = (f"is due in {gate_text(g.wait_seconds)} (at {clock_text(g.wait_seconds)}; "
                f"min_part_hours) and after a finished replication pass" if g.wait_seconds
                else "is due after a finished replication pass")
        then = ("the rings are pushed: once replication has finished, run" if pushed
                else "push the rings (`ringmgr push`), let replication finish, then run")
        app.remark(f"next step ({nxt.number} of {g.total_steps}) {when}: {then} {again} again")
        cmd = "drain-node" if kind == "drain" else "add-node"
        app.reason = "replication_pending"
        app.add_next(app.cmd(cmd, node.name, "--max-move", f"{g.max_move:g}"),
                     time.time() + g.wait_seconds)
        code = max(code, EXIT_WARNING)
    return code


def register(group: click.Group) -> None:
    @group.command("apply")
    @click.argument("plan", type=click.Path(dir_okay=False))
    @click.option("--dry-run", is_flag=True, help="check the plan still fits; write nothing")
    @click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
    @click.option("--push/--no-push", "push", default=None,
                  help="push the rings to every node after writing (default: [cluster].push)")
    @json_option
    def apply(plan, dry_run, yes, push):
        """Apply a plan saved with --plan-out exactly as it was simulated (refused if any
        ring changed since: re-plan)."""
        from ringmgr.config_sync import ConfigSync
        from ringmgr.rings.plan import apply_plan

        app = App.current()
        config = app.config
        sync = ConfigSync.for_config(app, config)

        def confirm(q):
            app.confirm(q, yes)
            if sync is not None:  # the config goes first, as for every ring change
                sync.write_before_commit()

        try:
            data = apply_plan(config, plan, dry_run=dry_run, confirm=confirm, show=app.out,
                              argv=argv_of(app),
                              planned=None if sync is None else sync.plan_applied)
        except BaseException as e:
            if sync is not None and not getattr(e, "written", False):
                sync.undo()
            raise
        app.written = data["written"]
        app.emit(data)
        if sync is not None:
            if data["written"]:
                sync.committed()
            app.emit(sync.report())
        if data["written"]:
            after_write(app, config, push, f"change #{data['change_id']} (plan {plan})",
                        change_id=data["change_id"])
        else:
            app.remark("dry run: the plan still fits the builders; nothing was written")
            app.add_next(app.rerun())
        return 0

    @group.command("drain-node")
    @click.argument("node")
    @click.option("--max-move", "max_move", type=float, default=10.0, show_default=True,
                  metavar="PCT", help="the most any step may move of any ring's replica "
                                      "assignments, in percent")
    @gate_options
    @change_options
    def drain_node(node, max_move, **kw):
        """The gradual way out: NODE's weights step down to 0, then its devices are
        removed.  Each run performs the next step (with --dry-run: shows every step),
        once min_part_hours have passed and every server of the rings has finished a
        replication pass that started after the last push (recon)."""
        gate = pop_gate(kw)
        return run_gradual("drain", node, max_move, gate=gate, **kw)

    @group.command("simulate")
    @click.argument("scenario", type=click.Path(dir_okay=False))
    @click.option("--seed", type=int, default=None,
                  help="rebalance seed (default: the scenario's, else random)")
    @json_option
    def simulate(scenario, seed):
        """Play SCENARIO.toml: rounds of add/remove/set-weight on copies of the real
        builders, reported round by round.  Nothing is written."""
        from ringmgr.rings.scenario import load_scenario, render_scenario, run_scenario
        from ringmgr.rings.service import new_seed
        from ringmgr.rings.store import RingStore

        app = App.current()
        config = app.config
        sc = load_scenario(scenario)
        builders = RingStore.from_config(config).load_all()
        seed = seed if seed is not None else sc.seed if sc.seed is not None else new_seed()
        result = run_scenario(config, builders, sc, seed,
                              progress=lambda what: app.note(f"simulating {what} ..."))
        app.out(render_scenario(result))
        app.emit(result)
        return 0
