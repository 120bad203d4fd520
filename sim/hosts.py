"""Real ``sshd`` test hosts on loopback addresses, for tests, benchmarks and the lab.

Each "host" is a loopback address (``127.0.0.x``) served by a real OpenSSH ``sshd``
running as root on this machine, with its own root directory (a plain local
directory) so that two hosts never share a ``swift_dir``.  One sshd serves at most
16 addresses (sshd's listen-socket limit); more hosts start more daemons.  The
client key, the host keys and a ``known_hosts`` that lists every host live in a
private work directory.

API::

    from sim.hosts import SSHHosts

    with SSHHosts(3) as hosts:                 # starts the daemons, stops them on exit
        h = hosts.hosts[0]                     # SSHHost(name="h01", address="127.0.0.2",
                                               #         port=..., root=..., swift_dir=...)
        hosts.identity_file, hosts.known_hosts, hosts.port
        hosts.ssh_argv(h, "true")              # ["ssh", "-i", ..., "root@127.0.0.2", "true"]
        hosts.scp_argv(["a.ring.gz"], h, "/dir")
        hosts.write_known_hosts(omit={"h02"}, wrong={"h03"})   # unknown / changed keys
        hosts.unused_address()                 # an address nobody serves: a "down" node
        hosts.write_config(path, builder_dir)  # a ringmgr.toml with [ssh] and [nodes.*]

``SSHHosts(count, workdir=None, names=None, owner="root:root", first=2, base="127.0.0.",
per_daemon=16)``: ``per_daemon=1`` gives every host its own sshd, so that one host can
go away (``daemon(name)`` tells its config and pid) while the others keep answering.
``workdir`` defaults to a new temp directory that ``stop()`` removes (a given one is
kept).  ``host.swift_dir`` is ``<root>/etc/swift`` (created, empty).  ``stop()``
terminates only the sshd processes this object started, by pid, and is safe to call
twice.  The daemons listen on a free TCP port chosen at start, the same for every
address, so several SSHHosts (other engineers' tests, the lab) can coexist.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
MAX_PER_SSHD = 16


@dataclass(frozen=True)
class SSHHost:
    name: str
    address: str
    port: int
    root: Path
    swift_dir: Path


class SSHHosts:
    def __init__(self, count: int = 3, *, workdir: str | os.PathLike | None = None,
                 names: list[str] | None = None, owner: str = "root:root",
                 first: int = 2, base: str = "127.0.0.", per_daemon: int = MAX_PER_SSHD):
        if names is not None and len(names) != count:
            raise ValueError("names must have count entries")
        if not 1 <= per_daemon <= MAX_PER_SSHD:
            raise ValueError(f"per_daemon must be between 1 and {MAX_PER_SSHD}")
        self.per_daemon = per_daemon
        if first + count > 255:
            raise ValueError("too many hosts for one /24 of loopback addresses")
        self.count = count
        self.names = names or [f"h{i + 1:02d}" for i in range(count)]
        self.owner = owner
        self.first = first
        self.base = base
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else None
        self.port = 0
        self.hosts: list[SSHHost] = []
        self.pids: list[int] = []
        self._procs: list[subprocess.Popen] = []
        self._host_keys: list[Path] = []
        self.daemons: list[dict] = []   # {"names", "config", "pidfile", "argv", "pid"}

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "SSHHosts":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "SSHHosts":
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="ringmgr-sshd-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._keys()
            for attempt in range(5):
                self.port = _free_port()
                self._make_hosts()
                if self._start_daemons():
                    break
                self._kill()
            else:
                raise RuntimeError(f"could not start sshd; see {self.workdir}/sshd-*.log")
            self.write_known_hosts()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._kill()
        if self._own_workdir and self.workdir is not None and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs = []
        self.pids = []

    # -- setup -----------------------------------------------------------------
    def _keys(self) -> None:
        d = self.workdir
        self.identity_file = d / "id_ed25519"
        _keygen(self.identity_file)
        shutil.copy(f"{self.identity_file}.pub", d / "authorized_keys")
        ngroups = (self.count + MAX_PER_SSHD - 1) // MAX_PER_SSHD
        self._host_keys = []
        for g in range(ngroups):
            key = d / f"ssh_host_ed25519_key.{g}"
            _keygen(key)
            self._host_keys.append(key)
        self._stranger_key = d / "stranger_host_key"
        _keygen(self._stranger_key)
        self.known_hosts = d / "known_hosts"

    def _make_hosts(self) -> None:
        self.hosts = []
        for i, name in enumerate(self.names):
            root = self.workdir / "hosts" / name
            swift_dir = root / "etc" / "swift"
            swift_dir.mkdir(parents=True, exist_ok=True)
            self.hosts.append(SSHHost(name, f"{self.base}{self.first + i}", self.port,
                                      root, swift_dir))

    def _start_daemons(self) -> bool:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.daemons = []
        n = self.per_daemon
        for g in range((len(self.hosts) + n - 1) // n):
            group = self.hosts[g * n:(g + 1) * n]
            key = self._host_keys[(g * n) // MAX_PER_SSHD]
            cfg = self.workdir / f"sshd_config.{g}"
            listen = "".join(f"ListenAddress {h.address}:{self.port}\n" for h in group)
            cfg.write_text(
                f"{listen}"
                f"HostKey {key}\n"
                f"PidFile {self.workdir}/sshd.{g}.pid\n"
                f"AuthorizedKeysFile {self.workdir}/authorized_keys\n"
                "PermitRootLogin prohibit-password\n"
                "PasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\n"
                "UsePAM no\n"
                "StrictModes no\n"
                "UseDNS no\n"
                "PrintMotd no\n"
                "MaxStartups 256\n"
                "MaxSessions 64\n"
                "LogLevel ERROR\n"
                f"Subsystem sftp {SFTP_SERVER}\n")
            logf = open(self.workdir / f"sshd-{g}.log", "ab")
            argv = [SSHD, "-D", "-e", "-f", str(cfg)]
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=logf, stderr=logf, start_new_session=True)
            logf.close()
            self._procs.append(proc)
            self.pids.append(proc.pid)
            self.daemons.append({"names": [h.name for h in group], "config": cfg,
                                 "pidfile": self.workdir / f"sshd.{g}.pid", "argv": argv,
                                 "log": self.workdir / f"sshd-{g}.log", "pid": proc.pid})
        deadline = time.monotonic() + 10
        pending = list(self.hosts)
        while pending:
            if any(p.poll() is not None for p in self._procs):
                return False
            if time.monotonic() > deadline:
                return False
            pending = [h for h in pending if not _accepts(h.address, self.port)]
            if pending:
                time.sleep(0.02)
        return True

    # -- helpers for tests -----------------------------------------------------
    def host(self, name: str) -> SSHHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def daemon(self, name: str) -> dict:
        """The sshd serving host ``name``: its config, pid file, argv, log and pid."""
        for d in self.daemons:
            if name in d["names"]:
                return d
        raise KeyError(name)

    def host_key_line(self, h: SSHHost, key: Path | None = None) -> str:
        if key is None:
            key = self._host_keys[self.hosts.index(h) // MAX_PER_SSHD]
        kind, blob = Path(f"{key}.pub").read_text().split()[:2]
        return f"[{h.address}]:{h.port} {kind} {blob}\n"

    def write_known_hosts(self, omit=(), wrong=()) -> Path:
        """Rewrite known_hosts: ``omit`` names are left out, ``wrong`` get a foreign key."""
        lines = []
        for h in self.hosts:
            if h.name in omit:
                continue
            lines.append(self.host_key_line(h, self._stranger_key if h.name in wrong else None))
        self.known_hosts.write_text("".join(lines))
        return self.known_hosts

    def unused_address(self) -> str:
        """A loopback address in the same range that no daemon serves (a down node)."""
        last = self.first + self.count
        return f"{self.base}{last if last < 255 else 1}"

    def ssh_options(self, h: SSHHost | None = None) -> list[str]:
        return ["-i", str(self.identity_file), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "GlobalKnownHostsFile=/dev/null"]

    def ssh_argv(self, h: SSHHost, *command: str) -> list[str]:
        return ["ssh", *self.ssh_options(h), "-p", str(h.port), f"root@{h.address}",
                shlex.join(command) if len(command) > 1 else (command[0] if command else "")]

    def scp_argv(self, files, h: SSHHost, remote_dir) -> list[str]:
        return ["scp", "-q", *self.ssh_options(h), "-P", str(h.port), *map(str, files),
                f"root@{h.address}:{remote_dir}/"]

    def config_toml(self, builder_dir, *, proxies: int = 0, parallel: int = 32,
                    extra_nodes: dict[str, str] | None = None, connect_timeout: float = 5.0,
                    retries: int = 1) -> str:
        """A ringmgr.toml: every host a node (ip = its address), the last ``proxies``
        hosts proxies; ``extra_nodes`` maps more node names to addresses (down nodes)."""
        out = [
            "[cluster]", f'builder_dir = "{builder_dir}"', "",
            "[ssh]", 'user = "root"', f"port = {self.port}",
            f'identity_file = "{self.identity_file}"', f'known_hosts = "{self.known_hosts}"',
            f"parallel = {parallel}", f"connect_timeout = {connect_timeout}",
            f"retries = {retries}", "",
            "[defaults]", f'owner = "{self.owner}"', "",
        ]
        nnodes = len(self.hosts) - proxies
        for i, h in enumerate(self.hosts):
            section = "nodes" if i < nnodes else "proxies"
            out += [f"[{section}.{h.name}]", f'host = "{h.address}"', f"ssh_port = {h.port}",
                    f'swift_dir = "{h.swift_dir}"']
            if section == "nodes":
                out += [f'ip = "10.9.0.{i + 1}"']
            out.append("")
        for j, (name, addr) in enumerate((extra_nodes or {}).items()):
            out += [f"[nodes.{name}]", f'host = "{addr}"', f"ssh_port = {self.port}",
                    f'swift_dir = "{self.workdir}/hosts/{name}/etc/swift"',
                    f'ip = "10.9.1.{j + 1}"', ""]
        return "\n".join(out)

    def write_config(self, path, builder_dir, **kw) -> Path:
        path = Path(path)
        path.write_text(self.config_toml(builder_dir, **kw))
        return path


def _keygen(path: Path) -> None:
    for p in (path, Path(f"{path}.pub")):
        if p.exists():
            p.unlink()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ringmgr-test",
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)


def _free_port() -> int:
    for _ in range(50):
        port = random.randint(20000, 60000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found")


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False
