"""Risk without rebalancing: what stopping or losing nodes does to each partition.

Pure numpy over the builders' assignment tables (``_replica2part2dev``): a device
is "down" when its node or the device itself is listed, or when it has weight 0
(weight 0 is how a failed disk is parked, see FACTS).  For every partition we count
the primary replicas still reachable and compare with what swift needs:

- replicated rings: a write needs swift's own ``quorum_size(n)`` = (n + 1) // 2 of
  the n primaries (2 of 3, 2 of 4, 1 of 2), what the proxy itself settles for: the
  default (``quorum="swift"``).  ``quorum="majority"`` judges by n // 2 + 1 instead,
  stricter for even n (3 of 4, 2 of 2); the counts under swift's number are always
  reported too.  A read needs one;
- erasure-coded rings: a write needs (ec_ndata + 1) x duplication factor fragments
  (``ECStoragePolicy.quorum``, stricter than ec_ndata), a read needs ec_ndata
  distinct fragment indexes.

Handoffs are not counted: they keep writes going but hold no existing data, so a
partition below quorum on its primaries is what an operator must not cause.
At part power 20 with three replicas this is a few array lookups over three
million entries: tens of milliseconds.
"""

from __future__ import annotations

from typing import Iterable

from ringmgr.rings.policies import Policy, policy_for_ring
from ringmgr.rings.report import replica_rows

__all__ = ["DownSet", "down_mask", "reachable", "ok_to_stop", "failure_impact",
           "render_ok_to_stop", "render_failure_impact"]


class DownSet:
    """What is (or would be) down: whole nodes by ip, single devices by (ip, name),
    servers by (ip, port) (a server that does not answer: every device it serves)."""

    def __init__(self, ips: Iterable[str] = (), devices: Iterable[tuple[str, str]] = (),
                 weight_zero: bool = True, servers: Iterable[tuple[str, int]] = ()):
        self.ips = frozenset(ips)
        self.devices = frozenset(devices)
        self.weight_zero = weight_zero
        self.servers = frozenset(servers)

    @classmethod
    def parse(cls, items: Iterable, weight_zero: bool = True) -> "DownSet":
        """From a mix of ``"ip"`` and ``("ip", "device")`` items."""
        ips, devs = set(), set()
        for item in items:
            if isinstance(item, tuple):
                devs.add(item)
            else:
                ips.add(item)
        return cls(ips, devs, weight_zero)

    def union(self, ips: Iterable[str] = (), devices: Iterable[tuple[str, str]] = (),
              servers: Iterable[tuple[str, int]] = ()) -> "DownSet":
        return DownSet(self.ips | set(ips), self.devices | set(devices), self.weight_zero,
                       self.servers | set(servers))

    def why(self, dev) -> str | None:
        if dev is None:
            return "no device"
        if dev["ip"] in self.ips:
            return "node down"
        if (dev["ip"], dev["device"]) in self.devices:
            return "device down"
        if (dev["ip"], dev.get("port")) in self.servers:
            return "server not answering"
        if self.weight_zero and not dev.get("weight"):
            return "weight 0"
        return None


def down_mask(builder, down: DownSet):
    """Boolean array by device id: True where that device is down (or absent)."""
    import numpy as np

    mask = np.ones(len(builder.devs), dtype=bool)
    for i, dev in enumerate(builder.devs):
        mask[i] = down.why(dev) is not None
    return mask


