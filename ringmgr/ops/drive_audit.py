"""Drive audit: failing disks from each node's kernel log, mapped to ring devices.

swift-drive-audit scans one node's log for ``sd[a-z]`` only.  This reads the kernel
log wherever the node keeps it (``journalctl -k``, ``dmesg``, ``/var/log/kern.log``: the
first that answers with something), finds I/O errors for sd*, vd*, nvme*n*, dm-* (and
loop*, as on a test node) with ``facts.parse_kernel_log``, and maps each kernel name to
the node's ring devices through ``block_devices`` (resolved on the node, so
``/dev/mapper/x`` finds ``dm-3``) and to its mount point.

Only errors inside the window and newer than the device's current filesystem count
(``logwindow``): the filesystem's age comes from the birth time of its mount root
(``stat -c %W``; XFS keeps no creation time in its superblock) or from the
replace-disk run that made it (its journal on this admin host).  Older lines are
about a disk that is gone and are reported as ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.config import Config, Node
from ringmgr.exec.base import Executor
from ringmgr.ops import facts, logwindow
from ringmgr.ops.kernel_log import mount_root_birth, read_log  # noqa: F401 (the API)
from ringmgr.rings.devices import ring_devices

# -- how old is the device's filesystem? ---------------------------------------------------
def read_replace_journal(state_dir, node: str, dev: str) -> dict | None:
    """The replace-disk journal of NODE/DEV on this admin host (read only, no lock)."""
    if state_dir is None:
        return None
    try:
        return json.loads((Path(state_dir) / f"replace-disk.{node}.{dev}.json").read_text())
    except (OSError, ValueError):
        return None


def filesystem_since(birth: float | None, journal: dict | None,
                     uuid: str | None) -> tuple[float | None, str]:
    """Pure: (the time before which the device's errors are about an earlier disk or
    filesystem, and why), from the mount root's birth time, else the replace-disk journal.

    >>> filesystem_since(None, {"params": {"uuid": "u", "formatted_at": 5.0}}, "u")
    (5.0, 'replace-disk formatted it at 1970-01-01 00:00:05 UTC')
    >>> filesystem_since(None, {"params": {"guarded_at": 3.0}}, None)
    (3.0, 'replace-disk took the old disk out at 1970-01-01 00:00:03 UTC')
    >>> filesystem_since(None, {"params": {"uuid": "u", "formatted_at": 5.0}}, "v")
    (None, '')
    """
    if birth:  # the node's own clock, to the nanosecond: preferred
        return birth, (f"its filesystem was made at {logwindow.utc(birth)} (the mount "
                       f"root's birth time)")
    found = []
    params = (journal or {}).get("params", {})
    if params.get("formatted_at") and uuid and params.get("uuid") == uuid:
        found.append((params["formatted_at"], f"replace-disk formatted it at "
                                              f"{logwindow.utc(params['formatted_at'])}"))
    elif params.get("guarded_at") and not params.get("formatted_at"):
        found.append((params["guarded_at"], f"replace-disk took the old disk out at "
                                            f"{logwindow.utc(params['guarded_at'])}"))
    return max(found) if found else (None, "")


def device_since(ex: Executor, node: Node, dev: str, mounts, state_dir) -> tuple[float | None, str]:
    """When DEV's current filesystem began (see ``filesystem_since``); read-only."""
    block = node.block_device(dev)
    mp = f"{node.mount_root.rstrip('/')}/{dev}"
    r = ex.run(facts.lsblk_argv(block), check=False, mutates=False)
    try:
        blk = facts.parse_lsblk(r.stdout)[0] if r.ok else None
    except (ValueError, IndexError):
        blk = None
    birth = None
    here = facts.mounts_at(mounts, mp)
    if blk is not None and here and here[-1].major_minor == blk.major_minor:
        birth = mount_root_birth(ex, mp)
    journal = read_replace_journal(state_dir, node.name, dev)
    uuid = None
    if journal and blk is not None:
        uuid = facts.parse_blkid_export(ex.run(facts.blkid_argv(block), check=False,
                                               mutates=False).stdout).get("UUID")
    return filesystem_since(birth, journal, uuid)


@dataclass
class DeviceFinding:
    kernel_name: str
    errors: int
    kinds: list[str]
    last: str
    device: str | None = None         # the ring/config device name (sdb)
    mount_point: str | None = None
    mounted: bool = False
    rings: dict = field(default_factory=dict)
    ignored_older_than_filesystem: int = 0
    ignored_before_window: int = 0
    filesystem_since: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class NodeAudit:
    node: str
    source: str = ""
    findings: list[DeviceFinding] = field(default_factory=list)
    error: str | None = None
    window: logwindow.Window | None = None
    times: str = ""
    ignored: list[DeviceFinding] = field(default_factory=list)  # only old errors

    @property
    def failing(self) -> list[DeviceFinding]:
        return [f for f in self.findings if f.device]

    def to_json(self) -> dict:
        return {"node": self.node, "log_source": self.source, "error": self.error,
                "window": self.window.to_json() if self.window else None,
                "log_times": self.times,
                "devices": [f.to_json() for f in self.findings],
                "ignored": [f.to_json() for f in self.ignored]}


