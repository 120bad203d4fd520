"""Run commands on a node over SSH (Fabric's Connection around a paramiko client).

One ``SSHExecutor`` is one node and one connection: it connects on first use and
reuses the connection for every command and session until ``close()``.  Host keys
are checked against ``[ssh].known_hosts`` (default ``~/.ssh/known_hosts``): an
unknown key fails with ``HostKeyUnknown``, a changed key with ``HostKeyChanged``;
``accept_new_host_keys`` adds unknown keys to the file (like OpenSSH's
``StrictHostKeyChecking=accept-new``), never changed ones.  Authentication uses
``[ssh].identity_file`` if set, and the SSH agent.  Connecting retries a bounded
number of times (``[ssh].retries``) with exponential backoff, but only on transient
errors (refused, timed out, the banner not read because sshd was busy); an
authentication or host-key failure is final at once.

Commands are argv lists joined once with ``shlex.join`` and logged before they
run.  They run on a raw paramiko channel rather than through ``Connection.run``:
invoke's I/O loop polls and costs about 100 ms per call, which a push to many nodes
pays many times over.

A node is not trusted to end its output: every command has a deadline (``timeout``,
default ``DEFAULT_TIMEOUT``; a step that runs for hours passes its own), checked on
every read, and its output is capped (``MAX_OUTPUT`` in all, ``MAX_LINE`` per line
read with ``RemoteProcess.readline``).  A command that overruns is stopped (its
process group gets TERM, then KILL) and fails with one line naming the host; see
``channel.py``.

Only ringmgr.toml and the files it names are read: no ``/etc/fabric.*`` or
``~/.fabric.*`` (Fabric executes ``.py`` ones), no ``~/.ssh/config``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ringmgr.errors import StepFailed
from ringmgr.exec.base import STREAM, Result, log_command
from ringmgr.exec.channel import DEFAULT_TIMEOUT, MAX_LINE, MAX_OUTPUT, RemoteProcess
from ringmgr.exec.channel import CommandTimeout, OutputTooLarge  # noqa: F401 (re-exported)

log = logging.getLogger("ringmgr.exec")


class SSHError(StepFailed):
    """Could not reach or log in to a node."""


class HostKeyUnknown(SSHError):
    pass


class HostKeyChanged(SSHError):
    pass


NOWHERE = "/dev/null/"          # a config prefix under which no file can exist


def fabric_config():
    """A Fabric config that reads no file: not /etc/fabric.* nor ~/.fabric.* (a
    ``.py`` one would be executed as root), nor the SSH config files."""
    import fabric
    import paramiko

    return fabric.Config(lazy=True, system_prefix=NOWHERE, user_prefix=NOWHERE,
                         project_location=None, runtime_path=None,
                         ssh_config=paramiko.SSHConfig(),
                         overrides={"load_ssh_configs": False})


@dataclass
class KnownHosts:
    """The known_hosts file shared by all connections of one run.

    New keys (only with ``accept_new``) are appended under a lock, so parallel
    connections never lose each other's lines.
    """

    path: Path
    accept_new: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    added: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, ssh, accept_new: bool = False) -> "KnownHosts":
        path = ssh.known_hosts or Path(os.path.expanduser("~/.ssh/known_hosts"))
        return cls(Path(path), accept_new)

    def policy(self, node: str):
        import paramiko

        known = self

        class Policy(paramiko.MissingHostKeyPolicy):
            def missing_host_key(self, client, hostname, key):
                fp = fingerprint(key)
                if not known.accept_new:
                    raise HostKeyUnknown(
                        f"[{node}] host key of {hostname} is not in {known.path} "
                        f"({key.get_name()} {fp}): check the fingerprint on the node, then "
                        f"add it (ssh-keyscan) or re-run with --accept-new-host-keys")
                line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
                with known.lock:
                    known.path.parent.mkdir(parents=True, exist_ok=True)
                    with open(known.path, "a") as f:
                        f.write(line)
                    known.added.append(hostname)
                log.warning("[%s] added new host key of %s to %s (%s %s)", node, hostname,
                            known.path, key.get_name(), fp)

        return Policy()


def fingerprint(key) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _is_transient(exc: BaseException) -> bool:
    import paramiko

    if isinstance(exc, (SSHError, paramiko.AuthenticationException,
                        paramiko.BadHostKeyException)):
        return False
    if isinstance(exc, (paramiko.ssh_exception.NoValidConnectionsError, socket.timeout,
                        TimeoutError, ConnectionError, EOFError)):
        return True
    if isinstance(exc, paramiko.SSHException):
        msg = str(exc)
        return ("banner" in msg or "reset" in msg.lower() or "timed out" in msg
                or "No existing session" in msg)
    return isinstance(exc, OSError)


class SSHExecutor:
    """Runs argv lists on one node over one reused SSH connection (Executor protocol;
    made by ``exec.factory``).  Streams: ``start`` returns a ``RemoteProcess``."""

    capabilities = frozenset({STREAM})

    def __init__(self, node, ssh, *, known_hosts: KnownHosts | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 default_timeout: float = DEFAULT_TIMEOUT, max_output: int = MAX_OUTPUT,
                 max_line: int = MAX_LINE):
        self.node = node
        self.host = node.name
        self.address = node.host
        self.port = node.ssh_port or ssh.port
        self.ssh = ssh
        self.known_hosts = known_hosts or KnownHosts.from_config(ssh)
        self._sleep = sleep
        self._clock = clock
        self.default_timeout = default_timeout
        self.max_output = max_output
        self.max_line = max_line
        self._conn = None
        self.timings = {"connect": 0.0, "run": 0.0, "transfer": 0.0}
        _quiet_paramiko()

    # -- connection -------------------------------------------------------------
    def __enter__(self) -> "SSHExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self):
        """Open the connection (once); later calls reuse it."""
        if self._conn is not None and self._conn.is_connected:
            return self._conn
        start = self._clock()
        try:
            self._conn = self._connect_with_retry()
        finally:
            self.timings["connect"] += self._clock() - start
        return self._conn

    def _connect_with_retry(self):
        import paramiko

        attempts = 1 + max(0, self.ssh.retries)
        delay = 0.5
        for attempt in range(1, attempts + 1):
            conn = self._new_connection()
            try:
                log.debug("[%s] connecting to %s:%s (attempt %d/%d)", self.host, self.address,
                          self.port, attempt, attempts)
                conn.open()
                return conn
            except paramiko.BadHostKeyException as e:
                conn.close()
                raise HostKeyChanged(
                    f"[{self.host}] HOST KEY CHANGED for {self.address}:{self.port}: "
                    f"{self.known_hosts.path} has {e.expected_key.get_name()} "
                    f"{fingerprint(e.expected_key)}, the server offered "
                    f"{e.key.get_name()} {fingerprint(e.key)}; if the node was reinstalled, "
                    f"remove the old entry (ssh-keygen -R '[{self.address}]:{self.port}' "
                    f"-f {self.known_hosts.path}) and check the new key") from None
            except paramiko.AuthenticationException as e:
                conn.close()
                raise SSHError(f"[{self.host}] authentication as {self.ssh.user} on "
                               f"{self.address}:{self.port} failed ({e}); check "
                               f"[ssh].identity_file or the agent") from None
            except SSHError:
                conn.close()
                raise
            except Exception as e:  # noqa: BLE001 - classified below
                # paramiko's transport thread keeps the real cause (a banner timeout
                # shows up here as "No existing session")
                transport = conn.client.get_transport()
                e = getattr(transport, "saved_exception", None) or e
                conn.close()
                if not _is_transient(e) or attempt == attempts:
                    raise SSHError(f"[{self.host}] cannot connect to {self.address}:"
                                   f"{self.port} after {attempt} attempt(s): "
                                   f"{_describe(e, self.ssh.connect_timeout)}") from None
                log.info("[%s] connect failed (%s); retrying in %.1fs", self.host,
                         _describe(e, self.ssh.connect_timeout), delay)
                self._sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _new_connection(self):
        import fabric

        kwargs = {"timeout": self.ssh.connect_timeout,
                  "banner_timeout": self.ssh.connect_timeout,
                  "auth_timeout": self.ssh.connect_timeout,
                  "allow_agent": True}
        if self.ssh.identity_file:
            kwargs["key_filename"] = [str(self.ssh.identity_file)]
            kwargs["look_for_keys"] = False
        config = fabric_config()
        conn = fabric.Connection(self.address, user=self.ssh.user, port=self.port,
                                 config=config, connect_kwargs=kwargs)
        client = conn.client
        if self.known_hosts.path.exists():
            client.load_host_keys(str(self.known_hosts.path))
        client._host_keys_filename = None  # never let paramiko rewrite the file
        client.set_missing_host_key_policy(self.known_hosts.policy(self.host))
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- commands ---------------------------------------------------------------
    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None,
            timeout: float | None = None, mutates: bool = True) -> Result:
        """Run ``argv``; ``timeout`` seconds (default ``default_timeout``) at most."""
        argv = tuple(str(a) for a in argv)
        self.connect()
        log_command(self.host, argv, mutates)
        start = self._clock()
        try:
            proc = RemoteProcess.start(self, argv)
        except BaseException:
            self.timings["run"] += self._clock() - start
            raise
        try:
            if input:
                proc.write(input, timeout=timeout)
            return proc.finish(timeout, check=check)   # counts its own wait as "run"
        finally:
            proc.close()

    def start(self, argv: Sequence[str], *, input: str | None = None,
              mutates: bool = True) -> RemoteProcess:
        """Start a command and talk to it line by line (see ``channel.RemoteProcess``).

        Lets one remote process serve several exchanges with uploads in between,
        instead of paying a shell and interpreter start-up per step.
        """
        argv = tuple(str(a) for a in argv)
        self.connect()
        log_command(self.host, argv, mutates)
        proc = RemoteProcess.start(self, argv)
        if input:
            proc.write(input)
        return proc


def _quiet_paramiko() -> None:
    """paramiko logs a traceback at ERROR for every failed handshake; the error is
    reported once by ringmgr, so keep paramiko's own lines off the operator's stderr
    (a handler keeps logging's last-resort printer away)."""
    plog = logging.getLogger("paramiko")
    if not plog.handlers:
        plog.addHandler(logging.NullHandler())


def _describe(e: BaseException, timeout: float) -> str:
    text = str(e) or type(e).__name__
    if "Unable to connect" in text or "NoValidConnections" in type(e).__name__:
        return "connection refused"
    if "No existing session" in text or "banner" in text:
        return (f"the node accepted the connection but did not complete the SSH handshake "
                f"within {timeout:g}s (sshd hung or overloaded?)")
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g}s"
    return text.splitlines()[0]
