"""ringmgr plan and converge on real builders: converge driven step by step to what the
config describes (no step over the cap on any ring, never a removal of a device that
still has weight or assignments, the final builders equal to the config), renumbering
through previous_ip as set_info, part_power pointed to increase-part-power, over_limit,
the pause file, the change window, the steps-per-day cap, and bad input (exit 2, one
line, the builder directory unchanged)."""

import json
import shutil
import subprocess
import time

import pytest
from swift.common.ring import RingBuilder

from ringmgr.config import load_config
from ringmgr.rings.desired import describe_differences
from ringmgr.rings.reconcile import ring_diff
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import make_cluster

RINGS = ("account", "object")
SRB = shutil.which("swift-ring-builder") or "swift-ring-builder"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    monkeypatch.delenv("RINGMGR_CONFIG", raising=False)
    return tmp_path


def rings_of(cluster) -> list[str]:
    return sorted(p.stem for p in cluster.builder_dir.glob("*.builder"))


def builders(cluster) -> dict:
    return {r: RingBuilder.load(str(cluster.builder_dir / f"{r}.builder"))
            for r in rings_of(cluster)}


def open_gate(cluster) -> None:
    """swift's pretend_min_part_hours_passed on the test builders (as if the hours had
    passed), saved back with their ring files untouched (the assignments are the same)."""
    for r in rings_of(cluster):
        path = str(cluster.builder_dir / f"{r}.builder")
        b = RingBuilder.load(path)
        b.pretend_min_part_hours_passed()
        b.save(path)


def desired(cluster, edit) -> None:
    text = cluster.config.read_text()
    cluster.config.write_text(edit(text))


def converge_to_the_end(cluster, max_move, *extra, limit=40):
    """Run converge until it says converged; check every step as it is written."""
    steps = []
    for _ in range(limit):
        before = builders(cluster)
        r = run_cli(cluster, "--json", "converge", "--yes", "--max-move", str(max_move),
                    *extra)
        doc = json.loads(r.stdout)
        if doc["exit_code"] == 0 and not doc["written"]:
            assert doc["reason"] == "nothing_to_do", doc
            return steps
        assert doc["written"], (doc["reason"], doc["message"])
        # written: exit 0 when this step reached the config, else 1 and the next converge
        assert (doc["exit_code"], doc["reason"]) in ((0, "ok"), (1, "replication_pending"),
                                                     (1, "unbalanced")), doc["reason"]
        if doc["differences_left"]:
            assert doc["reason"] == "replication_pending" and doc["next"][-1]["command"] \
                .endswith("converge")
        for ring, rep in doc["rings"].items():
            assert rep["parts_moved_pct"] <= max_move, (ring, rep["parts_moved_pct"])
        after = builders(cluster)
        for ring in after:
            gone = {d["id"] for d in before[ring].devs if d} - \
                {d["id"] for d in after[ring].devs if d}
            for i in gone:   # removed only when drained and empty
                assert before[ring].devs[i]["weight"] == 0, (ring, i)
                assert before[ring].devs[i]["parts"] == 0, (ring, i)
        steps.append(doc)
        open_gate(cluster)
    raise AssertionError(f"not converged after {limit} steps")


