"""The partition-power phase machine on real RingBuilders, and the CLI's refusals, dry
run and status (no host is reached: these stop before anything runs on a node)."""

import copy
import json
import subprocess
from pathlib import Path

import pytest

from ringmgr.errors import Refused
from ringmgr.ops import relinker as rl
from ringmgr.rings import partpower as pp
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import checksums


@pytest.fixture
def cluster_options():
    return {"nodes": 3, "zones": 3, "disks": 1, "part_power": 4}


@pytest.fixture
def cluster(cluster, monkeypatch):
    monkeypatch.setenv("RINGMGR_STATE_DIR", str(cluster.root / "runs"))
    return cluster


def builder(tmp_path, part_power=4):
    from swift.common.ring import RingBuilder

    b = RingBuilder(part_power, 3, 0)
    for i in range(3):
        b.add_dev({"region": 1, "zone": i + 1, "ip": f"127.0.9.{i + 1}", "port": 6200,
                   "device": "sdb", "weight": 100.0, "meta": ""})
    b.rebalance(seed=1)
    return b


# -- the phase machine --------------------------------------------------------------

def test_a_whole_increase_moves_the_builder_through_swifts_states(tmp_path):
    b = builder(tmp_path)
    assert pp.stage(b) == "none"
    assert pp.next_phase("none", set()).next == "precheck"
    assert pp.next_phase("none", {"precheck"}).next == "prepare"
    p = pp.apply_ring_phase(b, "prepare")
    assert (p.part_power, p.next_part_power, pp.stage(p)) == (4, 5, "prepared")
    assert b.next_part_power is None, "the original builder is untouched"
    assert pp.next_phase("prepared", {"precheck", "prepare"}).next == "relink"
    assert pp.next_phase("prepared", {"precheck", "prepare", "relink"}).next == "increase"
    i = pp.apply_ring_phase(p, "increase")
    assert (i.part_power, i.next_part_power, i.parts, pp.stage(i)) == (5, 5, 32, "switched")
    # partition X at power 4 lives on the same devices as 2X and 2X+1 at power 5
    for part in range(16):
        for r in range(3):
            for new in pp.new_partition(part, 4, 5):
                assert i._replica2part2dev[r][new] == p._replica2part2dev[r][part]
    done = {"precheck", "prepare", "relink", "increase"}
    assert pp.next_phase("switched", done, start_power=4, power_now=5).next == "cleanup"
    assert pp.next_phase("switched", done | {"cleanup"}, start_power=4,
                         power_now=5).next == "finish"
    f = pp.apply_ring_phase(i, "finish")
    assert (f.part_power, f.next_part_power) == (5, None)
    assert pp.next_phase("none", done | {"cleanup", "finish"}).complete


def test_a_phase_already_made_is_not_made_twice(tmp_path):
    """A killed run (or swift-ring-builder) made the call: the builder is left as is."""
    p = pp.apply_ring_phase(builder(tmp_path), "prepare")
    assert pp.apply_ring_phase(p, "prepare") is None
    i = pp.apply_ring_phase(p, "increase")
    assert pp.apply_ring_phase(i, "increase") is None
    with pytest.raises(Refused, match="cannot prepare"):
        pp.apply_ring_phase(i, "prepare")


def test_a_ring_prepared_by_swift_ring_builder_resumes_at_prepare_then_relink(tmp_path):
    pos = pp.next_phase("prepared", set())
    assert pos.next == "prepare" and "swift-ring-builder" in pos.why
    assert pp.next_phase("switched", set()).next == "increase"


def test_cancel_before_the_increase_and_not_after(tmp_path):
    p = pp.apply_ring_phase(builder(tmp_path), "prepare")
    done = {"precheck", "prepare", "relink"}
    assert pp.next_phase("prepared", done, cancel=True).next == "cancel"
    c = pp.apply_ring_phase(p, "cancel")
    assert (c.part_power, c.next_part_power) == (4, 4)
    # a later run without --cancel knows it was cancelled (same power as at the start)
    pos = pp.next_phase("switched", done | {"cancel"}, start_power=4, power_now=4)
    assert pos.next == "cleanup" and pos.cancelled and "increase" not in pos.phases
    f = pp.apply_ring_phase(c, "finish")
    assert (f.part_power, f.next_part_power) == (4, None)
    with pytest.raises(Refused, match="cannot be cancelled"):
        pp.next_phase("switched", done | {"increase"}, cancel=True, start_power=4,
                      power_now=5)
    with pytest.raises(Refused, match="nothing to cancel"):
        pp.next_phase("none", set(), cancel=True)


def test_rings_at_different_points_are_refused(tmp_path):
    a = builder(tmp_path)
    with pytest.raises(Refused, match="different points"):
        pp.common_stage({"object": a, "object-1": pp.apply_ring_phase(a, "prepare")})


