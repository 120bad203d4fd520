"""Node-level ring operations: shutdown-node (out for days) and rejoin-node (back with
exactly the device options it had)."""

from __future__ import annotations

import click

from ringmgr.cli.app import App, json_option
from ringmgr.cli.replication import gate_options
from ringmgr.cli.rings import _run, change_options
from ringmgr.cli.risk import down_option, quorum_option
from ringmgr.errors import Refused


def register(group: click.Group) -> None:
    @group.command("shutdown-node")
    @click.argument("node")
    @down_option
    @quorum_option
    @change_options
    def shutdown_node(node, down, quorum, **kw):
        """Take NODE out for days: check it is safe to stop (ok-to-stop, shown also in a
        dry run), then remove its devices from every ring (--force: even when stopping
        it leaves partitions short of quorum).  The history keeps their full
        definitions, so `ringmgr rejoin-node NODE` brings them back exactly as they
        were."""
        return _shutdown(node, down, quorum, **kw)

    def _shutdown(node, down, quorum, *, force=False, **kw):
        from ringmgr.cli.risk import ok_to_stop_check
        from ringmgr.rings.engine import plan_remove
        from ringmgr.rings.risk import render_ok_to_stop

        app = App.current()
        config = app.config
        n = config.node(node)
        check = ok_to_stop_check(config, node, down, quorum=quorum, note=app.note)
        app.out(render_ok_to_stop(check, [node]).rstrip("\n"))
        if not check["ok"] and not force:
            raise Refused(f"stopping {node} now would leave partitions short of a write quorum "
                          f"or unreadable (see `ringmgr ok-to-stop {node}`); bring the other "
                          f"nodes back first, or pass --force")
        if not check["ok"]:
            app.note(f"warning: --force: shutting down {node} although it is not safe to stop")

        def planner(builders):
            cs = plan_remove(builders, n)
            cs.description = (f"shut down {node}: remove it from every ring "
                              f"(`ringmgr rejoin-node {node}` brings it back)")
            return cs

        verdict = {k: v for k, v in check.items() if k != "written"}
        return _run(planner, force=force, extra_json={"ok_to_stop": verdict}, **kw)

    @group.command("rejoin-node")
    @click.argument("node")
    @click.option("--config-weights", is_flag=True,
                  help="weights from the config instead of those the node had before it "
                       "was drained or removed")
    @click.option("--max-move", "max_move", type=float, default=None, metavar="PCT",
                  help="ramp up gradually, as add-node --max-move: no step moves more "
                       "than PCT of any ring's replica assignments")
    @gate_options
    @change_options
    def rejoin_node(node, config_weights, max_move, **kw):
        """Bring NODE back after shutdown-node, remove-node or drain-node, with exactly
        the device options it had (from the history, not the config), at the weights
        it had before a drain began (or the config's, --config-weights), and rebalance."""
        from ringmgr.rings.engine import plan_rejoin
        from ringmgr.rings.store import RingStore

        app = App.current()
        config = app.config
        n = config.node(node)
        store = RingStore.from_config(config)
        history = store.history()
        load_backup = _backup_loader(store)
        facts = {}  # filled when planned, emitted with the report

        def planner(builders):
            cs = plan_rejoin(builders, n, history, config_weights=config_weights,
                             load_backup=load_backup)
            info = cs.info["rejoin"]
            app.note(f"weights: {info['weights_source']}")
            facts.update(weights_from=info["weights_from"],
                         weights_source=info["weights_source"], weights=info["weights"])
            return cs

        from ringmgr.cli.replication import pop_gate

        gate = pop_gate(kw)
        if max_move is not None:
            from ringmgr.cli.plans import run_gradual

            return run_gradual("ramp", node, max_move, command="rejoin-node",
                               rejoin=planner, gate=gate, **kw)
        return _run(planner, extra_json=facts, **kw)

    @group.command("reboot-node")
    @click.argument("node")
    @click.option("--force", is_flag=True,
                  help="reboot even when stopping NODE leaves partitions short of quorum")
    @click.option("--timeout", type=float, default=900.0, show_default=True,
                  help="seconds to wait for NODE to come back")
    @click.option("--dry-run", is_flag=True,
                  help="check (ok-to-stop) and show the command; reboot nothing")
    @click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
    @down_option
    @quorum_option
    @json_option
    def reboot_node(node, force, timeout, dry_run, yes, down, quorum):
        """Reboot NODE after an ok-to-stop check, wait for it to come back, then check its
        disks are mounted and its rings match (the operations guide's "Rebooting a
        Storage Node")."""
        from ringmgr.errors import EXIT_OK, EXIT_WARNING
        from ringmgr.ops.reboot import reboot_node as do, render

        app = App.current()
        report = do(app.config, node, force=force, dry_run=dry_run, timeout=timeout,
                    confirm=lambda q: app.confirm(q, yes), echo=app.note, quorum=quorum,
                    down=down)
        app.written = not dry_run
        app.out(render(report))
        app.emit(report.to_json())
        return EXIT_OK if report.ok else EXIT_WARNING


def _backup_loader(store):
    """(history entry, ring) -> the builder as it was before that change (its backup)."""
    def load(entry, ring):
        from ringmgr.rings.history import _load_backup

        r = entry["rings"][ring]
        return _load_backup(store, r["backup_builder"], r.get("builder_md5_before"))

    return load
