"""The operations guide's HDWMY list ("Hourly ... Semiannually"), with the checks that
can be automated actually run: instances in a failed or weird state (daily), disk
space on the storage nodes (weekly), ring consistency across nodes (weekly, through
``ringmgr verify``).  Everything else is listed for the operator.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Callable

from ringmgr.errors import RingmgrError, StepFailed
from ringmgr.exec.base import CommandFailed, Executor
from ringmgr.ops.runbooks.controller import CheckResult

PERIODS = ("hourly", "daily", "weekly", "monthly", "quarterly", "semiannually")


@dataclass(frozen=True)
class Task:
    period: str
    title: str
    check: str | None = None   # key of an automated check

    def to_json(self) -> dict:
        return {"period": self.period, "task": self.title, "automated": self.check is not None}


TASKS: tuple[Task, ...] = (
    Task("hourly", "Check your monitoring system for alerts and act on them"),
    Task("hourly", "Check your ticket queue for new tickets"),
    Task("daily", "Check for instances in a failed or weird state and investigate why",
         "weird-instances"),
    Task("daily", "Check for security patches and apply them as needed"),
    Task("weekly", "Check cloud usage: user quotas, disk space, image usage, large "
                   "instances, network usage (bandwidth and IP usage)"),
    Task("weekly", "Disk space on the storage nodes", "disk-space"),
    Task("weekly", "Ring consistency across storage nodes and proxies (ringmgr verify)",
         "rings"),
    Task("weekly", "Verify your alert mechanisms are still working"),
    Task("monthly", "Check usage and trends over the past month"),
    Task("monthly", "Check for user accounts that should be removed"),
    Task("monthly", "Check for operator accounts that should be removed"),
    Task("quarterly", "Review usage and trends over the past quarter"),
    Task("quarterly", "Prepare any quarterly reports on usage and statistics"),
    Task("quarterly", "Review and plan any necessary cloud additions"),
    Task("quarterly", "Review and plan any major OpenStack upgrades"),
    Task("semiannually", "Upgrade OpenStack"),
    Task("semiannually", "Clean up after an OpenStack upgrade (any unused or new services "
                         "to be aware of?)"),
)

NORMAL_STATES = ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "SHELVED", "SHELVED_OFFLOADED")
FAILED_STATES = ("ERROR", "UNKNOWN")   # UNKNOWN: nova cannot reach the instance's host


class NotApplicable(Exception):
    """An automated check with nothing to look at in this cloud (no storage nodes in the
    config): shown as skipped with the reason, neither pass nor fail."""


CLOUD_ENV = ("OS_CLOUD", "OS_AUTH_URL")


def openstack_configured(openrc, environ) -> str | None:
    """Why the OpenStack client has a cloud to talk to ([openstack].openrc, or
    OS_CLOUD / OS_AUTH_URL in the environment, as the client itself reads them); None
    when it has none: the instances check is then not applicable, not failed."""
    if openrc is not None:
        return f"[openstack].openrc = {openrc}"
    for name in CLOUD_ENV:
        if environ.get(name):
            return f"${name}"
    return None


def _label(s) -> str:
    return f"{s.name or s.id} on {s.host or '?'}"


def weird_instances(api, now: datetime.datetime, stuck_minutes: float = 60.0) -> str:
    """Instances in a failed state, or stuck in a task (a task state, or a transitional
    status such as MIGRATING / BUILD, unchanged for ``stuck_minutes``).

    A task in progress is normal for a while; nova's ``updated_at`` tells how long it
    has been so, through ``server list --changes-before`` (compute API 2.66).  That
    second query is made only when some instance is busy; on an older cloud every busy
    instance is reported, with its age unknown.
    """
    servers = api.all_servers()
    bad = [f"{_label(s)}: {s.status}" + (f"/{s.task_state}" if s.task_state else "")
           for s in servers if s.status in FAILED_STATES]

    def busy(s):
        return s.status not in FAILED_STATES and (
            bool(s.task_state) or s.status not in NORMAL_STATES)

    if any(busy(s) for s in servers):
        cutoff = now.astimezone(datetime.timezone.utc) - datetime.timedelta(minutes=stuck_minutes)
        try:
            stale = api.servers_unchanged_since(cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"))
            age = f"unchanged for over {stuck_minutes:g} min"
        except CommandFailed:
            stale = servers
            age = "for how long unknown: the cloud lacks compute API 2.66"
        bad += [f"{_label(s)}: {s.status}/{s.task_state or '-'} ({age})"
                for s in stale if busy(s)]
    if bad:
        raise StepFailed(f"{len(bad)} instance(s) need a look: {'; '.join(bad[:10])}")
    return f"{len(servers)} instance(s), none failed or stuck"


def parse_df(text: str) -> list[tuple[str, int, int, str]]:
    """``df -P -B1 PATH...``: (filesystem, size bytes, used bytes, mount point).

    Sample::

        Filesystem         1-blocks       Used  Available Capacity Mounted on
        /dev/loop3        314572800   19398656  295174144       7% /srv/node/sdb
    """
    out = []
    for line in text.splitlines()[1:]:
        p = line.split()
        if len(p) >= 6 and p[1].isdigit():
            out.append((p[0], int(p[1]), int(p[2]), " ".join(p[5:])))
    return out


def disk_space(executors: dict[str, Executor], mount_roots: dict[str, str],
               limit_pct: float = 80.0, parallel: int = 32) -> str:
    """Every filesystem under each node's mount root (and the root filesystem), read
    on the nodes in parallel (``fan_out``)."""
    from ringmgr.exec.fanout import fan_out

    script = 'df -P -B1 / "$0"/* 2>/dev/null; true'

    def df(item):
        name, ex = item
        return parse_df(ex.run(["sh", "-c", script, mount_roots[name]], mutates=False).stdout)

    group = fan_out(executors.items(), df, parallel=parallel, name=lambda item: item[0],
                    label="df")
    full, seen = [], 0
    for o in group.outcomes:
        for fs, size, used, mnt in o.value or []:
            seen += 1
            if size and 100.0 * used / size >= limit_pct:
                full.append(f"{o.host}:{mnt} {100.0 * used / size:.0f}%")
    failed = [f"{h}: {e}" for h, e in group.failed.items()]
    if failed or full:
        parts = []
        if full:
            parts.append(f"over {limit_pct:.0f}% full: {', '.join(full)}")
        if failed:
            parts.append(f"unreachable: {'; '.join(failed)}")
        raise StepFailed("; ".join(parts))
    return f"{seen} filesystem(s) on {len(executors)} node(s) under {limit_pct:.0f}% full"


def run_schedule(tasks: tuple[Task, ...], fns: dict[str, Callable[[], str]],
                 periods: tuple[str, ...] = PERIODS) -> list[tuple[Task, CheckResult]]:
    out = []
    for t in tasks:
        if t.period not in periods:
            continue
        if t.check is None or t.check not in fns:
            detail = "by hand" if t.check is None else "not available here"
            out.append((t, CheckResult(t.title, None, detail)))
            continue
        try:
            out.append((t, CheckResult(t.title, True, fns[t.check]())))
        except NotApplicable as e:
            out.append((t, CheckResult(t.title, None, str(e), skipped=True)))
        except RingmgrError as e:
            out.append((t, CheckResult(t.title, False, str(e))))
    return out


def render(results: list[tuple[Task, CheckResult]]) -> str:
    lines, period = [], None
    for t, r in results:
        if t.period != period:
            period = t.period
            lines.append(f"{period.capitalize()}:")
        mark = {"pass": "[ok]  ", "FAIL": "[FAIL]", "manual": "[ ]   ",
                "skipped": "[n/a] "}[r.status]
        shown = r.ok is not None or r.skipped
        lines.append(f"  {mark} {t.title}" + (f" - {r.detail}" if shown else ""))
    return "\n".join(lines)
