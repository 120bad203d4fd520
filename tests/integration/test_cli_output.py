"""What a script and a tired operator read: exit codes for `a && b`, --json keeping the
text report off stderr, --brief, history show, push records, shell completion."""

import json
import os
import subprocess

import pytest
from swift.common.ring import RingBuilder

from tests.helpers.cli import run_cli
from tests.integration.test_push import admin_builders

RINGS = ("account", "container", "object", "object-1")


@pytest.fixture(autouse=True)
def hash_suffix(monkeypatch):
    import swift.common.utils as u

    monkeypatch.setattr(u, "HASH_PATH_SUFFIX", b"ringmgr-tests")


# -- exit codes a script can chain -------------------------------------------------------

@pytest.fixture
def cluster_options():
    return {"extra_config": '[proxies.p01]\nhost = "127.0.9.100"\n'}


def test_write_rings_with_every_ring_current_exits_0_so_push_runs_after_it(cluster):
    before = cluster.checksums()
    r = run_cli(cluster, "write-rings", "--yes")
    assert r.exit_code == 0, r.output
    assert "every ring.gz is up to date: nothing to write" in r.stdout
    assert "error" not in r.stderr and "warning" not in r.stderr
    doc = json.loads(run_cli(cluster, "--json", "write-rings", "--yes").stdout)
    assert (doc["exit_code"], doc["reason"], doc["written"]) == (0, "nothing_to_do", False)
    assert cluster.checksums() == before


def test_rebalance_with_nothing_to_reassign_keeps_swift_ring_builders_1(cluster):
    doc = json.loads(run_cli(cluster, "--json", "rebalance", "--yes").stdout)
    assert (doc["exit_code"], doc["reason"]) == (1, "nothing_to_do")


def test_a_written_step_with_more_to_come_says_when(cluster):
    r = run_cli(cluster, "--json", "drain-node", "s03", "--max-move", "20", "--yes", "--seed", "3")
    doc = json.loads(r.stdout)
    assert (r.exit_code, doc["reason"], doc["written"]) == (1, "replication_pending", True)
    cfg = f"--config {cluster.config}"
    push, again = doc["next"]
    assert push == {"command": f"ringmgr {cfg} push", "not_before": None}
    assert again["command"] == f"ringmgr {cfg} drain-node s03 --max-move 20"
    assert again["not_before"] and again["not_before"].endswith("Z")


# -- --json: stdout is the JSON, stderr no report -----------------------------------------

REPORTS = [("remove-node", "s03", "--dry-run", "--seed", "3"), ("status",), ("history",),
           ("ok-to-stop", "s01"), ("failure-impact", "s01", "s02"), ("rollback", "--dry-run"),
           ("write-rings", "--dry-run"), ("resume",)]


@pytest.mark.parametrize("args", REPORTS, ids=" ".join)
def test_json_stderr_carries_no_report_text(args, cluster):
    assert run_cli(cluster, "set-weight", "s02", "90", "--yes", "--seed", "1").exit_code in (0, 1)
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    b.set_dev_weight(0, 42.0)  # object.ring.gz is now stale: write-rings has work
    b.save(str(cluster.builder_dir / "object.builder"))
    text = run_cli(cluster, *args)
    report = [line.strip() for line in (text.stdout + text.stderr).splitlines()
              if line.strip() and not line.startswith(("simulat", "note: ", "warning: "))]
    assert report, text.output
    r = run_cli(cluster, "--json", *args)
    json.loads(r.stdout)  # stdout is one JSON document
    leaked = [line for line in report if line in r.stderr]
    assert not leaked, leaked
    for line in r.stderr.splitlines():  # what is left: progress and warnings
        assert line.startswith(("simulat", "note: ", "warning: ", "ringmgr: warning")), line


def test_dry_run_remarks_go_to_the_envelope_not_stderr(cluster):
    r = run_cli(cluster, "--json", "remove-node", "s03", "--dry-run", "--seed", "3")
    assert "dry run: nothing was written" not in r.stderr
    doc = json.loads(r.stdout)
    assert doc["next"] == [{"command": f"ringmgr --config {cluster.config} --json remove-node "
                                       f"s03 --seed 3", "not_before": None}]


# -- --brief ---------------------------------------------------------------------------

def test_brief_prints_one_line_per_ring(cluster):
    full = run_cli(cluster, "remove-node", "s03", "--dry-run", "--seed", "3")
    r = run_cli(cluster, "remove-node", "s03", "--dry-run", "--seed", "3", "--brief")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == list(RINGS)
    for line in lines:
        assert "replica moves" in line and "2 removed" in line and "balance" in line
    assert "biggest device changes" in full.stdout and "biggest" not in r.stdout


