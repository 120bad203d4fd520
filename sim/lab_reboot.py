"""``sim/lab reboot sNN``: what a reboot does to a lab node, without rebooting anything.

Every lab node is this machine, so ringmgr's default ``systemctl reboot`` must never
run on one (``lab_ringmgr.reboot_command`` is what the lab's ringmgr.toml sets instead,
and ``lab_ringmgr.unsafe_reboot_commands`` refuses anything else).  This plays the
reboot from the outside in, as ringmgr sees it:

1. detach (unless run on a terminal): stdin/stdout/stderr go to the node's reboot log,
   so the SSH command that started it (under ``setsid --fork``) returns at once; the
   process records itself in procs.json, so ``sim/lab down`` also ends a reboot in
   progress;
2. after a second (the SSH command has returned by then) stop the node's servers, its
   rsync daemon and its own sshd (the lab gives every address its own sshd): the node
   is unreachable; with ``--xfs`` its disks are unmounted too;
3. wait ``down_for`` seconds;
4. mount the disks from the node's own fstab (what a boot does; a wrong fstab line
   shows up as a disk ringmgr reports unmounted), start the servers, wait until they
   listen, then start its sshd: SSH answers only once the servers do.

The boot id cannot change on a shared kernel: ringmgr judges "came back" by having seen
the node unreachable and then reachable again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sim import lab_configs as cfg
from sim.lab_daemons import node_daemon_names, start_node_daemons
from sim.lab_disks import mounts
from sim.lab_procs import LabError, Records, spawn, starttime, stop_procs, wait_listening
from sim.lab_state import find_node, load_lab, say

SETTLE = 1.0  # seconds for the SSH command that started the reboot to return


def reboot(state: str, name: str, *, down_for: float = cfg.REBOOT_DOWN_FOR,
           timeout: float = 60.0) -> None:
    lab = load_lab(os.path.abspath(state))
    node = find_node(lab, name)
    if not 0 <= down_for <= 3600:
        raise ValueError("--down-for must be between 0 and 3600 seconds")
    sshd = (lab.ssh or {}).get("sshd", {}).get(name)
    log = Path(lab.log_dir, f"{name}-reboot.log")
    if not sys.stdout.isatty():  # started by ringmgr over SSH, not by hand
        _detach(log)
    records = Records(lab.state)
    records.add_proc({"name": f"{name}-reboot", "pid": os.getpid(),
                      "starttime": starttime(os.getpid()), "argv": ["sim/lab", "reboot", name],
                      "log": str(log)})
    say(f"{name}: rebooting (down for {down_for:g} s)")
    time.sleep(SETTLE)
    names = node_daemon_names(node) | ({f"{name}-sshd"} if sshd else set())
    left = stop_procs(records, names=names)
    if left:
        raise LabError(f"{name}: still running after the stop: {', '.join(left)}")
    if lab.xfs:
        _unmount(node)
    say(f"{name}: down")
    time.sleep(down_for)
    if lab.xfs:
        _mount_from_fstab(node)
    wait_listening(start_node_daemons(lab, node, records), timeout)
    if sshd:
        spawn(records, f"{name}-sshd", sshd["argv"], sshd["log"])
        _wait_ssh(node.ip, lab.ssh["port"], timeout)
    say(f"{name}: up again" + ("" if sshd else " (no sshd serves it)"))


def _detach(log: Path) -> None:
    """Point stdin at /dev/null and stdout/stderr at ``log``: the SSH session that
    started this must not wait for it."""
    fd_in = os.open(os.devnull, os.O_RDONLY)
    fd_out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd_in, 0)
    os.dup2(fd_out, 1)
    os.dup2(fd_out, 2)
    os.close(fd_in)
    os.close(fd_out)


def _unmount(node: cfg.LabNode) -> None:
    prefix = node.mount_root.rstrip("/") + "/"
    for mnt in sorted((m for _, m in mounts() if m.startswith(prefix)), key=len, reverse=True):
        r = subprocess.run(["umount", mnt], capture_output=True, text=True)
        if r.returncode != 0:
            say(f"{node.name}: umount {mnt} failed ({r.stderr.strip()}); left mounted")


def _mount_from_fstab(node: cfg.LabNode) -> None:
    """``mount -a`` over the node's own fstab only (never /etc/fstab); a line that does
    not mount is logged and the disk stays out, as with ``nofail`` at boot."""
    r = subprocess.run(["mount", "-a", "--fstab", node.fstab], capture_output=True,
                       text=True)
    if r.returncode != 0:
        say(f"{node.name}: mount -a --fstab {node.fstab}: {r.stderr.strip()}")


def _wait_ssh(ip: str, port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise LabError(f"sshd on {ip}:{port} did not come back in {timeout:.0f} s")
