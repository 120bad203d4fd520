"""The hosts in ringmgr.toml: ``[nodes.NAME]`` (storage nodes, with their devices) and
``[proxies.NAME]``, their keys and ``[defaults]``, and the checks on every node value
that reaches a command on the node or its fstab.

Used by ``config.parse_config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ringmgr.config_check import (
    BOOL, DEVICES, INT, MKFS_OPTION_RE, MOUNT_OPTIONS_RE, NAME_RE, PATH, STR, STRLIST, STRMAP,
    Validator,
)
from ringmgr.config_rings import parse_device_table, parse_node_rings

# Node keys that [defaults] may set for every node.
NODE_DEFAULTS = {
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
    "transport": None,
}

NODE_COMMON = {
    "host": STR,
    "ssh_port": INT,
    "swift_dir": STR,
    "owner": STR,
    "transport": STR,
}
NODE_KEYS = {
    **NODE_COMMON,
    "ip": STR,
    "previous_ip": STR,
    "replication_ip": STR,
    "region": INT,
    "zone": INT,
    "meta": STR,
    "devices": DEVICES,
    "rings": "table of ring = {devices = ..., port = ..., replication_port = ...}",
    "block_devices": STRMAP,
    "mount_root": STR,
    "fstab": PATH,
    "mkfs_options": STRLIST,
    "mount_options": STR,
    "fstab_by": STR,
    "reboot_command": STRLIST,
    "object_server_conf": STR,
    "swift_command_prefix": STRLIST,
    "run_dir": STR,
    "mount_check": BOOL,
}


@dataclass(frozen=True)
class Host:
    """Anything ringmgr reaches over SSH: a storage node or a proxy."""

    name: str
    host: str
    ssh_port: int | None
    swift_dir: str
    owner: str
    # how ringmgr reaches the host (exec/factory.py TRANSPORTS; None: local for
    # localhost, else ssh), and the dotted key it came from, for a refusal
    transport: str | None = None
    transport_key: str = field(default="", compare=False, repr=False)


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
    previous_ip: str | None = None   # renumbering: converge turns it into set_info
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
    endpoints_url: str | None = None   # swift's list_endpoints on it: http://p01:8080/endpoints


def parse_node(v: Validator, name: str, n: dict, defaults: dict,
          replication_ports: dict | None = None) -> Node:
    key = f"nodes.{name}"
    v.keys(key, n, NODE_KEYS)
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
        **_transport(v, key, n, defaults),
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
        previous_ip=n.get("previous_ip"),
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


def parse_proxy(v: Validator, name: str, p: dict, defaults: dict, nodes) -> Proxy:
    """``[proxies.NAME]``; ``nodes``: the node names (a proxy may not reuse one)."""
    key = f"proxies.{name}"
    v.keys(key, p, {**NODE_COMMON, "endpoints_url": STR})
    if name in nodes:
        v.fail(key, "a proxy may not have the same name as a node")
    proxy = Proxy(
        name=name,
        host=p.get("host", name),
        ssh_port=p.get("ssh_port", defaults["ssh_port"]),
        swift_dir=p.get("swift_dir", defaults["swift_dir"]),
        owner=p.get("owner", defaults["owner"]),
        **_transport(v, key, p, defaults),
        endpoints_url=p.get("endpoints_url"),
    )
    v.port(f"{key}.ssh_port", proxy.ssh_port)
    if p.get("endpoints_url") is not None and not p["endpoints_url"].startswith(
            ("http://", "https://")):
        v.fail(f"{key}.endpoints_url", "must be an http:// or https:// URL (swift's "
                                       "list_endpoints path on the proxy)")
    v.owner(f"{key}.owner" if "owner" in p else "defaults.owner", proxy.owner)
    return proxy


def _transport(v: Validator, key: str, table: dict, defaults: dict) -> dict:
    """A host's ``transport`` (its own, else ``[defaults]``) and where it was set.  The
    name is checked against the known transports where executors are made (the
    factory), which this layer does not import; here only its form."""
    name = table.get("transport", defaults["transport"])
    where = key_of_node(table, key, "transport")
    if name is not None and not NAME_RE.fullmatch(name):
        v.fail(where, f"must be a transport name ([A-Za-z0-9._-]), not {name!r}")
    return {"transport": name, "transport_key": where if name is not None else ""}


def key_of_node(n: dict, key: str, field_name: str) -> str:
    return f"{key}.{field_name}" if field_name in n else f"defaults.{field_name}"


def check_node_values(v: Validator, node: Node, key_of) -> None:
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
        if not NAME_RE.fullmatch(dev) or dev in (".", ".."):
            v.fail(dkey, "device names may only use [A-Za-z0-9._-]")
        v.node_path(dkey, path)
        if not path.startswith("/dev/"):
            v.fail(dkey, f"must be a block device under /dev/, not {path!r}")
    if not MOUNT_OPTIONS_RE.fullmatch(node.mount_options):
        v.fail(key_of("mount_options"), f"must be one comma-separated list of mount options "
                                        f"([A-Za-z0-9._=:/+@-] each; no spaces, newlines, "
                                        f"quotes or '#'), not {node.mount_options!r}")
    for opt in node.mkfs_options:
        if not MKFS_OPTION_RE.fullmatch(opt):
            v.fail(key_of("mkfs_options"), f"{opt!r}: only [A-Za-z0-9._=:/+@,-] (no spaces "
                                           f"or newlines), one option or value per element")
        if opt.startswith("/"):
            v.fail(key_of("mkfs_options"), f"{opt!r} looks like a device: mkfs_options take "
                                           f"options only; the device comes from block_devices")
        if opt in ("-L", "-f") or "uuid=" in opt:
            v.fail(key_of("mkfs_options"), f"{opt!r}: ringmgr sets -f, -L and the UUID itself")
