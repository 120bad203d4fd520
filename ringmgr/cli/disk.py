"""Disk commands: replace-disk NODE DEV, drive-audit [NODE...]."""

from __future__ import annotations

import click

from ringmgr.cli.app import json_option, pass_app


def show_plan(app, steps) -> None:
    """The dry run's host commands, in order (the one text renderer, exec.plan)."""
    from ringmgr.exec.plan import render_text

    app.out("\ncommands a real run executes, in order:" if steps
            else "\na real run would execute no state-changing command")
    for line in render_text(steps):
        app.out(line)


def register(group: click.Group) -> None:
    group.add_command(replace_disk_cmd)
    group.add_command(drive_audit_cmd)


@click.command("replace-disk")
@click.argument("node")
@click.argument("dev")
@click.option("--replaced", is_flag=True,
              help="the new disk is in: continue past the swap (format, fstab, mount)")
@click.option("--force-format", is_flag=True,
              help="format even if the device still carries the old filesystem")
@click.option("--lazy", is_flag=True, help="lazy unmount (umount -l) when the disk is busy")
@click.option("--weight-zero", is_flag=True,
              help="set the device's weight to 0 on every ring while it is out, restore after")
@click.option("--push/--no-push", "push", default=None,
              help="with --weight-zero: push the rings to every node right after each "
                   "weight change (default: [cluster].push)")
@click.option("--label", metavar="LABEL", help="XFS label (default: DEV, at most 12 characters)")
@click.option("--again", is_flag=True,
              help="start a new replacement of a disk that an earlier run of this command "
                   "already replaced (without it, a finished run is not repeated)")
@click.option("--resume", is_flag=True,
              help="continue the run in progress (running the command again does the same)")
@click.option("--dry-run", is_flag=True, help="print the state-changing commands; change nothing")
@click.option("--yes", is_flag=True, help="no confirmation prompt for destructive steps")
@json_option
@pass_app
def replace_disk_cmd(app, node, dev, replaced, force_format, lazy, weight_zero, push, label,
                     again, resume, dry_run, yes):
    """Replace the failed disk DEV of NODE: unmount, guard, swap, mkfs.xfs, fstab, mount.

    Run it once: it unmounts the disk, guards the empty mount point and stops.  Swap
    the disk, then run it again with --replaced to format, mount and check the new one.
    An interrupted run continues where it stopped when run again; a finished one
    says so and changes nothing (--again starts a new replacement).
    """
    from ringmgr.cli.app import interactive
    from ringmgr.ops.disk import ReplaceOptions, replace_disk

    config = app.config
    opts = ReplaceOptions(replaced=replaced, force_format=force_format, lazy=lazy,
                          weight_zero=weight_zero, label=label, again=again, push=push)

    def confirm(step):
        app.confirm(f"{step.title} on node {node}: this destroys everything on device {dev} "
                    f"of node {node}. Continue?", yes)

    def ask_replaced():
        if yes or dry_run or app.json or not interactive():
            return False
        return click.confirm(f"Is the new disk for {dev} in {node} now (continue with "
                             f"mkfs, fstab, mount)?", default=False, err=True)

    run = replace_disk(config, node, dev, opts, transport=app.transport, dry_run=dry_run,
                       resume=resume,
                       confirm=None if dry_run else confirm, echo=app.note,
                       ask_replaced=ask_replaced)
    s = run.summary
    app.written = not dry_run and any(r.status == "done" for r in s.results)
    if run.already:
        app.out(run.already)
    elif not app.json:
        app.out(s.table())
        if dry_run:
            show_plan(app, run.plan or [])
        if s.stopped:
            app.out(f"\n{s.stopped}")
        elif s.finished:
            from ringmgr.ops.disk import refill_report

            app.out("")
            for line in refill_report(run.ctx):
                app.out(line)
        for w in run.ctx.warnings:
            app.out(f"warning: {w}")
        if run.ctx.push_due:
            app.out("")
            for line in run.ctx.push_due:
                app.out(line)
    app.emit(run.to_json())
    if s.stopped and not dry_run:
        import re

        m = re.search(r"run: (ringmgr \S.*)$", s.stopped)
        app.add_next(app.cmd(m.group(1)) if m else app.rerun(drop=()))
    s.raise_error()
    return 0


@click.command("drive-audit")
@click.argument("nodes", nargs=-1)
@click.option("--act", is_flag=True,
              help="unmount each failing disk and guard its mount point (and set weight 0 "
                   "where the ring commands support it)")
@click.option("--lazy", is_flag=True, help="with --act: lazy unmount when busy")
@click.option("--dry-run", is_flag=True, help="with --act: print what would change")
@click.option("--since", metavar="WHEN",
              help="count only errors since WHEN: a duration back from now (30m, 24h, 7d) "
                   "or a date/time (2026-12-01T08:00); default [drive_audit].since, 24h")
@click.option("--yes", is_flag=True, help="no confirmation prompt")
@json_option
@pass_app
def drive_audit_cmd(app, nodes, act, lazy, dry_run, since, yes):
    """Find failing disks from the nodes' kernel logs (all nodes by default).

    Only errors inside the window (--since) and newer than each device's current
    filesystem count: a replaced disk is not blamed for its predecessor's errors.
    Exit 0: no I/O errors; 1: failing disks found (listed); 2: a node could not be read.
    """
    import time

    from ringmgr.ops.drive_audit import act_on, audit_nodes, render
    from ringmgr.ops.logwindow import window_for

    config = app.config
    window = window_for(since, config, time.time())
    names = list(nodes) or sorted(config.nodes)
    for n in names:
        config.node(n)
    audits = audit_nodes(config, names, window=window, transport=app.transport)
    app.out(render(audits))
    failing = [(a.node, f) for a in audits for f in a.failing]
    acted = []
    if act and failing:
        what = ", ".join(f"{n}/{f.device}" for n, f in failing)
        if not dry_run:
            app.confirm(f"Unmount and guard {what}?", yes)
        acted = act_on(config, failing, lazy=lazy, dry_run=dry_run, echo=app.note,
                       transport=app.transport)
        for line in acted:
            app.out(line["summary"])
        if dry_run:
            from ringmgr.exec.plan import HostStep

            show_plan(app, [HostStep.from_json(s) for line in acted for s in line["host_steps"]])
    app.written = bool(acted) and not dry_run
    doc = {"written": app.written, "window": window.to_json(),
           "nodes": {a.node: a.to_json() for a in audits}, "acted": acted}
    if dry_run:
        doc["host_steps"] = [s for line in acted for s in line["host_steps"]]
    app.emit(doc)
    if any(a.error for a in audits):
        from ringmgr.errors import StepFailed

        raise StepFailed("could not read the kernel log of "
                         + ", ".join(a.node for a in audits if a.error))
    if any(a.findings for a in audits):
        app.reason = "check_failed"
        return 1
    return 0
