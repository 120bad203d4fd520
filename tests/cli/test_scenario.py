"""ringmgr simulate SCENARIO.toml: rounds on copies of the real builders."""

import copy
import json
import shutil
from pathlib import Path

import pytest
from swift.common.ring import RingBuilder

from tests.helpers.checksums import checksums
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import make_cluster

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


@pytest.fixture(autouse=True)
def audit_log(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))


@pytest.fixture
def demo(tmp_path):
    d = tmp_path / "demo"
    shutil.copytree(DEMO, d, ignore=shutil.ignore_patterns("backups", ".ringmgr"))
    return d


def test_example_scenario_runs_round_by_round_and_writes_nothing(demo):
    before = checksums(demo / "rings")
    r = run_cli(demo / "ringmgr.toml", "--json", "simulate", str(demo / "scenario.toml"))
    assert r.exit_code == 0, r.output
    assert checksums(demo / "rings") == before
    data = json.loads(r.stdout)
    assert data["written"] is False and data["seed"] == 20240601
    rounds = data["rounds"]
    assert [len(x["rings"]) for x in rounds] == [4, 4, 4, 2]
    assert set(rounds[3]["rings"]) == {"object", "object-1"}
    s07 = [d for d in rounds[0]["rings"]["object"]["devices"] if d["node"] == "s07"]
    assert len(s07) == 3 and all(d["status"] == "added" and d["parts_after"] > 0 for d in s07)
    assert all(d["weight_after"] == 1000.0 for d in s07)
    gone = [d for d in rounds[2]["rings"]["object"]["devices"]
            if d["node"] == "s02" and d["device"] == "sdc"]
    assert gone and gone[0]["status"] == "removed"
    # the text view names every round
    r = run_cli(demo / "ringmgr.toml", "simulate", str(demo / "scenario.toml"))
    assert "== round 4: a new object-only disk on s07" in r.output


def test_rounds_match_a_hand_replay_on_swift(demo):
    """Round 1 and 2 of the example, replayed directly with RingBuilder."""
    r = run_cli(demo / "ringmgr.toml", "--json", "simulate", str(demo / "scenario.toml"))
    data = json.loads(r.stdout)
    b = RingBuilder.load(str(demo / "rings" / "object.builder"))
    b.pretend_min_part_hours_passed()
    for dev in ("sdb", "sdc", "sdd"):
        b.add_dev({"region": 1, "zone": 1, "ip": "10.0.0.7", "port": 6200,
                   "replication_ip": "10.0.0.7", "replication_port": 6200, "device": dev,
                   "weight": 1000.0, "meta": ""})
    before = copy.deepcopy(b)
    b.rebalance(seed=20240601 + 1)
    moved = sum(1 for r_b, r_a in zip(before._replica2part2dev, b._replica2part2dev)
                for x, y in zip(r_b, r_a) if x != y)
    assert data["rounds"][0]["rings"]["object"]["parts_moved"] == moved
    before = copy.deepcopy(b)
    b.pretend_min_part_hours_passed()
    for d in b.devs:
        if d["ip"] == "10.0.0.7":
            b.set_dev_weight(d["id"], 2000.0)
        if d["ip"] == "10.0.0.2" and d["device"] == "sdc":
            b.set_dev_weight(d["id"], 0.0)
    b.rebalance(seed=20240601 + 2)
    moved = sum(1 for r_b, r_a in zip(before._replica2part2dev, b._replica2part2dev)
                for x, y in zip(r_b, r_a) if x != y)
    assert data["rounds"][1]["rings"]["object"]["parts_moved"] == moved


def test_settle_rebalances_until_nothing_moves(tmp_path):
    c = make_cluster(tmp_path / "c")
    sc = tmp_path / "s.toml"
    sc.write_text('seed = 3\nrebalance = "settle"\n[[round]]\n'
                  'changes = [{ remove = "s01" }, { remove = "s02" }]\n')
    r = run_cli(c.config, "--json", "simulate", str(sc))
    assert r.exit_code == 0, r.output
    rings = json.loads(r.stdout)["rounds"][0]["rings"]
    assert rings and all(v["rebalances"] >= 2 for v in rings.values())


@pytest.mark.parametrize("text, needle", [
    ("[[round]]\nchanges = [{ remove = \"s99\" }]\n", "s99"),
    ("[[round]]\nchanges = [{ drop = \"s01\" }]\n", "drop"),
    ("[[round]]\nchanges = [{ set_weight = \"s01\" }]\n", "weight = W or factor"),
    ("[[round]]\nchanges = [{ set_weight = \"s01\", weight = -1 }]\n", "non-negative"),
    ("colour = 1\n[[round]]\nchanges = [{ remove = \"s01\" }]\n", "colour"),
    ("seed = 1\n", "no rounds"),
    ("[[round]\n", "not valid TOML"),
    ("rebalance = \"twice\"\n[[round]]\nchanges = [{ remove = \"s01\" }]\n", "rebalance"),
    ("[[round]]\nchanges = [{ remove = \"s01\", rings = [\"object-7\"] }]\n", "object-7"),
    ("[[round]]\nchanges = [{ add = \"s01\" }]\n", "already in the ring"),
])
def test_bad_scenarios_are_exit_2_one_line(tmp_path, text, needle):
    c = make_cluster(tmp_path / "c")
    sc = tmp_path / "s.toml"
    sc.write_text(text)
    before = checksums(c.builder_dir)
    r = run_cli(c.config, "simulate", str(sc))
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("ringmgr: error:") and needle in lines[-1], r.output
    assert "Traceback" not in r.output
    assert checksums(c.builder_dir) == before


def test_inline_node_can_be_added_then_reweighted(tmp_path):
    c = make_cluster(tmp_path / "c")
    sc = tmp_path / "s.toml"
    sc.write_text('seed = 1\nrings = ["object"]\n[[round]]\nchanges = [\n'
                  '{ add = "s20/sdb", weight = 100, ip = "127.0.9.20", zone = 2 },\n'
                  '{ set_weight = "s20/sdb", weight = 50 },\n]\n')
    r = run_cli(c.config, "--json", "simulate", str(sc))
    assert r.exit_code == 0, r.output
    rings = json.loads(r.stdout)["rounds"][0]["rings"]
    assert list(rings) == ["object"]
    new = [d for d in rings["object"]["devices"] if d["status"] == "added"]
    assert [(d["node"], d["device"], d["weight_after"]) for d in new] == [("s20", "sdb", 50.0)]
    assert new[0]["parts_after"] > 0


def test_missing_scenario_file_is_exit_2(tmp_path):
    c = make_cluster(tmp_path / "c")
    before = checksums(c.builder_dir)
    r = run_cli(c.config, "simulate", str(tmp_path / "nope.toml"))
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"ringmgr: error: scenario file {tmp_path / 'nope.toml'} does not exist"]
    assert checksums(c.builder_dir) == before
