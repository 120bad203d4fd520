"""The partition-power increase's state: the rings it works on, its journal
(``increase-part-power.json`` in the cluster's run directory) and where the journal and
the builders say the operation stands (``rings/partpower.py``'s phase machine).
"""

from __future__ import annotations

import json

from ringmgr.errors import Refused
from ringmgr.rings import partpower as pp
from ringmgr.rings.store import RingStore

KEY = "increase-part-power"


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


def phase_info(j, phase: str) -> dict:
    return j.params.setdefault("phases", {}).setdefault(phase, {})


def nodes_done(j, step: str) -> list[str]:
    runs = j.params.get("runs", {}).get(step, {})
    return sorted(n for n, r in runs.items() if r.get("done"))


def half_state(config, journal_data: dict) -> str:
    """Where an interrupted increase stands, from its journal and the builders: 'relink
    next (...)' or the builders' refusal (for ``status`` and ``resume``)."""
    rings = (journal_data.get("identity") or {}).get("rings") or []
    try:
        pos = position(journal_data, load_builders(config, rings))
    except Exception as e:  # noqa: BLE001 - shown, never fatal to status
        return f"cannot tell: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    if pos.complete:
        return "every phase done"
    started = (journal_data.get("params", {}).get("phases", {}).get(pos.next) or {})
    if started.get("started") and not started.get("finished"):
        return f"{pos.next} started, not finished: run the same command again"
    return f"{pos.next} next ({pos.why})"
