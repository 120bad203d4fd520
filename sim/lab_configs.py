"""The rehearsal lab's pure part: its layout, and every file it writes.

Nothing here starts a process or touches a disk.  The lab's ringmgr.toml is
``lab_ringmgr``; ``lab_files`` writes these files and builds the rings, ``lab_cluster``
turns a :class:`Lab` into running daemons.

Addresses: a lab owns one /24 of loopback, ``127.0.<net>.0/24``.  The proxy (with
memcached) is ``127.0.<net>.1`` and storage node *i* (s01, s02, ...) is
``127.0.<net>.<i+1>``, so a node added later simply takes the next address; every node
runs its servers on the same three ports (one per ring) on its own address, so ring
devices map to nodes by ip exactly as on a real cluster.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

PORTS = {"object": 16200, "container": 16201, "account": 16202}
PROXY_PORT = 18080
MEMCACHED_PORT = 11711
RSYNC_PORT = 18730
PROXY_HOST_OCTET = 1
RINGS = ("account", "container", "object", "object-1")
SERVERS = ("account", "container", "object")
DEVICE_NAMES = tuple(f"sd{c}" for c in "bcdefghijklmnopqrstuvwxyz")
WEIGHT = 100.0
USER, KEY = "test:tester", "testing"
LAB_SCRIPT = Path(__file__).resolve().parent / "lab"
REBOOT_DOWN_FOR = 10.0  # seconds a rehearsed reboot keeps a node unreachable


@dataclass
class LabNode:
    name: str
    ip: str
    zone: int
    devices: list[str]
    root: str  # this node's directory in the state dir

    @property
    def swift_dir(self) -> str:
        return f"{self.root}/etc/swift"

    @property
    def mount_root(self) -> str:
        return f"{self.root}/srv/node"

    @property
    def fstab(self) -> str:
        return f"{self.root}/etc/fstab"

    @property
    def cache_dir(self) -> str:
        return f"{self.root}/var/cache/swift"

    def conf(self, server: str) -> str:
        return f"{self.swift_dir}/{server}-server.conf"


@dataclass
class Lab:
    """Everything needed to write, start, and later find and stop one lab."""

    state: str
    net: int
    nodes: list[LabNode]
    part_power: int = 8
    replicas: int = 3
    min_part_hours: int = 0
    xfs: bool = False
    hash_suffix: str = field(default_factory=lambda: secrets.token_hex(8))
    block_devices: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> dev -> /dev/loopN
    ring_reload: float = 1.0  # seconds between a server's ring.gz checks (swift: 15)
    proxy_ring_reload: float | None = None  # the proxy's own, when it differs (a slow proxy)
    spare: int = 2  # sshd also serves this many addresses after the last node (add-node)
    ssh: dict | None = None  # port, identity_file, known_hosts, hosts (served addresses)
    ec: bool = False  # storage policy 2 "ec42": erasure coded 4+2 (ring object-2, pyeclib)

    @property
    def rings(self) -> tuple[str, ...]:
        return RINGS + (("object-2",) if self.ec else ())

    @property
    def proxy_ip(self) -> str:
        return f"127.0.{self.net}.{PROXY_HOST_OCTET}"

    @property
    def proxy_dir(self) -> str:
        return f"{self.state}/proxy/etc/swift"

    @property
    def builder_dir(self) -> str:
        return f"{self.state}/admin"

    @property
    def config_path(self) -> str:
        return f"{self.state}/ringmgr.toml"

    @property
    def log_dir(self) -> str:
        return f"{self.state}/logs"

    @property
    def auth_url(self) -> str:
        return f"http://{self.proxy_ip}:{PROXY_PORT}/auth/v1.0"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.proxy_ip}:{PROXY_PORT}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Lab":
        d = json.loads(text)
        d["nodes"] = [LabNode(**n) for n in d["nodes"]]
        return cls(**d)


def plan_lab(state: str, net: int, *, nodes: int = 4, disks: int = 2, zones: int | None = None,
             part_power: int = 8, replicas: int | None = None, min_part_hours: int = 0,
             xfs: bool = False, ec: bool = False) -> Lab:
    """The lab's layout; ``zones`` defaults to one zone per node."""
    if ec and nodes * disks < EC_NDATA + EC_NPARITY:
        raise ValueError(f"--ec needs at least {EC_NDATA + EC_NPARITY} devices "
                         f"(--nodes x --disks) for its {EC_NDATA}+{EC_NPARITY} fragments")
    if not 1 <= nodes <= 250:
        raise ValueError("--nodes must be between 1 and 250")
    if not 1 <= disks <= len(DEVICE_NAMES):
        raise ValueError(f"--disks must be between 1 and {len(DEVICE_NAMES)}")
    if not 1 <= net <= 254:
        raise ValueError("the lab's network octet must be between 1 and 254")
    if zones is not None and not 1 <= zones <= nodes:
        raise ValueError("--zones must be between 1 and --nodes")
    if not 4 <= part_power <= 16:
        raise ValueError("--part-power must be between 4 and 16 (a lab is small)")
    if not 0 <= min_part_hours <= 168:
        raise ValueError("--min-part-hours must be between 0 and 168")
    zones = zones or nodes
    state = os.path.abspath(state)
    lab_nodes = [
        LabNode(name=f"s{i:02d}", ip=f"127.0.{net}.{i + 1}", zone=(i - 1) % zones + 1,
                devices=list(DEVICE_NAMES[:disks]), root=f"{state}/nodes/s{i:02d}")
        for i in range(1, nodes + 1)
    ]
    return Lab(state=state, net=net, nodes=lab_nodes, part_power=part_power,
               replicas=replicas or min(3, nodes * disks), min_part_hours=min_part_hours,
               xfs=xfs, ec=ec)


