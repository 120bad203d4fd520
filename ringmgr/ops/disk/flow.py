"""The whole replace-disk operation: journal, precheck, steps; and its report."""

from __future__ import annotations

from dataclasses import dataclass

from ringmgr.config import Config, Node
from ringmgr.errors import UsageError
from ringmgr.exec import plan as hostplan
from ringmgr.exec.base import Executor
from ringmgr.exec.plan import HostStep
from ringmgr.exec.runner import RunSummary
from ringmgr.ops.disk.context import (DiskContext, ReplaceOptions, check_name, choose_params,
                                      operation_key)
from ringmgr.ops.disk.precheck import precheck
from ringmgr.ops.disk.steps import replace_disk_steps
from ringmgr.ops.disk.weight import refill_report

def finished_result_stands(ctx: DiskContext) -> str | None:
    """Why a finished run's result still stands, or None (read-only).

    It stands while the mount point is mounted from the block device and that device
    carries the filesystem the run made (the journaled UUID): then running the command
    again has nothing to do, and must not unmount the new disk.
    """
    uuid = ctx.params.get("uuid")
    m = ctx.mounted_here()
    blk = ctx.lsblk() if m is not None else None
    if not uuid or blk is None or m.major_minor != blk.major_minor:
        return None
    if ctx.blkid().get("UUID") != uuid:
        return None
    return (f"{ctx.node.name}/{ctx.dev} was already replaced: {ctx.mount_point} is mounted "
            f"from {ctx.block} with the filesystem that run made (UUID {uuid}); nothing to "
            f"do. If this disk has failed too, start a new replacement with --again")


@dataclass
class ReplaceRun:
    key: str
    summary: RunSummary
    ctx: DiskContext
    plan: list[HostStep] | None  # the dry run's state-changing commands
    already: str | None = None  # set when an earlier run finished and its result stands

    @property
    def commands(self) -> list[tuple[str, ...]] | None:
        return [s.argv for s in self.plan] if self.plan is not None else None

    def to_json(self) -> dict:
        c = self.ctx
        return {
            "written": not c.dry_run and any(r.status == "done" for r in self.summary.results),
            "node": c.node.name, "device": c.dev, "block_device": c.block,
            "mount_point": c.mount_point, "params": dict(c.params),
            "precheck": c.findings, "warnings": c.warnings,
            **self.summary.to_json(),
            "already_done": self.already,
            "refill": (refill_report(c) if self.summary.finished and not self.already
                       and not c.dry_run else []),
            "commands": [list(a) for a in self.commands] if self.commands is not None else None,
            "host_steps": hostplan.to_json(self.plan or []),
            "push_due": c.push_due, "pushed": c.pushed,
            "next": [{"command": "ringmgr push", "not_before": None}] if c.push_due else [],
        }


def replace_disk(config: Config, node_name: str, dev: str, opts: ReplaceOptions, *,
                 ex: Executor | None = None, transport=None, dry_run: bool = False,
                 resume: bool = False, state_dir=None, confirm=None, echo=None,
                 ask_replaced=None) -> ReplaceRun:
    """Run (or dry-run) the replace-disk flow for NODE/DEV; returns what happened.

    ``ex`` is the node's executor as its transport made it (default: the factory's,
    ``exec.factory.executor_for``, with ``transport``); a dry run records through a
    DryRunExecutor around it.  ``confirm(step)`` is asked before the first
    destructive step.  Refusals before any step ran raise; failures inside steps are
    in the summary.
    """
    from ringmgr.exec.factory import close_all, executor_for

    check_name("node", node_name)
    check_name("device", dev)
    node = config.node(node_name)
    own = ex is None
    if own:
        ex = executor_for(config, node, dry_run=False, transport=transport)
    try:
        return _replace_disk(config, node, dev, opts, ex, dry_run=dry_run, resume=resume,
                             state_dir=state_dir, confirm=confirm, echo=echo,
                             ask_replaced=ask_replaced, transport=transport)
    finally:
        if own:
            close_all(ex)


def _replace_disk(config: Config, node: Node, dev: str, opts: ReplaceOptions,
                  ex: Executor, *, dry_run, resume, state_dir, confirm, echo,
                  ask_replaced, transport=None) -> ReplaceRun:
    from ringmgr.exec.factory import dry
    from ringmgr.exec.runner import Journal, RunSummary, cluster_state_dir, run_steps

    state_dir = state_dir or cluster_state_dir(config)
    node_name = node.name
    run_ex = dry(ex, dry_run)
    echo = echo or (lambda line: None)
    key = operation_key(node_name, dev)
    identity = {"node": node_name, "device": dev, "mount_root": node.mount_root}
    with Journal.open(key, state_dir, resume=resume, dry_run=dry_run,
                      keep_finished=True, identity=identity) as journal:
        if journal.finished:
            done = DiskContext(config, node, dev, run_ex, opts, journal.params,
                               dry_run=dry_run, echo=echo)
            stands = None if opts.again else finished_result_stands(done)
            if stands:
                echo(f"{key}: the last run finished ({journal.data.get('updated')})")
                return ReplaceRun(key, RunSummary(key, dry_run=dry_run), done,
                                  [] if dry_run else None, already=stands)
            if resume:
                raise UsageError(f"nothing to resume: the last run of {key} finished "
                                 f"({journal.data.get('updated')}); run the command without "
                                 f"--resume to start a new replacement")
            journal.archive()
        params = choose_params(journal, dev, opts.label)
        if params.get("weight_zeroed") and not opts.weight_zero:
            echo("the run in progress set the weight to 0: it is restored at the end")
            opts.weight_zero = True
        ctx = DiskContext(config, node, dev, run_ex, opts, params, dry_run=dry_run,
                          echo=echo, ask_replaced=ask_replaced, transport=transport)
        if journal.in_progress:
            done = [n for n, s in journal.data["steps"].items() if s["state"] in ("done", "skipped")]
            echo(f"resuming {key} (done: {', '.join(done) or 'nothing yet'})")
        echo(f"precheck {node_name}/{dev} ({ctx.block} -> {ctx.mount_point}):")
        precheck(ctx, journal)
        summary = run_steps(replace_disk_steps(ctx), ctx, journal=journal, dry_run=dry_run,
                            confirm=confirm, echo=echo)
    return ReplaceRun(key, summary, ctx, run_ex.plan if dry_run else None)
