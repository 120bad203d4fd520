"""push and verify: distribute the admin host's rings to the nodes, and check them."""

from __future__ import annotations

import shlex

import click

from ringmgr.cli.app import json_option, pass_app


def register(group: click.Group) -> None:
    group.add_command(push)
    group.add_command(verify)


_host_keys = click.option("--accept-new-host-keys", is_flag=True,
                          help="add unknown host keys to known_hosts (changed keys still fail)")


@click.command()
@click.argument("nodes", nargs=-1, metavar="[NODE]...")
@click.option("--dry-run", is_flag=True, help="connect and show what would go where; change nothing")
@click.option("--force", is_flag=True, help="replace a node's ring even if its version is newer")
@click.option("--yes", is_flag=True, help="no confirmation prompt (only --force asks)")
@click.option("--canary", type=click.IntRange(0), default=None, metavar="N",
              help="push to N hosts first (a proxy among them), prove they use the new "
                   "rings, then the rest in waves (default [cluster].canary; 0: all at once)")
@_host_keys
@json_option
@pass_app
def push(app, nodes, dry_run, force, yes, accept_new_host_keys, canary):
    """Send the admin host's *.ring.gz to every node and proxy (or the NODEs named).

    Skips rings a node already has (same md5); uploads to a temp name, checks the md5
    on the node, fsyncs and renames atomically; never replaces a newer ring without
    --force.  Replaces the operations guide's `scp *.ring.gz` loop.
    """
    from ringmgr.errors import StepFailed
    from ringmgr.ops.push import push_rings

    if force and not dry_run:
        app.confirm("--force replaces rings on the nodes even where theirs are newer "
                    "(an older ring sends data to old locations). Continue?", yes)
    canary = app.config.cluster.canary if canary is None else canary
    if canary:
        from ringmgr.cli.push_canary import run_canary

        return run_canary(app, nodes, canary, force=force, accept_new=accept_new_host_keys,
                          dry_run=dry_run, progress=_progress(app, "push"))
    report = push_rings(app.config, list(nodes), force=force,
                        accept_new_host_keys=accept_new_host_keys, dry_run=dry_run,
                        progress=_progress(app, "push"), transport=app.transport)
    from ringmgr.cli.history import record_push

    app.written = report.written
    record_push(app.config, report)
    app.out(report.render_table())
    app.emit(report.to_json())
    if report.failed:
        raise StepFailed(f"push failed on {len(report.failed)} of {len(report.results)} "
                         f"node(s): {', '.join(report.failed)}; fix the cause and retry "
                         f"with: {report.retry_command()}", next=[app.cmd(report.retry_command())])
    if dry_run:
        if not any(r.planned for r in report.results):
            app.reason = "nothing_to_do"
        else:
            app.add_next(app.rerun())
    else:
        n = sum(1 for r in report.results if r.updated)
        app.remark(f"pushed: {n} node(s) updated, {len(report.results) - n} already current "
                   f"({report.seconds:.2f}s)")
        if not n:
            app.reason = "nothing_to_do"
    return 0


@click.command()
@click.argument("nodes", nargs=-1, metavar="[NODE]...")
@click.option("--live", is_flag=True, help="also compare the ring md5s each server's recon "
                                           "reports (swift-recon --md5)")
@_host_keys
@json_option
@pass_app
def verify(app, nodes, accept_new_host_keys, live):
    """Compare every node's ring md5s with the admin host's (swift-recon --md5 without
    the recon middleware): stale, newer, missing, corrupt and extra rings per node.

    Exit 0 if all match, 1 if any differ, 2 if a node could not be checked.
    """
    from ringmgr.errors import NotYet, StepFailed
    from ringmgr.ops.push import verify_rings

    report = verify_rings(app.config, list(nodes), accept_new_host_keys=accept_new_host_keys,
                          progress=_progress(app, "verify"), transport=app.transport)
    app.out(report.render_table())
    app.emit(report.to_json())
    if live:
        from ringmgr.cli.push_canary import report_live, verify_live

        report_live(app, verify_live(app, nodes), check=not (report.failed or report.differ))
    if report.failed:
        raise StepFailed(f"could not verify {', '.join(report.failed)}; retry with: "
                         f"{report.retry_command()}", next=[app.cmd(report.retry_command())])
    if report.differ:
        fix = shlex.join(["ringmgr", "push", *report.differ])
        raise NotYet(f"rings differ on {', '.join(report.differ)}: run `{fix}`",
                     reason="check_failed", next=[app.cmd(fix)])
    app.remark(f"all {len(report.results)} node(s) have the admin host's rings")
    return 0


def _progress(app, kind):
    def show(res):
        if res.error:
            state = f"FAILED: {res.error}"
        elif kind == "verify":
            bad = {n: s for n, s in res.verify.items() if s != "ok"}
            state = "ok" if not bad else ", ".join(f"{n} {s}" for n, s in bad.items())
        else:
            state = f"{len(res.updated or res.planned)} to update" if not res.updated and \
                res.planned else f"{len(res.updated)} updated, {len(res.unchanged)} unchanged"
            if res.refused:
                state += f", REFUSED: {'; '.join(res.refused.values())}"
        app.note(f"  {res.node} ({res.address}) {state} [{res.seconds:.2f}s]")
    return show
