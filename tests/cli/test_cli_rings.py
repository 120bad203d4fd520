"""Ring commands through click's CliRunner and as a real subprocess, on real builders."""

import json
import os
import subprocess
import time

import pytest
from swift.common.ring import Ring, RingBuilder, RingData

from tests.helpers.refusal import one_line_error
from tests.helpers.cli import run_cli
from tests.helpers.mounts import read_only
from tests.helpers.ringfactory import lock_held, make_cluster

RINGS = ("account", "container", "object", "object-1")


def devs(cluster, ring):
    b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
    return [d for d in b.devs if d is not None], b


@pytest.fixture(autouse=True)
def hash_suffix(monkeypatch):
    """swift's Ring() wants a hash path suffix (normally from /etc/swift/swift.conf)."""
    import swift.common.utils as u

    monkeypatch.setattr(u, "HASH_PATH_SUFFIX", b"ringmgr-tests")


def test_status_lists_every_ring_grouped_by_node(cluster):
    r = run_cli(cluster, "status")
    assert r.exit_code == 0, r.output
    for ring in RINGS:
        assert f"{ring}: 64 partitions" in r.output
    assert "s01" in r.output and "ring.gz up to date" in r.output
    r = run_cli(cluster, "status", "--json")
    data = json.loads(r.stdout)
    assert set(data["rings"]) == set(RINGS)
    assert data["rings"]["object"]["devices"] == 12
    assert set(data["rings"]["object"]["nodes"]) == {f"s0{i}" for i in range(1, 7)}
    assert data["warnings"] and "nodes.s07.ip" in data["warnings"][0]


def test_remove_node_dry_run_writes_nothing(cluster):
    before = cluster.checksums()
    r = run_cli(cluster, "--json", "remove-node", "s03", "--dry-run", "--seed", "5")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["written"] is False
    assert set(data["rings"]) == set(RINGS)
    for ring in RINGS:
        rep = data["rings"][ring]
        assert rep["parts_moved"] > 0
        assert rep["parts_moved_pct"] == pytest.approx(100 * rep["parts_moved"] / (64 * 3), abs=0.01)
    assert cluster.checksums() == before


def test_remove_node_writes_every_ring_and_history(cluster):
    r = run_cli(cluster, "remove-node", "s03", "--yes", "--seed", "5")
    assert r.exit_code in (0, 1), r.output
    for ring in RINGS:
        ds, b = devs(cluster, ring)
        assert not [d for d in ds if d["ip"] == "127.0.9.3"]
        ring_obj = Ring(str(cluster.builder_dir), ring_name=ring)
        assert all(d is None or d["ip"] != "127.0.9.3" for d in ring_obj.devs)
        assert RingData.load(str(cluster.builder_dir / f"{ring}.ring.gz")).version == b.version
    backups = list((cluster.builder_dir / "backups").iterdir())
    assert len(backups) == 2 * len(RINGS)
    r = run_cli(cluster, "--json", "history")
    hist = json.loads(r.stdout)["history"]
    assert len(hist) == 1
    e = hist[0]
    assert e["seed"] == 5 and "remove-node" in " ".join(e["argv"])
    assert set(e["rings"]) == set(RINGS)
    assert {d["device"] for d in e["removed_devices"] if d["ring"] == "object"} == {"sdb", "sdc"}
    for r_ in e["rings"].values():
        assert r_["builder_md5_before"] != r_["builder_md5_after"]
        assert r_["version_after"] > r_["version_before"]
    # the audit log has the command
    assert "remove-node s03" in open(os.environ["RINGMGR_LOG"]).read()


def test_same_seed_gives_what_the_dry_run_predicted(cluster):
    dry = json.loads(run_cli(cluster, "--json", "remove-node", "s02", "--dry-run", "--seed", "9").stdout)
    real = json.loads(run_cli(cluster, "--json", "remove-node", "s02", "--yes", "--seed", "9").stdout)
    assert real["written"] is True
    for ring in RINGS:
        assert dry["rings"][ring]["parts_moved"] == real["rings"][ring]["parts_moved"]
        assert dry["rings"][ring]["devices"] == real["rings"][ring]["devices"]


