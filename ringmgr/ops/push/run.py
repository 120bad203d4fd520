"""Push and verify over many hosts: the builder lock, the refusals before anything is
sent, and the fan-out (``exec.fanout``) with one executor per host from the factory.

``push_hosts(config, hosts, local, ...)`` pushes already-loaded rings to a chosen
set of hosts and returns their report; ``push_rings`` is the whole command (lock,
refusals, every host).  A staged push (a canary first, then waves) calls
``prepare_push`` once and ``push_hosts`` per wave under the same lock.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Callable

from ringmgr.config import Config
from ringmgr.errors import Refused, UsageError
from ringmgr.exec import plan as hostplan
from ringmgr.ops.push.plan import LocalRing, load_local_rings
from ringmgr.ops.push.report import HostResult, PushReport
from ringmgr.ops.push.session import push_one, verify_one

log = logging.getLogger("ringmgr.push")


def select_hosts(config: Config, names) -> dict:
    hosts = config.hosts()
    if not names:
        if not hosts:
            raise UsageError(f"no nodes or proxies in {config.path}")
        return hosts
    unknown = [n for n in names if n not in hosts]
    if unknown:
        raise UsageError(f"unknown node {', '.join(unknown)} (nodes and proxies in "
                         f"{config.path}: {', '.join(sorted(hosts)) or 'none'})")
    return {n: hosts[n] for n in dict.fromkeys(names)}


Progress = Callable[[HostResult], None]


@contextlib.contextmanager
def prepare_push(config: Config, names=None, *, dry_run: bool = False):
    """Under the builder lock: refuse a pending ring change or rings that are not what
    their builders make; yield (hosts, local rings) to push."""
    with _push_lock(config, dry_run) as lock:
        _refuse_if_pending(config.cluster.builder_dir, held=lock is not None)
        hosts = select_hosts(config, names)
        local = load_local_rings(config.cluster.builder_dir, config.cluster.rings)
        refuse_not_current(config, local)
        yield hosts, local


def push_hosts(config: Config, hosts: dict, local: dict[str, LocalRing], *,
               force: bool = False, accept_new_host_keys: bool = False,
               dry_run: bool = False, progress: Progress | None = None,
               transport=None) -> PushReport:
    """Push ``local`` to ``hosts`` (name -> Host), in parallel; the caller holds the
    lock (``prepare_push``).  Per-host failures are in the report."""
    return _run_all("push", config, hosts, local, accept_new_host_keys, progress, transport,
                    lambda ex, node, res: push_one(ex, node, local, res, force, dry_run),
                    dry_run)


def push_rings(config: Config, names=None, *, force: bool = False,
               accept_new_host_keys: bool = False, dry_run: bool = False,
               progress: Progress | None = None, transport=None) -> PushReport:
    """Push the admin host's rings to the named nodes (default all nodes and proxies).

    Raises ``Refused`` while an interrupted ring change is pending; per-node
    failures are in the report (``report.ok``, ``report.failed``), not raised.
    """
    with prepare_push(config, names, dry_run=dry_run) as (hosts, local):
        return push_hosts(config, hosts, local, force=force,
                          accept_new_host_keys=accept_new_host_keys, dry_run=dry_run,
                          progress=progress, transport=transport)


def _push_lock(config, dry_run: bool):
    """The builder directory's lock for the whole push: no ring change can rename files
    under a push that is reading them, and two pushes from this admin host never race
    on a node's temp files.  A read-only builder_dir (a user who may push but not
    change rings) pushes without it."""
    import os

    from ringmgr.rings.lock import directory_lock

    d = Path(config.cluster.builder_dir)
    if dry_run or not os.access(d, os.W_OK):
        return contextlib.nullcontext()
    return directory_lock(d, config.cluster.lock_timeout)


def refuse_not_current(config, local: dict) -> None:
    """Push only rings that are exactly what their builders make: a ring.gz that is
    missing, stale (also after a builder edit swift does not version), truncated or
    another ring's file is refused, with the fix (``write-rings``)."""
    from ringmgr.rings.store import RingStore

    store = RingStore.from_config(config)
    names = store.discover()
    md5s = {name[: -len(".ring.gz")]: ring.md5 for name, ring in local.items()}
    bad = {n: c for n, c in store.ring_checks(names, ring_md5s=md5s).items()
           if not c.current}
    if bad:
        what = "; ".join(f"{n}.ring.gz is {c.state} ({c.detail})" for n, c in bad.items())
        raise Refused(f"not pushing: {what}. Run `ringmgr write-rings` first; nothing was "
                      f"pushed")


