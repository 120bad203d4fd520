"""What replace-disk and drive-audit check before they touch a disk or a mount point.

* ``check_mount_point``: ``mount_root/DEV`` resolves inside ``mount_root`` and is a
  directory (not a symlink an unprivileged owner of ``mount_root`` planted).
* ``node_op``: runs one operation of ``disk/node.py`` on the node (the descriptor-based
  guard, chown and write/xattr check; the in-use probe; the node's clocks).
* ``refuse_if_in_use``: a disk is in use when it, a partition or a device stacked on
  it is mounted, swap, or held (device-mapper, md); when it sits on a disk whose other
  partitions are in use (``lsblk -s`` parents: the system disk); when it backs a loop
  device; when a process holds it open (a VM's raw disk, qemu-nbd, a userspace iSCSI
  target); when the kernel has it claimed (an ``O_EXCL`` open fails: mounted in another
  mount namespace, an in-kernel iSCSI target).
"""

from __future__ import annotations

import json
from pathlib import Path

from ringmgr.errors import Refused, StepFailed
from ringmgr.exec import plan as hostplan
from ringmgr.exec.base import Executor
from ringmgr.ops import facts

NODE_SCRIPT = Path(__file__).with_name("node.py").read_text()
NODE_BOOTSTRAP = "import sys;exec(sys.stdin.read())"
NODE_ARGV = ("python3", "-I", "-S", "-c", NODE_BOOTSTRAP)
SYSTEM_MOUNTS = ("/", "/boot", "/boot/efi", "/usr", "/var", "[SWAP]")


hostplan.abbreviate(NODE_ARGV, "python3 <ringmgr disk_node.py>")


def node_argv(op: str, *args: str) -> tuple[str, ...]:
    """The command that runs ``disk_node.py OP ARGS`` on a node (the script on stdin)."""
    return (*NODE_ARGV, op, *args)


def display(argv) -> str:
    """A command as the operator reads it: the node script by its name, not its loader."""
    return hostplan.command_text(argv)


def node_op(ex: Executor, op: str, *args: str, mutates: bool) -> dict:
    """Run one node operation; its JSON answer ({} in a dry run), Refused on a refusal."""
    r = ex.run(node_argv(op, *args), check=False, input=NODE_SCRIPT, mutates=mutates)
    out = r.stdout.strip().splitlines()
    data = {}
    if out:
        try:
            data = json.loads(out[-1])
        except ValueError:
            data = {}
    if r.rc == 3 and "refused" in data:
        raise Refused(data["refused"])
    if not r.ok:
        tail = (r.stderr or r.stdout).strip().splitlines()
        if r.rc == 127:
            raise StepFailed(f"[{ex.host}] python3 is not installed on the node; ringmgr "
                             f"needs it for the mount point and in-use checks")
        raise StepFailed(f"[{ex.host}] {op} failed (exit {r.rc}): "
                         f"{tail[-1] if tail else 'no output'}")
    return data


def check_mount_point(ctx) -> None:
    """Refuse a mount point that resolves outside mount_root or is not a directory."""
    root = ctx.q("realpath", "-m", "--", ctx.mount_root, check=True).stdout.strip()
    real = ctx.q("realpath", "-m", "--", ctx.mount_point, check=True).stdout.strip()
    if real != f"{root.rstrip('/')}/{ctx.dev}":
        raise Refused(f"mount point {ctx.mount_point} resolves to {real}, outside "
                      f"mount_root {root}: remove the symlink and re-run")
    r = ctx.q("stat", "-c", "%F", "--", ctx.mount_point)
    kind = r.stdout.strip()
    if r.ok and kind != "directory":
        raise Refused(f"mount point {ctx.mount_point} is a {kind}, not a directory: remove "
                      f"it and re-run")


