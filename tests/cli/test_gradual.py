"""Gradual plans: drain-node and add-node --max-move, on real small builders."""

import json
import re

import pytest
from swift.common.ring import RingBuilder

from tests.helpers.checksums import checksums
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import make_cluster

RINGS = ("account", "container", "object", "object-1")


def load(cluster, ring):
    return RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))


def node_weights(cluster, ring, node):
    ip = cluster.nodes[node][0]
    return {d["device"]: d["weight"] for d in load(cluster, ring).devs
            if d is not None and d["ip"] == ip}


def dry_run(cluster, *args) -> dict:
    """The report of ``ringmgr --json ARGS`` (a dry run: exit 0, builder_dir unchanged)."""
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "--json", *args)
    assert r.exit_code == 0, r.output
    assert checksums(cluster.builder_dir) == before
    return json.loads(r.stdout)


@pytest.fixture(autouse=True)
def audit_log(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))


@pytest.fixture
def cluster_options():
    return {"subdir": "c", "part_power": 7}


def test_drain_dry_run_steps_stay_under_max_move_and_end_with_remove(cluster):
    data = dry_run(cluster, "drain-node", "s03", "--dry-run", "--max-move", "5", "--seed", "3")
    steps = data["steps"]
    assert len(steps) >= 4
    assert steps[-1]["action"] == "remove"
    fractions = [s["fraction"] for s in steps if s["action"] == "set-weight"]
    assert fractions == sorted(fractions, reverse=True) and fractions[-1] == 0
    for s in steps:
        for ring, v in s["rings"].items():
            assert v["parts_moved_pct"] <= 5 or s["over_limit"], (s["step"], ring, v)
    assert steps[0]["exact"] and steps[0]["wait_before_seconds"] == 0
    assert all(s["wait_before_seconds"] == 3600 for s in steps[1:])
    assert data["wait_between_steps_seconds"] == 3600
    assert data["total_wait_seconds"] == 3600 * (len(steps) - 1)
    text = run_cli(cluster, "drain-node", "s03", "--dry-run", "--max-move", "5", "--seed", "3")
    assert f"expected duration at least {len(steps) - 1} h" in text.stdout
    # the exact first step: what the report predicts is step 1's simulation
    for ring in RINGS:
        assert data["rings"][ring]["parts_moved"] == steps[0]["rings"][ring]["parts_moved"]


def test_drain_dry_run_has_the_ring_steps_and_the_push_to_every_host(cluster):
    """drain-node --dry-run --json: ``steps`` (the gradual schedule) and ``host_steps``
    (what a real run changes on hosts): with --push one push session per node and
    proxy of the config; without it none (the builders alone change)."""
    from ringmgr.config import load_config
    from ringmgr.ops.push.session import session_argv

    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "--json", "drain-node", "s03", "--dry-run", "--push", "--seed", "3")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["steps"] and doc["steps"][-1]["action"] == "remove"
    hosts = load_config(cluster.config).hosts()
    assert len(hosts) >= 7
    assert [s["host"] for s in doc["host_steps"]] == sorted(hosts)
    for s in doc["host_steps"]:
        assert s["step"] == "push" and not s["destructive"] and s["host"] in s["reason"]
        assert s["argv"] == session_argv(hosts[s["host"]], True)
    text = run_cli(cluster, "drain-node", "s03", "--dry-run", "--push", "--seed", "3").stdout
    assert "[s01] python3 <ringmgr push_node.py> session" in text
    r = run_cli(cluster, "--json", "drain-node", "s03", "--dry-run", "--no-push", "--seed", "3")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["steps"] and doc["host_steps"] == []
    assert checksums(cluster.builder_dir) == before


def test_drain_performs_only_the_first_step_and_says_when_the_next_is_due(cluster):
    w0 = node_weights(cluster, "object", "s02")
    r = run_cli(cluster, "drain-node", "s02", "--max-move", "5", "--yes", "--seed", "8")
    assert r.exit_code == 1, r.output  # written, a further step is due
    assert "next step (2 of" in r.output and "is due in 1 h (at " in r.output
    w1 = node_weights(cluster, "object", "s02")
    assert set(w1) == set(w0) and all(0 < w1[d] < w0[d] for d in w0)
    hist = (cluster.builder_dir / ".ringmgr" / "history.jsonl").read_text().splitlines()
    assert len(hist) == 1 and "gradual step 1" in json.loads(hist[0])["description"]
    # the same command again: the gate (min_part_hours = 1) now blocks weight changes
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "drain-node", "s02", "--max-move", "5", "--yes")
    assert r.exit_code == 1 and "min_part_hours" in r.output
    assert checksums(cluster.builder_dir) == before


