"""What-if scenarios: rounds of ring changes on copies of the real builders.

swift-ring-builder-analyzer's idea (rounds of add / remove / set_weight, a report
after each), but starting from the cluster's own builders and naming devices the way
ringmgr does (``node`` or ``node/device``, nodes from ringmgr.toml).  Pure apart from
reading the scenario file; nothing is ever written.  The file format is documented in
docs/simulation.md; examples/demo/scenario.toml is a working example.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from ringmgr.errors import UsageError
from ringmgr.rings.engine import (
    ChangeSet, apply_change, check_weight, node_devs, plan_add_node, plan_remove,
)

ACTIONS = ("add", "remove", "set_weight")
CHANGE_KEYS = {"add", "remove", "set_weight", "weight", "factor", "rings", "ip", "zone",
               "region", "port"}
TOP_KEYS = {"seed", "rebalance", "rings", "pretend_min_part_hours_passed", "round"}
ROUND_KEYS = {"name", "changes"}
SETTLE_MAX = 20


@dataclass
class Change:
    action: str
    node: str
    device: str | None
    opts: dict

    def describe(self) -> str:
        target = self.node + (f"/{self.device}" if self.device else "")
        extra = ""
        if "weight" in self.opts:
            extra = f" weight {self.opts['weight']:g}"
        elif "factor" in self.opts:
            extra = f" at x{self.opts['factor']:g} of its configured weight"
        if self.opts.get("rings"):
            extra += f" (rings: {', '.join(self.opts['rings'])})"
        return f"{self.action.replace('_', '-')} {target}{extra}"


@dataclass
class Round:
    name: str
    changes: list[Change]


@dataclass
class Scenario:
    path: str
    rounds: list[Round]
    seed: int | None = None
    rebalance: str = "once"
    rings: list[str] | None = None
    pretend: bool = True
    extra: dict = field(default_factory=dict)


def load_scenario(path) -> Scenario:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"scenario file {path} does not exist")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"scenario file {path} is unreadable ({e})")
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML ({e})")
    return parse_scenario(data, str(path))


def parse_scenario(data: dict, where: str = "scenario") -> Scenario:
    def bad(msg):
        raise UsageError(f"{where}: {msg}")

    unknown = set(data) - TOP_KEYS
    if unknown:
        bad(f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(TOP_KEYS))})")
    seed = data.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        bad("seed must be a non-negative integer")
    rebalance = data.get("rebalance", "once")
    if rebalance not in ("once", "settle"):
        bad(f"rebalance must be \"once\" or \"settle\", not {rebalance!r}")
    rings = data.get("rings")
    if rings is not None and (not isinstance(rings, list) or
                              not all(isinstance(r, str) for r in rings)):
        bad("rings must be a list of ring names")
    pretend = data.get("pretend_min_part_hours_passed", True)
    if not isinstance(pretend, bool):
        bad("pretend_min_part_hours_passed must be true or false")
    rounds_raw = data.get("round")
    if not isinstance(rounds_raw, list) or not rounds_raw:
        bad("no rounds: add at least one [[round]] with changes = [...]")
    rounds = []
    for i, r in enumerate(rounds_raw, 1):
        if not isinstance(r, dict):
            bad(f"round {i} must be a table")
        unknown = set(r) - ROUND_KEYS
        if unknown:
            bad(f"round {i}: unknown key(s) {', '.join(sorted(unknown))}")
        changes_raw = r.get("changes")
        if not isinstance(changes_raw, list) or not changes_raw:
            bad(f"round {i}: changes must be a non-empty list")
        changes = [_parse_change(c, f"{where}: round {i}, change {j}")
                   for j, c in enumerate(changes_raw, 1)]
        rounds.append(Round(str(r.get("name", f"round {i}")), changes))
    return Scenario(where, rounds, seed, rebalance, rings, pretend)


def _parse_change(c, where) -> Change:
    def bad(msg):
        raise UsageError(f"{where}: {msg}")

    if not isinstance(c, dict):
        bad("a change is a table like { remove = \"s03\" }")
    unknown = set(c) - CHANGE_KEYS
    if unknown:
        bad(f"unknown key(s) {', '.join(sorted(unknown))}")
    actions = [a for a in ACTIONS if a in c]
    if len(actions) != 1:
        bad("give exactly one of add, remove, set_weight (= \"NODE\" or \"NODE/DEV\")")
    action = actions[0]
    target = c[action]
    if not isinstance(target, str) or not target or target.startswith("/"):
        bad(f"{action} = \"NODE\" or \"NODE/DEV\"")
    node, _, dev = target.partition("/")
    opts = {k: v for k, v in c.items() if k != action}
    for k in ("weight", "factor"):
        if k in opts:
            if isinstance(opts[k], bool) or not isinstance(opts[k], (int, float)):
                bad(f"{k} must be a number")
            opts[k] = check_weight(opts[k])
    if action == "set_weight" and ("weight" in opts) == ("factor" in opts):
        bad("set_weight needs weight = W or factor = F (of the configured weight)")
    if action == "remove" and ({"weight", "factor"} & set(opts)):
        bad("remove takes no weight")
    if action == "add" and "weight" in opts and not dev:
        bad("add = \"NODE\" takes factor = F; weight = W needs add = \"NODE/DEV\"")
    if "rings" in opts and (not isinstance(opts["rings"], list) or
                            not all(isinstance(r, str) for r in opts["rings"])):
        bad("rings must be a list of ring names")
    for k in ("zone", "region", "port"):
        if k in opts and (not isinstance(opts[k], int) or isinstance(opts[k], bool)):
            bad(f"{k} must be an integer")
    if "ip" in opts and not isinstance(opts["ip"], str):
        bad("ip must be a string")
    return Change(action, node, dev or None, opts)


# -- running -------------------------------------------------------------------------

def _node(config, change: Change, inline: dict):
    """The config's node, or one described inline (by an add of a node not in the
    config; later changes in the scenario may name it too)."""
    if change.node in config.nodes:
        return config.node(change.node)
    if change.action == "add" and "ip" in change.opts and "zone" in change.opts:
        weight = change.opts.get("weight", 0.0)
        devs = {change.device: weight} if change.device else {}
        node = SimpleNamespace(name=change.node, ip=change.opts["ip"],
                               zone=change.opts["zone"], region=change.opts.get("region", 1),
                               replication_ip=None, devices_for=lambda ring: dict(devs))
        inline[change.node] = node
        return node
    if change.node in inline:
        return inline[change.node]
    return config.node(change.node)  # raises the usual "unknown node" error


def change_set(config, work: dict, change: Change, inline: dict | None = None) -> ChangeSet:
    """The ChangeSet for one scenario change on the current simulated builders."""
    from ringmgr.rings.engine import RingChange

    scope = {r: b for r, b in work.items() if not change.opts.get("rings") or
             r in change.opts["rings"]}
    if change.opts.get("rings"):
        missing = set(change.opts["rings"]) - set(work)
        if missing:
            raise UsageError(f"{change.describe()}: no ring(s) {', '.join(sorted(missing))}")
    node = _node(config, change, {} if inline is None else inline)
    if change.action == "remove":
        return plan_remove(scope, node, change.device)
    if change.action == "add":
        port_for = (lambda ring: change.opts["port"]) if "port" in change.opts \
            else config.cluster.port_for
        if change.device:
            devs = {}
            for ring in scope:
                w = change.opts.get("weight")
                if w is None:
                    conf = node.devices_for(ring)
                    if change.device not in conf:
                        raise UsageError(f"{change.describe()}: {change.node} has no device "
                                         f"{change.device} in the config for {ring}; give "
                                         f"weight = W")
                    w = conf[change.device] * change.opts.get("factor", 1.0)
                devs[ring] = w
            one = SimpleNamespace(name=node.name, ip=node.ip, zone=node.zone,
                                  region=node.region,
                                  replication_ip=getattr(node, "replication_ip", None),
                                  devices_for=lambda ring: {change.device: devs[ring]})
            return plan_add_node(scope, one, port_for)
        return plan_add_node(scope, node, port_for, change.opts.get("factor", 1.0))
    # set_weight
    rings = {}
    for ring, b in scope.items():
        devs = node_devs(b, node.ip, change.device)
        ch = {}
        for d in devs:
            if "weight" in change.opts:
                w = change.opts["weight"]
            else:
                conf = node.devices_for(ring) if hasattr(node, "devices_for") else {}
                if d["device"] not in conf:
                    raise UsageError(f"{change.describe()}: {ring}: {change.node}/"
                                     f"{d['device']} has no configured weight; use weight = W")
                w = conf[d["device"]] * change.opts["factor"]
            ch[d["id"]] = w
        if devs:
            rings[ring] = RingChange(weights=ch)
    if not rings:
        raise UsageError(f"{change.describe()}: no such device in any ring")
    return ChangeSet(change.describe(), rings)


def run_scenario(config, builders: dict, scenario: Scenario, seed: int,
                 progress=None) -> dict:
    """Play every round on copies of ``builders``; return the per-round reports."""
    from ringmgr.rings.report import ring_report

    names = [r for r in builders if scenario.rings is None or r in scenario.rings]
    if scenario.rings:
        missing = set(scenario.rings) - set(builders)
        if missing:
            raise UsageError(f"{scenario.path}: no ring(s) {', '.join(sorted(missing))} in "
                             f"{config.cluster.builder_dir}")
    work = {r: copy.deepcopy(builders[r]) for r in names}
    by_ip = {n.ip: name for name, n in config.nodes.items()}
    used = dict(config.cluster.used_bytes)
    rounds = []
    inline: dict = {}
    for i, rnd in enumerate(scenario.rounds, 1):
        before = {r: copy.deepcopy(b) for r, b in work.items()}
        touched: set[str] = set()
        for j, change in enumerate(rnd.changes, 1):
            try:
                cs = change_set(config, work, change, inline)
            except UsageError as e:
                raise UsageError(f"{scenario.path}: round {i}, change {j}: {e}")
            for ring, rc in cs.rings.items():
                apply_change(work[ring], rc)
                touched.add(ring)
        by_ip.update({n.ip: name for name, n in inline.items()})
        reports = {}
        notes = []
        for ring in names:
            if ring not in touched:
                continue
            if progress:
                progress(f"round {i}: {ring}")
            b = work[ring]
            rebalances, gate_blocked = _rebalance(b, seed + i, scenario)
            if gate_blocked:
                notes.append(f"{ring}: min_part_hours blocked the moves this round")
            rep = ring_report(ring, before[ring], b, 0, by_ip, used.get(ring))
            rep.pop("parts_moved_swift", None)
            rep["rebalances"] = rebalances
            reports[ring] = rep
        rounds.append({"round": i, "name": rnd.name,
                       "changes": [c.describe() for c in rnd.changes],
                       "rings": reports, "notes": notes})
    return {"written": False, "scenario": scenario.path, "seed": seed,
            "rebalance": scenario.rebalance,
            "pretend_min_part_hours_passed": scenario.pretend, "rounds": rounds}


def _rebalance(b, seed: int, scenario: Scenario) -> tuple[int, bool]:
    from swift.common import exceptions

    count = 0
    blocked = False
    try:
        while True:
            if scenario.pretend:
                b.pretend_min_part_hours_passed()
            gate = b.min_part_seconds_left
            parts, _, removed = b.rebalance(seed=seed + count)
            count += 1
            if parts == 0 and not removed and gate > 0:
                blocked = True
            if scenario.rebalance == "once" or parts == 0 or count >= SETTLE_MAX \
                    or not scenario.pretend:
                break
        b.validate()
    except exceptions.RingBuilderError as e:
        raise UsageError(f"swift cannot build a valid ring in this round ({e})")
    return count, blocked


def render_scenario(result: dict) -> str:
    from ringmgr.rings.report import render_text

    lines = [f"scenario {result['scenario']} (seed {result['seed']}, rebalance "
             f"{result['rebalance']}; nothing is written)"]
    for rnd in result["rounds"]:
        lines.append("")
        lines.append(f"== round {rnd['round']}: {rnd['name']}")
        for c in rnd["changes"]:
            lines.append(f"   - {c}")
        for n in rnd["notes"]:
            lines.append(f"   note: {n}")
        if rnd["rings"]:
            text = render_text(rnd["rings"], top=5)
            lines += ["   " + ln if ln else "" for ln in text.rstrip().splitlines()]
    return "\n".join(lines)
