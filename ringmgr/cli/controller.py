"""The cloud controller / storage proxy runbook, the restore order after a complete
failure, and the operations guide's periodic checklist: controller check,
restore-order, schedule."""

from __future__ import annotations

import click

from ringmgr.cli import hostrun as hr
from ringmgr.cli.app import json_option, pass_app


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
    ex = hr.host_executor(app, host or "localhost",
                          address or (None if host else "localhost"), False)
    try:
        results = (ctl.process_checks(ex, roles)
                   + ctl.functional_checks(hr.api_for(app, False), roles))
    finally:
        hr.close(ex)
    app.out(ctl.render_table(results))
    failed = [r.name for r in results if r.ok is False]
    app.emit({"written": False, "host": host or "localhost", "roles": list(roles),
              "ok": not failed, "checks": [r.to_json() for r in results]})
    return 1 if failed else 0


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
    fns = ro.checkers(hr.api_for(app, False), {"nova_db": osc.nova_db,
                                               "neutron_db": osc.neutron_db,
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
        return sch.weird_instances(hr.api_for(app, False), now(), stuck_minutes)

    fns = {"weird-instances": instances}

    def disks():
        if not config.nodes:
            raise sch.NotApplicable(f"no storage nodes ([nodes.*]) in {config.path}")
        # by name (address None): the node's own host and ssh_port are used
        exs = {n: hr.host_executor(app, n, None, False) for n in config.nodes}
        try:
            return sch.disk_space(exs, {n: node.mount_root for n, node in config.nodes.items()},
                                  full_pct, parallel=config.ssh.parallel)
        finally:
            hr.close(*exs.values())

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
    group.add_command(restore_order)
    group.add_command(schedule)
