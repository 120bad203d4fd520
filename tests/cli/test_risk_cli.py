"""ok-to-stop and failure-impact through the CLI, on real builders in a temp dir."""

from __future__ import annotations

import json

import pytest

from tests.helpers.checksums import checksums
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import make_cluster
from tests.helpers.swift_conf import EC42, with_swift_conf


@pytest.fixture
def cluster_options():
    return {"nodes": 6, "zones": 3, "part_power": 5}


def test_ok_to_stop_one_node_is_safe(cluster):
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "ok-to-stop", "s01", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["ok"] and data["written"] is False and data["node"] == "s01"
    assert set(data["rings"]) == {"account", "container", "object", "object-1"}
    assert checksums(cluster.builder_dir) == before


def test_ok_to_stop_with_zone_mate_down_is_not_safe(cluster):
    # zones: s01,s04 -> 1; s02,s05 -> 2; s03,s06 -> 3. With zone 2 down, s01's
    # partitions would keep one replica of three.
    r = run_cli(cluster, "ok-to-stop", "s01", "--down", "s02", "--down", "s05", "--worst", "3")
    assert r.exit_code == 1, r.output
    assert "NOT SAFE" in r.stdout and "do NOT stop s01" in r.stdout
    assert "partition" in r.stdout and "(node down)" in r.stdout and "(stopped)" in r.stdout
    j = json.loads(run_cli(cluster, "ok-to-stop", "s01", "--down", "s02", "--down", "s05",
                       "--json").stdout)
    assert not j["ok"] and all(len(x["worst"]) <= 10 for x in j["rings"].values())
    assert all(x["parts_below_write_quorum"] > 0 for x in j["rings"].values())
    assert all(x["already_below_write_quorum"] == 0 for x in j["rings"].values())
    assert run_cli(cluster, "ok-to-stop", "s04", "--down", "s01").exit_code == 0  # same zone


def below_majority(cluster, ring, stop, down_dev):
    """Brute force: partitions left with at most half their replicas when node ``stop``
    and device ``down_dev`` ("node/dev") are out, from the builder file."""
    from swift.common.ring import RingBuilder

    b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
    node, dev = down_dev.split("/")
    out = {cluster.nodes[stop][0]}
    count = 0
    for p in range(b.parts):
        devs = [b.devs[row[p]] for row in b._replica2part2dev if p < len(row)]
        up = [d for d in devs if d["ip"] not in out
              and (d["ip"], d["device"]) != (cluster.nodes[node][0], dev)]
        count += 2 * len(up) <= len(devs)
    return count


def test_ok_to_stop_device_down_and_bad_device(cluster):
    # with s02/sdb out, swift's placement leaves every partition a majority; with
    # s03/sdb out, some partitions that s01 also holds do not keep one
    for down, ok in (("s02/sdb", True), ("s03/sdb", False)):
        r = run_cli(cluster, "ok-to-stop", "s01", "--down", down, "--json")
        data = json.loads(r.stdout)
        assert data["down"] == [down] and data["ok"] is ok
        assert r.exit_code == (0 if ok else 1), r.output
        assert set(data["rings"]) == {"account", "container", "object", "object-1"}
        for ring, rep in data["rings"].items():
            expected = below_majority(cluster, ring, "s01", down)
            assert rep["parts_below_write_quorum"] == expected and (expected > 0) is not ok
    before = checksums(cluster.builder_dir)
    bad = run_cli(cluster, "ok-to-stop", "s01", "--down", "s02/sdz")
    assert bad.exit_code == 2
    one_line_error(bad, "--down s02/sdz: no ring has a device 'sdz' on s02")
    assert checksums(cluster.builder_dir) == before


def one_line_error(r, needle):
    errors = [ln for ln in r.output.splitlines() if ln.startswith("ringmgr: error:")]
    assert len(errors) == 1 and needle in errors[0], r.output
    assert r.output.rstrip("\n").endswith(errors[0]) and "Traceback" not in r.output


def test_unknown_node_is_exit_2(cluster):
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "ok-to-stop", "nosuch")
    assert r.exit_code == 2
    one_line_error(r, "unknown node 'nosuch'")
    r = run_cli(cluster, "failure-impact", "s01", "nosuch")
    assert r.exit_code == 2
    one_line_error(r, "unknown node 'nosuch'")
    assert checksums(cluster.builder_dir) == before


