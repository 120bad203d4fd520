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

The code is split by phase: ``partpower_journal`` (rings, journal, position),
``partpower_env`` (Env, Outcome), ``partpower_precheck``, ``partpower_ring`` (the ring
phases), ``partpower_relink`` (the relinker phases), ``partpower_status`` (status, plan).
"""

from __future__ import annotations

import secrets
import time

from ringmgr.ops.partpower_env import Env, Outcome
from ringmgr.ops.partpower_journal import (KEY, done_phases, finished_already,
                                           load_builders, open_journal, phase_info,
                                           position, read_journal, select_rings)
from ringmgr.ops.partpower_precheck import precheck
from ringmgr.ops.partpower_relink import relinker_phase, stop_relinkers
from ringmgr.ops.partpower_ring import ring_phase
from ringmgr.ops.partpower_status import plan, status_data
from ringmgr.rings import partpower as pp

__all__ = ["Env", "Outcome", "KEY", "select_rings", "load_builders", "read_journal",
           "finished_already", "done_phases", "position", "run", "status_data", "plan"]


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
            info = phase_info(j, phase)
            info["started"] = info.get("started") or env.clock()
            j.set_param("phases", j.params["phases"])
            if phase == "precheck":
                precheck(env, j, builders)
            elif phase in pp.RING_PHASES:
                if phase == "cancel":
                    stop_relinkers(env, j)
                written = ring_phase(env, j, phase) or written
            else:
                waiting = relinker_phase(env, j, phase, wait=wait)
                if waiting:
                    builders = load_builders(env.config, env.rings)
                    return Outcome(status_data(env, j.data, builders), waiting=waiting,
                                   written=written)
            phase_info(j, phase)["finished"] = env.clock()
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
