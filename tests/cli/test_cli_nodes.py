"""shutdown-node / rejoin-node: out for days, back with exactly the options it had."""

import json

import pytest
from swift.common.ring import RingBuilder

from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import make_cluster

RINGS = ("account", "container", "object", "object-1")


def devs_of(cluster, ring, ip):
    b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
    return sorted(({k: d[k] for k in ("region", "zone", "ip", "port", "replication_ip",
                                      "replication_port", "device", "weight", "meta")}
                   for d in b.devs if d and d["ip"] == ip), key=lambda d: d["device"])


def test_shutdown_then_rejoin_restores_exact_device_options(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0)
    # options that differ from the config: only the history can restore them
    for ring in RINGS:
        path = str(c.builder_dir / f"{ring}.builder")
        b = RingBuilder.load(path)
        for d in b.devs:
            if d and d["ip"] == "127.0.9.2":
                d["meta"] = "chassis-7"
                d["replication_ip"] = "127.0.10.2"
                d["weight"] = 77.0
        b.save(path)
        b.get_ring().save(str(c.builder_dir / f"{ring}.ring.gz"))
    before = {ring: devs_of(c, ring, "127.0.9.2") for ring in RINGS}
    r = run_cli(c, "--json", "shutdown-node", "s02", "--yes")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["written"] is True
    assert all(devs_of(c, ring, "127.0.9.2") == [] for ring in RINGS)
    r = run_cli(c, "--json", "rejoin-node", "s02", "--yes")
    assert r.exit_code in (0, 1), r.output
    for ring in RINGS:
        assert devs_of(c, ring, "127.0.9.2") == before[ring]
    r = run_cli(c, "rejoin-node", "s02", "--yes")
    assert r.exit_code == 2 and "already" in r.output


def test_shutdown_refused_when_it_would_leave_partitions_short(tmp_path):
    c = make_cluster(tmp_path, nodes=3, zones=3, min_part_hours=0)
    assert run_cli(c, "set-weight", "s01", "0", "--yes").exit_code in (0, 1)
    before = c.checksums()
    r = run_cli(c, "shutdown-node", "s02", "--yes")
    assert r.exit_code == 2
    assert "short of a write quorum" in r.output.strip().splitlines()[-1]
    assert c.checksums() == before


def test_rejoin_without_history_refused(tmp_path):
    c = make_cluster(tmp_path)
    before = c.checksums()
    r = run_cli(c, "rejoin-node", "s03", "--yes")
    assert r.exit_code == 2 and "add-node" in r.output
    assert c.checksums() == before


def test_two_replica_shutdown_allowed_by_swifts_quorum_refused_by_majority(tmp_path):
    """2 replicas, every node up: swift writes with 1 of 2, so stopping one node is safe
    by default; --quorum majority (2 of 2) refuses.  The dry run shows the verdict."""
    c = make_cluster(tmp_path, nodes=3, zones=3, replicas=2, min_part_hours=0)
    before = c.checksums()
    r = run_cli(c, "--json", "shutdown-node", "s02", "--dry-run")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["written"] is False
    assert data["ok_to_stop"]["ok"] is True and data["ok_to_stop"]["quorum_rule"] == "swift"
    text = run_cli(c, "shutdown-node", "s02", "--dry-run").stdout
    assert "write quorum 1 of 2 (majority: 2 of 2)" in text and "safe to stop s02" in text
    assert c.checksums() == before
    for args in (("--dry-run",), ("--yes",)):
        r = run_cli(c, "shutdown-node", "s02", "--quorum", "majority", *args)
        assert r.exit_code == 2, r.output
        assert "do NOT stop s02" in r.output
        assert "short of a write quorum" in r.output.strip().splitlines()[-1]
        assert c.checksums() == before
    # with another node already down, not even swift's quorum holds: refused
    r = run_cli(c, "shutdown-node", "s02", "--down", "s01", "--yes")
    assert r.exit_code == 2 and "short of a write quorum" in r.output.strip().splitlines()[-1]
    assert c.checksums() == before
    r = run_cli(c, "--json", "shutdown-node", "s02", "--yes")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["written"] is True
    assert all(devs_of(c, ring, "127.0.9.2") == [] for ring in RINGS)