def verify_rings(config: Config, names=None, *, accept_new_host_keys: bool = False,
                 progress: Progress | None = None, transport=None) -> PushReport:
    """Compare every node's rings with the admin host's (md5 over SSH)."""
    hosts = select_hosts(config, names)
    local = load_local_rings(config.cluster.builder_dir, config.cluster.rings)
    return _run_all("verify", config, hosts, local, accept_new_host_keys, progress,
                    transport, lambda ex, node, res: verify_one(ex, node, local, res),
                    False)


def _refuse_if_pending(builder_dir, *, held: bool = False) -> None:
    from ringmgr.rings.store import RingStore

    pending = RingStore(Path(builder_dir)).pending(held=held)
    if pending:
        what = "ring change"
        if isinstance(pending, dict) and (pending.get("description") or pending.get("id")):
            what = f"ring change ({pending.get('description') or pending.get('id')})"
        raise Refused(f"an interrupted {what} is pending in {builder_dir}: the "
                      f"rings there may be a mix of old and new; finish or undo it with "
                      f"`ringmgr resume` before pushing")


def _run_all(kind: str, config: Config, hosts: dict, local, accept_new: bool,
             progress: Progress | None, transport, work, dry_run: bool) -> PushReport:
    """``work(ex, node, res)`` on every host through ``fan_out``; each host's executor
    from the factory, with a streaming session (``STREAM``) and one known_hosts file
    shared by the run."""
    from ringmgr.exec.base import STREAM
    from ringmgr.exec.factory import close_all, executor_for
    from ringmgr.exec.fanout import fan_out, one_line
    from ringmgr.exec.ssh import KnownHosts

    known = KnownHosts.from_config(config.ssh, accept_new)

    def one(node) -> HostResult:
        res = HostResult(node.name, node.host)
        t0 = time.monotonic()
        ex = None
        try:
            ex = executor_for(config, node, dry_run=dry_run, needs={STREAM},
                              known_hosts=known, transport=transport)
            # verify's session only removes a killed push's temp files: a check
            with hostplan.step(kind, reason=f"{kind} the rings in {node.swift_dir}",
                               kind=hostplan.CHECK if kind == "verify" else hostplan.CHANGE):
                work(ex, node, res)
        except Exception as e:  # noqa: BLE001 - one node's failure is collected
            res.error = one_line(e).removeprefix(f"[{node.name}] ")
            res.ok = False
            log.debug("[%s] %s failed", node.name, kind, exc_info=True)
        finally:
            close_all(ex)
        res.seconds = time.monotonic() - t0
        res.timings = dict(ex.timings) if ex is not None else {}
        return res

    def show(outcome) -> None:
        if progress is not None and outcome.value is not None:
            progress(outcome.value)

    group = fan_out(hosts.values(), one, parallel=config.ssh.parallel, progress=show,
                    label=kind)
    return PushReport(kind, local, [o.value for o in group.outcomes], dry_run, group.seconds)


def planned_push(config: Config, names=None, *, step: str = "push", reason: str = "",
                 destructive: bool = False) -> list[hostplan.HostStep]:
    """The host steps of a push a real run makes later (after a ring change that a dry
    run does not write): one node-script session per host, as ``push_rings`` starts."""
    from ringmgr.ops.push.session import session_argv

    return [hostplan.HostStep(h.name, step, tuple(session_argv(h, True)), destructive,
                              reason or f"push the changed rings to {h.name}")
            for h in select_hosts(config, names).values()]
