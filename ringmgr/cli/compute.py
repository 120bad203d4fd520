"""Compute and controller runbooks: controller check, compute evacuate / restore /
after-reboot / recover-host / inspect-disk, restore-order, schedule.

Thin: parse options, build the steps (ringmgr.ops.runbooks), run them with the step
runner (journal for --resume), print the summary table or JSON.  OpenStack is
reached with the ``openstack`` client on this (admin) host; compute hosts over SSH
at the address given (``--address``, default the host's name as nova knows it).
"""

from __future__ import annotations

import click

from ringmgr.cli.app import json_option, pass_app

_run_opts = [
    click.option("--dry-run", is_flag=True, help="read the state, print the steps; change nothing"),
    click.option("--yes", is_flag=True, help="do not ask before changing anything"),
    click.option("--resume", is_flag=True, help="continue the run in progress (refused if none)"),
]


def run_options(f):
    for opt in reversed(_run_opts):
        f = opt(f)
    return json_option(f)


# -- wiring ----------------------------------------------------------------------------
def _api(app, dry_run: bool):
    """The OpenStack client on this admin host (through the executor factory)."""
    from ringmgr.exec.factory import ADMIN
    from ringmgr.ops.openstack import OpenStack

    return OpenStack(app.executor(ADMIN, dry_run=dry_run), openrc=app.config.openstack.openrc)


def _host(app, name: str, address: str | None, dry_run: bool):
    """The executor for a compute or controller host: a configured node/proxy by name,
    "localhost" for this machine, else an SSH address with the [ssh] settings."""
    from ringmgr.exec.factory import host_for

    return app.executor(host_for(app.config, name, address), dry_run=dry_run)


def _close(*executors):
    from ringmgr.exec.factory import close_all

    close_all(*executors)


def _ctx(app, api, host, dry_run, timeout=600.0, poll=5.0):
    from ringmgr.ops.runbooks.compute import RunbookContext

    return RunbookContext(api=api, host=host, dry_run=dry_run, timeout=timeout, poll=poll,
                          echo=app.note, sleep=app.sleep)


def _journal(key: str, resume: bool, dry_run: bool, identity: dict | None = None):
    from ringmgr.exec.runner import Journal

    return Journal.open(key, resume=resume, dry_run=dry_run, identity=identity)


def _run(app, key, steps_fn, ctx, *, yes, dry_run, resume, extra=None, identity=None):
    """Open the journal, build the steps, run them, print the summary; raise on error."""
    from ringmgr.exec.runner import run_steps

    with _journal(key, resume, dry_run, identity) as journal:
        steps = steps_fn(journal)
        summary = run_steps(
            steps, ctx, journal=journal, dry_run=dry_run, echo=app.note,
            confirm=None if dry_run else
            (lambda step: app.confirm(f"{step.title}: proceed?", yes)))
    _report(app, summary, ctx, dry_run, extra)
    return summary


def _report(app, summary, ctx, dry_run, extra=None):
    from ringmgr.exec import plan as hostplan
    from ringmgr.exec.base import DryRunExecutor

    app.written = (not dry_run) and any(r.status == "done" for r in summary.results)
    app.out(summary.table())
    for line in ctx.notes:
        app.out(f"note: {line}")
    planned = []
    for ex in (ctx.api.executor, ctx.host):
        if isinstance(ex, DryRunExecutor):
            planned += ex.plan
    if dry_run and planned:
        app.out("would run:")
        for line in hostplan.render_text(planned):
            app.out(line)
    doc = {"written": app.written, **summary.to_json(), "notes": ctx.notes}
    if dry_run:
        doc["commands"] = [hostplan.command_text(s.argv) for s in planned]
        doc["host_steps"] = hostplan.to_json(planned)
    sql = ctx.data.get("sql_report") or ctx.data.get("sql_plan")
    if sql is not None:       # recover-host --method sql: the rows and the statements
        doc["sql"] = sql.to_json()
    doc.update(extra or {})
    app.emit(doc)
    summary.raise_error()


