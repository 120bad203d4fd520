"""The flow every ring-changing command shares: its options, the run through
``service.run_change`` (simulation, report, confirmation, write), the --plan-out and
--chart hooks after the simulation, and the one after-write path (say what was written,
then push or say how to).  Used by the ring, plan, node and ring-setting commands.

Heavy imports stay inside the functions so that ``ringmgr --help`` is fast.
"""

from __future__ import annotations

import functools

import click

from ringmgr.cli.app import App, json_option
from ringmgr.errors import UsageError


def change_options(f):
    """--dry-run, --yes, --seed, --push/--no-push, --used-bytes, --plan-out, --chart,
    --brief, --json for ring changes."""

    @click.option("--dry-run", is_flag=True, help="simulate on copies of the builders; write nothing")
    @click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
    @click.option("--seed", type=int, default=None, help="rebalance seed (default: random, recorded)")
    @click.option("--push/--no-push", "push", default=None,
                  help="push the rings to every node after writing (default: [cluster].push)")
    @click.option("--used-bytes", "used_bytes", multiple=True, metavar="RING=BYTES",
                  help="bytes stored in RING, to estimate the bytes moved (repeatable)")
    @click.option("--plan-out", "plan_out", type=click.Path(dir_okay=False), default=None,
                  metavar="FILE", help="save the simulated change to FILE for `ringmgr apply`; "
                                       "write no ring")
    @click.option("--chart", type=click.Path(dir_okay=False), default=None, metavar="FILE.png",
                  help="draw per-device and per-node fill before/after (terminal bars "
                       "without matplotlib)")
    @click.option("--force", is_flag=True,
                  help="override a guard: overwrite an existing --plan-out/--chart file, "
                       "allow a weight over 10x a ring's median, save a rebalance that "
                       "changed little (as swift-ring-builder rebalance --force)")
    @click.option("--brief", is_flag=True, help="one line per ring instead of the full report")
    @click.option("--measure/--no-measure", "measure", default=None,
                  help="measure what each device holds per ring (du of its datadirs over "
                       "SSH) for the bytes moved and each device's predicted fullness "
                       "(default: [cluster].measure_usage)")
    @click.option("--allow-full", "allow_full", is_flag=True,
                  help="write a change although it would fill a device past "
                       "[cluster].full_percent (measured)")
    @json_option
    @functools.wraps(f)
    def wrapper(*a, **kw):
        return f(*a, **kw)

    return wrapper


def used_bytes_of(values) -> dict[str, float]:
    from ringmgr.rings.files import is_ring_name
    from ringmgr.rings.weights import check_used_bytes

    out = {}
    for v in values:
        ring, eq, n = v.partition("=")
        if not eq or not is_ring_name(ring):
            raise UsageError(f"--used-bytes {v!r}: expected RING=BYTES, e.g. object=1.2e15")
        out[ring] = check_used_bytes(ring, n)
    return out