def test_drain_plan_out_saves_first_step_exactly_and_later_steps_as_advice(cluster, tmp_path):
    plan = tmp_path / "drain.json"
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "drain-node", "s05", "--max-move", "6", "--plan-out", str(plan))
    assert r.exit_code == 0, r.output
    assert checksums(cluster.builder_dir) == before
    body = json.loads(plan.read_text())["body"]
    assert len(body["schedule"]) >= 3 and body["schedule"][0]["exact"]
    assert not any(s["exact"] for s in body["schedule"][1:])
    r = run_cli(cluster, "apply", str(plan), "--yes")
    assert r.exit_code == 0, r.output
    for ring, res in body["results"].items():
        assert checksums(cluster.builder_dir)[f"{ring}.builder"] == res["md5"]


def test_drain_of_a_node_already_at_zero_removes_it(tmp_path):
    c = make_cluster(tmp_path / "z", part_power=6)
    assert run_cli(c, "set-weight", "s04", "0", "--yes", "--seed", "1").exit_code in (0, 1)
    # pretend the gate opened (an hour later), on the files: a test-only shortcut
    for ring in RINGS:
        b = load(c, ring)
        b._last_part_moves_epoch -= 7200
        b.save(str(c.builder_dir / f"{ring}.builder"))
    steps = dry_run(c, "drain-node", "s04", "--dry-run", "--max-move", "50")["steps"]
    assert steps[-1]["action"] == "remove"
    assert all(s["action"] in ("rebalance", "remove") for s in steps)


def test_add_node_ramp_starts_low_and_reaches_the_configured_weight(cluster):
    steps = dry_run(cluster, "add-node", "s07", "--dry-run", "--max-move", "4", "--seed", "2")["steps"]
    assert steps[0]["action"] == "add" and 0 < steps[0]["fraction"] < 1
    assert steps[-1]["fraction"] == 1.0 and steps[-1]["weights"]["object"]["sdb"] == 100.0
    for s in steps:
        for v in s["rings"].values():
            assert v["parts_moved_pct"] <= 4 or s["over_limit"]
    # performing step 1 adds the devices at the low weight
    r = run_cli(cluster, "add-node", "s07", "--max-move", "4", "--yes", "--seed", "2")
    assert r.exit_code == 1, r.output
    w = node_weights(cluster, "object", "s07")
    assert set(w) == {"sdb", "sdc"} and all(0 < x < 100 for x in w.values())


def one_line_error(r, needle):
    errors = [ln for ln in r.output.splitlines() if ln.startswith("ringmgr: error:")]
    assert len(errors) == 1 and needle in errors[0], r.output
    assert r.output.rstrip("\n").endswith(errors[0]) and "Traceback" not in r.output


@pytest.mark.parametrize("bad, needle", [
    ("0", "--max-move 0.0 must be a percentage"), ("-3", "--max-move -3.0 must be"),
    ("101", "--max-move 101.0 must be"), ("x", "'x' is not a valid float"),
])
def test_bad_max_move_is_exit_2_and_changes_nothing(cluster, bad, needle):
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "drain-node", "s01", "--max-move", bad, "--yes")
    assert r.exit_code == 2
    one_line_error(r, needle)
    assert checksums(cluster.builder_dir) == before


def test_unknown_node_is_exit_2(cluster):
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "drain-node", "s99", "--yes")
    assert r.exit_code == 2
    one_line_error(r, "unknown node 's99'")
    assert checksums(cluster.builder_dir) == before


def test_simulation_copies_only_pretend_the_gate_passed(tmp_path):
    """Planning pretends min_part_hours passed on copies; the real builders keep their
    gate (a closed gate stays closed in the files)."""
    c = make_cluster(tmp_path / "g", gate_open=False)
    before = checksums(c.builder_dir)
    r = run_cli(c, "--json", "drain-node", "s01", "--dry-run", "--max-move", "10")
    # step 1 is blocked by the gate: the plan says when it can start, nothing is written
    assert r.exit_code == 1, r.output
    assert "min_part_hours" in r.output
    assert checksums(c.builder_dir) == before
    assert load(c, "object").min_part_seconds_left > 0


def test_dry_run_with_the_gate_closed_still_shows_the_plan(tmp_path):
    """Planning ahead: the schedule is printed (text and JSON) although step 1 must wait."""
    import json

    c = make_cluster(tmp_path, min_part_hours=24, gate_open=False)
    before = c.checksums()
    r = run_cli(c, "--json", "drain-node", "s03", "--max-move", "10", "--dry-run")
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    assert data["written"] is False
    assert len(data["steps"]) >= 2
    assert data["steps"][0]["wait_before_seconds"] > 23 * 3600
    assert "min_part_hours" in data["message"]
    assert c.checksums() == before


