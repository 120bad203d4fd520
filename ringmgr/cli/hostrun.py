"""What the runbook commands share: their options, their executors (through the
executor factory, ``App.executor``), the step run with its journal, and one report
(the step table, notes, the planned host commands of a dry run)."""

from __future__ import annotations

import click

from ringmgr.cli.app import json_option

_run_opts = [
    click.option("--dry-run", is_flag=True, help="read the state, print the steps; change nothing"),
    click.option("--yes", is_flag=True, help="do not ask before changing anything"),
    click.option("--resume", is_flag=True, help="continue the run in progress (refused if none)"),
]


def run_options(f):
    for opt in reversed(_run_opts):
        f = opt(f)
    return json_option(f)



def api_for(app, dry_run: bool):
    """The OpenStack client on this admin host (through the executor factory)."""
    from ringmgr.exec.factory import ADMIN
    from ringmgr.ops.openstack import OpenStack

    return OpenStack(app.executor(ADMIN, dry_run=dry_run), openrc=app.config.openstack.openrc)


def host_executor(app, name: str, address: str | None, dry_run: bool):
    """The executor for a compute or controller host: a configured node/proxy by name,
    "localhost" for this machine, else an SSH address with the [ssh] settings."""
    from ringmgr.exec.factory import host_for

    return app.executor(host_for(app.config, name, address), dry_run=dry_run)


def close(*executors):
    from ringmgr.exec.factory import close_all

    close_all(*executors)


def context(app, api, host, dry_run, timeout=600.0, poll=5.0):
    from ringmgr.ops.runbooks.compute import RunbookContext

    return RunbookContext(api=api, host=host, dry_run=dry_run, timeout=timeout, poll=poll,
                          echo=app.note, sleep=app.sleep)


def journal(key: str, resume: bool, dry_run: bool, identity: dict | None = None):
    from ringmgr.exec.runner import Journal

    return Journal.open(key, resume=resume, dry_run=dry_run, identity=identity)


def run(app, key, steps_fn, ctx, *, yes, dry_run, resume, extra=None, identity=None):
    """Open the journal, build the steps, run them, print the summary; raise on error."""
    from ringmgr.exec.runner import run_steps

    with journal(key, resume, dry_run, identity) as j:
        steps = steps_fn(j)
        summary = run_steps(
            steps, ctx, journal=j, dry_run=dry_run, echo=app.note,
            confirm=None if dry_run else
            (lambda step: app.confirm(f"{step.title}: proceed?", yes)))
    report(app, summary, ctx, dry_run, extra)
    return summary


def report(app, summary, ctx, dry_run, extra=None):
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
