"""rings/engine.py in-process on small real RingBuilders: planning a change set, marking
it, simulating the rebalance and swift-ring-builder's save rule.

The CLI tests run the same paths end to end and test_ring_primitives.py compares the
results with swift-ring-builder on copies; these pin the decisions and messages one by
one (the mutation score, docs/testing.md).
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from swift.common.ring import RingBuilder

from ringmgr.errors import UsageError
from ringmgr.rings import engine
from ringmgr.rings.engine import (
    ChangeSet, Outcome, RingChange, apply_change, config_device, dev_definition,
    dispersion_of, live_devs, node_devs, plan_add_node, plan_rebalance, plan_remove,
    plan_set_weight, simulate, simulate_ring, swift_seed,
)


def builder(nodes=4, disks=2, pp=6, replicas=3, mph=0, zones=None, weight=100.0, seed=1):
    b = RingBuilder(pp, replicas, mph)
    zones = zones or nodes
    for n in range(nodes):
        for d in range(disks):
            b.add_dev({"region": 1, "zone": n % zones + 1, "ip": f"10.0.0.{n + 1}",
                       "port": 6200, "replication_ip": f"10.0.0.{n + 1}",
                       "replication_port": 6200, "device": f"sd{chr(98 + d)}",
                       "weight": weight, "meta": ""})
    b.rebalance(seed=seed)
    return b


def node(n, **kw):
    d = dict(name=f"s{n:02d}", ip=f"10.0.0.{n}", zone=n, region=1, replication_ip=None,
             ring_devices={}, devices={"sdb": 100.0, "sdc": 100.0})
    d.update(kw)
    ns = SimpleNamespace(**d)
    ns.devices_for = lambda ring: ns.ring_devices.get(ring, ns.devices)
    return ns


def test_dev_definition_and_fields():
    dev = {"id": 3, "region": 1, "zone": 2, "ip": "1.2.3.4", "port": 6200,
           "replication_ip": "1.2.3.4", "replication_port": 6200, "device": "sdb",
           "weight": 5.0, "meta": "m", "parts": 9, "parts_wanted": 1}
    assert dev_definition(dev) == {k: dev[k] for k in ("id", *engine.DEV_FIELDS)}
    assert dev_definition(dev, with_id=False) == {k: dev[k] for k in engine.DEV_FIELDS}
    assert engine.DEV_FIELDS == ("region", "zone", "ip", "port", "replication_ip",
                                 "replication_port", "device", "weight", "meta")
    assert dev_definition({"id": 1}) == {"id": 1, **{k: None for k in engine.DEV_FIELDS}}


def test_live_and_node_devs_skip_holes_and_removals():
    b = builder(nodes=3)
    b.remove_dev(0)                        # marked: still in devs until the rebalance
    assert [d["id"] for d in live_devs(b)] == [1, 2, 3, 4, 5]
    assert [d["id"] for d in node_devs(b, "10.0.0.1")] == [1]
    assert [d["id"] for d in node_devs(b, "10.0.0.2", "sdc")] == [3]
    assert node_devs(b, "10.0.0.9") == []
    b.rebalance(seed=1)
    b.devs[0] is None and live_devs(b)     # a hole after the rebalance
    assert [d["id"] for d in live_devs(b)] == [1, 2, 3, 4, 5]


def test_plan_remove():
    bs = {"object": builder(), "account": builder(nodes=3)}
    cs = plan_remove(bs, node(4))
    assert cs.description == "remove s04 from every ring"
    assert {n: c.removes for n, c in cs.rings.items()} == {"object": [6, 7]}
    cs = plan_remove(bs, node(1), "sdc")
    assert cs.description == "remove s01/sdc from every ring"
    assert {n: c.removes for n, c in cs.rings.items()} == {"object": [1], "account": [1]}
    with pytest.raises(UsageError) as e:
        plan_remove(bs, node(9))
    assert str(e.value) == "node s09 (ip 10.0.0.9) has no devices in any ring (object, account)"
    with pytest.raises(UsageError) as e:
        plan_remove(bs, node(1), "sdz")
    assert str(e.value) == ("device sdz of node s01 (ip 10.0.0.1) has no devices in any "
                            "ring (object, account)")


def test_plan_set_weight():
    bs = {"object": builder(), "account": builder(nodes=3)}
    cs = plan_set_weight(bs, node(4), None, 50)
    assert cs.description == "set weight of s04 to 50 in every ring"
    assert {n: c.weights for n, c in cs.rings.items()} == {"object": {6: 50.0, 7: 50.0}}
    cs = plan_set_weight(bs, node(1), "sdb", 0)
    assert cs.description == "set weight of s01/sdb to 0 in every ring"
    assert {n: c.weights for n, c in cs.rings.items()} == {"object": {0: 0.0},
                                                           "account": {0: 0.0}}
    bs["account"].set_dev_weight(0, 7.0)
    cs = plan_set_weight(bs, node(1), "sdb", 7)        # account has it already: left out
    assert set(cs.rings) == {"object"}
    with pytest.raises(UsageError) as e:
        plan_set_weight(bs, node(1), "", 5)
    assert str(e.value) == ("s01/: the device name is empty (give NODE for every device "
                            "of the node, or NODE/DEV for one)")
    with pytest.raises(UsageError) as e:
        plan_set_weight(bs, node(9), None, 5)
    assert str(e.value) == "s09 (ip 10.0.0.9) has no devices in any ring (object, account)"
    with pytest.raises(UsageError) as e:
        plan_set_weight({"object": builder()}, node(2), None, 100)
    assert str(e.value) == "s02 already has weight 100 in every ring: nothing to change"
    with pytest.raises(UsageError) as e:
        plan_set_weight(bs, node(2), None, 5000)
    assert str(e.value).startswith("refused, nothing was changed: weight 5000 is more than ")
    assert "object (median 100, 50x)" in str(e.value)
    cs = plan_set_weight(bs, node(2), None, 5000, force=True)
    assert cs.rings["object"].weights == {2: 5000.0, 3: 5000.0}
    assert plan_set_weight(bs, node(2), None, 1000).rings["object"].weights[2] == 1000.0


def test_plan_add_node_and_its_refusals():
    bs = {"object": builder(nodes=3)}
    n = node(4, devices={"sdb": 100.0, "sdc": 50})
    cs = plan_add_node(bs, n, lambda ring: 6200)
    assert cs.description == "add s04 to every ring"
    assert cs.rings["object"].adds == [
        {"region": 1, "zone": 4, "ip": "10.0.0.4", "port": 6200, "replication_ip": "10.0.0.4",
         "replication_port": 6200, "device": "sdb", "weight": 100.0, "meta": ""},
        {"region": 1, "zone": 4, "ip": "10.0.0.4", "port": 6200, "replication_ip": "10.0.0.4",
         "replication_port": 6200, "device": "sdc", "weight": 50.0, "meta": ""}]
    half = plan_add_node(bs, n, lambda ring: 6200, weight_factor=0.5)
    assert [a["weight"] for a in half.rings["object"].adds] == [50.0, 25.0]
    with pytest.raises(UsageError) as e:
        plan_add_node(bs, node(1), lambda ring: 6200)
    assert str(e.value) == ("object: s01/sdb (10.0.0.1:6200) is already in the ring as "
                            "device id 0")
    plan_add_node(bs, node(1), lambda ring: 6300)        # another port: another device
    with pytest.raises(UsageError) as e:
        plan_add_node(bs, node(5, devices={".x": 1.0}), lambda ring: 6200)
    assert str(e.value).startswith("nodes.s05: device name '.x' must be letters")
    with pytest.raises(UsageError) as e:
        plan_add_node(bs, node(5, devices={}), lambda ring: 6200)
    assert str(e.value) == "node s05 has no devices in the config (nodes.s05.devices)"
    with pytest.raises(UsageError) as e:
        plan_add_node(bs, node(5, devices={"sdb": 0}), lambda ring: 6200)
    assert str(e.value) == ("nodes.s05.devices.sdb = 0: add-node needs a positive weight "
                            "(to add gradually, use --max-move)")
    n6 = node(6, devices={"sdb": 1.0}, ring_devices={"object": {"sdd": -1}})
    with pytest.raises(UsageError) as e:
        plan_add_node(bs, n6, lambda ring: 6200)
    assert str(e.value).startswith("nodes.s06.rings.object.devices.sdd = -1: add-node needs")


def test_config_device_uses_the_nodes_own_fields():
    n = node(3, replication_ip="192.168.0.3")
    assert config_device(n, "object", "sdb", 6200, 7.0) == {
        "region": 1, "zone": 3, "ip": "10.0.0.3", "port": 6200,
        "replication_ip": "192.168.0.3", "replication_port": 6200, "device": "sdb",
        "weight": 7.0, "meta": ""}
    n.device_fields = lambda ring, dev, port: {"ring": ring, "dev": dev, "port": port}
    assert config_device(n, "object", "sdb", 6200, 7.0) == {"ring": "object", "dev": "sdb",
                                                            "port": 6200}
    # a scenario's inline node may have no replication_ip at all
    inline = SimpleNamespace(region=2, zone=1, ip="10.0.0.9")
    assert config_device(inline, "object", "sdb", 6200, 1.0)["replication_ip"] == "10.0.0.9"


def test_plan_add_node_asks_the_node_for_each_rings_device_definition():
    bs = {"object": builder(nodes=3), "account": builder(nodes=3)}
    n = node(4)
    n.device_fields = lambda ring, dev, port: {
        "region": 1, "zone": 4, "ip": n.ip, "port": port, "replication_ip": n.ip,
        "replication_port": port, "device": dev, "weight": None, "meta": f"for {ring}"}
    cs = plan_add_node(bs, n, {"object": 6200, "account": 6202}.get)
    for ring, port in (("object", 6200), ("account", 6202)):
        assert [(a["meta"], a["port"], a["weight"]) for a in cs.rings[ring].adds] == \
            [(f"for {ring}", port, 100.0)] * 2


def test_plan_rebalance_and_seed():
    bs = {"object": builder(), "account": builder()}
    cs = plan_rebalance(bs)
    assert cs.description == "rebalance every ring"
    assert all(c.force is False and c.empty for c in cs.rings.values())
    cs = plan_rebalance(bs, force=True)
    assert cs.description == "rebalance every ring (forced)"
    assert set(cs.rings) == {"object", "account"} and all(c.force for c in cs.rings.values())
    assert swift_seed(None) is None and swift_seed(7) == "7" and swift_seed("7") == "7"


def test_dispersion_of():
    b = builder(nodes=3, zones=3)
    assert dispersion_of(b) == b.dispersion
    empty = RingBuilder(4, 3, 0)
    assert dispersion_of(empty) == empty.dispersion == 0.0
    b2 = builder(nodes=4, zones=2)
    b2.dispersion = None                  # a builder saved by an older swift
    got = dispersion_of(b2)
    assert got is not None and b2.dispersion is None      # computed on a copy
    b3 = builder(nodes=3, zones=3)
    stored = b3.dispersion
    b3.set_dev_zone(0, 2)                 # saved without a rebalance: the figure is stale
    assert b3.devs_changed
    assert dispersion_of(b3) != stored


def test_apply_change_marks_everything_in_order():
    b = builder()
    v = b.version
    apply_change(b, RingChange(removes=[7], weights={0: 10.0},
                               adds=[{"region": 2, "zone": 9, "ip": "10.0.0.9", "port": 6200,
                                      "device": "sdb", "weight": 5.0, "meta": ""}],
                               regions={1: 3}, zones={2: 8},
                               info={3: {"ip": "10.1.1.1", "meta": "x"}},
                               overload=0.25, replicas=2, min_part_hours=4))
    assert [d["id"] for d in b._remove_devs] == [7]
    assert b.devs[0]["weight"] == 10.0
    assert b.devs[8]["ip"] == "10.0.0.9" and b.devs[8]["zone"] == 9
    assert b.devs[1]["region"] == 3 and b.devs[2]["zone"] == 8
    assert (b.devs[3]["ip"], b.devs[3]["meta"]) == ("10.1.1.1", "x")
    assert b._ring is None
    assert (b.overload, b.replicas, b.min_part_hours) == (0.25, 2, 4)
    assert b.version > v
    c = builder()
    apply_change(c, RingChange(info={0: {"port": 7000}}))
    assert c.devs[0]["port"] == 7000 and c.version == builder().version   # no version bump


def test_simulate_ring_removes_and_reports():
    b = builder()
    before = copy.deepcopy(b.devs)
    o = simulate_ring("object", b, RingChange(removes=[6, 7]), seed=3)
    assert b.devs == before                            # the original is untouched
    assert o.ring == "object" and o.before is b and o.after is not b
    assert o.parts_moved > 0 and o.changed and not o.blocked and o.refusal is None
    assert [d["id"] for d in o.removed_devs] == [6, 7] and o.rebalanced
    assert {d["id"] for d in live_devs(o.after)} == set(range(6)) and o.gate_seconds_left == 0
    assert o.balance == pytest.approx(o.after.get_balance())
    same = simulate_ring("object", b, RingChange(removes=[6, 7]), seed=3)
    assert same.after._replica2part2dev == o.after._replica2part2dev     # seeded


def test_simulate_ring_edits_only_are_not_rebalanced():
    b = builder()
    o = simulate_ring("object", b, RingChange(min_part_hours=5), seed=1)
    assert (o.parts_moved, o.changed, o.blocked, o.rebalanced) == (0, True, False, False)
    assert o.after.min_part_hours == 5 and o.removed_devs == []
    o = simulate_ring("object", b, RingChange(info={0: {"ip": "10.9.9.9"}, 1: {"meta": "m"}}),
                      seed=1)
    assert o.edited == (0,) and o.after.devs[0]["ip"] == "10.9.9.9"
    fresh = RingBuilder(4, 3, 0)
    o = simulate_ring("object", fresh, RingChange(min_part_hours=2), seed=1)
    assert o.balance == 0.0


def test_simulate_ring_blocked_by_the_gate():
    b = builder(mph=1)                                  # just rebalanced: the gate is shut
    o = simulate_ring("object", b, RingChange(weights={0: 50.0}), seed=1)
    assert o.blocked and not o.changed and o.parts_moved == 0 and o.gate_seconds_left > 0
    o = simulate_ring("object", b, RingChange(weights={0: 50.0}), seed=1,
                      pretend_gate_open=True)
    assert not o.blocked and o.changed and o.parts_moved > 0 and o.gate_seconds_left == 0
    o = simulate_ring("object", b, RingChange(), seed=1)
    assert o.refusal.startswith("No partitions could be reassigned: the time between "
                                "rebalances must be at least min_part_hours: 1 hours (")
    assert o.refusal.endswith(" remaining)") and not o.changed


def test_simulate_ring_plain_rebalance_save_rule():
    b = builder()
    o = simulate_ring("object", b, RingChange(), seed=1)
    assert o.refusal == ("No partitions could be reassigned: there is no need to do so at "
                         "this time") and not o.changed
    o = simulate_ring("object", b, RingChange(force=True), seed=1)
    assert o.refusal is None and o.changed


def test_swift_save_refusal_cases():
    b = builder()
    f = engine._swift_save_refusal
    assert f(b, b, False, 0, 0, False, 1.0, 1.0, 0.0, 0).startswith("No partitions could")
    assert f(b, b, True, 0, 0, False, 1.0, 1.0, 0.0, 0) is None      # forced
    assert f(b, b, False, 0, 1, False, 1.0, 1.0, b.dispersion, 0) is not None  # removed,
    assert f(b, b, False, 0, 1, True, 1.0, 1.0, 0.0, 0) is None      # devices changed
    assert f(b, b, False, 3, 0, False, 5.0, 3.9, b.dispersion, 0) is None   # balance -1.1
    assert f(b, b, False, 3, 0, False, 5.0, 4.0, b.dispersion, 0) is None   # exactly 1
    cowardly = ("Cowardly refusing to save rebalance as it did not change at least 1% "
                "(add --force to save it anyway)")
    assert f(b, b, False, 3, 0, False, 5.0, 4.5, b.dispersion, 0) == cowardly
    assert f(b, b, False, 3, 0, False, 4.5, 5.0, b.dispersion, 0) == cowardly
    from swift.common.ring.builder import MAX_BALANCE

    assert f(b, b, False, 3, 0, False, MAX_BALANCE, MAX_BALANCE, b.dispersion, 0) is None
    assert f(b, b, False, 3, 0, False, 5.0, 5.0, None, 0) is None          # no dispersion
    d = b.dispersion or 0
    assert f(b, b, False, 3, 0, False, 5.0, 5.0, d + 1, 0) is None
    assert f(b, b, False, 3, 0, False, 5.0, 5.0, d + 0.5, 0) == cowardly
    assert f(b, b, False, 3, 0, False, 5.0, 5.0, d - 0.5, 0) == cowardly
    # the dispersion's change is measured against the new dispersion, not its size
    after = SimpleNamespace(dispersion=5.0)
    assert f(b, after, False, 3, 0, False, 5.0, 5.0, 5.0, 0) == cowardly
    assert f(b, after, False, 3, 0, False, 5.0, 5.0, 3.9, 0) is None
    # the MAX_BALANCE rule needs both at MAX_BALANCE; otherwise the 1% rule holds
    assert f(b, b, False, 3, 0, False, MAX_BALANCE, MAX_BALANCE - 0.5, d, 0) == cowardly
    # one second of the gate left still names the gate
    assert f(b, b, False, 0, 0, False, 1.0, 1.0, 0.0, 1).startswith(
        "No partitions could be reassigned: the time between rebalances must be at least "
        "min_part_hours")


def test_simulate_ring_settings_marks_keep_swifts_result():
    b = builder(nodes=4, zones=4)
    o = simulate_ring("object", b, RingChange(overload=0.1), seed=1)
    # an overload on a balanced ring moves nothing: the mark is saved, the rebalance not
    assert o.changed and o.after.overload == 0.1
    assert o.rebalanced is False and o.note.startswith("No partitions could be reassigned")
    assert o.parts_moved == 0 and o.layout_dispersion is not None
    z = simulate_ring("object", b, RingChange(zones={0: 2, 1: 2}), seed=1)
    assert z.changed and z.after.devs[0]["zone"] == 2


def test_simulate_ring_refuses_what_swift_refuses():
    b = builder(nodes=2, disks=1, replicas=2)
    with pytest.raises(UsageError) as e:
        simulate_ring("object", b, RingChange(removes=[0, 1]), seed=1)
    assert str(e.value).startswith("object: swift cannot build a valid ring after this "
                                   "change (")
    assert str(e.value).endswith("); are enough devices left for 2 replicas?")
    b.remove_dev(0)
    with pytest.raises(UsageError) as e:
        simulate_ring("object", b, RingChange(weights={0: 1.0}), seed=1)
    assert str(e.value).startswith("object: ")


def test_simulate_many_rings_with_progress():
    bs = {"object": builder(), "account": builder()}
    seen = []
    out = simulate(bs, ChangeSet("x", {"object": RingChange(removes=[0]),
                                       "account": RingChange(weights={1: 50.0})}),
                   seed=4, progress=seen.append)
    assert seen == ["object", "account"] and set(out) == {"object", "account"}
    assert out["object"].removed_devs[0]["id"] == 0
    assert out["account"].after.devs[1]["weight"] == 50.0
    assert simulate(bs, ChangeSet("x", {"object": RingChange(removes=[0])}), seed=4)


def test_outcome_dispersion_and_needs_more():
    b = builder(nodes=3, zones=3)
    o = Outcome("object", b, b, 0, 0.0, [], 0, False, False)
    assert o.dispersion == (b.dispersion or 0.0)
    b.dispersion = None
    assert o.dispersion == 0.0
    o.layout_dispersion = 2.5
    assert o.dispersion == 2.5 and o.needs_more()
    o.layout_dispersion = 0.0
    assert not o.needs_more()
    b.overload = 0.01
    o.balance = 5.0
    assert not o.needs_more()                         # at BALANCE_WARN: not above
    o.balance = 5.1
    assert o.needs_more()
    b.overload = 0.06                                 # the overload allows that balance
    assert not o.needs_more()
    assert engine.BALANCE_WARN == 5.0


def test_balance_of_an_empty_builder():
    assert engine._balance_of(RingBuilder(4, 3, 0)) == 0.0
    b = builder()
    assert engine._balance_of(b) == b.get_balance()


def test_simulate_is_simulate_ring_per_ring_with_the_same_seed_gate_and_validation(
        monkeypatch):
    changes = ChangeSet("x", {"object": RingChange(removes=[0]),
                              "account": RingChange(weights={1: 50.0})})
    bs = {"object": builder(), "account": builder()}
    out = simulate(bs, changes, seed=4)
    for name, change in changes.rings.items():
        alone = simulate_ring(name, bs[name], change, 4)
        assert out[name].ring == name
        assert out[name].after._replica2part2dev == alone.after._replica2part2dev
        assert out[name].parts_moved == alone.parts_moved
    # the gate (min_part_hours) holds unless a dry run pretends it open
    gated = {"object": builder(mph=1)}
    change = ChangeSet("w", {"object": RingChange(weights={1: 50.0})})
    assert simulate(gated, change, seed=4)["object"].blocked is True
    assert simulate(gated, change, seed=4, pretend_gate_open=True)["object"].blocked is False
    # swift's validate() runs unless the caller skips it
    calls = []
    real = RingBuilder.validate
    monkeypatch.setattr(RingBuilder, "validate",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    simulate(bs, changes, seed=4)
    assert len(calls) == 2
    calls.clear()
    simulate(bs, changes, seed=4, validate=False)
    assert calls == []


def test_simulate_ring_edits_name_the_devices_whose_address_changed(monkeypatch):
    """An edit of ip, port, replication_ip or replication_port is reported (the rings
    must be pushed for it); a meta edit is not. Edits are validated, not rebalanced."""
    b = builder(mph=1)
    change = RingChange(info={0: {"port": 6300}, 1: {"replication_ip": "10.9.0.1"},
                              2: {"replication_port": 6400}, 3: {"ip": "10.9.0.4"},
                              4: {"meta": "rack 7"}})
    calls = []
    real = RingBuilder.validate
    monkeypatch.setattr(RingBuilder, "validate",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    o = simulate_ring("container", b, change, seed=1)
    assert o.edited == (0, 1, 2, 3) and o.rebalanced is False and o.parts_moved == 0
    assert o.ring == "container" and o.before is b and o.after.devs[0]["port"] == 6300
    assert o.gate_seconds_left == b.min_part_seconds_left > 0
    assert len(calls) == 1                                # validate is the default
