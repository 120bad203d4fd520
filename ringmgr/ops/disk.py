"""The failed-disk flow as steps: precheck, unmount, guard, swap, mkfs, fstab, mount, checks.

Why each step exists, in the order they run:

* precheck (always, also on resume): node and device known in the config and the
  rings, the block device present, the mount point a directory inside ``mount_root``,
  the block device not mounted anywhere else, not in use (``disk_safety``); the
  kernel-log errors that are about the disk now in the slot (``logwindow``).
* unmount ``mount_root/DEV`` (a no-op when unmounted; busy: refuse naming the holders).
* guard: the empty mount point becomes ``root:root 0755``, so nothing running as swift
  fills the root filesystem while the disk is out; done on a descriptor opened without
  following a symlink (``disk_node.guard``), since swift owns ``mount_root``.
* swap: without ``--replaced`` the run stops here (exit 0) and prints what to run once
  the new disk is in.  With it: the kernel must see the device; a device that still
  carries the filesystem UUID mounted there before was not swapped (refused unless
  ``--force-format``).
* mkfs.xfs with the label and the UUID chosen before the run (journaled, so a dry run
  shows the very command a real run executes), right after checking again that the
  disk is not in use (mounts, holders, parents, loop devices, open descriptors, an
  ``O_EXCL`` probe).
* fstab: exactly one entry, by LABEL or UUID (``fstab.set_entry``), written atomically
  with a backup; ``systemctl daemon-reload`` where systemd runs.
* mount from that entry; check it is writable and that user xattrs work (swift keeps
  object metadata in them) while it is still root's; then chown it to the owner.
* with ``--weight-zero``: weight 0 first and the weight restored last, each pushed or
  announced as due (``disk_weight``).

Every check that decides whether a step runs reads only state the earlier steps do not
change, so the dry run's command list equals the real run's.
"""

from __future__ import annotations

import re
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Callable

from ringmgr.config import Config, Node
from ringmgr.errors import Refused, StepFailed, UsageError
from ringmgr.exec import plan as hostplan
from ringmgr.exec.base import Executor
from ringmgr.exec.plan import HostStep
from ringmgr.exec.runner import Step, StopRun
from ringmgr.ops import facts, fstab
from ringmgr.ops.disk_safety import check_mount_point, node_op, refuse_if_in_use
from ringmgr.ops.disk_weight import push_wanted as weight_push_wanted
from ringmgr.ops.disk_size import (peer_sizes, size_warnings,  # noqa: F401 (the API)
                                   weight_suggested_sizes)
from ringmgr.ops.disk_weight import (_weight_fn, push_note, refill_report,  # noqa: F401
                                     weight_restore, weight_restore_check, weight_zero,
                                     weight_zero_available)

NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
XFS_LABEL_MAX = 12

@dataclass
class ReplaceOptions:
    replaced: bool = False
    force_format: bool = False
    lazy: bool = False
    weight_zero: bool = False
    label: str | None = None
    again: bool = False
    push: bool | None = None  # push after a ring change (None: [cluster].push)