def reachable(builder, down: DownSet, policy: Policy | None = None):
    """Per partition: (replicas, reachable replicas, readable units).

    ``readable units`` is the number of reachable replicas for a replicated ring,
    the number of distinct reachable fragment indexes for an EC ring.
    """
    import numpy as np

    mask = down_mask(builder, down)
    size = len(mask)
    rows = replica_rows(builder)
    parts = builder.parts
    nrep = np.zeros(parts, dtype=np.int32)
    up = np.zeros(parts, dtype=np.int32)
    up_rows = []
    for r, row in enumerate(rows):
        ok = np.zeros(len(row), dtype=bool)
        valid = row < size
        ok[valid] = ~mask[row[valid]]
        nrep[:len(row)] += 1
        # a device holding two replicas of a partition (a ring with fewer devices than
        # replicas) is one copy, not two: count each reachable device once
        distinct = ok.copy()
        for prev in rows[:r]:
            n = min(len(row), len(prev))
            distinct[:n] &= row[:n] != prev[:n]
        up[:len(row)] += distinct
        up_rows.append(ok)
    units = up
    if policy is not None and policy.is_ec and policy.unique_fragments:
        u = policy.unique_fragments
        if len(rows) % u == 0 and len(rows) > u:
            frag = np.zeros((u, parts), dtype=bool)
            for r, ok in enumerate(up_rows):
                frag[r % u, :len(ok)] |= ok
            units = frag.sum(axis=0).astype(np.int32)
    return nrep, up, units


QUORUM_RULES = ("majority", "swift")


def _quorum_array(policy: Policy, nrep, rule: str = "swift"):
    """Per partition, the reachable primaries a write needs under ``rule``."""
    import numpy as np

    if policy.is_ec:
        return np.full(nrep.shape, policy.write_quorum(int(nrep.max(initial=0))),
                       dtype=np.int32)
    if rule == "swift":
        return (nrep + 1) // 2          # swift.common.utils.quorum_size
    return nrep // 2 + 1                # majority: never below swift's, above it for even n


def _dev_label(dev, nodes_by_ip) -> str:
    return f"{nodes_by_ip.get(dev['ip'], dev['ip'])}/{dev['device']}"


def _shortfall(builder, policy, down: DownSet, rule: str = "swift"):
    """(replicas, reachable, readable units, quorum, short of write quorum, unreadable,
    short of swift's own quorum) per partition."""
    nrep, up, units = reachable(builder, down, policy)
    quorum = _quorum_array(policy, nrep, rule)
    placed = nrep > 0  # a never-rebalanced ring has partitions with no replica yet
    short_swift = placed & (up < _quorum_array(policy, nrep, "swift"))
    return (nrep, up, units, quorum, placed & (up < quorum),
            placed & (units < policy.read_minimum()), short_swift)


def _check_rule(rule: str) -> str:
    if rule not in QUORUM_RULES:
        raise ValueError(f"quorum rule {rule!r}: one of {', '.join(QUORUM_RULES)}")
    return rule


