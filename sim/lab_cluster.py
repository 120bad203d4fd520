"""The rehearsal lab: a real local Swift cluster on loopback addresses.

``sim/lab up`` writes a layout (``lab_configs``), builds the rings with swift's
RingBuilder, starts swift's own servers (one account, container and object server per
node on the node's 127.0.<net>.<i> address, a proxy with tempauth, Debian memcached and
one Debian rsync daemon per node), and prints the four ``export`` lines.  Every process
it starts, every loop device and every mount is recorded in the state directory the
moment it exists, so ``sim/lab down`` (also after a failed ``up``) stops exactly those
and nothing else.

Progress goes to stderr; stdout carries only the export lines.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

try:
    from . import lab_configs as cfg
    from .lab_procs import (LabError, Records, alive, spawn, starttime, stop_procs,
                            wait_listening)
except ImportError:  # run as a script from sim/
    import lab_configs as cfg
    from lab_procs import (LabError, Records, alive, spawn, starttime, stop_procs,
                           wait_listening)

HERE = Path(__file__).resolve().parent
SWIFTRUN = HERE / "lab_swiftrun.py"
CLAIMS = Path("/run/ringmgr-lab")
DEFAULT_STATE = "/tmp/ringmgr-lab"
FIRST_NET = 5


def say(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


# --- the network claim ----------------------------------------------------------------

def _claim_stale(link: Path, state: str) -> bool:
    """A claim may be taken over only when its lab's state directory is gone (or is ours).

    A lab whose state is still there may still hold loop disks or daemons: its own
    ``down`` releases the claim.
    """
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return False
    return target == state or not os.path.isdir(target)


def _addresses_free(net: int) -> bool:
    for host, port in [(f"127.0.{net}.{cfg.PROXY_HOST_OCTET}", cfg.PROXY_PORT),
                       (f"127.0.{net}.2", cfg.PORTS["object"])]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def claim_net(state: str, wanted: int | None) -> int:
    """Reserve a 127.0.<net>.0/24 for this lab (a symlink in /run/ringmgr-lab).

    Two labs (the lead's e2e tests and an operator's) may run at once; each gets its own
    /24.  A claim whose state directory is gone is stale and is taken over; a net whose
    proxy or first node address is already bound by anyone is skipped.
    """
    CLAIMS.mkdir(parents=True, exist_ok=True)
    candidates = [wanted] if wanted else range(FIRST_NET, 250)
    for net in candidates:
        link = CLAIMS / f"127.0.{net}"
        if link.is_symlink() and _claim_stale(link, state):
            link.unlink(missing_ok=True)
        try:
            os.symlink(state, link)
        except FileExistsError:
            continue
        if _addresses_free(net):
            return net
        link.unlink()
    taken = f" (127.0.{wanted} is taken)" if wanted else ""
    raise LabError(f"no free 127.0.N.0/24 for the lab{taken}")


def release_net(state: str, net: int) -> None:
    link = CLAIMS / f"127.0.{net}"
    try:
        if os.readlink(link) == state:
            link.unlink()
    except (FileNotFoundError, OSError):
        pass


# --- disks ----------------------------------------------------------------------------

def _run(argv: list[str], **kw) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def make_disks(lab: cfg.Lab, node: cfg.LabNode, records: Records) -> None:
    """Plain directories, or (``--xfs``) a sparse 300 MB XFS loop disk per device."""
    for dev in node.devices:
        Path(node.mount_root, dev).mkdir(parents=True, exist_ok=True)
    if not lab.xfs:
        return
    img_dir = Path(lab.state, "disks")
    img_dir.mkdir(exist_ok=True)
    for dev in node.devices:
        img = img_dir / f"{node.name}-{dev}.img"
        with open(img, "wb") as f:
            f.truncate(300 * 1024 * 1024)
        _run(["mkfs.xfs", "-q", "-f", "-L", cfg.xfs_label(lab, node, dev), str(img)])
        loop = _run(["losetup", "--find", "--show", str(img)]).strip()
        mnt = f"{node.mount_root}/{dev}"
        records.set_disks(records.disks() + [{"image": str(img), "loop": loop, "mount": mnt}])
        lab.block_devices.setdefault(node.name, {})[dev] = loop
        _run(["mount", "-t", "xfs", "-o", "noatime", loop, mnt])


def remove_disks(state: str) -> list[str]:
    """Unmount everything mounted under the state dir, deepest first, then detach every
    loop device whose backing file is in it: what ``up`` made, plus whatever a rehearsed
    runbook (a disk replacement, say) added there.  Nothing outside the state dir."""
    problems = []
    prefix = state.rstrip("/") + "/"
    for _ in range(10):
        mounts = sorted((m for m in _mounts() if m.startswith(prefix)), key=len, reverse=True)
        if not mounts:
            break
        for mnt in mounts:
            r = subprocess.run(["umount", mnt], capture_output=True, text=True)
            if r.returncode != 0:
                r = subprocess.run(["umount", "-l", mnt], capture_output=True, text=True)
                if r.returncode != 0:
                    problems.append(f"umount {mnt}: {r.stderr.strip()}")
        if problems:
            return problems
    for loop, back in _loops():
        if back.startswith(prefix):
            r = subprocess.run(["losetup", "-d", loop], capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"losetup -d {loop}: {r.stderr.strip()}")
    return problems


def _loops() -> list[tuple[str, str]]:
    out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True,
                         text=True).stdout
    return parse_losetup(out)


def parse_losetup(text: str) -> list[tuple[str, str]]:
    """(loop device, backing file) pairs from ``losetup -l -n -O NAME,BACK-FILE``.

    Sample (a deleted backing file is marked, a path may contain spaces)::

        /dev/loop0 /tmp/ringmgr-lab/disks/s01-sdb.img
        /dev/loop3 /tmp/old disk.img (deleted)
    """
    pairs = []
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            pairs.append((parts[0], parts[1].strip().removesuffix(" (deleted)")))
    return pairs


def _mounts() -> list[str]:
    return parse_mounts(Path("/proc/self/mounts").read_text())


def parse_mounts(text: str) -> list[str]:
    """Mount points from /proc/self/mounts (see ``parse_mount_table``)."""
    return [target for _, target in parse_mount_table(text)]


def parse_mount_table(text: str) -> list[tuple[str, str]]:
    """(source, mount point) pairs from /proc/self/mounts, octal escapes decoded.

    Sample (a space in a path is written ``\\040``)::

        /dev/loop0 /tmp/ringmgr-lab/nodes/s01/srv/node/sdb xfs rw,noatime 0 0
        /dev/loop1 /tmp/my\\040lab/nodes/s01/srv/node/sdb xfs rw,noatime 0 0
    """
    def unescape(field: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)

    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 1:
            out.append((unescape(parts[0]), unescape(parts[1])))
    return out


# --- up -------------------------------------------------------------------------------

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


def swift_argv(swift_dir: str, script: str, *args: str) -> list[str]:
    return [sys.executable, str(SWIFTRUN), swift_dir, script, *args]


def swift_env(lab: cfg.Lab) -> dict[str, str]:
    return {**os.environ, "RINGMGR_LAB_RING_RELOAD": str(lab.ring_reload)}


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
              f"{logs}/{name}.log", env=swift_env(lab))
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


def start_sshd(lab: cfg.Lab, records: Records) -> dict | None:
    """sshd test hosts (sim/hosts.py) on the proxy's and every node's address.

    The daemons outlive this process; their pids go into procs.json like every other
    daemon's, so ``down`` stops them.  Returns the [ssh] settings for ringmgr.toml.
    """
    try:
        try:
            from .hosts import SSHHosts  # type: ignore
        except ImportError:
            from hosts import SSHHosts  # type: ignore
    except ImportError:
        say("sim/hosts.py is not there: no sshd, ringmgr push/verify cannot reach the lab")
        return None
    names = ["proxy"] + [n.name for n in lab.nodes] + [
        f"s{i:02d}" for i in range(len(lab.nodes) + 1, len(lab.nodes) + 1 + lab.spare)]
    # one sshd per address: a rehearsed reboot takes one node's SSH away, not 16 nodes'
    hosts = SSHHosts(len(names), workdir=f"{lab.state}/ssh", names=names,
                     first=cfg.PROXY_HOST_OCTET, base=f"127.0.{lab.net}.", per_daemon=1)
    try:
        hosts.start()
    finally:
        for d in hosts.daemons:
            records.add_proc({"name": f"{d['names'][0]}-sshd", "pid": d["pid"],
                              "starttime": starttime(d["pid"]),
                              "argv": [str(a) for a in d["argv"]], "log": str(d["log"])})
    return {"port": hosts.port, "identity_file": str(hosts.identity_file),
            "known_hosts": str(hosts.known_hosts), "hosts": [h.address for h in hosts.hosts],
            "sshd": {d["names"][0]: {"argv": [str(a) for a in d["argv"]], "log": str(d["log"])}
                     for d in hosts.daemons}}


def write_config(lab: cfg.Lab) -> None:
    """Write the lab's ringmgr.toml (atomically); ``ringmgr_toml`` refuses a config
    whose reboot_command could reboot this machine, and then nothing is written."""
    text = cfg.ringmgr_toml(lab)
    tmp = Path(lab.state, ".ringmgr.toml.tmp")
    tmp.write_text(text)
    os.replace(tmp, lab.config_path)


def up(state: str, *, nodes: int, disks: int, zones: int | None, part_power: int,
       xfs: bool, net: int | None, ssh: bool, spare: int = 2, min_part_hours: int = 0,
       ring_reload: float = 1.0,
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
    try:
        records.set_procs([])
        save_lab(lab)
        write_files(lab)
        for node in lab.nodes:
            make_disks(lab, node, records)
        save_lab(lab)
        cfg.build_rings(lab)
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
    """The written ringmgr.toml must load with ringmgr's own loader (when importable)."""
    try:
        from ringmgr.config import load_config
    except ImportError:
        return
    load_config(lab.config_path)