def test_converge_step_by_step_reaches_the_config(env):
    c = make_cluster(env, nodes=6, disks=2, rings=RINGS, part_power=8, extra_nodes=1,
                     extra_config="[converge]\nmax_move = 8\n\n[rings.object]\n"
                                  "min_part_hours = 2\n")
    # s07 is to be added; s06 leaves (drained, never dropped); s01/sdb gets lighter;
    # s02 moves to zone 3; s03 gets meta
    desired(c, lambda t: t.replace('[nodes.s06]\nip = "127.0.9.6"\nzone = 3\n'
                                   'devices = { sdb = 100.0, sdc = 100.0 }\n', "")
            .replace('[nodes.s01]\nip = "127.0.9.1"\nzone = 1\ndevices = { sdb = 100.0,',
                     '[nodes.s01]\nip = "127.0.9.1"\nzone = 1\ndevices = { sdb = 60.0,')
            .replace('[nodes.s02]\nip = "127.0.9.2"\nzone = 2\n',
                     '[nodes.s02]\nip = "127.0.9.2"\nzone = 3\n')
            .replace('[nodes.s03]\nip = "127.0.9.3"\nzone = 3\n',
                     '[nodes.s03]\nip = "127.0.9.3"\nzone = 3\nmeta = "rack 7"\n'))
    assert "s06" not in c.config.read_text()
    r = run_cli(c.config, "--json", "plan", "--max-move", "8")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["reason"] == "check_failed" and not doc["converged"]
    kinds = {d["kind"] for d in doc["differences"]}
    assert {"add", "drain", "weight", "zone", "info", "setting"} <= kinds
    assert doc["estimated_steps"] > 1
    assert doc["estimated_steps"] == len(doc["later_steps"]) + 1
    assert "domains" in {p for s in doc["later_steps"] for p in s["rings"].values()}
    steps = converge_to_the_end(c, 8, "--allow-over-limit")
    assert len(steps) > 2
    config = load_config(c.config)
    final = builders(c)
    assert describe_differences(config, final) == []
    assert all(ring_diff(config, r, b).converged for r, b in final.items())
    assert all(d["ip"] != "127.0.9.6" for b in final.values() for d in b.devs if d)
    assert final["object"].min_part_hours == 2
    for ring in RINGS:   # swift's own check of what converge wrote
        assert subprocess.run([SRB, str(c.builder_dir / f"{ring}.builder"), "validate"],
                              capture_output=True).returncode == 0
    r = run_cli(c.config, "plan")
    assert r.exit_code == 0 and r.stdout.startswith("converged")
    history = json.loads(run_cli(c.config, "--json", "history").stdout)
    assert len([e for e in history["history"]
                if "converge" in e.get("description", "")]) == len(steps)


def test_a_changed_ip_with_previous_ip_is_set_info_not_drain_and_add(env):
    c = make_cluster(env, nodes=4, zones=2, rings=RINGS, extra_nodes=0,
                     extra_config="[converge]\n")
    desired(c, lambda t: t.replace('[nodes.s02]\nip = "127.0.9.2"\n',
                                   '[nodes.s02]\nip = "127.0.8.2"\nprevious_ip = "127.0.9.2"\n'))
    doc = json.loads(run_cli(c.config, "--json", "plan").stdout)
    assert {d["kind"] for d in doc["differences"]} == {"info"}
    assert {d["field"] for d in doc["differences"]} == {"ip", "replication_ip"}
    before = {r: sorted((d["id"], d["device"], d["parts"]) for d in b.devs if d)
              for r, b in builders(c).items()}
    steps = converge_to_the_end(c, 10)
    assert len(steps) == 1 and all(v["parts_moved"] == 0 for v in steps[0]["rings"].values())
    after = builders(c)
    assert {r: sorted((d["id"], d["device"], d["parts"]) for d in b.devs if d)
            for r, b in after.items()} == before   # same devices, no data moved
    assert {d["ip"] for b in after.values() for d in b.devs if d and d["id"] in (2, 3)} == \
        {"127.0.8.2"}
    doc = json.loads(run_cli(c.config, "--json", "plan").stdout)
    assert doc["converged"] and doc["stale_previous_ip"] == ["s02"]
    assert "nodes.s02.previous_ip matches no device" in run_cli(c.config, "plan").stdout
    # without previous_ip the same change would be a drain plus an add
    desired(c, lambda t: t.replace('ip = "127.0.8.2"\nprevious_ip = "127.0.9.2"\n',
                                   'ip = "127.0.7.2"\n'))
    kinds = {d["kind"] for d in json.loads(run_cli(c.config, "--json", "plan").stdout)
             ["differences"]}
    assert kinds == {"add", "drain"}


def test_part_power_points_to_increase_part_power(env):
    c = make_cluster(env, nodes=4, rings=RINGS, extra_nodes=0,
                     extra_config="[converge]\n[rings.object]\npart_power = 7\n")
    before = c.checksums()
    r = run_cli(c.config, "--json", "plan")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["part_power"] == [{"ring": "object", "have": 6,
                                                       "want": 7}]
    assert any("increase-part-power object" in n["command"] for n in doc["next"])
    r = run_cli(c.config, "--json", "converge", "--yes")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["reason"] == "part_power" and not doc["written"]
    assert c.checksums() == before


