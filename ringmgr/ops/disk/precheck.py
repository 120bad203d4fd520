"""The read-only checks before anything runs (also on resume), and the kernel-log
errors that are about the disk now in the slot."""

from __future__ import annotations

import time

from ringmgr.errors import Refused, UsageError
from ringmgr.ops import facts
from ringmgr.ops.disk.context import DiskContext
from ringmgr.ops.disk.safety import check_mount_point, refuse_if_in_use
from ringmgr.rings.devices import ring_devices

# -- precheck ---------------------------------------------------------------------
def precheck(ctx: DiskContext, journal) -> dict:
    """Read-only checks before anything runs; refuses with the fix (see the module doc)."""
    node, dev = ctx.node, ctx.dev
    in_config = dev in node.devices or any(dev in r for r in node.ring_devices.values())
    rings = ring_devices(ctx.config, node, dev).get(dev, {})
    if not in_config and not rings:
        raise UsageError(f"device {dev!r} of node {node.name} is in neither the config nor "
                         f"the rings; check the name (`ringmgr status`)")
    if not rings:
        raise UsageError(f"device {dev!r} of node {node.name} ({node.ip}) is in no ring; "
                         f"a disk that holds no partitions needs no replace-disk: add it "
                         f"with add-node")
    if not in_config:
        raise UsageError(f"device {dev!r} is in the rings but not under nodes.{node.name} "
                         f"in {ctx.config.path}; add it to devices there")
    ctx.findings["rings"] = rings
    for ring, d in rings.items():
        ctx.echo(f"  {ring}: device id {d['id']}, weight {d['weight']:g}, "
                 f"{d['parts']} partitions")

    check_mount_point(ctx)

    past_guard = journal.step_state("guard") in ("done", "skipped")
    blk = ctx.lsblk()
    if blk is None:
        if not past_guard:
            raise Refused(f"block device {ctx.block} does not exist on {node.name}; check "
                          f"nodes.{node.name}.block_devices in {ctx.config.path} (or `lsblk` "
                          f"on the node)")
        ctx.echo(f"  {ctx.block}: not present (expected while the disk is out)")
    else:
        probe = ctx.blkid()
        ctx.findings["block_device"] = {"path": ctx.block, "size": blk.size,
                                        "label": probe.get("LABEL"), "uuid": probe.get("UUID")}
        ctx.echo(f"  {ctx.block}: {blk.size / 1e9:.2f} GB, "
                 + (f"{probe.get('TYPE')} label {probe.get('LABEL')}, uuid {probe.get('UUID')}"
                    if probe else "no filesystem"))

    mounts = ctx.mounts()
    here = facts.mounts_at(mounts, ctx.mount_point)
    ctx.findings["mounted"] = here[-1].source if here else None
    ctx.echo(f"  {ctx.mount_point}: " + (f"mounted from {here[-1].source}" if here
                                        else "not mounted"))
    if blk is not None:
        if here and here[-1].major_minor != blk.major_minor:
            raise Refused(f"{ctx.mount_point} is mounted from {here[-1].source}, but the "
                          f"config says {dev} is {ctx.block}: fix "
                          f"nodes.{node.name}.block_devices in {ctx.config.path}")
        refuse_if_in_use(ctx, blk, mounts, allow_mount_point=True)
        if not past_guard:
            old_uuid = ctx.findings["block_device"]["uuid"]
            journal.param("old_uuid", lambda: old_uuid)
            journal.param("old_size", lambda: blk.size)
    if ctx.opts.weight_zero:
        journal.param("weights", lambda: rings)

    show_kernel_errors(ctx, journal, blk, here)
    return ctx.findings


def show_kernel_errors(ctx: DiskContext, journal, blk, here) -> None:
    """The device's I/O errors in the kernel log that are about the disk in the slot
    now: inside the window, and newer than its filesystem or, once the old disk is
    out, newer than that (the log still holds the old disk's lines)."""
    from ringmgr.ops import logwindow
    from ringmgr.ops.kernel_log import mount_root_birth, read_log

    names = {ctx.dev, blk.kname if blk else None, ctx.block.rsplit("/", 1)[-1]} - {None}
    log = read_log(ctx.ex)
    errors = [e for e in facts.parse_kernel_log(log.text) if e.device in names]
    window = logwindow.window_for(None, ctx.config, log.now)
    since, why = None, ""
    if journal.step_state("guard") in ("done", "skipped"):
        since = ctx.params.get("guarded_at") or _step_time(journal, "guard")
        why = f"the old disk was taken out at {logwindow.utc(since)}" if since else ""
    elif blk is not None and here and here[-1].major_minor == blk.major_minor:
        since = mount_root_birth(ctx.ex, ctx.mount_point)
        why = f"its filesystem was made at {logwindow.utc(since)}" if since else ""
    c = logwindow.count_errors(log.timed(errors), window.start, since)
    ctx.findings["kernel_errors"] = len(c.counted)
    ctx.findings["kernel_errors_not_counted"] = c.older_than_fs + c.before_window
    ctx.findings["kernel_log_window"] = window.to_json()
    where = (f"{log.source}, {log.times_note(errors)}" if log.source else "none readable")
    if c.counted:
        ctx.echo(f"  kernel log ({where}): {len(c.counted)} I/O errors "
                 f"({window.describe()}), last: {c.counted[-1].line}")
    else:
        ctx.echo(f"  kernel log ({where}): no I/O errors for {ctx.dev} ({window.describe()})")
    if c.older_than_fs:
        ctx.echo(f"    not counted: {c.older_than_fs} older than {why}")


def _step_time(journal, name: str) -> float | None:
    import calendar

    at = (journal.data["steps"].get(name) or {}).get("at")
    try:
        return float(calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return None

