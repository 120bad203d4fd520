"""The replace-disk steps: unmount, guard, swap, mkfs, fstab, mount, check, chown (and
the weight steps of ``--weight-zero``), each with its check and verify."""

from __future__ import annotations

import time

from ringmgr.errors import Refused, StepFailed
from ringmgr.exec.runner import Step, StopRun
from ringmgr.ops import facts, fstab
from ringmgr.ops.disk.context import DiskContext
from ringmgr.ops.disk.safety import check_mount_point, node_op, refuse_if_in_use
from ringmgr.ops.disk.sizes import peer_sizes, size_warnings, weight_suggested_sizes
from ringmgr.ops.disk.weight import push_wanted as weight_push_wanted
from ringmgr.ops.disk.weight import weight_restore, weight_restore_check, weight_zero

# -- steps --------------------------------------------------------------------------
def _unmount_check(ctx: DiskContext):
    check_mount_point(ctx)
    if ctx.mounted_here() is None:
        return f"{ctx.mount_point} is not mounted"
    return None


def _unmount(ctx: DiskContext):
    argv = ["umount", *(["-l"] if ctx.opts.lazy else []), "--", ctx.mount_point]
    r = ctx.ex.run(argv, check=False)
    if r.ok:
        ctx.assumed_unmounted = ctx.dry_run
        return
    if "busy" in (r.stderr + r.stdout):
        pids = facts.parse_fuser_pids(ctx.q(*facts.fuser_argv(ctx.mount_point)).stdout)
        holders = ([p.describe() for p in facts.parse_ps(ctx.q(*facts.ps_argv(pids)).stdout)]
                   if pids else [])
        who = ", ".join(holders) if holders else "unknown processes (fuser found none)"
        raise Refused(f"{ctx.mount_point} is busy: held by {who}; stop them (e.g. "
                      f"swift-init object stop) and re-run, or pass --lazy")
    raise StepFailed(f"umount {ctx.mount_point} failed: {(r.stderr or r.stdout).strip()}")


def _unmount_verify(ctx: DiskContext):
    if ctx.mounted_here() is not None and not ctx.opts.lazy:
        raise StepFailed(f"{ctx.mount_point} is still mounted after umount")


def _guard(ctx: DiskContext):
    """mkdir, chown root:root, chmod 0755 on a descriptor opened without following a
    symlink (``node.guard``): right after the unmount, the owner of mount_root
    may have put a symlink where the mount point was."""
    node_op(ctx.ex, "guard", ctx.mount_root, ctx.dev, mutates=True)
    if not ctx.dry_run:
        ctx.params["guarded_at"] = time.time()


def _guard_verify(ctx: DiskContext):
    st = ctx.q("stat", "-c", "%F %u:%g %a", "--", ctx.mount_point, check=True).stdout.strip()
    if st != "directory 0:0 755":
        raise StepFailed(f"{ctx.mount_point} is {st}, not a root:root 0755 directory")


def _swap(ctx: DiskContext):
    o = ctx.opts
    if not o.replaced:
        if ctx.ask_replaced is None or not ctx.ask_replaced():
            flags = " --force-format" if o.force_format else ""
            then = (f"ringmgr replace-disk {ctx.node.name} {ctx.dev} --replaced{flags}")
            if ctx.dry_run:
                raise StopRun(
                    f"a real run will unmount {ctx.mount_point}, guard it (root:root 0755) "
                    f"and stop here; swift servers with mount_check = true will then answer "
                    f"507 for {ctx.dev}. After the swap you will run: {then}")
            raise StopRun(
                f"{ctx.mount_point} is unmounted and guarded (root:root 0755); swift "
                f"servers with mount_check = true answer 507 for {ctx.dev} meanwhile. "
                f"Swap the disk, then run: {then}")
    blk = ctx.lsblk()
    if blk is None:
        raise Refused(f"the kernel does not see {ctx.block} on {ctx.node.name}: check the "
                      f"disk is seated (dmesg, lsblk; rescan the SCSI host) and re-run")
    old_size = ctx.params.get("old_size")
    ctx.findings["new_size"] = blk.size
    own = {r: d["weight"] for r, d in (ctx.params.get("weights")
                                       or ctx.findings.get("rings", {})).items()}
    expected = weight_suggested_sizes(own, peer_sizes(ctx), old_size)
    ctx.findings["weight_suggests"] = expected
    for text in size_warnings(blk.size, old_size, expected):
        ctx.warn(text)
    old_uuid = ctx.params.get("old_uuid")
    now = ctx.blkid().get("UUID")
    if old_uuid and now == old_uuid and not o.force_format:
        raise Refused(f"{ctx.block} still carries the filesystem (UUID {old_uuid}) that was "
                      f"mounted at {ctx.mount_point}: the disk was not swapped. Swap it, or "
                      f"pass --force-format to reformat this very disk")


