"""Ring commands: status, remove-node, remove-device, set-weight, add-node, rebalance,
write-rings, rollback, resume (history: ``ringmgr.cli.history``).

Thin: parse, call ``ringmgr.rings.service`` through ``cli.ringflow``, print.  Heavy
imports stay inside the functions so that ``ringmgr --help`` is fast.
"""

from __future__ import annotations

import click

from ringmgr.cli.app import App, json_option
from ringmgr.cli.replication import gate_options
from ringmgr.cli.ringflow import change_options, node_dev, run_ring_change
from ringmgr.errors import UsageError


def register(group: click.Group) -> None:
    @group.command("status")
    @json_option
    def status():
        """Every ring: parts, replicas, devices, balance, dispersion, min_part_hours left,
        ring.gz up to date; devices grouped by node."""
        from ringmgr.rings.status import ring_status, render_status

        app = App.current()
        data = ring_status(app.config)
        _config_sync_status(app.config, data)
        app.out(render_status(data))
        _part_power_status(app)
        app.emit(data)
        if data["exit_code"]:
            app.reason = "check_failed"
            if data.get("pending_change") or data.get("config_update_interrupted"):
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
        return run_ring_change(lambda b: plan_remove(b, n), **kw)

    @group.command("remove-device")
    @click.argument("node")
    @click.argument("device")
    @change_options
    def remove_device(node, device, **kw):
        """Remove DEVICE of NODE from every ring and rebalance."""
        from ringmgr.rings.engine import plan_remove

        n = App.current().config.node(node)
        return run_ring_change(lambda b: plan_remove(b, n, device), **kw)

    @group.command("set-weight", context_settings={"ignore_unknown_options": True})
    @click.argument("target", metavar="NODE[/DEV]")
    @click.argument("weight")
    @change_options
    def set_weight(target, weight, **kw):
        """Set the weight of NODE's devices (or one device) in every ring and rebalance."""
        from ringmgr.rings.engine import plan_set_weight
        from ringmgr.rings.weights import check_weight

        name, dev = node_dev(target)
        w = check_weight(weight)
        n = App.current().config.node(name)
        force = kw.get("force", False)
        return run_ring_change(lambda b: plan_set_weight(b, n, dev, w, force=force), **kw)

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
        return run_ring_change(lambda b: plan_add_node(b, n, config.cluster.port_for), **kw)

    @group.command("rebalance")
    @change_options
    def rebalance(**kw):
        """Rebalance every ring (what `swift-ring-builder X rebalance` does, for all X,
        with its rule: a ring is saved only if partitions moved or devices were removed,
        and then only if a device changed or balance or dispersion changed by 1 or more;
        --force saves anyway)."""
        from ringmgr.rings.engine import plan_rebalance

        force = kw.get("force", False)
        return run_ring_change(lambda b: plan_rebalance(b, force=force), **kw)

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
        if app.config.converge is not None:  # the config is the desired state
            app.warn(f"[converge] is configured and {app.config.path} was not rolled back: "
                     f"the next `ringmgr converge` moves the rings towards it again; "
                     f"`ringmgr plan` shows the differences (edit the config, or set "
                     f"[converge].pause_file meanwhile)")
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
        from ringmgr.config_sync_marker import recover_sync
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
                synced = recover_sync(config)
            if synced:
                msg = f"{msg}; {synced}" if msg else synced
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


def _config_sync_status(config, data: dict) -> None:
    """An interrupted [converge] config edit is a half-state: status names it."""
    from ringmgr.config_sync_marker import interrupted_sync, sync_problem
    from ringmgr.errors import EXIT_WARNING

    info = interrupted_sync(config)
    if info is None:
        return
    data["problems"].append(sync_problem(info))
    data["config_update_interrupted"] = {k: info.get(k) for k in
                                         ("path", "change_id", "state", "time")}
    data["exit_code"] = max(data["exit_code"], EXIT_WARNING)


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
            if key == "increase-part-power":
                from ringmgr.ops.partpower_journal import half_state

                pending = [half_state(config, data)]
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
    from ringmgr.ops.partpower_journal import half_state

    done = [k for k, v in journal.get("steps", {}).items() if v.get("state") == "done"]
    app.remark(f"partition-power increase {journal.get('params', {}).get('op_id')} in "
               f"progress (done: {', '.join(done) or 'nothing yet'}; "
               f"{half_state(app.config, journal)}): "
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
