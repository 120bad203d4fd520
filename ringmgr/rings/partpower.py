"""The partition-power increase as a phase machine over swift's RingBuilder (pure).

swift's procedure ("Modifying Ring Partition Power") is a fixed sequence of ring
states, and each of swift's four builder calls moves a ring from one state to the
next::

    stage "none"      next_part_power unset            (before, and after finish)
    stage "prepared"  next_part_power == part_power+1   prepare_increase_partition_power
    stage "switched"  next_part_power == part_power     increase_partition_power, or
                                                        cancel_increase_partition_power
    stage "none"      next_part_power unset            finish_increase_partition_power

The phases of ``ringmgr increase-part-power`` sit between those states: ``precheck``
(nothing changes), ``prepare`` (the first call, write, push, wait for the reload),
``relink`` (swift-object-relinker relink on every object node), ``increase`` (the
second call, ...), ``cleanup`` (swift-object-relinker cleanup), ``finish``.  With
``--cancel`` (only before the increase): ``cancel``, ``cleanup``, ``finish``.

The builder alone tells which ring call was made last, so a ring that swift-ring-builder
already prepared (or increased) is resumed from there (``next_phase``).  A cancelled and
an increased ring look the same ("switched"); the journal's recorded starting power
tells them apart, and both continue with cleanup and finish.

Nothing here touches a host: ``ringmgr.ops.partpower`` runs the phases.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ringmgr.errors import Refused

PHASES = ("precheck", "prepare", "relink", "increase", "cleanup", "finish")
CANCEL_PHASES = ("precheck", "prepare", "relink", "cancel", "cleanup", "finish")
RING_PHASES = {"prepare": "prepare_increase_partition_power",
               "increase": "increase_partition_power",
               "cancel": "cancel_increase_partition_power",
               "finish": "finish_increase_partition_power"}
RELINK_PHASES = {"relink": "relink", "cleanup": "cleanup"}

# swift-ring-builder's own words (swift/cli/ringbuilder.py), then the doc's reason
OBJECT_ONLY = ("Partition power increase is only supported for object rings. (swift's doc: "
               "increasing the partition power of account and container rings will result "
               "in unavailability, maybe even data loss)")

PHASE_TEXT = {
    "precheck": "check every node: reachable, devices mounted, free inodes, reclaim_age, "
                "swift version; no other ring change pending",
    "prepare": "prepare_increase_partition_power, write the ring, push it to every node "
               "and proxy, wait the ring reload interval",
    "relink": "swift-object-relinker relink on every object node (hard links at the new "
              "partitions; replicators skip the policy)",
    "increase": "increase_partition_power, write, push, wait the ring reload interval",
    "cancel": "cancel_increase_partition_power, write, push, wait the ring reload interval",
    "cleanup": "swift-object-relinker cleanup on every object node (the links that the "
               "ring's partition power no longer uses are removed), within reclaim_age",
    "finish": "finish_increase_partition_power, write, push (replicators resume)",
}


def check_object_ring(name: str) -> None:
    """Refuse an account or container ring with swift's reason."""
    if not name.startswith("object"):
        raise Refused(f"{name}: {OBJECT_ONLY}; nothing was changed")


def policy_index(ring: str) -> int:
    """object -> 0, object-N -> N (the relinker's --policy)."""
    return 0 if ring == "object" else int(ring.split("-", 1)[1])


def stage(builder) -> str:
    """'none', 'prepared' or 'switched' (see the module docstring)."""
    npp = builder.next_part_power
    if not npp:
        return "none"
    if npp == builder.part_power + 1:
        return "prepared"
    if npp == builder.part_power:
        return "switched"
    raise Refused(f"next_part_power {npp} with part_power {builder.part_power}: not a "
                  f"state swift's procedure produces; inspect the builder by hand")


def common_stage(builders: dict) -> str:
    """The one stage all the rings of the operation are in; refuse a mix (they are
    relinked together: the relinker works on every policy in the same step at once)."""
    stages = {name: stage(b) for name, b in builders.items()}
    if len(set(stages.values())) > 1:
        what = ", ".join(f"{n} {s}" for n, s in sorted(stages.items()))
        raise Refused(f"the rings are at different points of a partition-power increase "
                      f"({what}): run the operation for one group at a time "
                      f"(`ringmgr increase-part-power RING`)")
    return next(iter(stages.values()))