def test_failure_impact_histogram(cluster):
    r = run_cli(cluster, "failure-impact", "s01", "s04", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(data["rings"]) == {"account", "container", "object", "object-1"}
    for ring in data["rings"].values():
        assert sum(ring["lost"].values()) == 32
        assert ring["parts_losing_all"] == 0
    text = run_cli(cluster, "failure-impact", "s01", "s04").stdout
    assert text.startswith("if s01, s04 failed together:")


def test_ec_policy_from_swift_conf(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    c = make_cluster(tmp_path, nodes=6, zones=6, disks=1, part_power=4, replicas=6,
                     rings=("object", "object-1"))
    with_swift_conf(c, EC42)
    # two of six nodes down: EC 4+2 loses write quorum (5), replicated 6x keeps it (3)
    r = run_cli(c, "ok-to-stop", "s01", "--down", "s02", "--json")
    assert r.exit_code == 1
    rings = json.loads(r.stdout)["rings"]
    assert rings["object-1"]["policy"].startswith("erasure coded 4+2")
    assert rings["object-1"]["parts_below_write_quorum"] == 16
    assert rings["object"]["ok"]


def test_bad_swift_conf_is_exit_2_and_changes_nothing(cluster):
    with_swift_conf(cluster, "[storage-policy:1]\npolicy_type = erasure_coding\n")
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "ok-to-stop", "s01")
    assert r.exit_code == 2 and "ec_num_data_fragments is required" in r.output
    assert "Traceback" not in r.output
    assert checksums(cluster.builder_dir) == before


def test_ok_to_stop_check_for_other_commands(cluster):
    from ringmgr.rings.risk_check import ok_to_stop_check
    from ringmgr.config import load_config

    config = load_config(cluster.config)
    notes = []
    assert ok_to_stop_check(config, "s01", note=notes.append)["ok"]
    assert any("swift_conf" in n for n in notes)
    r = ok_to_stop_check(config, "s01", ["s02", "s05"])
    assert not r["ok"] and r["down"] == ["s02", "s05"]


def test_even_replica_ring_judged_by_swifts_quorum_unless_quorum_majority(tmp_path,
                                                                           monkeypatch):
    """4 replicas in 4 zones, one node per zone: with one node down, stopping another
    leaves 2 of 4 -- swift's quorum_size (2), the default, but not a majority (3)."""
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    c = make_cluster(tmp_path, nodes=4, zones=4, disks=1, part_power=4, replicas=4,
                     rings=("object",))
    before = checksums(c.builder_dir)
    r = run_cli(c, "ok-to-stop", "s01", "--down", "s02", "--json")
    assert r.exit_code == 0, r.output
    ring = json.loads(r.stdout)["rings"]["object"]
    assert json.loads(r.stdout)["quorum_rule"] == "swift"
    assert (ring["write_quorum"], ring["write_quorum_majority"]) == ("2 of 4", "3 of 4")
    assert (ring["parts_below_write_quorum"], ring["parts_below_swift_quorum"]) == (0, 0)
    strict = run_cli(c, "ok-to-stop", "s01", "--down", "s02", "--quorum", "majority", "--json")
    assert strict.exit_code == 1, strict.output
    ring = json.loads(strict.stdout)["rings"]["object"]
    assert (ring["write_quorum"], ring["write_quorum_swift"]) == ("3 of 4", "2 of 4")
    assert (ring["parts_below_write_quorum"], ring["parts_below_swift_quorum"]) == (16, 0)
    text = run_cli(c, "ok-to-stop", "s01", "--down", "s02", "--quorum", "majority").stdout
    assert "write quorum 3 of 4 (swift's own: 2 of 4)" in text
    assert "without --quorum majority" in text
    fi = json.loads(run_cli(c, "failure-impact", "s01", "s02", "--json").stdout)
    assert fi["rings"]["object"]["parts_below_write_quorum"] == 0
    fi = json.loads(run_cli(c, "failure-impact", "s01", "s02", "--quorum", "majority",
                        "--json").stdout)
    assert fi["rings"]["object"]["parts_below_write_quorum"] == 16
    assert fi["rings"]["object"]["parts_below_swift_quorum"] == 0
    bad = run_cli(c, "ok-to-stop", "s01", "--quorum", "half")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert checksums(c.builder_dir) == before