def run_ring_change(planner, *, dry_run, yes, seed, push, used_bytes, plan_out=None, chart=None,
         schedule=None, force=False, extra_json=None, brief=False, load=None,
         sync_config=True, measure=None, allow_full=False):
    from ringmgr.config_sync import ConfigSync
    from ringmgr.errors import NotYet
    from ringmgr.rings.service import progress_printer, run_change

    app = App.current()
    config = app.config
    hooks = SimulationHooks(app, config, plan_out=plan_out, chart=chart, schedule=schedule,
                            force=force, brief=brief, rings=getattr(load, "rings", None))
    sync = ConfigSync.for_config(app, config) if sync_config and load is None else None
    measuring = measure if measure is not None else config.cluster.measure_usage
    measurer = _measurer(app, config) if measuring else None

    def confirm(q):
        app.confirm(q, yes)
        if sync is not None:  # the config goes first ([converge]: config_sync.py)
            sync.write_before_commit()

    try:
        result = run_change(
            config, planner, argv=App.current().argv, seed=seed,
            dry_run=dry_run or hooks.saves, validate=hooks.saves or not dry_run,
            confirm=confirm, show=(lambda text: None) if brief else app.out,
            used_bytes=used_bytes_of(used_bytes), progress=progress_printer(),
            after_simulation=hooks if sync is None else sync.wrap(hooks), load=load,
            measure=measurer, allow_full=allow_full)
    except BaseException as e:
        if sync is not None and not getattr(e, "written", False):
            sync.undo()   # the builders were not committed: neither is the config
        if isinstance(e, NotYet) and getattr(e, "data", None):
            app.emit(e.data)  # a refusal with its report (fullness)
        raise
    app.written = result.written
    if sync is not None:
        if result.written:
            sync.committed()
        app.emit(sync.report())
    for m in result.messages:
        app.warn(m, prefix="note: ")
    if result.written:
        after_write(app, config, push, f"change #{result.record['id']} (seed {result.seed})",
                    change_id=result.record["id"])
        if result.exit_code:
            app.reason = "unbalanced"
            if len(schedule or []) < 2:  # else the next gradual step rebalances anyway
                next_rebalance(app, result.outcomes)
    elif hooks.saves:
        app.remark(f"plan saved to {plan_out}: nothing was written; `ringmgr apply "
                   f"{plan_out}` installs exactly this result")
        app.add_next(app.cmd("apply", str(plan_out)))
    else:
        app.remark(f"dry run: nothing was written (seed {result.seed}; pass --seed "
                   f"{result.seed} to get exactly this result)")
        seeded = any(a == "--seed" or a.startswith("--seed=") for a in app.argv)
        app.add_next(app.rerun(add=() if seeded else ("--seed", str(result.seed))))
        app.emit({"host_steps": planned_push_steps(app, config, push, result.outcomes)})
    app.emit({**hooks.json(result), **(extra_json or {})})
    return result.exit_code


def planned_push_steps(app, config, push: bool | None, outcomes=None) -> list[dict]:
    """A dry run's ``host_steps``: the push a real run makes after writing (--push or
    [cluster].push: one node-script session per node and proxy), shown as text too;
    none without a push (a real run then changes the builders only)."""
    if not (push if push is not None else config.cluster.push):
        return []
    from ringmgr.exec import plan as hostplan
    from ringmgr.ops.push import planned_push

    changed = sorted(n for n, o in (outcomes or {}).items() if o.changed)
    hosts = sorted(config.hosts())
    app.remark(f"with the push: {', '.join(f'{n}.ring.gz' for n in changed) or 'the rings'} "
               f"would go to {len(hosts)} host(s): {', '.join(hosts) or 'none in the config'}")
    steps = planned_push(config) if hosts else []
    for line in hostplan.render_text(steps):
        app.out(line)
    return hostplan.to_json(steps)


def _measurer(app, config):
    """What each device holds, over SSH (``ringmgr.ops.usage``), for run_change."""
    def measure(builders):
        from ringmgr.ops.usage import measure_builders

        app.note("measuring what each device holds (du over SSH) ...")
        return measure_builders(config, builders)

    return measure


def next_rebalance(app, outcomes) -> None:
    """next[]: the rebalance that is due, not before the min_part_hours gate opens."""
    import time

    gates = [o.after.min_part_seconds_left for o in outcomes.values()
             if o.changed and (o.needs_more() or (o.removed_devs and o.gate_seconds_left))]
    if gates:
        app.add_next(app.cmd("rebalance"), time.time() + max(gates) if max(gates) else None)


def after_write(app, config, push: bool | None, what: str, change_id: int | None = None) -> None:
    """Say what was written, then push (--push or [cluster].push) or say how to."""
    app.remark(f"written: {what}; `ringmgr history` shows it, `ringmgr rollback` undoes it")
    if push if push is not None else config.cluster.push:
        push_after(app, config, change_id)
    else:
        app.remark("push the rings to the nodes with `ringmgr push`")
        app.add_next(app.cmd("push"))


