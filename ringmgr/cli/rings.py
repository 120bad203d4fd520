"""Ring commands: status, remove-node, remove-device, set-weight, add-node, rebalance,
write-rings, rollback, resume (history: ``ringmgr.cli.history``).

Thin: parse, call ``ringmgr.rings.service``, print.  Heavy imports stay inside the
functions so that ``ringmgr --help`` is fast.
"""

from __future__ import annotations

import functools

import click

from ringmgr.cli.app import App, json_option
from ringmgr.cli.replication import gate_options
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
    @json_option
    @functools.wraps(f)
    def wrapper(*a, **kw):
        return f(*a, **kw)

    return wrapper


def _used_bytes(values) -> dict[str, float]:
    from ringmgr.rings.files import is_ring_name
    from ringmgr.rings.weights import check_used_bytes

    out = {}
    for v in values:
        ring, eq, n = v.partition("=")
        if not eq or not is_ring_name(ring):
            raise UsageError(f"--used-bytes {v!r}: expected RING=BYTES, e.g. object=1.2e15")
        out[ring] = check_used_bytes(ring, n)
    return out


def _run(planner, *, dry_run, yes, seed, push, used_bytes, plan_out=None, chart=None,
         schedule=None, force=False, extra_json=None, brief=False, load=None):
    from ringmgr.cli.plans import SimulationHooks
    from ringmgr.rings.service import progress_printer, run_change

    app = App.current()
    config = app.config
    hooks = SimulationHooks(app, config, plan_out=plan_out, chart=chart, schedule=schedule,
                            force=force, brief=brief, rings=getattr(load, "rings", None))
    result = run_change(
        config, planner, argv=App.current().argv, seed=seed,
        dry_run=dry_run or hooks.saves, validate=hooks.saves or not dry_run,
        confirm=lambda q: app.confirm(q, yes), show=(lambda text: None) if brief else app.out,
        used_bytes=_used_bytes(used_bytes), progress=progress_printer(),
        after_simulation=hooks, load=load)
    app.written = result.written
    for m in result.messages:
        app.warn(m, prefix="note: ")
    if result.written:
        after_write(app, config, push, f"change #{result.record['id']} (seed {result.seed})",
                    change_id=result.record["id"])
        if result.exit_code:
            app.reason = "unbalanced"
            if len(schedule or []) < 2:  # else the next gradual step rebalances anyway
                _next_rebalance(app, result.outcomes)
    elif hooks.saves:
        app.remark(f"plan saved to {plan_out}: nothing was written; `ringmgr apply "
                   f"{plan_out}` installs exactly this result")
        app.add_next(app.cmd("apply", str(plan_out)))
    else:
        app.remark(f"dry run: nothing was written (seed {result.seed}; pass --seed "
                   f"{result.seed} to get exactly this result)")
        seeded = any(a == "--seed" or a.startswith("--seed=") for a in app.argv)
        app.add_next(app.rerun(add=() if seeded else ("--seed", str(result.seed))))
        if push if push is not None else config.cluster.push:
            changed = sorted(n for n, o in result.outcomes.items() if o.changed)
            hosts = sorted(config.hosts())
            app.remark(f"with the push: {', '.join(f'{n}.ring.gz' for n in changed)} would go "
                       f"to {len(hosts)} host(s): {', '.join(hosts) or 'none in the config'}")
    app.emit({**hooks.json(result), **(extra_json or {})})
    return result.exit_code


def _next_rebalance(app, outcomes) -> None:
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
        _push_after(app, config, change_id)
    else:
        app.remark("push the rings to the nodes with `ringmgr push`")
        app.add_next(app.cmd("push"))


def _push_after(app, config, change_id: int | None = None):
    """Push after a written change (--push or [cluster].push), and record the push in
    the history."""
    from ringmgr.cli.history import record_push
    from ringmgr.errors import StepFailed
    from ringmgr.ops.push import push_rings

    app.note("pushing the rings to every node and proxy ...")
    report = push_rings(config)
    record_push(config, report, change_id)
    app.out(report.render_table())
    app.emit({"push": report.to_json()})
    if not report.ok:
        raise StepFailed(f"the rings were written, but the push failed on "
                         f"{', '.join(report.failed)}; fix them and run "
                         f"`{report.retry_command()}`", next=[app.cmd(report.retry_command())])