def test_over_limit_is_said_and_done_only_when_allowed(env):
    # a node whose smallest step (1% of its weight) already moves more than the cap
    c = make_cluster(env, nodes=4, zones=2, rings=RINGS, extra_nodes=1,
                     extra_config="[converge]\nmax_move = 0.2\n")
    before = c.checksums()
    doc = json.loads(run_cli(c.config, "--json", "plan").stdout)
    assert set(doc["over_limit"]) == set(RINGS)
    assert all(s["over_limit"] and s["held"] == "over_limit" and s["parts_moved_pct"] > 0.2
               for s in doc["next_step"].values())
    r = run_cli(c.config, "--json", "converge", "--yes")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["reason"] == "over_limit" and not doc["written"]
    assert "--allow-over-limit" in doc["message"] and c.checksums() == before
    r = run_cli(c.config, "--json", "converge", "--yes", "--allow-over-limit")
    doc = json.loads(r.stdout)
    assert doc["written"] and doc["differences_left"] == 0, doc["message"]
    assert all(d["weight"] == 100.0 for b in builders(c).values() for d in b.devs
               if d and d["ip"] == "127.0.9.5")


def test_pause_file_window_and_steps_per_day(env):
    pause = env / "pause"
    c = make_cluster(env, nodes=4, rings=RINGS, extra_nodes=1,
                     extra_config=f'[converge]\npause_file = "{pause}"\n'
                                  f'max_steps_per_day = 1\n')
    pause.write_text("")
    before = c.checksums()
    doc = json.loads(run_cli(c.config, "--json", "converge", "--yes").stdout)
    assert doc["exit_code"] == 1 and doc["reason"] == "paused" and str(pause) in doc["message"]
    assert c.checksums() == before
    pause.unlink()
    assert json.loads(run_cli(c.config, "--json", "converge", "--yes").stdout)["written"]
    open_gate(c)
    before = c.checksums()
    doc = json.loads(run_cli(c.config, "--json", "converge", "--yes").stdout)
    assert doc["exit_code"] == 1 and doc["reason"] == "step_limit"
    assert doc["next"][0]["not_before"] is not None and c.checksums() == before
    # a window that is closed now (a weekday other than today's, all day)
    today = time.localtime().tm_wday
    other = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[(today + 3) % 7]
    desired(c, lambda t: t.replace("max_steps_per_day = 1\n",
                                   f'window = "{other} 00:00-24:00"\n'))
    doc = json.loads(run_cli(c.config, "--json", "converge", "--yes").stdout)
    assert doc["exit_code"] == 1 and doc["reason"] == "outside_window"
    assert other in doc["message"] and doc["next"][0]["not_before"]
    assert c.checksums() == before
    # a dry run still shows the step, with the stop noted
    r = run_cli(c.config, "converge", "--dry-run")
    assert r.exit_code == 0 and "a real run would stop here" in r.stderr


def test_converge_needs_a_converge_section(env):
    c = make_cluster(env, nodes=4, rings=RINGS, extra_nodes=1)
    before = c.checksums()
    r = run_cli(c.config, "converge", "--yes")
    assert r.exit_code == 2 and "[converge]" in r.stderr and c.checksums() == before
    assert run_cli(c.config, "plan").exit_code == 1   # plan needs none: it writes nothing


@pytest.mark.parametrize("extra, expect", [
    ("[rings.object-7]\nreplicas = 3\n", "rings.object-7 names the ring 'object-7'"),
    ("[nodes.s01.rings.container]\ndevices = { sdb = 1.0 }\n",
     "nodes.s01.rings.container names the ring 'container'"),
])
def test_bad_input_exit_2_one_line_nothing_changed(env, extra, expect):
    c = make_cluster(env, nodes=4, rings=RINGS, extra_nodes=1,
                     extra_config="[converge]\n" + extra)
    before = c.checksums()
    for command in (("plan",), ("converge", "--yes")):
        r = run_cli(c.config, *command)
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("ringmgr: error: ") and \
            expect in lines[0], r.output
        assert c.checksums() == before


