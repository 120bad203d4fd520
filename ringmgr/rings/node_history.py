"""What the history says about one node: a gradual drain or ramp in progress, when it
was removed, and the weights it had before a drain began.

Pure: history entries (the dicts ``RingStore.history()`` returns) in, facts out; a
backup builder, where one is needed, comes through a ``load_backup(entry, ring)``
callable.  Gradual steps carry ``change.info.gradual`` (written by
``gradual.step_change``)::

    {"kind": "drain", "node": "s04", "ip": "10.0.1.4", "step": 2, "of": 5,
     "action": "set-weight", "fraction": 0.55,
     "base": {"object": {"sdb": 4000.0}},      # the weights the fractions are of
     "started": {"id": 12, "time": 1767000000.0}}   # the change that began it

Devices are matched by ring, ip and name; ids only within one builder's lifetime
(a set-weight names ids, which stay while the device is in the ring).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass
class Progress:
    """A gradual drain or ramp of a node that earlier runs began."""

    kind: str        # "drain" or "ramp"
    base: dict       # ring -> {device: weight}
    done: int        # steps already written
    started: dict    # {"id", "time"} of the change that wrote step 1

    def since_text(self) -> str:
        return change_text(self.started)


def change_text(entry: dict) -> str:
    """'change #12 on 2026-01-02 14:10 UTC'."""
    t = entry.get("time")
    when = (datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            if t is not None else "an unknown date")
    return f"change #{entry.get('id', '?')} on {when}"


def gradual_info(entry: dict) -> dict | None:
    return ((entry.get("change") or {}).get("info") or {}).get("gradual")


def _rings(entry: dict) -> dict:
    return (entry.get("change") or {}).get("rings") or {}


def _touch(entry: dict, node, ids: dict) -> str | None:
    """How ``entry`` touched ``node``: 'gradual', 'removed', 'added', 'weight', or None.

    ``ids``: ring -> device ids the node's devices have (now, or in the builders
    the entry changed)."""
    g = gradual_info(entry)
    if g and (g.get("node") == node.name or g.get("ip") == node.ip):
        return "gradual"
    if any(d.get("ip") == node.ip for d in entry.get("removed_devices") or []):
        return "removed"
    how = None
    for ring, c in _rings(entry).items():
        if any(a.get("ip") == node.ip for a in c.get("add") or []):
            return "added"
        if ids.get(ring, set()) & {int(k) for k in c.get("set_weight") or {}}:
            how = "weight"
    return how


def node_ids(builders: dict, node) -> dict:
    """ring -> ids of the node's devices in ``builders``."""
    from ringmgr.rings.devices import node_devs

    return {ring: {d["id"] for d in node_devs(b, node.ip)} for ring, b in builders.items()}


def in_progress(history: list[dict], node, ids: dict, kind: str) -> Progress | None:
    """The drain (or ramp) of ``node`` that the newest change touching it belongs to,
    if that one is not finished: a drain not yet removed, a ramp below full weight."""
    for e in reversed(history):
        if not _touch(e, node, ids):
            continue
        g = gradual_info(e)
        if not g or g.get("kind") != kind or g.get("node") != node.name:
            return None
        if kind == "drain" and g.get("action") == "remove":
            return None
        if kind == "ramp" and float(g.get("fraction", 1.0)) >= 1.0:
            return None
        started = g.get("started") or {"id": e.get("id"), "time": e.get("time")}
        return Progress(kind, g.get("base") or {}, int(g.get("step", 0)), started)
    return None


def last_removal(history: list[dict], node) -> tuple[dict, list[dict]] | None:
    """The newest change that removed devices with the node's ip, and those devices."""
    for e in reversed(history):
        devs = [d for d in e.get("removed_devices") or [] if d.get("ip") == node.ip]
        if devs:
            return e, devs
    return None


def weights_before_drain(history: list[dict], removal: dict, devs: list[dict], node,
                         load_backup=None) -> tuple[dict, str] | None:
    """The weights to bring ``devs`` (removed by ``removal``) back at, and where they
    come from; None when the history cannot tell (removed at weight 0, no drain record
    and no backup from before the weights went down).

    In order: the base weights of the drain the removal finished (or interrupted);
    the weights the devices had when removed, if any was above 0; the weights in the
    backup taken before the run of weight changes that ended at the removal (a drain
    made with plain set-weight commands)."""
    g = gradual_info(removal)
    if g and g.get("kind") == "drain" and g.get("node") == node.name:
        return g.get("base") or {}, (f"the weights before the drain that began with "
                                     f"{change_text(g.get('started') or removal)}")
    ids: dict = {}
    for d in devs:
        ids.setdefault(d["ring"], set()).add(d["id"])
    earlier = history[:next((i for i, e in enumerate(history) if e is removal), len(history))]
    oldest_weight_change = None
    for e in reversed(earlier):
        how = _touch(e, node, ids)
        if how is None:
            continue
        if how == "gradual":
            gi = gradual_info(e)
            if gi.get("kind") == "drain" and gi.get("node") == node.name:
                return gi.get("base") or {}, (
                    f"the weights before the drain that began with "
                    f"{change_text(gi.get('started') or e)}")
        if how == "weight" and not (e.get("change") or {}).get("info"):
            oldest_weight_change = e
            continue
        break
    removed = {}
    for d in devs:
        removed.setdefault(d["ring"], {})[d["device"]] = float(d.get("weight") or 0.0)
    if any(w > 0 for r in removed.values() for w in r.values()):
        return removed, f"the weights they had when {change_text(removal)} removed them"
    if oldest_weight_change is not None and load_backup is not None:
        base = _backup_weights(oldest_weight_change, devs, node, load_backup)
        if base and any(w > 0 for r in base.values() for w in r.values()):
            return base, (f"the weights before {change_text(oldest_weight_change)} "
                          f"lowered them (from its backup of the builders)")
    return None


def _backup_weights(entry: dict, devs: list[dict], node, load_backup) -> dict:
    out: dict = {}
    for ring in sorted({d["ring"] for d in devs}):
        try:
            b = load_backup(entry, ring)
        except Exception:  # noqa: BLE001 - a missing or damaged backup: cannot tell
            b = None
        if b is None:
            continue
        mine = {d["device"] for d in devs if d["ring"] == ring}
        for d in b.devs:
            if d is not None and d["ip"] == node.ip and d["device"] in mine:
                out.setdefault(ring, {})[d["device"]] = float(d["weight"])
    return out