def test_a_finish_written_but_not_pushed_is_pushed_on_the_next_run():
    """ringmgr killed after the finish call was committed: the builders are back at
    stage 'none', the journal has no finish; the next run pushes it (not a refusal)."""
    done = {"precheck", "prepare", "relink", "increase", "cleanup"}
    pos = pp.next_phase("none", done, start_power=4, power_now=5)
    assert pos.next == "finish" and "still has to reach every node" in pos.why
    cancelled = pp.next_phase("none", {"precheck", "prepare", "cancel", "cleanup"},
                              start_power=4, power_now=4)
    assert cancelled.next == "finish" and cancelled.cancelled
    assert pp.next_phase("none", done | {"finish"}).complete


def test_a_journal_that_does_not_match_the_builders_is_refused():
    with pytest.raises(Refused, match="changed outside"):
        pp.next_phase("none", {"precheck", "prepare", "relink"})


# -- node-side parsers --------------------------------------------------------------

OBJECT_CONF = """\
[DEFAULT]
devices = /srv/node
user = swift
recon_cache_path = /var/cache/swift
mount_check = false

[pipeline:main]
pipeline = recon object-server

[filter:recon]
use = egg:swift#recon
recon_cache_path = /var/cache/swift2

[object-replicator]
reclaim_age = 3600
"""


def test_object_conf_reclaim_age_recon_path_and_own_relinker_conf():
    c = rl.parse_object_conf(OBJECT_CONF, "/etc/swift/object-server.conf")
    assert (c.reclaim_age, c.recon_cache_path, c.has_relinker_section, c.mount_check) == \
        (3600, "/var/cache/swift2", False, False)
    own = rl.own_relinker_conf(c)
    again = rl.parse_object_conf(own, "x")
    assert again.has_relinker_section and again.relinker_recon_cache_path == "/var/cache/swift2"
    bad = rl.parse_object_conf(OBJECT_CONF + "[object-relinker]\n", "p")
    assert "differs" in rl.conf_problem(bad)
    assert rl.parse_object_conf("[DEFAULT]\n", "p").reclaim_age == 604800


@pytest.mark.parametrize("out,state,pid,rc", [
    ("state=finished rc=0\n", "finished", None, 0),
    ("state=running pid=4242\n", "running", 4242, None),
    ("state=started pid=17\n", "started", 17, None),
    ("state=busy\n", "busy", None, None),
    ("garbage", "error", None, None),
])
def test_parse_state(out, state, pid, rc):
    st = rl.parse_state(out)
    assert (st.state, st.pid, st.rc) == (state, pid, rc)


def test_parse_df_and_inode_and_space_rules():
    out = ("== /srv/node/sdb\nFilesystem Inodes IUsed IFree IUse% Mounted on\n"
           "/dev/loop3 1000 600 400 60% /srv/node/sdb\n-- space\n"
           "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
           "/dev/loop3 301056 300800 256 99% /srv/node/sdb\n== /srv/node/sdc\n"
           "df: /srv/node/sdc: No such file or directory\n-- space\n"
           "df: /srv/node/sdc: No such file or directory\n")
    got = rl.parse_df_per_path(out)
    assert got["/srv/node/sdb"] == {"inodes": 1000, "used": 600, "free": 400,
                                    "size_kib": 301056, "avail_kib": 256}
    assert got["/srv/node/sdc"] is None
    assert "400 inodes free" in rl.inode_problem("sdb", got["/srv/node/sdb"])
    assert rl.inode_problem("sdb", {"inodes": 1000, "used": 100, "free": 900}) is None
    assert rl.space_problem("sdb", got["/srv/node/sdb"]) == (
        "sdb: 256 KiB free, the relink of 600 inodes needs about 600 KiB (new inodes and "
        "directories): free space first")
    assert rl.space_problem("sdb", {**got["/srv/node/sdb"], "avail_kib": 600}) is None
    # the real df, locally: both tables parsed
    real = subprocess.run(rl.df_argv(["/", "/nonexistent-dir"]), capture_output=True,
                          text=True).stdout
    mine = rl.parse_df_per_path(real)
    assert mine["/nonexistent-dir"] is None
    assert mine["/"]["size_kib"] > mine["/"]["avail_kib"] > 0


def test_relinker_progress_judges_each_device_and_policy():
    data = {"devices": {"sdb": {"policies": {"0": {"step": "relink", "parts_done": 16,
                                                   "total_parts": 16, "total_time": 2.5},
                                             "1": {"step": "relink", "parts_done": 3,
                                                   "total_parts": 16}}}}}
    prog = rl.relinker_progress(data, "relink", ["sdb", "sdc"], [0, 1])
    assert prog["sdb"]["0"]["complete"] and not prog["sdb"]["1"]["complete"]
    assert prog["sdc"] == {"0": None, "1": None}
    assert rl.progress_incomplete(prog) == ["sdb policy 1: relink 3/16"]
    # cleanup progress is not relink progress
    assert not rl.relinker_progress(data, "cleanup", ["sdb"], [0])["sdb"]["0"]["complete"]


