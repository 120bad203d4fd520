"""A small plan runner: ordered steps, a journal on the admin host, resume.

Why: host procedures (replace a disk, a compute runbook) are a list of steps where a
crash, a lost SSH link or an operator's Ctrl-C can stop the run anywhere.  Running the
same command again (or with ``--resume``) must continue where it stopped, with the
same parameters chosen up front (a new filesystem's UUID), and never redo a step that
is already done.

The API (stable; only compatible additions):

``Step(name, title, action, check=None, verify=None, destructive=False, kind="change")``
    ``name`` is stable (it keys the journal); ``title`` is what the operator reads.
    The commands a step's check and action run are planned under its name, title and
    ``destructive`` flag (``exec.plan.step``): a dry run's ``host_steps``; ``kind``
    "check" or "poll" declares commands a real run may run differently.
    ``check(ctx) -> str | None``: precondition / idempotency.  Return a reason to
    skip ("already unmounted"), return None to run the action, or raise ``Refused``
    (the run stops, nothing of this step ran).  ``action(ctx)`` does the work (through
    an executor).  ``verify(ctx)`` raises ``StepFailed`` if the result is not right; it
    is not called in a dry run.  ``destructive`` steps are confirmed first.
    Any callable may raise ``StopRun("message")``: the run ends cleanly at this step
    (exit 0 for the caller), the step stays pending, and the next run starts there.

``Journal``
    The run's saved progress, in ``exec/journal.py`` (re-exported here).

``run_steps(steps, ctx, *, journal=None, dry_run=False, confirm=None, echo=None)``
    ``ctx`` is passed as is to every check/action/verify.  Steps the journal records
    as done are not run again.  ``confirm(step)`` is called once, before the first
    destructive step whose action will run (raise ``Refused`` to decline).
    ``echo(line)`` gets one progress line per step.  Errors from steps
    (``RingmgrError``) do not propagate: they are recorded and the run stops.
    Returns a ``RunSummary``: ``.results`` (``StepResult(name, title, status,
    reason, destructive)``, status one of done / skipped / failed / stopped /
    pending, and in a dry run ``planned`` instead of done), ``.ok``, ``.finished``, ``.stopped`` (the StopRun message),
    ``.error``, ``.table()``, ``.to_json()``, ``.raise_error()``.
"""


from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

from ringmgr.errors import RingmgrError
from ringmgr.exec import plan
from ringmgr.exec.journal import (Journal, cluster_state_dir, default_state_dir,  # noqa: F401
                                  write_json_atomic)

log = logging.getLogger("ringmgr.runner")

DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
STOPPED = "stopped"
PENDING = "pending"
STARTED = "started"  # journal only: the action began but did not finish
PLANNED = "planned"  # dry run: the action ran against a dry-run executor


class StopRun(Exception):
    """Raised by a step to end the run cleanly here; the step stays pending."""


C = TypeVar("C")     # the context a run's steps share (DiskContext, RunbookContext)


@dataclass(frozen=True)
class Step(Generic[C]):
    name: str
    title: str
    action: Callable[[C], None]
    check: Callable[[C], str | None] | None = None
    verify: Callable[[C], None] | None = None
    destructive: bool = False
    kind: str = "change"     # "check" or "poll": its commands may differ from the plan


# -- results ------------------------------------------------------------------
@dataclass
class StepResult:
    name: str
    title: str
    status: str
    reason: str = ""
    destructive: bool = False

    def to_json(self) -> dict:
        return {"name": self.name, "title": self.title, "status": self.status,
                "reason": self.reason, "destructive": self.destructive}


@dataclass
class RunSummary:
    key: str | None
    results: list[StepResult] = field(default_factory=list)
    dry_run: bool = False
    stopped: str | None = None
    error: RingmgrError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def finished(self) -> bool:
        return self.ok and self.stopped is None and all(
            r.status in (DONE, SKIPPED, PLANNED) for r in self.results)

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def table(self) -> str:
        wide = max([len(r.title) for r in self.results] + [4])
        lines = [f"{'step':<{wide}}  status   reason", f"{'-' * wide}  -------  ------"]
        for r in self.results:
            reason = r.reason if len(r.reason) <= 72 else r.reason[:71] + "…"
            lines.append(f"{r.title:<{wide}}  {r.status:<7}  {reason}".rstrip())
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"operation": self.key, "dry_run": self.dry_run, "ok": self.ok,
                "finished": self.finished, "stopped": self.stopped,
                "error": str(self.error) if self.error else None,
                "steps": [r.to_json() for r in self.results]}


# -- running ------------------------------------------------------------------
def run_steps(steps: Sequence[Step[C]], ctx: C, *, journal: Journal | None = None,
              dry_run: bool = False, confirm: Callable[[Step[C]], None] | None = None,
              echo: Callable[[str], None] | None = None) -> RunSummary:
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate step names in {names}")
    journal = journal or Journal.memory()
    summary = RunSummary(journal.key, dry_run=dry_run)
    confirmed = False
    say = echo or (lambda line: None)
    total = len(steps)

    for i, step in enumerate(steps, 1):
        head = f"[{i}/{total}] {step.title}"
        if summary.error is not None or summary.stopped is not None:
            summary.results.append(StepResult(step.name, step.title, PENDING,
                                              destructive=step.destructive))
            continue
        state = journal.step_state(step.name)
        if state in (DONE, SKIPPED):
            why = "in an earlier run"
            summary.results.append(StepResult(step.name, step.title, state, why,
                                              step.destructive))
            say(f"{head}: {state} {why}")
            continue
        result = StepResult(step.name, step.title, PENDING, destructive=step.destructive)
        summary.results.append(result)
        try:
            with plan.step(step.name, destructive=step.destructive, reason=step.title,
                           kind=step.kind):
                reason = step.check(ctx) if step.check else None
                if reason:
                    result.status, result.reason = SKIPPED, reason
                    journal.mark(step.name, SKIPPED, reason)
                    say(f"{head}: skipped: {reason}")
                    continue
                if step.destructive and confirm is not None and not confirmed:
                    confirm(step)
                    confirmed = True
                if not dry_run:
                    say(f"{head} ...")
                journal.mark(step.name, STARTED)
                step.action(ctx)
                if step.verify and not dry_run:
                    step.verify(ctx)
            result.status = PLANNED if dry_run else DONE
            journal.mark(step.name, DONE)
            say(f"{head}: {result.status}")
        except StopRun as stop:
            result.status, result.reason = STOPPED, str(stop)
            summary.stopped = str(stop)
            if journal.step_state(step.name) == STARTED:
                journal.mark(step.name, PENDING, str(stop))
            say(f"{head}: stopped: {stop}")
        except RingmgrError as e:
            result.status, result.reason = FAILED, str(e)
            summary.error = e
            if journal.step_state(step.name) == STARTED:
                journal.mark(step.name, FAILED, str(e))
            say(f"{head}: failed: {e}")
    if summary.finished and not dry_run:
        journal.finish()
    return summary
