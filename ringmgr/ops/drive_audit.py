"""Drive audit: failing disks from each node's kernel log, mapped to ring devices.

swift-drive-audit scans one node's log for ``sd[a-z]`` only.  This reads the kernel
log wherever the node keeps it (``journalctl -k``, ``dmesg``, ``/var/log/kern.log``: the
first that answers with something), finds I/O errors for sd*, vd*, nvme*n*, dm-* (and
loop*, as on a test node) with ``facts.parse_kernel_log``, and maps each kernel name to
the node's ring devices through ``block_devices`` (resolved on the node, so
``/dev/mapper/x`` finds ``dm-3``) and to its mount point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ringmgr.ops import facts

KERNEL_LOG_SOURCES = (
    ("journalctl -k", ("journalctl", "-k", "--no-pager", "-o", "short-iso", "-q")),
    ("dmesg", ("dmesg", "--color=never")),
    ("/var/log/kern.log", ("cat", "/var/log/kern.log")),
)


def read_kernel_log(ex) -> tuple[str, str]:
    """(source, text) from the first kernel log source that answers; ("", "") if none."""
    for name, argv in KERNEL_LOG_SOURCES:
        r = ex.run(argv, check=False, mutates=False)
        text = r.stdout.strip()
        if r.ok and text and not text.startswith("-- No entries --"):
            return name, r.stdout
    return "", ""


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

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class NodeAudit:
    node: str
    source: str = ""
    findings: list[DeviceFinding] = field(default_factory=list)
    error: str | None = None

    @property
    def failing(self) -> list[DeviceFinding]:
        return [f for f in self.findings if f.device]

    def to_json(self) -> dict:
        return {"node": self.node, "log_source": self.source, "error": self.error,
                "devices": [f.to_json() for f in self.findings]}


def kernel_names(ex, node) -> dict[str, str]:
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


def ring_devices_of(config, node) -> dict[str, dict[str, dict]]:
    """device -> ring -> {"id", "weight", "parts"} for every device of NODE in the rings."""
    from ringmgr.rings.store import RingStore

    out: dict[str, dict[str, dict]] = {}
    for ring, b in RingStore.from_config(config).load_all().items():
        for d in b.devs:
            if d and d["ip"] == node.ip:
                out.setdefault(d["device"], {})[ring] = {
                    "id": d["id"], "weight": d["weight"], "parts": int(d.get("parts", 0))}
    return out


def audit_node(config, node, ex, ring_devs: dict | None = None) -> NodeAudit:
    audit = NodeAudit(node.name)
    source, text = read_kernel_log(ex)
    audit.source = source
    errors = facts.parse_kernel_log(text)
    mounts = facts.parse_mountinfo(ex.run(facts.MOUNTINFO_ARGV, mutates=False).stdout)
    names = kernel_names(ex, node)
    audit.findings = map_errors(errors, names, node, mounts,
                                ring_devs if ring_devs is not None else {})
    return audit


def render(audits: list[NodeAudit]) -> str:
    lines = []
    for a in audits:
        if a.error:
            lines.append(f"{a.node}: could not audit: {a.error}")
            continue
        if not a.findings:
            lines.append(f"{a.node}: no disk I/O errors in the kernel log "
                         f"({a.source or 'no kernel log readable'})")
            continue
        lines.append(f"{a.node}: {len(a.findings)} device(s) with I/O errors ({a.source}):")
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
    return "\n".join(lines)


def audit_nodes(config, names: list[str], executor_for=None) -> list[NodeAudit]:
    """Audit each node; a node that cannot be read is recorded, not fatal to the others."""
    from ringmgr.errors import RingmgrError
    from ringmgr.ops.disk import executor_for as default_executor_for

    executor_for = executor_for or default_executor_for
    try:
        by_node_ring = {n: ring_devices_of(config, config.node(n)) for n in names}
    except RingmgrError:
        by_node_ring = {n: {} for n in names}
    audits = []
    for name in names:
        node = config.node(name)
        try:
            ex = executor_for(config, node)
            try:
                audits.append(audit_node(config, node, ex, by_node_ring[name]))
            finally:
                close = getattr(ex, "close", None)
                if close:
                    close()
        except RingmgrError as e:
            audits.append(NodeAudit(name, error=str(e)))
    return audits


def act_on(config, failing, *, lazy=False, dry_run=False, echo=None,
           executor_for=None) -> list[dict]:
    """Unmount and guard each failing disk (replace-disk's own steps), then weight 0."""
    from ringmgr.exec.base import DryRunExecutor
    from ringmgr.exec.runner import Journal, run_steps
    from ringmgr.ops import disk

    executor_for = executor_for or disk.executor_for
    out = []
    for node_name, f in failing:
        node = config.node(node_name)
        ex = executor_for(config, node)
        run_ex = DryRunExecutor(inner=ex) if dry_run else ex
        ctx = disk.DiskContext(config, node, f.device, run_ex,
                               disk.ReplaceOptions(lazy=lazy), {}, dry_run=dry_run,
                               echo=echo or (lambda line: None))
        steps = disk.take_out_steps(ctx)
        summary = run_steps(steps, ctx, journal=Journal.memory(), dry_run=dry_run, echo=echo)
        weight = "not changed"
        if summary.ok and dry_run and disk.weight_zero_available():
            weight = (f"not changed in a dry run (a real run sets it to 0 on every ring; "
                      f"{disk.push_note(True, bool(config.cluster.push), True)})")
        elif summary.ok and not dry_run:
            if disk.weight_zero_available():
                from ringmgr.errors import NotYet

                try:
                    result = disk._weight_fn()(config, node, f.device, 0.0, yes=True,
                                               show=echo,
                                               argv=["ringmgr", "drive-audit", node_name,
                                                     "--act"])
                    note = disk.push_note(bool(result.written), bool(config.cluster.push),
                                          False)
                    weight = (f"set to 0 on every ring ({note})" if result.written
                              else f"already 0 on every ring ({note})")
                except NotYet as e:
                    weight = f"not changed yet ({e})"
            else:
                weight = (f"not changed (this ringmgr cannot yet): run "
                          f"`ringmgr set-weight {node_name}/{f.device} 0`")
        text = (f"{node_name}/{f.device}: " + ", ".join(
            f"{r.name} {r.status}" + (f" ({r.reason})" if r.reason else "")
            for r in summary.results) + f"; weight {weight}")
        out.append({"node": node_name, "device": f.device, "summary": text,
                    "commands": [list(a) for a in run_ex.recorded] if dry_run else None,
                    **summary.to_json()})
        summary.raise_error()
    return out