def _mkfs_check(ctx: DiskContext):
    if ctx.blkid().get("UUID") == ctx.params["uuid"]:
        return f"{ctx.block} already has the new filesystem (UUID {ctx.params['uuid']})"
    blk = ctx.lsblk()
    if blk is None:
        raise Refused(f"the kernel does not see {ctx.block}; nothing was formatted")
    # right before mkfs: mounts, holders, parents, loops, open descriptors, O_EXCL
    refuse_if_in_use(ctx, blk, ctx.mounts(), allow_mount_point=False)
    if ctx.node.fstab_by == "label":
        label = ctx.params["label"]
        r = ctx.q("blkid", "-c", "/dev/null", "-o", "device", "-t", f"LABEL={label}", "--")
        others = sorted(set(r.stdout.split()) - {ctx.block, blk.path})
        if others:
            raise Refused(f"{', '.join(others)} already carries the label {label!r}: "
                          f"LABEL={label} in fstab would be ambiguous; choose another "
                          f"with --label, or fstab_by = \"uuid\"")
    return None


def mkfs_argv(ctx: DiskContext) -> list[str]:
    return ["mkfs.xfs", "-f", "-L", ctx.params["label"], "-m", f"uuid={ctx.params['uuid']}",
            *ctx.node.mkfs_options, "--", ctx.block]


def _mkfs(ctx: DiskContext):
    ctx.ex.run(mkfs_argv(ctx))
    if not ctx.dry_run:
        ctx.params["formatted_at"] = time.time()


def _mkfs_verify(ctx: DiskContext):
    got = ctx.blkid()
    if got.get("UUID") != ctx.params["uuid"] or got.get("TYPE") != "xfs":
        raise StepFailed(f"{ctx.block} does not show the new XFS filesystem after mkfs "
                         f"(blkid: {got or 'nothing'})")


def fstab_line(ctx: DiskContext) -> str:
    spec = fstab.spec_for(ctx.node.fstab_by, ctx.params["label"], ctx.params["uuid"])
    return fstab.entry_line(spec, ctx.mount_point, "xfs", ctx.node.mount_options)


def _read_fstab(ctx: DiskContext) -> str:
    r = ctx.q("cat", "--", ctx.fstab_path)
    if not r.ok:
        raise Refused(f"cannot read {ctx.fstab_path} on {ctx.node.name}: "
                      f"{r.stderr.strip()}; check nodes.{ctx.node.name}.fstab")
    return r.stdout


def _fstab_check(ctx: DiskContext):
    text = _read_fstab(ctx)
    _, changed = fstab.set_entry(text, ctx.mount_point, fstab_line(ctx))
    if not changed:
        return f"{ctx.fstab_path} already has exactly this entry"
    return None


def _fstab(ctx: DiskContext):
    text = _read_fstab(ctx)
    new, _ = fstab.set_entry(text, ctx.mount_point, fstab_line(ctx))
    for argv in fstab.write_commands(ctx.fstab_path, ctx.params["tag"]):
        ctx.ex.run(argv, input=new if argv[0] == "dd" else None)
    if ctx.q("test", "-d", "/run/systemd/system").ok:
        ctx.ex.run(["systemctl", "daemon-reload"])


def _fstab_verify(ctx: DiskContext):
    entries = fstab.entries_for(_read_fstab(ctx), ctx.mount_point)
    if entries != [fstab_line(ctx)]:
        raise StepFailed(f"{ctx.fstab_path} has {entries} for {ctx.mount_point}")


def _mount_check(ctx: DiskContext):
    check_mount_point(ctx)
    m = ctx.mounted_here()
    if m is not None:
        blk = ctx.lsblk()
        if blk is not None and m.major_minor == blk.major_minor:
            return f"{ctx.mount_point} is already mounted from {ctx.block}"
        raise Refused(f"{ctx.mount_point} is mounted from {m.source}, not {ctx.block}: "
                      f"unmount it and re-run")
    return None


