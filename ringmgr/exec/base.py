"""The executor interface: one way to run commands, whether local, over SSH or dry.

Commands are argv lists; they are quoted once, at the edge (the SSH executor joins
them with ``shlex.join``).  Every command is logged before it runs.  ``mutates``
tells a dry run which commands it must only record: read-only commands (facts)
still run, so a dry run shows the plan for the host's real state.

An executor declares what it can do beyond ``run`` in ``capabilities`` (in the
manner of pyinfra's connector capabilities): ``STREAM`` means ``start(argv)``
returns a ``Session`` to talk to one process line by line (push keeps one node
script up for a whole exchange).  A caller that needs a capability says so to the
factory (``exec.factory.executor_for(..., needs={STREAM})``), which picks a
transport that has it or refuses in one line.  Executors are made only by that
factory; ``close()`` releases the connection.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from ringmgr.errors import StepFailed

log = logging.getLogger("ringmgr.exec")


@dataclass(frozen=True)
class Result:
    host: str
    argv: tuple[str, ...]
    rc: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0


class CommandFailed(StepFailed):
    def __init__(self, result: Result):
        self.result = result
        err = (result.stderr or result.stdout).strip().splitlines()
        tail = err[-1] if err else "no output"
        super().__init__(
            f"[{result.host}] command failed (exit {result.rc}): "
            f"{shlex.join(result.argv)}: {tail}")


STREAM = "stream"    # start() a process and talk to it (write, readline, finish)


class Session(Protocol):
    """One process started with ``Executor.start``, its stdin and stdout open."""

    def write(self, data: str | bytes, timeout: float | None = None) -> None: ...

    def readline(self, timeout: float | None = None) -> str: ...

    def finish(self, timeout: float | None = None, check: bool = True) -> Result: ...

    def close(self) -> None: ...


@runtime_checkable
class Executor(Protocol):
    """Runs argv lists on one host.

    ``capabilities``: what it offers beyond ``run`` (``STREAM``: ``start``).
    ``timings``: seconds spent per phase (connect, run, transfer, and what callers
    add), reported by push per node.
    """

    host: str
    capabilities: frozenset[str]
    timings: dict[str, float]

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None,
            timeout: float | None = None, mutates: bool = True) -> Result: ...

    def start(self, argv: Sequence[str], *, input: str | None = None,
              mutates: bool = True) -> Session: ...

    def close(self) -> None: ...


class NotCapable(StepFailed):
    """The host's transport cannot do what the operation needs."""


def no_stream(ex: Executor, argv: Sequence[str]) -> Session:
    raise NotCapable(f"[{ex.host}] the {type(ex).__name__} transport cannot start a "
                     f"streaming session ({shlex.join(argv)})")


def log_command(host: str, argv: Sequence[str], mutates: bool, dry: bool = False) -> None:
    tag = "dry-run" if dry else ("run" if mutates else "query")
    log.info("[%s] %s: %s", host, tag, shlex.join(argv))


@dataclass
class DryRunExecutor:
    """Records the commands that would change state; runs the read-only ones for real.

    ``inner`` is the real executor for the same host; without one, read-only commands
    return an empty success too.  ``plan`` is exactly the list of state-changing
    commands a real run would execute, in order, as ``HostStep`` values (the step
    each belongs to comes from ``exec.plan.step``, which the step runner sets);
    ``recorded`` is their argv alone.
    """

    inner: Executor | None = None
    host: str = "dry-run"
    plan: list = field(default_factory=list)

    def __post_init__(self):
        if self.inner is not None:
            self.host = self.inner.host

    @property
    def capabilities(self) -> frozenset[str]:
        return self.inner.capabilities if self.inner is not None else frozenset({STREAM})

    @property
    def timings(self) -> dict[str, float]:
        return self.inner.timings if self.inner is not None else {}

    @property
    def recorded(self) -> list[tuple[str, ...]]:
        return [s.argv for s in self.plan]

    def _record(self, argv: tuple[str, ...]) -> None:
        from ringmgr.exec.plan import planned

        log_command(self.host, argv, True, dry=True)
        self.plan.append(planned(self.host, argv))

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True) -> Result:
        argv = tuple(str(a) for a in argv)
        if mutates or self.inner is None:
            if mutates:
                self._record(argv)
            return Result(self.host, argv, 0)
        return self.inner.run(argv, check=check, input=input, timeout=timeout, mutates=False)

    def start(self, argv, *, input=None, mutates=True) -> Session:
        argv = tuple(str(a) for a in argv)
        if mutates or self.inner is None:
            if mutates:
                self._record(argv)
            return _EmptySession(Result(self.host, argv, 0))
        return self.inner.start(argv, input=input, mutates=False)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()


@dataclass
class _EmptySession:
    """What a dry run's recorded session answers: nothing, successfully."""

    result: Result

    def write(self, data, timeout=None) -> None:
        pass

    def readline(self, timeout=None) -> str:
        return ""

    def finish(self, timeout=None, check=True) -> Result:
        return self.result

    def close(self) -> None:
        pass