@pytest.mark.parametrize("window", ["Mon-Fry 09:00-17:00", "9-17", "Mon 09:00-25:00",
                                    "Mon-Fri 09:00-09:00", ""])
def test_a_window_that_does_not_parse(env, window):
    c = make_cluster(env, nodes=4, rings=RINGS, extra_nodes=1,
                     extra_config=f'[converge]\nwindow = "{window}"\n')
    before = c.checksums()
    for command in (("plan",), ("converge", "--yes")):
        r = run_cli(c.config, *command)
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and "converge.window" in lines[0], r.output
        assert c.checksums() == before


@pytest.mark.parametrize("window, when, inside, opens", [
    ("Mon-Fri 09:00-17:00", "2026-12-02 10:00", True, "2026-12-02 10:00"),   # a Wednesday
    ("Mon-Fri 09:00-17:00", "2026-12-02 17:00", False, "2026-12-03 09:00"),
    ("Mon-Fri 09:00-17:00", "2026-12-05 12:00", False, "2026-12-07 09:00"),  # Saturday
    ("22:00-06:00", "2026-12-02 05:59", True, "2026-12-02 05:59"),
    ("22:00-06:00", "2026-12-02 06:00", False, "2026-12-02 22:00"),
    ("Fri-Mon 00:00-24:00", "2026-12-06 12:00", True, "2026-12-06 12:00"),   # Sunday
    ("Fri-Mon 00:00-24:00", "2026-12-02 12:00", False, "2026-12-04 00:00"),
    ("Sat 23:00-01:00; Tue 10:00-11:00", "2026-12-06 00:30", True, "2026-12-06 00:30"),
    ("sat 23:00-01:00; tuesday 10:00-11:00", "2026-12-06 01:00", False, "2026-12-08 10:00"),
])
def test_window_contains_and_next_open(window, when, inside, opens):
    from datetime import datetime

    from ringmgr.rings.window import parse_window

    w = parse_window(window)
    t = datetime.strptime(when, "%Y-%m-%d %H:%M")
    assert w.contains(t) is inside
    assert w.next_open(t) == datetime.strptime(opens, "%Y-%m-%d %H:%M")


def test_a_drained_device_waits_for_safe_to_destroy_when_the_check_exists(env):
    """The hook for the live-cluster check: a drained, empty device is removed only when
    it says so; without a check, weight 0 and no assignments suffice."""
    from ringmgr.rings.converge import plan_converge
    from ringmgr.rings.engine import simulate_ring

    c = make_cluster(env, nodes=5, zones=5, rings=RINGS, extra_nodes=0,
                     extra_config="[converge]\n")
    desired(c, lambda t: t.replace('[nodes.s05]\nip = "127.0.9.5"\nzone = 5\n'
                                   'devices = { sdb = 100.0, sdc = 100.0 }\n', ""))
    config = load_config(c.config)
    sim = lambda n, b, ch, s, p: simulate_ring(n, b, ch, s, p)  # noqa: E731
    bs = builders(c)
    for step in range(20):   # drain s05 to weight 0 and empty
        plan = plan_converge(config, bs, 50, step, sim)
        if all(d.kind == "remove" for d in plan.differences):
            break
        bs = {r: sim(r, bs[r], ch, step, True).after
              for r, ch in plan.change_set().rings.items()} | \
            {r: b for r, b in bs.items() if r not in plan.change_set().rings}
    asked = []

    def not_yet(ring, dev):
        asked.append((ring, dev["device"]))
        return False, "2 partitions have no other copy yet"

    plan = plan_converge(config, bs, 50, 0, sim, safe_to_destroy=not_yet)
    assert not plan.has_step and len(plan.removal_held) == 4
    assert sorted(asked) == sorted((r, d) for r in RINGS for d in ("sdb", "sdc"))
    assert "not yet safe to destroy: 2 partitions" in plan.removal_held[0]
    plan = plan_converge(config, bs, 50, 0, sim, safe_to_destroy=lambda r, d: (True, ""))
    assert all(len(ch.removes) == 2 for ch in plan.change_set().rings.values())
    plan = plan_converge(config, bs, 50, 0, sim)
    assert all(len(ch.removes) == 2 for ch in plan.change_set().rings.values())


