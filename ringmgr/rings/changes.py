"""What a ring change asks for, as data: ``RingChange`` per ring, ``ChangeSet`` across
rings.  Saved in the history and in plans (``to_json``/``from_json``).

A ``RingChange`` holds marks that move data at the next rebalance (remove, set_weight,
add, set_zone, set_region, set_overload, set_replicas) and edits that move nothing
(set_info, set_min_part_hours).  A change with marks is rebalanced; one with edits only
is written as it is (what ``swift-ring-builder X set_info ...; write_ring`` does); an
empty change is a plain rebalance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# set_info: the device fields swift-ring-builder's set_info may change (not the name)
INFO_FIELDS = ("ip", "port", "replication_ip", "replication_port", "meta")


@dataclass
class RingChange:
    removes: list[int] = field(default_factory=list)
    weights: dict[int, float] = field(default_factory=dict)
    adds: list[dict] = field(default_factory=list)
    force: bool = False  # a plain rebalance saved even if it changed almost nothing
    zones: dict[int, int] = field(default_factory=dict)
    regions: dict[int, int] = field(default_factory=dict)
    info: dict[int, dict] = field(default_factory=dict)   # dev id -> {INFO_FIELDS key: value}
    overload: float | None = None
    replicas: float | None = None
    min_part_hours: int | None = None

    @property
    def marks(self) -> bool:
        """Anything that moves data at the next rebalance."""
        return bool(self.removes or self.weights or self.adds or self.zones or self.regions
                    or self.overload is not None or self.replicas is not None)

    @property
    def edits(self) -> bool:
        """Anything that changes the builder without moving data."""
        return bool(self.info) or self.min_part_hours is not None

    @property
    def empty(self) -> bool:
        return not (self.marks or self.edits)

    @property
    def acts(self) -> bool:
        """Whether writing it does anything: marks, edits, or a forced rebalance alone
        (``empty`` is also true of a forced rebalance, which is still a change)."""
        return not self.empty or self.force

    @property
    def needs_rebalance(self) -> bool:
        return self.marks or not self.edits

    @property
    def settings_only(self) -> bool:
        """Marks of the kinds swift-ring-builder saves before its rebalance even when the
        rebalance itself is then not saved (zone, region, overload, replicas)."""
        return self.marks and not (self.removes or self.weights or self.adds)

    @property
    def moves_asked(self) -> bool:
        """Marks that can only take effect by moving data (the min_part_hours gate can
        block them); removals are never blocked."""
        return bool(self.weights or self.adds or self.zones or self.regions
                    or self.overload is not None or self.replicas is not None)

    @property
    def only_removals(self) -> bool:
        return bool(self.removes) and not (self.weights or self.adds)

    def to_json(self) -> dict:
        d = {"remove": self.removes, "set_weight": {str(k): v for k, v in self.weights.items()},
             "add": self.adds}
        if self.force:
            d["force"] = True
        if self.zones:
            d["set_zone"] = {str(k): v for k, v in self.zones.items()}
        if self.regions:
            d["set_region"] = {str(k): v for k, v in self.regions.items()}
        if self.info:
            d["set_info"] = {str(k): dict(v) for k, v in self.info.items()}
        for key in ("overload", "replicas", "min_part_hours"):
            if getattr(self, key) is not None:
                d[f"set_{key}"] = getattr(self, key)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "RingChange":
        mph = d.get("set_min_part_hours")
        return cls(removes=list(d.get("remove", [])),
                   weights={int(k): float(v) for k, v in d.get("set_weight", {}).items()},
                   adds=list(d.get("add", [])), force=bool(d.get("force", False)),
                   zones={int(k): int(v) for k, v in d.get("set_zone", {}).items()},
                   regions={int(k): int(v) for k, v in d.get("set_region", {}).items()},
                   info={int(k): dict(v) for k, v in d.get("set_info", {}).items()},
                   overload=_opt_float(d.get("set_overload")),
                   replicas=_opt_float(d.get("set_replicas")),
                   min_part_hours=None if mph is None else int(mph))


def _opt_float(v):
    return None if v is None else float(v)


@dataclass
class ChangeSet:
    description: str
    rings: dict[str, RingChange]
    info: dict = field(default_factory=dict)   # facts for the history (gradual steps)

    def to_json(self) -> dict:
        d = {"description": self.description,
             "rings": {n: c.to_json() for n, c in self.rings.items()}}
        if self.info:
            d["info"] = self.info
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ChangeSet":
        return cls(d["description"], {n: RingChange.from_json(c) for n, c in d["rings"].items()},
                   dict(d.get("info") or {}))