def _node_dev(spec: str):
    """NODE or NODE/DEV; 'NODE/' (an empty device name) is an error, not the node."""
    node, slash, dev = spec.partition("/")
    if slash and not dev:
        raise UsageError(f"{spec!r}: the device name after '/' is empty (NODE for every "
                         f"device of the node, NODE/DEV for one)")
    if not node:
        raise UsageError(f"{spec!r}: the node name is empty")
    return node, (dev or None)


def register(group: click.Group) -> None:
    @group.command("status")
    @json_option
    def status():
        """Every ring: parts, replicas, devices, balance, dispersion, min_part_hours left,
        ring.gz up to date; devices grouped by node."""
        from ringmgr.rings.status import ring_status, render_status

        app = App.current()
        data = ring_status(app.config)
        app.out(render_status(data))
        _part_power_status(app)
        app.emit(data)
        if data["exit_code"]:
            app.reason = "check_failed"
            if data.get("pending_change"):
                app.add_next(app.cmd("resume"))
            if any(p.endswith(("missing", "stale", "corrupt")) for p in data["problems"]):
                app.add_next(app.cmd("write-rings"))
        return data["exit_code"]

    @group.command("remove-node")
    @click.argument("node")
    @change_options
    def remove_node(node, **kw):
        """Remove all of NODE's devices from every ring and rebalance (the operations
        guide's "shutting down a storage node"; for a gradual exit use drain-node)."""
        from ringmgr.rings.engine import plan_remove

        n = App.current().config.node(node)
        return _run(lambda b: plan_remove(b, n), **kw)

    @group.command("remove-device")
    @click.argument("node")
    @click.argument("device")
    @change_options
    def remove_device(node, device, **kw):
        """Remove DEVICE of NODE from every ring and rebalance."""
        from ringmgr.rings.engine import plan_remove

        n = App.current().config.node(node)
        return _run(lambda b: plan_remove(b, n, device), **kw)

    @group.command("set-weight", context_settings={"ignore_unknown_options": True})
    @click.argument("target", metavar="NODE[/DEV]")
    @click.argument("weight")
    @change_options
    def set_weight(target, weight, **kw):
        """Set the weight of NODE's devices (or one device) in every ring and rebalance."""
        from ringmgr.rings.engine import plan_set_weight
        from ringmgr.rings.weights import check_weight

        name, dev = _node_dev(target)
        w = check_weight(weight)
        n = App.current().config.node(name)
        force = kw.get("force", False)
        return _run(lambda b: plan_set_weight(b, n, dev, w, force=force), **kw)

    @group.command("add-node")
    @click.argument("node")
    @click.option("--max-move", "max_move", type=float, default=None, metavar="PCT",
                  help="ramp up gradually: add at a low weight, so that no step moves more "
                       "than PCT of any ring's replica assignments")
    @gate_options
    @change_options
    def add_node(node, max_move=None, **kw):
        """Add NODE's devices from the config to every ring (port per ring) and rebalance.
        With --max-move, each later step waits for a replication pass after the last
        push (recon)."""
        from ringmgr.cli.replication import pop_gate
        from ringmgr.rings.engine import plan_add_node

        gate = pop_gate(kw)
        if max_move is not None:
            from ringmgr.cli.plans import run_gradual

            return run_gradual("ramp", node, max_move, gate=gate, **kw)
        config = App.current().config
        n = config.node(node)
        return _run(lambda b: plan_add_node(b, n, config.cluster.port_for), **kw)

    @group.command("rebalance")
    @change_options
    def rebalance(**kw):
        """Rebalance every ring (what `swift-ring-builder X rebalance` does, for all X,
        with its rule: a ring is saved only if partitions moved or devices were removed,
        and then only if a device changed or balance or dispersion changed by 1 or more;
        --force saves anyway)."""
        from ringmgr.rings.engine import plan_rebalance

        force = kw.get("force", False)
        return _run(lambda b: plan_rebalance(b, force=force), **kw)

    @group.command("write-rings")
    @click.option("--dry-run", is_flag=True, help="show which ring files would be written")
    @click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
    @json_option
    def write_rings(dry_run, yes):
        """Write every missing, corrupt or stale *.ring.gz from its builder."""
        from ringmgr.rings.history import write_rings as do

        app = App.current()
        data = do(app.config, confirm=lambda q: app.confirm(q, yes), show=app.out,
                  argv=App.current().argv, dry_run=dry_run)
        app.written = data["written"]
        app.emit(data)
        app.add_next(app.rerun() if dry_run else app.cmd("push"))
        return 0

    @group.command("rollback")
    @click.option("--to", "to_id", type=int, default=None,
                  help="restore the rings as they were right after change ID "
                       "(default: undo the latest change)")
    @click.option("--dry-run", is_flag=True, help="show what would be restored; write nothing")
    @click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
    @json_option
    def rollback(to_id, dry_run, yes):
        """Go back to an earlier builder+ring set, written as a new change with a higher
        version (so that a push accepts it)."""
        from ringmgr.rings.history import rollback as do

        app = App.current()
        data = do(app.config, to_id, dry_run=dry_run,
                  confirm=lambda q: app.confirm(q, yes), show=app.out,
                  argv=App.current().argv)
        app.written = data["written"]
        app.emit(data)
        app.add_next(app.rerun() if dry_run else app.cmd("push"))
        return 0

    @group.command("resume")
    @click.argument("operation", required=False)
    @click.option("--discard", is_flag=True,
                  help="drop the pending ring change instead of finishing it (its staged "
                       "files are kept in .ringmgr/set-aside/); the files on disk stand")
    @click.option("--force", is_flag=True,
                  help="finish the pending change even over a builder or ring edited "
                       "meanwhile (the edited file is backed up first)")
    @json_option
    def resume(operation, discard, force):
        """Finish (or undo) an interrupted ring change, and list the host operations in
        progress (replace-disk, runbooks) with the command that continues each."""
        from ringmgr.rings.store import RingStore

        app = App.current()
        config = app.config
        ops = operations_in_progress(config)
        if operation not in (None, "rings") and operation not in ops:
            known = ", ".join(["rings", *ops]) or "rings"
            raise UsageError(f"no operation {operation!r} in progress (in progress: {known})")
        msg = None
        if operation in (None, "rings"):
            store = RingStore.from_config(config)
            with store.lock():
                msg = store.recover(discard=discard, force=force)
            app.written = msg is not None
            app.out(msg or "no interrupted ring change")
        shown = {k: v for k, v in ops.items() if operation in (None, k)}
        for key, op in shown.items():
            app.out(f"in progress: {key} (started {op['created']}, next step: "
                    f"{op['next'] or '?'}); continue it with: {op['command']}")
        for op in shown.values():
            if op["command"].startswith("ringmgr ") and "`" not in op["command"]:
                app.add_next(app.cmd(op["command"]))
        if msg is None and not shown:
            app.reason = "nothing_to_do"
        app.emit({"written": msg is not None, "message": msg or "nothing to do",
                  "operations": shown})
        return 0