def weights(cluster, ip):
    return {ring: {d["device"]: d["weight"] for d in devs_of(cluster, ring, ip)}
            for ring in RINGS}


def customise(cluster, ip, weight):
    """Give the node's devices options the config does not have (only the history can
    restore them): meta, a replication address, a weight."""
    for ring in RINGS:
        path = str(cluster.builder_dir / f"{ring}.builder")
        b = RingBuilder.load(path)
        for d in b.devs:
            if d and d["ip"] == ip:
                d["meta"] = "chassis-7"
                d["replication_ip"] = "127.0.10.2"
                d["weight"] = weight
        b.save(path)
        b.get_ring().save(str(cluster.builder_dir / f"{ring}.ring.gz"))


def drain_completely(cluster, node, *extra):
    for _ in range(40):
        # --force: the final removal's safe-to-destroy cannot reach these made-up hosts
        r = run_cli(cluster, "drain-node", node, "--max-move", "50", "--yes", "--force", *extra)
        if not any(devs_of(cluster, ring, cluster.nodes[node][0]) for ring in RINGS):
            return
        assert r.exit_code in (0, 1), r.output
    raise AssertionError("the drain did not finish")


def test_rejoin_after_drain_restores_the_weights_before_the_drain(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0)
    customise(c, "127.0.9.2", 77.0)
    before = {ring: devs_of(c, ring, "127.0.9.2") for ring in RINGS}
    drain_completely(c, "s02")
    assert all(devs_of(c, ring, "127.0.9.2") == [] for ring in RINGS)
    r = run_cli(c, "--json", "rejoin-node", "s02", "--dry-run")
    assert r.exit_code in (0, 1), r.output
    data = json.loads(r.stdout)
    assert data["weights_from"] == "history"
    assert data["weights"]["object"] == {"sdb": 77.0, "sdc": 77.0}
    assert "the weights before the drain that began with change #1 on " in r.stderr
    assert all(data["rings"][ring]["parts_moved"] > 0 for ring in RINGS)  # not 0 moves
    r = run_cli(c, "rejoin-node", "s02", "--yes")
    assert r.exit_code in (0, 1), r.output
    assert "weights: the weights before the drain that began with change #1" in r.output
    for ring in RINGS:
        assert devs_of(c, ring, "127.0.9.2") == before[ring]
    b = RingBuilder.load(str(c.builder_dir / "object.builder"))
    assert sum(b.devs[d["id"]]["parts"] for d in b.devs
               if d and d["ip"] == "127.0.9.2") > 0


def test_rejoin_with_config_weights_and_its_bad_input(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0)
    customise(c, "127.0.9.2", 77.0)
    drain_completely(c, "s02")
    # the config names sdb only: --config-weights cannot weigh sdc
    cfg = c.config.read_text()
    c.config.write_text(cfg.replace('[nodes.s02]\nip = "127.0.9.2"\nzone = 2\n'
                                    'devices = { sdb = 100.0, sdc = 100.0 }',
                                    '[nodes.s02]\nip = "127.0.9.2"\nzone = 2\n'
                                    'devices = { sdb = 100.0 }'))
    before = c.checksums()
    r = run_cli(c, "rejoin-node", "s02", "--config-weights", "--yes")
    assert r.exit_code == 2
    errors = [ln for ln in r.output.splitlines() if ln.startswith("ringmgr: error:")]
    assert len(errors) == 1 and "nodes.s02.devices has no sdc" in errors[0], r.output
    assert c.checksums() == before
    c.config.write_text(cfg.replace("devices = { sdb = 100.0, sdc = 100.0 }\n\n[nodes.s03]",
                                    "devices = { sdb = 120.0, sdc = 130.0 }\n\n[nodes.s03]"))
    r = run_cli(c, "--json", "rejoin-node", "s02", "--config-weights", "--yes")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["weights_from"] == "config"
    assert weights(c, "127.0.9.2")["object"] == {"sdb": 120.0, "sdc": 130.0}
    assert devs_of(c, "object", "127.0.9.2")[0]["meta"] == "chassis-7"  # the rest as it was