# -- controller ------------------------------------------------------------------------
@click.group()
@json_option
def controller():
    """The cloud controller / storage proxy runbook."""


@controller.command("check")
@click.argument("host", required=False)
@click.option("--role", type=click.Choice(["controller", "proxy", "both"]), default=None,
              help="what HOST runs (default: proxy for a configured proxy, else controller)")
@click.option("--address", metavar="ADDR", help="SSH address of HOST (default: HOST)")
@json_option
@pass_app
def controller_check(app, host, role, address):
    """After a cloud controller or storage proxy reboot: processes, then functional checks.

    Replaces the guide's "After a Cloud Controller or Storage Proxy Reboots" (ps aux |
    grep ...; nova list; glance index; openstack project list; swift stat).  Without
    HOST the processes are looked for on this machine.  Exit 1 if a check fails.
    """
    from ringmgr.ops.runbooks import controller as ctl

    if role is None:
        role = "proxy" if host and host in app.config.proxies else "controller"
    roles = ("controller", "proxy") if role == "both" else (role,)
    ex = _host(app, host or "localhost", address or (None if host else "localhost"), False)
    try:
        results = ctl.process_checks(ex, roles) + ctl.functional_checks(_api(app, False), roles)
    finally:
        _close(ex)
    app.out(ctl.render_table(results))
    failed = [r.name for r in results if r.ok is False]
    app.emit({"written": False, "host": host or "localhost", "roles": list(roles),
              "ok": not failed, "checks": [r.to_json() for r in results]})
    return 1 if failed else 0


# -- compute ---------------------------------------------------------------------------
@click.group()
@json_option
def compute():
    """Compute-node runbooks from the operations guide."""


@compute.command("evacuate")
@click.argument("host")
@click.option("--to", "target", required=True, metavar="TARGET", help="compute host to move to")
@click.option("--block-migrate", is_flag=True, help="no shared storage: copy the disks too")
@click.option("--move-init-files", is_flag=True,
              help="move nova-compute's init files aside (configuration management would "
                   "restart it)")
@click.option("--held-dir", default="/root/tmp", show_default=True,
              help="where --move-init-files puts them")
@click.option("--init-file", "init_files", multiple=True, metavar="PATH",
              help="an init file to move aside (repeatable; default: "
                   "/etc/init/nova-compute.conf and /etc/init.d/nova-compute)")
@click.option("--timeout", default=600.0, show_default=True, help="seconds per instance")
@click.option("--address", metavar="ADDR", help="SSH address of HOST (default: HOST)")
@run_options
@pass_app
def evacuate(app, host, target, block_migrate, move_init_files, held_dir, init_files, timeout,
             address, dry_run, yes, resume):
    """Planned maintenance: disable HOST, live-migrate its instances to TARGET one at a
    time, then stop nova-compute on HOST (guide: "Compute Node Failures and Maintenance")."""
    from ringmgr.ops.runbooks import compute as rb

    api = _api(app, dry_run)
    hx = _host(app, host, address, dry_run)
    ctx = _ctx(app, api, hx, dry_run, timeout)

    def steps(journal):
        found = [s.id for s in api.servers_on(host)]
        known = list(journal.params.get("instances", []))
        instances = known + [u for u in found if u not in known]
        if not dry_run:
            journal.params["instances"] = instances
        return rb.evacuate_steps(ctx, host, target, instances, block_migrate=block_migrate,
                                 move_init_files=move_init_files, held_dir=held_dir,
                                 init_files=tuple(init_files) or rb.GUIDE_INIT_FILES,
                                 record=rb.record_path("evacuate", host))

    try:
        _run(app, f"compute-evacuate.{host}", steps, ctx, yes=yes, dry_run=dry_run,
             resume=resume, extra={"host": host, "target": target})
    finally:
        _close(hx)


@compute.command("restore")
@click.argument("host")
@click.option("--migrate-back", is_flag=True,
              help="live-migrate the instances that evacuate moved back to HOST")