# --- replicate / down -----------------------------------------------------------------

def save_lab(lab: cfg.Lab) -> None:
    tmp = Path(lab.state, ".lab.json.tmp")
    tmp.write_text(lab.to_json())
    os.replace(tmp, Path(lab.state, "lab.json"))


def load_lab(state: str) -> cfg.Lab:
    try:
        return cfg.Lab.from_json(Path(state, "lab.json").read_text())
    except FileNotFoundError:
        raise LabError(f"no lab in {state} (sim/lab up --state {state})")


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
    _wait_ring_reload(lab)
    records = Records(lab.state)
    procs = []
    for node in lab.nodes:
        for server in cfg.SERVERS:
            name = f"{node.name}-{server}-replicator"
            log = f"{lab.log_dir}/{name}.log"
            procs.append((name, log, spawn(records, name, swift_argv(
                node.swift_dir, f"swift-{server}-replicator", node.conf(server), "once", "-v"),
                log)))
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
        raise LabError("replicators failed: " + ", ".join(failed))
    say(f"replicated: {len(procs)} replicators ran once")


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


def swap_disk(state: str, name: str, dev: str) -> str:
    """The physical swap of a failed disk: the old loop disk goes, a blank one appears
    under the same device name (what a hot-swapped /dev/sdX does).  Refused while the
    old disk is mounted anywhere: unmounting is the runbook's job."""
    lab = load_lab(os.path.abspath(state))
    node = _node(lab, name)
    if not lab.xfs:
        raise LabError("swap-disk needs loop disks: start the lab with `sim/lab up --xfs`")
    if dev not in node.devices:
        raise LabError(f"{name} has no device {dev!r} (it has {', '.join(node.devices)})")
    loop = lab.block_devices[name][dev]
    mnt = f"{node.mount_root}/{dev}"
    table = parse_mount_table(Path("/proc/self/mounts").read_text())
    for source, target in table:
        if source == loop or target == mnt:
            raise LabError(f"{name} {dev} is mounted ({source} on {target}): unmount it "
                           f"first, e.g. `ringmgr replace-disk {name} {dev}`")
    prefix = lab.state + "/"
    backing = dict(_loops()).get(loop)
    if backing is not None and not backing.startswith(prefix):
        raise LabError(f"{loop} is backed by {backing}, not by this lab: not touching it")
    if backing is not None:
        _run(["losetup", "-d", loop])
        Path(backing).unlink(missing_ok=True)
    n = 1
    while (img := Path(lab.state, "disks", f"{name}-{dev}.{n}.img")).exists():
        n += 1
    with open(img, "wb") as f:
        f.truncate(300 * 1024 * 1024)
    records = Records(lab.state)
    try:
        _run(["losetup", loop, str(img)])
    except LabError:  # somebody took that loop device meanwhile: use another name
        loop = _run(["losetup", "--find", "--show", str(img)]).strip()
        lab.block_devices[name][dev] = loop
        save_lab(lab)
        write_config(lab)
        say(f"the old name was taken: the new disk is {loop} (ringmgr.toml updated)")
    records.set_disks(records.disks() + [{"image": str(img), "loop": loop, "mount": mnt}])
    say(f"{name} {dev}: a new blank 300 MB disk is {loop}; next: ringmgr replace-disk "
        f"{name} {dev} --replaced")
    return loop