def mount_argv(ctx: DiskContext) -> list[str]:
    if ctx.fstab_path == "/etc/fstab":
        return ["mount", "--", ctx.mount_point]
    return ["mount", "--fstab", ctx.fstab_path, "--", ctx.mount_point]


def _mount(ctx: DiskContext):
    ctx.ex.run(mount_argv(ctx))


def _mount_verify(ctx: DiskContext):
    m, blk = ctx.mounted_here(), ctx.lsblk()
    if m is None or blk is None or m.major_minor != blk.major_minor:
        raise StepFailed(f"{ctx.mount_point} is not mounted from {ctx.block} after mount "
                         f"(found {m.source if m else 'nothing'})")


def _new_fs_device(ctx: DiskContext) -> str:
    blk = ctx.lsblk()
    if blk is None:
        raise Refused(f"the kernel does not see {ctx.block} on {ctx.node.name}")
    return blk.major_minor


def _chown(ctx: DiskContext):
    """fchown on the mounted filesystem's root, opened without following a symlink
    and checked to be the new disk's filesystem (``node.own``)."""
    got = node_op(ctx.ex, "own", ctx.mount_root, ctx.dev, _new_fs_device(ctx),
                  ctx.node.owner, mutates=True)
    ctx.findings["owner_ids"] = f"{got.get('uid')}:{got.get('gid')}"


def _chown_verify(ctx: DiskContext):
    want = ctx.findings.get("owner_ids")
    got = ctx.q("stat", "-c", "%u:%g", "--", ctx.mount_point, check=True).stdout.strip()
    if got != want:
        raise StepFailed(f"{ctx.mount_point} is owned by {got}, not {ctx.node.owner} "
                         f"({want})")


def _check(ctx: DiskContext):
    """Runs while the new filesystem is still root:root 0755 (before the chown), on a
    file with a random name created O_EXCL|O_NOFOLLOW (``node.check``)."""
    try:
        node_op(ctx.ex, "check", ctx.mount_root, ctx.dev, _new_fs_device(ctx),
                mutates=True)
    except (Refused, StepFailed) as e:
        raise StepFailed(f"{ctx.mount_point} failed the write/xattr check: {e}") from None


def take_out_steps(ctx: DiskContext) -> list[Step[DiskContext]]:
    """Unmount and guard: taking a disk out of service (also drive-audit --act)."""
    mp = ctx.mount_point
    return [
        Step("unmount", f"Unmount {mp}", _unmount, check=_unmount_check,
             verify=_unmount_verify),
        Step("guard", f"Guard the empty mount point {mp} (root:root 0755, never through "
                      f"a symlink)", _guard, verify=_guard_verify),
    ]


def replace_disk_steps(ctx: DiskContext) -> list[Step[DiskContext]]:
    mp, block = ctx.mount_point, ctx.block
    steps = [
        *take_out_steps(ctx),
        Step("swap", f"Swap the disk: the new {block} is in", _swap),
        Step("mkfs", f"Format {block}: mkfs.xfs -L {ctx.params['label']} "
                     f"-m uuid={ctx.params['uuid']}", _mkfs, check=_mkfs_check,
             verify=_mkfs_verify, destructive=True),
        Step("fstab", f"Write one fstab entry for {mp} ({ctx.fstab_path})", _fstab,
             check=_fstab_check, verify=_fstab_verify, destructive=True),
        Step("mount", f"Mount {mp}", _mount, check=_mount_check, verify=_mount_verify),
        Step("check", f"Check {mp} is writable and user xattrs work", _check),
        Step("chown", f"Chown {mp} to {ctx.node.owner}", _chown, verify=_chown_verify),
    ]
    if ctx.opts.weight_zero:
        push = " and push" if weight_push_wanted(ctx) else ""
        steps.insert(0, Step("weight-zero", f"Set {ctx.dev}'s weight to 0 on every ring{push}",
                             weight_zero, destructive=True))
        steps.append(Step("weight-restore", f"Restore {ctx.dev}'s weight on every ring{push}",
                          weight_restore, check=weight_restore_check, destructive=True))
    return steps