def operations_in_progress(config) -> dict[str, dict]:
    """Host operations with an unfinished run journal: key -> created, next step, and the
    command that continues it (running the original command again does the same)."""
    import json as _json

    from ringmgr.exec.runner import cluster_state_dir, default_state_dir

    out: dict[str, dict] = {}
    for d in dict.fromkeys([cluster_state_dir(config), default_state_dir()]):
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.json")):
            try:
                data = _json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            key = data.get("key")
            if not key or data.get("finished") or path.name != f"{key}.json":
                continue
            steps = data.get("steps", {})
            pending = [n for n, st in steps.items()
                       if (st.get("state") if isinstance(st, dict) else st) not in
                       ("done", "skipped")]
            out[key] = {"created": data.get("created", "?"),
                        "next": pending[0] if pending else None,
                        "command": _continue_command(key)}
    return out


def _part_power_status(app) -> None:
    """A partition-power increase in progress: its phase and the command that goes on."""
    from ringmgr.ops.partpower import read_journal

    try:
        journal = read_journal(app.config)
    except Exception:  # noqa: BLE001 - status shows the rings whatever the journal is
        return
    if not journal:
        return
    done = [k for k, v in journal.get("steps", {}).items() if v.get("state") == "done"]
    app.remark(f"partition-power increase {journal.get('params', {}).get('op_id')} in "
               f"progress (done: {', '.join(done) or 'nothing yet'}): "
               f"`ringmgr increase-part-power --status` shows it")
    app.add_next(app.cmd("increase-part-power", "--status"))


def _continue_command(key: str) -> str:
    if key == "increase-part-power":
        return "ringmgr increase-part-power --yes"
    kind, _, rest = key.partition(".")
    if kind == "replace-disk":
        node, _, dev = rest.partition(".")
        return f"ringmgr replace-disk {node} {dev} --resume"
    return f"the original `ringmgr ... {kind}` command with --resume"
