"""The lab's pure part: layout, written files, parsers of /proc and losetup output."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import pytest

from sim import lab_configs as cfg
from sim import lab_ringmgr
from sim.lab_disks import mount_table, parse_losetup
from sim.lab_files import build_rings
from sim.lab_procs import parse_listen_inodes


def test_layout_addresses_zones_and_devices():
    lab = cfg.plan_lab("/x/lab", 7, nodes=5, disks=3, zones=2)
    assert lab.proxy_ip == "127.0.7.1"
    assert [(n.name, n.ip, n.zone) for n in lab.nodes] == [
        ("s01", "127.0.7.2", 1), ("s02", "127.0.7.3", 2), ("s03", "127.0.7.4", 1),
        ("s04", "127.0.7.5", 2), ("s05", "127.0.7.6", 1)]
    assert lab.nodes[0].devices == ["sdb", "sdc", "sdd"]
    assert lab.nodes[0].swift_dir == "/x/lab/nodes/s01/etc/swift"
    assert lab.replicas == 3 and lab.min_part_hours == 0
    new = cfg.new_node(lab)
    assert (new.name, new.ip, new.zone, new.devices) == ("s06", "127.0.7.7", 6,
                                                         ["sdb", "sdc", "sdd"])
    assert cfg.plan_lab("/x", 5, nodes=1, disks=2).replicas == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(nodes=0), "--nodes"), (dict(nodes=251), "--nodes"), (dict(disks=0), "--disks"),
    (dict(disks=26), "--disks"), (dict(zones=5, nodes=4), "--zones"),
    (dict(part_power=3), "--part-power"), (dict(part_power=17), "--part-power"),
    (dict(min_part_hours=-1), "--min-part-hours"),
])
def test_layout_refuses_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cfg.plan_lab("/x", 5, **kwargs)


def test_xfs_labels_are_unique_and_fit_xfs():
    labels = set()
    for net in (5, 249):
        lab = cfg.plan_lab("/x", net, nodes=99, disks=25)
        for node in lab.nodes:
            for dev in node.devices:
                label = cfg.xfs_label(lab, node, dev)
                assert len(label) <= 12
                labels.add(label)
    assert len(labels) == 2 * 99 * 25


def test_lab_record_round_trips_through_json():
    lab = cfg.plan_lab("/x/lab", 9, nodes=2, xfs=True)
    lab.block_devices = {"s01": {"sdb": "/dev/loop4"}}
    lab.ssh = {"port": 2222, "identity_file": "/k", "known_hosts": "/kh", "hosts": ["127.0.9.1"]}
    assert cfg.Lab.from_json(lab.to_json()) == lab


def _load(lab, tmp_path):
    from ringmgr.config import parse_config

    return parse_config(tomllib.loads(lab_ringmgr.ringmgr_toml(lab)), tmp_path / "ringmgr.toml")


def test_ringmgr_toml_is_valid_for_ringmgr_and_maps_nodes_by_ip(tmp_path):
    lab = cfg.plan_lab(str(tmp_path), 5, nodes=3, disks=2, xfs=True)
    lab.block_devices = {"s01": {"sdb": "/dev/loop4", "sdc": "/dev/loop5"}}
    lab.ssh = {"port": 40022, "identity_file": "/k/id", "known_hosts": "/k/kh"}
    config = _load(lab, tmp_path)
    assert config.cluster.builder_dir == Path(lab.builder_dir)
    assert config.cluster.swift_conf == Path(lab.builder_dir, "swift.conf")
    assert config.cluster.port_for("object-1") == cfg.PORTS["object"]
    assert config.ssh.port == 40022 and str(config.ssh.known_hosts) == "/k/kh"
    s01 = config.node_by_ip("127.0.5.2")
    assert s01.name == "s01" and s01.devices == {"sdb": 100.0, "sdc": 100.0}
    assert s01.block_device("sdb") == "/dev/loop4"
    assert s01.fstab == lab.nodes[0].fstab and s01.mount_root == lab.nodes[0].mount_root
    assert s01.owner == "root:root"
    assert config.proxies["proxy"].host == "127.0.5.1"
    without_ssh = cfg.plan_lab(str(tmp_path), 5, nodes=1)
    assert _load(without_ssh, tmp_path).ssh.identity_file is None


def test_server_confs_bind_the_node_and_replicate_as_the_lab_says():
    lab = cfg.plan_lab("/x/lab", 5, nodes=2)
    node = lab.nodes[1]
    for server in cfg.SERVERS:
        conf = configparser.ConfigParser()
        conf.read_string(cfg.server_conf(lab, node, server))
        assert conf["DEFAULT"]["bind_ip"] == node.ip
        assert int(conf["DEFAULT"]["bind_port"]) == cfg.PORTS[server]
        assert conf["DEFAULT"]["devices"] == node.mount_root
        assert conf["DEFAULT"]["mount_check"] == "false"
        assert conf["DEFAULT"]["user"] == "root"
    obj = configparser.ConfigParser()
    obj.read_string(cfg.server_conf(lab, node, "object"))
    assert obj["object-replicator"]["sync_method"] == "ssync"
    xfs = cfg.plan_lab("/x/lab", 5, nodes=1, xfs=True)
    assert "mount_check = true" in cfg.server_conf(xfs, xfs.nodes[0], "object")


def test_rsync_module_template_reaches_the_remote_nodes_daemon():
    """The replicator fills the template from the *remote* device: it must name the
    remote node's rsync daemon (its ip, the lab's port) and a module that exists there."""
    from swift.common.utils import rsync_module_interpolation

    lab = cfg.plan_lab("/x/lab", 5, nodes=2)
    local, remote = lab.nodes
    conf = configparser.ConfigParser()
    conf.read_string(cfg.server_conf(lab, local, "container"))
    template = conf["container-replicator"]["rsync_module"]
    device = {"ip": remote.ip, "port": cfg.PORTS["container"], "replication_ip": remote.ip,
              "replication_port": cfg.PORTS["container"], "device": "sdb"}
    assert rsync_module_interpolation(template, device) == \
        f"rsync://{remote.ip}:{cfg.RSYNC_PORT}/container"
    rsyncd = cfg.rsyncd_conf(lab, remote)
    assert f"address = {remote.ip}" in rsyncd and f"port = {cfg.RSYNC_PORT}" in rsyncd
    assert "[container]" in rsyncd and f"path = {remote.mount_root}" in rsyncd


def test_swift_conf_has_two_replicated_policies():
    from swift.common.storage_policy import parse_storage_policies

    lab = cfg.plan_lab("/x", 5)
    conf = configparser.ConfigParser()
    conf.read_string(cfg.swift_conf(lab))
    policies = parse_storage_policies(conf)
    assert [(p.idx, p.name, p.is_default) for p in policies] == [
        (0, "gold", True), (1, "silver", False)]
    assert conf["swift-hash"]["swift_hash_path_suffix"] == lab.hash_suffix
    assert cfg.plan_lab("/x", 5).hash_suffix != lab.hash_suffix


def test_fstab_by_label_only_for_xfs():
    lab = cfg.plan_lab("/x/lab", 5, nodes=1, disks=2, xfs=True)
    lines = cfg.fstab(lab, lab.nodes[0]).splitlines()[1:]
    assert lines == [f"LABEL=lab5s01{d[-1]} /x/lab/nodes/s01/srv/node/{d} xfs noatime,nofail 0 0"
                     for d in ("sdb", "sdc")]
    plain = cfg.plan_lab("/x/lab", 5, nodes=1)
    assert cfg.fstab(plain, plain.nodes[0]).splitlines()[1:] == []


def test_build_rings_every_device_once_in_every_ring(tmp_path):
    from swift.common.ring import RingBuilder, RingData

    lab = cfg.plan_lab(str(tmp_path), 5, nodes=3, disks=2, part_power=6)
    build_rings(lab)
    for ring in cfg.RINGS:
        b = RingBuilder.load(f"{lab.builder_dir}/{ring}.builder")
        assert b.part_power == 6 and b.min_part_hours == 0
        assert b.replicas == (2 if ring == "object-1" else 3)
        assert sorted((d["ip"], d["device"]) for d in b.devs) == sorted(
            (n.ip, dev) for n in lab.nodes for dev in n.devices)
        port = cfg.PORTS["object" if ring.startswith("object") else ring]
        assert {d["port"] for d in b.devs} == {port}
        assert len(RingData.load(f"{lab.builder_dir}/{ring}.ring.gz").devs) == 6


# --- parsers (samples as in their docstrings) -----------------------------------------

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:3F48 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0 100 0 0 10 0
   1: 0100007F:3F48 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 123999 1 0 20 4 30 10 -1
   2: 0205007F:3F48 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0
"""


