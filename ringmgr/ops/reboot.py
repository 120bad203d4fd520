"""``ringmgr reboot-node NODE``: the operations guide's "Rebooting a Storage Node"
("simply reboot it"), with the checks an operator at 2 a.m. forgets.

1. **ok-to-stop** with what is already down (``--down``, devices at weight 0): refuse
   (exit 2) when the reboot would leave a partition short of a write quorum (swift's
   own ``quorum_size`` by default, ``--quorum majority`` for the stricter rule) or
   unreadable (``--force`` overrides); the verdict is shown, also in a dry run;
2. read the node's boot id, then run its ``reboot_command`` (default
   ``systemctl reboot``);
3. **wait** until it is back: reachable over SSH with a new boot id, or — where the
   boot id cannot change (a restarted SSH server, as in tests) — reachable again after
   having been unreachable; give up after ``timeout`` (exit 2);
4. **after**: every ring device's mount point under ``mount_root`` is mounted (a disk
   that did not come back makes a server with ``mount_check = true`` answer 507 for
   it), and the node's rings match the admin host's (``ringmgr verify``).

Executors come from ``exec.factory.executor_for`` (``transport`` replaces the
configured one); the clock and sleep are injected so the waiting logic is testable.
A dry run plans the one state-changing command (step ``reboot``); the wait and the
checks after it are polls and reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ringmgr.config import Config
from ringmgr.errors import Refused, StepFailed
from ringmgr.exec import plan as hostplan
from ringmgr.exec.base import Executor
from ringmgr.exec.factory import close_all, executor_for

BOOT_ID = ("cat", "/proc/sys/kernel/random/boot_id")
MOUNTINFO = ("cat", "/proc/self/mountinfo")


@dataclass
class RebootReport:
    node: str
    dry_run: bool = False
    plan: list[hostplan.HostStep] = field(default_factory=list)
    boot_id_before: str | None = None
    boot_id_after: str | None = None
    seconds_down: float | None = None
    unmounted: list[str] = field(default_factory=list)
    rings: dict[str, str] = field(default_factory=dict)
    ok_to_stop: dict = field(default_factory=dict)

    @property
    def commands(self) -> list[list[str]]:
        return [list(s.argv) for s in self.plan]

    @property
    def ok(self) -> bool:
        return not self.unmounted and all(v == "ok" for v in self.rings.values())

    def to_json(self) -> dict:
        return {"written": not self.dry_run, "node": self.node, "dry_run": self.dry_run,
                "commands": self.commands, "host_steps": hostplan.to_json(self.plan),
                "boot_id_before": self.boot_id_before,
                "boot_id_after": self.boot_id_after, "seconds_down": self.seconds_down,
                "unmounted": self.unmounted, "rings": self.rings, "ok": self.ok,
                "ok_to_stop": self.ok_to_stop}


def reboot_node(config: Config, name: str, *, force: bool, dry_run: bool, timeout: float,
                confirm: Callable[[str], None], echo: Callable[[str], None],
                transport=None, poll: float = 2.0, clock=time.monotonic,
                sleep=time.sleep, quorum: str = "swift", down=()) -> RebootReport:
    from ringmgr.live.downstate import live_down_for
    from ringmgr.rings.risk_check import ok_to_stop_check
    from ringmgr.rings.risk import render_ok_to_stop

    node = config.node(name)

    def factory(dry: bool = False) -> Executor:
        return executor_for(config, node, dry_run=dry, transport=transport)

    report = RebootReport(name, dry_run=dry_run)
    check = ok_to_stop_check(config, name, down, quorum=quorum, note=echo,
                             live_down=live_down_for(config))
    report.ok_to_stop = {k: v for k, v in check.items() if k != "written"}
    echo(render_ok_to_stop(check, [name]).rstrip("\n"))
    if not check["ok"]:
        if not force:
            raise Refused(f"rebooting {name} now would leave partitions short of a write "
                          f"quorum or unreadable (see `ringmgr ok-to-stop {name}`); bring the "
                          f"other nodes and disks back first, or pass --force")
        echo(f"warning: --force: rebooting {name} although it is not safe to stop")
    from ringmgr.rings.devices import ring_devices

    devices = sorted(ring_devices(config, node))     # its device names in any ring
    command = hostplan.command_text(node.reboot_command)

    ex = factory(dry_run)
    try:
        report.boot_id_before = ex.run(BOOT_ID, mutates=False).stdout.strip()
        if dry_run:
            with hostplan.step("reboot", destructive=True, reason=f"reboot {name}"):
                ex.run(node.reboot_command)
            report.plan = list(ex.plan)
            echo(f"dry run: would run on {name}: {command}, then wait up to {timeout:g} s "
                 f"for it to come back and check {len(devices)} mount(s) and the rings")
            return report
        confirm(f"Reboot {name} ({node.host}) now?")
        echo(f"rebooting {name}: {command}")
        report.plan = [hostplan.HostStep(name, "reboot", tuple(node.reboot_command), True,
                                         f"reboot {name}")]
        try:
            res = ex.run(node.reboot_command, check=False, timeout=30)
        except Exception as e:  # noqa: BLE001 - the link may drop while the node goes down
            echo(f"the connection to {name} ended during the reboot command ({e})")
            res = None
        if res is not None and res.rc > 0:
            raise StepFailed(f"the reboot command failed on {name} (exit {res.rc}: "
                             f"{(res.stderr or res.stdout).strip()[-200:] or 'no output'}); "
                             f"the node was not rebooted")
    finally:
        close_all(ex)

    ex = _wait_back(factory, report, timeout, poll, clock, sleep, echo)
    try:
        mounts = _mounted(ex)
        report.unmounted = [d for d in devices
                            if f"{node.mount_root.rstrip('/')}/{d}" not in mounts]
    finally:
        close_all(ex)
    from ringmgr.ops.push import verify_rings

    verify = verify_rings(config, [name], transport=transport)
    for r in verify.results:
        report.rings = {ring: state for ring, state in r.verify.items()}
        if r.error:
            report.rings = {"*": f"error: {r.error}"}
    return report


def _wait_back(factory, report: RebootReport, timeout, poll, clock, sleep, echo):
    """Poll until the node answers with a new boot id (or answers again after having
    been unreachable); return a connected executor."""
    start = clock()
    down_since = None
    while clock() - start < timeout:
        sleep(poll)
        ex = None
        try:
            ex = factory()
            boot_id = ex.run(BOOT_ID, mutates=False).stdout.strip()
        except Exception:  # unreachable: connection refused, timeout, reset
            close_all(ex)
            if down_since is None:
                down_since = clock()
                echo(f"{report.node} is down; waiting for it to come back")
            continue
        if boot_id != report.boot_id_before or down_since is not None:
            report.boot_id_after = boot_id
            report.seconds_down = round(clock() - (down_since or start), 1)
            echo(f"{report.node} is back after {clock() - start:.0f} s")
            return ex
        close_all(ex)
    raise StepFailed(f"{report.node} did not come back within {timeout:g} s (still "
                     f"{'unreachable' if down_since else 'running the old boot'}); check its "
                     f"console, then `ringmgr verify {report.node}`")


def _mounted(ex: Executor) -> set[str]:
    from ringmgr.ops.facts import parse_mountinfo

    text = ex.run(MOUNTINFO, mutates=False).stdout
    return {m.mount_point for m in parse_mountinfo(text)}


def render(report: RebootReport) -> str:
    before = report.boot_id_before[:8] if report.boot_id_before else "?"
    after = report.boot_id_after[:8] if report.boot_id_after else "?"
    if report.dry_run:
        state = "dry run, nothing done"
    elif report.boot_id_after and report.boot_id_after == report.boot_id_before:
        state = (f"back after {report.seconds_down:g} s unreachable (boot id {before} "
                 f"unchanged: it came back without a new boot, judged by down-then-up)")
    else:
        state = f"back (boot id {before} -> {after})"
    lines = [f"reboot of {report.node}: {state}"]
    if not report.dry_run:
        lines.append("  disks: " + ("every ring device is mounted" if not report.unmounted
                                    else "NOT MOUNTED: " + ", ".join(report.unmounted)))
        bad = {r: s for r, s in report.rings.items() if s != "ok"}
        lines.append("  rings: " + ("match the admin host's" if not bad else
                                    ", ".join(f"{r} {s}" for r, s in bad.items())
                                    + " (run `ringmgr push " + report.node + "`)"))
    return "\n".join(lines)
