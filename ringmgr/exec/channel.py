"""One command on one SSH channel, with limits: the node is not trusted to end it.

Every wait has a deadline (a command's ``timeout``, else the executor's
``default_timeout``; a step that runs for hours passes its own), checked between
any two reads, so a node streaming without end cannot hold ringmgr (and the
builder lock it may hold).  Output is capped: ``max_output`` bytes of stdout and
stderr in all, ``max_line`` bytes for a line read with ``readline``.  An overrun
fails with one line naming the host (``CommandTimeout``, ``OutputTooLarge``).

The command is stopped too, not only abandoned: the node's shell first reports its
process id on stderr (sshd makes every session's shell a process-group leader) and
then ``exec``s the command; to stop it, ringmgr signals that process group over a
second channel (TERM, then KILL), since sshd ignores signal requests in root
sessions.  That first stderr line is removed from what callers see.
"""

from __future__ import annotations

import select
import shlex
import socket

from ringmgr.errors import StepFailed
from ringmgr.exec.base import CommandFailed, Result, log_command

DEFAULT_TIMEOUT = 3600.0        # seconds, for a command that gives none
MAX_OUTPUT = 64 << 20           # bytes of stdout + stderr one command may send
MAX_LINE = 8 << 20              # bytes one line may have (RemoteProcess.readline)
PGID_TAG = b"ringmgr-pgid="
CHUNK = 65536


class CommandTimeout(StepFailed):
    pass


class OutputTooLarge(StepFailed):
    """A node sent more output (or a longer line) than ringmgr reads."""


def wrap(command: str) -> str:
    """What the node's shell runs: its pid (= process group) on stderr, then the
    command in the shell's place."""
    return f'echo {PGID_TAG.decode()}$$ >&2; exec {command}'


def kill_group(ex, pgid: int | None) -> None:
    """TERM, then KILL, the process group of a command that overran (best effort:
    the connection may be gone)."""
    if not pgid or pgid <= 1:
        return
    argv = ("sh", "-c", f"kill -TERM -{pgid} 2>/dev/null || exit 0; sleep 1; "
                        f"kill -KILL -{pgid} 2>/dev/null; exit 0")
    try:
        conn = ex._conn
        if conn is None or not conn.is_connected:
            return
        log_command(ex.host, argv, True)
        chan = conn.transport.open_session(timeout=ex.ssh.connect_timeout)
        try:
            chan.exec_command(shlex.join(argv))
            chan.status_event.wait(10)
        finally:
            chan.close()
    except Exception:  # noqa: BLE001 - stopping is a courtesy; the error is reported
        pass


class RemoteProcess:
    """A command running on the node with its stdin and stdout open.

    ``write`` sends text, ``readline(timeout)`` waits for one line of stdout,
    ``finish(timeout)`` closes stdin, collects the rest and returns the Result.
    Time spent waiting counts as ``run`` in the executor's timings.
    """

    def __init__(self, ex, chan, argv: tuple[str, ...]):
        self.ex = ex
        self.chan = chan
        self.argv = argv
        self.pgid: int | None = None
        self._out = bytearray()
        self._err = bytearray()
        self._head = True           # the wrapper's pid line not yet taken off stderr
        self._total = 0

    @classmethod
    def start(cls, ex, argv: tuple[str, ...]) -> "RemoteProcess":
        chan = ex.connect().transport.open_session(timeout=ex.ssh.connect_timeout)
        chan.exec_command(wrap(shlex.join(argv)))
        return cls(ex, chan, argv)

    # -- input ---------------------------------------------------------------
    def write(self, data: str | bytes, timeout: float | None = None) -> None:
        """Send ``data``; ``timeout``: the most seconds the node may go without
        taking any of it (default: the executor's ``default_timeout``)."""
        self.chan.settimeout(self._seconds(timeout))
        try:
            self.chan.sendall(data.encode() if isinstance(data, str) else data)
        except socket.timeout:
            self._stop()
            raise CommandTimeout(f"[{self.ex.host}] stopped reading its input for "
                                 f"{self._seconds(timeout):g}s: {self._cmd()}") from None
        finally:
            if not self.chan.closed:
                self.chan.settimeout(None)

    # -- output --------------------------------------------------------------
    def readline(self, timeout: float | None = None) -> str:
        """One line of stdout ('' when the command ended without one)."""
        start = self.ex._clock()
        deadline, seen = start + self._seconds(timeout), 0
        try:
            while self._out.find(b"\n", seen) < 0:
                seen = len(self._out)
                if seen > self.ex.max_line:
                    self._stop()
                    raise OutputTooLarge(f"[{self.ex.host}] sent a line longer than "
                                         f"{self.ex.max_line} bytes; stopped: {self._cmd()}")
                if not self._pump(deadline, timeout):
                    break
        finally:
            self.ex.timings["run"] += self.ex._clock() - start
        end = self._out.find(b"\n")
        end = len(self._out) if end < 0 else end + 1
        line = bytes(self._out[:end])
        del self._out[:end]
        return line.decode("utf-8", "replace")

    def finish(self, timeout: float | None = None, check: bool = True) -> Result:
        start = self.ex._clock()
        deadline = start + self._seconds(timeout)
        try:
            self.chan.shutdown_write()
            while self._pump(deadline, timeout):
                pass
            rc = self.chan.recv_exit_status()
        finally:
            self.chan.close()
            self.ex.timings["run"] += self.ex._clock() - start
        result = Result(self.ex.host, self.argv, rc, self._out.decode("utf-8", "replace"),
                        self._err.decode("utf-8", "replace"))
        if check and rc != 0:
            raise CommandFailed(result)
        return result

    def close(self) -> None:
        self.chan.close()

    # -- internals -----------------------------------------------------------
    def _seconds(self, timeout: float | None) -> float:
        return self.ex.default_timeout if timeout is None else timeout

    def _cmd(self) -> str:
        return shlex.join(self.argv)

    def _stop(self) -> None:
        self.chan.close()
        kill_group(self.ex, self.pgid)

    def _pump(self, deadline: float, timeout: float | None) -> bool:
        """Take one chunk of stdout and one of stderr; False once the command has
        ended and everything was read."""
        chan = self.chan
        done = chan.exit_status_ready() or chan.eof_received
        got = False
        if chan.recv_ready():
            data = chan.recv(CHUNK)
            self._out += data
            self._total += len(data)
            got = bool(data)
        if chan.recv_stderr_ready():
            data = chan.recv_stderr(CHUNK)
            self._err += data
            self._total += len(data)
            got = got or bool(data)
            if self._head:
                self._take_pgid()
        if self._total > self.ex.max_output:
            self._stop()
            raise OutputTooLarge(f"[{self.ex.host}] sent more than {self.ex.max_output} "
                                 f"bytes of output; stopped: {self._cmd()}")
        if not got and done:
            return False
        wait = deadline - self.ex._clock()
        if wait <= 0:
            self._stop()
            raise CommandTimeout(f"[{self.ex.host}] timed out after "
                                 f"{self._seconds(timeout):g}s: {self._cmd()}")
        if not got:
            select.select([chan], [], [], min(wait, 1.0))
        return True

    def _take_pgid(self) -> None:
        err = self._err
        if not (err.startswith(PGID_TAG) or PGID_TAG.startswith(err)):
            self._head = False              # not the wrapper's line: leave stderr alone
            return
        end = err.find(b"\n")
        if end < 0:
            return
        try:
            self.pgid = int(err[len(PGID_TAG):end])
        except ValueError:
            pass
        del err[:end + 1]
        self._head = False
