"""Converge's weight phase in arithmetic: how far towards the wanted weights one step
may go (``fraction_for``, by bisection on the share of assignments the weights alone
move, no rebalance) and the weights and RingChange at a fraction (``weights_at``)."""

from __future__ import annotations

from ringmgr.rings.changes import RingChange
from ringmgr.rings.reconcile import RingDiff

MIN_FRACTION = 0.01   # the smallest weight step tried: 1% of the way


def _share_moved(weights_before: dict, weights_after: dict) -> float:
    """Percent of the assignments that move from the weights alone: the parts the
    devices gaining share receive (what a perfectly balanced rebalance moves)."""
    wb, wa = sum(weights_before.values()), sum(weights_after.values())
    if wa <= 0:
        return 100.0
    gain = 0.0
    for k in set(weights_before) | set(weights_after):
        sb = weights_before.get(k, 0.0) / wb if wb > 0 else 0.0
        sa = weights_after.get(k, 0.0) / wa
        if sa > sb:
            gain += sa - sb
    return 100.0 * gain


def weights_at(builder, diff: RingDiff, f: float) -> tuple[dict, RingChange]:
    from ringmgr.rings.engine import live_devs

    current = {d["id"]: float(d["weight"]) for d in live_devs(builder)}
    weights = {}
    for i, t in diff.targets.items():
        w = current[i] + f * (t - current[i])
        if f >= 1.0:
            w = t
        else:
            w = round(w, 6)
        weights[i] = w
    adds = [dict(a, weight=(a["weight"] if f >= 1.0 else round(a["weight"] * f, 6)))
            for a in diff.adds]
    after = dict(current)
    after.update(weights)
    for n, a in enumerate(adds):
        after[f"new{n}"] = a["weight"]
    change = RingChange(weights={i: w for i, w in weights.items() if w != current[i]},
                        adds=adds)
    return after, change


def fraction_for(builder, diff: RingDiff, cap: float) -> float:
    """The fraction whose weights alone move about 90% of ``cap`` (by bisection on
    ``_share_moved``: arithmetic, no rebalance)."""
    from ringmgr.rings.engine import live_devs

    before = {d["id"]: float(d["weight"]) for d in live_devs(builder)}
    aim = 0.9 * cap
    if _share_moved(before, weights_at(builder, diff, 1.0)[0]) <= aim:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if _share_moved(before, weights_at(builder, diff, mid)[0]) <= aim:
            lo = mid
        else:
            hi = mid
    return max(lo, MIN_FRACTION)
