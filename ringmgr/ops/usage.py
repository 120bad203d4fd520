"""What each device really holds, per ring: the per-datadir usage over SSH.

recon's ``used`` is the filesystem's: it includes the filesystem's own overhead (an
empty 300 MB XFS already uses ~17 MB) and, where the account, container and object
rings share a disk, every ring's data.  So each node is asked, read-only, for
``du -B1 -d1`` of its devices (``objects``, ``objects-N``, ``containers``,
``accounts``, ... one line each) and ``df -B1`` of the same paths (the filesystem's
size and use).  The parsers are pure; ``measure`` fans out over the nodes, a node that
cannot be read is recorded (its devices stay unmeasured), not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def datadir_ring(name: str) -> str | None:
    """objects -> object, objects-2 -> object-2, containers -> container, accounts ->
    account; anything else (tmp, async_pending, quarantined, lost+found): None."""
    if name == "objects":
        return "object"
    if name.startswith("objects-") and name[8:].isdigit():
        return f"object-{int(name[8:])}"
    return {"containers": "container", "accounts": "account"}.get(name)


def du_argv(paths) -> tuple[str, ...]:
    return ("du", "-B1", "-d1", "--", *paths)


def df_argv(paths) -> tuple[str, ...]:
    return ("df", "-B1", "--output=target,size,used,avail", "--", *paths)


def parse_du(text: str, mount_root: str) -> dict[str, dict[str, int]]:
    """device -> ring -> bytes, from ``du -B1 -d1 -- ROOT/sdb ROOT/sdc``::

        8192\t/srv/node/sdb/objects
        4096\t/srv/node/sdb/accounts
        16384\t/srv/node/sdb

    Datadirs of no ring (tmp, async_pending) are left out; a device with no datadir
    yet is ``{}``.
    """
    root = mount_root.rstrip("/") + "/"
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        size, sep, path = line.partition("\t")
        if not sep or not size.isdigit() or not path.startswith(root):
            continue
        rest = path[len(root):].strip("/").split("/")
        dev = rest[0]
        out.setdefault(dev, {})
        if len(rest) == 2:
            ring = datadir_ring(rest[1])
            if ring:
                out[dev][ring] = out[dev].get(ring, 0) + int(size)
    return out


@dataclass(frozen=True)
class Filesystem:
    size: int
    used: int
    avail: int
    mount_point: str


def parse_df(text: str, paths: list[str]) -> dict[str, Filesystem]:
    """path -> its filesystem, from ``df -B1 --output=target,size,used,avail -- PATHS``
    (one line per path, in order, after the header)::

        Mounted on    1B-blocks        Used       Avail
        /srv/node/sdb 247463936    17731584   229732352
    """
    lines = [ln for ln in text.splitlines()[1:] if ln.strip()]
    out = {}
    for path, line in zip(paths, lines):
        f = line.split()
        if len(f) < 4 or not all(x.isdigit() for x in f[-3:]):
            continue
        out[path] = Filesystem(int(f[-3]), int(f[-2]), int(f[-1]), " ".join(f[:-3]))
    return out


@dataclass
class NodeUsage:
    node: str
    rings: dict[str, dict[str, int]] = field(default_factory=dict)   # dev -> ring -> bytes
    filesystems: dict[str, Filesystem] = field(default_factory=dict)  # dev -> fs
    error: str | None = None


def measure_node(node, ex, devices: list[str]) -> NodeUsage:
    paths = [f"{node.mount_root.rstrip('/')}/{d}" for d in devices]
    du = ex.run(du_argv(paths), check=False, mutates=False, timeout=3600)
    df = ex.run(df_argv(paths), check=False, mutates=False, timeout=60)
    usage = NodeUsage(node.name, rings=parse_du(du.stdout, node.mount_root))
    by_path = parse_df(df.stdout, paths)
    for dev, path in zip(devices, paths):
        if path in by_path:
            usage.filesystems[dev] = by_path[path]
    missing = [d for d in devices if d not in usage.rings]
    if missing:
        usage.error = f"no usage for {', '.join(missing)} (du: {du.stderr.strip()[:120]})"
    return usage


def measure(config, devices_by_node: dict[str, list[str]], executor_for=None) -> dict:
    """node name -> NodeUsage, read in parallel ([ssh].parallel nodes at once)."""
    from concurrent.futures import ThreadPoolExecutor

    from ringmgr.errors import RingmgrError
    from ringmgr.exec.factory import executor_for as factory

    executor_for = executor_for or (lambda config, node: factory(config, node, dry_run=False))

    def one(name):
        node = config.node(name)
        try:
            ex = executor_for(config, node)
            try:
                return measure_node(node, ex, devices_by_node[name])
            finally:
                close = getattr(ex, "close", None)
                if close:
                    close()
        except (RingmgrError, OSError) as e:
            return NodeUsage(name, error=str(e).splitlines()[0])

    names = sorted(devices_by_node)
    with ThreadPoolExecutor(max_workers=max(1, min(config.ssh.parallel, len(names) or 1))) as pool:
        return dict(zip(names, pool.map(one, names)))


def measure_builders(config, builders) -> dict:
    """``measure`` over every config node that has devices in ``builders`` (an
    iterable of builders: before and after a change, so new devices are measured)."""
    by_ip = {n.ip: name for name, n in config.nodes.items() if n.ip}
    devices: dict[str, set] = {}
    for b in builders:
        for d in b.devs:
            if d is not None and d["ip"] in by_ip:
                devices.setdefault(by_ip[d["ip"]], set()).add(d["device"])
    return measure(config, {n: sorted(ds) for n, ds in devices.items()})