@dataclass
class DiskContext:
    """Everything the steps read: node, device, executor, journaled parameters."""

    config: Config
    node: Node
    dev: str
    ex: Executor
    opts: ReplaceOptions
    params: dict = field(default_factory=dict)
    dry_run: bool = False
    echo: Callable[[str], None] = lambda line: None
    ask_replaced: Callable[[], bool] | None = None
    findings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    assumed_unmounted: bool = False
    push_due: list[str] = field(default_factory=list)   # ring changes not on the nodes
    pushed: list[str] = field(default_factory=list)

    @property
    def block(self) -> str:
        return self.node.block_device(self.dev)

    @property
    def mount_root(self) -> str:
        return self.node.mount_root.rstrip("/") or "/"

    @property
    def mount_point(self) -> str:
        return f"{self.mount_root}/{self.dev}"

    @property
    def fstab_path(self) -> str:
        return self.node.fstab

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.echo(f"warning: {text}")

    # -- facts (read-only commands) ---------------------------------------------
    def q(self, *argv, check=False):
        return self.ex.run(argv, check=check, mutates=False)

    def mounts(self) -> list[facts.Mount]:
        return facts.parse_mountinfo(self.q(*facts.MOUNTINFO_ARGV, check=True).stdout)

    def lsblk(self) -> facts.BlockDev | None:
        r = self.q(*facts.lsblk_argv(self.block))
        if not r.ok:
            return None
        devs = facts.parse_lsblk(r.stdout)
        return devs[0] if devs else None

    def blkid(self) -> dict[str, str]:
        return facts.parse_blkid_export(self.q(*facts.blkid_argv(self.block)).stdout)

    def mounted_here(self) -> facts.Mount | None:
        here = facts.mounts_at(self.mounts(), self.mount_point)
        return here[-1] if here else None


# -- names and parameters ---------------------------------------------------------
def check_name(kind: str, value: str) -> None:
    if not NAME_RE.fullmatch(value) or value in (".", ".."):
        raise UsageError(f"{kind} {value!r} has characters outside [A-Za-z0-9._-]; "
                         f"use the name as the rings and the config spell it")


def operation_key(node: str, dev: str) -> str:
    return f"replace-disk.{node}.{dev}"


def _journaled(journal, name: str, value) -> None:
    """A label or UUID read back from a run's journal must still be one (they reach
    mkfs and fstab)."""
    try:
        if name == "uuid":
            uuidlib.UUID(str(value))
        elif not (isinstance(value, str) and NAME_RE.match(value)
                  and 0 < len(value) <= XFS_LABEL_MAX):
            raise ValueError
    except ValueError:
        raise Refused(f"journal {journal.path}: {name} {str(value)[:40]!r} is not a valid "
                      f"{name}: the journal was edited; nothing was done (move it away to "
                      f"start afresh)") from None