def _node(lab: cfg.Lab, name: str) -> cfg.LabNode:
    for node in lab.nodes:
        if node.name == name:
            return node
    raise LabError(f"no node {name!r} in the lab (nodes: "
                   f"{', '.join(n.name for n in lab.nodes)})")


def stop_node(state: str, name: str) -> None:
    """Stop one node's servers and rsync daemon (a failed node; its disks stay)."""
    lab = load_lab(os.path.abspath(state))
    node = _node(lab, name)
    left = stop_procs(Records(lab.state), names=node_daemon_names(node))
    if left:
        raise LabError("still running: " + ", ".join(left))
    say(f"{name} stopped")


def start_node(state: str, name: str, timeout: float = 60.0) -> None:
    """Start a stopped node's daemons again (those still running are restarted)."""
    lab = load_lab(os.path.abspath(state))
    node = _node(lab, name)
    records = Records(lab.state)
    left = stop_procs(records, names=node_daemon_names(node))
    if left:
        raise LabError("still running: " + ", ".join(left))
    wait_listening(start_node_daemons(lab, node, records), timeout)
    say(f"{name} started")


def status(state: str) -> dict:
    """What runs and what is mounted, per node: printed as a table, or JSON with --json."""
    lab = load_lab(os.path.abspath(state))
    running = {p["name"] for p in Records(lab.state).procs()
               if p.get("starttime") and alive(p)}
    mounts = set(_mounts())
    nodes = []
    for node in lab.nodes:
        daemons = sorted(node_daemon_names(node))
        nodes.append({
            "name": node.name, "ip": node.ip, "zone": node.zone,
            "running": [d for d in daemons if d in running],
            "stopped": [d for d in daemons if d not in running],
            "devices": {dev: (f"{node.mount_root}/{dev}" in mounts) if lab.xfs else None
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
        for link in CLAIMS.glob("127.0.*") if CLAIMS.exists() else []:
            if link.is_symlink() and os.readlink(link) == state:
                link.unlink()
    shutil.rmtree(state)
    say(f"down: {state} removed")


# --- CLI ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sim/lab", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start a local Swift cluster")
    p_up.add_argument("--nodes", type=int, default=4)
    p_up.add_argument("--disks", type=int, default=2, help="devices per node")
    p_up.add_argument("--zones", type=int, default=None, help="default: one per node")
    p_up.add_argument("--part-power", type=int, default=8)
    p_up.add_argument("--min-part-hours", type=int, default=0,
                      help="of every ring (default 0: a rehearsal need not wait an hour)")
    p_up.add_argument("--ring-reload", type=float, default=1.0,
                      help="seconds between the servers' ring.gz checks (swift's own: 15)")
    p_up.add_argument("--xfs", action="store_true", help="real XFS loop disks (300 MB sparse)")
    p_up.add_argument("--ec", action="store_true",
                      help="a third storage policy, ec42: erasure coded 4+2 (ring object-2)")
    p_up.add_argument("--net", type=int, default=None,
                      help="use 127.0.NET.0/24 (default: the first free from 127.0.5)")
    p_up.add_argument("--no-ssh", action="store_true", help="start no sshd test hosts")
    p_up.add_argument("--spare", type=int, default=2,
                      help="sshd also serves this many addresses for later add-node (default 2)")
    p_up.add_argument("--timeout", type=float, default=60.0)
    for name, help_ in [("replicate", "run every replicator once on every node"),
                        ("down", "stop and remove everything the lab started")]:
        sub.add_parser(name, help=help_)
    p_add = sub.add_parser("add-node", help="start one more storage node (in no ring yet)")
    p_add.add_argument("--disks", type=int, default=None, help="default: as the last node")
    p_add.add_argument("--zone", type=int, default=None, help="default: a zone of its own")
    p_status = sub.add_parser("status", help="what runs and what is mounted, per node")
    p_status.add_argument("--json", action="store_true")
    p_swap = sub.add_parser("swap-disk", help="replace an unmounted loop disk by a blank one")
    p_swap.add_argument("node")
    p_swap.add_argument("dev")
    for name, help_ in [("stop-node", "stop a node's servers (a failed node)"),
                        ("start-node", "start a stopped node's servers again")]:
        sub.add_parser(name, help=help_).add_argument("node")
    p_reboot = sub.add_parser("reboot", help="what a reboot does to a node: servers and "
                                             "SSH down for a while, then up again")
    p_reboot.add_argument("node")
    p_reboot.add_argument("--down-for", type=float, default=cfg.REBOOT_DOWN_FOR,
                          help=f"seconds the node stays unreachable (default "
                               f"{cfg.REBOOT_DOWN_FOR:g})")
    for p in sub.choices.values():
        p.add_argument("--state", default=os.environ.get("RINGMGR_LAB_STATE", DEFAULT_STATE),
                       help=f"state directory (default $RINGMGR_LAB_STATE or {DEFAULT_STATE})")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            lab = up(args.state, nodes=args.nodes, disks=args.disks, zones=args.zones,
                     part_power=args.part_power, min_part_hours=args.min_part_hours,
                     xfs=args.xfs, net=args.net,
                     ssh=not args.no_ssh, spare=args.spare, ring_reload=args.ring_reload,
                     timeout=args.timeout, ec=args.ec)
            sys.stdout.write(cfg.exports(lab))
        elif args.cmd == "replicate":
            replicate(args.state)
        elif args.cmd == "add-node":
            add_node(args.state, disks=args.disks, zone=args.zone)
        elif args.cmd == "status":
            st = status(args.state)
            if args.json:
                print(json.dumps(st, indent=2))
            else:
                print_status(st)
        elif args.cmd == "swap-disk":
            swap_disk(args.state, args.node, args.dev)
        elif args.cmd == "stop-node":
            stop_node(args.state, args.node)
        elif args.cmd == "start-node":
            start_node(args.state, args.node)
        elif args.cmd == "reboot":
            try:
                from .lab_reboot import reboot
            except ImportError:  # run as a script from sim/
                from lab_reboot import reboot

            reboot(args.state, args.node, down_for=args.down_for)
        else:
            down(args.state)
    except (LabError, ValueError) as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # e.g. ringmgr rejecting the written config: one line, exit 2
        print(f"lab: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
