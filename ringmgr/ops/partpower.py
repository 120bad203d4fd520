"""``ringmgr increase-part-power``: swift's partition-power procedure, run phase by phase
with a journal (``rings/partpower.py`` is the phase machine, ``partpower_nodes.py``
the node side).

Each run continues where the journal and the builders say the operation stands: one
phase, or every remaining phase with ``all_phases``.  A ring phase (prepare, increase,
cancel, finish) is idempotent: the builder call is made only when the builder is not
already past it (a killed run, or swift-ring-builder, may have made it), then the rings
are written, pushed to every node and proxy (each confirmed by md5), and the ring
reload interval is waited.  A relinker phase (relink, cleanup) starts the detached
relinker on every object node, or finds it; it is done when every node exited 0 and
recon shows every device and policy complete.

The journal (``increase-part-power.json`` in the cluster's run directory) records per
phase when it started and ended, the ring versions and the nodes done, and per node
the relinker's pid; the ring changes themselves are in the ring history like any
other change (their records carry ``part_power``).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from ringmgr.errors import Refused, StepFailed
from ringmgr.ops import partpower_nodes as pn
from ringmgr.ops import relinker as rl
from ringmgr.rings import partpower as pp
from ringmgr.rings.store import RingStore

KEY = "increase-part-power"


@dataclass
class Env:
    """What a run needs from outside: the config, the rings, the options, and the
    injected effects (executors, recon, push, clock)."""

    config: object
    rings: list[str]
    opts: rl.RelinkOptions = field(default_factory=rl.RelinkOptions)
    argv: list[str] = field(default_factory=list)
    echo: Callable[[str], None] = lambda s: None
    warn: Callable[[str], None] = lambda s: None
    executor_factory: Callable | None = None
    recon: Callable | None = None         # recon(ip, port, what) -> JSON
    push: Callable | None = None          # push(change_id) -> PushReport
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    poll_interval: float = 5.0

    def __post_init__(self):
        if self.recon is None:
            from ringmgr.ops.partpower_recon import recon_getter

            self.recon = recon_getter(self.config)

    def executor(self, host):
        if self.executor_factory is not None:
            return self.executor_factory(host)
        from ringmgr.exec.factory import executor_for

        return executor_for(self.config, host, dry_run=False)


@dataclass
class Outcome:
    """One run's result: did it advance, is the operation complete, is it waiting."""

    data: dict
    complete: bool = False
    waiting: str | None = None        # relinkers still running (say when to look again)
    written: bool = False
    nothing_to_do: bool = False


def select_rings(config, names) -> list[str]:
    store = RingStore.from_config(config)
    known = store.discover()
    for n in names:
        pp.check_object_ring(n)
        if n not in known:
            raise Refused(f"no ring {n!r} in {store.dir} (rings: {', '.join(known)})",
                          reason="usage")
    rings = list(names) or pp.object_rings(known)
    if not rings:
        raise Refused(f"no object ring in {store.dir}")
    return sorted(rings)


def load_builders(config, rings) -> dict:
    store = RingStore.from_config(config)
    return {r: store.load(r) for r in rings}


def done_phases(journal_data: dict | None) -> set[str]:
    steps = (journal_data or {}).get("steps", {})
    return {k for k, v in steps.items() if isinstance(v, dict) and v.get("state") == "done"}


def position(journal_data: dict | None, builders: dict, cancel: bool = False) -> pp.Position:
    params = (journal_data or {}).get("params", {})
    start = params.get("start_power") or {}
    first = sorted(builders)[0]
    return pp.next_phase(pp.common_stage(builders), done_phases(journal_data), cancel=cancel,
                         start_power=start.get(first), power_now=builders[first].part_power)


def read_journal(config, *, finished: bool = False) -> dict | None:
    """The journal as it is on disk (no lock: for status and dry runs); a finished one
    only with ``finished``."""
    from ringmgr.exec.runner import cluster_state_dir

    path = cluster_state_dir(config) / f"{KEY}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if finished or not data.get("finished") else None


