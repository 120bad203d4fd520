"""The executor interface: one way to run commands, whether local, over SSH or dry.

Commands are argv lists; they are quoted once, at the edge (the SSH executor joins
them with ``shlex.join``).  Every command is logged before it runs.  ``mutates``
tells a dry run which commands it must only record: read-only commands (facts)
still run, so a dry run shows the plan for the host's real state.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from typing import Protocol, Sequence

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


class Executor(Protocol):
    """Runs argv lists on one host."""

    host: str

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None,
            timeout: float | None = None, mutates: bool = True) -> Result: ...


def log_command(host: str, argv: Sequence[str], mutates: bool, dry: bool = False) -> None:
    tag = "dry-run" if dry else ("run" if mutates else "query")
    log.info("[%s] %s: %s", host, tag, shlex.join(argv))


@dataclass
class DryRunExecutor:
    """Records the commands that would change state; runs the read-only ones for real.

    ``inner`` is the real executor for the same host; without one, read-only commands
    return an empty success too.  ``recorded`` is exactly the list of state-changing
    commands a real run would execute, in order.
    """

    inner: Executor | None = None
    host: str = "dry-run"
    recorded: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self):
        if self.inner is not None:
            self.host = self.inner.host

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True) -> Result:
        argv = tuple(str(a) for a in argv)
        if mutates or self.inner is None:
            if mutates:
                log_command(self.host, argv, mutates, dry=True)
                self.recorded.append(argv)
            return Result(self.host, argv, 0)
        return self.inner.run(argv, check=check, input=input, timeout=timeout, mutates=False)