@pytest.mark.parametrize("ip, port, inodes", [
    ("127.0.0.1", 16200, {"123456"}),
    ("127.0.5.2", 16200, {"777"}),
    ("127.0.5.2", 16201, set()),
    ("127.0.0.2", 16200, set()),
])
def test_parse_listen_inodes(ip, port, inodes):
    assert parse_listen_inodes(TCP, ip, port) == inodes


@pytest.mark.parametrize("text, pairs", [
    ("", []),
    ("/dev/loop0 /tmp/ringmgr-lab/disks/s01-sdb.img\n",
     [("/dev/loop0", "/tmp/ringmgr-lab/disks/s01-sdb.img")]),
    ("/dev/loop3 /tmp/old disk.img (deleted)\n/dev/loop4 \n",
     [("/dev/loop3", "/tmp/old disk.img")]),
])
def test_parse_losetup(text, pairs):
    assert parse_losetup(text) == pairs


@pytest.mark.parametrize("text, pairs", [
    ("301 27 7:0 / /tmp/lab/nodes/s01/srv/node/sdb rw,noatime shared:150 - xfs /dev/loop0 "
     "rw,attr2\n", [("/dev/loop0", "/tmp/lab/nodes/s01/srv/node/sdb")]),
    ("302 27 7:1 / /tmp/my\\040lab/x rw - xfs /dev/loop1 rw\n"
     "22 27 0:21 / /proc rw,relatime - proc proc rw\n",
     [("/dev/loop1", "/tmp/my lab/x"), ("proc", "/proc")]),
])
def test_the_lab_reads_mounts_with_ringmgrs_mountinfo_parser(text, pairs):
    assert mount_table(text) == pairs


