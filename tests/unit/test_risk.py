"""ok-to-stop and failure-impact against brute force on small real rings."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.helpers.small_rings import build_ring, node_ip, nodes_by_ip
from ringmgr.rings.policies import Policy, parse_swift_conf, quorum_size
from ringmgr.rings.risk import (DownSet, failure_impact, ok_to_stop, render_failure_impact,
                                render_ok_to_stop)

EC42 = parse_swift_conf("[storage-policy:1]\npolicy_type = erasure_coding\n"
                        "ec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\n"
                        "ec_num_parity_fragments = 2\n")


def brute(builder, policy: Policy, down_ips, down_devs=(), weight_zero=True):
    """Per partition (replicas, reachable, readable units), the slow obvious way."""
    out = []
    for p in range(builder.parts):
        devs = [(r, builder.devs[row[p]]) for r, row in enumerate(builder._replica2part2dev)
                if p < len(row)]
        up = [(r, d) for r, d in devs
              if d["ip"] not in down_ips and (d["ip"], d["device"]) not in down_devs
              and not (weight_zero and d["weight"] == 0)]
        if policy.is_ec:
            units = len({r % policy.unique_fragments for r, _ in up})
        else:
            units = len(up)
        out.append((len(devs), len(up), units))
    return out


def brute_ok(builder, policy, down_ips, down_devs=(), weight_zero=True, rule="majority"):
    """(below write quorum, unreadable); replicated quorum: majority = more than half
    of the partition's replicas (the issue's replicas // 2 + 1), or swift's own
    quorum_size, spelled independently of the code under test."""
    below = unreadable = 0
    for n, up, units in brute(builder, policy, down_ips, down_devs, weight_zero):
        if policy.is_ec:
            q = (policy.ec_ndata + 1) * policy.ec_duplication_factor
        elif rule == "majority":
            q = next(k for k in range(n + 1) if 2 * k > n)
        else:
            q = quorum_size(n)
        below += up < q
        unreadable += units < (policy.ec_ndata if policy.is_ec else 1)
    return below, unreadable


def test_stopping_one_node_of_four_zones_is_safe_two_is_not():
    b = build_ring(part_power=6, replicas=3, nodes=4, disks=2, zones=4)
    rings = {"object": b, "account": copy.deepcopy(b)}
    safe = ok_to_stop(rings, {}, [node_ip(0)])
    assert safe["ok"] and all(r["parts_below_write_quorum"] == 0
                              for r in safe["rings"].values())
    unsafe = ok_to_stop(rings, {}, [node_ip(0)], [node_ip(1)], nodes_by_ip=nodes_by_ip(b),
                        worst=5)
    r = unsafe["rings"]["object"]
    assert not unsafe["ok"] and not r["ok"]
    assert (r["parts_below_write_quorum"], r["parts_unreadable"]) == \
        brute_ok(b, Policy(0, "x"), {node_ip(0), node_ip(1)})
    assert r["already_below_write_quorum"] == 0
    assert len(r["worst"]) == 5 and all(w["reachable"] == 1 for w in r["worst"])
    assert any("s01/" in d and "stopped" in d for d in r["worst"][0]["down"])
    text = render_ok_to_stop(unsafe, ["s01"])
    assert "NOT SAFE" in text and text.rstrip().endswith("do NOT stop s01")


def test_weight_zero_devices_count_as_down_for_ok_to_stop():
    b = build_ring(part_power=5, replicas=3, nodes=3, disks=1, zones=3)
    b.set_dev_weight(1, 0.0)  # parked failed disk, parts still assigned
    r = ok_to_stop({"object": b}, {}, [node_ip(2)])["rings"]["object"]
    assert r["already_below_write_quorum"] == 0
    assert r["parts_below_write_quorum"] == 32 == brute_ok(b, Policy(0, "x"), {node_ip(2)})[0]
    ignoring = ok_to_stop({"object": b}, {}, [node_ip(2)], DownSet(weight_zero=False))
    assert ignoring["ok"]


def test_device_level_down():
    b = build_ring(part_power=6, replicas=3, nodes=3, disks=2, zones=3)
    down = DownSet(devices=[(node_ip(1), "sdb")])
    r = ok_to_stop({"object": b}, {}, [node_ip(0)], down)["rings"]["object"]
    assert (r["parts_below_write_quorum"], r["parts_unreadable"]) == \
        brute_ok(b, Policy(0, "x"), {node_ip(0)}, {(node_ip(1), "sdb")})
    assert 0 < r["parts_below_write_quorum"] < 64


def test_ec_ring_needs_ndata_plus_one_to_write_and_ndata_to_read():
    b = build_ring(part_power=5, replicas=6, nodes=6, disks=1, zones=6)
    policy = EC42["object-1"]
    one = ok_to_stop({"object-1": b}, EC42, [node_ip(0)])["rings"]["object-1"]
    assert one["ok"] and one["write_quorum"] == "5" and one["read_minimum"] == 4
    two = ok_to_stop({"object-1": b}, EC42, [node_ip(0), node_ip(1)])["rings"]["object-1"]
    assert two["parts_below_write_quorum"] == 32 and two["parts_unreadable"] == 0
    three = ok_to_stop({"object-1": b}, EC42, [node_ip(i) for i in range(3)])
    r = three["rings"]["object-1"]
    assert r["parts_unreadable"] == 32 == brute_ok(b, policy, {node_ip(i) for i in range(3)})[1]
    # the same ring treated as replicated would still be readable
    assert ok_to_stop({"object-1": b}, {}, [node_ip(i) for i in range(3)]
                      )["rings"]["object-1"]["parts_unreadable"] == 0


def test_ec_duplication_counts_distinct_fragments():
    conf = parse_swift_conf("[storage-policy:2]\npolicy_type = erasure_coding\n"
                            "ec_type = liberasurecode_rs_vand\nec_num_data_fragments = 2\n"
                            "ec_num_parity_fragments = 1\nec_duplication_factor = 2\n")
    b = build_ring(part_power=4, replicas=6, nodes=6, disks=1, zones=6)
    for ips in ([0], [0, 1], [0, 1, 2], [0, 1, 2, 3]):
        down = {node_ip(i) for i in ips}
        r = ok_to_stop({"object-2": b}, conf, down)["rings"]["object-2"]
        assert (r["parts_below_write_quorum"], r["parts_unreadable"]) == \
            brute_ok(b, conf["object-2"], down)


def test_failure_impact_histogram():
    b = build_ring(part_power=6, replicas=3, nodes=6, disks=2, zones=3)
    fail = [node_ip(0), node_ip(3)]  # both in zone 1
    res = failure_impact({"object": b}, fail)
    r = res["rings"]["object"]
    expected = {}
    for n, up, _ in brute(b, Policy(0, "x"), set(fail), weight_zero=False):
        expected[str(n - up)] = expected.get(str(n - up), 0) + 1
    assert {k: v for k, v in r["lost"].items() if v} == expected
    assert sum(r["lost"].values()) == 64
    assert r["parts_losing_all"] == 0  # zones keep replicas apart
    assert "lose 1" in render_failure_impact(res, ["s01", "s04"])


@st.composite
def ring_and_outage(draw):
    replicas = draw(st.sampled_from([1, 2, 2.5, 3, 3.5, 4]))
    nodes = draw(st.integers(math.ceil(replicas), 6))
    spec = dict(part_power=draw(st.integers(2, 6)), replicas=replicas, nodes=nodes,
                disks=draw(st.integers(1, 3)), zones=draw(st.integers(1, nodes)),
                seed=draw(st.integers(0, 99)))
    stop = draw(st.sets(st.integers(0, nodes - 1), max_size=nodes))
    down = draw(st.sets(st.integers(0, nodes - 1), max_size=2))
    down_dev = draw(st.sets(st.tuples(st.integers(0, nodes - 1), st.integers(0, 2)),
                            max_size=2))
    zero = draw(st.booleans())
    return spec, stop, down, down_dev, zero


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ring_and_outage())
def test_property_risk_equals_brute_force(case):
    spec, stop, down, down_dev, zero = case
    b = build_ring(**spec)
    if zero and spec["nodes"] * spec["disks"] > math.ceil(spec["replicas"]):
        b.set_dev_weight(0, 0.0)
    stop_ips = {node_ip(i) for i in stop}
    down_ips = {node_ip(i) for i in down}
    devs = {(node_ip(n), f"sd{chr(98 + d)}") for n, d in down_dev}
    policy = Policy(0, "x")
    for rule in ("majority", "swift"):
        r = ok_to_stop({"object": b}, {}, stop_ips, DownSet(down_ips, devs),
                       quorum=rule)["rings"]["object"]
        assert (r["parts_below_write_quorum"], r["parts_unreadable"]) == \
            brute_ok(b, policy, stop_ips | down_ips, devs, rule=rule)
        assert (r["already_below_write_quorum"], r["already_unreadable"]) == \
            brute_ok(b, policy, down_ips, devs, rule=rule)
        assert r["parts_below_swift_quorum"] == \
            brute_ok(b, policy, stop_ips | down_ips, devs, rule="swift")[0]
        assert r["ok"] == (r["parts_below_write_quorum"] == r["parts_unreadable"] == 0)
        # the majority is never laxer than swift's own quorum
        assert r["parts_below_write_quorum"] >= r["parts_below_swift_quorum"]

    fi = failure_impact({"object": b}, stop_ips)["rings"]["object"]
    lost = {}
    for n, up, _ in brute(b, policy, stop_ips, weight_zero=False):
        lost[str(n - up)] = lost.get(str(n - up), 0) + 1
    assert {k: v for k, v in fi["lost"].items() if v} == lost
    assert fi["parts_losing_all"] == sum(1 for n, up, _ in brute(
        b, policy, stop_ips, weight_zero=False) if up == 0)


def test_never_rebalanced_ring_has_nothing_at_risk():
    from swift.common.ring import RingBuilder

    b = RingBuilder(4, 3, 1)
    for n in range(3):
        b.add_dev({"region": 1, "zone": n + 1, "ip": node_ip(n), "port": 6200,
                   "device": "sdb", "weight": 1.0})
    r = ok_to_stop({"object": b}, {}, [node_ip(0)])
    assert r["ok"]
    fi = failure_impact({"object": b}, [node_ip(0)])["rings"]["object"]
    assert fi["parts_unreadable"] == fi["replicas_lost"] == fi["parts_losing_all"] == 0


@pytest.mark.parametrize("replicas,majority,swift", [(1, 1, 1), (2, 2, 1), (3, 2, 2),
                                                      (4, 3, 2), (5, 3, 3), (6, 4, 3)])
def test_swifts_quorum_is_the_verdict_and_majority_the_stricter_option(replicas, majority,
                                                                        swift):
    """swift's quorum_size judges by default (what a write needs to succeed);
    --quorum majority (replicas // 2 + 1) is the stricter option; both are reported."""
    from swift.common.utils import quorum_size as swift_quorum_size

    assert swift == swift_quorum_size(replicas)
    b = build_ring(part_power=4, replicas=replicas, nodes=replicas, disks=1)
    # every node holds one replica of every partition: stopping k nodes leaves n - k
    for k in range(replicas):
        stop = {node_ip(i) for i in range(k)}
        res = ok_to_stop({"object": b}, {}, stop)
        r = res["rings"]["object"]
        assert r["write_quorum"] == r["write_quorum_swift"] == f"{swift} of {replicas}"
        assert r["write_quorum_majority"] == f"{majority} of {replicas}"
        assert r["quorum_rule"] == res["quorum_rule"] == "swift"
        assert res["ok"] == (replicas - k >= swift)
        assert r["parts_below_swift_quorum"] == (16 if replicas - k < swift else 0)
        strict = ok_to_stop({"object": b}, {}, stop, quorum="majority")
        assert strict["ok"] == (replicas - k >= majority)
        assert strict["quorum_rule"] == "majority"
        assert strict["rings"]["object"]["write_quorum"] == f"{majority} of {replicas}"


def test_even_replicas_text_names_both_quorums():
    b = build_ring(part_power=4, replicas=4, nodes=4, disks=1)
    stop = {node_ip(0), node_ip(1)}
    lax = ok_to_stop({"object": b}, {}, stop)
    assert lax["ok"]
    assert "write quorum 2 of 4 (majority: 3 of 4)" in render_ok_to_stop(lax, ["s01"])
    res = ok_to_stop({"object": b}, {}, stop, worst=1, quorum="majority")
    assert not res["ok"]
    w = res["rings"]["object"]["worst"][0]
    assert (w["reachable"], w["write_quorum"], w["write_quorum_swift"]) == (2, 3, 2)
    text = render_ok_to_stop(res, ["s01"])
    assert "write quorum 3 of 4 (swift's own: 2 of 4)" in text
    assert "16 still meet swift's own quorum (2 of 4)" in text
    fi = failure_impact({"object": b}, stop, quorum="majority")["rings"]["object"]
    assert (fi["parts_below_write_quorum"], fi["parts_below_swift_quorum"]) == (16, 0)
    assert "by swift's own 2 of 4: 0" in render_failure_impact(
        failure_impact({"object": b}, stop, quorum="majority"))
    assert failure_impact({"object": b}, stop)["rings"]["object"][
        "parts_below_write_quorum"] == 0
    with pytest.raises(ValueError):
        ok_to_stop({"object": b}, {}, set(), quorum="weird")


def test_two_replicas_on_one_device_count_as_one_copy():
    """A partition with two replicas on one device (today's swift refuses to build that,
    but a ring made by an older swift, or edited by hand, can hold it) has one copy
    there, not two: losing the other device leaves it below the write quorum."""
    from swift.common.ring import RingBuilder

    b = RingBuilder(4, 3, 0)
    for i in (1, 2, 3):
        b.add_dev({"region": 1, "zone": i, "ip": f"10.0.0.{i}", "port": 6200,
                   "device": "sdb", "weight": 100.0})
    b.rebalance(seed=1)
    b._replica2part2dev[2][:] = b._replica2part2dev[0]  # replica 3 doubles replica 1
    stop_ip = "10.0.0.2"
    stop_id = next(d["id"] for d in b.devs if d["ip"] == stop_ip)
    rows = b._replica2part2dev
    # brute force: distinct devices still up per partition, against the majority of 3
    short = [p for p in range(b.parts)
             if len({rows[r][p] for r in range(3)} - {stop_id}) < 2]
    assert short  # the doubled partitions whose other copy was on the stopped node
    result = ok_to_stop({"object": b}, {}, [stop_ip])
    assert result["ok"] is False
    assert result["rings"]["object"]["parts_below_write_quorum"] == len(short)