# -- history show --------------------------------------------------------------------------

def test_history_show_one_change_in_full(cluster):
    before = cluster.checksums()
    r = run_cli(cluster, "history", "show", "1")
    assert r.exit_code == 2 and "no change #1 in the history (known: none yet)" in r.output
    assert cluster.checksums() == before
    assert run_cli(cluster, "remove-device", "s01", "sdc", "--yes", "--seed", "4").exit_code in (0, 1)
    r = run_cli(cluster, "history", "show", "1")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert out.startswith("change #1: remove s01/sdc from every ring")
    assert "remove-device s01 sdc --yes --seed 4" in out and "seed:     4" in out
    for ring in RINGS:
        assert f"  {ring}:\n    version" in out
        assert f"removed from {ring}: id 1 127.0.9.1:" in out
    assert "builder md5" in out and "backups " in out and "pushed:   not recorded" in out
    # `ringmgr history` works as before, --limit included
    r = run_cli(cluster, "history", "--limit", "1")
    assert r.exit_code == 0 and r.stdout.startswith("#1 ")
    r = run_cli(cluster, "history", "show", "7")
    assert r.exit_code == 2 and "known: 1..1" in r.output


def test_push_after_a_change_is_recorded_in_its_history(sshd_hosts, tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    admin = admin_builders(tmp_path / "admin")
    cfg = sshd_hosts.write_config(tmp_path / "ringmgr.toml", admin)

    def ringmgr(*args):
        return subprocess.run(["ringmgr", "--config", str(cfg), *args], capture_output=True,
                              text=True)

    p = ringmgr("--json", "set-weight", "h01/sdb", "50", "--yes", "--push", "--seed", "2")
    assert p.returncode in (0, 1), p.stderr
    doc = json.loads(p.stdout)
    assert set(doc["push"]["hosts"]) == set(sshd_hosts.names)
    assert not any(n["command"].endswith(" push") for n in doc["next"])  # it was pushed
    shown = json.loads(ringmgr("--json", "history", "show", "1").stdout)["change"]
    (push,) = shown["pushes"]
    assert push["ok"] and push["change_id"] == 1
    assert {n: h["updated"] for n, h in push["hosts"].items()} == {
        n: ["account.ring.gz", "container.ring.gz", "object.ring.gz"] for n in sshd_hosts.names}
    # a later `ringmgr push` of the same rings is recorded against the same change
    p = ringmgr("--json", "push")
    assert json.loads(p.stdout)["reason"] == "nothing_to_do", p.stderr
    text = ringmgr("history", "show", "1").stdout
    assert text.count("  pushed:   ") == 2 and "already current" in text
    assert f"{sshd_hosts.names[0]} " in text
    assert "pushed: " in ringmgr("history").stdout


# -- shell completion ------------------------------------------------------------------

def test_bash_completion_script_comes_from_the_entry_point(tmp_path):
    env = dict(os.environ, _RINGMGR_COMPLETE="bash_source")
    p = subprocess.run(["ringmgr"], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "_ringmgr_completion()" in p.stdout and "complete -o nosort" in p.stdout


def complete(cluster, *words):
    env = {"_RINGMGR_COMPLETE": "bash_complete",
           "COMP_WORDS": " ".join(["ringmgr", "--config", str(cluster.config), *words]),
           "COMP_CWORD": str(len(words) + 2)}
    r = run_cli(None, env=env, prog_name="ringmgr")
    assert r.exit_code == 0, r.output
    return [line.split(",", 1)[1] for line in r.stdout.splitlines() if "," in line]


def test_node_and_device_names_complete_from_the_config(cluster):
    nodes = [f"s0{i}" for i in range(1, 8)]
    assert complete(cluster, "remove-node", "") == nodes
    assert complete(cluster, "drain-node", "s0") == nodes
    assert complete(cluster, "add-node", "s07") == ["s07"]
    assert complete(cluster, "set-weight", "s02/") == ["s02/sdb", "s02/sdc"]
    assert complete(cluster, "set-weight", "s02/sdc") == ["s02/sdc"]
    assert complete(cluster, "remove-device", "s01", "") == ["sdb", "sdc"]
    assert complete(cluster, "ok-to-stop", "s01", "--down", "s03/") == ["s03/sdb", "s03/sdc"]
    assert complete(cluster, "failure-impact", "s01", "s0") == nodes
    assert complete(cluster, "push", "") == [*nodes, "p01"]        # proxies get rings too
    assert complete(cluster, "remove-node", "x") == []
    cluster.config.write_text("[cluster\n")  # an unreadable config: nothing, no traceback
    assert complete(cluster, "remove-node", "") == []
