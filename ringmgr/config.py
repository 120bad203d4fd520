"""ringmgr.toml -> typed objects.

The file is validated against one schema table (``SCHEMA``): every unknown key and
every wrong type is an error naming the file and the dotted key, so an operator who
typed ``mount_rot`` learns it before anything runs.  Relative paths are resolved
against the file's directory.

This module holds the file's sections and their parsing; the hosts (``[nodes]``,
``[proxies]``, ``[defaults]``) are ``config_nodes``, the ring tables ``config_rings``,
the value checks ``config_check``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.config_check import (
    BOOL, INT, INTMAP, NUM, NUMMAP, PATH, STR, STRLIST, STRMAP, Validator,
)
from ringmgr.config_nodes import (  # noqa: F401  (Host, Node, Proxy are re-exported)
    NODE_DEFAULTS, NODE_KEYS, Host, Node, Proxy, parse_node, parse_proxy,
)
from ringmgr.config_rings import parse_ring_settings
from ringmgr.errors import ConfigError
from ringmgr.rings.files import is_ring_name
from ringmgr.timespec import parse_since

DEFAULT_PORTS = {"account": 6202, "container": 6201, "object": 6200}

SCHEMA: dict[str, dict[str, str]] = {
    "cluster": {
        "builder_dir": PATH,
        "rings": STRLIST,
        "ports": INTMAP,
        "replication_ports": INTMAP,
        "push": BOOL,
        "swift_conf": PATH,
        "lock_timeout": NUM,
        "used_bytes": NUMMAP,
        "format_version": INT,
        "ring_reload": NUM,
        "full_percent": NUM,
        "canary": INT,
        "canary_containers": STRMAP,
        "measure_usage": BOOL,
    },
    "ssh": {
        "user": STR,
        "port": INT,
        "identity_file": PATH,
        "known_hosts": PATH,
        "parallel": INT,
        "connect_timeout": NUM,
        "retries": INT,
    },
    "defaults": {k: v for k, v in NODE_KEYS.items() if k in NODE_DEFAULTS},
    "drive_audit": {
        "since": STR,
    },
    "recon": {
        "scheme": STR,
        "ports": INTMAP,
        "timeout": NUM,
        "connect_timeout": NUM,
        "concurrency": INT,
        "max_clock_skew": NUM,
    },
    "openstack": {
        "openrc": PATH,
        "nova_db": STR,
        "neutron_db": STR,
        "cinder_db": STR,
        "restore_order": STRLIST,
    },
}
SECTIONS = set(SCHEMA) | {"nodes", "proxies", "rings", "converge"}


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
    canary: int = 0              # push --canary default: hosts pushed and proven first
    # object-N ring -> "account/container" of that policy, for push --canary's endpoints
    canary_containers: dict[str, str] = field(default_factory=dict)
    measure_usage: bool = False  # du each device's datadirs over SSH for ring changes

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
    configured: bool = False      # the file has a [recon] section (ok-to-stop asks recon)


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
    converge: object = None   # [converge]: ConvergeConfig, None when absent

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
    v = Validator(path)
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
        canary=c.get("canary", 0),
        canary_containers=dict(c.get("canary_containers", {})),
        measure_usage=c.get("measure_usage", False),
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
    for ring, path in cluster.canary_containers.items():
        if not (is_ring_name(ring) and ring.startswith("object-")):
            v.fail(f"cluster.canary_containers.{ring}", "not an object-N ring name (policy "
                                                        "0's object ring needs no container)")
        if path.count("/") != 1 or not all(path.split("/")):
            v.fail(f"cluster.canary_containers.{ring}", f"{path!r} is not ACCOUNT/CONTAINER "
                                                        f"(e.g. AUTH_ops/canary-ec)")
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

    defaults = {**NODE_DEFAULTS, **data.get("defaults", {})}
    if "fstab" in data.get("defaults", {}):
        defaults["fstab"] = str(v.path(defaults["fstab"]))

    nodes: dict[str, Node] = {}
    v.table("nodes", data.get("nodes", {}))
    for name, n in data.get("nodes", {}).items():
        nodes[name] = parse_node(v, name, n, defaults, cluster.replication_ports)
    v.port("defaults.ssh_port", defaults["ssh_port"])
    for name, n in nodes.items():
        v.port(f"nodes.{name}.ssh_port", n.ssh_port)
    proxies: dict[str, Proxy] = {}
    v.table("proxies", data.get("proxies", {}))
    for name, p in data.get("proxies", {}).items():
        proxies[name] = parse_proxy(v, name, p, defaults, nodes)

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
    for name, node in nodes.items():
        if node.previous_ip is not None and node.previous_ip in seen_ips:
            v.fail(f"nodes.{name}.previous_ip", f"{node.previous_ip} is the ip of node "
                                                f"{seen_ips[node.previous_ip]}")

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
    try:
        parse_since(drive_audit.since, 0.0)
    except ValueError as e:
        v.fail("drive_audit.since", str(e))
    from ringmgr.config_converge import CONVERGE_KEYS, parse_converge

    if "converge" in data:
        v.keys("converge", data["converge"], CONVERGE_KEYS)
    return Config(path=path, cluster=cluster, ssh=ssh, nodes=nodes, proxies=proxies,
                  openstack=openstack, drive_audit=drive_audit,
                  ring_settings=parse_ring_settings(v, data.get("rings", {})),
                  recon=_recon(v, data.get("recon", {}), "recon" in data),
                  converge=parse_converge(v, data.get("converge")))


_SERVER_TYPES = ("account", "container", "object")


def _recon(v, r: dict, configured: bool) -> ReconConfig:
    rc = ReconConfig(
        scheme=r.get("scheme", "http"),
        ports=dict(r.get("ports", {})),
        timeout=float(r.get("timeout", ReconConfig.timeout)),
        connect_timeout=float(r.get("connect_timeout", ReconConfig.connect_timeout)),
        concurrency=r.get("concurrency", ReconConfig.concurrency),
        max_clock_skew=float(r.get("max_clock_skew", ReconConfig.max_clock_skew)),
        configured=configured,
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