def kernel_names(ex: Executor, node: Node) -> dict[str, str]:
    """Kernel name (sdb, loop3, dm-0) -> configured device name, resolved on the node."""
    devs = sorted(set(node.devices) | {d for r in node.ring_devices.values() for d in r})
    if not devs:
        return {}
    paths = [node.block_device(d) for d in devs]
    r = ex.run(["realpath", "-m", "--", *paths], check=False, mutates=False)
    resolved = r.stdout.splitlines() if r.ok else paths
    if len(resolved) != len(devs):
        resolved = paths
    return {p.rsplit("/", 1)[-1]: d for p, d in zip(resolved, devs)}


def map_errors(errors: list[facts.DiskError], names: dict[str, str], node,
               mounts: list[facts.Mount], ring_devs: dict[str, dict]) -> list[DeviceFinding]:
    """Pure: group errors per whole disk and attach ring device, mount point, rings.

    ``ring_devs`` is device name -> {ring: {"id", "weight", "parts"}}.
    """
    out = []
    for kname, errs in facts.errors_by_device(errors).items():
        dev = names.get(kname)
        f = DeviceFinding(kname, len(errs), sorted({e.kind for e in errs}), errs[-1].line,
                          device=dev)
        if dev:
            mp = f"{node.mount_root.rstrip('/')}/{dev}"
            f.mount_point = mp
            f.mounted = bool(facts.mounts_at(mounts, mp))
            f.rings = ring_devs.get(dev, {})
        out.append(f)
    return sorted(out, key=lambda f: (f.device is None, f.kernel_name))


def audit_node(config: Config, node: Node, ex: Executor, ring_devs: dict | None = None, *,
               window: logwindow.Window, state_dir=None, now: float | None = None) -> NodeAudit:
    audit = NodeAudit(node.name, window=window)
    log = read_log(ex, now)
    audit.source = log.source
    errors = facts.parse_kernel_log(log.text)
    audit.times = log.times_note(errors)
    mounts = facts.parse_mountinfo(ex.run(facts.MOUNTINFO_ARGV, mutates=False).stdout)
    names = kernel_names(ex, node)
    counted, tallies = [], {}
    for kname, errs in facts.errors_by_device(errors).items():
        dev = names.get(kname)
        since, why = device_since(ex, node, dev, mounts, state_dir) if dev else (None, "")
        c = logwindow.count_errors(log.timed(errs), window.start, since)
        counted += c.counted
        tallies[kname] = (c, why, errs)
    ring_devs = ring_devs if ring_devs is not None else {}
    audit.findings = map_errors(counted, names, node, mounts, ring_devs)
    for f in audit.findings:
        c, why, _ = tallies[f.kernel_name]
        f.ignored_older_than_filesystem, f.ignored_before_window = (c.older_than_fs,
                                                                    c.before_window)
        f.filesystem_since = why
    for kname, (c, why, errs) in sorted(tallies.items()):
        if not c.counted and names.get(kname):
            (f,) = map_errors(errs, names, node, mounts, ring_devs)
            f.errors = 0
            f.ignored_older_than_filesystem, f.ignored_before_window = (c.older_than_fs,
                                                                        c.before_window)
            f.filesystem_since = why
            audit.ignored.append(f)
    return audit


def ignored_text(f: DeviceFinding) -> str:
    parts = []
    if f.ignored_older_than_filesystem:
        parts.append(f"{f.ignored_older_than_filesystem} from before "
                     f"{f.filesystem_since}: about the disk it replaced")
    if f.ignored_before_window:
        parts.append(f"{f.ignored_before_window} before the window")
    return "; ".join(parts)


