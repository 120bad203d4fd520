"""The ring phases of the partition-power increase (prepare, increase, cancel,
finish): swift's builder call unless made already, write, push to every node and proxy
(each confirmed by md5), and wait the ring reload interval."""

from __future__ import annotations

from ringmgr.errors import StepFailed
from ringmgr.ops.partpower_env import Env
from ringmgr.ops.partpower_journal import nodes_done, phase_info
from ringmgr.rings import partpower as pp
from ringmgr.rings.store import RingStore


def ring_phase(env: Env, j, phase: str) -> bool:
    """swift's call for ``phase`` (unless made already), write, push, confirm, wait."""
    config = env.config
    info = phase_info(j, phase)
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
                                   "relinked": nodes_done(j, "relink"),
                                   "cleaned_up": nodes_done(j, "cleanup")}})
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
