"""``ringmgr health [NODE...]``: one recon sweep of every storage server (read-only)."""

from __future__ import annotations

import click

from ringmgr.cli.app import json_option, pass_app


def register(group: click.Group) -> None:
    group.add_command(health_cmd)


@click.command("health")
@click.argument("nodes", nargs=-1, metavar="[NODE]...")
@click.option("--prometheus", "prom", metavar="FILE", type=click.Path(dir_okay=False),
              help="also write the results as node_exporter textfile metrics to FILE "
                   "(atomically; FILE should end in .prom)")
@json_option
@pass_app
def health_cmd(app, nodes, prom):
    """Ask every account, container and object server's recon middleware at once:
    replication passes, disk usage, unmounted devices, async pendings, quarantined,
    ring and swift.conf md5s, relinker, clock skew, drive-audit errors.

    Exit 0 healthy, 1 warnings (named), 2 servers that do not answer or answer
    something that is not recon (named).
    """
    from ringmgr.errors import UsageError
    from ringmgr.live.health import check, render

    config = app.config
    for n in nodes:
        config.node(n)
    if prom:
        _check_prom_target(prom)
    report = check(config, list(nodes) or None)
    if not report.servers:
        raise UsageError("no recon servers: no ring device belongs to "
                         + (", ".join(nodes) if nodes else "any node"))
    app.out(render(report))
    app.emit(report.to_json())
    for p in report.problems:
        (app.errors if p.severity == "error" else app.warnings).append(p.message)
    if prom:
        from ringmgr.live.prometheus import write_textfile

        write_textfile(prom, report)
        app.written = True
        app.remark(f"metrics written to {prom}")
    code = report.exit_code
    if code == 2:
        app.reason = "failed"
    elif code == 1:
        app.reason = "check_failed"
    return code


def _check_prom_target(path: str) -> None:
    """Refuse to replace a file that is not a metrics file ringmgr wrote."""
    import os

    from ringmgr.errors import Refused, UsageError

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"--prometheus {path}: directory {directory} does not exist")
    if os.path.lexists(path):
        try:
            with open(path, "rb") as f:
                head = f.read(64)
        except OSError as e:
            raise UsageError(f"--prometheus {path}: {e.strerror}")
        if os.path.islink(path) or not (head == b"" or head.startswith(b"# HELP ringmgr_")):
            raise Refused(f"--prometheus {path} exists and is not a metrics file ringmgr "
                          f"wrote; not replacing it")