def ok_to_stop(builders: dict, policies: dict[str, Policy], stop_ips: Iterable[str],
               down: DownSet | Iterable = (), *, nodes_by_ip: dict[str, str] | None = None,
               worst: int = 10, quorum: str = "swift") -> dict:
    """Would stopping ``stop_ips`` (on top of ``down``) leave any partition of any
    ring below its write quorum, or with nothing to read from?

    Returns ``{"ok": bool, "rings": {ring: {...}}}``; per ring the counts with the
    stop and without it (``already_*``: what is short before anyone stops
    anything), and the ``worst`` partitions (fewest replicas to spare first).
    ``quorum`` picks the replicated write quorum the verdict uses ("swift": swift's
    quorum_size, the default; "majority": n // 2 + 1); the counts under swift's own
    number are always reported too (``parts_below_swift_quorum``).
    """
    import numpy as np

    rule = _check_rule(quorum)
    nodes_by_ip = nodes_by_ip or {}
    if not isinstance(down, DownSet):
        down = DownSet.parse(down)
    stop_ips = set(stop_ips)
    after_stop = down.union(stop_ips)
    rings: dict[str, dict] = {}
    for ring, builder in builders.items():
        policy = policy_for_ring(policies, ring)
        _, _, _, _, a_w, a_r, _ = _shortfall(builder, policy, down, rule)
        nrep, up, units, q, short_w, short_r, short_s = _shortfall(builder, policy,
                                                                   after_stop, rule)
        swift_q = _quorum_array(policy, nrep, "swift")
        spare = np.minimum(up - q, units - policy.read_minimum())
        bad = np.flatnonzero(short_w | short_r)
        order = bad[np.lexsort((bad, spare[bad]))][:worst]
        table = builder._replica2part2dev
        worst_parts = []
        for p in order.tolist():
            devs = [builder.devs[r[p]] for r in table if p < len(r)]
            worst_parts.append({
                "partition": p,
                "replicas": int(nrep[p]),
                "reachable": int(up[p]),
                "write_quorum": int(q[p]),
                "write_quorum_swift": int(swift_q[p]),
                "readable": bool(not short_r[p]),
                "down": [f"{_dev_label(d, nodes_by_ip)} ({down.why(d) or 'stopped'})"
                         for d in devs if after_stop.why(d) is not None],
            })
        rings[ring] = {
            "policy": policy.describe(),
            "replicas": float(builder.replicas),
            "parts": builder.parts,
            "quorum_rule": "ec" if policy.is_ec else rule,
            "write_quorum": _quorum_text(policy, builder, rule),
            "write_quorum_swift": _quorum_text(policy, builder, "swift"),
            "write_quorum_majority": _quorum_text(policy, builder, "majority"),
            "read_minimum": policy.read_minimum(),
            "parts_below_write_quorum": int(short_w.sum()),
            "parts_below_swift_quorum": int(short_s.sum()),
            "parts_unreadable": int(short_r.sum()),
            "already_below_write_quorum": int(a_w.sum()),
            "already_unreadable": int(a_r.sum()),
            "ok": not bool(bad.size),
            "weight_zero_devices": sum(1 for d in builder.devs
                                       if d is not None and not d.get("weight")),
            "worst": worst_parts,
        }
    return {"ok": all(r["ok"] for r in rings.values()),
            "stop": sorted(stop_ips),
            "down": sorted(down.ips) + sorted(f"{ip}/{dev}" for ip, dev in down.devices),
            "weight_zero_is_down": down.weight_zero,
            "quorum_rule": rule,
            "rings": rings}


def _quorum_text(policy: Policy, builder, rule: str = "swift") -> str:
    """'2 of 3'; with fractional replicas both partition kinds: '1 of 2 / 2 of 3'."""
    if policy.is_ec:
        return str(policy.write_quorum(0))

    def fn(n):
        return policy.write_quorum(n, rule)

    n = len(builder._replica2part2dev or [])
    lo = int(builder.replicas)
    if lo != n:
        return f"{fn(lo)} of {lo} / {fn(n)} of {n}"
    return f"{fn(n)} of {n}"


def failure_impact(builders: dict, fail_ips: Iterable[str],
                   policies: dict[str, Policy] | None = None,
                   down: DownSet | Iterable = (), quorum: str = "swift") -> dict:
    """If ``fail_ips`` failed together: per ring, how many partitions lose 0, 1, 2,
    ... of their replicas (``lost``: a histogram keyed by the count lost), and how
    many would be below write quorum (``quorum`` rule as in ``ok_to_stop``, and
    swift's own), unreadable, or lose every replica."""
    import numpy as np

    rule = _check_rule(quorum)
    policies = policies or {}
    if not isinstance(down, DownSet):
        down = DownSet.parse(down, weight_zero=False)
    failed = down.union(fail_ips)
    rings: dict[str, dict] = {}
    for ring, builder in builders.items():
        policy = policy_for_ring(policies, ring)
        nrep, up, units, _, short_w, short_r, short_s = _shortfall(builder, policy,
                                                                   failed, rule)
        lost = nrep - up
        hist = np.bincount(lost, minlength=int(nrep.max(initial=0)) + 1)
        rings[ring] = {
            "policy": policy.describe(),
            "replicas": float(builder.replicas),
            "parts": builder.parts,
            "lost": {str(k): int(v) for k, v in enumerate(hist.tolist())},
            "parts_losing_all": int(((up == 0) & (nrep > 0)).sum()),
            "write_quorum": _quorum_text(policy, builder, rule),
            "write_quorum_swift": _quorum_text(policy, builder, "swift"),
            "parts_below_write_quorum": int(short_w.sum()),
            "parts_below_swift_quorum": int(short_s.sum()),
            "parts_unreadable": int(short_r.sum()),
            "replicas_lost": int(lost.sum()),
            "replicas_lost_pct": round(100.0 * float(lost.sum()) / max(1, int(nrep.sum())), 4),
        }
    return {"fail": sorted(set(fail_ips)), "quorum_rule": rule, "rings": rings}


