"""replace-disk --weight-zero: the ring change while the disk is out, and its push.

A weight written to the builders does nothing until the nodes have the rings: so
right where the ring changed, the rings are pushed (``--push`` or ``[cluster].push``),
or the run says prominently that a push is due (``ctx.push_due``, printed last and in
the JSON ``next``).  Both weight changes go through ``set_weight_all_rings`` (the
ring commands' simulation, lock, history and backups) with its own push turned off,
so that the push is this module's to report.

After the restore, the refill report is about the restored ring: the partitions the
device holds again and the replica moves that took, not the precheck's zero.
"""

from __future__ import annotations

from ringmgr.errors import NotYet, RingmgrError, StepFailed
from ringmgr.exec.runner import StopRun


def set_weight(config, node, dev: str, weight: float, **kw):
    """The ring commands' weight change on every ring (simulation, lock, history)."""
    from ringmgr.ops.weight_change import set_weight_all_rings

    return set_weight_all_rings(config, node, dev, weight, **kw)


def push_wanted(ctx) -> bool:
    push = getattr(ctx.opts, "push", None)
    return bool(ctx.config.cluster.push if push is None else push)


def _set_weight(ctx, weight: float):
    return set_weight(ctx.config, ctx.node, ctx.dev, weight, yes=True, dry_run=ctx.dry_run,
                        show=ctx.echo, push=False,
                        argv=["ringmgr", "replace-disk", ctx.node.name, ctx.dev,
                              "--weight-zero"])


def push_note(written: bool, push: bool, dry_run: bool) -> str:
    """Pure: what to tell the operator about distributing a weight change (drive-audit
    --act, whose ring change pushes by itself when ``[cluster].push`` is set)."""
    if dry_run:
        return ("a real run pushes the changed rings to every node ([cluster].push)" if push
                else "a real run changes the rings; push them then: ringmgr push")
    if not written:
        return "the rings were already right: nothing to push"
    if push:
        return ("[cluster].push is set: the push above sent the changed rings to every node "
                "(a host it could not reach is named there, with the command to retry)")
    return "push the changed rings to every node: ringmgr push"


def push_due_text(what: str, failed: list[str] | None = None, retry: str | None = None) -> str:
    """Pure: the prominent line for a ring change the nodes do not have yet."""
    if failed:
        return (f"PUSH DUE: {what} is written, but the push failed on {', '.join(failed)}: "
                f"run `{retry or 'ringmgr push'}` now")
    return (f"PUSH DUE: {what} is written to the builders, not yet on the nodes: run "
            f"`ringmgr push` now (or pass --push next time)")


def push_or_say(ctx, result, what: str) -> None:
    """Right after a ring change: push it, or record (and say) that a push is due."""
    written = bool(getattr(result, "written", False))
    if ctx.dry_run:
        ctx.echo("  " + ("a real run pushes the changed rings to every node right here "
                         "(--push / [cluster].push)" if push_wanted(ctx) else
                         "a real run changes the rings here; they must then be pushed "
                         "(ringmgr push), or pass --push"))
        if push_wanted(ctx):
            plan_push(ctx)
        return
    if not written and not ctx.params.get("push_pending"):
        return
    if not push_wanted(ctx):
        due = push_due_text(what)
    else:
        from ringmgr.ops.push import push_rings

        ctx.echo("  pushing the changed rings to every node and proxy ...")
        try:
            report = push_rings(ctx.config, transport=ctx.transport)
            ctx.echo(report.render_table())
            failed, retry = ([] if report.ok else report.failed), report.retry_command()
        except RingmgrError as e:
            failed, retry = [f"every node ({e})"], "ringmgr push"
        if not failed:
            ctx.params.pop("push_pending", None)
            ctx.pushed.append(what)
            ctx.echo(f"  pushed: {what}; the nodes have the changed rings")
            return
        ctx.params["push_pending"] = True
        due = push_due_text(what, failed, retry)
    ctx.push_due.append(due)
    ctx.echo(f"  {due}")


def plan_push(ctx) -> None:
    """A dry run's host steps for the push a real run makes right here: one session
    per node and proxy, in the current step."""
    from ringmgr.exec import plan as hostplan
    from ringmgr.ops.push import planned_push

    planned = getattr(ctx.ex, "plan", None)
    if planned is None:
        return
    for s in planned_push(ctx.config):
        planned.append(hostplan.planned(s.host, s.argv))


def weight_zero(ctx):
    try:
        result = _set_weight(ctx, 0.0)
    except NotYet as e:
        ctx.warn(f"weight not set to 0 ({e}); continuing without the ring change")
        return
    if not ctx.dry_run:
        ctx.params["weight_zeroed"] = True
    push_or_say(ctx, result, f"weight 0 for {ctx.node.name}/{ctx.dev} on every ring")


def weight_restore_check(ctx):
    if not ctx.params.get("weight_zeroed") and not ctx.dry_run:
        return "the weight was never set to 0"
    return None


def weight_restore(ctx):
    from ringmgr.rings.devices import ring_devices

    weights = {r["weight"] for r in ctx.params.get("weights", {}).values()}
    if len(weights) != 1:
        raise StepFailed(f"the weights before were {sorted(weights)} (they differ per ring): "
                         f"restore each ring's weight with `ringmgr set-weight`")
    weight = weights.pop()
    try:
        result = _set_weight(ctx, weight)
    except NotYet as e:
        raise StopRun(f"the weight of {ctx.dev} cannot be restored to {weight:g} yet ({e}); "
                      f"run this command again later: the run continues there")
    if not ctx.dry_run:
        ctx.params["weight_restored"] = True
        moved = {ring: int(rep.get("parts_moved", 0))
                 for ring, rep in (getattr(result, "reports", None) or {}).items()
                 if getattr(result, "written", False)}
        ctx.findings["weight_restore"] = {"weight": weight, "moves": moved}
        ctx.findings["rings"] = ring_devices(ctx.config, ctx.node, ctx.dev).get(ctx.dev, {})
    push_or_say(ctx, result, f"weight {weight:g} for {ctx.node.name}/{ctx.dev} on every ring")


def refill_report(ctx) -> list[str]:
    """What replication will refill, and how to watch it (true after a restore too)."""
    name = f"{ctx.node.name}/{ctx.dev}"
    lines = [f"replication will refill {d['parts']} partitions of the {ring} ring onto {name}"
             for ring, d in ctx.findings.get("rings", {}).items()]
    lines.append("watch it with: swift-recon --replication (time of the last pass), "
                 "swift-recon --diskusage (the new disk filling), and the replicator logs "
                 f"on {ctx.node.name}")
    restore = ctx.findings.get("weight_restore")
    if restore:
        moves = restore["moves"]
        what = ", ".join(f"{r} {n}" for r, n in sorted(moves.items())) or "none"
        lines.append(f"the weight restore ({restore['weight']:g}) gave {name} its partitions "
                     f"back: {sum(moves.values())} replica moves ({what}); replication "
                     + ("fills them now that the rings are pushed" if not ctx.push_due else
                        "fills them only once the rings are pushed"))
    elif ctx.params.get("weight_restored"):
        lines.append(f"an earlier run restored {name}'s weight; replication fills its "
                     f"partitions once the nodes have those rings (ringmgr verify)")
    else:
        lines.append("swift's replicators and ssync push the missing partitions from the "
                     "other replicas; no ring change is needed for a same-size swap")
    return lines