def render(audits: list[NodeAudit]) -> str:
    lines = []
    windows = {a.window.describe() for a in audits if a.window}
    if windows:
        lines.append(f"window: {', '.join(sorted(windows))}, and only errors newer than "
                     f"each device's current filesystem")
    for a in audits:
        if a.error:
            lines.append(f"{a.node}: could not audit: {a.error}")
            continue
        where = f"{a.source or 'no kernel log readable'}" + (f", {a.times}" if a.source else "")
        if not a.findings:
            lines.append(f"{a.node}: no disk I/O errors in the kernel log in the window "
                         f"({where})")
        else:
            lines.append(f"{a.node}: {len(a.findings)} device(s) with I/O errors ({where}):")
        for f in a.findings:
            if f.device:
                parts = ", ".join(f"{r} {d['parts']} partitions" for r, d in f.rings.items())
                lines.append(f"  {f.device} ({f.kernel_name}): {f.errors} errors "
                             f"[{', '.join(f.kinds)}], {f.mount_point} "
                             f"{'mounted' if f.mounted else 'not mounted'}"
                             + (f"; {parts}" if parts else "; in no ring"))
            else:
                lines.append(f"  {f.kernel_name}: {f.errors} errors [{', '.join(f.kinds)}], "
                             f"not a swift device of this node")
            lines.append(f"    last: {f.last}")
            if ignored_text(f):
                lines.append(f"    not counted: {ignored_text(f)}")
        for f in a.ignored:
            lines.append(f"  {f.device or f.kernel_name} ({f.kernel_name}): not flagged; "
                         f"errors not counted: {ignored_text(f)}")
    return "\n".join(lines)


def audit_nodes(config: Config, names: list[str], *, window: logwindow.Window,
                state_dir=None, transport=None) -> list[NodeAudit]:
    """Audit each node (in parallel, ``fanout``); a node that cannot be read is
    recorded, not fatal to the others."""
    from ringmgr.errors import RingmgrError
    from ringmgr.exec.factory import close_all, executor_for
    from ringmgr.exec.fanout import fan_out
    from ringmgr.exec.runner import cluster_state_dir

    state_dir = state_dir or cluster_state_dir(config)
    try:
        by_node_ring = {n: ring_devices(config, config.node(n)) for n in names}
    except RingmgrError:
        by_node_ring = {n: {} for n in names}

    def one(name: str) -> NodeAudit:
        node = config.node(name)
        ex = None
        try:
            ex = executor_for(config, node, dry_run=False, transport=transport)
            return audit_node(config, node, ex, by_node_ring[name], window=window,
                              state_dir=state_dir)
        finally:
            close_all(ex)

    group = fan_out(names, one, parallel=config.ssh.parallel, name=str, label="drive-audit")
    return [o.value if o.ok else NodeAudit(o.host, error=o.error, window=window)
            for o in group.outcomes]


def act_on(config: Config, failing, *, lazy=False, dry_run=False, echo=None,
           transport=None) -> list[dict]:
    """Unmount and guard each failing disk (replace-disk's own steps), then weight 0."""
    from ringmgr.exec import plan as hostplan
    from ringmgr.exec.factory import close_all, executor_for
    from ringmgr.exec.runner import Journal, run_steps
    from ringmgr.ops import disk

    out = []
    for node_name, f in failing:
        node = config.node(node_name)
        run_ex = executor_for(config, node, dry_run=dry_run, transport=transport)
        try:
            ctx = disk.DiskContext(config, node, f.device, run_ex,
                                   disk.ReplaceOptions(lazy=lazy), {}, dry_run=dry_run,
                                   echo=echo or (lambda line: None))
            steps = disk.take_out_steps(ctx)
            summary = run_steps(steps, ctx, journal=Journal.memory(), dry_run=dry_run,
                                echo=echo)
        finally:
            close_all(run_ex)
        weight = _zero_weight(config, node_name, node, f.device, summary, dry_run, echo,
                              transport)
        text = (f"{node_name}/{f.device}: " + ", ".join(
            f"{r.name} {r.status}" + (f" ({r.reason})" if r.reason else "")
            for r in summary.results) + f"; weight {weight}")
        planned = run_ex.plan if dry_run else []
        if dry_run and summary.ok and config.cluster.push:
            from ringmgr.ops.push import planned_push

            planned = planned + planned_push(config)  # the push after the weight change
        out.append({"node": node_name, "device": f.device, "summary": text,
                    "commands": [list(s.argv) for s in planned] if dry_run else None,
                    "host_steps": hostplan.to_json(planned),
                    **summary.to_json()})
        summary.raise_error()
    return out


def _zero_weight(config, node_name, node, dev, summary, dry_run, echo,
                 transport=None) -> str:
    """Weight 0 for a disk taken out (where the ring commands can): what was done."""
    from ringmgr.ops.disk import weight as disk_weight

    if not summary.ok:
        return "not changed"
    if dry_run:
        return (f"not changed in a dry run (a real run sets it to 0 on every ring; "
                f"{disk_weight.push_note(True, bool(config.cluster.push), True)})")
    from ringmgr.errors import NotYet

    try:
        result = disk_weight.set_weight(config, node, dev, 0.0, yes=True, show=echo,
                                        argv=["ringmgr", "drive-audit", node_name, "--act"],
                                        transport=transport)
    except NotYet as e:
        return f"not changed yet ({e})"
    note = disk_weight.push_note(bool(result.written), bool(config.cluster.push), False)
    return (f"set to 0 on every ring ({note})" if result.written
            else f"already 0 on every ring ({note})")