def test_remove_device_and_set_weight(cluster):
    r = run_cli(cluster, "remove-device", "s01", "sdc", "--yes")
    assert r.exit_code in (0, 1), r.output
    for ring in RINGS:
        ds, _ = devs(cluster, ring)
        assert [d["device"] for d in ds if d["ip"] == "127.0.9.1"] == ["sdb"]
    r = run_cli(cluster, "set-weight", "s02/sdb", "50", "--yes")
    assert r.exit_code in (0, 1), r.output
    for ring in RINGS:
        ds, _ = devs(cluster, ring)
        w = {d["device"]: d["weight"] for d in ds if d["ip"] == "127.0.9.2"}
        assert w == {"sdb": 50.0, "sdc": 100.0}


def test_add_node_uses_config_devices_and_ports(cluster):
    r = run_cli(cluster, "--json", "add-node", "s07", "--yes")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["written"] is True
    for ring, port in (("account", 6202), ("container", 6201), ("object", 6200), ("object-1", 6200)):
        ds, b = devs(cluster, ring)
        new = [d for d in ds if d["ip"] == "127.0.9.7"]
        assert sorted(d["device"] for d in new) == ["sdb", "sdc"]
        assert {d["port"] for d in new} == {port}
        assert all(d["parts"] > 0 for d in new)
    before = cluster.checksums()
    r = run_cli(cluster, "add-node", "s07", "--yes")
    assert r.exit_code == 2
    one_line_error(r.output, "already in the ring")
    assert cluster.checksums() == before


def test_add_node_with_zero_weight_in_config_refused(tmp_path):
    c = make_cluster(tmp_path)
    c.config.write_text(c.config.read_text().replace(
        'ip = "127.0.9.7"\nzone = 1\ndevices = { sdb = 100.0, sdc = 100.0 }',
        'ip = "127.0.9.7"\nzone = 1\ndevices = { sdb = 0.0, sdc = 100.0 }'))
    before = c.checksums()
    r = run_cli(c, "add-node", "s07", "--yes")
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1].startswith(
        "ringmgr: error: nodes.s07.devices.sdb = 0.0: add-node needs a positive weight")
    assert c.checksums() == before


def test_no_terminal_and_no_yes_refuses(cluster):
    before = cluster.checksums()
    r = run_cli(cluster, "remove-node", "s03")
    assert r.exit_code == 2
    assert "--yes" in r.output
    assert cluster.checksums() == before


def test_answering_no_changes_nothing(cluster, monkeypatch):
    before = cluster.checksums()
    monkeypatch.setattr("ringmgr.cli.app.interactive", lambda: True)
    r = run_cli(cluster, "remove-node", "s03", input="n\n")
    assert r.exit_code == 2 and "not confirmed" in r.output
    assert cluster.checksums() == before


def test_rebalance_with_nothing_to_do_is_exit_1_unwritten(cluster):
    before = cluster.checksums()
    r = run_cli(cluster, "--json", "rebalance", "--yes")
    assert r.exit_code == 1, r.output
    assert json.loads(r.stdout)["written"] is False
    assert cluster.checksums() == before


def test_min_part_hours_gate_blocks_weight_change_and_writes_nothing(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=24, gate_open=False)
    before = c.checksums()
    r = run_cli(c, "--json", "set-weight", "s01", "50", "--yes")
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    assert data["written"] is False
    assert data["reason"] == "gate_closed" and data["errors"] == []
    msg = data["message"]
    assert data["warnings"] == [msg]
    (nxt,) = data["next"]  # the same command, once the gate opens (ISO time, UTC)
    assert "set-weight s01 50" in nxt["command"] and nxt["not_before"].endswith("Z")
    for ring in RINGS:
        assert f"{ring}: min_part_hours (24 h)" in msg
    assert " h " in msg or "23 h" in msg
    assert "No partitions could be reassigned" not in r.output
    assert c.checksums() == before


def test_min_part_hours_gate_never_blocks_removal(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=24, gate_open=False)
    r = run_cli(c, "--json", "remove-node", "s04", "--yes")
    assert r.exit_code == 1, r.output  # written, with a note about the rest
    data = json.loads(r.stdout)
    assert data["written"] is True
    assert any("can follow in" in m or "rebalance` again" in m for m in data["messages"])
    ds, _ = devs(c, "object")
    assert not [d for d in ds if d["ip"] == "127.0.9.4"]


def test_partition_power_increase_refused(cluster):
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    b.prepare_increase_partition_power()
    b.save(str(cluster.builder_dir / "object.builder"))
    before = cluster.checksums()
    r = run_cli(cluster, "remove-node", "s03", "--yes")
    assert r.exit_code == 2
    assert "partition-power increase is in progress" in r.output
    assert cluster.checksums() == before


