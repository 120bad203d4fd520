"""Small real swift rings for the report and risk tests (built in milliseconds)."""

from __future__ import annotations

import copy


def build_ring(part_power=6, replicas=3, nodes=4, disks=2, zones=None, regions=1,
               weights=None, seed=1, min_part_hours=0):
    """A rebalanced RingBuilder: ``nodes`` nodes at 10.0.<region>.<n+1>, ``disks``
    disks each; node n is in zone n % zones + 1 (zones defaults to nodes)."""
    from swift.common.ring import RingBuilder

    zones = zones or nodes
    b = RingBuilder(part_power, replicas, min_part_hours)
    for n in range(nodes):
        for d in range(disks):
            w = 100.0 if weights is None else weights[(n * disks + d) % len(weights)]
            b.add_dev({"region": n % regions + 1, "zone": n % zones + 1,
                       "ip": node_ip(n), "port": 6200, "device": f"sd{chr(98 + d)}",
                       "weight": w})
    b.rebalance(seed=seed)
    return b


def node_ip(n: int) -> str:
    return f"127.0.{n // 250}.{n % 250 + 1}"


def nodes_by_ip(builder) -> dict[str, str]:
    return {d["ip"]: f"s{int(d['ip'].split('.')[-1]):02d}"
            for d in builder.devs if d is not None}


def rows(builder) -> list[list[int]]:
    """The assignment table as plain lists (for brute-force checks)."""
    return [list(r) for r in builder._replica2part2dev]


def brute_moves(before, after) -> int:
    """Brute force: replica slots whose device differs (a slot on one side only counts)."""
    b, a = rows(before), rows(after)
    moved = 0
    for r, row in enumerate(a):
        for p, dev in enumerate(row):
            if r >= len(b) or p >= len(b[r]) or b[r][p] != dev:
                moved += 1
    return moved


def remove_node(builder, ip, seed=2):
    after = copy.deepcopy(builder)
    for dev in after.devs:
        if dev is not None and dev["ip"] == ip:
            after.remove_dev(dev["id"])
    moved, _, _ = after.rebalance(seed=seed)
    return after, moved