@pytest.mark.parametrize("sample, step", [("relinker-relink-midway.json", "relink"),
                                           ("relinker-cleanup-midway.json", "cleanup")])
def test_a_policy_just_started_is_not_complete(sample, step):
    """swift's recon reads 0/0 for a policy the relinker has only started on a device
    (no total_time yet): real replies captured from swift's relinker."""
    data = json.loads((Path(__file__).parents[1] / "data" / "recon" / sample).read_text())
    devs = sorted(data["devices"])
    prog = rl.relinker_progress(data, step, devs, [0, 1])
    started = [(d, p) for d in devs for p, r in data["devices"][d]["policies"].items()
               if "total_time" not in r]
    assert started, sample
    for d, p in started:
        assert prog[d][p]["total_parts"] == 0 and not prog[d][p]["complete"], (d, p)
    assert any(f"{d} policy {p}:" in line for d, p in started
               for line in rl.progress_incomplete(prog))
    done = [(d, p) for d in devs for p, r in data["devices"][d]["policies"].items()
            if "total_time" in r]
    assert done and all(prog[d][p]["complete"] for d, p in done)


def test_relinker_argv_passes_options_through():
    from ringmgr.config import Node

    node = Node("s01", "h", None, "/n/etc/swift", "swift:swift", mount_root="/n/srv",
                swift_command_prefix=("python3", "run.py", "/n/etc/swift"))
    argv = rl.relinker_argv(node, "relink", ["object-1", "object"], "/c.conf",
                            rl.RelinkOptions(50, "2", ("sdb",)))
    assert argv[:5] == ["python3", "run.py", "/n/etc/swift", "swift-object-relinker", "relink"]
    assert argv[argv.index("--policy") + 1] == "0" and argv.count("--policy") == 2
    for opt, val in (("--files-per-second", "50"), ("--workers", "2"), ("--device", "sdb"),
                     ("--devices", "/n/srv"), ("--swift-dir", "/n/etc/swift")):
        assert argv[argv.index(opt) + 1] == val


def test_the_start_script_never_starts_a_second_run(tmp_path):
    """The real script, locally: a second start finds the first; a result is kept."""
    from ringmgr.config import Node

    node = Node("s01", "h", None, str(tmp_path), "root", run_dir=str(tmp_path / "run"))
    cmd = ["sh", "-c", "sleep 30"]
    first = rl.parse_state(subprocess.run(rl.start_argv(node, "op", "relink", cmd),
                                          capture_output=True, text=True).stdout)
    try:
        assert first.state == "started" and first.pid
        second = rl.parse_state(subprocess.run(rl.start_argv(node, "op", "relink", cmd),
                                               capture_output=True, text=True).stdout)
        assert (second.state, second.pid) == ("running", first.pid)
        other = rl.parse_state(subprocess.run(rl.start_argv(node, "op2", "relink", cmd),
                                              capture_output=True, text=True).stdout)
        assert other.state == "busy", "the node lock keeps a second relinker out"
    finally:
        import os
        import signal

        os.killpg(os.getpgid(first.pid), signal.SIGKILL)
    import time

    for _ in range(100):   # SIGKILL is delivered asynchronously
        st = rl.parse_state(subprocess.run(rl.status_argv(node, "op", "relink"),
                                           capture_output=True, text=True).stdout)
        if st.state != "running":
            break
        time.sleep(0.05)
    assert st.state in ("died", "finished")
    for _ in range(100):   # until the killed wrapper's lock is released
        done = rl.parse_state(subprocess.run(rl.start_argv(node, "op3", "relink", ["true"]),
                                             capture_output=True, text=True).stdout)
        if done.state != "busy":
            break
        time.sleep(0.05)
    assert done.state in ("started", "finished")

    for _ in range(50):
        st = rl.parse_state(subprocess.run(rl.status_argv(node, "op3", "relink"),
                                           capture_output=True, text=True).stdout)
        if st.state == "finished":
            break
        time.sleep(0.1)
    assert (st.state, st.rc) == ("finished", 0)


# -- the CLI: refusals, dry run, status ------------------------------------------------

@pytest.mark.parametrize("ring", ["account", "container"])
def test_account_and_container_rings_are_refused_with_swifts_reason(cluster, ring):
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "increase-part-power", ring, "--yes", "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc["reason"] == "refused"
    assert "only supported for object rings" in doc["errors"][0]
    assert checksums(cluster.builder_dir) == before


