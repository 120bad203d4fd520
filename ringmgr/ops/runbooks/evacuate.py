"""Planned maintenance ("Compute Node Failures and Maintenance"): disable the service,
live-migrate every instance, stop nova-compute, optionally move its init files
aside; and ``restore``, the guide's undo of that."""

from __future__ import annotations

from pathlib import Path

from ringmgr.errors import Refused, StepFailed, UsageError
from ringmgr.exec.runner import Step
from ringmgr.ops.runbooks.common import (DEFAULT_HELD_DIR, DEFAULT_LOG, GUIDE_INIT_FILES,
                                         RunbookContext, is_active, server_or_none,
                                         service_argv, wait_for, write_record)

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
        if not is_active(c):
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
        if is_active(c):
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
        s = server_or_none(c, uuid)
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
            wait_for(c, uuid, target, "live migration of")

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
        if not is_active(c):
            raise StepFailed(f"{host}: nova-compute did not start (see {DEFAULT_LOG})")

    steps.append(Step("start-service", f"start nova-compute on {host}", action=start,
                      check=lambda c: "already running" if is_active(c) else None,
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