def finished_already(config, builders: dict) -> str | None:
    """'the increase ... finished at ...' when the last operation finished and the rings
    are still as it left them (running the command again is not a new increase)."""
    data = read_journal(config, finished=True)
    if not data or not data.get("finished"):
        return None
    params = data.get("params", {})
    start = params.get("start_power") or {}
    if sorted(start) != sorted(builders) or any(b.next_part_power for b in builders.values()):
        return None
    cancelled = "cancel" in done_phases(data)
    want = {r: p + (0 if cancelled else 1) for r, p in start.items()}
    if any(builders[r].part_power != p for r, p in want.items()):
        return None
    what = "cancelled" if cancelled else "finished"
    return (f"the partition-power increase {params.get('op_id')} {what} at "
            f"{data.get('updated', '?')}: part power "
            + ", ".join(f"{r} {b.part_power}" for r, b in sorted(builders.items()))
            + "; pass --new to increase it again")


def open_journal(config, rings):
    from ringmgr.exec.runner import Journal, cluster_state_dir

    j = Journal.open(KEY, cluster_state_dir(config), identity={"rings": sorted(rings)})
    return j


# -- one run -------------------------------------------------------------------------

def run(env: Env, *, cancel: bool = False, all_phases: bool = False,
        wait: bool = False) -> Outcome:
    """Run the next phase (or all remaining ones); the journal is locked meanwhile, so
    two ringmgrs never run the operation at once."""
    builders = load_builders(env.config, env.rings)
    j = open_journal(env.config, env.rings)
    try:
        pos = position(j.data, builders, cancel)
        if pos.complete or (not j.in_progress and pos.next is None):
            j.finish()
            return Outcome(status_data(env, j.data, builders), complete=True,
                           nothing_to_do=True)
        j.param("op_id", lambda: time.strftime("%Y%m%dT%H%M%S", time.gmtime(env.clock()))
                + "-" + secrets.token_hex(3))
        j.param("start_power", lambda: {r: b.part_power for r, b in builders.items()})
        j.param("started", env.clock)
        written = False
        while True:
            phase = pos.next
            env.echo(f"phase {phase}: {pp.PHASE_TEXT[phase]} ({pos.why})")
            _info(j, phase)["started"] = _info(j, phase).get("started") or env.clock()
            j.set_param("phases", j.params["phases"])
            if phase == "precheck":
                precheck(env, j, builders)
            elif phase in pp.RING_PHASES:
                if phase == "cancel":
                    refuse_while_relinking(env, j)
                written = ring_phase(env, j, phase) or written
            else:
                waiting = relinker_phase(env, j, phase, wait=wait)
                if waiting:
                    builders = load_builders(env.config, env.rings)
                    return Outcome(status_data(env, j.data, builders), waiting=waiting,
                                   written=written)
            _info(j, phase)["finished"] = env.clock()
            j.set_param("phases", j.params["phases"])
            j.mark(phase, "done")
            builders = load_builders(env.config, env.rings)
            pos = position(j.data, builders, cancel and phase != "cancel")
            if pos.complete:
                data = status_data(env, j.data, builders)
                j.finish()
                return Outcome(data, complete=True, written=written)
            if not all_phases:
                return Outcome(status_data(env, j.data, builders), written=written)
    finally:
        j.close()


def _info(j, phase: str) -> dict:
    return j.params.setdefault("phases", {}).setdefault(phase, {})


# -- precheck ----------------------------------------------------------------------------