# -- text ----------------------------------------------------------------------

def render_ok_to_stop(result: dict, names: Iterable[str] = ()) -> str:
    who = ", ".join(names) or ", ".join(result["stop"])
    lines = [f"live: {line}" for line in (result.get("live") or {}).get("notes", [])]
    if result["down"]:
        lines.append(f"already down: {', '.join(result['down'])}")
    zero = sum(r.get("weight_zero_devices", 0) for r in result["rings"].values())
    if zero and result.get("weight_zero_is_down"):
        lines.append(f"{zero} devices at weight 0 count as down (--weight-zero-up: "
                     f"count them as up)")
    for ring, r in result["rings"].items():
        q = r["write_quorum"]
        if r.get("quorum_rule") == "majority":
            other, alt = "swift's own", r.get("write_quorum_swift", q)
        else:
            other, alt = "majority", r.get("write_quorum_majority", q)
        if alt != q:
            q = f"{q} ({other}: {alt})"
        head = (f"{ring} ({r['policy']}, write quorum {q}, "
                f"read needs {r['read_minimum']}): ")
        if r["ok"]:
            lines.append(head + "ok")
            continue
        lines.append(head + f"NOT SAFE: {r['parts_below_write_quorum']} partitions below "
                     f"write quorum, {r['parts_unreadable']} with nothing to read from")
        if (r.get("quorum_rule") == "majority"
                and r["parts_below_swift_quorum"] < r["parts_below_write_quorum"]):
            lines.append(f"  of these, {r['parts_below_write_quorum'] - r['parts_below_swift_quorum']}"
                         f" still meet swift's own quorum ({r['write_quorum_swift']}): writes "
                         f"would succeed with fewer than a majority of copies "
                         f"(without --quorum majority, ok-to-stop judges by swift's number)")
        if r["already_below_write_quorum"] or r["already_unreadable"]:
            lines.append(f"  already before stopping: {r['already_below_write_quorum']} "
                         f"below write quorum, {r['already_unreadable']} unreadable")
        for w in r["worst"]:
            lines.append(f"  partition {w['partition']}: {w['reachable']} of {w['replicas']}"
                         f" reachable (quorum {w['write_quorum']}"
                         f"{'' if w['readable'] else ', UNREADABLE'}); down: "
                         f"{', '.join(w['down'])}")
    verdict = ("safe to stop " + who) if result["ok"] else ("do NOT stop " + who)
    lines.append(verdict)
    return "\n".join(lines) + "\n"


def render_failure_impact(result: dict, names: Iterable[str] = ()) -> str:
    who = ", ".join(names) or ", ".join(result["fail"])
    lines = [f"if {who} failed together:"]
    for ring, r in result["rings"].items():
        hist = ", ".join(f"{v} lose {k}" for k, v in r["lost"].items() if int(k) and v)
        lines.append(f"{ring} ({r['policy']}, {r['parts']} partitions): "
                     f"{hist or 'no partition loses a replica'}")
        swift_note = ""
        if r.get("write_quorum_swift", r.get("write_quorum")) != r.get("write_quorum"):
            swift_note = (f" (quorum {r['write_quorum']}; by swift's own "
                          f"{r['write_quorum_swift']}: {r['parts_below_swift_quorum']})")
        lines.append(f"  {r['replicas_lost']} replicas lost ({r['replicas_lost_pct']:.2f}%);"
                     f" below write quorum: {r['parts_below_write_quorum']}{swift_note}; "
                     f"unreadable: {r['parts_unreadable']}; every replica lost: "
                     f"{r['parts_losing_all']}")
    return "\n".join(lines) + "\n"
