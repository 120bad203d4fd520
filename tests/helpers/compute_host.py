"""A compute host for the runbooks on a real sshd test host: a real "nova-compute".

The sshd test host (sim/hosts.py) is restarted inside a private mount namespace in
which ``/etc/init.d`` is a directory of the test's own, holding one init script,
``nova-compute``.  Over SSH, ``service nova-compute start|stop|status`` runs it
exactly as on a sysvinit compute node; ``start`` launches a small real process whose
command line is ``nova-compute ...`` (what ``ps`` shows) and which writes the AMQP
line nova-compute logs when it connects.  Nothing outside the namespace changes:
the machine's own ``/etc/init.d`` is untouched.  ``stop()`` kills the process (by
the pid its pidfile names) and the namespaced sshd, also when the test failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

INIT_SCRIPT = """#!/bin/bash
# nova-compute, as a test's init script (tests/helpers/compute_host.py)
PIDFILE={pidfile}
LOG={log}
running() {{ [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }}
case "$1" in
  start)
    running && exit 0
    rm -f "$PIDFILE"
    AMQP="$(date "+%Y-%m-%d %H:%M:%S") 4242 INFO oslo.messaging._drivers.impl_rabbit [-] Connected to AMQP server on 10.0.0.2:5672"
    setsid bash -c 'echo $$ > "$0"; echo "$2" >> "$1"; exec -a nova-compute sleep 3600' \
      "$PIDFILE" "$LOG" "$AMQP" </dev/null >/dev/null 2>&1 &
    for _ in $(seq 100); do running && exit 0; sleep 0.05; done
    echo "nova-compute did not start" >&2; exit 1 ;;
  stop)
    running || exit 0
    pid=$(cat "$PIDFILE"); kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || {{ rm -f "$PIDFILE"; exit 0; }}; sleep 0.05; done
    exit 1 ;;
  status)
    running && {{ echo "nova-compute is running"; exit 0; }}
    echo "nova-compute is not running"; exit 3 ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
"""


class ComputeHost:
    def __init__(self, hosts, workdir: Path):
        self.hosts = hosts
        self.host = hosts.hosts[0]
        self.address = self.host.address
        self.workdir = Path(workdir)
        self.initd = self.workdir / "init.d"
        self.pidfile = self.workdir / "nova-compute.pid"
        self.log = self.workdir / "nova-compute.log"
        self.proc: subprocess.Popen | None = None

    @property
    def script(self) -> Path:
        return self.initd / "nova-compute"

    def start(self) -> "ComputeHost":
        self.initd.mkdir(parents=True)
        self.script.write_text(INIT_SCRIPT.format(pidfile=self.pidfile, log=self.log))
        self.script.chmod(0o755)
        self.log.write_text("")
        daemon = self.hosts.daemons[0]
        own = self.hosts._procs[0]          # the plain sshd of this host: ours to replace
        own.terminate()
        own.wait(10)
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f'mount --bind "$0" /etc/init.d && exec /usr/sbin/sshd -D -e -f "$1"',
             str(self.initd), str(daemon["config"])],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 10
        while not _accepts(self.address, self.hosts.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the namespaced sshd did not start")
            time.sleep(0.05)
        return self

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _accepts(address: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False