def precheck(env: Env, j, builders: dict) -> None:
    """Every node and proxy reachable, devices mounted, inodes, reclaim_age, swift's
    version, the rings current and the same everywhere; any failure refuses (exit 2)."""
    from ringmgr.ops.push import verify_rings

    config = env.config
    store = RingStore.from_config(config)
    store.refuse_if_pending()
    problems = []
    for name, b in builders.items():
        check = store.ring_check(name, b)
        if not check.current:
            problems.append(f"{name}.ring.gz is {check.state}: write and push it first")
    nodes = pn.object_nodes(config, builders)
    figs = pn.parallel(config, nodes, lambda on: pn.precheck_node(
        on, env.executor(on.node), env.recon, env.rings))
    proxies = pn.parallel(config, config.proxies,
                          lambda p: pn.precheck_proxy(p, env.executor(p)))
    factory = env.executor_factory
    report = verify_rings(config, transport=None if factory is None else
                          (lambda _config, host, _known_hosts: factory(host)))
    for h in report.results:
        if not h.ok:
            differ = ", ".join(f"{f} {s}" for f, s in sorted(h.verify.items()) if s != "ok")
            problems.append(f"{h.node}: rings not the admin host's "
                            f"({h.error or differ or 'differ'}): push them first")
    out = {}
    for name, fig in {**figs, **proxies}.items():
        if isinstance(fig, Exception):
            problems.append(f"{name}: {pn.one_line(fig)}")
            out[name] = {"error": pn.one_line(fig)}
            continue
        problems += [f"{name}: {p}" for p in fig["problems"]]
        out[name] = fig
    for name, fig in figs.items():
        if isinstance(fig, dict):
            inodes = ", ".join(f"{d} {f['used']} used/{f['free']} free" if f else f"{d} ?"
                               for d, f in sorted(fig["devices"].items()))
            env.echo(f"  {name}: swift {fig['swift_version']}, reclaim_age "
                     f"{fig['reclaim_age']} s, runs as {fig['user']}, relinker config "
                     f"{fig['relinker_conf']}; inodes {inodes}")
    reclaim = [f["reclaim_age"] for f in figs.values() if isinstance(f, dict)]
    used = [d["used"] for f in figs.values() if isinstance(f, dict)
            for d in f["devices"].values() if d]
    estimate = None
    if env.opts.files_per_second and used:
        estimate = 2 * max(used) / env.opts.files_per_second   # relink + cleanup
    if reclaim:
        env.echo(f"reclaim_age {min(reclaim)} s; expected relink+cleanup "
                 + (f"about {estimate:.0f} s" if estimate is not None else
                    "not estimated (no --files-per-second; unthrottled)"))
        if estimate is not None and estimate > min(reclaim):
            problems.append(f"reclaim_age {min(reclaim)} s is shorter than the expected "
                            f"relink and cleanup ({estimate:.0f} s at --files-per-second "
                            f"{env.opts.files_per_second:g}): raise reclaim_age first")
    _info(j, "precheck").update(nodes=out, reclaim_age=min(reclaim) if reclaim else None,
                                estimate=estimate)
    j.set_param("phases", j.params["phases"])
    if problems:
        raise Refused("precheck failed; nothing was changed:\n  " + "\n  ".join(problems))


# -- ring phases ------------------------------------------------------------------------

def ring_phase(env: Env, j, phase: str) -> bool:
    """swift's call for ``phase`` (unless made already), write, push, confirm, wait."""
    config = env.config
    info = _info(j, phase)
    written = False
    if not info.get("pushed_at"):
        store = RingStore(config.cluster.builder_dir, tuple(env.rings),
                          config.cluster.lock_timeout, config.cluster.format_version)
        with store.lock():
            store.refuse_if_pending(held=True)
            builders = {r: store.load(r) for r in env.rings}
            new = {}
            for r, b in builders.items():
                after = pp.apply_ring_phase(b, phase)
                if after is not None:
                    new[r] = after
                elif not store.ring_check(r, b).current:
                    new[r] = b    # swift-ring-builder changed the builder, not the ring
            if new:
                record = store.commit(new, {
                    "description": f"increase-part-power {phase} "
                                   f"({', '.join(sorted(new))})",
                    "argv": env.argv, "seed": None,
                    "rings": {r: {"version_before": builders[r].version} for r in new},
                    "part_power": {"phase": phase, "operation": j.params.get("op_id"),
                                   "relinked": _nodes_done(j, "relink"),
                                   "cleaned_up": _nodes_done(j, "cleanup")}})
                info["change_id"] = record["id"]
                written = True
                env.echo(f"written: change #{record['id']}: " + ", ".join(
                    f"{r} part_power {b.part_power} next_part_power {b.next_part_power} "
                    f"version {b.version}" for r, b in sorted(new.items())))
            else:
                env.echo("the builders are already past this call; pushing them")
            info["versions"] = {r: (new.get(r) or builders[r]).version for r in env.rings}
        j.set_param("phases", j.params["phases"])
        report = env.push(info.get("change_id"))
        info["pushed"] = sorted(h.node for h in report.results if h.ok)
        if not report.ok:
            j.set_param("phases", j.params["phases"])
            err = StepFailed(f"{phase}: the rings were written, but the push failed on "
                             f"{', '.join(report.failed)}; fix them and run the same "
                             f"command again (the push is repeated, nothing else)")
            err.written = written
            raise err
        info["pushed_at"] = env.clock()
        j.set_param("phases", j.params["phases"])
    left = info["pushed_at"] + config.cluster.ring_reload - env.clock()
    if left > 0 and phase != "finish":
        env.echo(f"waiting {left:.0f} s until every server has re-read the ring "
                 f"([cluster].ring_reload)")
        env.sleep(left)
    return written