def _onto_s03(text: str) -> str:
    """The config keeps only s03, with three devices: every replica onto one node."""
    head, _, tail = text.partition("[nodes.s01]")
    return (head + '[nodes.s03]\nip = "127.0.9.3"\nzone = 1\n'
            'devices = { sdb = 200.0, sdc = 200.0, sdd = 200.0 }\n\n'
            "[converge]" + tail.split("[converge]", 1)[1])


def test_a_drain_onto_one_node_converges_to_the_end(env):
    """The last assignments left on drained devices need a rebalance of their own (no
    weight left to change); converge must run it, then remove the empty devices."""
    c = make_cluster(env, nodes=4, zones=1, disks=1, rings=("object",), extra_nodes=0,
                     extra_config="[converge]\nmax_move = 25\n")
    desired(c, _onto_s03)
    steps = converge_to_the_end(c, 25)
    final = RingBuilder.load(str(c.builder_dir / "object.builder"))
    assert sorted((d["ip"], d["device"]) for d in final.devs if d) == [
        ("127.0.9.3", "sdb"), ("127.0.9.3", "sdc"), ("127.0.9.3", "sdd")]
    assert any(s["rings"]["object"].get("parts_moved", 0) for s in steps)


def test_a_drain_swift_cannot_finish_is_drain_stuck_naming_the_devices(env, monkeypatch):
    """If swift's rebalance moves none of what is left on the drained devices, converge
    says so (reason drain_stuck, each device with its count) and writes nothing."""
    import copy

    import ringmgr.cli.converge as conv
    from tests.helpers.checksums import checksums

    c = make_cluster(env, nodes=4, zones=1, disks=1, rings=("object",), extra_nodes=0,
                     extra_config="[converge]\nmax_move = 100\n")
    desired(c, _onto_s03)
    path = str(c.builder_dir / "object.builder")
    b = RingBuilder.load(path)     # drained by hand, their assignments still in place
    for d in b.devs:
        if d["ip"] != "127.0.9.3":
            d["weight"] = 0.0
    for dev in ("sdc", "sdd"):
        b.add_dev({"region": 1, "zone": 1, "ip": "127.0.9.3", "port": 6200,
                   "replication_ip": "127.0.9.3", "replication_port": 6200,
                   "device": dev, "weight": 200.0, "meta": ""})
    b.devs[2]["weight"] = 200.0
    b.save(path)
    real = conv._simulate

    def unmoving(name, builder, change, seed, pretend):
        o = real(name, builder, change, seed, pretend)
        if change.force and change.empty:
            o.after = copy.deepcopy(builder)   # swift leaving every one where it is
        return o

    # first the rebalance that moves most of them (swift's own), then the stuck state
    monkeypatch.setattr(conv, "_simulate", unmoving)
    b = RingBuilder.load(path)
    b.rebalance(seed=3)
    b.pretend_min_part_hours_passed()
    b.save(path)
    left = sorted((d["device"], d["ip"], d["parts"]) for d in b.devs
                  if d and d["weight"] == 0 and d["parts"])
    assert left, "the scenario needs assignments left on drained devices"
    before = checksums(c.builder_dir)
    r = run_cli(c.config, "--json", "converge", "--yes")
    doc = json.loads(r.stdout)
    assert (r.exit_code, doc["reason"], doc["written"]) == (1, "drain_stuck", False)
    assert doc["drain_stuck"] == [f"object: {ip}/{dev} (id {int(ip[-1]) - 1}, {n} "
                                  f"assignment(s))" for dev, ip, n in sorted(
                                      left, key=lambda x: x[1])]
    r = run_cli(c.config, "converge", "--yes")
    lines = [ln for ln in r.output.splitlines() if ln.startswith("ringmgr: warning: ")]
    assert r.exit_code == 1 and len(lines) == 1, r.output
    assert all(w in lines[0] for w in ("drain_stuck", "127.0.9.1/sdb (id 0",
                                       "127.0.9.4/sdb", "nothing was written")), lines
    assert checksums(c.builder_dir) == before
