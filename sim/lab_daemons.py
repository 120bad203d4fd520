"""The lab's daemons: memcached, the proxy, every node's rsync daemon and swift servers
(run through ``lab_swiftrun.py``), readiness of the proxy, a node stopped or started,
one pass of every replicator, and one of every reconstructor."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sim import lab_configs as cfg
from sim.lab_procs import LabError, Records, spawn, stop_procs, wait_listening
from sim.lab_state import find_node, load_lab, say

SWIFTRUN = Path(__file__).resolve().parent / "lab_swiftrun.py"


def swift_argv(swift_dir: str, script: str, *args: str) -> list[str]:
    return [sys.executable, str(SWIFTRUN), swift_dir, script, *args]


def swift_env(lab: cfg.Lab, proxy: bool = False) -> dict[str, str]:
    reload = lab.proxy_ring_reload if proxy and lab.proxy_ring_reload else lab.ring_reload
    return {**os.environ, "RINGMGR_LAB_RING_RELOAD": str(reload)}


def start_daemons(lab: cfg.Lab, records: Records) -> list[tuple[str, subprocess.Popen, str, int]]:
    """Start memcached, rsync and every swift server; (name, proc, ip, port) to wait for."""
    logs = lab.log_dir
    waits = []
    name = "memcached"
    p = spawn(records, name, ["memcached", "-u", "root", "-l", lab.proxy_ip, "-p",
                              str(cfg.MEMCACHED_PORT), "-U", "0", "-m", "32"], f"{logs}/{name}.log")
    waits.append((name, p, lab.proxy_ip, cfg.MEMCACHED_PORT))
    for node in lab.nodes:
        waits += start_node_daemons(lab, node, records)
    name = "proxy-server"
    p = spawn(records, name, swift_argv(lab.proxy_dir, "swift-proxy-server",
                                        f"{lab.proxy_dir}/proxy-server.conf", "-v"),
              f"{logs}/{name}.log", env=swift_env(lab, proxy=True))
    waits.append((name, p, lab.proxy_ip, cfg.PROXY_PORT))
    return waits


def node_daemon_names(node: cfg.LabNode) -> set[str]:
    return {f"{node.name}-rsyncd"} | {f"{node.name}-{s}-server" for s in cfg.SERVERS}


def start_node_daemons(lab: cfg.Lab, node: cfg.LabNode, records: Records):
    """One node's rsync daemon and account/container/object servers."""
    logs = lab.log_dir
    name = f"{node.name}-rsyncd"
    p = spawn(records, name, ["rsync", "--daemon", "--no-detach",
                              f"--config={node.swift_dir}/rsyncd.conf"], f"{logs}/{name}.log")
    waits = [(name, p, node.ip, cfg.RSYNC_PORT)]
    for server in cfg.SERVERS:
        name = f"{node.name}-{server}-server"
        p = spawn(records, name, swift_argv(node.swift_dir, f"swift-{server}-server",
                                            node.conf(server), "-v"), f"{logs}/{name}.log",
                  env=swift_env(lab))
        waits.append((name, p, node.ip, cfg.PORTS[server]))
    return waits


def auth(lab: cfg.Lab) -> tuple[str, str]:
    """Tempauth: (storage url, token)."""
    req = urllib.request.Request(lab.auth_url, headers={"X-Auth-User": cfg.USER,
                                                        "X-Auth-Key": cfg.KEY})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers["X-Storage-Url"], resp.headers["X-Auth-Token"]