def _nodes_done(j, step: str) -> list[str]:
    runs = j.params.get("runs", {}).get(step, {})
    return sorted(n for n, r in runs.items() if r.get("done"))


# -- relinker phases ---------------------------------------------------------------------

def relinker_phase(env: Env, j, phase: str, *, wait: bool) -> str | None:
    """Start (or find) the relinker on every object node; with ``wait`` poll until
    every node is done.  Returns None when done, else what it waits for; raises
    StepFailed naming the nodes that failed or cannot be reached."""
    config = env.config
    step = pp.RELINK_PHASES[phase]
    builders = load_builders(config, env.rings)
    nodes = pn.object_nodes(config, builders)
    op_id = j.params["op_id"]
    runs = j.params.setdefault("runs", {}).setdefault(step, {})
    if phase == "cleanup":
        _reclaim_warning(env, j)
    todo = {n: on for n, on in nodes.items() if not runs.get(n, {}).get("done")}
    started = pn.parallel(config, todo, lambda on: pn.start_relinker(
        on, env.executor(on.node), op_id, step, env.rings, env.opts, retry_failed=True))
    for name, st in started.items():
        rec = runs.setdefault(name, {})
        if isinstance(st, Exception):
            rec.update(state="unreachable", error=pn.one_line(st))
            continue
        if st["state"] in ("started", "running"):
            rec.setdefault("started", env.clock())
        rec.update(state=st["state"], pid=st.get("pid") or rec.get("pid"),
                   rc=st.get("rc"), error="")
        if st["state"] in ("busy", "error"):
            rec["error"] = ("another relinker holds the node's lock" if st["state"] == "busy"
                            else f"cannot start: {st.get('msg')}")
        verb = {"started": "started", "running": "found running", "finished":
                "found finished", "busy": "busy: another relinker holds the node's lock",
                "error": f"cannot start: {st.get('msg')}"}.get(st["state"], st["state"])
        env.echo(f"  {name}: {step} {verb}" + (f" (pid {st['pid']})" if st.get("pid") else ""))
    j.set_param("runs", j.params["runs"])
    failed: dict[str, str] = {}
    while True:
        states = pn.parallel(config, todo, lambda on: pn.relinker_state(
            on, env.executor(on.node), env.recon, op_id, step, env.rings))
        running = []
        for name, st in states.items():
            rec = runs.setdefault(name, {})
            if isinstance(st, Exception):
                rec.update(state="unreachable", error=pn.one_line(st))
                failed[name] = rec["error"]
                continue
            rec.update(state=st["state"], rc=st["rc"], done=st["done"],
                       progress=st["progress"], error=st.get("error", ""))
            if st["done"]:
                rec.setdefault("finished", env.clock())
            elif st.get("error"):
                failed[name] = st["error"]
            else:
                running.append(name)
        j.set_param("runs", j.params["runs"])
        todo = {n: on for n, on in todo.items() if n in running}
        if not running and not failed and all(runs.get(n, {}).get("done") for n in nodes):
            env.echo(f"{step}: done on every node ({', '.join(nodes)})")
            return None
        if failed and not running:
            raise StepFailed(f"{step} did not complete on " + "; ".join(
                f"{n}: {why}" for n, why in sorted(failed.items()))
                + "; the phase stays open (the next phase refuses until it completes): "
                  "fix the node and run the same command again")
        if not wait:
            what = f"{step} running on {', '.join(running)}"
            if failed:
                what += "; failed on " + ", ".join(sorted(failed))
            return what
        env.sleep(env.poll_interval)


