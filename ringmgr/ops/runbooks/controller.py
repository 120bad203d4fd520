"""After a cloud controller or storage proxy reboot (operations guide, "After a Cloud
Controller or Storage Proxy Reboots"): are the services' processes there, and do
they answer?

The guide's ``ps aux | grep nova-`` and its ``glance index`` / ``nova list`` /
``openstack project list`` / ``swift stat`` become one table of named checks, each
pass or fail with a detail.  Read-only: nothing here changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ringmgr.errors import RingmgrError
from ringmgr.exec.base import Executor
from ringmgr.ops.facts import parse_ps, processes_matching, ps_argv

CONTROLLER_PROCESSES = ("nova-", "glance-", "keystone", "cinder")
PROXY_PROCESSES = ("swift-proxy",)


@dataclass
class CheckResult:
    name: str
    ok: bool | None          # None: not checked (manual, or not applicable)
    detail: str = ""
    skipped: bool = False    # with ok None: automated, but nothing to check here

    @property
    def status(self) -> str:
        if self.ok is None and self.skipped:
            return "skipped"
        return {True: "pass", False: "FAIL", None: "manual"}[self.ok]

    def to_json(self) -> dict:
        return {"check": self.name, "status": self.status.lower(), "detail": self.detail}


def run_check(name: str, fn: Callable[[], str]) -> CheckResult:
    """``fn`` returns a detail on success and raises on failure."""
    try:
        return CheckResult(name, True, fn())
    except RingmgrError as e:
        return CheckResult(name, False, str(e))


def process_checks(host_exec: Executor, roles: tuple[str, ...]) -> list[CheckResult]:
    try:
        ps = parse_ps(host_exec.run(ps_argv(what="args"), mutates=False).stdout)
    except RingmgrError as e:
        return [CheckResult(f"processes on {host_exec.host}", False, str(e))]
    patterns = []
    if "controller" in roles:
        patterns += CONTROLLER_PROCESSES
    if "proxy" in roles:
        patterns += PROXY_PROCESSES
    out = []
    for pat in patterns:
        found = processes_matching(ps, pat)
        name = f"process {pat}{'*' if pat.endswith('-') else ''} on {host_exec.host}"
        if found:
            names = sorted({c.split()[0].rsplit("/", 1)[-1] if not c.startswith(("python", "/usr/bin/python"))
                            else c.split()[1].rsplit("/", 1)[-1] for c in found})
            out.append(CheckResult(name, True, f"{len(found)} running: {', '.join(names)}"))
        else:
            out.append(CheckResult(name, False, f"no process matching {pat!r}; start the "
                                                f"service and look at its log in /var/log"))
    return out


def functional_checks(api, roles: tuple[str, ...]) -> list[CheckResult]:
    out = []
    if "controller" in roles:
        out.append(run_check("openstack server list (nova)",
                             lambda: f"{len(api.all_servers())} server(s)"))
        out.append(run_check("openstack image list (glance)",
                             lambda: f"{len(api.images())} image(s)"))
        out.append(run_check("openstack project list (keystone)",
                             lambda: f"{len(api.projects())} project(s)"))
    if "proxy" in roles:
        def stat():
            lines = [ln.strip() for ln in api.swift_stat().splitlines() if ln.strip()]
            account = next((ln for ln in lines if ln.startswith("Account:")), "answered")
            return account
        out.append(run_check("swift stat (proxy)", stat))
    return out


def render_table(results: list[CheckResult]) -> str:
    wide = max([len(r.name) for r in results] + [5])
    lines = [f"{'check':<{wide}}  status  detail", f"{'-' * wide}  ------  ------"]
    for r in results:
        lines.append(f"{r.name:<{wide}}  {r.status:<6}  {r.detail}".rstrip())
    return "\n".join(lines)
