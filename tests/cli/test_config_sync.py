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


def _killed_at(c, point: str):
    import os
    import subprocess
    import sys

    env = dict(os.environ, RINGMGR_TEST_FAULT=point, PYTHONPATH=os.getcwd())
    p = subprocess.run([sys.executable, "-c", "from ringmgr.cli.main import main; main()",
                        "--config", str(c.config), "set-weight", "s01/sdb", "50", "--yes"],
                       env=env, capture_output=True, text=True)
    assert p.returncode == -9, p.stderr


def test_killed_before_the_commit_status_names_the_config_and_resume_puts_it_back(cluster):
    """SIGKILL between the config write and the builders' commit: the config says a
    change the rings do not have.  status names that half-state (exit 1), resume undoes
    it with the uncommitted ring change: config and builders as before the command."""
    c = cluster
    before, rings = c.config.read_text(), c.checksums()
    _killed_at(c, "txn:begin")
    assert "sdb = 50.0" in c.config.read_text()
    doc = json.loads(run_cli(c, "--json", "status").stdout)
    assert doc["exit_code"] == 1 and doc["config_update_interrupted"]["state"] == "ahead"
    assert any("was updated for change #" in p and "`ringmgr resume`" in p
               for p in doc["problems"]), doc["problems"]
    r = run_cli(c, "resume")
    assert r.exit_code == 0 and "put back as it was before change #" in r.output, r.output
    assert c.config.read_text() == before and c.checksums() == rings
    doc = json.loads(run_cli(c, "--json", "status").stdout)
    assert doc["exit_code"] == 0 and "config_update_interrupted" not in doc, doc["problems"]
    assert converged(c)


def test_killed_after_the_commit_resume_finishes_and_the_config_stays(cluster):
    """Killed once the change is committed (journal written, files not yet installed):
    resume installs it, and the config keeps the edit that describes it."""
    c = cluster
    _killed_at(c, "txn:committed")
    assert "sdb = 50.0" in c.config.read_text()
    assert json.loads(run_cli(c, "--json", "status").stdout)["exit_code"] == 1
    r = run_cli(c, "resume")
    assert r.exit_code == 0, r.output
    assert "sdb = 50.0" in c.config.read_text()
    doc = json.loads(run_cli(c, "--json", "status").stdout)
    assert "config_update_interrupted" not in doc and doc["exit_code"] == 0, doc["problems"]
    assert converged(c)


def test_a_config_edited_by_hand_after_the_crash_is_not_overwritten(cluster):
    c = cluster
    _killed_at(c, "txn:begin")
    edited = c.config.read_text() + "# edited by hand\n"
    c.config.write_text(edited)
    r = run_cli(c, "resume")
    assert r.exit_code == 0 and "edited since change #" in r.output, r.output
    assert c.config.read_text() == edited
    assert "config_update_interrupted" not in json.loads(run_cli(c, "--json", "status").stdout)


@pytest.mark.parametrize("args, gone, expect", [
    (("remove-device", "s01", "sdc"), "sdc = 100.0", "devices = { sdb = 100.0"),
    (("set-weight", "s02/sdb", "30"), None, "sdb = 30.0"),
    (("set-overload", "object", "0.2"), None, "[rings.object]\noverload = 0.2"),
])
def test_an_applied_plan_updates_the_config_like_the_command(cluster, tmp_path, args, gone,
                                                              expect):
    c = cluster
    plan = tmp_path / "change.plan"
    before = c.config.read_text()
    assert run_cli(c, *args, "--plan-out", str(plan)).exit_code in (0, 1)
    assert c.config.read_text() == before           # a saved plan writes no config
    rings = c.checksums()
    r = run_cli(c, "apply", str(plan), "--dry-run")
    assert r.exit_code == 0 and "the config follows the rings" in r.output, r.output
    assert c.config.read_text() == before and c.checksums() == rings
    doc = json.loads(run_cli(c, "--json", "apply", str(plan), "--yes", "--no-push").stdout)
    assert doc["written"] and doc["config_update"]["written"], doc
    text = c.config.read_text()
    assert expect in text, text
    assert gone is None or gone not in text.split("[nodes.s01]")[1].split("[nodes.")[0]
    assert "# the operator's comment" in text
    assert converged(c)


def test_a_rollback_says_the_config_still_wants_the_change(cluster):
    c = cluster
    assert run_cli(c, "set-weight", "s01/sdb", "50", "--yes").exit_code in (0, 1)
    r = run_cli(c, "--json", "rollback", "--yes")
    doc = json.loads(r.stdout)
    assert doc["written"] and any("was not rolled back" in w for w in doc["warnings"])
    assert "sdb = 50.0" in c.config.read_text()
    assert run_cli(c, "plan").exit_code == 1   # converge would redo the weight change