def test_bad_workers_is_a_usage_error(cluster):
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "increase-part-power", "--workers", "many", "--yes")
    assert r.exit_code == 2 and "--workers" in r.stderr
    assert checksums(cluster.builder_dir) == before


def test_dry_run_prints_every_phase_with_host_commands(cluster):
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "increase-part-power", "--dry-run", "--files-per-second", "10",
                "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [s["phase"] for s in doc["plan"]] == list(pp.PHASES)
    relink = next(s for s in doc["plan"] if s["phase"] == "relink")
    assert {h["host"] for h in relink["host_steps"]} == {"s01", "s02", "s03"}
    argv = relink["host_steps"][0]["argv"]
    assert "swift-object-relinker" in argv and "10" in argv
    assert doc["written"] is False
    assert checksums(cluster.builder_dir) == before
    text = run_cli(cluster, "increase-part-power", "--dry-run", "--cancel")
    assert text.exit_code == 2 and "nothing to cancel" in text.stderr


def test_a_ring_prepared_by_swift_ring_builder_is_detected(cluster):
    assert run_cli(cluster, "set-min-part-hours", "object", "2", "--yes").exit_code == 0
    r = subprocess.run(["swift-ring-builder", str(cluster.builder_dir / "object.builder"),
                        "prepare_increase_partition_power"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    st = run_cli(cluster, "increase-part-power", "object", "--status", "--json")
    doc = json.loads(st.stdout)
    assert doc["phase"] == "prepare" and "swift-ring-builder" in doc["why"]
    assert doc["rings"]["object"]["stage"] == "prepared"
    # other ring changes refuse while it is in progress
    before = checksums(cluster.builder_dir)
    rb = run_cli(cluster, "rollback", "--yes")
    assert rb.exit_code == 2 and "partition-power increase" in rb.stderr
    assert checksums(cluster.builder_dir) == before



def test_rollback_across_a_finished_increase_is_refused(cluster):
    assert run_cli(cluster, "set-min-part-hours", "object", "2", "--yes").exit_code == 0
    assert run_cli(cluster, "set-min-part-hours", "object", "3", "--yes").exit_code == 0
    b = str(cluster.builder_dir / "object.builder")
    for cmd in ("prepare_increase_partition_power", "increase_partition_power",
                "finish_increase_partition_power", "write_ring"):
        r = subprocess.run(["swift-ring-builder", b, cmd], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "rollback", "--to", "1", "--yes")
    assert r.exit_code == 2 and "across a partition-power change" in r.stderr, r.output
    assert checksums(cluster.builder_dir) == before


def test_the_stop_script_ends_the_whole_relinker_tree(tmp_path):
    """--cancel while relinking: the real script stops the wrapper, the command and its
    children (a relinker's workers), the node's lock is free again, and a second stop
    finds nothing."""
    import os
    import time

    from ringmgr.config import Node

    node = Node("s01", "h", None, str(tmp_path), "root", run_dir=str(tmp_path / "run"))
    cmd = ["sh", "-c", "sleep 300 & sleep 301 & wait"]
    first = rl.parse_state(subprocess.run(rl.start_argv(node, "op", "relink", cmd),
                                          capture_output=True, text=True).stdout)
    assert first.state == "started"

    def tree():
        out = subprocess.run(["ps", "-e", "-o", "pid=,sid=,args="], capture_output=True,
                             text=True).stdout
        sid = os.getsid(first.pid)
        return [ln.split()[0] for ln in out.splitlines() if int(ln.split()[1]) == sid]

    for _ in range(50):
        if len(tree()) >= 5:       # flock, wrapper, sh, two sleeps
            break
        time.sleep(0.1)
    members = tree()
    assert len(members) >= 5, members
    try:
        stop = rl.parse_state(subprocess.run(rl.stop_argv(node, "op", "relink"),
                                             capture_output=True, text=True).stdout)
        assert (stop.state, stop.pid) == ("stopped", first.pid)
        alive = [p for p in members if os.path.exists(f"/proc/{p}") and
                 open(f"/proc/{p}/stat").read().split()[2] != "Z"]
        assert not alive, alive
    finally:
        for p in members:
            try:
                os.kill(int(p), 9)
            except OSError:
                pass
    st = rl.parse_state(subprocess.run(rl.status_argv(node, "op", "relink"),
                                       capture_output=True, text=True).stdout)
    assert st.state == "died"
    again = rl.parse_state(subprocess.run(rl.stop_argv(node, "op", "relink"),
                                          capture_output=True, text=True).stdout)
    assert again.state == "notrunning"
    nxt = rl.parse_state(subprocess.run(rl.start_argv(node, "op2", "cleanup", ["true"]),
                                        capture_output=True, text=True).stdout)
    assert nxt.state in ("started", "finished"), "the node's relinker lock is free"