def test_every_lab_node_gets_the_simulated_reboot_not_the_hosts(tmp_path):
    """A lab node is this machine: ringmgr's default `systemctl reboot` would reboot the
    host.  Each node's reboot_command is `sim/lab reboot NODE` of this very lab."""
    lab = cfg.plan_lab(str(tmp_path), 5, nodes=3, disks=1)
    lab.ssh = {"port": 40022, "identity_file": "/k/id", "known_hosts": "/k/kh"}
    config = _load(lab, tmp_path)
    for node in lab.nodes:
        cmd = list(config.node(node.name).reboot_command)
        assert cmd == lab_ringmgr.reboot_command(lab, node)
        assert cmd[:2] == ["setsid", "--fork"] and Path(cmd[3]) == cfg.LAB_SCRIPT
        assert cmd[4:8] == ["reboot", node.name, "--state", lab.state]
        assert "systemctl" not in cmd
    assert lab_ringmgr.unsafe_reboot_commands(lab, tomllib.loads(lab_ringmgr.ringmgr_toml(lab))) == []


@pytest.mark.parametrize("make, needle", [
    (lambda real, lab, node: None,
     "has no reboot_command: ringmgr's default `systemctl reboot`"),
    (lambda real, lab, node: ["systemctl", "reboot"], "is not the lab's simulated reboot"),
    (lambda real, lab, node: ["sh", "-c", "reboot"], "is not the lab's simulated reboot"),
    (lambda real, lab, node: real(lab, lab.nodes[0]), "reboot of s02"),  # another node's
    (lambda real, lab, node: real(lab, node)[:7] + ["/other/lab"], "not the lab's"),
    (lambda real, lab, node: real(lab, node) + ["; reboot"], "not the lab's"),
])
def test_the_lab_refuses_to_write_a_config_without_a_safe_reboot_command(
        tmp_path, monkeypatch, make, needle):
    from sim import lab_files

    lab = cfg.plan_lab(str(tmp_path), 5, nodes=2, disks=1)
    real = lab_ringmgr.reboot_command

    def patched(lab_, node):
        return real(lab_, node) if node.name == "s01" else make(real, lab_, node)

    monkeypatch.setattr(lab_ringmgr, "reboot_command", patched)
    config_path = Path(lab.config_path)
    config_path.write_text("# the config before\n")
    with pytest.raises(lab_ringmgr.UnsafeConfig, match="refusing to write ringmgr.toml") as e:
        lab_files.write_config(lab)
    assert needle in str(e.value) and "nodes.s02" in str(e.value)
    assert "nodes.s01" not in str(e.value)
    assert config_path.read_text() == "# the config before\n"  # nothing was written

