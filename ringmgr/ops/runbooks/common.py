"""What the compute runbooks share: their context, the waits on nova, nova-compute's
service control, and the record evacuate leaves for restore."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ringmgr.errors import StepFailed
from ringmgr.exec.base import CommandFailed, Executor
from ringmgr.exec.runner import default_state_dir
from ringmgr.ops.openstack import OpenStack

GUIDE_INIT_FILES = ("/etc/init/nova-compute.conf", "/etc/init.d/nova-compute")
DEFAULT_HELD_DIR = "/root/tmp"   # where the guide moves the init files
DEFAULT_LOG = "/var/log/nova/nova-compute.log"


@dataclass
class RunbookContext:
    """What the steps of one runbook share.  ``api`` talks to OpenStack (through the
    admin host's executor), ``host`` is the compute host's executor."""

    api: OpenStack
    host: Executor | None = None
    dry_run: bool = False
    timeout: float = 600.0
    poll: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    echo: Callable[[str], None] = lambda line: None
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def note(self, line: str) -> None:
        self.notes.append(line)
        self.echo(line)


def service_argv(action: str, name: str = "nova-compute") -> list[str]:
    """``service NAME ACTION`` works with sysvinit, upstart and systemd alike."""
    return ["service", name, action]


def wait_for(ctx: RunbookContext, uuid: str, want_host: str | None, what: str):
    """Poll ``server show`` until ACTIVE (on ``want_host``) or the timeout."""
    deadline = ctx.clock() + ctx.timeout
    while True:
        s = ctx.api.server(uuid)
        if s.status == "ACTIVE" and not s.task_state and (want_host is None or s.host == want_host):
            return s
        if s.status == "ERROR":
            raise StepFailed(f"{what} {uuid}: instance went to ERROR (see: openstack "
                             f"server show {uuid}; nova-compute.log on {s.host})")
        if ctx.clock() >= deadline:
            raise StepFailed(f"{what} {uuid}: not ACTIVE{' on ' + want_host if want_host else ''} "
                             f"after {ctx.timeout:.0f} s (status {s.status}, task "
                             f"{s.task_state}, host {s.host}); run again to continue")
        ctx.sleep(ctx.poll)


def server_or_none(ctx: RunbookContext, uuid: str):
    try:
        return ctx.api.server(uuid)
    except CommandFailed as e:
        if "No server" in str(e) or "could not be found" in str(e):
            return None
        raise


def is_active(ctx: RunbookContext) -> bool:
    return ctx.host.run(service_argv("status"), check=False, mutates=False).rc == 0


# -- held-state record (what evacuate did, for restore) ----------------------------------
def record_path(kind: str, host: str, state_dir: Path | None = None) -> Path:
    return (state_dir or default_state_dir()) / f"{kind}.{host}.record.json"


def write_record(path: Path, data: dict) -> None:
    from ringmgr.exec.runner import write_json_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)


def read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def journaled_instances(journal, find: Callable[[], list[str]], dry_run: bool, *,
                        keep_found: bool = False) -> list[str]:
    """The instances a run works on, chosen once and journaled (a resumed run keeps
    them; ``keep_found``: also add ones found since)."""
    known = list(journal.params.get("instances") or [])
    if not known or keep_found:
        found = find()
        known = known + [u for u in found if u not in known]
    if not dry_run:
        journal.params["instances"] = known
    return known