def open_gate(cluster):
    """Pretend min_part_hours passed (an hour later), on the files: a test-only shortcut."""
    for ring in RINGS:
        b = load(cluster, ring)
        b._last_part_moves_epoch -= 7200
        b.save(str(cluster.builder_dir / f"{ring}.builder"))


def history(cluster):
    path = cluster.builder_dir / ".ringmgr" / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


CLOCK = re.compile(r"\(at (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC")


def test_drain_steps_are_numbered_across_runs_and_a_finished_drain_is_exit_0(cluster):
    """Each run performs the next step of one drain: the plan, the notes and the history
    say 'step k of N' with k counting on from the earlier runs, the weights keep falling
    as fractions of the weights before the drain began, and once the node is removed
    the same command says so and exits 0."""
    w0 = node_weights(cluster, "object", "s02")
    # --force: the final removal's safe-to-destroy cannot reach these made-up hosts
    args = ("drain-node", "s02", "--max-move", "20", "--yes", "--force")
    r = run_cli(cluster, *args, "--seed", "8")
    assert r.exit_code == 1, r.output
    total = int(re.search(r"drain s02 in (\d+) step", r.output).group(1))
    assert total >= 3
    assert f"next step (2 of {total})" in r.output and CLOCK.search(r.output), r.output
    note = next(ln for ln in r.output.splitlines() if ln.startswith("next step"))
    assert "push the rings (`ringmgr push`), let replication finish, then run" in note
    w1 = node_weights(cluster, "object", "s02")
    assert all(0 < w1[d] < w0[d] for d in w0)
    for k in range(2, 60):
        open_gate(cluster)
        r = run_cli(cluster, *args)
        h = history(cluster)
        if r.exit_code == 0 and "already" in r.output:
            break
        assert r.exit_code in (0, 1), r.output
        assert f"step {k} of " in r.output
        assert re.search(rf"\(gradual step {k} of \d+\)$", h[-1]["description"]), h[-1]
        info = h[-1]["change"]["info"]["gradual"]
        assert info["step"] == k and info["started"]["id"] == h[0]["id"]
        assert info["base"]["object"] == w0      # fractions of the weights before the drain
        if info["action"] == "set-weight":
            now = node_weights(cluster, "object", "s02")
            assert all(now[d] == pytest.approx(w0[d] * info["fraction"], abs=1e-4)
                       for d in w0)
    else:
        pytest.fail("the drain did not finish")
    assert all(not node_weights(cluster, ring, "s02") for ring in RINGS)
    removal = h[-1]
    assert removal["change"]["info"]["gradual"]["action"] == "remove"
    # the finished drain, run again: exit 0, nothing written, says when it was removed
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "--json", *args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["written"] is False and data["already_removed"]["change_id"] == removal["id"]
    text = run_cli(cluster, *args).output
    assert f"already drained and removed (change #{removal['id']} on " in text
    assert checksums(cluster.builder_dir) == before
    # a node that never was in a ring is still bad input
    r = run_cli(cluster, "drain-node", "s07", "--yes")
    assert r.exit_code == 2 and "has no devices in any ring" in r.output


def test_drain_gate_messages_give_the_clock_time(tmp_path):
    c = make_cluster(tmp_path / "g", gate_open=False)
    before = checksums(c.builder_dir)
    r = run_cli(c, "drain-node", "s01", "--max-move", "10", "--yes")
    assert r.exit_code == 1, r.output
    last = r.output.strip().splitlines()[-1]
    assert re.search(r"can run in \d+ (h|min)", last) and CLOCK.search(last), last
    assert checksums(c.builder_dir) == before


def test_add_node_ramp_continues_on_the_next_run(cluster):
    """add-node --max-move run again: the next step of the same ramp (it used to stop
    with 'already in the ring')."""
    r = run_cli(cluster, "add-node", "s07", "--max-move", "10", "--yes", "--seed", "2")
    assert r.exit_code == 1, r.output
    w1 = node_weights(cluster, "object", "s07")
    open_gate(cluster)
    r = run_cli(cluster, "add-node", "s07", "--max-move", "10", "--yes")
    assert r.exit_code in (0, 1), r.output
    assert "step 2 of " in r.output and "already in the ring" not in r.output
    w2 = node_weights(cluster, "object", "s07")
    assert all(w1[d] < w2[d] <= 100.0 for d in w1)
    assert history(cluster)[-1]["change"]["info"]["gradual"]["step"] == 2
