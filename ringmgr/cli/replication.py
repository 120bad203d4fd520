"""The replication gate's options and its enforcement for gradual commands (drain-node,
add-node --max-move, rejoin-node --max-move): ``ringmgr.live.repl_gate`` decides."""

from __future__ import annotations

import functools
import time

import click

GATE_KEYS = ("wait", "timeout", "no_replication_check")


def gate_options(f):
    """--wait, --timeout, --no-replication-check."""

    @click.option("--wait", is_flag=True,
                  help="if replication has not caught up with the last push yet, wait for "
                       "it (polling recon, with progress) instead of stopping")
    @click.option("--timeout", type=click.FloatRange(min=1), default=3600.0,
                  show_default=True, metavar="S", help="with --wait: give up after S seconds")
    @click.option("--no-replication-check", "no_replication_check", is_flag=True,
                  help="do not ask recon whether a replication pass finished after the last "
                       "push (a loud warning; recorded in the history)")
    @functools.wraps(f)
    def wrapper(*a, **kw):
        return f(*a, **kw)

    return wrapper


def pop_gate(kw: dict) -> dict:
    return {k: kw.pop(k) for k in GATE_KEYS if k in kw}


def enforce(app, config, rings, opts: dict, *, dry_run: bool, sleep=time.sleep,
            clock=time.time) -> dict | None:
    """Check the gate for ``rings``; return its JSON (None when skipped).

    Closed: NotYet (exit 1, reason replication_pending) naming nodes and times, or
    with --wait poll until it opens or --timeout passes.  Cannot tell (recon
    unreachable, a garbled answer, a skewed clock): Refused (exit 2), unless
    --no-replication-check.  A dry run reports the gate and refuses nothing."""
    from ringmgr.errors import NotYet, Refused
    from ringmgr.live.repl_gate import replication_gate

    if opts.get("no_replication_check"):
        app.warn("--no-replication-check: the next ring step runs without checking that "
                 "replication finished after the last push; data may move twice or "
                 "partitions may be short of replicas meanwhile (recorded in the history)")
        app.emit({"replication_gate": {"open": None, "skipped": True}})
        return {"open": None, "skipped": True}
    deadline = clock() + float(opts.get("timeout") or 3600.0)
    polls = 0
    while True:
        res = replication_gate(config, rings)
        for n in res.notes:
            app.note(f"note: {n}")
        app.emit({"replication_gate": {**res.to_json(), "skipped": False}})
        if res.open:
            if polls or res.required:
                app.note(f"replication gate open: every server of "
                         f"{', '.join(sorted(res.required)) or 'the rings'} finished a pass "
                         f"started after the last push")
            return {**res.to_json(), "skipped": False}
        lines = res.errors + res.pending
        if dry_run:
            for line in lines:
                app.warn(line, prefix="note: ")
            return {**res.to_json(), "skipped": False}
        if res.errors:
            raise Refused("cannot tell whether replication finished after the last push:\n  "
                          + "\n  ".join(res.errors)
                          + "\nnothing was written; fix recon on these nodes (or pass "
                            "--no-replication-check to step without the check)")
        if not opts.get("wait") or clock() >= deadline:
            why = "--timeout passed; " if opts.get("wait") else ""
            raise NotYet("replication has not caught up with the last push:\n  "
                         + "\n  ".join(res.pending)
                         + f"\n{why}nothing was written; run this again after a finished "
                           f"pass (or with --wait)", reason="replication_wait")
        polls += 1
        app.note(f"waiting for replication ({len(res.pending)} pending; "
                 f"{int(deadline - clock())} s left): {res.pending[0]}")
        interval = min(30.0, max(1.0, config.cluster.ring_reload))
        sleep(min(interval, max(0.0, deadline - clock())))