def refuse_while_relinking(env: Env, j) -> None:
    """Cancel only when no relink runs: its links would be made after the cleanup
    looked, and the cleanup could not start on the node (the node's relinker lock)."""
    runs = j.params.get("runs", {}).get("relink", {})
    if not runs:
        return
    builders = load_builders(env.config, env.rings)
    nodes = {n: on for n, on in pn.object_nodes(env.config, builders).items() if n in runs}
    states = pn.parallel(env.config, nodes, lambda on: pn.relinker_state(
        on, env.executor(on.node), env.recon, j.params["op_id"], "relink", env.rings))
    busy = sorted(n for n, st in states.items()
                  if isinstance(st, Exception) or st["state"] in ("running", "started"))
    if busy:
        raise Refused(f"relink is still running (or cannot be checked) on "
                      f"{', '.join(busy)}: wait for it to end (`ringmgr increase-part-power "
                      f"--status`), then cancel; nothing was changed")


def _reclaim_warning(env: Env, j) -> None:
    ages = [f.get("reclaim_age") for f in (_info(j, "precheck").get("nodes") or {}).values()
            if isinstance(f, dict) and f.get("reclaim_age")]
    prepared = _info(j, "prepare").get("pushed_at")
    if not ages or not prepared:
        return
    elapsed = env.clock() - prepared
    if elapsed > 0.75 * min(ages):
        env.warn(f"{elapsed / 3600:.1f} h since prepare, reclaim_age is "
                 f"{min(ages) / 3600:.1f} h: cleanup must finish within reclaim_age, or "
                 f"objects overwritten and deleted meanwhile are never cleaned up")


# -- status and plan ------------------------------------------------------------------

def status_data(env: Env, journal_data: dict | None, builders: dict,
                cancel: bool = False) -> dict:
    """phase, phases done, rings, per node the relinker runs (for text and JSON)."""
    params = (journal_data or {}).get("params", {})
    try:
        pos = position(journal_data, builders, cancel)
        nxt, why, phases = pos.next, pos.why, pos.phases
    except Refused as e:
        nxt, why, phases = None, str(e), pp.PHASES
    done = done_phases(journal_data)
    info = params.get("phases", {})
    return {
        "operation": params.get("op_id"),
        "rings": pp.ring_summary(builders),
        "phase": nxt, "why": why,
        "phases": [{"name": p, "state": "done" if p in done else
                    ("next" if p == nxt else "pending"), "text": pp.PHASE_TEXT[p],
                    "started": info.get(p, {}).get("started"),
                    "finished": info.get(p, {}).get("finished")} for p in phases],
        "nodes": {step: {n: {k: r.get(k) for k in ("state", "pid", "rc", "done", "error",
                                                   "progress")}
                         for n, r in sorted(runs.items())}
                  for step, runs in params.get("runs", {}).items()},
    }


def plan(env: Env, journal_data: dict | None, builders: dict, cancel: bool) -> list[dict]:
    """Every remaining phase with its host commands (the dry run); nothing runs."""
    pos = position(journal_data, builders, cancel)
    if pos.complete:
        return []
    nodes = pn.object_nodes(env.config, builders)
    steps = []
    phases = pos.phases[pos.phases.index(pos.next):]
    for phase in phases:
        item = {"phase": phase, "text": pp.PHASE_TEXT[phase], "ring_call": None,
                "host_steps": []}
        if phase in pp.RING_PHASES:
            item["ring_call"] = pp.RING_PHASES[phase]
            for h in env.config.hosts():
                item["host_steps"].append({
                    "host": h, "step": "push", "argv": ["ringmgr", "push", h],
                    "destructive": False,
                    "reason": f"the {phase}d ring to every node and proxy"})
        elif phase in pp.RELINK_PHASES:
            step = pp.RELINK_PHASES[phase]
            for name, on in nodes.items():
                argv = rl.relinker_argv(on.node, step, env.rings, on.node.object_conf,
                                        env.opts)
                item["host_steps"].append({
                    "host": name, "step": step, "argv": argv,
                    "destructive": phase == "cleanup",
                    "reason": f"detached (setsid), pid file and log in "
                              f"{rl.run_dir(on.node, 'OPERATION')}/, devices "
                              f"{', '.join(on.all_devices)}; the config is "
                              f"{on.node.run_dir}/{rl.OWN_CONF} instead when "
                              f"{on.node.object_conf} has no [object-relinker]"})
        steps.append(item)
    return steps
