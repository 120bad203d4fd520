"""builder_dir integrity under hostile conditions, through the CLI as real subprocesses:
output files that would overwrite what ringmgr did not create, ring files that are not
what their builders make, locks held through inherited descriptors, immutable and
edited builders, damaged history, full disks, and odd files."""

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from swift.common.ring import RingBuilder

from tests.helpers.checksums import checksums
from tests.helpers.procs import ringmgr_processes
from tests.helpers.replay import replay_with_swift
from tests.helpers.ringfactory import make_cluster

RINGS = ("account", "container", "object", "object-1")


def ringmgr(cluster, *args, fault=None, errno_name=None, **kw):
    env = dict(os.environ, RINGMGR_CONFIG=str(cluster.config),
               RINGMGR_LOG=str(cluster.root / "audit.log"))
    env.pop("RINGMGR_TEST_FAULT", None)
    env.pop("RINGMGR_TEST_FAULT_ERRNO", None)
    if fault is not None:
        env["RINGMGR_TEST_FAULT"] = str(fault)
    if errno_name is not None:
        env["RINGMGR_TEST_FAULT_ERRNO"] = errno_name
    return subprocess.run(["ringmgr", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, **kw)


def one_error_line(r) -> str:
    """The refusal: exit 2 and exactly one 'ringmgr: error:' line, returned."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("ringmgr: error: ")]
    assert len(errs) == 1, r.stderr
    assert "internal error" not in errs[0] and "Traceback" not in r.stderr, r.stderr
    return errs[0]


def swift_rb(*args, cwd=None):
    return subprocess.run(["swift-ring-builder", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, stdin=subprocess.DEVNULL)


def everything(cluster) -> dict:
    """Checksums of builder_dir and the config: proof that nothing changed."""
    out = checksums(cluster.builder_dir)
    out["<config>"] = checksums(cluster.config.parent).get(cluster.config.name)
    return out


# -- 1. output files -------------------------------------------------------------------

@pytest.mark.parametrize("target", ["rings/object.builder", "rings/object.ring.gz",
                                    "ringmgr.toml", "rings/.ringmgr/history.jsonl",
                                    "rings/backups/x.json"])
def test_plan_out_never_overwrites_a_builder_ring_config_or_state(cluster, target):
    ringmgr(cluster, "set-weight", "s01/sdb", "90", "--yes")  # history and backups exist
    path = cluster.root / target
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("{}")
    before = everything(cluster)
    for extra in ([], ["--force"]):
        r = ringmgr(cluster, "remove-node", "s06", "--plan-out", str(path), *extra)
        line = one_error_line(r)
        assert "--plan-out" in line
    assert everything(cluster) == before


def test_plan_out_and_chart_refuse_an_existing_file_unless_forced(cluster):
    plan = cluster.root / "plan.json"
    plan.write_text("my notes\n")
    chart = cluster.root / "c.png"
    chart.write_text("my picture\n")
    before = everything(cluster)
    line = one_error_line(ringmgr(cluster, "remove-node", "s06", "--plan-out", str(plan)))
    assert "exists" in line and "--force" in line
    line = one_error_line(ringmgr(cluster, "remove-node", "s06", "--dry-run",
                                  "--chart", str(chart)))
    assert "exists" in line
    assert plan.read_text() == "my notes\n" and chart.read_text() == "my picture\n"
    assert everything(cluster) == before
    r = ringmgr(cluster, "remove-node", "s06", "--plan-out", str(plan), "--force")
    assert r.returncode == 0, r.stderr
    assert json.loads(plan.read_text())["format"] == "ringmgr-plan"
    new = cluster.root / "new-plan.json"
    r = ringmgr(cluster, "remove-node", "s06", "--plan-out", str(new))
    assert r.returncode == 0 and new.stat().st_mode & 0o777 == 0o644


# -- 2. ring files that are not what their builder makes ----------------------------------

def _status(cluster) -> dict:
    r = ringmgr(cluster, "--json", "status")
    return json.loads(r.stdout)


def _push_refusal(cluster) -> str:
    """push must refuse before contacting any node (the one configured is unreachable)."""
    return one_error_line(ringmgr(cluster, "push", "--dry-run"))


def _ring_matches_builder(cluster, ring) -> bool:
    r = swift_rb(cluster.builder_dir / f"{ring}.builder")
    return "is up-to-date" in r.stdout


def test_set_info_without_version_bump_is_stale_and_repaired(cluster):
    obj = cluster.builder_dir / "object.builder"
    version = RingBuilder.load(str(obj)).version
    r = swift_rb(obj, "set_info", "--yes", "--ip", "127.0.9.1", "--change-meta", "moved")
    assert r.returncode == 0, r.stdout
    assert RingBuilder.load(str(obj)).version == version  # swift does not bump it
    assert "obsolete" in swift_rb(obj).stdout
    st = _status(cluster)
    assert st["rings"]["object"]["ring_gz"] == "stale"
    assert "devices differ" in st["rings"]["object"]["ring_gz_detail"]
    line = _push_refusal(cluster)
    assert "object.ring.gz is stale" in line and "write-rings" in line
    r = ringmgr(cluster, "write-rings", "--yes")
    assert r.returncode == 0, r.stderr
    assert _ring_matches_builder(cluster, "object")
    assert _status(cluster)["rings"]["object"]["ring_gz"] == "up to date"


def test_truncated_ring_that_swift_still_loads_is_corrupt(cluster):
    from swift.common.ring import RingData

    ring = cluster.builder_dir / "object.ring.gz"
    raw = gzip.decompress(ring.read_bytes())
    cut = raw[: len(raw) - 100]  # the last replica row loses 50 entries
    with open(ring, "wb") as f:  # a valid gzip file, with the ring's own name inside
        with gzip.GzipFile(filename="object.ring.gz", mode="wb", fileobj=f, mtime=0) as g:
            g.write(cut)
    rows = [len(r) for r in RingData.load(str(ring))._replica2part2dev_id]
    assert rows[-1] < rows[0]  # swift's loader accepts it
    st = _status(cluster)
    assert st["rings"]["object"]["ring_gz"] == "corrupt"
    assert "truncated" in st["rings"]["object"]["ring_gz_detail"]
    assert "object.ring.gz is corrupt" in _push_refusal(cluster)
    assert ringmgr(cluster, "write-rings", "--yes").returncode == 0
    assert _ring_matches_builder(cluster, "object")


def test_rings_swapped_between_rings_are_foreign(cluster):
    d = cluster.builder_dir
    a, b = d / "object.ring.gz", d / "object-1.ring.gz"
    tmp = d / "swap"
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)
    st = _status(cluster)
    assert st["rings"]["object"]["ring_gz"] == "foreign"
    assert "object-1's ring" in st["rings"]["object"]["ring_gz_detail"]
    assert st["rings"]["object-1"]["ring_gz"] == "foreign"
    assert "foreign" in _push_refusal(cluster)
    r = ringmgr(cluster, "--json", "write-rings", "--yes")
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(r.stdout)["rings"]) == ["object", "object-1"]
    assert _ring_matches_builder(cluster, "object") and _ring_matches_builder(cluster, "object-1")


def test_missing_ring_refuses_push_even_as_a_dry_run(cluster):
    (cluster.builder_dir / "container.ring.gz").unlink()
    line = _push_refusal(cluster)
    assert "container.ring.gz is missing" in line and "write-rings" in line


def test_gzip_bomb_in_builder_dir_is_not_inflated(cluster):
    ring = cluster.builder_dir / "account.ring.gz"
    with open(ring, "wb") as f:
        with gzip.GzipFile(filename="account.ring.gz", mode="wb", fileobj=f) as g:
            chunk = b"\0" * (1 << 20)
            for _ in range(200):  # 200 MB of zeros in a ~200 KB file
                g.write(chunk)
    st = _status(cluster)
    assert st["rings"]["account"]["ring_gz"] == "corrupt"
    assert "inflates past" in st["rings"]["account"]["ring_gz_detail"]


# -- 3. locks held through inherited descriptors --------------------------------------------

HOLD_AND_FORK = """
import os, sys, time
from pathlib import Path
from ringmgr.rings.lock import directory_lock
with directory_lock(Path(sys.argv[1]), 5):
    pid = os.fork()
    if pid == 0:            # the child keeps the inherited descriptor
        time.sleep(120)
        os._exit(0)
    print(pid, flush=True)
    os._exit(0)             # the process that took the lock dies at once
"""


def test_lock_message_names_the_live_holder_of_an_inherited_lock(cluster):
    p = subprocess.Popen([sys.executable, "-c", HOLD_AND_FORK, str(cluster.builder_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    child = int(p.stdout.readline().split()[0])
    p.wait(timeout=30)
    p.stdout.close()
    try:
        r = ringmgr(cluster, "remove-node", "s06", "--yes")
        line = one_error_line(r)
        assert f"pid {child}" in line and "inherited" in line
        assert f"pid {p.pid}" not in line  # /proc/locks names the dead taker
        assert "waiting up to" in r.stderr  # said at once, before the timeout
    finally:
        os.kill(child, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_during_forked_simulation_leaves_no_worker_and_no_lock(tmp_path, sig):
    # part power 14: big enough that the rings are simulated in forked workers
    c = make_cluster(tmp_path, part_power=14, min_part_hours=0,
                     rings=("account", "object", "object-1"))
    env = dict(os.environ, RINGMGR_CONFIG=str(c.config), RINGMGR_LOG=str(c.root / "a.log"))
    p = subprocess.Popen(["ringmgr", "--config", str(c.config), "remove-node", "s03", "--yes"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marker = str(c.config)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(ringmgr_processes(marker)) < 2:
        time.sleep(0.01)
    assert len(ringmgr_processes(marker)) >= 2, "no forked workers seen"
    p.send_signal(sig)
    p.wait(timeout=60)
    deadline = time.monotonic() + 10
    while ringmgr_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ringmgr_processes(marker) == [], "a worker outlived ringmgr"
    r = ringmgr(c, "resume")
    assert r.returncode == 0, r.stderr
    # the lock is free for swift-ring-builder-safe's own lock function too
    probe = subprocess.run([sys.executable, "-c",
                            "from swift.common.utils import lock_parent_directory as l\n"
                            f"with l({str(c.builder_dir / 'x')!r}, 1): print('ok')"],
                           capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() == "ok", probe.stderr


def test_a_running_change_is_not_called_interrupted(cluster):
    from tests.helpers.ringfactory import lock_held

    (cluster.builder_dir / ".ringmgr" / "txn").mkdir(parents=True)
    with lock_held(cluster.builder_dir, by="ringmgr") as holder:
        line = one_error_line(ringmgr(cluster, "remove-node", "s06", "--dry-run"))
        assert "being written right now" in line and f"pid {holder.pid}" in line
        assert "interrupted" not in line


# -- 4. a failed install --------------------------------------------------------------------

def _chattr(flag: str, path: Path) -> None:
    r = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"chattr {flag} {path}: {r.stderr.strip()} (the test directory must "
                    f"be on a filesystem with inode flags, e.g. ext4)")


def test_immutable_builder_is_refused_before_anything_changes(cluster):
    obj = cluster.builder_dir / "object.builder"
    before = everything(cluster)
    _chattr("+i", obj)
    try:
        r = ringmgr(cluster, "--json", "remove-node", "s03", "--yes")
        line = one_error_line(r)
        assert "immutable" in line and "chattr -i" in line
        assert json.loads(r.stdout)["written"] is False
    finally:
        _chattr("-i", obj)
    assert everything(cluster) == before
    assert _status(cluster)["pending_change"] is None


def test_an_io_error_after_the_commit_point_is_reported_as_partly_installed(cluster):
    r = ringmgr(cluster, "--json", "remove-node", "s03", "--yes", "--seed", "3",
                fault="install:object.ring.gz", errno_name="EIO")
    line = one_error_line(r)
    assert line.startswith("ringmgr: error: partly installed") and "ringmgr resume" in line
    assert json.loads(r.stdout)["written"] is True
    st = _status(cluster)
    assert st["pending_change"]["committed"] is True
    r = ringmgr(cluster, "resume")
    assert r.returncode == 0, r.stderr
    for ring in RINGS:
        b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
        assert not [d for d in b.devs if d and d["ip"] == cluster.nodes["s03"][0]]
        assert _ring_matches_builder(cluster, ring)


# -- 5. lost updates: compare-and-swap ---------------------------------------------------------

@pytest.mark.slow
def test_an_edit_made_during_a_change_is_not_overwritten(tmp_path):
    c = make_cluster(tmp_path, part_power=12, min_part_hours=0)
    env = dict(os.environ, RINGMGR_CONFIG=str(c.config), RINGMGR_LOG=str(c.root / "a.log"),
               RINGMGR_NO_PARALLEL="1")
    obj = c.builder_dir / "object.builder"
    p = subprocess.Popen(["ringmgr", "--json", "remove-node", "s03", "--yes"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    while line and "simulating" not in line:
        line = p.stderr.readline()
    assert "simulating" in line
    r = swift_rb(obj, "set_weight", "d0", "55", "--yes")  # plain swift-ring-builder: no lock
    assert r.returncode == 0, r.stdout
    edited = obj.read_bytes()
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2, err
    assert "object.builder changed while this change was being computed" in err
    assert "device 0: weight" in err
    assert obj.read_bytes() == edited
    assert json.loads(out)["written"] is False
    kept = list((c.builder_dir / ".ringmgr" / "set-aside").glob("*.object.builder"))
    assert len(kept) == 1
    assert not (c.builder_dir / ".ringmgr" / "txn").exists()


def test_resume_does_not_overwrite_an_edit_made_while_pending(cluster):
    r = ringmgr(cluster, "remove-node", "s03", "--yes", "--seed", "3", fault="txn:committed")
    assert r.returncode == -signal.SIGKILL
    obj = cluster.builder_dir / "object.builder"
    from tests.helpers.ringfactory import swift_ring_builder_safe

    safe = swift_ring_builder_safe(cluster.root)
    e = subprocess.run([str(safe), str(obj), "set_weight", "d0", "55", "--yes"],
                       capture_output=True, text=True)
    assert e.returncode == 0, e.stdout
    edited = obj.read_bytes()
    before = everything(cluster)
    line = one_error_line(ringmgr(cluster, "resume"))
    assert "object.builder changed while change #1 was pending" in line
    assert "--discard" in line and "--force" in line
    assert everything(cluster) == before
    r = ringmgr(cluster, "resume", "--discard")
    assert r.returncode == 0, r.stderr
    assert obj.read_bytes() == edited
    assert _status(cluster)["pending_change"] is None
    assert ringmgr(cluster, "--json", "history").returncode == 0


def test_resume_force_backs_up_the_edit_then_installs(cluster):
    r = ringmgr(cluster, "remove-node", "s03", "--yes", "--seed", "3", fault="txn:committed")
    assert r.returncode == -signal.SIGKILL
    obj = cluster.builder_dir / "object.builder"
    assert swift_rb(obj, "set_weight", "d0", "55", "--yes").returncode == 0
    edited = obj.read_bytes()
    r = ringmgr(cluster, "resume", "--force")
    assert r.returncode == 0, r.stderr
    assert obj.read_bytes() != edited
    saved = [p for p in (cluster.builder_dir / "backups").iterdir() if ".edited." in p.name]
    assert any(p.read_bytes() == edited for p in saved)


# -- 6. damaged history ----------------------------------------------------------------------

def _three_changes(cluster):
    for w in ("90", "80", "70"):
        r = ringmgr(cluster, "set-weight", "s01/sdb", w, "--yes")
        assert r.returncode in (0, 1), r.stderr


def test_a_damaged_middle_line_refuses_rollback_and_new_ids_until_repaired(cluster):
    _three_changes(cluster)
    hist = cluster.builder_dir / ".ringmgr" / "history.jsonl"
    lines = hist.read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # change #2 cut in the middle
    hist.write_text("\n".join(lines) + "\n")
    r = ringmgr(cluster, "history")
    assert r.returncode == 1 and "line 2 (not valid JSON)" in r.stderr
    before = everything(cluster)
    line = one_error_line(ringmgr(cluster, "rollback", "--to", "1", "--yes"))
    assert "line 2" in line and "history --repair" in line
    line = one_error_line(ringmgr(cluster, "set-weight", "s01/sdb", "60", "--yes"))
    assert "line 2" in line
    assert everything(cluster) == before
    r = ringmgr(cluster, "history", "--repair")
    assert r.returncode == 0 and "line 2" in r.stdout
    aside = list((cluster.builder_dir / ".ringmgr" / "set-aside").glob("*.history-damaged"))
    assert len(aside) == 1 and "line 2:" in aside[0].read_text()
    r = ringmgr(cluster, "--json", "set-weight", "s01/sdb", "60", "--yes")
    assert json.loads(r.stdout)["change_id"] == 4  # not 2 or 3 again


def test_a_torn_last_line_never_lets_an_id_be_reused(cluster):
    _three_changes(cluster)
    hist = cluster.builder_dir / ".ringmgr" / "history.jsonl"
    text = hist.read_text()
    hist.write_text(text[: len(text) - 40])  # the last record lost its end and newline
    line = one_error_line(ringmgr(cluster, "set-weight", "s01/sdb", "60", "--yes"))
    assert "line 3 (the last line is incomplete" in line


# -- 7. disk full and odd files ---------------------------------------------------------------

@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.mark.parametrize("free_kib", [4, 24, 48, 96, 160])
def test_a_full_disk_gives_one_line_and_leaves_nothing_half_done(tmp_path, tiny_fs, free_kib):
    c = make_cluster(tiny_fs, part_power=6)
    filler = tiny_fs / "filler"
    st = os.statvfs(tiny_fs)
    fill = st.f_bavail * st.f_frsize - free_kib * 1024
    with open(filler, "wb") as f:
        f.write(b"\0" * max(fill, 0))
    before = checksums(c.builder_dir)
    r = ringmgr(c, "remove-node", "s03", "--yes", "--seed", "3")
    if r.returncode not in (0, 1):  # 1: written, a rebalance remains
        line = one_error_line(r)
        assert "No space left on device" in line and "free space" in line
    leftovers = [p for p in c.builder_dir.rglob("*") if p.name.startswith(".ringmgr-tmp")]
    assert leftovers == []
    pending = _status(c)["pending_change"]
    if r.returncode == 2 and pending is None:
        assert checksums(c.builder_dir) == before  # refused: nothing changed at all
    if pending is not None:
        assert "ringmgr resume" in r.stderr
    filler.unlink()
    assert ringmgr(c, "resume").returncode == 0
    states = set()
    for ring in RINGS:
        b = RingBuilder.load(str(c.builder_dir / f"{ring}.builder"))
        states.add(any(d and d["ip"] == c.nodes["s03"][0] for d in b.devs))
        assert _ring_matches_builder(c, ring)
    assert len(states) == 1, "a mix of old and new rings"


@pytest.mark.parametrize("odd, expect", [
    (".lock", "is a directory"),
    (".ringmgr", "is not a directory"),
    ("history-dir", "history"),
    ("history-binary", "not valid JSON"),
])
def test_odd_files_in_builder_dir_give_one_line(cluster, odd, expect):
    d = cluster.builder_dir
    if odd == ".lock":
        (d / ".lock").unlink(missing_ok=True)
        (d / ".lock").mkdir()
    elif odd == ".ringmgr":
        (d / ".ringmgr").write_text("not a directory")
    elif odd == "history-dir":
        (d / ".ringmgr" / "history.jsonl").mkdir(parents=True)
    else:
        (d / ".ringmgr").mkdir()
        (d / ".ringmgr" / "history.jsonl").write_bytes(
            b"\x00\xff" + os.urandom(300).replace(b"\n", b"x") + b"\n")
    before = everything(cluster)
    line = one_error_line(ringmgr(cluster, "remove-node", "s03", "--yes"))
    assert expect in line
    assert everything(cluster) == before


def test_symlinked_builder_is_refused_not_replaced(cluster, tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    obj = cluster.builder_dir / "object.builder"
    shutil.move(obj, real / "object.builder")
    obj.symlink_to(real / "object.builder")
    before = everything(cluster)
    line = one_error_line(ringmgr(cluster, "remove-node", "s03", "--yes"))
    assert "symlink" in line
    assert obj.is_symlink() and everything(cluster) == before


def test_new_device_names_must_be_safe_paths(tmp_path):
    for bad in ['"../../etc"', '"a/b"', '""']:
        c = make_cluster(tmp_path / f"c{len(bad)}{bad.count('/')}",
                         extra_config=f"\n[nodes.s08]\nip = \"127.0.9.8\"\nzone = 1\n"
                                      f"devices = {{ {bad} = 100.0 }}\n")
        before = everything(c)
        r = ringmgr(c, "add-node", "s08", "--yes")
        if r.returncode == 2 and "device name" not in r.stderr:
            assert "nodes.s08.devices" in r.stderr  # the config check came first
        else:
            assert "device name" in one_error_line(r)
        assert everything(c) == before


def test_history_quotes_commands_for_copy_and_paste(cluster):
    c = cluster
    r = ringmgr(c, "remove-node", "s06", "--yes", "--used-bytes", "object=1e12")
    assert r.returncode in (0, 1), r.stderr
    out = ringmgr(c, "history").stdout
    cmd = [ln for ln in out.splitlines() if "command:" in ln][0].split("command: ", 1)[1]
    import shlex
    assert shlex.split(cmd)[1:] == ["remove-node", "s06", "--yes", "--used-bytes",
                                    "object=1e12"]


# -- 9-11. fidelity to swift-ring-builder -------------------------------------------------------

def _copy(cluster, tmp_path) -> Path:
    d = tmp_path / "swift"
    shutil.copytree(cluster.builder_dir, d, ignore=shutil.ignore_patterns(".ringmgr", "backups"))
    return d


def test_rebalance_with_the_gate_closed_saves_nothing_like_swift(tmp_path):
    c = make_cluster(tmp_path, gate_open=False)
    obj = c.builder_dir / "object.builder"
    assert swift_rb(obj, "set_weight", "d0", "50", "--yes").returncode == 0
    copy = _copy(c, tmp_path)
    s = swift_rb(copy / "object.builder", "rebalance")
    assert s.returncode == 1 and "No partitions could be reassigned" in s.stdout
    before = everything(c)
    r = ringmgr(c, "--json", "rebalance", "--yes")
    assert r.returncode == 1, r.stderr
    assert "No partitions could be reassigned" in r.stderr
    assert json.loads(r.stdout)["written"] is False
    assert everything(c) == before


def test_rebalance_of_a_balanced_ring_is_refused_like_swift_unless_forced(cluster, tmp_path):
    copy = _copy(cluster, tmp_path)
    s = swift_rb(copy / "object.builder", "rebalance")
    assert s.returncode == 1 and "There is no need to do so at this time" in s.stdout
    before = everything(cluster)
    r = ringmgr(cluster, "rebalance", "--yes")
    assert r.returncode == 1 and "there is no need to do so at this time" in r.stderr
    assert everything(cluster) == before
    r = ringmgr(cluster, "--json", "rebalance", "--yes", "--force", "--seed", "4")
    assert r.returncode in (0, 1), r.stderr
    assert json.loads(r.stdout)["written"] is True


def test_dispersion_of_a_builder_saved_without_one_is_computed(tmp_path):
    import pickle

    from swift.common.ring import RingBuilder as RB

    b = RB(6, 3, 0)
    for i, (zone, w) in enumerate([(1, 100), (2, 100), (3, 400), (3, 400)]):
        b.add_dev({"region": 1, "zone": zone, "ip": f"127.0.9.{i + 1}", "port": 6200,
                   "device": "sdb", "weight": w})
    b.rebalance(seed=1)
    true = b.dispersion
    assert true > 0
    d = b.to_dict()
    d.pop("dispersion", None)
    d.pop("_dispersion_graph", None)
    c = make_cluster(tmp_path, rings=("object",))
    path = c.builder_dir / "object.builder"
    path.write_bytes(pickle.dumps(d, protocol=2))
    b2 = RB.load(str(path))
    b2.get_ring().save(str(c.builder_dir / "object.ring.gz"))
    assert RB.load(str(path)).dispersion is None  # as an older swift saved it
    st = _status(c)
    assert st["rings"]["object"]["dispersion"] == pytest.approx(true, abs=0.01)
    out = swift_rb(path, "dispersion").stdout
    assert f"{true:.2f}" in out


@pytest.mark.parametrize("args", [["remove-node", "s03"], ["set-weight", "s02", "60"],
                                  ["add-node", "s07"], ["remove-device", "s01", "sdc"]])
def test_history_replays_exactly_with_swift_ring_builder(cluster, tmp_path, args):
    r = ringmgr(cluster, *args, "--yes", "--seed", "7")
    assert r.returncode in (0, 1), r.stderr
    entry = json.loads(ringmgr(cluster, "--json", "history").stdout)["history"][-1]
    assert entry["seed"] == 7
    text = ringmgr(cluster, "history", "--replay").stdout
    assert "swift-ring-builder" in text and "rebalance 7" in text
    for ring, copy in replay_with_swift(cluster, entry, tmp_path).items():
        ours = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
        theirs = RingBuilder.load(str(copy))
        assert [list(x) for x in ours._replica2part2dev] == \
               [list(x) for x in theirs._replica2part2dev], ring


@pytest.mark.parametrize("parts, removed, devs_changed, balance, dispersion, force, saved", [
    (0, 0, True, (5.0, 5.0), (0.0, 0.0), False, False),   # nothing moved: never saved
    (0, 1, False, (5.0, 5.0), (0.0, 0.0), False, False),  # removed, but nothing changed
    (0, 0, False, (5.0, 5.0), (0.0, 0.0), True, True),    # --force
    (9, 0, False, (5.0, 4.5), (0.0, 0.0), False, False),  # cowardly: < 1% better
    (9, 0, False, (5.0, 3.9), (0.0, 0.0), False, True),   # balance changed by >= 1
    (9, 0, False, (5.0, 4.9), (3.0, 1.5), False, True),   # dispersion changed by >= 1
    (9, 0, False, (5.0, 4.9), (None, 0.0), False, True),  # no dispersion known before
    (9, 0, True, (5.0, 5.0), (0.0, 0.0), False, True),    # a device changed
])
def test_swift_save_rule(parts, removed, devs_changed, balance, dispersion, force, saved):
    """The rule of swift-ring-builder's rebalance command, case by case."""
    from ringmgr.rings.engine import _swift_save_refusal
    from tests.helpers.small_rings import build_ring

    before = build_ring()
    after = build_ring()
    after.dispersion = dispersion[1]
    why = _swift_save_refusal(before, after, force, parts, removed, devs_changed,
                              balance[0], balance[1], dispersion[0], 0)
    assert (why is None) == saved, why
    if not saved:
        assert ("Cowardly" in why) == bool(parts or removed)