@click.option("--timeout", default=600.0, show_default=True, help="seconds per instance")
@click.option("--address", metavar="ADDR", help="SSH address of HOST (default: HOST)")
@run_options
@pass_app
def restore(app, host, migrate_back, timeout, address, dry_run, yes, resume):
    """Undo `compute evacuate`: init files back, nova-compute started and enabled."""
    from ringmgr.ops.runbooks import compute as rb

    api = _api(app, dry_run)
    hx = _host(app, host, address, dry_run)
    ctx = _ctx(app, api, hx, dry_run, timeout)
    record = rb.read_record(rb.record_path("evacuate", host))
    try:
        _run(app, f"compute-restore.{host}",
             lambda j: rb.restore_steps(ctx, host, record, migrate_back=migrate_back),
             ctx, yes=yes, dry_run=dry_run, resume=resume, extra={"host": host})
    finally:
        _close(hx)


@compute.command("after-reboot")
@click.argument("host")
@click.option("--log", "log_path", default="/var/log/nova/nova-compute.log", show_default=True)
@click.option("--timeout", default=300.0, show_default=True, help="seconds per instance")
@click.option("--address", metavar="ADDR", help="SSH address of HOST (default: HOST)")
@run_options
@pass_app
def after_reboot(app, host, log_path, timeout, address, dry_run, yes, resume):
    """After a compute node reboots: nova-compute running and on AMQP, then start each
    instance (reboot, then --hard); reports what did not come back."""
    from ringmgr.ops.runbooks import compute as rb

    api = _api(app, dry_run)
    hx = _host(app, host, address, dry_run)
    ctx = _ctx(app, api, hx, dry_run, timeout)

    def steps(journal):
        instances = journal.params.get("instances") or [s.id for s in api.servers_on(host)]
        if not dry_run:
            journal.params["instances"] = instances
        return rb.after_reboot_steps(ctx, host, instances, log_path=log_path)

    try:
        _run(app, f"compute-after-reboot.{host}", steps, ctx, yes=yes, dry_run=dry_run,
             resume=resume, extra={"host": host})
    finally:
        _close(hx)


@compute.command("recover-host")
@click.argument("failed")
@click.option("--to", "target", required=True, metavar="TARGET")
@click.option("--method", type=click.Choice(["evacuate", "sql"]), default="evacuate",
              show_default=True, help="nova's server evacuate, or the guide's SQL update")
@click.option("--node", metavar="NODE", help="--method sql: hypervisor node name on TARGET "
                                             "(default: TARGET)")
@click.option("--backup", "backup_path", type=click.Path(dir_okay=False),
              help="--method sql: where to write the affected rows first")
@click.option("--undo", "undo_path", type=click.Path(exists=True, dir_okay=False),
              help="--method sql: put the rows back from this backup file and stop")
