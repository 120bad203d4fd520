"""Where Swift's replicas are, asked of each storage server directly.

A GET through the proxy succeeds as long as one replica survives, so it cannot tell
whether replication moved anything.  These helpers ask each primary node of an object
(by the admin host's ring) with a direct HEAD, as ``swift.common.direct_client`` does
(``HEAD /<device>/<partition>/<account>/<container>/<object>`` on the object server).
"""

from __future__ import annotations

from configparser import ConfigParser
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def hash_conf(swift_conf: Path):
    """swift's hash path prefix and suffix from ``swift_conf`` (the lab's), for the
    duration: swift reads them from /etc/swift/swift.conf once per process, and this
    process is no node of the lab."""
    from swift.common import utils

    cp = ConfigParser()
    cp.read(swift_conf, encoding="latin1")
    saved = utils.HASH_PATH_PREFIX, utils.HASH_PATH_SUFFIX
    utils.HASH_PATH_PREFIX = cp.get("swift-hash", "swift_hash_path_prefix",
                                    fallback="").encode("latin1")
    utils.HASH_PATH_SUFFIX = cp.get("swift-hash", "swift_hash_path_suffix",
                                    fallback="").encode("latin1")
    try:
        yield
    finally:
        utils.HASH_PATH_PREFIX, utils.HASH_PATH_SUFFIX = saved


def get_nodes(builder_dir, name: str, account: str, container: str, obj: str):
    """(partition, primary nodes) by swift's Ring over ``builder_dir/<name>.ring.gz``,
    hashed with ``builder_dir/swift.conf``."""
    from swift.common.ring import Ring

    with hash_conf(Path(builder_dir) / "swift.conf"):
        return Ring(str(builder_dir), ring_name=name).get_nodes(account, container, obj)


def missing_replicas(builder_dir, account: str, container: str, objects,
                     ring_name: str = "object", policy_index: int = 0) -> list[str]:
    """``"<object> on <ip>:<port>/<device>: <why>"`` for every primary of every object
    (by ``builder_dir/<ring_name>.ring.gz``) that does not hold it; [] when all do."""
    from swift.common import direct_client
    from swift.common.exceptions import ClientException

    headers = {"X-Backend-Storage-Policy-Index": str(policy_index)}
    missing = []
    for obj in objects:
        part, nodes = get_nodes(builder_dir, ring_name, account, container, obj)
        for node in nodes:
            where = f"{obj} on {node['ip']}:{node['port']}/{node['device']}"
            try:
                direct_client.direct_head_object(node, part, account, container, obj,
                                                 headers=headers)
            except ClientException as e:
                missing.append(f"{where}: {e.http_status}")
            except OSError as e:
                missing.append(f"{where}: {e}")
    return missing


def primary_ips(builder_dir, account: str, container: str, obj: str,
                ring_name: str = "object") -> set[str]:
    return {n["ip"] for n in get_nodes(builder_dir, ring_name, account, container, obj)[1]}


def account_of(lab) -> str:
    """The account of the lab's storage URL (``.../v1/AUTH_test``)."""
    return lab.token()[0].rstrip("/").rsplit("/", 1)[-1]


def wipe_devices(lab, node_name: str) -> None:
    """A removed node's disks are gone: empty each device directory (plain-directory
    labs only), so that its replicators, which ``sim/lab replicate`` also runs, have
    nothing to hand on and every replica must come from the surviving nodes."""
    import shutil

    node = lab.node(node_name)
    for dev in node.devices:
        d = Path(node.mount_root) / dev
        for child in d.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