def new_node(lab: Lab, *, disks: int | None = None, zone: int | None = None) -> LabNode:
    """The next node (name s<N+1>, next address), not yet in ``lab.nodes``."""
    i = len(lab.nodes) + 1
    disks = disks or len(lab.nodes[-1].devices)
    if not 1 <= disks <= len(DEVICE_NAMES):
        raise ValueError(f"--disks must be between 1 and {len(DEVICE_NAMES)}")
    if i + 1 >= 255:
        raise ValueError("the lab's /24 is full")
    return LabNode(name=f"s{i:02d}", ip=f"127.0.{lab.net}.{i + 1}", zone=zone or i,
                   devices=list(DEVICE_NAMES[:disks]), root=f"{lab.state}/nodes/s{i:02d}")


def xfs_label(lab: Lab, node: LabNode, dev: str) -> str:
    """Unique across labs on this kernel, at most 12 characters (XFS's limit)."""
    return f"lab{lab.net}{node.name}{dev[-1]}"[:12]


# --- swift configuration --------------------------------------------------------------

def swift_conf(lab: Lab) -> str:
    return f"""\
[swift-hash]
swift_hash_path_suffix = {lab.hash_suffix}
swift_hash_path_prefix = ringmgr-lab

[storage-policy:0]
name = gold
default = yes

[storage-policy:1]
name = silver
""" + (EC_POLICY if lab.ec else "")


EC_NDATA, EC_NPARITY = 4, 2
EC_POLICY = f"""
[storage-policy:2]
name = ec42
policy_type = erasure_coding
ec_type = liberasurecode_rs_vand
ec_num_data_fragments = {EC_NDATA}
ec_num_parity_fragments = {EC_NPARITY}
ec_object_segment_size = 65536
"""


def swift_command_prefix(node: LabNode) -> list[str]:
    """How a lab node runs one of swift's console scripts (``lab_swiftrun.py``)."""
    import sys

    return [sys.executable, str(Path(__file__).resolve().parent / "lab_swiftrun.py"),
            node.swift_dir]


def _common(lab: Lab, node: LabNode, server: str) -> str:
    return f"""\
[DEFAULT]
bind_ip = {node.ip}
bind_port = {PORTS[server]}
workers = 0
bind_timeout = 3
user = root
swift_dir = {node.swift_dir}
devices = {node.mount_root}
mount_check = {"true" if lab.xfs else "false"}
log_name = {node.name}-{server}
recon_cache_path = {node.cache_dir}
disable_fallocate = true

[pipeline:main]
pipeline = recon {server}-server

[filter:recon]
use = egg:swift#recon
recon_cache_path = {node.cache_dir}

[app:{server}-server]
use = egg:swift#{server}
"""


def server_conf(lab: Lab, node: LabNode, server: str) -> str:
    """``{server}-server.conf`` for one node, with its replicator and helpers' sections."""
    text = _common(lab, node, server)
    if server == "object":
        return text + f"""
[object-replicator]
sync_method = ssync
concurrency = 2
interval = 30
rsync_module = rsync://{{replication_ip}}:{RSYNC_PORT}/object

[object-reconstructor]

[object-updater]

[object-auditor]
"""
    return text + f"""
[{server}-replicator]
rsync_module = rsync://{{replication_ip}}:{RSYNC_PORT}/{server}
interval = 30

[{server}-updater]

[{server}-auditor]
""" + ("\n[container-sync]\n\n[container-sharder]\n" if server == "container" else "")


def proxy_conf(lab: Lab) -> str:
    return f"""\
[DEFAULT]
bind_ip = {lab.proxy_ip}
bind_port = {PROXY_PORT}
workers = 0
bind_timeout = 3
user = root
swift_dir = {lab.proxy_dir}
log_name = proxy

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache list-endpoints listing_formats tempauth copy dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
conn_timeout = 1.0
node_timeout = 5
recoverable_node_timeout = 5

[filter:list-endpoints]
use = egg:swift#list_endpoints

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = {lab.proxy_ip}:{MEMCACHED_PORT}

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes

[filter:symlink]
use = egg:swift#symlink
"""


def rsyncd_conf(lab: Lab, node: LabNode) -> str:
    modules = "".join(f"""
[{server}]
path = {node.mount_root}
read only = false
write only = false
list = yes
lock file = {node.root}/run/rsync-{server}.lock
max connections = 8
""" for server in SERVERS)
    return f"""\
uid = root
gid = root
use chroot = no
address = {node.ip}
port = {RSYNC_PORT}
pid file = {node.root}/run/rsyncd.pid
log file = {lab.log_dir}/{node.name}-rsyncd.log
""" + modules


def fstab(lab: Lab, node: LabNode) -> str:
    """The node's own fstab (never /etc/fstab): by LABEL, as the deployment guide says."""
    lines = ["# ringmgr rehearsal lab: this node's fstab"]
    if lab.xfs:
        for dev in node.devices:
            lines.append(f"LABEL={xfs_label(lab, node, dev)} {node.mount_root}/{dev} xfs "
                         "noatime,nofail 0 0")
    return "\n".join(lines) + "\n"