# -- in use ---------------------------------------------------------------------------
def refuse_if_in_use(ctx, blk: facts.BlockDev, mounts, *, allow_mount_point: bool) -> None:
    """Refuse when the device is in use (see the module docstring); read-only."""
    own_mount = False
    for d in blk.walk():
        for m in facts.mounts_of(mounts, major_minors=[d.major_minor], paths=[d.path]):
            if m.mount_point == ctx.mount_point and (
                    (allow_mount_point and d is blk) or ctx.assumed_unmounted):
                own_mount = True
                continue
            if m.mount_point in SYSTEM_MOUNTS:
                raise Refused(f"{d.path} holds {m.mount_point}: it is a system disk, never "
                              f"a swift disk; check nodes.{ctx.node.name}.block_devices")
            raise Refused(f"{d.path} is mounted at {m.mount_point}"
                          + (f" (not at {ctx.mount_point})" if allow_mount_point else "")
                          + f": it is in use; unmount it there, or fix "
                          f"nodes.{ctx.node.name}.block_devices if it is the wrong disk")
    for d in blk.walk():
        if d is not blk and d.type not in ("part",):
            raise Refused(f"{blk.path} is in use by {d.path} ({d.type}); remove that first")
        if "[SWAP]" in d.mount_points:
            raise Refused(f"{d.path} is swap space: it is a system disk, never a swift "
                          f"disk; check nodes.{ctx.node.name}.block_devices")
    parent = None
    for d in blk.walk():
        held = facts.parse_holders(ctx.q(*facts.holders_argv(d.kname, parent)).stdout)
        if held:
            raise Refused(f"{d.path} is held by {', '.join(held)} (device-mapper, md, ...): "
                          f"it is in use; tear that down first")
        parent = blk.kname
    refuse_if_parent_in_use(ctx, blk)
    refuse_if_used_by_others(ctx, blk, own_mount=own_mount)


def refuse_if_parent_in_use(ctx, blk: facts.BlockDev) -> None:
    """A partition (or a device-mapper device) on a disk whose other parts are in use:
    the system disk above all."""
    r = ctx.q("lsblk", "-s", "-J", "-b", "-o", facts.LSBLK_COLUMNS, "--", blk.path)
    if not r.ok:
        return
    top = facts.parse_lsblk(r.stdout)
    ancestors = [d for t in top for d in t.walk() if d.major_minor != blk.major_minor]
    disks = sorted({d.path for d in ancestors if not d.children})
    if not disks:
        return
    r = ctx.q("lsblk", "-J", "-b", "-o", facts.LSBLK_COLUMNS, "--", *disks)
    if not r.ok:
        return
    for disk in facts.parse_lsblk(r.stdout):
        for d in _walk_except(disk, blk.major_minor):
            system = [m for m in d.mount_points if m in SYSTEM_MOUNTS]
            if system:
                raise Refused(f"{blk.path} is on {disk.path}, the system disk ({d.path} "
                              f"holds {system[0]}): never a swift disk; check "
                              f"nodes.{ctx.node.name}.block_devices")
            if d.mount_points:
                raise Refused(f"{blk.path} is on {disk.path}, whose {d.path} is mounted at "
                              f"{d.mount_points[0]}: that disk is in use; fix "
                              f"nodes.{ctx.node.name}.block_devices")


def _walk_except(dev: facts.BlockDev, skip: str):
    if dev.major_minor == skip:
        return
    yield dev
    for c in dev.children:
        yield from _walk_except(c, skip)


def refuse_if_used_by_others(ctx, blk: facts.BlockDev, *, own_mount: bool) -> None:
    """Loop devices backed by it, processes holding it open, a failed O_EXCL open."""
    got = node_op(ctx.ex, "inuse", blk.path, mutates=False)
    fix = f"or fix nodes.{ctx.node.name}.block_devices if it is the wrong disk"
    for loop in got.get("loops", []):
        raise Refused(f"{blk.path} backs the loop device {loop['loop']} (backing file "
                      f"{loop['backing_file']}): it is in use; detach it (losetup -d "
                      f"{loop['loop']}) first, {fix}")
    users = got.get("open_by", [])
    if users:
        who = ", ".join(f"{u['comm']} (pid {u['pid']}, {u['user']})" for u in users)
        raise Refused(f"{blk.path} is open by {who}: in use (a VM's raw disk, qemu-nbd, an "
                      f"iSCSI target?); stop that first, {fix}")
    if got.get("exclusive") is False and not own_mount:
        where = got.get("mounted_elsewhere") or []
        if where:
            w = where[0]
            raise Refused(f"{blk.path} is mounted at {w['mount_point']} in another mount "
                          f"namespace (that of {w['comm']}, pid {w['pid']}): in use; "
                          f"unmount it there first, {fix}")
        raise Refused(f"{blk.path} is claimed by the kernel (an exclusive open failed: md, "
                      f"an iSCSI target, a mount in another namespace?): in use; {fix}")