@pytest.mark.parametrize("args, expect", [
    (["remove-node", "s99"], "unknown node 's99'"),
    (["remove-device", "s01", "sdz"], "device sdz of node s01"),
    (["set-weight", "s01", "-5"], "non-negative"),
    (["set-weight", "s01", "heavy"], "not a number"),
    (["set-weight", "s01", "nan"], "finite number"),
    (["set-weight", "s01", "1e300"], "beyond the sane bound"),
    (["set-weight", "s01", "1e308"], "beyond the sane bound"),
    (["set-weight", "s01/", "0"], "device name after '/' is empty"),
    (["set-weight", "/sdb", "0"], "node name is empty"),
    (["set-weight", "s01", "5000"], "median"),  # 50x the median 100: a typo guard
    (["remove-node", "s01", "--used-bytes", "object=nan", "--dry-run"], "finite"),
    (["remove-node", "s01", "--used-bytes", "object=inf", "--dry-run"], "finite"),
    (["remove-node", "s01", "--used-bytes", "object=1e30", "--dry-run"], "sane bound"),
    (["remove-node", "s01", "--used-bytes", "nosuchring=5", "--dry-run"], "RING=BYTES"),
    (["set-weight", "s99/sdb", "5"], "unknown node"),
    (["remove-node", "s07"], "has no devices in any ring"),
    (["rollback", "--to", "42"], "no changes recorded yet"),
    (["remove-node", "s01", "--used-bytes", "object=lots", "--dry-run"], "RING=BYTES"),
    (["remove-node", "s01", "--seed", "x"], "'x' is not a valid integer"),
    (["no-such-command"], "No such command"),
])
def test_bad_input_exit_2_one_line_nothing_changed(cluster, args, expect):
    before = cluster.checksums()
    r = run_cli(cluster, *args, "--yes") if args[0] not in ("no-such-command",) else run_cli(cluster, *args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("ringmgr: error: ") and expect in lines[-1], r.output
    assert "Traceback" not in r.output
    assert cluster.checksums() == before


@pytest.mark.parametrize("damage", ["truncate-builder", "corrupt-builder", "missing-builder",
                                    "corrupt-ring", "missing-ring", "truncate-ring"])
def test_damaged_files_refused(cluster, damage):
    kind, what = damage.split("-")
    path = cluster.builder_dir / ("object.builder" if what == "builder" else "object.ring.gz")
    if kind == "missing":
        path.unlink()
    elif kind == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
        path.write_bytes(bytes(data))
    before = cluster.checksums()
    r = run_cli(cluster, "remove-node", "s03", "--yes")
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("ringmgr: error: ") and "object." in last
    assert cluster.checksums() == before


def test_bad_config_exit_2_nothing_changed(cluster):
    cluster.config.write_text(cluster.config.read_text() + "\n[nodes.s01x]\nip = \"1.1.1.1\"\nzon = 2\n")
    before = cluster.checksums()
    r = run_cli(cluster, "remove-node", "s03", "--yes")
    assert r.exit_code == 2
    assert "nodes.s01x.zon: unknown key" in r.output
    assert cluster.checksums() == before


def test_builder_dir_not_writable(cluster):
    """A read-only filesystem (root ignores file modes, so mode bits would prove nothing)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount")
    before = cluster.checksums()
    with read_only(cluster.builder_dir):
        r = run_cli(cluster, "remove-node", "s03", "--yes")
        assert r.exit_code == 2, r.output
        assert "not writable" in r.output
    assert cluster.checksums() == before


def test_lock_held_by_another_process_names_it(cluster):
    with lock_held(cluster.builder_dir) as holder:
        before = cluster.checksums()
        t = time.monotonic()
        r = run_cli(cluster, "remove-node", "s03", "--yes")
        assert r.exit_code == 2, r.output
        assert time.monotonic() - t >= 1.4  # waited lock_timeout
        assert f"pid {holder.pid}" in r.output and "locked by" in r.output
        assert cluster.checksums() == before


def test_real_subprocess_exit_codes_and_json(cluster):
    env = dict(os.environ, RINGMGR_CONFIG=str(cluster.config))
    p = subprocess.run(["ringmgr", "remove-node", "s05", "--dry-run", "--json"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["written"] is False
    p = subprocess.run(["ringmgr", "remove-node", "s05"], capture_output=True, text=True,
                       env=env, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "--yes" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run(["ringmgr", "--json", "remove-node", "s05", "--yes"],
                       capture_output=True, text=True, env=env)
    assert p.returncode in (0, 1), p.stderr
    assert json.loads(p.stdout)["written"] is True


def definitions(builder) -> dict:
    """id -> (ip, device, weight, zone, region, port) of every device in a builder."""
    return {d["id"]: (d["ip"], d["device"], d["weight"], d["zone"], d["region"], d["port"])
            for d in builder.devs if d is not None}


def test_rollback_restores_previous_set_with_higher_version(tmp_path):
    cluster = make_cluster(tmp_path, min_part_hours=0)
    original = {ring: RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
                for ring in RINGS}
    assert run_cli(cluster, "remove-node", "s03", "--yes").exit_code in (0, 1)
    assert run_cli(cluster, "set-weight", "s01", "50", "--yes").exit_code in (0, 1)
    mid = {ring: RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder")) for ring in RINGS}
    # undo the latest (set-weight): back to the state right after change 1
    r = run_cli(cluster, "rollback", "--yes")
    assert r.exit_code == 0, r.output
    for ring in RINGS:
        b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
        assert [d and d["weight"] for d in b.devs] != [d and d["weight"] for d in mid[ring].devs]
        assert b.version == mid[ring].version + 1
        assert not [d for d in b.devs if d and d["ip"] == "127.0.9.3"]
        # the devices as they were before any change, less the removed node's: the
        # set-weight of s01 is undone, nothing else came back or changed
        assert definitions(b) == {k: v for k, v in definitions(original[ring]).items()
                                  if v[0] != "127.0.9.3"}
    # all the way back to the start: --to 0 is not a change; roll back change 1 via --to
    r = run_cli(cluster, "--json", "history")
    ids = [e["id"] for e in json.loads(r.stdout)["history"]]
    assert ids == [1, 2, 3]
    r = run_cli(cluster, "rollback", "--to", "1", "--dry-run")
    assert r.exit_code == 0 and "restore" in r.output
    r = run_cli(cluster, "rollback", "--yes")  # undo the rollback itself
    assert r.exit_code == 0
    for ring in RINGS:
        b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
        assert [d and d["weight"] for d in b.devs] == [d and d["weight"] for d in mid[ring].devs]
        ring_obj = Ring(str(cluster.builder_dir), ring_name=ring)
        assert ring_obj._num_devs == len([d for d in b.devs if d])



def test_write_rings_repairs_stale_ring(cluster):
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    b.set_dev_weight(0, 42.0)
    b.save(str(cluster.builder_dir / "object.builder"))
    r = run_cli(cluster, "--json", "status")
    assert json.loads(r.stdout)["rings"]["object"]["ring_gz"] == "stale"
    assert r.exit_code == 1
    before = cluster.checksums()
    r = run_cli(cluster, "--json", "write-rings", "--dry-run")
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data["written"] is False and data["rings"] == ["object"]
    assert data["states"]["object"]["state"] == "stale"
    assert data["reason"] == "ok"
    assert data["next"] == [{"command": f"ringmgr --config {cluster.config} --json write-rings",
                             "not_before": None}]
    assert cluster.checksums() == before
    r = run_cli(cluster, "write-rings", "--yes")
    assert r.exit_code == 0, r.output
    r = run_cli(cluster, "--json", "status")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["rings"]["object"]["ring_gz"] == "up to date"


def test_resume_lists_host_operations_in_progress(cluster, monkeypatch, tmp_path):
    from ringmgr.config import load_config
    from ringmgr.exec.runner import Journal, cluster_state_dir

    monkeypatch.delenv("RINGMGR_STATE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    state = cluster_state_dir(load_config(cluster.config))
    with Journal.open("replace-disk.s01.sdb", state) as j:
        j.mark("precheck", "done")
        j.mark("unmount", "failed", "device busy")
    r = run_cli(cluster, "--json", "resume")
    assert r.exit_code == 0, r.output
    ops = json.loads(r.stdout)["operations"]
    assert ops["replace-disk.s01.sdb"]["next"] == "unmount"
    assert ops["replace-disk.s01.sdb"]["command"] == "ringmgr replace-disk s01 sdb --resume"
    r = run_cli(cluster, "resume", "replace-disk.s02.sdc")
    assert r.exit_code == 2 and "no operation" in r.output


@pytest.mark.parametrize("args", [["status"], ["history"], ["resume"], ["push"], ["verify"],
                                  ["rollback"], ["write-rings"], ["remove-node", "s01"]])
@pytest.mark.parametrize("kind", ["file", "missing"])
def test_builder_dir_that_is_a_file_or_missing_is_bad_input(cluster, args, kind):
    target = cluster.root / "not-a-dir"
    if kind == "file":
        target.write_text("x")
    cluster.config.write_text(cluster.config.read_text().replace(
        f'builder_dir = "{cluster.builder_dir}"', f'builder_dir = "{target}"'))
    before = cluster.checksums()
    r = run_cli(cluster, *args, "--yes") if args[0] in ("rollback", "write-rings", "remove-node") \
        else run_cli(cluster, *args)
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines()[-1] == (
        f"ringmgr: error: builder_dir {target} does not exist or is not a directory"), r.output
    assert "internal error" not in r.output
    assert cluster.checksums() == before
    assert not kind == "file" or target.read_text() == "x"


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_history_limit_must_be_positive(cluster, limit):
    assert run_cli(cluster, "set-weight", "s01", "50", "--yes", "--seed", "1").exit_code in (0, 1)
    r = run_cli(cluster, "history", f"--limit={limit}")
    assert r.exit_code == 2
    assert r.output.strip().startswith("ringmgr: error: Invalid value for '--limit'")
    one = json.loads(run_cli(cluster, "--json", "history", "--limit", "1").stdout)
    assert [e["id"] for e in one["history"]] == [1]


def test_push_sends_only_swift_ring_names(cluster):
    """A stray copy (`old.ring.gz`, `object-x.ring.gz`) in builder_dir never reaches the
    nodes: swift reads only account, container, object and object-N."""
    from ringmgr.ops.push import load_local_rings

    ring = cluster.builder_dir / "object.ring.gz"
    for stray in ("object-x.ring.gz", "old copy.ring.gz"):
        (cluster.builder_dir / stray).write_bytes(ring.read_bytes())
    assert sorted(load_local_rings(cluster.builder_dir, None)) == sorted(
        f"{r}.ring.gz" for r in RINGS)


def test_push_refused_while_a_change_is_pending_says_so_plainly(cluster):
    (cluster.builder_dir / ".ringmgr" / "txn").mkdir(parents=True)
    before = cluster.checksums()
    r = run_cli(cluster, "push", "--dry-run")
    assert r.exit_code == 2
    assert r.output.strip() == (
        f"ringmgr: error: an interrupted ring change is pending in {cluster.builder_dir}: the "
        f"rings there may be a mix of old and new; finish or undo it with `ringmgr resume` "
        f"before pushing")
    assert cluster.checksums() == before


def test_set_weight_shows_old_and_new_weight_and_guards_typos(cluster):
    r = run_cli(cluster, "set-weight", "s01/sdb", "80", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "s01/sdb (id 0): 100 -> 80" in r.output
    before = cluster.checksums()
    r = run_cli(cluster, "set-weight", "s04", "5000", "--yes")  # meant 500? 50x the median
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1].startswith("ringmgr: error: refused")
    assert "median device weight" in r.output and "--force" in r.output
    assert cluster.checksums() == before
    r = run_cli(cluster, "--json", "set-weight", "s04", "5000", "--yes", "--force")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["written"] is True
    r = run_cli(cluster, "set-weight", "s04", "0", "--yes")  # draining is never a typo
    assert r.exit_code in (0, 1), r.output


def test_rollback_preview_is_the_report_of_a_ring_change(cluster):
    assert run_cli(cluster, "remove-node", "s03", "--yes", "--seed", "2").exit_code in (0, 1)
    before = cluster.checksums()
    r = run_cli(cluster, "--json", "rollback", "--dry-run")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["written"] is False
    for ring in RINGS:
        rep = data["rings"][ring]
        assert rep["parts_moved"] > 0 and rep["restore_from"].startswith("backups/")
        added = [d for d in rep["devices"] if d["status"] == "added"]
        assert {d["ip"] for d in added} == {"127.0.9.3"}
    r = run_cli(cluster, "rollback", "--dry-run")
    assert "devices back: 127.0.9.3/sdb, 127.0.9.3/sdc" in r.output
    assert "replica moves" in r.output
    assert cluster.checksums() == before


def test_status_says_when_and_by_which_change_a_node_was_removed(cluster):
    assert run_cli(cluster, "remove-node", "s03", "--yes").exit_code in (0, 1)
    data = json.loads(run_cli(cluster, "--json", "status").stdout)
    w = [x for x in data["warnings"] if "s03" in x]
    assert len(w) == 1 and "removed on " in w[0] and "by change #1" in w[0]
    assert "not yet added" not in w[0] and "rejoin-node s03" in w[0]
