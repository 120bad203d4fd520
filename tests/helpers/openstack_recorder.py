"""The one allowed fake: an executor that answers the OpenStack, virsh and qemu-nbd
adapters with recorded outputs (tests/data/openstack/), because none of them can run
on this machine.  It records every argv it is given, so tests can assert the exact
command lines.  Nothing else in the tests goes through it.

A command no rule matches fails (exit 127, "no recorded answer") and is kept in
``unmatched``: a test that forgot a rule, or code that runs a command nobody
expected, fails instead of reading an empty success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.exec.base import CommandFailed, Result

DATA = Path(__file__).resolve().parent.parent / "data" / "openstack"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


@dataclass
class Reply:
    stdout: str = ""
    rc: int = 0
    stderr: str = ""


@dataclass
class RecordingExecutor:
    """``rules``: list of (words, replies).  A rule matches when every word occurs in
    the argv; its replies are used in order, the last one repeating.  An unmatched
    command fails (and is listed in ``unmatched``)."""

    host: str = "admin"
    rules: list = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    mutating: list[tuple[str, ...]] = field(default_factory=list)
    unmatched: list[tuple[str, ...]] = field(default_factory=list)
    capabilities: frozenset = frozenset()
    timings: dict = field(default_factory=dict)

    def start(self, argv, *, input=None, mutates=True):
        raise AssertionError(f"the recorder streams nothing: {argv}")

    def close(self) -> None:
        pass

    def on(self, words, *replies) -> "RecordingExecutor":
        words = tuple(words.split()) if isinstance(words, str) else tuple(words)
        self.rules.append([words, [r if isinstance(r, Reply) else Reply(r) for r in replies]])
        return self

    def otherwise(self, *replies) -> "RecordingExecutor":
        """Answer every command no other rule matches (a test about command lines only,
        where each command's answer does not matter)."""
        self.rules.insert(0, [(), [r if isinstance(r, Reply) else Reply(r) for r in replies]
                              or [Reply()]])
        return self

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True) -> Result:
        argv = tuple(str(a) for a in argv)
        self.calls.append(argv)
        if mutates:
            self.mutating.append(argv)
        reply = None
        for words, replies in reversed(self.rules):
            if all(w in argv for w in words):
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                break
        if reply is None:
            self.unmatched.append(argv)
            reply = Reply(rc=127, stderr=f"recorder: no recorded answer for {argv}")
        result = Result(self.host, argv, reply.rc, reply.stdout, reply.stderr)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def ran(self, *words) -> list[tuple[str, ...]]:
        return [c for c in self.calls if all(w in c for w in words)]
