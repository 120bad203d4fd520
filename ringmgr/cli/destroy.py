"""safe-to-destroy: may the disks of NODE (or NODE/DEV) be wiped or pulled now?"""

from __future__ import annotations

import click

from ringmgr.cli.app import App, json_option
from ringmgr.errors import EXIT_OK, EXIT_WARNING, StepFailed


def register(group: click.Group) -> None:
    group.add_command(safe_to_destroy_cmd)


def destroy_verdict(app: App, spec: str, *, timeout: float = 10.0,
                    accept_new_host_keys: bool = False):
    """Run the check, print it, put it in the JSON report; returns the DestroyReport."""
    from ringmgr.ops.safe_destroy import safe_to_destroy

    report = safe_to_destroy(app.config, spec, timeout=timeout,
                             accept_new_host_keys=accept_new_host_keys, progress=app.note)
    app.out(report.render_text())
    app.emit({"written": False, "safe_to_destroy": report.to_json()})
    return report


def verdict_message(report) -> str:
    if report.verdict == "safe":
        return (f"{report.node}: every partition left on "
                f"{', '.join(d.device for d in report.devices)} is in sync with all its "
                f"primaries: safe to destroy")
    if report.verdict == "not_yet":
        bad = [d for d in report.devices if d.verdict == "not_yet"]
        what = "; ".join(
            f"{d.device}: " + ", ".join(filter(None, [
                f"still assigned in {', '.join(sorted(d.assigned))}" if d.assigned else "",
                f"{len(d.problems)} partition check(s) not in sync" if d.problems else "",
                f"{d.async_pending} async pending(s)" if d.async_pending else ""]))
            for d in bad)
        return (f"not yet safe to destroy {report.node}: {what}; let replication finish "
                f"(`swift-recon -r` / `ringmgr health`) and check again")
    unknown = [c for d in report.devices for c in d.checks if c.state == "unknown"]
    errors = [e for d in report.devices for e in d.errors]
    first = errors[0] if errors else f"{unknown[0].primary}: {unknown[0].detail}"
    more = len(errors) + len(unknown) - 1
    return (f"cannot tell whether {report.node} is safe to destroy: {first}"
            f"{f' (and {more} more)' if more > 0 else ''}")


@click.command("safe-to-destroy")
@click.argument("target", metavar="NODE[/DEV]")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True,
              help="seconds per REPLICATE request")
@click.option("--accept-new-host-keys", is_flag=True,
              help="add unknown host keys to known_hosts (changed keys still fail)")
@json_option
def safe_to_destroy_cmd(target, timeout, accept_new_host_keys):
    """Exit 0 only when nothing on NODE's devices (or DEV) is missing from its
    primaries: every partition left there (objects, accounts, containers) is compared
    with every primary of the current ring by the REPLICATE request the replicators
    make (suffix hashes rehashed; EC per fragment index; databases by sync point or
    hash, timestamps and metadata), and async pendings must be delivered.

    Exit 1 not yet (counts per partition and primary), 2 cannot tell (a primary or
    the device's own server did not answer, the disk is not mounted).  Read-only.
    """
    app = App.current()
    report = destroy_verdict(app, target, timeout=timeout,
                             accept_new_host_keys=accept_new_host_keys)
    msg = verdict_message(report)
    if report.verdict == "cannot_tell":
        raise StepFailed(msg)
    app.message = msg
    if report.verdict == "not_yet":
        app.reason = "risk"
        app.warn(msg)
        app.add_next(app.rerun(drop=()))
        return EXIT_WARNING
    app.remark(msg)
    return EXIT_OK


def removal_gate(app: App, node: str, force: bool) -> None:
    """Before drain-node removes NODE's devices from the rings: safe-to-destroy on all
    of them.  Not safe: exit 1 (not yet) or 2 (cannot tell), nothing written; with
    ``force``, a warning and the removal goes ahead."""
    from ringmgr.errors import NotYet

    app.note(f"checking that nothing on {node}'s devices is missing from their primaries "
             f"(safe-to-destroy) before removing them ...")
    try:
        report = destroy_verdict(app, node)
        msg = None if report.verdict == "safe" else verdict_message(report)
        code = {"safe": 0, "not_yet": 1}.get(report.verdict, 2)
    except Exception as e:  # noqa: BLE001 - the check could not run: cannot tell
        if not force:
            raise
        msg, code = f"cannot tell whether {node} is safe to destroy: {e}", 2
    if msg is None:
        app.note(f"{node}: safe to destroy: every partition on its devices is on its primaries")
        return
    if force:
        app.warn(f"--force: removing {node}'s devices although {msg}")
        return
    again = app.rerun(drop=())
    if code == 1:
        raise NotYet(f"{msg}; nothing was written. Run `{again}` again once replication has "
                     f"moved the data (--force removes the devices anyway)",
                     reason="risk", next=[again])
    raise StepFailed(f"{msg}; nothing was written (--force removes the devices anyway)")
