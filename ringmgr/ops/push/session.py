"""The exchange with one node: start its script (``push_node.py``, shipped as source
on stdin behind a one-line bootstrap), read its inspect line, send the rings and the
apply request on the same process, read the outcome."""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path

from ringmgr.exec import plan as hostplan
from ringmgr.exec.base import Executor
from ringmgr.ops.push.plan import HostPlan, parse_inspect, plan_host, verify_host
from ringmgr.ops.push.report import HostResult

log = logging.getLogger("ringmgr.push")

TMP_MARK = ".ringmgr-"
COMMAND_TIMEOUT = 120.0
# The system python3 when there is one (the script needs only the standard library;
# a pyenv or virtualenv shim on PATH can cost more than the whole push), else PATH's.
NODE_PYTHON = 'p=/usr/bin/python3; [ -x "$p" ] || p=python3; exec "$p" -I -S -c "$0" "$@"'
BOOTSTRAP = "import sys,json;exec(json.loads(sys.stdin.buffer.readline()))"

# The node side is ``push_node.py``, shipped as source: it travels as the first line of
# stdin (JSON-encoded) behind a one-line bootstrap, and runs as ``__main__`` there.
REMOTE_SCRIPT = (Path(__file__).resolve().parent.parent / "push_node.py").read_text()
hostplan.abbreviate(("sh", "-c", NODE_PYTHON, BOOTSTRAP), "python3 <ringmgr push_node.py>")


def session_argv(node, cleanup: bool) -> list[str]:
    """The command that starts the node script for one node (``push_node.py``)."""
    arg = json.dumps({"dir": node.swift_dir, "cleanup": cleanup, "owner": node.owner})
    return ["sh", "-c", NODE_PYTHON, BOOTSTRAP, "session", arg]


def _session(ex: Executor, node, cleanup: bool):
    """Start the node script; return it (waiting for an apply request) and its facts."""
    proc = ex.start(session_argv(node, cleanup),
                    input=json.dumps(REMOTE_SCRIPT) + "\n", mutates=cleanup)
    t0 = time.monotonic()
    line = proc.readline(COMMAND_TIMEOUT)
    ex.timings["inspect"] = ex.timings.get("inspect", 0.0) + time.monotonic() - t0
    try:
        return proc, parse_inspect(line)
    except (ValueError, KeyError, IndexError):
        r = proc.finish(COMMAND_TIMEOUT, check=False)
        raise RuntimeError(f"the node script failed (exit {r.rc}): "
                           f"{(line + r.stdout + r.stderr).strip()[-300:]!r}") from None


def push_one(ex: Executor, node, local, res: HostResult, force: bool, dry_run: bool) -> None:
    proc, state = _session(ex, node, cleanup=not dry_run)
    try:
        _push_planned(ex, proc, node, local, state, res, force, dry_run)
    finally:
        proc.close()


def _push_planned(ex, proc, node, local, state, res, force, dry_run) -> None:
    res.removed_tmp = list(state.removed_tmp)
    plan = plan_host(local, state, force, node.swift_dir)
    res.unchanged = plan.unchanged
    res.refused = plan.refused
    res.planned = plan.uploads
    if plan.error:
        res.error = plan.error
        if dry_run:       # a real run still starts the session (it removes temp files)
            res.plan = [_planned_session(node, plan)]
        return
    if dry_run:
        res.plan = [_planned_session(node, plan)]
    if dry_run or not plan.uploads:
        proc.finish(COMMAND_TIMEOUT)
        res.ok = not plan.refused
        return
    token = secrets.token_hex(4)
    files = [{"name": n, "tmp": f".{n}{TMP_MARK}{token}.tmp", "md5": local[n].md5,
              "size": local[n].size, "version": local[n].version, "force": force}
             for n in plan.uploads]
    log.info("[%s] run: send %s (%d bytes) to %s and apply", node.name,
             ", ".join(plan.uploads), sum(f["size"] for f in files), node.swift_dir)
    proc.write(json.dumps({"dir": node.swift_dir, "owner": node.owner, "files": files,
                           "stream": True}) + "\n")
    t0 = time.monotonic()
    try:
        for n in plan.uploads:
            proc.write(local[n].data, timeout=COMMAND_TIMEOUT)  # seconds without progress
    except Exception as e:  # noqa: BLE001
        raise RuntimeError(f"sending the rings failed: {_one_line(e)}; the node's rings "
                           f"were not changed") from None
    line = proc.readline(COMMAND_TIMEOUT)
    ex.timings["send+apply"] = time.monotonic() - t0
    try:
        answer = json.loads(line)
        outcome = answer["files"]
        # as the node measured them: from the request to the last byte, then the apply
        ex.timings["node_receive"] = answer["seconds"]["receive"]
        ex.timings["node_apply"] = answer["seconds"]["apply"]
    except (ValueError, KeyError):
        r = proc.finish(COMMAND_TIMEOUT, check=False)
        raise RuntimeError(f"the node script failed while applying (exit {r.rc}): "
                           f"{(line + r.stdout + r.stderr).strip()[-300:]!r}") from None
    proc.finish(COMMAND_TIMEOUT)
    errors = []
    for f in files:
        o = outcome.get(f["name"], {"ok": False, "error": "no answer"})
        if o["ok"]:
            res.updated.append(f["name"])
        elif o.get("error"):
            errors.append(f"{f['name']}: {o['error']}")
    if errors:
        res.error = "; ".join(errors) + "; no ring on the node was changed"
    res.ok = not errors and not plan.refused


def _planned_session(node, plan: HostPlan) -> hostplan.HostStep:
    """What a real push runs on the node: one session, which first removes the temp
    files of a killed push, then applies the uploads (if any and none refused)."""
    ups = ", ".join(f"{a.name} ({a.reason})" for a in plan.actions if a.action == "upload")
    why = "remove temp files a killed push left; " + (
        f"upload {ups} to {node.swift_dir}" if ups and not plan.error else
        "upload nothing" + (f" ({plan.error})" if plan.error else " (rings current)"))
    return hostplan.HostStep(node.name, "push", tuple(session_argv(node, True)), False, why)


def verify_one(ex: Executor, node, local, res: HostResult) -> None:
    proc, state = _session(ex, node, cleanup=True)
    proc.finish(COMMAND_TIMEOUT)
    res.removed_tmp = list(state.removed_tmp)
    if not state.exists:
        res.error = f"swift_dir {node.swift_dir} does not exist on the node"
        return
    res.verify = verify_host(local, state)
    res.ok = all(s == "ok" for s in res.verify.values())


def _one_line(e: BaseException) -> str:
    from ringmgr.exec.fanout import one_line

    return one_line(e)
