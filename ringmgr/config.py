"""ringmgr.toml -> typed objects.

The file is validated against one schema table (``SCHEMA``): every unknown key and
every wrong type is an error naming the file and the dotted key, so an operator who
typed ``mount_rot`` learns it before anything runs.  Relative paths are resolved
against the file's directory.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.errors import ConfigError
from ringmgr.rings.files import is_ring_name

DEFAULT_PORTS = {"account": 6202, "container": 6201, "object": 6200}

# Node keys that [defaults] may set for every node.
_NODE_DEFAULTS = {
    "swift_dir": "/etc/swift",
    "mount_root": "/srv/node",
    "fstab": "/etc/fstab",
    "owner": "swift:swift",
    "mkfs_options": [],
    "mount_options": "noatime,nofail",
    "fstab_by": "label",
    "ssh_port": None,
    "reboot_command": ["systemctl", "reboot"],
    "object_server_conf": "",
    "swift_command_prefix": [],
    "run_dir": "/var/lib/ringmgr",
    "mount_check": True,
}

_STR = "string"
_INT = "integer"
_NUM = "number"
_BOOL = "boolean"
_PATH = "path"
_STRLIST = "list of strings"
_WEIGHTS = "table of device = weight"
_DEVICES = "table of device = weight (or {weight = ..., ...})"
_STRMAP = "table of name = string"
_INTMAP = "table of name = integer"
_NUMMAP = "table of name = number"

_NODE_COMMON = {
    "host": _STR,
    "ssh_port": _INT,
    "swift_dir": _STR,
    "owner": _STR,
}
_NODE_KEYS = {
    **_NODE_COMMON,
    "ip": _STR,
    "replication_ip": _STR,
    "region": _INT,
    "zone": _INT,
    "meta": _STR,
    "devices": _DEVICES,
    "rings": "table of ring = {devices = ..., port = ..., replication_port = ...}",
    "block_devices": _STRMAP,
    "mount_root": _STR,
    "fstab": _PATH,
    "mkfs_options": _STRLIST,
    "mount_options": _STR,
    "fstab_by": _STR,
    "reboot_command": _STRLIST,
    "object_server_conf": _STR,
    "swift_command_prefix": _STRLIST,
    "run_dir": _STR,
    "mount_check": _BOOL,
}

SCHEMA: dict[str, dict[str, str]] = {
    "cluster": {
        "builder_dir": _PATH,
        "rings": _STRLIST,
        "ports": _INTMAP,
        "replication_ports": _INTMAP,
        "push": _BOOL,
        "swift_conf": _PATH,
        "lock_timeout": _NUM,
        "used_bytes": _NUMMAP,
        "format_version": _INT,
        "ring_reload": _NUM,
        "full_percent": _NUM,
    },
    "ssh": {
        "user": _STR,
        "port": _INT,
        "identity_file": _PATH,
        "known_hosts": _PATH,
        "parallel": _INT,
        "connect_timeout": _NUM,
        "retries": _INT,
    },
    "defaults": {k: v for k, v in _NODE_KEYS.items() if k in _NODE_DEFAULTS},
    "drive_audit": {
        "since": _STR,
    },
    "recon": {
        "scheme": _STR,
        "ports": _INTMAP,
        "timeout": _NUM,
        "connect_timeout": _NUM,
        "concurrency": _INT,
        "max_clock_skew": _NUM,
    },
    "openstack": {
        "openrc": _PATH,
        "nova_db": _STR,
        "neutron_db": _STR,
        "cinder_db": _STR,
        "restore_order": _STRLIST,
    },
}
SECTIONS = set(SCHEMA) | {"nodes", "proxies", "rings"}

# What may reach a node's commands and its fstab (see check_node_values): no whitespace,
# quotes, "#" or shell characters, so nothing can add an fstab line or an option.
_PATH_RE = re.compile(r"^/[A-Za-z0-9._+@:,=/-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_ID = r"(?:[A-Za-z_][A-Za-z0-9._-]*\$?|[0-9]+)"
_OWNER_RE = re.compile(rf"^{_ID}(?::{_ID})?$")
_OPTION = r"[A-Za-z0-9._=:/+@-]+"
_MOUNT_OPTIONS_RE = re.compile(rf"^{_OPTION}(?:,{_OPTION})*$")
_MKFS_OPTION_RE = re.compile(r"^[A-Za-z0-9._=:/+@,-]+$")


@dataclass(frozen=True)
class ClusterConfig:
    builder_dir: Path
    rings: tuple[str, ...] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    replication_ports: dict[str, int] = field(default_factory=dict)
    push: bool = False
    swift_conf: Path | None = None
    lock_timeout: float = 30.0
    used_bytes: dict[str, float] = field(default_factory=dict)
    format_version: int | None = None
    ring_reload: float = 15.0    # seconds: how late a server may re-read a changed ring.gz
    full_percent: float = 90.0   # refuse a change that would fill a device past this

    def port_for(self, ring: str) -> int:
        """The port new devices of ``ring`` listen on (object-N uses object's)."""
        if ring in self.ports:
            return self.ports[ring]
        base = "object" if ring.startswith("object") else ring
        return self.ports.get(base, DEFAULT_PORTS.get(base, 6200))


@dataclass(frozen=True)
class SSHConfig:
    user: str = "root"
    port: int = 22
    identity_file: Path | None = None
    known_hosts: Path | None = None
    parallel: int = 32
    connect_timeout: float = 10.0
    retries: int = 2


@dataclass(frozen=True)
class Host:
    """Anything ringmgr reaches over SSH: a storage node or a proxy."""

    name: str
    host: str
    ssh_port: int | None
    swift_dir: str
    owner: str


@dataclass(frozen=True)
class Node(Host):
    ip: str = ""
    replication_ip: str | None = None
    region: int = 1
    zone: int = 1
    devices: dict[str, float] = field(default_factory=dict)
    ring_devices: dict[str, dict[str, float]] = field(default_factory=dict)
    block_devices: dict[str, str] = field(default_factory=dict)
    mount_root: str = "/srv/node"
    fstab: str = "/etc/fstab"
    mkfs_options: tuple[str, ...] = ()
    mount_options: str = "noatime,nofail"
    fstab_by: str = "label"
    reboot_command: tuple[str, ...] = ("systemctl", "reboot")
    mount_check: bool = True   # the node's servers run with mount_check = true
    meta: str = ""
    device_attrs: dict[str, dict] = field(default_factory=dict)
    ring_device_attrs: dict[str, dict[str, dict]] = field(default_factory=dict)
    ring_ports: dict[str, dict[str, int]] = field(default_factory=dict)
    object_server_conf: str = ""        # default: <swift_dir>/object-server.conf
    swift_command_prefix: tuple[str, ...] = ()   # runs swift's tools (a venv, an env)
    run_dir: str = "/var/lib/ringmgr"   # pid files and logs of detached commands

    @property
    def object_conf(self) -> str:
        return self.object_server_conf or f"{self.swift_dir.rstrip('/')}/object-server.conf"

    def devices_for(self, ring: str) -> dict[str, float]:
        """Device name -> weight for ``ring``: a per-ring override, else ``devices``."""
        if ring in self.ring_devices:
            return dict(self.ring_devices[ring])
        return dict(self.devices)

    def device_fields(self, ring: str, dev: str, port: int) -> dict:
        """The swift device definition the config gives ``dev`` in ``ring`` (``port``:
        the ring's port, ``[cluster].ports``): each field from the device's own table,
        else the node's table for the ring, else the node, else the cluster."""
        attrs = (self.ring_device_attrs.get(ring, {}) if ring in self.ring_devices
                 else self.device_attrs).get(dev, {})
        ports = self.ring_ports.get(ring, {})
        port = attrs.get("port", ports.get("port", port))
        return {"region": attrs.get("region", self.region), "zone": attrs.get("zone", self.zone),
                "ip": self.ip, "port": port,
                "replication_ip": attrs.get("replication_ip", self.replication_ip or self.ip),
                "replication_port": attrs.get("replication_port",
                                              ports.get("replication_port", port)),
                "device": dev, "weight": self.devices_for(ring).get(dev),
                "meta": attrs.get("meta", self.meta)}

    def block_device(self, dev: str) -> str:
        return self.block_devices.get(dev, f"/dev/{dev}")


@dataclass(frozen=True)
class Proxy(Host):
    pass


@dataclass(frozen=True)
class OpenStackConfig:
    openrc: Path | None = None
    nova_db: str | None = None
    neutron_db: str | None = None
    cinder_db: str | None = None
    restore_order: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ReconConfig:
    """[recon]: how ringmgr reads swift's recon middleware on the storage servers."""

    scheme: str = "http"
    ports: dict[str, int] = field(default_factory=dict)  # server type -> port override
    timeout: float = 5.0          # seconds to read an answer
    connect_timeout: float = 2.0  # seconds to connect
    concurrency: int = 64         # requests in flight at once
    max_clock_skew: float = 5.0   # seconds a server's clock may differ from the admin's


@dataclass(frozen=True)
class DriveAuditConfig:
    since: str = "24h"   # the window: errors older than this do not count
    explicit: bool = False  # set in the file (not the default)


@dataclass(frozen=True)
class Config:
    path: Path
    cluster: ClusterConfig
    ssh: SSHConfig
    nodes: dict[str, Node]
    proxies: dict[str, Proxy]
    openstack: OpenStackConfig
    warnings: tuple[str, ...] = ()
    drive_audit: DriveAuditConfig = field(default_factory=DriveAuditConfig)
    ring_settings: dict = field(default_factory=dict)   # [rings.NAME]: RingSettings
    recon: ReconConfig = field(default_factory=ReconConfig)

    def node(self, name: str) -> Node:
        """The node called ``name``; a UsageError listing the known ones otherwise."""
        from ringmgr.errors import UsageError

        if name not in self.nodes:
            known = ", ".join(sorted(self.nodes)) or "none"
            raise UsageError(f"unknown node {name!r} (nodes in {self.path}: {known})")
        return self.nodes[name]

    def node_by_ip(self, ip: str) -> Node | None:
        for node in self.nodes.values():
            if node.ip == ip:
                return node
        return None

    def hosts(self) -> dict[str, Host]:
        """Every host that gets rings: storage nodes, then proxies."""
        return {**self.nodes, **self.proxies}


def find_config_path(explicit: str | os.PathLike | None) -> Path:
    """--config, else $RINGMGR_CONFIG, else ./ringmgr.toml, else /etc/ringmgr/ringmgr.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("RINGMGR_CONFIG")
    if env:
        return Path(env)
    local = Path("ringmgr.toml")
    if local.exists():
        return local
    return Path("/etc/ringmgr/ringmgr.toml")


def load_config(path: str | os.PathLike) -> Config:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (use --config or $RINGMGR_CONFIG)")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}")
    return parse_config(data, path)


def parse_config(data: dict, path: Path) -> Config:
    """Validate ``data`` (parsed TOML) and build a Config; ``path`` names it in errors."""
    v = _Validator(path)
    for section in data:
        if section not in SECTIONS:
            v.fail(section, f"unknown section (known: {', '.join(sorted(SECTIONS))})")
    for section, keys in SCHEMA.items():
        v.keys(section, data.get(section, {}), keys)

    c = data.get("cluster", {})
    if "builder_dir" not in c:
        v.fail("cluster.builder_dir", "required key is missing")
    cluster = ClusterConfig(
        builder_dir=v.path(c["builder_dir"]),
        rings=tuple(c["rings"]) if "rings" in c else None,
        ports=dict(c.get("ports", {})),
        replication_ports=dict(c.get("replication_ports", {})),
        push=c.get("push", False),
        swift_conf=v.path(c["swift_conf"]) if "swift_conf" in c else None,
        lock_timeout=float(c.get("lock_timeout", 30.0)),
        used_bytes={k: float(x) for k, x in c.get("used_bytes", {}).items()},
        format_version=c.get("format_version"),
        ring_reload=float(c.get("ring_reload", 15.0)),
        full_percent=float(c.get("full_percent", 90.0)),
    )
    if not 0 < cluster.full_percent <= 100:
        v.fail("cluster.full_percent", f"must be a percentage in (0, 100], not "
                                       f"{cluster.full_percent:g}")
    for ring in cluster.rings or ():
        if not is_ring_name(ring):
            v.fail("cluster.rings", f"{ring!r} is not a ring name (account, container, "
                                    f"object, object-N)")
    for kind in ("ports", "replication_ports"):
        for ring, port in getattr(cluster, kind).items():
            if not is_ring_name(ring):
                v.fail(f"cluster.{kind}.{ring}", "not a ring name (account, container, "
                                                 "object, object-N)")
            v.port(f"cluster.{kind}.{ring}", port)
    if cluster.format_version is not None and cluster.format_version not in (0, 1, 2):
        v.fail("cluster.format_version", "must be 0, 1 or 2")

    s = data.get("ssh", {})
    ssh = SSHConfig(
        user=s.get("user", "root"),
        port=s.get("port", 22),
        identity_file=v.path(s["identity_file"]) if "identity_file" in s else None,
        known_hosts=v.path(s["known_hosts"]) if "known_hosts" in s else None,
        parallel=s.get("parallel", 32),
        connect_timeout=float(s.get("connect_timeout", 10.0)),
        retries=s.get("retries", 2),
    )
    v.port("ssh.port", ssh.port)
    if ssh.parallel < 1:
        v.fail("ssh.parallel", "must be at least 1")

    defaults = {**_NODE_DEFAULTS, **data.get("defaults", {})}
    if "fstab" in data.get("defaults", {}):
        defaults["fstab"] = str(v.path(defaults["fstab"]))

    nodes: dict[str, Node] = {}
    v.table("nodes", data.get("nodes", {}))
    for name, n in data.get("nodes", {}).items():
        nodes[name] = _node(v, name, n, defaults, cluster.replication_ports)
    v.port("defaults.ssh_port", defaults["ssh_port"])
    for name, n in nodes.items():
        v.port(f"nodes.{name}.ssh_port", n.ssh_port)
    proxies: dict[str, Proxy] = {}
    v.table("proxies", data.get("proxies", {}))
    for name, p in data.get("proxies", {}).items():
        key = f"proxies.{name}"
        v.keys(key, p, _NODE_COMMON)
        if name in nodes:
            v.fail(key, "a proxy may not have the same name as a node")
        proxies[name] = Proxy(
            name=name,
            host=p.get("host", name),
            ssh_port=p.get("ssh_port", defaults["ssh_port"]),
            swift_dir=p.get("swift_dir", defaults["swift_dir"]),
            owner=p.get("owner", defaults["owner"]),
        )
        v.port(f"{key}.ssh_port", proxies[name].ssh_port)
        v.owner(f"{key}.owner" if "owner" in p else "defaults.owner", proxies[name].owner)

    for kind, hosts in (("nodes", nodes), ("proxies", proxies)):
        for name, h in hosts.items():
            if not h.swift_dir:
                v.fail(f"{kind}.{name}.swift_dir", "must not be empty")
            if kind == "nodes" and not h.ip:
                v.fail(f"nodes.{name}.ip", "must not be empty (ring devices are matched by ip)")
    seen_ips: dict[str, str] = {}
    for name, node in nodes.items():
        if node.ip in seen_ips:
            v.fail(f"nodes.{name}.ip", f"{node.ip} is also the ip of node {seen_ips[node.ip]}")
        seen_ips[node.ip] = name

    o = data.get("openstack", {})
    openstack = OpenStackConfig(
        openrc=v.path(o["openrc"]) if "openrc" in o else None,
        nova_db=o.get("nova_db"),
        neutron_db=o.get("neutron_db"),
        cinder_db=o.get("cinder_db"),
        restore_order=tuple(o["restore_order"]) if "restore_order" in o else None,
    )
    da = data.get("drive_audit", {})
    drive_audit = DriveAuditConfig(since=da.get("since", DriveAuditConfig.since),
                                   explicit="since" in da)
    from ringmgr.ops.logwindow import parse_since

    try:
        parse_since(drive_audit.since, 0.0)
    except ValueError as e:
        v.fail("drive_audit.since", str(e))
    from ringmgr.config_rings import parse_ring_settings

    return Config(path=path, cluster=cluster, ssh=ssh, nodes=nodes, proxies=proxies,
                  openstack=openstack, drive_audit=drive_audit,
                  ring_settings=parse_ring_settings(v, data.get("rings", {})),
                  recon=_recon(v, data.get("recon", {})))


_SERVER_TYPES = ("account", "container", "object")


def _recon(v: "_Validator", r: dict) -> ReconConfig:
    rc = ReconConfig(
        scheme=r.get("scheme", "http"),
        ports=dict(r.get("ports", {})),
        timeout=float(r.get("timeout", ReconConfig.timeout)),
        connect_timeout=float(r.get("connect_timeout", ReconConfig.connect_timeout)),
        concurrency=r.get("concurrency", ReconConfig.concurrency),
        max_clock_skew=float(r.get("max_clock_skew", ReconConfig.max_clock_skew)),
    )
    if rc.scheme not in ("http", "https"):
        v.fail("recon.scheme", f'must be "http" or "https", not {rc.scheme!r}')
    for kind, port in rc.ports.items():
        if kind not in _SERVER_TYPES:
            v.fail(f"recon.ports.{kind}", "not a server type (account, container, object)")
        v.port(f"recon.ports.{kind}", port)
    for key in ("timeout", "connect_timeout"):
        if getattr(rc, key) <= 0:
            v.fail(f"recon.{key}", "must be more than 0 seconds")
    if rc.concurrency < 1:
        v.fail("recon.concurrency", "must be at least 1")
    return rc


def _node(v: "_Validator", name: str, n: dict, defaults: dict,
          replication_ports: dict | None = None) -> Node:
    from ringmgr.config_rings import parse_device_table, parse_node_rings

    key = f"nodes.{name}"
    v.keys(key, n, _NODE_KEYS)
    if "ip" not in n:
        v.fail(f"{key}.ip", "required key is missing (ring devices are matched by ip)")
    devices, device_attrs = parse_device_table(v, f"{key}.devices", n.get("devices", {}))
    ring_devices, ring_device_attrs, ring_ports = parse_node_rings(
        v, f"{key}.rings", n.get("rings", {}), replication_ports or {})
    fstab_by = n.get("fstab_by", defaults["fstab_by"])
    if fstab_by not in ("label", "uuid"):
        v.fail(f"{key}.fstab_by", "must be \"label\" or \"uuid\"")
    mount_options = n.get("mount_options", defaults["mount_options"])
    if "nobarrier" in mount_options.split(","):
        v.fail(f"{key}.mount_options", "nobarrier is refused: mounts fail on kernels >= 4.19")
    if not n.get("reboot_command", defaults["reboot_command"]):
        v.fail(f"{key}.reboot_command", "must name a command, e.g. [\"systemctl\", \"reboot\"]")
    fstab = n["fstab"] if "fstab" in n else defaults["fstab"]
    if "fstab" in n:
        fstab = str(v.path(fstab))
    node = Node(
        name=name,
        host=n.get("host", name),
        ssh_port=n.get("ssh_port", defaults["ssh_port"]),
        swift_dir=n.get("swift_dir", defaults["swift_dir"]),
        owner=n.get("owner", defaults["owner"]),
        ip=n.get("ip", ""),
        replication_ip=n.get("replication_ip"),
        region=n.get("region", 1),
        zone=n.get("zone", 1),
        devices=devices,
        ring_devices=ring_devices,
        block_devices=dict(n.get("block_devices", {})),
        mount_root=n.get("mount_root", defaults["mount_root"]),
        fstab=fstab,
        mkfs_options=tuple(n.get("mkfs_options", defaults["mkfs_options"])),
        mount_options=mount_options,
        fstab_by=fstab_by,
        reboot_command=tuple(n.get("reboot_command", defaults["reboot_command"])),
        mount_check=n.get("mount_check", defaults["mount_check"]),
        meta=n.get("meta", ""),
        device_attrs=device_attrs,
        ring_device_attrs=ring_device_attrs,
        ring_ports=ring_ports,
        object_server_conf=n.get("object_server_conf", defaults["object_server_conf"]),
        swift_command_prefix=tuple(n.get("swift_command_prefix",
                                         defaults["swift_command_prefix"])),
        run_dir=n.get("run_dir", defaults["run_dir"]),
    )
    if node.object_server_conf:
        v.node_path(key_of_node(n, key, "object_server_conf"), node.object_server_conf)
    v.node_path(key_of_node(n, key, "run_dir"), node.run_dir)
    check_node_values(v, node, lambda k: f"{key}.{k}" if k in n else f"defaults.{k}")
    return node


def key_of_node(n: dict, key: str, field_name: str) -> str:
    return f"{key}.{field_name}" if field_name in n else f"defaults.{field_name}"


def check_node_values(v: "_Validator", node: Node, key_of) -> None:
    """The node values that reach commands on the node and its fstab, checked.

    ``mount_root``, ``fstab`` and ``block_devices`` must be absolute, normalised paths
    of plain characters (``block_devices`` under ``/dev/``), ``owner`` is ``user[:group]``
    (names or numbers), ``mount_options`` one comma-separated list, ``mkfs_options``
    options only (no operand, which could name another disk).  ``key_of(field)`` is the
    dotted key the value came from (the node's own table or ``[defaults]``).
    """
    v.node_path(key_of("mount_root"), node.mount_root)
    if node.mount_root.rstrip("/") == "":
        v.fail(key_of("mount_root"), "must not be / (disks are mounted at mount_root/DEV)")
    v.node_path(key_of("fstab"), node.fstab)
    v.owner(key_of("owner"), node.owner)
    for dev, path in node.block_devices.items():
        dkey = f"nodes.{node.name}.block_devices.{dev}"
        if not _NAME_RE.fullmatch(dev) or dev in (".", ".."):
            v.fail(dkey, "device names may only use [A-Za-z0-9._-]")
        v.node_path(dkey, path)
        if not path.startswith("/dev/"):
            v.fail(dkey, f"must be a block device under /dev/, not {path!r}")
    if not _MOUNT_OPTIONS_RE.fullmatch(node.mount_options):
        v.fail(key_of("mount_options"), f"must be one comma-separated list of mount options "
                                        f"([A-Za-z0-9._=:/+@-] each; no spaces, newlines, "
                                        f"quotes or '#'), not {node.mount_options!r}")
    for opt in node.mkfs_options:
        if not _MKFS_OPTION_RE.fullmatch(opt):
            v.fail(key_of("mkfs_options"), f"{opt!r}: only [A-Za-z0-9._=:/+@,-] (no spaces "
                                           f"or newlines), one option or value per element")
        if opt.startswith("/"):
            v.fail(key_of("mkfs_options"), f"{opt!r} looks like a device: mkfs_options take "
                                           f"options only; the device comes from block_devices")
        if opt in ("-L", "-f") or "uuid=" in opt:
            v.fail(key_of("mkfs_options"), f"{opt!r}: ringmgr sets -f, -L and the UUID itself")


class _Validator:
    def __init__(self, path: Path):
        self.file = path

    def fail(self, key: str, why: str):
        raise ConfigError(f"{self.file}: {key}: {why}")

    def keys(self, key: str, table, allowed: dict[str, str]) -> None:
        """``table`` is a table whose keys are all in ``allowed``, each of its kind."""
        self.table(key, table)
        for k, val in table.items():
            if k not in allowed:
                self.fail(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(allowed))})")
            self.check(f"{key}.{k}", val, allowed[k])

    def table(self, key: str, value):
        if not isinstance(value, dict):
            self.fail(key, f"must be a table, not {_tname(value)}")

    def port(self, key: str, value) -> None:
        if value is not None and not 1 <= value <= 65535:
            self.fail(key, f"must be a TCP port (1-65535), not {value}")

    def node_path(self, key: str, value: str) -> None:
        """An absolute, normalised path on a node, of plain characters only."""
        if not value.startswith("/"):
            self.fail(key, f"must be an absolute path (it is a path on the node), "
                           f"not {value!r}")
        if not _PATH_RE.fullmatch(value):
            self.fail(key, f"{value!r} has characters outside [A-Za-z0-9._+@:,=/-] (no "
                           f"spaces, newlines, quotes or '#')")
        if any(part in (".", "..") for part in value.split("/")) or "//" in value:
            self.fail(key, f"{value!r} is not normalised (no '.', '..' or '//')")

    def owner(self, key: str, value: str) -> None:
        if not _OWNER_RE.fullmatch(value):
            self.fail(key, f"must be user or user:group (names or numeric ids), "
                           f"not {value!r}")

    def path(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.file.parent / p).resolve()

    def check(self, key: str, value, kind: str):
        ok = {
            _STR: lambda x: isinstance(x, str),
            _PATH: lambda x: isinstance(x, str) and x != "",
            _INT: lambda x: isinstance(x, int) and not isinstance(x, bool),
            _NUM: _is_number,
            _BOOL: lambda x: isinstance(x, bool),
            _STRLIST: lambda x: isinstance(x, list) and all(isinstance(i, str) for i in x),
            _STRMAP: lambda x: isinstance(x, dict) and all(isinstance(i, str) for i in x.values()),
            _INTMAP: lambda x: isinstance(x, dict) and all(
                isinstance(i, int) and not isinstance(i, bool) for i in x.values()),
            _NUMMAP: lambda x: isinstance(x, dict) and all(_is_number(i) for i in x.values()),
        }.get(kind)
        if kind == _WEIGHTS:
            if not isinstance(value, dict):
                self.fail(key, f"must be a {kind}, not {_tname(value)}")
            for dev, w in value.items():
                if not _is_number(w):
                    self.fail(f"{key}.{dev}", f"weight must be a finite number, not {w!r}"
                              if isinstance(w, float) else
                              f"weight must be a number, not {_tname(w)}")
                if w < 0:
                    self.fail(f"{key}.{dev}", f"weight must not be negative ({w})")
            return
        if kind.startswith(("table of ring", "table of device = weight (")):
            self.table(key, value)  # config_rings checks the entries
            return
        if ok is not None and not ok(value):
            if kind == _NUM and isinstance(value, float):
                self.fail(key, f"must be a finite number, not {value!r}")
            if kind == _PATH and value == "":
                self.fail(key, "must be a path, not an empty string")
            self.fail(key, f"must be a {kind}, not {_tname(value)}")
        if kind in (_INT, _NUM) and value < 0:
            self.fail(key, f"must not be negative ({value})")


def _is_number(x) -> bool:
    """An int or a finite float (TOML allows inf and nan; 1e309 parses as inf)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _tname(value) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
