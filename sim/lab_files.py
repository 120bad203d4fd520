"""The files the lab writes: swift's configs per node and for the proxy, the rings
(built with swift's RingBuilder, then on every host as a push would put them), and the
lab's ringmgr.toml."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sim import lab_configs as cfg
from sim.lab_ringmgr import ringmgr_toml


def write_files(lab: cfg.Lab) -> None:
    Path(lab.log_dir).mkdir(parents=True, exist_ok=True)
    Path(lab.proxy_dir).mkdir(parents=True, exist_ok=True)
    Path(lab.builder_dir).mkdir(parents=True, exist_ok=True)
    swift_conf = cfg.swift_conf(lab)
    Path(lab.builder_dir, "swift.conf").write_text(swift_conf)
    Path(lab.proxy_dir, "swift.conf").write_text(swift_conf)
    Path(lab.proxy_dir, "proxy-server.conf").write_text(cfg.proxy_conf(lab))
    for node in lab.nodes:
        write_node_files(lab, node)


def write_node_files(lab: cfg.Lab, node: cfg.LabNode) -> None:
    for d in (node.swift_dir, node.mount_root, node.cache_dir, f"{node.root}/run"):
        Path(d).mkdir(parents=True, exist_ok=True)
    Path(node.swift_dir, "swift.conf").write_text(cfg.swift_conf(lab))
    for server in cfg.SERVERS:
        Path(node.conf(server)).write_text(cfg.server_conf(lab, node, server))
    Path(node.swift_dir, "rsyncd.conf").write_text(cfg.rsyncd_conf(lab, node))
    Path(node.fstab).write_text(cfg.fstab(lab, node))


def install_rings(lab: cfg.Lab) -> None:
    """Copy the admin's ring.gz files to every node and the proxy (what a push does)."""
    rings = sorted(Path(lab.builder_dir).glob("*.ring.gz"))
    for dest in [n.swift_dir for n in lab.nodes] + [lab.proxy_dir]:
        for ring in rings:
            shutil.copy2(ring, Path(dest, ring.name))


def write_config(lab: cfg.Lab) -> None:
    """Write the lab's ringmgr.toml (atomically); ``ringmgr_toml`` refuses a config
    whose reboot_command could reboot this machine, and then nothing is written."""
    text = ringmgr_toml(lab)
    tmp = Path(lab.state, ".ringmgr.toml.tmp")
    tmp.write_text(text)
    os.replace(tmp, lab.config_path)


def build_rings(lab: cfg.Lab) -> list[Path]:
    """Write ``<ring>.builder`` and ``<ring>.ring.gz`` for every ring into builder_dir.

    object-1 (storage policy 1) gets one replica fewer than the others (at least one),
    so that the lab has rings of different shapes.
    """
    from swift.common.ring import RingBuilder

    out = Path(lab.builder_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for ring in lab.rings:
        replicas = max(1, lab.replicas - 1) if ring == "object-1" else lab.replicas
        if ring == "object-2":
            replicas = cfg.EC_NDATA + cfg.EC_NPARITY
        builder = RingBuilder(lab.part_power, replicas, lab.min_part_hours)
        port = cfg.PORTS["object" if ring.startswith("object") else ring]
        for node in lab.nodes:
            for dev in node.devices:
                builder.add_dev({"region": 1, "zone": node.zone, "ip": node.ip, "port": port,
                                 "replication_ip": node.ip, "replication_port": port,
                                 "device": dev, "weight": cfg.WEIGHT, "meta": ""})
        builder.rebalance(seed=1)
        builder.validate()
        tmp = out / f".{ring}.builder.tmp"
        builder.save(str(tmp))
        os.replace(tmp, out / f"{ring}.builder")
        builder.get_ring().save(str(out / f"{ring}.ring.gz"))
        written += [out / f"{ring}.builder", out / f"{ring}.ring.gz"]
    return written
