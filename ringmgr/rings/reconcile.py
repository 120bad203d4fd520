"""The config as the desired state of one ring: which devices the builder must gain,
lose, or change, matched the way an operator means it.

A configured device is matched to a builder device by ip, port and name; failing
that by ip and name (a port change: ``set_info``, not a new device); failing that,
for a node with ``previous_ip``, by its old ip and name (renumbering: ``set_info``,
never a drain plus an add).  What is left over in the builder is not in the config:
it is drained (weight to 0), emptied, then removed, never dropped.

Pure: a config and a RingBuilder in, a ``RingDiff`` out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ringmgr.rings.changes import INFO_FIELDS
from ringmgr.rings.desired import config_devices
from ringmgr.rings.engine import live_devs

SETTINGS = ("replicas", "overload", "min_part_hours")


@dataclass
class Difference:
    """One difference between the config and a ring (a row of ``ringmgr plan``)."""

    ring: str
    kind: str            # add, drain, remove, empty, weight, zone, region, info, setting,
                         # part_power
    node: str | None = None
    device: str | None = None
    dev_id: int | None = None
    field: str | None = None
    have: object = None
    want: object = None

    def to_json(self) -> dict:
        return {"ring": self.ring, "kind": self.kind, "node": self.node,
                "device": self.device, "id": self.dev_id, "field": self.field,
                "have": self.have, "want": self.want}

    def text(self) -> str:
        who = f"{self.node}/{self.device}" if self.device else (self.node or "")
        dev = f" (id {self.dev_id})" if self.dev_id is not None else ""
        if self.kind == "add":
            return f"{self.ring}: add {who} at weight {self.want:g}"
        if self.kind == "drain":
            return (f"{self.ring}: {who}{dev} is not in the config: drain from weight "
                    f"{self.have:g} to 0, then remove")
        if self.kind == "empty":
            return (f"{self.ring}: {who}{dev} is not in the config: weight 0, "
                    f"{self.have} assignments still to move off, then remove")
        if self.kind == "remove":
            return f"{self.ring}: {who}{dev} is not in the config and empty: remove"
        if self.kind == "part_power":
            return (f"{self.ring}: part_power {self.have} in the ring, {self.want} in the "
                    f"config: `ringmgr increase-part-power {self.ring}` changes it "
                    f"(converge does not)")
        if self.kind == "setting":
            return f"{self.ring}: {self.field} {self.have!r} -> {self.want!r}"
        return f"{self.ring}: {who}{dev}: {self.field} {self.have!r} -> {self.want!r}"


@dataclass
class RingDiff:
    """What ``ring`` needs to become what the config says."""

    ring: str
    info: dict[int, dict] = field(default_factory=dict)      # id -> set_info fields
    targets: dict[int, float] = field(default_factory=dict)  # id -> weight wanted
    adds: list[dict] = field(default_factory=list)           # definitions at full weight
    zones: dict[int, int] = field(default_factory=dict)
    regions: dict[int, int] = field(default_factory=dict)
    removable: list[int] = field(default_factory=list)       # not wanted, weight 0, empty
    emptying: list[int] = field(default_factory=list)        # not wanted, weight 0, parts
    settings: dict[str, float] = field(default_factory=dict)  # replicas/overload/mph
    part_power: tuple[int, int] | None = None                # (have, want)
    differences: list[Difference] = field(default_factory=list)

    @property
    def weight_work(self) -> bool:
        return bool(self.targets or self.adds or self.emptying)

    @property
    def converged(self) -> bool:
        return not self.differences


def _parts(builder) -> dict[int, int]:
    from ringmgr.rings.report import parts_per_device

    if not builder._replica2part2dev:
        return {}
    counts = parts_per_device(builder)
    return {i: int(n) for i, n in enumerate(counts)}


def ring_diff(config, ring: str, builder) -> RingDiff:
    """The differences between the config and ``builder`` for ``ring``."""
    want = config_devices(config, ring)
    have = {d["id"]: d for d in live_devs(builder)}
    by_key = {(d["ip"], d["port"], d["device"]): i for i, d in have.items()}
    node_of_ip = {n.ip: n.name for n in config.nodes.values()}
    previous = {n.name: n.previous_ip for n in config.nodes.values() if n.previous_ip}
    out = RingDiff(ring)
    matched: dict[int, dict] = {}
    unmatched = []
    for key, w in want.items():
        i = by_key.get(key)
        if i is not None:
            matched[i] = w
        else:
            unmatched.append(w)
    taken = set(matched)
    for w in list(unmatched):
        for ip in (w["ip"], previous.get(w["node"])):
            if ip is None:
                continue
            cands = [i for i, d in have.items() if i not in taken and d["ip"] == ip
                     and d["device"] == w["device"]]
            if len(cands) == 1:
                matched[cands[0]] = w
                taken.add(cands[0])
                unmatched.remove(w)
                break
    parts = None
    for i, d in sorted(have.items()):
        w = matched.get(i)
        node = node_of_ip.get(d["ip"]) or d["ip"]
        if w is None:
            if d["weight"] > 0:
                out.targets[i] = 0.0
                out.differences.append(Difference(ring, "drain", node, d["device"], i,
                                                  "weight", float(d["weight"]), 0.0))
                continue
            if parts is None:
                parts = _parts(builder)
            left = parts.get(i, 0)
            if left:
                out.emptying.append(i)
                out.differences.append(Difference(ring, "empty", node, d["device"], i,
                                                  "parts", left, 0))
            else:
                out.removable.append(i)
                out.differences.append(Difference(ring, "remove", node, d["device"], i))
            continue
        node = w["node"]
        info = {f: w[f] for f in INFO_FIELDS if w[f] != d.get(f)}
        if info:
            out.info[i] = info
            for f, v in info.items():
                out.differences.append(Difference(ring, "info", node, d["device"], i, f,
                                                  d.get(f), v))
        for kind, table in (("zone", out.zones), ("region", out.regions)):
            if int(w[kind]) != int(d[kind]):
                table[i] = int(w[kind])
                out.differences.append(Difference(ring, kind, node, d["device"], i, kind,
                                                  int(d[kind]), int(w[kind])))
        if float(w["weight"]) != float(d["weight"]):
            out.targets[i] = float(w["weight"])
            out.differences.append(Difference(ring, "weight", node, d["device"], i,
                                              "weight", float(d["weight"]),
                                              float(w["weight"])))
    for w in unmatched:
        definition = {k: w[k] for k in ("region", "zone", "ip", "port", "replication_ip",
                                        "replication_port", "device", "meta")}
        definition["weight"] = float(w["weight"])
        out.adds.append(definition)
        out.differences.append(Difference(ring, "add", w["node"], w["device"], None,
                                          "weight", None, float(w["weight"])))
    s = config.ring_settings.get(ring)
    if s is not None:
        for f in SETTINGS:
            v = getattr(s, f)
            if v is not None and float(v) != float(getattr(builder, f)):
                out.settings[f] = v
                out.differences.append(Difference(ring, "setting", None, None, None, f,
                                                  getattr(builder, f), v))
        if s.part_power is not None and int(s.part_power) != int(builder.part_power):
            out.part_power = (int(builder.part_power), int(s.part_power))
            out.differences.append(Difference(ring, "part_power", None, None, None,
                                              "part_power", *out.part_power))
    return out


def check_rings_named(config, builders: dict) -> None:
    """A ring the config names ([rings.NAME], [cluster].rings, a node's rings table)
    that has no builder: UsageError (plan and converge compare, they do not create)."""
    from ringmgr.errors import UsageError

    named = {f"rings.{r}": r for r in config.ring_settings}
    named.update({"cluster.rings": r for r in (config.cluster.rings or ())
                  if r not in builders})
    for n in config.nodes.values():
        for r in n.ring_devices:
            named.setdefault(f"nodes.{n.name}.rings.{r}", r)
    for key, r in sorted(named.items()):
        if r not in builders:
            raise UsageError(f"{config.path}: {key} names the ring {r!r}, which has no "
                             f"builder in {config.cluster.builder_dir} (rings: "
                             f"{', '.join(builders) or 'none'}); `ringmgr create {r}` "
                             f"builds it")
