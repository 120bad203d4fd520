"""Total compute node failure ("Total Compute Node Failure"): nova's ``server
evacuate``, or the guide's SQL way (``sqlrecover``), then hard reboots and volume
reattach."""

from __future__ import annotations

from pathlib import Path

from ringmgr.errors import Refused, UsageError
from ringmgr.exec.runner import Step
from ringmgr.ops.runbooks.common import RunbookContext, server_or_none, wait_for

def recover_precheck(ctx: RunbookContext, failed: str) -> Step:
    def check(c):
        svc = c.api.compute_service(failed)
        if svc.up and not svc.forced_down:
            raise Refused(f"{failed}: nova-compute is reported up; recover-host is for a "
                          f"dead host (for maintenance use: ringmgr compute evacuate "
                          f"{failed} --to TARGET)")
        return None

    return Step("failed-host-down", f"{failed}: nova-compute reported down",
                action=lambda c: None, check=check)


def recover_evacuate_steps(ctx: RunbookContext, failed: str, target: str,
                           instances: list[str]) -> list[Step]:
    def check_down(c):
        svc = c.api.compute_service(failed)
        if svc.forced_down and not svc.enabled:
            return "already forced down and disabled"
        return None

    def mark_down(c):
        c.api.force_down(failed)
        c.api.disable_service(failed, f"ringmgr: host failed, evacuated to {target}")

    steps = [recover_precheck(ctx, failed),
             Step("force-down", f"mark {failed}'s nova-compute down and disabled",
                  action=mark_down, check=check_down, destructive=True)]
    for uuid in instances:
        def check(c, uuid=uuid):
            s = server_or_none(c, uuid)
            if s is None:
                return "instance no longer exists"
            if s.host == target and s.status == "ACTIVE":
                return f"already ACTIVE on {target}"
            return None

        def action(c, uuid=uuid):
            c.api.evacuate(uuid, target)
            if not c.dry_run:
                wait_for(c, uuid, target, "evacuation of")

        steps.append(Step(f"evacuate:{uuid}", f"evacuate {uuid} to {target}", action=action,
                          check=check, destructive=True))
    return steps


def recover_sql_steps(ctx: RunbookContext, failed: str, target: str, instances: list[str],
                      volumes: list[dict], *, nova, neutron, backup_path: Path,
                      node: str | None = None) -> list[Step]:
    from ringmgr.ops.runbooks import sqlrecover

    def check_rows(c):
        plan = sqlrecover.move_host(nova, neutron, failed, target, node=node, dry_run=True)
        c.data["sql_plan"] = plan
        if plan.empty:
            return f"no rows left on {failed} in nova or neutron"
        return None

    def move(c):
        if c.dry_run:
            c.echo(c.data["sql_plan"].text())
            return
        report = sqlrecover.move_host(nova, neutron, failed, target, node=node,
                                      backup_path=backup_path)
        c.data["sql_report"] = report
        c.note(f"rows backed up to {report.backup}")

    steps = [recover_precheck(ctx, failed),
             Step("move-rows", f"move instances and port bindings from {failed} to {target} "
                  f"in nova and neutron (backup {backup_path})", action=move,
                  check=check_rows, destructive=True)]
    for uuid in instances:
        steps.append(Step(f"reboot-hard:{uuid}", f"hard-reboot {uuid} (re-creates its XML)",
                          action=lambda c, u=uuid: c.api.reboot(u, hard=True),
                          destructive=True))
    for v in volumes:
        inst, vol, dev = v["instance_uuid"], v["volume_uuid"], v.get("mountpoint")

        def reattach(c, inst=inst, vol=vol, dev=dev):
            if not c.dry_run:
                wait_for(c, inst, None, "boot of")
            c.api.detach_volume(inst, vol)
            c.api.attach_volume(inst, vol, dev)

        steps.append(Step(f"reattach:{vol}", f"reattach volume {vol} to {inst} at {dev}",
                          action=reattach, destructive=True))
    return steps


# -- the SQL way, as the command runs it ---------------------------------------------------
def check_sql_undo(undo_path: Path, failed: str, target: str) -> None:
    """A ``--undo`` backup must be of this very move (FAILED to TARGET)."""
    from ringmgr.ops.runbooks import sqlrecover as sr

    saved = sr.read_backup(Path(undo_path))
    if (saved["failed"], saved["target"]) != (failed, target):
        raise UsageError(f"{undo_path} is the backup of a move from {saved['failed']} to "
                         f"{saved['target']}, not from {failed} to {target}")


def sql_undo(undo_path: Path, failed: str, target: str, nova, neutron) -> dict[str, int]:
    """Put the rows of a ``--backup`` file back; returns the rows per table."""
    from ringmgr.ops.runbooks import sqlrecover as sr

    check_sql_undo(undo_path, failed, target)
    return sr.restore_from_backup(Path(undo_path), nova, neutron)


def sql_steps(ctx: RunbookContext, journal, failed: str, target: str, *, nova, neutron,
              cinder, node: str | None, backup_path: str | None) -> list[Step]:
    """The SQL way's steps, with what it moves chosen once and journaled: the backup
    file, the instances, the volumes to reattach."""
    from ringmgr.ops.runbooks import sqlrecover as sr

    chosen = journal.params.get("backup")
    if backup_path and chosen and chosen != str(Path(backup_path).resolve()) \
            and journal.step_state("move-rows") in (None, "pending"):
        journal.set_param("backup", str(Path(backup_path).resolve()))  # not used yet
    backup = Path(journal.param("backup", lambda: str(
        Path(backup_path).resolve() if backup_path else sr.default_backup_path(failed))))
    check_recover_params(journal)
    instances = journal.params.get("instances")
    if instances is None:
        plan = sr.move_host(nova, neutron, failed, target, node=node, dry_run=True)
        instances = plan.instances
        if not ctx.dry_run:
            journal.params["instances"] = instances
    volumes = journal.params.get("volumes")
    if volumes is None:
        volumes = sr.attached_volumes(cinder, instances) if cinder else []
        if not ctx.dry_run:
            journal.params["volumes"] = volumes
    if cinder is None:
        ctx.note("no [openstack] cinder_db: volumes are not reattached; list them "
                 "with the guide's cinder/nova query")
    return recover_sql_steps(ctx, failed, target, instances, volumes, nova=nova,
                             neutron=neutron, backup_path=backup, node=node)


def check_recover_params(journal) -> None:
    """Instances and volumes read back from a journal must still hang together: every
    volume to reattach belongs to one of the instances moved."""
    instances = journal.params.get("instances")
    volumes = journal.params.get("volumes")
    bad = None
    if instances is not None and not (isinstance(instances, list)
                                      and all(isinstance(i, str) for i in instances)):
        bad = "instances"
    elif volumes is not None and not (
            isinstance(volumes, list) and all(
                isinstance(v, dict) and v.get("instance_uuid") in (instances or [])
                for v in volumes)):
        bad = "volumes (a volume of an instance that is not moved)"
    if bad:
        raise Refused(f"journal {journal.path}: {bad} do not fit this run: the journal "
                      f"was edited or belongs to another run; nothing was done (move it "
                      f"away to start afresh)")