@click.option("--timeout", default=600.0, show_default=True, help="seconds per instance")
@run_options
@pass_app
def recover_host(app, failed, target, method, node, backup_path, undo_path, timeout,
                 dry_run, yes, resume):
    """Total compute-node failure with shared storage: bring FAILED's instances up on
    TARGET (guide: "Total Compute Node Failure", then "Volumes")."""
    from pathlib import Path

    from ringmgr.ops.runbooks import compute as rb
    from ringmgr.ops.runbooks import sqlrecover as sr

    api = _api(app, dry_run)
    ctx = _ctx(app, api, None, dry_run, timeout)
    osc = app.config.openstack
    if method == "evacuate":
        if undo_path or backup_path or node:
            from ringmgr.errors import UsageError

            raise UsageError("--node, --backup and --undo go with --method sql")

        def steps(journal):
            instances = journal.params.get("instances") or [s.id for s in api.servers_on(failed)]
            if not dry_run:
                journal.params["instances"] = instances
            return rb.recover_evacuate_steps(ctx, failed, target, instances)
    else:
        nova = sr.parse_db_url(osc.nova_db, "nova_db")
        neutron = sr.parse_db_url(osc.neutron_db, "neutron_db")
        if undo_path:
            saved = sr.read_backup(Path(undo_path))
            if (saved["failed"], saved["target"]) != (failed, target):
                from ringmgr.errors import UsageError

                raise UsageError(f"{undo_path} is the backup of a move from "
                                 f"{saved['failed']} to {saved['target']}, not from "
                                 f"{failed} to {target}")
            app.confirm(f"put the rows in {undo_path} back in nova and neutron?", yes or dry_run)
            if dry_run:
                app.out(f"would restore the rows in {undo_path}")
                app.emit({"written": False, "undo": undo_path})
                return 0
            counts = sr.restore_from_backup(Path(undo_path), nova, neutron)
            app.written = True
            app.out("restored: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
            app.emit({"written": True, "undo": undo_path, "restored": counts})
            return 0
        cinder = sr.parse_db_url(osc.cinder_db, "cinder_db") if osc.cinder_db else None

        def steps(journal):
            chosen = journal.params.get("backup")
            if backup_path and chosen and chosen != str(Path(backup_path).resolve()) \
                    and journal.step_state("move-rows") in (None, "pending"):
                journal.set_param("backup", str(Path(backup_path).resolve()))  # not used yet
            backup = Path(journal.param("backup", lambda: str(
                Path(backup_path).resolve() if backup_path else sr.default_backup_path(failed))))
            _check_recover_params(journal)
            instances = journal.params.get("instances")
            if instances is None:
                plan = sr.move_host(nova, neutron, failed, target, node=node, dry_run=True)
                instances = plan.instances
                if not dry_run:
                    journal.params["instances"] = instances
            volumes = journal.params.get("volumes")
            if volumes is None:
                volumes = sr.attached_volumes(cinder, instances) if cinder else []
                if not dry_run:
                    journal.params["volumes"] = volumes
            if cinder is None:
                ctx.note("no [openstack] cinder_db: volumes are not reattached; list them "
                         "with the guide's cinder/nova query")
            return rb.recover_sql_steps(ctx, failed, target, instances, volumes, nova=nova,
                                        neutron=neutron, backup_path=backup, node=node)

    _run(app, f"compute-recover-host.{failed}", steps, ctx, yes=yes, dry_run=dry_run,
         resume=resume, extra={"failed": failed, "target": target, "method": method},
         identity={"failed": failed, "target": target, "method": method})


def _check_recover_params(journal) -> None:
    """Instances and volumes read back from a journal must still hang together: every
    volume to reattach belongs to one of the instances moved."""
    from ringmgr.errors import Refused

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


@compute.command("inspect-disk")
@click.argument("instance")
@click.option("--release", is_flag=True, help="unmount, disconnect and resume the instance")
@click.option("--disk", "disk_target", default=None, metavar="TARGET",
              help="which disk (its target in the domain XML, e.g. vdb; default: the first)")
@click.option("--address", metavar="ADDR", help="SSH address of the instance's compute host")
@run_options
@pass_app
def inspect_disk(app, instance, release, disk_target, address, dry_run, yes, resume):
    """Read-only look at a failed instance's disk (suspend, qemu-nbd, mount ro,nosuid,...).

    Get approval before you look at a user's data.  The guide: "Inspecting and
    Recovering Data from Failed Instances".  Always finish with --release, or nova can
    no longer manage the instance; a failed inspection is released at once.
    """
    from ringmgr.errors import UsageError
    from ringmgr.exec.runner import run_steps
    from ringmgr.ops.openstack import QemuNbd, Virsh
    from ringmgr.ops.runbooks import compute as rb

    api = _api(app, dry_run)
    server = api.server(instance)
    if not server.host or not server.instance_name:
        raise UsageError(f"instance {instance}: nova reports no host / libvirt name "
                         f"(openstack server show {instance}); is it scheduled?")
    hx = _host(app, server.host, address, dry_run)
    ctx = _ctx(app, api, hx, dry_run)
    key = f"inspect-disk.{server.id}"
    state = rb.record_path("inspect-disk", server.id)
    try:
        if release:
            rec = rb.read_record(state) or {}
            steps = rb.release_steps(ctx, server.id, server.instance_name, rec.get("device"))
            summary = _run(app, key + ".release", lambda j: steps, ctx, yes=yes,
                           dry_run=dry_run, resume=resume, extra={"instance": server.id})
            if summary.finished and not dry_run:
                state.unlink(missing_ok=True)
            return 0
        disks = Virsh(hx).domain_disks(server.instance_name)
        if disk_target:
            disks = [d for d in disks if d.target == disk_target]
        if not disks:
            raise UsageError(f"[{hx.host}] no disk {disk_target or ''} in virsh dumpxml "
                             f"{server.instance_name}")
        from ringmgr.ops.openstack import IMAGE_FORMATS

        if disks[0].format not in IMAGE_FORMATS:
            raise UsageError(f"[{hx.host}] the domain XML of {server.instance_name} gives "
                             f"{'no' if not disks[0].format else repr(disks[0].format)} image "
                             f"format for {disks[0].target} ({disks[0].source}); refusing to "
                             f"let qemu-nbd guess it (a guest can make a raw image look like "
                             f"qcow2 with a backing file on the host)")
        chosen: dict = {}

        def device():
            if "device" not in chosen:
                rec = rb.read_record(state) or {}
                chosen["device"] = rec.get("device") or QemuNbd(hx).free_device()
                if not dry_run:
                    rb.write_record(state, {"device": chosen["device"], "host": server.host,
                                            "domain": server.instance_name})
            return chosen["device"]

        ctx.data["mountpoint"] = rb.inspect_mountpoint(server.id)
        summary = _run_inspect(app, key, rb.inspect_steps(ctx, server.id, server.instance_name,
                                                          disks[0].source, disks[0].format,
                                                          device),
                               ctx, yes, dry_run, resume)
        if summary.error is not None and not dry_run:
            app.note("inspection failed: releasing in reverse order")
            rel = run_steps(rb.release_steps(ctx, server.id, server.instance_name,
                                             chosen.get("device")), ctx, echo=app.note)
            if rel.error is not None:
                app.note(f"release failed too: {rel.error}; run: ringmgr compute "
                         f"inspect-disk {server.id} --release")
            else:
                state.unlink(missing_ok=True)
        _report(app, summary, ctx, dry_run, {"instance": server.id, "host": server.host,
                                             "mountpoint": ctx.data["mountpoint"]})
        if not dry_run:
            app.out(f"mounted read-only at {ctx.data['mountpoint']} on {server.host}; when "
                    f"done: ringmgr compute inspect-disk {server.id} --release")
        return 0
    finally:
        _close(hx)


def _run_inspect(app, key, steps, ctx, yes, dry_run, resume):
    from ringmgr.exec.runner import run_steps

    if not dry_run:
        app.confirm("suspend the instance and mount its disk read-only (approval to view "
                    "the user's data?)", yes)
    with _journal(key, resume, dry_run) as journal:
        return run_steps(steps, ctx, journal=journal, dry_run=dry_run, echo=app.note)


# -- restore-order, schedule -----------------------------------------------------------------
@click.command("restore-order")
@click.option("--check", "do_check", is_flag=True, help="check each service in order")
@json_option
@pass_app
def restore_order(app, do_check):
    """After a complete failure: the order to restore services in (guide: "Handling a
    Complete Failure"); [openstack].restore_order overrides it.  Exit 1 if a check fails."""
    from ringmgr.ops.runbooks import controller as ctl
    from ringmgr.ops.runbooks import restore_order as ro

    osc = app.config.openstack
    items = ro.entries(osc.restore_order)
    if not do_check:
        for e in items:
            app.out(f"{e.priority:>3}  {e.service}")
        app.emit({"written": False, "order": [e.to_json() for e in items]})
        return 0
    fns = ro.checkers(_api(app, False), {"nova_db": osc.nova_db, "neutron_db": osc.neutron_db,
                                         "cinder_db": osc.cinder_db})
    results = ro.check_in_order(items, fns)
    app.out(ctl.render_table(results))
    first = next((r.name.strip() for r in results if r.ok is False), None)
    if first:
        app.out(f"restore next: {first}")
    app.emit({"written": False, "order": [dict(e.to_json(), **r.to_json())
                                          for e, r in zip(items, results)],
              "restore_next": first})
    return 1 if first else 0


@click.command("schedule")
@click.option("--period", "periods", multiple=True,
              type=click.Choice(["hourly", "daily", "weekly", "monthly", "quarterly",
                                 "semiannually"]), help="only these periods (repeatable)")
@click.option("--no-checks", is_flag=True, help="list only; run no automated check")
@click.option("--full-pct", default=80.0, show_default=True,
              help="disk-space check: warn at this percent used")
@click.option("--stuck-minutes", default=60.0, show_default=True,
              help="instances check: a task state unchanged this long is stuck")
@json_option
@pass_app
def schedule(app, periods, no_checks, full_pct, stuck_minutes):
    """The operations guide's hourly-to-semiannual checklist, with the automatable checks
    run: instances failed or stuck in a task (daily), storage-node disk space and ring
    consistency (weekly).  Exit 1 if a check fails."""
    from ringmgr.errors import UsageError
    from ringmgr.ops.runbooks import schedule as sch

    if stuck_minutes <= 0 or not 0 < full_pct <= 100:
        raise UsageError("--stuck-minutes must be above 0 and --full-pct in (0, 100]")
    fns = {} if no_checks else _schedule_checks(app, full_pct, stuck_minutes)
    results = sch.run_schedule(sch.TASKS, fns, tuple(periods) or sch.PERIODS)
    app.out(sch.render(results))
    failed = [t.title for t, r in results if r.ok is False]
    app.emit({"written": False, "ok": not failed,
              "tasks": [dict(t.to_json(), **{"status": r.status.lower(), "detail": r.detail})
                        for t, r in results]})
    return 1 if failed else 0


def _schedule_checks(app, full_pct, stuck_minutes):
    import datetime

    from ringmgr.ops.runbooks import schedule as sch

    config = app.config
    now = app.now or (lambda: datetime.datetime.now(datetime.timezone.utc))
    def instances():
        import os

        if sch.openstack_configured(config.openstack.openrc, os.environ) is None:
            raise sch.NotApplicable(f"no OpenStack cloud configured ([openstack].openrc in "
                                    f"{config.path}, or OS_CLOUD / OS_AUTH_URL in the "
                                    f"environment)")
        return sch.weird_instances(_api(app, False), now(), stuck_minutes)

    fns = {"weird-instances": instances}

    def disks():
        if not config.nodes:
            raise sch.NotApplicable(f"no storage nodes ([nodes.*]) in {config.path}")
        # by name (address None): the node's own host and ssh_port are used
        exs = {n: _host(app, n, None, False) for n in config.nodes}
        try:
            return sch.disk_space(exs, {n: node.mount_root for n, node in config.nodes.items()},
                                  full_pct, parallel=config.ssh.parallel)
        finally:
            _close(*exs.values())

    def rings():
        from ringmgr.errors import StepFailed
        from ringmgr.ops.push import verify_rings

        if not config.hosts():
            raise sch.NotApplicable(f"no storage nodes or proxies in {config.path}")
        report = verify_rings(config, transport=app.transport)
        bad = report.failed + report.differ
        if bad:
            raise StepFailed(f"rings differ or unreachable on: {', '.join(bad)} "
                             f"(ringmgr verify)")
        return f"{len(report.results)} host(s) have the admin host's rings"

    fns["disk-space"] = disks
    fns["rings"] = rings
    return fns


def register(group: click.Group) -> None:
    group.add_command(controller)
    group.add_command(compute)
    group.add_command(restore_order)
    group.add_command(schedule)
