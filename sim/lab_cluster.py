"""The rehearsal lab: a real local Swift cluster on loopback addresses.

``sim/lab up`` writes a layout (``lab_configs``), builds the rings with swift's
RingBuilder, starts swift's own servers (one account, container and object server per
node on the node's 127.0.<net>.<i> address, a proxy with tempauth, Debian memcached and
one Debian rsync daemon per node), and prints the four ``export`` lines.  Every process
it starts, every loop device and every mount is recorded in the state directory the
moment it exists, so ``sim/lab down`` (also after a failed ``up``) stops exactly those
and nothing else.

Progress goes to stderr; stdout carries only the export lines.  This module holds the
lab's life cycle (up, add-node, status, down); its parts are ``lab_net`` (the network
claim), ``lab_files``, ``lab_disks``, ``lab_daemons``, ``lab_sshd``, ``lab_reboot``; the
command line is ``lab_cli``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from sim import lab_configs as cfg
from sim.lab_daemons import node_daemon_names, start_daemons, start_node_daemons, wait_proxy
from sim.lab_disks import make_disks, mounts, remove_disks
from sim.lab_files import build_rings, install_rings, write_config, write_files, write_node_files
from sim.lab_net import FIRST_NET, claim_net, release_claims_of, release_net
from sim.lab_procs import LabError, Records, alive, stop_procs, wait_listening
from sim.lab_sshd import start_sshd
from sim.lab_state import load_lab, save_lab, say


def up(state: str, *, nodes: int, disks: int, zones: int | None, part_power: int,
       xfs: bool, net: int | None, ssh: bool, spare: int = 2, min_part_hours: int = 0,
       ring_reload: float = 1.0, proxy_ring_reload: float | None = None,
       timeout: float = 60.0, ec: bool = False) -> cfg.Lab:
    state = os.path.abspath(state)
    if Path(state, "lab.json").exists():
        raise LabError(f"a lab already lives in {state}: `sim/lab down --state {state}` first")
    if os.path.exists(state) and any(Path(state).iterdir()):
        raise LabError(f"{state} exists and is not empty: choose another --state")
    if os.geteuid() != 0:
        raise LabError("the lab runs its servers as root and needs root")
    if not 0 < ring_reload <= 3600:
        raise ValueError("--ring-reload must be more than 0 and at most 3600 seconds")
    if proxy_ring_reload is not None and not 0 < proxy_ring_reload <= 3600:
        raise ValueError("--proxy-ring-reload must be more than 0 and at most 3600 seconds")
    if not 0 <= spare <= 100:
        raise ValueError("--spare must be between 0 and 100")
    cfg.plan_lab(state, net or FIRST_NET, nodes=nodes, disks=disks, zones=zones,
                 part_power=part_power, min_part_hours=min_part_hours,
                 xfs=xfs, ec=ec)  # bad arguments fail before anything exists
    Path(state).mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    records = Records(state)
    try:
        net_ = claim_net(state, net)
    except BaseException:
        shutil.rmtree(state, ignore_errors=True)
        raise
    lab = cfg.plan_lab(state, net_, nodes=nodes, disks=disks, zones=zones,
                       part_power=part_power, min_part_hours=min_part_hours, xfs=xfs,
                       ec=ec)
    lab.spare = spare
    lab.ring_reload = ring_reload
    lab.proxy_ring_reload = proxy_ring_reload
    try:
        records.set_procs([])
        save_lab(lab)
        write_files(lab)
        for node in lab.nodes:
            make_disks(lab, node, records)
        save_lab(lab)
        build_rings(lab)
        install_rings(lab)
        say(f"{len(lab.nodes)} nodes on 127.0.{lab.net}.2-{len(lab.nodes) + 1}, proxy "
            f"{lab.proxy_url}, rings at part power {lab.part_power}")
        waits = start_daemons(lab, records)
        lab.ssh = start_sshd(lab, records) if ssh else None
        save_lab(lab)
        write_config(lab)
        _check_config(lab)
        wait_listening(waits, timeout)
        wait_proxy(lab, max(5.0, timeout - (time.monotonic() - t0)))
    except BaseException:
        say("up failed; removing everything it started")
        _print_logs(lab)
        down(state)
        raise
    say(f"up in {time.monotonic() - t0:.1f} s")
    return lab


def _print_logs(lab: cfg.Lab) -> None:
    for log in sorted(Path(lab.log_dir).glob("*.log")):
        text = log.read_text(errors="replace").strip().splitlines()
        bad = [line for line in text if "Traceback" in line or "ERROR" in line or "Error" in line]
        if bad:
            say(f"{log.name}: " + " | ".join(text[-5:]))


def _check_config(lab: cfg.Lab) -> None:
    """The written ringmgr.toml must load with ringmgr's own loader."""
    from ringmgr.config import load_config

    load_config(lab.config_path)