def choose_params(journal, dev: str, label: str | None) -> dict:
    """The new filesystem's UUID and label and the fstab backup tag, chosen once."""
    want = label or dev[:XFS_LABEL_MAX]
    check_name("label", want)
    if len(want) > XFS_LABEL_MAX:
        raise UsageError(f"label {want!r} is longer than XFS's {XFS_LABEL_MAX} characters; "
                         f"pass a shorter one with --label")
    got = journal.param("label", lambda: want, check=lambda v: _journaled(journal, "label", v))
    if label and got != label:
        if journal.step_state("mkfs") not in (None, "pending"):
            raise UsageError(f"the run in progress formatted (or began to format) with "
                             f"label {got!r}; finish it with that label (omit --label)")
        journal.set_param("label", label)  # not used before mkfs: still free to choose
    journal.param("uuid", lambda: str(uuidlib.uuid4()),
                  check=lambda v: _journaled(journal, "uuid", v))
    journal.param("tag", lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    return journal.params


# -- precheck ---------------------------------------------------------------------
def ring_devices(config: Config, node: Node, dev: str) -> dict[str, dict]:
    """ring -> {"id", "weight", "parts"} for DEV of NODE (matched by node ip + name)."""
    from ringmgr.rings.store import RingStore

    found = {}
    for ring, b in RingStore.from_config(config).load_all().items():
        for d in b.devs:
            if d and d["ip"] == node.ip and d["device"] == dev:
                found[ring] = {"id": d["id"], "weight": d["weight"],
                               "parts": int(d.get("parts", 0))}
    return found


def precheck(ctx: DiskContext, journal) -> dict:
    """Read-only checks before anything runs; refuses with the fix (see the module doc)."""
    node, dev = ctx.node, ctx.dev
    in_config = dev in node.devices or any(dev in r for r in node.ring_devices.values())
    rings = ring_devices(ctx.config, node, dev)
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
    from ringmgr.ops.drive_audit import mount_root_birth, read_log

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
        holders = facts.parse_ps(ctx.q(*facts.ps_argv(pids)).stdout) if pids else []
        who = ", ".join(holders) if holders else "unknown processes (fuser found none)"
        raise Refused(f"{ctx.mount_point} is busy: held by {who}; stop them (e.g. "
                      f"swift-init object stop) and re-run, or pass --lazy")
    raise StepFailed(f"umount {ctx.mount_point} failed: {(r.stderr or r.stdout).strip()}")


def _unmount_verify(ctx: DiskContext):
    if ctx.mounted_here() is not None and not ctx.opts.lazy:
        raise StepFailed(f"{ctx.mount_point} is still mounted after umount")


def _guard(ctx: DiskContext):
    """mkdir, chown root:root, chmod 0755 on a descriptor opened without following a
    symlink (``disk_node.guard``): right after the unmount, the owner of mount_root
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
    and checked to be the new disk's filesystem (``disk_node.own``)."""
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
    file with a random name created O_EXCL|O_NOFOLLOW (``disk_node.check``)."""
    try:
        node_op(ctx.ex, "check", ctx.mount_root, ctx.dev, _new_fs_device(ctx),
                mutates=True)
    except (Refused, StepFailed) as e:
        raise StepFailed(f"{ctx.mount_point} failed the write/xattr check: {e}") from None


def take_out_steps(ctx: DiskContext) -> list[Step]:
    """Unmount and guard: taking a disk out of service (also drive-audit --act)."""
    mp = ctx.mount_point
    return [
        Step("unmount", f"Unmount {mp}", _unmount, check=_unmount_check,
             verify=_unmount_verify),
        Step("guard", f"Guard the empty mount point {mp} (root:root 0755, never through "
                      f"a symlink)", _guard, verify=_guard_verify),
    ]


def replace_disk_steps(ctx: DiskContext) -> list[Step]:
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


# -- the whole operation ----------------------------------------------------------------
def finished_result_stands(ctx: DiskContext) -> str | None:
    """Why a finished run's result still stands, or None (read-only).

    It stands while the mount point is mounted from the block device and that device
    carries the filesystem the run made (the journaled UUID): then running the command
    again has nothing to do, and must not unmount the new disk.
    """
    uuid = ctx.params.get("uuid")
    m = ctx.mounted_here()
    blk = ctx.lsblk() if m is not None else None
    if not uuid or blk is None or m.major_minor != blk.major_minor:
        return None
    if ctx.blkid().get("UUID") != uuid:
        return None
    return (f"{ctx.node.name}/{ctx.dev} was already replaced: {ctx.mount_point} is mounted "
            f"from {ctx.block} with the filesystem that run made (UUID {uuid}); nothing to "
            f"do. If this disk has failed too, start a new replacement with --again")


@dataclass
class ReplaceRun:
    key: str
    summary: object
    ctx: DiskContext
    plan: list[HostStep] | None  # the dry run's state-changing commands
    already: str | None = None  # set when an earlier run finished and its result stands

    @property
    def commands(self) -> list[tuple[str, ...]] | None:
        return [s.argv for s in self.plan] if self.plan is not None else None

    def to_json(self) -> dict:
        c = self.ctx
        return {
            "written": not c.dry_run and any(r.status == "done" for r in self.summary.results),
            "node": c.node.name, "device": c.dev, "block_device": c.block,
            "mount_point": c.mount_point, "params": dict(c.params),
            "precheck": c.findings, "warnings": c.warnings,
            **self.summary.to_json(),
            "already_done": self.already,
            "refill": (refill_report(c) if self.summary.finished and not self.already
                       and not c.dry_run else []),
            "commands": [list(a) for a in self.commands] if self.commands is not None else None,
            "host_steps": hostplan.to_json(self.plan or []),
            "push_due": c.push_due, "pushed": c.pushed,
            "next": [{"command": "ringmgr push", "not_before": None}] if c.push_due else [],
        }


def replace_disk(config: Config, node_name: str, dev: str, opts: ReplaceOptions, *,
                 ex: Executor | None = None, transport=None, dry_run: bool = False,
                 resume: bool = False, state_dir=None, confirm=None, echo=None,
                 ask_replaced=None) -> ReplaceRun:
    """Run (or dry-run) the replace-disk flow for NODE/DEV; returns what happened.

    ``ex`` is the node's executor as its transport made it (default: the factory's,
    ``exec.factory.executor_for``, with ``transport``); a dry run records through a
    DryRunExecutor around it.  ``confirm(step)`` is asked before the first
    destructive step.  Refusals before any step ran raise; failures inside steps are
    in the summary.
    """
    from ringmgr.exec.factory import close_all, executor_for

    check_name("node", node_name)
    check_name("device", dev)
    node = config.node(node_name)
    if opts.weight_zero and not weight_zero_available():
        raise Refused("--weight-zero needs the ring commands' set_weight_all_rings, which "
                      "this ringmgr does not have yet; run without it (swift's advice for "
                      "a quick swap) or set the weight by hand with `ringmgr set-weight`")
    own = ex is None
    if own:
        ex = executor_for(config, node, dry_run=False, transport=transport)
    try:
        return _replace_disk(config, node, dev, opts, ex, dry_run=dry_run, resume=resume,
                             state_dir=state_dir, confirm=confirm, echo=echo,
                             ask_replaced=ask_replaced)
    finally:
        if own:
            close_all(ex)


def _replace_disk(config, node, dev, opts, ex, *, dry_run, resume, state_dir, confirm, echo,
                  ask_replaced) -> ReplaceRun:
    from ringmgr.exec.factory import dry
    from ringmgr.exec.runner import Journal, RunSummary, cluster_state_dir, run_steps

    state_dir = state_dir or cluster_state_dir(config)
    node_name = node.name
    run_ex = dry(ex, dry_run)
    echo = echo or (lambda line: None)
    key = operation_key(node_name, dev)
    identity = {"node": node_name, "device": dev, "mount_root": node.mount_root}
    with Journal.open(key, state_dir, resume=resume, dry_run=dry_run,
                      keep_finished=True, identity=identity) as journal:
        if journal.finished:
            done = DiskContext(config, node, dev, run_ex, opts, journal.params,
                               dry_run=dry_run, echo=echo)
            stands = None if opts.again else finished_result_stands(done)
            if stands:
                echo(f"{key}: the last run finished ({journal.data.get('updated')})")
                return ReplaceRun(key, RunSummary(key, dry_run=dry_run), done,
                                  [] if dry_run else None, already=stands)
            if resume:
                raise UsageError(f"nothing to resume: the last run of {key} finished "
                                 f"({journal.data.get('updated')}); run the command without "
                                 f"--resume to start a new replacement")
            journal.archive()
        params = choose_params(journal, dev, opts.label)
        if params.get("weight_zeroed") and not opts.weight_zero:
            echo("the run in progress set the weight to 0: it is restored at the end")
            opts.weight_zero = True
        ctx = DiskContext(config, node, dev, run_ex, opts, params, dry_run=dry_run,
                          echo=echo, ask_replaced=ask_replaced)
        if journal.in_progress:
            done = [n for n, s in journal.data["steps"].items() if s["state"] in ("done", "skipped")]
            echo(f"resuming {key} (done: {', '.join(done) or 'nothing yet'})")
        echo(f"precheck {node_name}/{dev} ({ctx.block} -> {ctx.mount_point}):")
        precheck(ctx, journal)
        summary = run_steps(replace_disk_steps(ctx), ctx, journal=journal, dry_run=dry_run,
                            confirm=confirm, echo=echo)
    return ReplaceRun(key, summary, ctx, run_ex.plan if dry_run else None)
