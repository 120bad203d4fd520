"""The rehearsal lab's processes: start, record, find listening, stop.

Every daemon is started in its own session (its process group is then ours alone to
signal) and recorded in the state dir's procs.json with its pid and its start time
(field 22 of /proc/<pid>/stat), so that a later ``sim/lab down`` in another process
stops exactly these processes and never a recycled pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class LabError(Exception):
    """A one-line reason ``lab`` failed; the CLI prints it and exits 2."""

# --- the state directory's records ----------------------------------------------------

class Records:
    """procs.json / disks.json in the state dir, rewritten atomically after each change."""

    def __init__(self, state: str):
        self.state = Path(state)

    def _load(self, name: str) -> list:
        try:
            return json.loads((self.state / name).read_text())
        except FileNotFoundError:
            return []

    def _save(self, name: str, items: list) -> None:
        tmp = self.state / f".{name}.tmp"
        tmp.write_text(json.dumps(items, indent=1))
        os.replace(tmp, self.state / name)

    def procs(self) -> list[dict]:
        return self._load("procs.json")

    def add_proc(self, rec: dict) -> None:
        self._save("procs.json", self.procs() + [rec])

    def set_procs(self, procs: list[dict]) -> None:
        self._save("procs.json", procs)

    def disks(self) -> list[dict]:
        return self._load("disks.json")

    def set_disks(self, disks: list[dict]) -> None:
        self._save("disks.json", disks)


def starttime(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); None if gone or a zombie.

    Recorded with the pid so that a recycled pid is never mistaken for ours.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def alive(rec: dict) -> bool:
    return starttime(rec["pid"]) == rec["starttime"]


def spawn(records: Records, name: str, argv: list[str], log: str, **kw) -> subprocess.Popen:
    """Start ``argv`` in its own session (so its group is ours to signal) and record it."""
    with open(log, "ab") as logf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True, **kw)
    start = None
    for _ in range(50):
        start = starttime(proc.pid)
        if start:
            break
        time.sleep(0.01)
    records.add_proc({"name": name, "pid": proc.pid, "starttime": start, "argv": argv,
                      "log": log})
    proc.lab_log = log
    return proc


def stop_procs(records: Records, names=None, timeout: float = 10.0) -> list[str]:
    """SIGTERM each recorded process group (those in ``names``, default all), then
    SIGKILL what is left; returns the names still alive.  Dead ones leave procs.json."""
    procs = [p for p in records.procs() if p.get("starttime") and alive(p)
             and (names is None or p["name"] in names)]
    for p in procs:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in procs):
        time.sleep(0.1)
    for p in procs:
        if alive(p):
            _signal_group(p, signal.SIGKILL)
    time.sleep(0.2)
    left = [p["name"] for p in procs if alive(p)]
    records.set_procs([p for p in records.procs() if p.get("starttime") and alive(p)])
    return left


def _signal_group(rec: dict, sig: int) -> None:
    pid = rec["pid"]
    try:
        if os.getpgid(pid) == pid:  # started with start_new_session: the group is ours
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _listen_inodes(ip: str, port: int) -> set[str]:
    return parse_listen_inodes(Path("/proc/net/tcp").read_text(), ip, port)


def parse_listen_inodes(text: str, ip: str, port: int) -> set[str]:
    """Inodes of the sockets listening on ip:port, from /proc/net/tcp's text.

    Sample (127.0.0.1:16200 listening, state 0A, inode 123456; then an established
    connection from it, state 01)::

          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 0100007F:3F48 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0 100 0 0 10 0
           1: 0100007F:3F48 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 123999 1 0 20 4 30 10 -1

    Addresses are the 32-bit value in host byte order (little-endian here) in hex.
    """
    want = f"{socket.inet_aton(ip)[::-1].hex().upper()}:{port:04X}"
    inodes = set()
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) > 9 and f[1] == want and f[3] == "0A":
            inodes.add(f[9])
    return inodes


def _owns_listener(pid: int, ip: str, port: int) -> bool:
    """Does process ``pid`` itself hold the socket listening on ip:port?

    A connect() alone is fooled by somebody else already listening there.
    """
    inodes = _listen_inodes(ip, port)
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def wait_listening(waits, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(waits)
    while pending:
        for item in list(pending):
            name, proc, ip, port = item
            if proc.poll() is not None:
                raise LabError(f"{name} exited with {proc.returncode} before listening on "
                               f"{ip}:{port}: {_last_line(proc)}")
            if _owns_listener(proc.pid, ip, port):
                pending.remove(item)
        if pending and time.monotonic() > deadline:
            raise LabError("not listening after %.0f s: %s" % (timeout, ", ".join(
                f"{n} ({ip}:{port})" for n, _, ip, port in pending)))
        time.sleep(0.1)


def _last_line(proc) -> str:
    """The last line of a process's log (the log itself goes with the state dir)."""
    try:
        lines = Path(proc.lab_log).read_text(errors="replace").strip().splitlines()
    except (AttributeError, OSError):
        return "no log"
    return lines[-1].strip() if lines else "empty log"