def add_node(state: str, *, disks: int | None = None, zone: int | None = None,
             timeout: float = 60.0) -> cfg.LabNode:
    """A new storage node with running servers, in ringmgr.toml but in no ring yet.

    Putting it into the rings is what is being rehearsed (``ringmgr add-node``); its
    swift_dir gets the admin's current rings, as a new node would from a push.
    """
    lab = load_lab(os.path.abspath(state))
    node = cfg.new_node(lab, disks=disks, zone=zone)
    records = Records(lab.state)
    write_node_files(lab, node)
    make_disks(lab, node, records)
    lab.nodes.append(node)
    save_lab(lab)
    for ring in sorted(Path(lab.builder_dir).glob("*.ring.gz")):
        shutil.copy2(ring, Path(node.swift_dir, ring.name))
    wait_listening(start_node_daemons(lab, node, records), timeout)
    write_config(lab)
    if lab.ssh and node.ip not in lab.ssh.get("hosts", []):
        say(f"no sshd serves {node.ip} (up --spare N reserves more): ringmgr cannot push to it")
    say(f"{node.name} ({node.ip}, zone {node.zone}, {', '.join(node.devices)}) is up and in "
        f"{lab.config_path}; it is in no ring yet")
    return node


def status(state: str) -> dict:
    """What runs and what is mounted, per node: printed as a table, or JSON with --json."""
    lab = load_lab(os.path.abspath(state))
    running = {p["name"] for p in Records(lab.state).procs()
               if p.get("starttime") and alive(p)}
    mounted = {m for _, m in mounts()}
    nodes = []
    for node in lab.nodes:
        daemons = sorted(node_daemon_names(node))
        nodes.append({
            "name": node.name, "ip": node.ip, "zone": node.zone,
            "running": [d for d in daemons if d in running],
            "stopped": [d for d in daemons if d not in running],
            "devices": {dev: (f"{node.mount_root}/{dev}" in mounted) if lab.xfs else None
                        for dev in node.devices},
        })
    return {"state": lab.state, "proxy": lab.proxy_url,
            "proxy_running": "proxy-server" in running,
            "memcached_running": "memcached" in running,
            "sshd_running": any(n == "sshd" or n.endswith("-sshd") for n in running),
            "nodes": nodes}


def print_status(st: dict) -> None:
    print(f"lab in {st['state']}: proxy {st['proxy']} "
          f"{'up' if st['proxy_running'] else 'DOWN'}, memcached "
          f"{'up' if st['memcached_running'] else 'DOWN'}, sshd "
          f"{'up' if st['sshd_running'] else 'DOWN'}")
    for n in st["nodes"]:
        state = "up" if not n["stopped"] else (
            "DOWN" if not n["running"] else "partly down: " + ", ".join(n["stopped"]))
        devs = " ".join(dev + ("" if m is None else (" mounted" if m else " UNMOUNTED"))
                        for dev, m in n["devices"].items())
        print(f"  {n['name']}  {n['ip']:<14} z{n['zone']}  {state:<8}  {devs}")


def down(state: str) -> None:
    state = os.path.abspath(state)
    lab_json = Path(state, "lab.json")
    if not Path(state).exists():
        say(f"no lab in {state}: nothing to do")
        return
    records = Records(state)
    left = stop_procs(records)
    problems = remove_disks(state)
    if left:
        problems.append("still running: " + ", ".join(left))
    if problems:
        raise LabError("down left things behind (state kept in %s): %s"
                       % (state, "; ".join(problems)))
    if lab_json.exists():
        release_net(state, load_lab(state).net)
    else:  # up failed before lab.json: find our claim by its target
        release_claims_of(state)
    shutil.rmtree(state)
    say(f"down: {state} removed")
