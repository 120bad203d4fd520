"""Host plans as data: one ``HostStep`` per state-changing command a run would execute.

A dry run does not print commands as it meets them: the ``DryRunExecutor`` records
each as a ``HostStep`` (host, step, argv, destructive, reason), and one renderer turns
the list into text (``render_text``: every argv quoted once, with ``shlex``) or JSON
(``to_json``: the ``host_steps`` of every host-changing command's ``--dry-run
--json``).

Which step a command belongs to comes from the ``step(...)`` context, which the step
runner (``exec.runner.run_steps``) enters around each step's check and action, and
which an operation outside the runner enters itself (reboot, push)::

    with plan.step("reboot", destructive=True, reason="reboot s01"):
        ex.run(node.reboot_command)

``kind`` says how a fidelity test compares a plan with a real run: ``change``
commands must run exactly as planned; ``check`` and ``poll`` commands (a probe that
writes a file with a random name, a wait loop) may differ, and are declared so.
"""

from __future__ import annotations

import contextlib
import contextvars
import shlex
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

CHANGE = "change"
CHECK = "check"
POLL = "poll"


@dataclass(frozen=True)
class HostStep:
    """One planned command: where, in which step, what, and why."""

    host: str
    step: str
    argv: tuple[str, ...]
    destructive: bool = False
    reason: str = ""
    kind: str = CHANGE
    skipped: str | None = None      # the idempotence note when the step will not run

    def to_json(self) -> dict:
        return {"host": self.host, "step": self.step, "argv": list(self.argv),
                "destructive": self.destructive, "reason": self.reason}

    @classmethod
    def from_json(cls, d: dict) -> "HostStep":
        return cls(d["host"], d["step"], tuple(d["argv"]), bool(d["destructive"]),
                   d.get("reason", ""))


@dataclass(frozen=True)
class _Current:
    step: str
    destructive: bool
    reason: str
    kind: str


_current: contextvars.ContextVar[_Current | None] = contextvars.ContextVar(
    "ringmgr_plan_step", default=None)


@contextlib.contextmanager
def step(name: str, *, destructive: bool = False, reason: str = "",
         kind: str = CHANGE) -> Iterator[None]:
    """Commands recorded inside belong to step ``name``."""
    token = _current.set(_Current(name, destructive, reason, kind))
    try:
        yield
    finally:
        _current.reset(token)


def planned(host: str, argv: Sequence[str]) -> HostStep:
    """The HostStep for ``argv`` on ``host`` in the current step."""
    cur = _current.get()
    argv = tuple(str(a) for a in argv)
    if cur is None:
        return HostStep(host, argv[0] if argv else "", argv)
    return HostStep(host, cur.step, argv, cur.destructive, cur.reason, cur.kind)


# -- rendering ----------------------------------------------------------------------
_SHORT: dict[tuple[str, ...], str] = {}


def abbreviate(prefix: Sequence[str], name: str) -> None:
    """Show commands that start with ``prefix`` (a script's loader) as ``name``."""
    _SHORT[tuple(prefix)] = name


def command_text(argv: Sequence[str]) -> str:
    """A command as the operator reads it: quoted once; a shipped script by its name."""
    argv = tuple(argv)
    for prefix, name in _SHORT.items():
        if argv[:len(prefix)] == prefix:
            rest = argv[len(prefix):]
            return f"{name} {shlex.join(rest)}".rstrip()
    return shlex.join(argv)


def render_text(steps: Iterable[HostStep], *, hosts: bool = True) -> list[str]:
    """One line per planned command, in order (``[host] command``)."""
    out = []
    for s in steps:
        line = command_text(s.argv)
        if s.skipped:
            line += f"   (skipped: {s.skipped})"
        out.append(f"  [{s.host}] {line}" if hosts else f"  {line}")
    return out


def to_json(steps: Iterable[HostStep]) -> list[dict]:
    return [s.to_json() for s in steps if not s.skipped]


def changes(steps: Iterable[HostStep]) -> list[tuple[str, tuple[str, ...]]]:
    """(host, argv) of the steps a real run must execute exactly as planned."""
    return [(s.host, s.argv) for s in steps if s.kind == CHANGE and not s.skipped]