@dataclass
class Position:
    """Where the operation stands: the next phase to run (None: complete), the phases
    list in use, and why (for the operator)."""

    next: str | None
    phases: tuple[str, ...]
    why: str
    cancelled: bool = False

    @property
    def complete(self) -> bool:
        return self.next is None


def next_phase(stage_now: str, done: set[str], *, cancel: bool = False,
               start_power: int | None = None, power_now: int | None = None) -> Position:
    """The next phase from the rings' stage and the phases the journal records done.

    ``start_power`` (journal) and ``power_now`` (builder) tell a cancelled run from an
    increased one in stage 'switched'.  ``cancel``: the operator asked for --cancel."""
    cancelled = "cancel" in done or (stage_now == "switched" and start_power is not None
                                     and power_now == start_power)
    phases = CANCEL_PHASES if (cancel or cancelled) else PHASES
    if stage_now == "none":
        if "finish" in done:
            return Position(None, phases, "finished", cancelled)
        if cancel:
            raise Refused("nothing to cancel: no partition-power increase is in progress "
                          "(next_part_power is not set)")
        if "cleanup" in done and done & {"increase", "cancel"}:
            # killed after the finish call was written, before it was pushed
            return Position("finish", phases, "finished in the builders; the finished "
                            "ring still has to reach every node", cancelled)
        if done & {"prepare", "relink", "increase", "cancel", "cleanup"}:
            raise Refused("the journal records phases done, but next_part_power is not set "
                          "in the builders: the rings were changed outside this operation "
                          "(finished, or rolled back?); inspect them, then move the journal "
                          "away to start afresh")
        if "precheck" not in done:
            return Position("precheck", phases, "not started")
        return Position("prepare", phases, "precheck passed")
    if stage_now == "prepared":
        why = "the rings are prepared" + ("" if done else " (by swift-ring-builder: "
                                          "resumed from there)")
        if "prepare" not in done:
            return Position("prepare", phases, why + "; the prepared ring still has to "
                            "reach every node")
        if cancel:
            return Position("cancel", phases, "cancel asked before the increase")
        if "relink" not in done:
            return Position("relink", phases, why + "; relink next")
        return Position("increase", phases, "every node relinked")
    # switched: increased (or cancelled)
    if cancel and not cancelled:
        raise Refused("the partition power was already increased: an increase cannot be "
                      "cancelled once made; continue with the cleanup "
                      "(`ringmgr increase-part-power` without --cancel)")
    switch = "cancel" if cancelled else "increase"
    if switch not in done:
        why = ("cancelled" if cancelled else "increased") + (
            "" if done else " (by swift-ring-builder: resumed from there)")
        return Position(switch, phases, f"the rings were {why}; the ring still has to "
                                        f"reach every node", cancelled)
    if "cleanup" not in done:
        return Position("cleanup", phases, f"{switch} pushed; cleanup next", cancelled)
    return Position("finish", phases, "every node cleaned up", cancelled)


def apply_ring_phase(builder, phase: str):
    """A copy of ``builder`` after swift's call for ``phase``, or None when the builder
    is already past it (the call was made earlier: by a killed run or by
    swift-ring-builder).  Refuses a state in which swift's call cannot apply."""
    want = {"prepare": "none", "increase": "prepared", "cancel": "prepared",
            "finish": "switched"}[phase]
    after = {"prepare": "prepared", "increase": "switched", "cancel": "switched",
             "finish": "none"}[phase]
    now = stage(builder)
    if now == after and phase != "finish":
        return None
    if now != want:
        if phase == "finish" and now == "none":
            return None
        raise Refused(f"cannot {phase}: the ring is {now}, not {want}")
    new = copy.deepcopy(builder)
    if not getattr(new, RING_PHASES[phase])():
        raise Refused(f"swift's {RING_PHASES[phase]} refused the ring (part_power "
                      f"{builder.part_power}, next_part_power {builder.next_part_power})")
    return new


def new_partition(part: int, old_power: int, new_power: int) -> tuple[int, ...]:
    """The partitions that partition ``part`` at ``old_power`` becomes at ``new_power``
    (2X and 2X+1 for one more power; itself for the same)."""
    if new_power == old_power:
        return (part,)
    return (2 * part, 2 * part + 1)


def ring_summary(builders: dict) -> dict:
    """Per ring: part_power, next_part_power, version, stage (for status and JSON)."""
    return {n: {"part_power": b.part_power, "next_part_power": b.next_part_power,
                "version": b.version, "stage": stage(b)}
            for n, b in sorted(builders.items())}


def object_rings(names) -> list[str]:
    return [n for n in names if n.startswith("object")]