def push_after(app, config, change_id: int | None = None):
    """Push after a written change (--push or [cluster].push), and record the push in
    the history."""
    from ringmgr.cli.history import record_push
    from ringmgr.errors import StepFailed
    from ringmgr.ops.push import push_rings

    if config.cluster.canary:
        from ringmgr.cli.push_canary import push_after_canary

        return push_after_canary(app, config, change_id)
    app.note("pushing the rings to every node and proxy ...")
    report = push_rings(config, transport=app.transport)
    record_push(config, report, change_id)
    app.out(report.render_table())
    app.emit({"push": report.to_json()})
    if not report.ok:
        raise StepFailed(f"the rings were written, but the push failed on "
                         f"{', '.join(report.failed)}; fix them and run "
                         f"`{report.retry_command()}`", next=[app.cmd(report.retry_command())])


def node_dev(spec: str):
    """NODE or NODE/DEV; 'NODE/' (an empty device name) is an error, not the node."""
    node, slash, dev = spec.partition("/")
    if slash and not dev:
        raise UsageError(f"{spec!r}: the device name after '/' is empty (NODE for every "
                         f"device of the node, NODE/DEV for one)")
    if not node:
        raise UsageError(f"{spec!r}: the node name is empty")
    return node, (dev or None)


class SimulationHooks:
    """Called by ``service.run_change`` right after the simulation (``after_simulation``):
    draws the chart and saves the plan.  ``saves`` tells the caller to write nothing."""

    def __init__(self, app, config, *, plan_out=None, chart=None, schedule=None,
                 force=False, brief=False, rings=None):
        from ringmgr.rings.files import check_output

        self.app = app
        self.brief = brief
        self.config = config
        self.plan_out = plan_out
        self.chart = chart
        self.force = force
        self.protected = protected_paths(config)
        self.schedule = schedule or []
        self.saves = plan_out is not None
        self.base_md5 = {}
        # refuse a bad output path before the (possibly long) simulation
        for option, path in (("--plan-out", plan_out), ("--chart", chart)):
            if path is not None:
                check_output(path, force=force, option=option, protected=self.protected)
        if self.saves:
            from ringmgr.rings.plan import builder_md5s
            from ringmgr.rings.store import RingStore

            # before loading; ``rings``: the rings a create makes (none exist yet)
            self.base_md5 = builder_md5s(RingStore.from_config(config), rings)

    def __call__(self, result) -> None:
        if self.brief:
            from ringmgr.rings.report import render_brief

            self.app.out(render_brief(result.reports).rstrip("\n"))
        if self.chart:
            draw_chart(self.app, result.reports, self.chart, force=self.force,
                       protected=self.protected)
        if self.saves:
            from ringmgr.rings.plan import Plan, plan_key_for_saving
            from ringmgr.rings.store import RingStore

            store = RingStore.from_config(self.config)
            plan = Plan.from_result(self.base_md5, result, argv_of(self.app), self.schedule,
                                    load=store.load)
            plan.save(self.plan_out, lambda: plan_key_for_saving(store.state_dir),
                      force=self.force, protected=self.protected)

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


def argv_of(app) -> list[str]:
    import sys

    return list(getattr(app, "argv", None) or ["ringmgr", *sys.argv[1:]])


def protected_paths(config) -> tuple:
    """Files an output option must never replace: the config and ringmgr's own state."""
    from pathlib import Path

    d = Path(config.cluster.builder_dir)
    paths = [d / ".ringmgr", d / "backups", d / ".lock"]
    if getattr(config, "path", None):
        paths.append(Path(config.path))
    return tuple(paths)


def draw_chart(app, reports: dict, path, *, force: bool = False, protected=()) -> None:
    """matplotlib PNG at ``path``; without matplotlib, bars on the terminal."""
    from ringmgr.rings.chart import chart_png, render_bars
    from ringmgr.rings.files import write_output

    png = chart_png(reports)
    if png is not None:
        write_output(path, png, force=force, option="--chart", protected=protected)
    if png is None:
        app.note("note: matplotlib is not installed (pip install 'ringmgr[chart]'); "
                 "terminal bars instead of " + str(path))
        app.out(render_bars(reports))
    else:
        app.remark(f"chart written to {path}")
