"""Compute-node runbooks: evacuate / restore / after-reboot / recover-host /
inspect-disk.

Thin: parse options, build the steps (ringmgr.ops.runbooks), run them with the step
runner (journal for --resume), print the summary table or JSON (``cli.hostrun``).
OpenStack is reached with the ``openstack`` client on this (admin) host; compute
hosts over SSH at the address given (``--address``, default the host's name as nova
knows it).
"""

from __future__ import annotations

import click

from ringmgr.cli import hostrun as hr
from ringmgr.cli.app import json_option, pass_app
from ringmgr.cli.hostrun import run_options


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

    api = hr.api_for(app, dry_run)
    hx = hr.host_executor(app, host, address, dry_run)
    ctx = hr.context(app, api, hx, dry_run, timeout)

    def steps(journal):
        instances = rb.journaled_instances(journal, lambda: [s.id for s in api.servers_on(host)],
                                           dry_run, keep_found=True)
        return rb.evacuate_steps(ctx, host, target, instances, block_migrate=block_migrate,
                                 move_init_files=move_init_files, held_dir=held_dir,
                                 init_files=tuple(init_files) or rb.GUIDE_INIT_FILES,
                                 record=rb.record_path("evacuate", host))

    try:
        hr.run(app, f"compute-evacuate.{host}", steps, ctx, yes=yes, dry_run=dry_run,
               resume=resume, extra={"host": host, "target": target},
               identity={"target": target})   # a journal's target check is for its target
    finally:
        hr.close(hx)


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

    api = hr.api_for(app, dry_run)
    hx = hr.host_executor(app, host, address, dry_run)
    ctx = hr.context(app, api, hx, dry_run, timeout)
    record = rb.read_record(rb.record_path("evacuate", host))
    try:
        hr.run(app, f"compute-restore.{host}",
               lambda j: rb.restore_steps(ctx, host, record, migrate_back=migrate_back),
               ctx, yes=yes, dry_run=dry_run, resume=resume, extra={"host": host})
    finally:
        hr.close(hx)


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

    api = hr.api_for(app, dry_run)
    hx = hr.host_executor(app, host, address, dry_run)
    ctx = hr.context(app, api, hx, dry_run, timeout)

    def steps(journal):
        instances = rb.journaled_instances(journal, lambda: [s.id for s in api.servers_on(host)],
                                           dry_run)
        return rb.after_reboot_steps(ctx, host, instances, log_path=log_path)

    try:
        hr.run(app, f"compute-after-reboot.{host}", steps, ctx, yes=yes, dry_run=dry_run,
               resume=resume, extra={"host": host})
    finally:
        hr.close(hx)


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

    from ringmgr.errors import UsageError
    from ringmgr.ops.runbooks import compute as rb
    from ringmgr.ops.runbooks import sqlrecover as sr

    api = hr.api_for(app, dry_run)
    ctx = hr.context(app, api, None, dry_run, timeout)
    osc = app.config.openstack
    if method == "evacuate":
        if undo_path or backup_path or node:
            raise UsageError("--node, --backup and --undo go with --method sql")

        def steps(journal):
            instances = rb.journaled_instances(
                journal, lambda: [s.id for s in api.servers_on(failed)], dry_run)
            return rb.recover_evacuate_steps(ctx, failed, target, instances)
    else:
        nova = sr.parse_db_url(osc.nova_db, "nova_db")
        neutron = sr.parse_db_url(osc.neutron_db, "neutron_db")
        if undo_path:
            rb.check_sql_undo(Path(undo_path), failed, target)
            app.confirm(f"put the rows in {undo_path} back in nova and neutron?", yes or dry_run)
            if dry_run:
                app.out(f"would restore the rows in {undo_path}")
                app.emit({"written": False, "undo": undo_path})
                return 0
            counts = rb.sql_undo(Path(undo_path), failed, target, nova, neutron)
            app.written = True
            app.out("restored: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
            app.emit({"written": True, "undo": undo_path, "restored": counts})
            return 0
        cinder = sr.parse_db_url(osc.cinder_db, "cinder_db") if osc.cinder_db else None

        def steps(journal):
            return rb.sql_steps(ctx, journal, failed, target, nova=nova, neutron=neutron,
                                cinder=cinder, node=node, backup_path=backup_path)

    hr.run(app, f"compute-recover-host.{failed}", steps, ctx, yes=yes, dry_run=dry_run,
           resume=resume, extra={"failed": failed, "target": target, "method": method},
           identity={"failed": failed, "target": target, "method": method})


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
    from ringmgr.ops.runbooks import compute as rb

    api = hr.api_for(app, dry_run)
    server = api.server(instance)
    if not server.host or not server.instance_name:
        raise UsageError(f"instance {instance}: nova reports no host / libvirt name "
                         f"(openstack server show {instance}); is it scheduled?")
    hx = hr.host_executor(app, server.host, address, dry_run)
    ctx = hr.context(app, api, hx, dry_run)
    key = f"inspect-disk.{server.id}"
    state = rb.record_path("inspect-disk", server.id)
    try:
        if release:
            rec = rb.read_record(state) or {}
            steps = rb.release_steps(ctx, server.id, server.instance_name, rec.get("device"))
            summary = hr.run(app, key + ".release", lambda j: steps, ctx, yes=yes,
                             dry_run=dry_run, resume=resume, extra={"instance": server.id})
            if summary.finished and not dry_run:
                state.unlink(missing_ok=True)
            return 0
        disk = rb.choose_disk(hx, server.instance_name, disk_target)
        device = rb.NbdDevice(hx, state, server.host, server.instance_name, dry_run)

        ctx.data["mountpoint"] = rb.inspect_mountpoint(server.id)
        summary = _run_inspect(app, key, rb.inspect_steps(ctx, server.id, server.instance_name,
                                                          disk.source, disk.format, device),
                               ctx, yes, dry_run, resume)
        if summary.error is not None and not dry_run:
            app.note("inspection failed: releasing in reverse order")
            rel = run_steps(rb.release_steps(ctx, server.id, server.instance_name,
                                             device.device), ctx, echo=app.note)
            if rel.error is not None:
                app.note(f"release failed too: {rel.error}; run: ringmgr compute "
                         f"inspect-disk {server.id} --release")
            else:
                state.unlink(missing_ok=True)
        hr.report(app, summary, ctx, dry_run, {"instance": server.id, "host": server.host,
                                               "mountpoint": ctx.data["mountpoint"]})
        if not dry_run:
            app.out(f"mounted read-only at {ctx.data['mountpoint']} on {server.host}; when "
                    f"done: ringmgr compute inspect-disk {server.id} --release")
        return 0
    finally:
        hr.close(hx)


def _run_inspect(app, key, steps, ctx, yes, dry_run, resume):
    from ringmgr.exec.runner import run_steps

    if not dry_run:
        app.confirm("suspend the instance and mount its disk read-only (approval to view "
                    "the user's data?)", yes)
    with hr.journal(key, resume, dry_run) as journal:
        return run_steps(steps, ctx, journal=journal, dry_run=dry_run, echo=app.note)


def register(group: click.Group) -> None:
    group.add_command(compute)