def test_rejoin_after_set_weight_0_and_remove_takes_the_weights_from_the_backup(tmp_path):
    """A drain done by hand (set-weight 0, later remove-node) has no drain record: the
    weights come from the backup taken before the weights went down."""
    c = make_cluster(tmp_path, min_part_hours=0)
    customise(c, "127.0.9.3", 55.0)
    assert run_cli(c, "set-weight", "s03", "20", "--yes").exit_code in (0, 1)
    assert run_cli(c, "set-weight", "s03", "0", "--yes").exit_code in (0, 1)
    assert run_cli(c, "rebalance", "--yes").exit_code in (0, 1)  # touches no weight of s03
    assert run_cli(c, "remove-node", "s03", "--yes").exit_code in (0, 1)
    r = run_cli(c, "rejoin-node", "s03", "--yes")
    assert r.exit_code in (0, 1), r.output
    assert "weights: the weights before change #1 on " in r.output
    assert all(w == 55.0 for ring in RINGS for w in weights(c, "127.0.9.3")[ring].values())


def test_rejoin_refuses_weight_0_it_cannot_explain(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0)
    customise(c, "127.0.9.3", 0.0)  # weight 0 set outside ringmgr: no history, no backup
    assert run_cli(c, "remove-node", "s03", "--yes").exit_code in (0, 1)
    before = c.checksums()
    r = run_cli(c, "rejoin-node", "s03", "--yes")
    assert r.exit_code == 2
    last = r.output.strip().splitlines()[-1]
    assert "were at weight 0 when change #1" in last and "--config-weights" in last
    assert c.checksums() == before


def test_rejoin_max_move_ramps_back_to_the_weights_before_the_drain(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0, part_power=7)
    customise(c, "127.0.9.2", 80.0)
    drain_completely(c, "s02")
    r = run_cli(c, "rejoin-node", "s02", "--max-move", "8", "--yes")
    assert r.exit_code == 1, r.output  # written, further steps due
    assert "ramp up s02 in" in r.output and "fractions of the weights before the drain" \
        in r.output
    first = weights(c, "127.0.9.2")["object"]
    assert set(first) == {"sdb", "sdc"} and all(0 < w < 80.0 for w in first.values())
    assert devs_of(c, "object", "127.0.9.2")[0]["meta"] == "chassis-7"
    for k in range(2, 40):
        r = run_cli(c, "rejoin-node", "s02", "--max-move", "8", "--yes")
        if weights(c, "127.0.9.2")["object"] == {"sdb": 80.0, "sdc": 80.0}:
            break
        assert r.exit_code == 1, r.output
        assert f"step {k} of " in r.output
    else:
        raise AssertionError("the ramp did not reach the weights before the drain")
    assert all(w == 80.0 for ring in RINGS for w in weights(c, "127.0.9.2")[ring].values())


@pytest.mark.parametrize("args, needle", [
    (("rejoin-node", "s02", "--max-move", "0"), "--max-move 0.0 must be a percentage"),
    (("rejoin-node", "s02", "--max-move", "x"), "'x' is not a valid float"),
    (("rejoin-node", "s99"), "unknown node 's99'"),
    (("shutdown-node", "s02", "--down", "s99"), "unknown node 's99'"),
    (("shutdown-node", "s02", "--down", "s01/sdz"), "no ring has a device 'sdz'"),
    (("shutdown-node", "s02", "--quorum", "half"), "'half' is not one of"),
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(tmp_path, args, needle):
    c = make_cluster(tmp_path, min_part_hours=0)
    assert run_cli(c, "remove-node", "s02", "--yes").exit_code in (0, 1)
    before = c.checksums()
    r = run_cli(c, *args, "--yes")
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("ringmgr: error:")]
    assert len(errors) == 1 and needle in errors[0], r.output
    assert "Traceback" not in r.output
    assert c.checksums() == before
