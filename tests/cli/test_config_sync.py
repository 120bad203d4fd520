"""Config and rings stay one truth: with [converge], every imperative ring command also
updates ringmgr.toml in the same change (comments and layout kept, the edit shown in the
dry run), so `ringmgr plan` says converged right after it; without [converge] the file
is left byte for byte as it was."""

import json

import pytest
from swift.common.ring import RingBuilder

from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import make_cluster

RINGS = ("account", "object")
HEAD = "# the operator's comment\n[converge]   # desired state\nmax_move = 50\n"


@pytest.fixture
def cluster_options():
    return {"nodes": 4, "zones": 2, "rings": RINGS, "extra_nodes": 0, "extra_config": HEAD}


@pytest.fixture
def cluster(cluster, monkeypatch):
    monkeypatch.delenv("RINGMGR_CONFIG", raising=False)
    return cluster


def open_gate(c):
    for r in RINGS:
        p = str(c.builder_dir / f"{r}.builder")
        b = RingBuilder.load(p)
        b.pretend_min_part_hours_passed()
        b.save(p)


def converged(c) -> bool:
    r = run_cli(c, "--json", "plan")
    return r.exit_code == 0 and json.loads(r.stdout)["converged"]


@pytest.mark.parametrize("args, expect", [
    (("set-weight", "s01/sdb", "50"), "devices = { sdb = 50.0, sdc = 100.0 }"),
    (("set-weight", "s01", "70"), "devices = { sdb = 70.0, sdc = 70.0 }"),
    (("set-zone", "s02", "3"), '[nodes.s02]\nip = "127.0.9.2"\nzone = 3\n'),
    (("set-zone", "s02/sdc", "4"), "sdc = {weight = 100.0, zone = 4}"),
    (("set-info", "s03", "--ip", "127.0.8.3", "--replication-ip", "127.0.8.3"),
     '[nodes.s03]\nip = "127.0.8.3"\n'),
    (("set-info", "s03", "--meta", "rack 9"), 'meta = "rack 9"'),
    (("set-overload", "object", "0.1"), "[rings.object]\noverload = 0.1"),
    (("set-min-part-hours", "3"), "[rings.account]\nmin_part_hours = 3"),
    (("remove-device", "s01", "sdc"), "devices = { sdb = 100.0"),
    (("drain-node", "s04", "--max-move", "100"), '[nodes.s04]\nip = "127.0.9.4"\nzone = 2\n'
                                                 'devices = {}'),
])
def test_a_ring_command_updates_the_config_with_it(cluster, args, expect):
    c = cluster
    before = c.config.read_text()
    r = run_cli(c, *args, "--dry-run")
    assert r.exit_code in (0, 1), r.output
    assert "+++ b/ringmgr.toml" in r.stdout and c.config.read_text() == before
    r = run_cli(c, "--json", *args, "--yes")
    doc = json.loads(r.stdout)
    assert doc["written"], doc["message"]
    assert doc["config_update"]["written"] and doc["config_update"]["problem"] is None
    text = c.config.read_text()
    assert expect in text, text
    assert HEAD in text   # comments and layout kept
    assert not any("is still" in w for w in doc["warnings"])
    history = json.loads(run_cli(c, "--json", "history").stdout)["history"]
    assert "+++ b/ringmgr.toml" in history[-1]["change"]["info"]["config"]["diff"]
    open_gate(c)
    if args[0] == "drain-node":   # removed at weight 0 once emptied: converge finishes
        assert run_cli(c, "converge", "--yes").exit_code in (0, 1)
    assert converged(c), run_cli(c, "plan").stdout


def test_without_converge_the_config_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    c = make_cluster(tmp_path, nodes=4, zones=2, rings=RINGS, extra_nodes=0)
    before = c.config.read_bytes()
    r = run_cli(c, "--json", "set-weight", "s01/sdb", "50", "--yes")
    doc = json.loads(r.stdout)
    assert doc["written"] and "config_update" not in doc
    assert c.config.read_bytes() == before
    assert run_cli(c, "plan").exit_code == 1   # the rings now differ from the file


def test_a_failed_commit_leaves_the_config_as_it_was(cluster, monkeypatch):
    c = cluster
    before, rings = c.config.read_text(), c.checksums()
    monkeypatch.setenv("RINGMGR_TEST_FAULT", "txn:begin")
    monkeypatch.setenv("RINGMGR_TEST_FAULT_ERRNO", "EIO")
    r = run_cli(c, "set-weight", "s01/sdb", "50", "--yes")
    assert r.exit_code == 2, r.output
    assert c.config.read_text() == before and c.checksums() == rings


def test_killed_before_the_commit_the_config_is_ahead_and_converge_finishes(cluster):
    """SIGKILL between the config write and the builders' commit: the config says what
    the operator asked for, the rings do not yet; plan shows it, converge does it."""
    import os
    import subprocess
    import sys

    c = cluster
    env = dict(os.environ, RINGMGR_TEST_FAULT="txn:begin", PYTHONPATH=os.getcwd())
    p = subprocess.run([sys.executable, "-c", "from ringmgr.cli.main import main; main()",
                        "--config", str(c.config), "set-weight", "s01/sdb", "50", "--yes"],
                       env=env, capture_output=True, text=True)
    assert p.returncode == -9, p.stderr
    assert "sdb = 50.0" in c.config.read_text()
    doc = json.loads(run_cli(c, "--json", "plan").stdout)
    assert {(d["kind"], d["have"], d["want"]) for d in doc["differences"]} == \
        {("weight", 100.0, 50.0)}
    assert run_cli(c, "resume").exit_code == 0
    open_gate(c)
    assert json.loads(run_cli(c, "--json", "converge", "--yes").stdout)["written"]
    assert converged(c)


def test_a_rollback_says_the_config_still_wants_the_change(cluster):
    c = cluster
    assert run_cli(c, "set-weight", "s01/sdb", "50", "--yes").exit_code in (0, 1)
    r = run_cli(c, "--json", "rollback", "--yes")
    doc = json.loads(r.stdout)
    assert doc["written"] and any("was not rolled back" in w for w in doc["warnings"])
    assert "sdb = 50.0" in c.config.read_text()
    assert run_cli(c, "plan").exit_code == 1   # converge would redo the weight change
