"""The relinker phases of the partition-power increase (relink, cleanup): start the
detached relinker on every object node, or find it; done when every node exited 0 and
recon shows every device and policy complete."""

from __future__ import annotations

from ringmgr.errors import Refused, StepFailed
from ringmgr.ops import partpower_nodes as pn
from ringmgr.ops.partpower_env import Env
from ringmgr.ops.partpower_journal import load_builders, phase_info
from ringmgr.rings import partpower as pp


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
    # with --wait each look waits on the node for the step to end (at most one poll
    # interval per round, shared by the rounds [ssh].parallel needs), so the end is
    # seen at once; recon is asked when a step ended, and while it runs no more often
    # than the relinker updates it (--stats-interval)
    rounds = -(-len(todo) // max(1, config.ssh.parallel)) if todo else 1
    look_wait = env.poll_interval / rounds if wait else 0.0
    recon_every = max(env.poll_interval, env.opts.stats_interval)
    asked: dict[str, float] = {}
    while True:
        now = env.clock()
        ask = {n for n in todo if not wait or now - asked.get(n, -recon_every) >= recon_every}
        asked.update((n, now) for n in ask)
        states = pn.parallel(config, todo, lambda on: pn.relinker_state(
            on, env.executor(on.node), env.recon, op_id, step, env.rings,
            wait=look_wait, ask_recon=on.name in ask))
        running = []
        for name, st in states.items():
            rec = runs.setdefault(name, {})
            if isinstance(st, Exception):
                rec.update(state="unreachable", error=pn.one_line(st))
                failed[name] = rec["error"]
                continue
            rec.update(state=st["state"], rc=st["rc"], done=st["done"],
                       error=st.get("error", ""))
            if st["progress"] is not None:
                rec["progress"] = st["progress"]
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
        left = look_wait - (env.clock() - now)
        if not look_wait:
            env.sleep(env.poll_interval)
        elif left > 0 and len(running) == len(states):
            env.sleep(left)     # every node answered early, none ended: no waiting look


def stop_relinkers(env: Env, j) -> None:
    """``--cancel`` while relinking: stop the relink on every node where it runs (its
    wrapper, the relinker and its workers), so that no link is made after the cancel's
    cleanup looked and the cleanup gets the node's relinker lock.  A node that cannot be
    checked refuses the cancel (nothing changed); the relinks stopped stay stopped."""
    from ringmgr.ops import relinker as rl

    runs = j.params.get("runs", {}).get("relink", {})
    if not runs:
        return
    builders = load_builders(env.config, env.rings)
    nodes = {n: on for n, on in pn.object_nodes(env.config, builders).items() if n in runs}
    op_id = j.params["op_id"]
    stopped = pn.parallel(env.config, nodes, lambda on: rl.parse_state(env.executor(
        on.node).run(rl.stop_argv(on.node, op_id, "relink")).stdout))
    bad = {}
    for name, st in stopped.items():
        if isinstance(st, Exception) or st.state not in ("stopped", "notrunning"):
            bad[name] = pn.one_line(st) if isinstance(st, Exception) else (st.msg or st.state)
        elif st.state == "stopped":
            runs[name].update(state="stopped", error="stopped by --cancel")
            env.echo(f"  {name}: relink stopped (pid {st.pid}) for the cancel")
    j.set_param("runs", j.params["runs"])
    if bad:
        raise Refused("cannot stop the relink on " + "; ".join(
            f"{n}: {why}" for n, why in sorted(bad.items()))
            + ": the cancel needs every relinker stopped; fix the node and run the same "
              "command again; nothing was changed")


def _reclaim_warning(env: Env, j) -> None:
    ages = [f.get("reclaim_age") for f in (phase_info(j, "precheck").get("nodes") or {}).values()
            if isinstance(f, dict) and f.get("reclaim_age")]
    prepared = phase_info(j, "prepare").get("pushed_at")
    if not ages or not prepared:
        return
    elapsed = env.clock() - prepared
    if elapsed > 0.75 * min(ages):
        env.warn(f"{elapsed / 3600:.1f} h since prepare, reclaim_age is "
                 f"{min(ages) / 3600:.1f} h: cleanup must finish within reclaim_age, or "
                 f"objects overwritten and deleted meanwhile are never cleaned up")
