"""What the partition-power increase shows: its status (phase, phases done, rings, per
node the relinker runs) and its plan (every remaining phase with its host commands)."""

from __future__ import annotations

from ringmgr.errors import Refused
from ringmgr.ops import partpower_nodes as pn
from ringmgr.ops import relinker as rl
from ringmgr.ops.partpower_env import Env
from ringmgr.ops.partpower_journal import done_phases, position
from ringmgr.rings import partpower as pp


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
