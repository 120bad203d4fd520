"""After a compute node reboots ("After a Compute Node Reboots", "Instances"):
nova-compute running and on AMQP, then every instance started (reboot, then --hard)."""

from __future__ import annotations

from ringmgr.errors import StepFailed
from ringmgr.exec.runner import Step
from ringmgr.ops import facts
from ringmgr.ops.runbooks.common import DEFAULT_LOG, RunbookContext, server_or_none, wait_for

def after_reboot_steps(ctx: RunbookContext, host: str, instances: list[str], *,
                       log_path: str = DEFAULT_LOG, process: str = "nova-compute") -> list[Step]:
    def running(c):
        ps = c.host.run(facts.ps_argv(what="args"), mutates=False).stdout
        procs = facts.processes_matching(facts.parse_ps(ps), process)
        if not procs:
            raise StepFailed(f"[{host}] {process} is not running; start it "
                             f"(service nova-compute start) and look at {log_path}")
        c.data["process"] = procs[0]

    def amqp(c):
        res = c.host.run(["tail", "-n", "5000", log_path], check=False, mutates=False)
        if res.rc != 0:
            raise StepFailed(f"[{host}] cannot read {log_path}: {res.stderr.strip()}")
        ok, line = facts.amqp_state(res.stdout)
        if ok is None:
            raise StepFailed(f"[{host}] no AMQP connection in {log_path} yet; wait, or "
                             f"restart nova-compute (it may not reconnect after a long "
                             f"controller outage)")
        if not ok:
            raise StepFailed(f"[{host}] nova-compute lost AMQP: {line}; restart nova-compute")
        c.data["amqp"] = line

    steps = [
        Step("nova-compute-running", f"{process} running on {host}", action=running),
        Step("amqp-connected", f"{process} connected to AMQP ({log_path})", action=amqp),
    ]
    for uuid in instances:
        steps.append(_start_instance_step(uuid, host))

    def report(c):
        bad = []
        for uuid in instances:
            s = server_or_none(c, uuid)
            if s is not None and s.status != "ACTIVE":
                bad.append(f"{uuid} ({s.status})")
        if bad and not c.dry_run:
            raise StepFailed(f"did not come back: {', '.join(bad)}; look at the VNC "
                             f"console (fsck?) and at {log_path} on {host}")

    steps.append(Step("all-active", "every instance ACTIVE", action=report))
    return steps


def _start_instance_step(uuid: str, host: str) -> Step:
    def check(c):
        s = server_or_none(c, uuid)
        if s is None:
            return "instance no longer exists"
        if s.status == "ACTIVE":
            return "already ACTIVE"
        return None

    def action(c):
        try:
            c.api.reboot(uuid)
            if c.dry_run:
                return
            wait_for(c, uuid, None, "reboot of")
            return
        except StepFailed as e:
            # includes nova refusing a soft reboot (HTTP 409) of a SHUTOFF instance
            c.note(f"{uuid}: soft reboot did not bring it back ({e}); trying --hard "
                   f"(re-creates the libvirt XML)")
        c.api.reboot(uuid, hard=True)
        try:
            wait_for(c, uuid, None, "hard reboot of")
        except StepFailed as e:
            c.note(f"{uuid}: did not come back after a hard reboot: {e}")

    return Step(f"start:{uuid}", f"start {uuid} (reboot, then --hard)", action=action,
                check=check, destructive=True)
