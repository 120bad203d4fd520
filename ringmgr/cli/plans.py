"""Saved plans, gradual changes and scenarios: apply, drain-node, simulate; plus the
--plan-out and --chart hooks every ring-changing command gets.

Thin: parse, call ``ringmgr.rings.plan`` / ``gradual`` / ``scenario``, print.  Heavy
imports stay inside the functions so that ``ringmgr --help`` is fast.
"""

from __future__ import annotations


import click

from ringmgr.cli.app import App, json_option


class SimulationHooks:
    """Called by ``service.run_change`` right after the simulation (``after_simulation``):
    draws the chart and saves the plan.  ``saves`` tells the caller to write nothing."""

    def __init__(self, app, config, *, plan_out=None, chart=None, schedule=None,
                 brief=False):
        self.app = app
        self.brief = brief
        self.config = config
        self.plan_out = plan_out
        self.chart = chart
        self.schedule = schedule or []
        self.saves = plan_out is not None
        self.base_md5 = {}
        if self.saves:
            from ringmgr.rings.plan import builder_md5s
            from ringmgr.rings.store import RingStore

            self.base_md5 = builder_md5s(RingStore.from_config(config))  # before loading

    def __call__(self, result) -> None:
        if self.brief:
            from ringmgr.rings.report import render_brief

            self.app.out(render_brief(result.reports).rstrip("\n"))
        if self.chart:
            draw_chart(self.app, result.reports, self.chart)
        if self.saves:
            from ringmgr.rings.plan import Plan

            from ringmgr.rings.store import RingStore

            store = RingStore.from_config(self.config)
            plan = Plan.from_result(self.base_md5, result, _argv(self.app), self.schedule,
                                    load=store.load)
            plan.save(self.plan_out)

    def json(self, result) -> dict:
        d = result.to_json()
        if self.schedule:
            d["steps"] = self.schedule
            waits = [s.get("wait_before_seconds", 0) for s in self.schedule]
            d["wait_between_steps_seconds"] = max(waits[1:], default=0)
            d["total_wait_seconds"] = sum(waits)  # replication time comes on top
        if self.plan_out:
            d["plan"] = str(self.plan_out)
        if self.chart:
            d["chart"] = str(self.chart)
        return d


def _argv(app) -> list[str]:
    import sys

    return list(getattr(app, "argv", None) or ["ringmgr", *sys.argv[1:]])


def draw_chart(app, reports: dict, path) -> None:
    """matplotlib PNG at ``path``; without matplotlib, bars on the terminal."""
    try:
        from ringmgr.rings.chart import render_bars, write_chart
    except ImportError as e:
        if "matplotlib" in str(e):
            raise
        app.note("note: --chart: this ringmgr has no chart module yet; no chart drawn")
        return
    try:
        written = write_chart(reports, path)
    except ImportError:
        written = False
    if written is False:
        app.note("note: matplotlib is not installed (pip install 'ringmgr[chart]'); "
                 "terminal bars instead of " + str(path))
        app.out(render_bars(reports))
    else:
        app.remark(f"chart written to {path}")


def _ring_change_options(f):
    from ringmgr.cli.rings import change_options

    return change_options(f)


def run_gradual(kind: str, node_name: str, max_move: float, **kw) -> int:
    """drain-node, and add-node --max-move: plan the steps, show them, then run step 1
    as a normal change (or only simulate it with --dry-run / save it with --plan-out)."""
    from ringmgr.cli.rings import _run
    from ringmgr.errors import EXIT_WARNING
    from ringmgr.rings.engine import gate_text
    from ringmgr.rings.gradual import plan_drain, plan_ramp, step_change
    from ringmgr.rings.parallel import simulate_all
    from ringmgr.rings.service import new_seed
    from ringmgr.rings.store import RingStore

    from ringmgr.rings.gradual import _check_max_move

    app = App.current()
    config = app.config
    node = config.node(node_name)
    _check_max_move(max_move)  # before anything is printed or loaded
    if kw.get("seed") is None:
        kw["seed"] = new_seed()
    seed = kw["seed"]
    store = RingStore.from_config(config)
    store.refuse_if_pending()
    builders = store.load_all()
    store.refuse_unchangeable(builders)

    def sim(b, cs, s, pretend_gate_open=False):
        return simulate_all(b, cs, s, pretend_gate_open=pretend_gate_open)

    app.note(f"planning the gradual {'drain' if kind == 'drain' else 'ramp'} of "
             f"{node.name} (each step simulated) ...")
    if kind == "drain":
        g = plan_drain(builders, node, max_move, seed, simulate=sim,
                       port_for=config.cluster.port_for)
    else:
        g = plan_ramp(builders, node, config.cluster.port_for, max_move, seed, simulate=sim)
    del builders
    app.out(g.render_text())
    app.out("")
    first = g.steps[0]
    if first.wait_seconds:
        from ringmgr.errors import NotYet

        msg = (f"min_part_hours have not passed since the last rebalance: the first "
               f"step can run in {gate_text(first.wait_seconds)} (after a finished "
               f"replication pass); nothing was written. Run the same command then")
        import time

        if kw.get("dry_run") and not kw.get("plan_out"):
            # the plan itself is still worth having: show it, then say when it can start
            app.warn(msg, prefix="note: ")
            app.reason = "gate_closed"
            app.add_next(app.rerun(drop=()), time.time() + first.wait_seconds)
            app.emit({"written": False, "rings": {}, "message": msg, **g.to_json()})
            return EXIT_WARNING
        raise NotYet(msg, not_before=time.time() + first.wait_seconds)
    schedule = g.schedule_json()
    code = _run(lambda b: step_change(b, node, first, config.cluster.port_for),
                schedule=schedule, **kw)
    if app.written and len(g.steps) > 1:
        nxt = g.steps[1]
        import time

        cmd = "drain-node" if kind == "drain" else "add-node"
        app.remark(f"next step ({nxt.number} of {len(g.steps)}) is due after "
                   f"{gate_text(g.wait_seconds)} (min_part_hours) and a finished replication "
                   f"pass: push the rings, then run `ringmgr {cmd} {node.name} --max-move "
                   f"{g.max_move:g}` again")
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
        from ringmgr.cli.rings import after_write
        from ringmgr.rings.plan import apply_plan

        app = App.current()
        config = app.config
        data = apply_plan(config, plan, dry_run=dry_run, confirm=lambda q: app.confirm(q, yes),
                          show=app.out, argv=_argv(app))
        app.written = data["written"]
        app.emit(data)
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
    @_ring_change_options
    def drain_node(node, max_move, **kw):
        """The gradual way out: NODE's weights step down to 0, then its devices are
        removed.  Each run performs the next step (with --dry-run: shows every step)."""
        return run_gradual("drain", node, max_move, **kw)

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
