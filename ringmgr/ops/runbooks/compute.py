"""Compute-node runbooks from the operations guide, as runner steps.

- ``evacuate_steps``: planned maintenance ("Compute Node Failures and Maintenance"):
  disable the service, live-migrate every instance, stop nova-compute, optionally
  move its init files aside.
- ``restore_steps``: the guide's undo of that, optionally migrating instances back.
- ``after_reboot_steps``: "After a Compute Node Reboots" and "Instances".
- ``recover_host_steps``: "Total Compute Node Failure" (nova ``server evacuate``, or
  the guide's SQL way, see ``sqlrecover``), then hard reboots and volume reattach.
- ``inspect_steps`` / ``release_steps``: "Inspecting and Recovering Data from Failed
  Instances" (virsh suspend, qemu-nbd, read-only mount, and back).

Every step reads the state first (``check``) and skips with a reason when there is
nothing to do, so running a runbook again continues where it stopped.  All host and
cloud access goes through executors and the adapters in ``ringmgr.ops.openstack``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ringmgr.errors import Refused, StepFailed, UsageError
from ringmgr.exec.base import CommandFailed
from ringmgr.exec.runner import Step, default_state_dir
from ringmgr.ops.inspect_mount import INSPECT_ROOT, mount_read_only
from ringmgr.ops.openstack import OpenStack, QemuNbd, Virsh, first_partition, parse_mounts

GUIDE_INIT_FILES = ("/etc/init/nova-compute.conf", "/etc/init.d/nova-compute")
DEFAULT_HELD_DIR = "/root/tmp"   # where the guide moves the init files
DEFAULT_LOG = "/var/log/nova/nova-compute.log"


@dataclass
class RunbookContext:
    """What the steps of one runbook share.  ``api`` talks to OpenStack (through the
    admin host's executor), ``host`` is the compute host's executor."""

    api: OpenStack
    host: object = None
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


# -- pure helpers -----------------------------------------------------------------------
_AMQP_OK = re.compile(r"(Re)?[Cc]onnected to AMQP server")
_AMQP_BAD = re.compile(r"AMQP server .* (is )?unreachable|AMQP.*(ERROR|Connection refused)")


def amqp_state(log_text: str) -> tuple[bool | None, str]:
    """The last AMQP event in a nova-compute log: (connected?, that line).

    Sample (the guide's, and oslo.messaging's newer wording)::

        2013-02-26 09:51:31 12427 INFO nova.openstack.common.rpc.common [-] Connected to AMQP server on 199.116.232.36:5672
        ... ERROR oslo.messaging._drivers.impl_rabbit [-] AMQP server on 10.0.0.2:5672 is unreachable: ...
        ... INFO oslo.messaging._drivers.impl_rabbit [-] Reconnected to AMQP server on 10.0.0.2:5672 via [amqp] client ...

    ``None`` when the log has no AMQP line at all.
    """
    state, last = None, ""
    for line in log_text.splitlines():
        if _AMQP_OK.search(line):
            state, last = True, line.strip()
        elif _AMQP_BAD.search(line):
            state, last = False, line.strip()
    return state, last


def parse_ps(text: str) -> list[str]:
    """``ps -eo args=``: one command line per line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def processes_matching(cmdlines: list[str], pattern: str) -> list[str]:
    """Like the guide's ``ps aux | grep nova-``, without matching the grep itself."""
    return [c for c in cmdlines if pattern in c and not c.startswith(("grep ", "ps "))]


def service_argv(action: str, name: str = "nova-compute") -> list[str]:
    """``service NAME ACTION`` works with sysvinit, upstart and systemd alike."""
    return ["service", name, action]


def _wait_for(ctx: RunbookContext, uuid: str, want_host: str | None, what: str):
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


def _server_or_none(ctx: RunbookContext, uuid: str):
    try:
        return ctx.api.server(uuid)
    except CommandFailed as e:
        if "No server" in str(e) or "could not be found" in str(e):
            return None
        raise


def _is_active(ctx) -> bool:
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


# -- evacuate (planned maintenance) --------------------------------------------------------
def evacuate_steps(ctx: RunbookContext, host: str, target: str, instances: list[str], *,
                   block_migrate: bool = False, move_init_files: bool = False,
                   init_files=GUIDE_INIT_FILES, held_dir: str = DEFAULT_HELD_DIR,
                   record: Path | None = None) -> list[Step]:
    if host == target:
        raise UsageError("HOST and --to TARGET are the same host")

    def check_target(c):
        svc = c.api.compute_service(target)
        if not (svc.enabled and svc.up):
            raise Refused(f"target {target}: nova-compute is {svc.status}/{svc.state}; "
                          f"pick a target whose service is enabled and up")
        return None

    def disabled(c):
        return "already disabled" if not c.api.compute_service(host).enabled else None

    def disable(c):
        c.api.disable_service(host, f"ringmgr: maintenance, instances moving to {target}")

    def verify_disabled(c):
        if c.api.compute_service(host).enabled:
            raise StepFailed(f"{host}: nova-compute is still enabled after disabling it")

    steps = [
        Step("check-target", f"target {target}: nova-compute enabled and up",
             action=lambda c: None, check=check_target),
        Step("disable-service", f"disable nova-compute on {host} (nothing new lands there)",
             action=disable, check=disabled, verify=verify_disabled, destructive=True),
    ]
    for uuid in instances:
        steps.append(_migrate_step(uuid, host, target, block_migrate))

    def still_running(c):
        if not _is_active(c):
            return "nova-compute already stopped"
        if not c.dry_run:
            left = [s.id for s in c.api.servers_on(host)]
            if left:
                raise Refused(f"{len(left)} instance(s) still on {host} ({', '.join(left)}); "
                              f"migrate them first (run the command again)")
        return None

    def stop(c):
        c.host.run(service_argv("stop"))

    def verify_stopped(c):
        if _is_active(c):
            raise StepFailed(f"{host}: nova-compute still running after stop")

    steps.append(Step("stop-service", f"stop nova-compute on {host}", action=stop,
                      check=still_running, verify=verify_stopped, destructive=True))
    if move_init_files:
        steps.append(_move_files_step("hold-init-files", list(init_files), held_dir,
                                      to_held=True))
    if record is not None:
        def save(c):
            if not c.dry_run:
                write_record(record, {"host": host, "target": target,
                                      "instances": list(instances),
                                      "init_files": list(init_files) if move_init_files else [],
                                      "held_dir": held_dir})
        steps.append(Step("record", "record what was moved (for compute restore)",
                          action=save))
    return steps


def _migrate_step(uuid: str, host: str, target: str, block: bool) -> Step:
    def check(c):
        s = _server_or_none(c, uuid)
        if s is None:
            return "instance no longer exists"
        if s.host == target and s.status == "ACTIVE":
            return f"already ACTIVE on {target}"
        if s.host != host:
            return f"on {s.host}, not on {host}: left alone"
        return None

    def action(c):
        c.api.live_migrate(uuid, target, block_migrate=block)
        if not c.dry_run:
            _wait_for(c, uuid, target, "live migration of")

    how = "block-migrate" if block else "live-migrate"
    return Step(f"migrate:{uuid}", f"{how} {uuid} to {target}", action=action, check=check,
                destructive=True)


def _move_files_step(name: str, files: list[str], held_dir: str, to_held: bool) -> Step:
    """Move init files into ``held_dir`` (or back), one ``mv`` per file that exists."""
    def pairs():
        for f in files:
            held = f"{held_dir.rstrip('/')}/{Path(f).name}"
            yield (f, held) if to_held else (held, f)

    def exists(c, path):
        return c.host.run(["test", "-e", path], check=False, mutates=False).rc == 0

    def check(c):
        if not any(exists(c, src) for src, _ in pairs()):
            return "nothing to move" if to_held else "no files held"
        return None

    def action(c):
        c.host.run(["mkdir", "-p", held_dir if to_held else str(Path(files[0]).parent)])
        for src, dst in pairs():
            if exists(c, src):
                if exists(c, dst):
                    raise Refused(f"[{c.host.host}] {dst} exists already; will not "
                                  f"overwrite it with {src}")
                c.host.run(["mkdir", "-p", str(Path(dst).parent)])
                c.host.run(["mv", src, dst])

    def verify(c):
        left = [src for src, _ in pairs() if exists(c, src)]
        if left:
            raise StepFailed(f"[{c.host.host}] not moved: {', '.join(left)}")

    title = (f"move init files aside to {held_dir} (configuration management)" if to_held
             else f"put init files back from {held_dir}")
    return Step(name, title, action=action, check=check, verify=verify, destructive=True)


# -- restore -----------------------------------------------------------------------------
def restore_steps(ctx: RunbookContext, host: str, record: dict | None, *,
                  migrate_back: bool = False, init_files=GUIDE_INIT_FILES,
                  held_dir: str = DEFAULT_HELD_DIR) -> list[Step]:
    if record:
        init_files = record.get("init_files") or init_files
        held_dir = record.get("held_dir") or held_dir
    steps = [_move_files_step("unhold-init-files", list(init_files), held_dir, to_held=False)]

    def start(c):
        c.host.run(service_argv("start"))

    def verify_started(c):
        if not _is_active(c):
            raise StepFailed(f"{host}: nova-compute did not start (see {DEFAULT_LOG})")

    steps.append(Step("start-service", f"start nova-compute on {host}", action=start,
                      check=lambda c: "already running" if _is_active(c) else None,
                      verify=verify_started, destructive=True))

    def enable(c):
        c.api.enable_service(host)

    steps.append(Step("enable-service", f"enable nova-compute on {host}", action=enable,
                      check=lambda c: "already enabled" if c.api.compute_service(host).enabled
                      else None, destructive=True))
    if migrate_back:
        if not record:
            raise UsageError(f"no record of an evacuation of {host}: cannot tell which "
                             f"instances to migrate back (run without --migrate-back)")
        for uuid in record["instances"]:
            steps.append(_migrate_step(uuid, record["target"], host, False))
    return steps


# -- after a reboot ----------------------------------------------------------------------
def after_reboot_steps(ctx: RunbookContext, host: str, instances: list[str], *,
                       log_path: str = DEFAULT_LOG, process: str = "nova-compute") -> list[Step]:
    def running(c):
        procs = processes_matching(parse_ps(c.host.run(["ps", "-eo", "args="],
                                                       mutates=False).stdout), process)
        if not procs:
            raise StepFailed(f"[{host}] {process} is not running; start it "
                             f"(service nova-compute start) and look at {log_path}")
        c.data["process"] = procs[0]

    def amqp(c):
        res = c.host.run(["tail", "-n", "5000", log_path], check=False, mutates=False)
        if res.rc != 0:
            raise StepFailed(f"[{host}] cannot read {log_path}: {res.stderr.strip()}")
        ok, line = amqp_state(res.stdout)
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
            s = _server_or_none(c, uuid)
            if s is not None and s.status != "ACTIVE":
                bad.append(f"{uuid} ({s.status})")
        if bad and not c.dry_run:
            raise StepFailed(f"did not come back: {', '.join(bad)}; look at the VNC "
                             f"console (fsck?) and at {log_path} on {host}")

    steps.append(Step("all-active", "every instance ACTIVE", action=report))
    return steps


def _start_instance_step(uuid: str, host: str) -> Step:
    def check(c):
        s = _server_or_none(c, uuid)
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
            _wait_for(c, uuid, None, "reboot of")
            return
        except StepFailed as e:
            # includes nova refusing a soft reboot (HTTP 409) of a SHUTOFF instance
            c.note(f"{uuid}: soft reboot did not bring it back ({e}); trying --hard "
                   f"(re-creates the libvirt XML)")
        c.api.reboot(uuid, hard=True)
        try:
            _wait_for(c, uuid, None, "hard reboot of")
        except StepFailed as e:
            c.note(f"{uuid}: did not come back after a hard reboot: {e}")

    return Step(f"start:{uuid}", f"start {uuid} (reboot, then --hard)", action=action,
                check=check, destructive=True)


# -- total failure: recover-host ------------------------------------------------------------
def recover_precheck(ctx: RunbookContext, failed: str) -> Step:
    def check(c):
        svc = c.api.compute_service(failed)
        if svc.up and not svc.forced_down:
            raise Refused(f"{failed}: nova-compute is reported up; recover-host is for a "
                          f"dead host (for maintenance use: ringmgr compute evacuate "
                          f"{failed} --to TARGET)")
        return None

    return Step("failed-host-down", f"{failed}: nova-compute reported down",
                action=lambda c: None, check=check)


def recover_evacuate_steps(ctx: RunbookContext, failed: str, target: str,
                           instances: list[str]) -> list[Step]:
    def check_down(c):
        svc = c.api.compute_service(failed)
        if svc.forced_down and not svc.enabled:
            return "already forced down and disabled"
        return None

    def mark_down(c):
        c.api.force_down(failed)
        c.api.disable_service(failed, f"ringmgr: host failed, evacuated to {target}")

    steps = [recover_precheck(ctx, failed),
             Step("force-down", f"mark {failed}'s nova-compute down and disabled",
                  action=mark_down, check=check_down, destructive=True)]
    for uuid in instances:
        def check(c, uuid=uuid):
            s = _server_or_none(c, uuid)
            if s is None:
                return "instance no longer exists"
            if s.host == target and s.status == "ACTIVE":
                return f"already ACTIVE on {target}"
            return None

        def action(c, uuid=uuid):
            c.api.evacuate(uuid, target)
            if not c.dry_run:
                _wait_for(c, uuid, target, "evacuation of")

        steps.append(Step(f"evacuate:{uuid}", f"evacuate {uuid} to {target}", action=action,
                          check=check, destructive=True))
    return steps


def recover_sql_steps(ctx: RunbookContext, failed: str, target: str, instances: list[str],
                      volumes: list[dict], *, nova, neutron, backup_path: Path,
                      node: str | None = None) -> list[Step]:
    from ringmgr.ops.runbooks import sqlrecover

    def check_rows(c):
        plan = sqlrecover.move_host(nova, neutron, failed, target, node=node, dry_run=True)
        c.data["sql_plan"] = plan
        if plan.empty:
            return f"no rows left on {failed} in nova or neutron"
        return None

    def move(c):
        if c.dry_run:
            c.echo(c.data["sql_plan"].text())
            return
        report = sqlrecover.move_host(nova, neutron, failed, target, node=node,
                                      backup_path=backup_path)
        c.data["sql_report"] = report
        c.note(f"rows backed up to {report.backup}")

    steps = [recover_precheck(ctx, failed),
             Step("move-rows", f"move instances and port bindings from {failed} to {target} "
                  f"in nova and neutron (backup {backup_path})", action=move,
                  check=check_rows, destructive=True)]
    for uuid in instances:
        steps.append(Step(f"reboot-hard:{uuid}", f"hard-reboot {uuid} (re-creates its XML)",
                          action=lambda c, u=uuid: c.api.reboot(u, hard=True),
                          destructive=True))
    for v in volumes:
        inst, vol, dev = v["instance_uuid"], v["volume_uuid"], v.get("mountpoint")

        def reattach(c, inst=inst, vol=vol, dev=dev):
            if not c.dry_run:
                _wait_for(c, inst, None, "boot of")
            c.api.detach_volume(inst, vol)
            c.api.attach_volume(inst, vol, dev)

        steps.append(Step(f"reattach:{vol}", f"reattach volume {vol} to {inst} at {dev}",
                          action=reattach, destructive=True))
    return steps


# -- inspect a failed instance's disk -------------------------------------------------------
def inspect_mountpoint(uuid: str) -> str:
    return f"{INSPECT_ROOT}/{uuid}"


def _domain_state(c, domain: str) -> str | None:
    d = Virsh(c.host).domain(domain)
    return d.state if d else None


def inspect_steps(ctx: RunbookContext, uuid: str, domain: str, disk: str, fmt: str,
                  device: Callable[[], str]) -> list[Step]:
    """``device()`` returns the nbd device to use (chosen once, journaled); ``fmt`` is
    the image format from the domain XML (qemu-nbd never probes it)."""
    mnt = inspect_mountpoint(uuid)

    def suspend_check(c):
        st = _domain_state(c, domain)
        if st is None:
            raise Refused(f"[{c.host.host}] no libvirt domain {domain} (virsh list --all)")
        return "already paused" if st == "paused" else None

    def connect_check(c):
        if mnt in _mounts(c):
            return "already mounted"
        dev = device()
        base = dev.rsplit("/", 1)[-1]
        if c.host.run(["test", "-e", f"/sys/block/{base}/pid"], check=False,
                      mutates=False).rc == 0:
            return f"{dev} already connected (an earlier run)"
        return None

    def connect(c):
        nbd = QemuNbd(c.host)
        nbd.load_module()
        nbd.connect(device(), disk, fmt)

    def mount(c):
        dev = device()
        base = dev.rsplit("/", 1)[-1]
        ls = c.host.run(["ls", f"/sys/block/{base}"], check=False, mutates=False).stdout
        part = first_partition(dev, ls.split())
        c.data["mount_options"] = mount_read_only(c.host, part, mnt, dry_run=c.dry_run)
        c.data["mountpoint"] = mnt

    return [
        Step("suspend", f"virsh suspend {domain}", action=lambda c: Virsh(c.host).suspend(domain),
             check=suspend_check),
        Step("nbd-connect", f"qemu-nbd --read-only -f {fmt} -c {disk}", action=connect,
             check=connect_check),
        Step("mount", f"mount read-only (nosuid, nodev, noexec, no journal replay) at {mnt} "
                      f"under a 0700 {INSPECT_ROOT}", action=mount,
             check=lambda c: "already mounted" if mnt in _mounts(c) else None),
    ]


def _mounts(c) -> dict[str, str]:
    return parse_mounts(c.host.run(["cat", "/proc/mounts"], mutates=False).stdout)


def release_steps(ctx: RunbookContext, uuid: str, domain: str, device: str | None) -> list[Step]:
    """The reverse of ``inspect_steps``; every step checks first, so it is also the
    cleanup after a failed inspection."""
    mnt = inspect_mountpoint(uuid)

    def umount(c):
        c.host.run(["umount", mnt])

    def umount_check(c):
        src = _mounts(c).get(mnt)
        c.data["device"] = re.sub(r"p\d+$", "", src) if src else device
        return None if src else "not mounted"

    def disconnect_check(c):
        dev = c.data.get("device") or device
        if not dev:
            return "no nbd device recorded"
        base = dev.rsplit("/", 1)[-1]
        if c.host.run(["test", "-e", f"/sys/block/{base}/pid"], check=False,
                      mutates=False).rc != 0:
            return f"{dev} not connected"
        return None

    def resume_check(c):
        st = _domain_state(c, domain)
        return None if st == "paused" else f"domain is {st or 'gone'}, not paused"

    return [
        Step("umount", f"umount {mnt}", action=umount, check=umount_check),
        Step("nbd-disconnect", "qemu-nbd -d",
             action=lambda c: QemuNbd(c.host).disconnect(c.data.get("device") or device),
             check=disconnect_check),
        Step("resume", f"virsh resume {domain}", action=lambda c: Virsh(c.host).resume(domain),
             check=resume_check),
    ]