def wait_proxy(lab: cfg.Lab, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(lab.proxy_url + "/healthcheck", timeout=5) as r:
                if r.read() != b"OK":
                    raise LabError("healthcheck did not say OK")
            url, token = auth(lab)
            req = urllib.request.Request(url, method="HEAD", headers={"X-Auth-Token": token})
            with urllib.request.urlopen(req, timeout=10) as r:
                if 200 <= r.status < 300:
                    return
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            last = e
        time.sleep(0.2)
    raise LabError(f"the proxy at {lab.proxy_url} did not answer an authenticated "
                   f"request in {timeout:.0f} s: {last}")


def stop_node(state: str, name: str) -> None:
    """Stop one node's servers and rsync daemon (a failed node; its disks stay)."""
    lab = load_lab(os.path.abspath(state))
    node = find_node(lab, name)
    left = stop_procs(Records(lab.state), names=node_daemon_names(node))
    if left:
        raise LabError("still running: " + ", ".join(left))
    say(f"{name} stopped")


def start_node(state: str, name: str, timeout: float = 60.0) -> None:
    """Start a stopped node's daemons again (those still running are restarted)."""
    lab = load_lab(os.path.abspath(state))
    node = find_node(lab, name)
    records = Records(lab.state)
    left = stop_procs(records, names=node_daemon_names(node))
    if left:
        raise LabError("still running: " + ", ".join(left))
    wait_listening(start_node_daemons(lab, node, records), timeout)
    say(f"{name} started")


def _wait_ring_reload(lab: cfg.Lab) -> None:
    """Start no pass sooner than the ring reload interval after a node's newest ring
    file: a pass that starts earlier could still be on the old ring for all ringmgr's
    replication gate can tell (it counts only passes started after push + reload)."""
    newest = 0.0
    for swift_dir in [n.swift_dir for n in lab.nodes] + [lab.proxy_dir]:
        for ring in Path(swift_dir).glob("*.ring.gz"):
            try:
                newest = max(newest, ring.stat().st_ctime)  # when it was put there
            except FileNotFoundError:
                continue
    wait = newest + float(lab.ring_reload) + 0.5 - time.time()  # (the push is recorded last)
    if 0 < wait <= float(lab.ring_reload) + 2:
        time.sleep(wait)


def replicate(state: str, timeout: float = 120.0) -> None:
    """One pass of every replicator on every node (``once`` mode), all at once.

    They run in their own sessions (swift's daemons signal their whole process group
    on SIGTERM) and are recorded like the servers, so that ``down`` also ends them if
    this command is killed half-way.
    """
    lab = load_lab(os.path.abspath(state))
    _once(lab, [(f"swift-{server}-replicator", server) for server in cfg.SERVERS],
          "replicators", timeout)
    say(f"replicated: {len(lab.nodes) * len(cfg.SERVERS)} replicators ran once")


def reconstruct(state: str, timeout: float = 120.0) -> None:
    """One pass of the object reconstructor on every node (``once`` mode), all at once,
    as ``replicate``: what moves and rebuilds erasure-coded fragments (the object
    replicator skips erasure-coded policies).  Refused on a lab without ``--ec``."""
    lab = load_lab(os.path.abspath(state))
    if not lab.ec:
        raise LabError("this lab has no erasure-coded policy (start it with --ec): "
                       "there is nothing to reconstruct")
    _once(lab, [("swift-object-reconstructor", "object")], "reconstructors", timeout)
    say(f"reconstructed: {len(lab.nodes)} reconstructors ran once")


def _once(lab: cfg.Lab, daemons: list[tuple[str, str]], what: str, timeout: float) -> None:
    """Each of ``daemons`` (console script, server conf) once on every node; wait."""
    _wait_ring_reload(lab)
    records = Records(lab.state)
    procs = []
    for node in lab.nodes:
        for script, server in daemons:
            name = f"{node.name}-{script.removeprefix('swift-')}"
            log = f"{lab.log_dir}/{name}.log"
            procs.append((name, log, spawn(records, name, swift_argv(
                node.swift_dir, script, node.conf(server), "once", "-v"), log)))
    failed = []
    deadline = time.monotonic() + timeout
    try:
        for name, log, p in procs:
            try:
                rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                rc = "timed out"
            if rc != 0:
                failed.append(f"{name} ({rc}, see {log})")
    finally:
        stop_procs(records, names={name for name, _, _ in procs}, timeout=5)
        for _, _, p in procs:
            p.poll()
    if failed:
        raise LabError(f"{what} failed: " + ", ".join(failed))
