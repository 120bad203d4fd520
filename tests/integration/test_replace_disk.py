"""replace-disk on real XFS loop disks with a temp fstab and mount_root (runs locally).

The node is this machine (host = "localhost"): its commands run through the
LocalExecutor, on loop devices created and removed by each test.
"""

import json
import os
import stat

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.loopdisk import (FSTAB_TEXT, blkid, loopdisks, mount,  # noqa: F401
                                    mounted_env, mounts_of)
from ringmgr.config import load_config
from ringmgr.exec.local import LocalExecutor
from ringmgr.ops.disk import ReplaceOptions, replace_disk
from ringmgr.ops.disk.safety import NODE_ARGV, node_argv

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


class Recording:
    """Passes every command to a real executor; remembers the state-changing ones."""

    def __init__(self, inner):
        self.inner, self.host, self.recorded = inner, inner.host, []

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True):
        if mutates:
            self.recorded.append(tuple(str(a) for a in argv))
        return self.inner.run(argv, check=check, input=input, timeout=timeout, mutates=mutates)


@pytest.fixture
def env(tmp_path, monkeypatch, loopdisks):
    return mounted_env(tmp_path, monkeypatch, loopdisks)


def ringmgr(env, *args):
    r = run_cli(env, *args)
    return r.exit_code, r.output


def swap(env):
    """Pull the old disk and put a blank one in (the config follows the new loop)."""
    env.disks.detach(env.old)
    env.new = env.disks.create(mkfs=False)
    env.write_config(env.new.dev)


def state_of(env):
    """Everything a refused run must leave as it was."""
    import hashlib

    st = os.stat(env.mount_point) if env.mount_point.exists() else None
    return {"fstab": env.fstab.read_bytes(),
            "rings": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in sorted((env.root / "builders").glob("*.*"))},
            "mounts": sorted(m for d in env.disks.disks for m in mounts_of(d.dev)),
            "fs": [blkid(d.dev).get("UUID") for d in env.disks.disks],
            "mp": (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) if st else None}


def test_two_phase_flow(env):
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--yes")
    assert code == 0, out
    assert "--replaced" in out and "Swap the disk" in out
    assert mounts_of(env.old.dev) == []
    st = os.stat(env.mount_point)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o755)
    assert env.fstab.read_text() == FSTAB_TEXT

    swap(env)
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes", "--json")
    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    assert report["finished"] and report["written"]
    uuid = report["params"]["uuid"]
    assert blkid(env.new.dev)["UUID"] == uuid and blkid(env.new.dev)["LABEL"] == env.dev
    assert mounts_of(env.new.dev) == [str(env.mount_point)]
    assert env.fstab.read_text() == (FSTAB_TEXT + f"LABEL={env.dev} {env.mount_point} xfs "
                                     f"noatime,nofail 0 0\n")
    assert (env.root / f"fstab.ringmgr-{report['params']['tag']}.bak").read_text() == FSTAB_TEXT
    assert [s["status"] for s in report["steps"]] == ["done", "done", "done", "done", "done",
                                                      "done", "done", "done"]
    assert report["steps"][0]["reason"] == "in an earlier run"

    assert report["refill"][0].startswith("replication will refill")
    assert "swift-recon --replication" in report["refill"][-2]
    for ring in ("account", "container", "object"):
        assert f"  {ring}: device id " in out  # the precheck shows the partitions per ring


def test_finished_run_is_not_repeated(env):
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    swap(env)
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes", "--json")
    assert code == 0, out
    uuid = json.loads(out[out.index("{"):])["params"]["uuid"]
    before = state_of(env)
    # the same command again, a dry run of it, and --resume: done already, nothing changes
    for extra in ([], ["--dry-run"], ["--resume"], ["--lazy"]):
        code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes", *extra)
        assert code == 0, out
        assert "was already replaced" in out and "nothing to do" in out and "--again" in out
        assert state_of(env) == before
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--yes", "--json")
    report = json.loads(out[out.index("{"):])
    assert code == 0 and report["written"] is False and report["already_done"]
    assert report["steps"] == [] and state_of(env) == before
    assert blkid(env.new.dev)["UUID"] == uuid
    # --again: a new replacement of the disk now in place (it failed too)
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--yes", "--again")
    assert code == 0 and "--replaced" in out, out
    assert mounts_of(env.new.dev) == []
    archived = list(env.state_dir.glob(f"replace-disk.s01.{env.dev}.*.json"))
    assert len(archived) == 1 and json.loads(archived[0].read_text())["params"]["uuid"] == uuid
    assert journal(env)["params"]["uuid"] != uuid


def test_finished_run_whose_disk_was_taken_out_starts_anew(env):
    """Once the replaced disk is no longer mounted (drive-audit --act, by hand), the
    finished journal is archived and the command starts a new replacement."""
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    swap(env)
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes")[0] == 0
    uuid = journal(env)["params"]["uuid"]
    import subprocess

    subprocess.run(["umount", str(env.mount_point)], check=True)
    refused(env, env.dev, "--replaced", "--yes", "--resume", expect=["nothing to resume"])
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--yes")
    assert code == 0 and "is not mounted" in out and "--replaced" in out, out
    assert journal(env)["params"]["uuid"] != uuid


def test_dry_run_lists_exactly_the_commands_a_real_run_executes(env):
    config = load_config(env.config)
    plan1 = replace_disk(config, "s01", env.dev, ReplaceOptions(), dry_run=True,
                         ex=LocalExecutor("s01"))
    assert plan1.summary.stopped and mounts_of(env.old.dev) == [str(env.mount_point)]
    real1 = Recording(LocalExecutor("s01"))
    run1 = replace_disk(config, "s01", env.dev, ReplaceOptions(), ex=real1)
    assert run1.summary.stopped
    assert plan1.commands == real1.recorded == [
        ("umount", "--", str(env.mount_point)),
        node_argv("guard", str(env.mount_root), env.dev)]

    swap(env)
    config = load_config(env.config)
    plan2 = replace_disk(config, "s01", env.dev, ReplaceOptions(replaced=True), dry_run=True,
                         ex=LocalExecutor("s01"))
    assert blkid(env.new.dev) == {}
    real2 = Recording(LocalExecutor("s01"))
    run2 = replace_disk(config, "s01", env.dev, ReplaceOptions(replaced=True), ex=real2)
    assert run2.summary.finished, run2.summary.table()
    assert plan2.commands == real2.recorded
    assert plan2.commands[0][0] == "mkfs.xfs" and f"uuid={run2.ctx.params['uuid']}" in plan2.commands[0]
    assert [c[0] for c in real2.recorded] == ["mkfs.xfs", "cp", "cp", "dd", "mv", "mount",
                                              "python3", "python3"]
    assert [c[len(NODE_ARGV)] for c in real2.recorded[-2:]] == ["check", "own"]


def test_dry_run_cli_changes_nothing_and_prints_commands(env):
    before = state_of(env)
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--dry-run")
    assert code == 0, out
    assert f"umount -- {env.mount_point}" in out
    assert f"python3 <ringmgr disk_node.py> guard {env.mount_root} {env.dev}" in out
    assert state_of(env) == before
    # what WILL happen, not what did: nothing was unmounted
    assert "is unmounted and guarded" not in out
    assert (f"a real run will unmount {env.mount_point}, guard it (root:root 0755) and stop "
            f"here") in out and "After the swap you will run: ringmgr replace-disk" in out


# -- refusals: exit 2, nothing destructive ran, the message says what to do ---------------
def one_line_error(out, *needles):
    errors = [l for l in out.splitlines() if l.startswith("ringmgr: error: ")]
    assert len(errors) == 1 and out.rstrip("\n").endswith(errors[0]), out
    assert "Traceback" not in out and "internal error" not in errors[0]
    for words in needles:
        assert words in errors[0], (words, errors[0])


def refused(env, *args, expect):
    before = state_of(env)
    code, out = ringmgr(env, "replace-disk", *(args if args[0] == "s99" else ("s01", *args)))
    assert code == 2, out
    assert "Traceback" not in out
    errors = [l for l in out.splitlines() if l.startswith("ringmgr: error: ")]
    assert len(errors) == 1 and out.rstrip("\n").endswith(errors[0]), out
    assert "internal error" not in errors[0]
    for words in expect:
        assert words in out, out
    assert state_of(env) == before
    return out


def test_refuses_block_device_mounted_elsewhere(env):
    mount(env.old.dev, env.root / "elsewhere")
    refused(env, env.dev, "--yes", expect=["mounted at", "elsewhere", "unmount it there"])


def test_refuses_when_device_gets_mounted_right_before_mkfs(env):
    config = load_config(env.config)
    replace_disk(config, "s01", env.dev, ReplaceOptions(), ex=LocalExecutor("s01"))
    env.disks.detach(env.old)
    env.new = env.disks.create(label=env.disks.unique_label())
    env.write_config(env.new.dev)
    before = state_of(env)

    def sneaky_mount():
        mount(env.new.dev, env.root / "sneaky")
        return True

    run = replace_disk(load_config(env.config), "s01", env.dev, ReplaceOptions(),
                       ex=LocalExecutor("s01"), ask_replaced=sneaky_mount, confirm=lambda s: None)
    assert "is mounted at" in str(run.summary.error) and "sneaky" in str(run.summary.error)
    assert [r.status for r in run.summary.results][2:5] == ["done", "failed", "pending"]
    after = state_of(env)
    assert after["fs"] == before["fs"] and after["fstab"] == before["fstab"]


def test_refuses_the_root_disk(env):
    root_src = next(l.split()[-2] for l in open("/proc/self/mountinfo")
                    if l.split()[4] == "/")
    if not root_src.startswith("/dev/"):
        pytest.skip(f"the root filesystem is not on a block device ({root_src})")
    env.disks.detach(env.old)
    env.write_config(root_src)
    refused(env, env.dev, "--yes", expect=["system disk", "block_devices"])


def test_refuses_a_device_with_holders(env):
    import subprocess

    env.disks.detach(env.old)
    env.old = env.disks.create(label=env.dev)
    env.write_config(env.old.dev)
    name = f"ringmgr-test-{env.dev}"
    r = subprocess.run(["dmsetup", "create", name, "--table",
                        f"0 2048 linear {env.old.dev} 0"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no device-mapper in this kernel: {r.stderr.strip().splitlines()[0]}")
    try:
        refused(env, env.dev, "--yes", expect=["held by dm-", "tear that down"])
    finally:
        subprocess.run(["dmsetup", "remove", name], check=False, capture_output=True)


@pytest.mark.parametrize("dev,expect", [
    ("nosuch", ["in neither the config nor the rings"]),
    ("sd/b", ["outside [A-Za-z0-9._-]"]),
    ("sd b", ["outside [A-Za-z0-9._-]"]),
    ("..", ["outside [A-Za-z0-9._-]"]),
])
def test_refuses_bad_device_names(env, dev, expect):
    refused(env, dev, "--yes", expect=expect)


def test_refuses_unknown_node(env):
    refused(env, "s99", env.dev, "--yes", expect=["unknown node 's99'"])


def test_refuses_device_in_rings_but_not_in_config(env):
    # "spare" is s01's device in every ring, but not under nodes.s01 in the config
    refused(env, "spare", "--yes", expect=["in the rings but not under nodes.s01",
                                           "add it to devices"])


def test_refuses_device_in_config_but_not_in_rings(env):
    env.write_config(env.old.dev, **{"rings.object.devices": "{ notinring = 1.0 }"})
    refused(env, "notinring", "--yes", expect=["in no ring"])


def test_refuses_missing_block_device(env):
    env.write_config("/dev/ringmgr-no-such-disk")
    refused(env, env.dev, "--yes", expect=["does not exist", "block_devices"])


def test_refuses_mount_point_outside_mount_root(env):
    env.disks.detach(env.old)
    env.mount_point.rmdir()
    (env.root / "outside").mkdir()
    env.mount_point.symlink_to(env.root / "outside")
    refused(env, env.dev, "--yes", expect=["outside mount_root", "remove the symlink"])


def test_refuses_to_format_the_disk_that_was_not_swapped(env):
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    old_uuid = blkid(env.old.dev)["UUID"]
    refused(env, env.dev, "--replaced", "--yes", expect=["was not swapped", "--force-format"])
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--force-format",
                        "--yes")
    assert code == 0, out
    assert blkid(env.old.dev)["UUID"] != old_uuid
    assert mounts_of(env.old.dev) == [str(env.mount_point)]


def test_refuses_destructive_step_without_yes_or_terminal(env):
    assert ringmgr(env, "replace-disk", "s01", env.dev)[0] == 0  # phase 1: nothing destructive
    swap(env)
    out = refused(env, env.dev, "--replaced", expect=["--yes"])
    assert "no terminal" in out


def test_refuses_a_disk_whose_partition_is_mounted(env):
    import subprocess

    env.disks.detach(env.old)
    disk, part = env.disks.create_partitioned()
    subprocess.run(["mkfs.xfs", "-q", "-f", "-L", env.disks.unique_label(), part], check=True,
                   capture_output=True)
    mount(part, env.root / "elsewhere")
    try:
        env.write_config(disk.dev)
        refused(env, env.dev, "--yes", expect=[f"{part} is mounted at", "elsewhere"])
    finally:
        subprocess.run(["umount", str(env.root / "elsewhere")], capture_output=True)


# -- killed at each step, then resumed --------------------------------------------------
KILLER = """
import os, signal, sys
from ringmgr.config import load_config
from ringmgr.exec.local import LocalExecutor
from ringmgr.ops.disk import ReplaceOptions, replace_disk

class KillAfter:
    '''SIGKILLs this process right after the n-th state-changing command ran.'''
    def __init__(self, inner, n):
        self.inner, self.host, self.n = inner, inner.host, n
    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True):
        r = self.inner.run(argv, check=check, input=input, timeout=timeout, mutates=mutates)
        if mutates:
            self.n -= 1
            if self.n == 0:
                os.kill(os.getpid(), signal.SIGKILL)
        return r

config, dev, n, replaced = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
replace_disk(load_config(config), "s01", dev, ReplaceOptions(replaced=replaced),
             ex=KillAfter(LocalExecutor("s01"), n), confirm=lambda step: None)
raise SystemExit("not killed")
"""


def kill_after(env, n, replaced):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", KILLER, str(env.config), env.dev, str(n),
                        "1" if replaced else "0"], capture_output=True, text=True,
                       env={**os.environ, "RINGMGR_STATE_DIR": str(env.state_dir)})
    assert r.returncode == -9, r.stderr


def journal(env):
    return json.loads((env.state_dir / f"replace-disk.s01.{env.dev}.json").read_text())


# (phase, n): killed after the n-th state-changing command of that phase
# phase 1: umount, guard; phase 2: mkfs, cp, cp, dd, mv, mount, check, own
@pytest.mark.slow
@pytest.mark.parametrize("phase,n,step", [
    (1, 1, "unmount"), (1, 2, "guard"), (2, 1, "mkfs"), (2, 2, "fstab"), (2, 4, "fstab"),
    (2, 6, "mount"), (2, 7, "check"), (2, 8, "chown"),
])
def test_killed_at_a_step_then_resumed(env, phase, n, step):
    if phase == 2:
        assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
        swap(env)
    kill_after(env, n, replaced=phase == 2)
    j = journal(env)
    assert j["steps"][step]["state"] == "started"
    uuid = j["params"]["uuid"]
    if phase == 1:
        code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--resume", "--yes")
        assert code == 0 and "--replaced" in out, out
        swap(env)
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--resume", "--yes")
    assert code == 0, out
    assert blkid(env.new.dev)["UUID"] == uuid
    assert mounts_of(env.new.dev) == [str(env.mount_point)]
    assert env.fstab.read_text() == (FSTAB_TEXT + f"LABEL={env.dev} {env.mount_point} xfs "
                                     f"noatime,nofail 0 0\n")
    assert sorted(p.name for p in env.root.iterdir() if p.name.startswith("fstab")) == [
        "fstab", f"fstab.ringmgr-{j['params']['tag']}.bak"]
    assert not any(env.mount_point.glob(".ringmgr-check-*"))


def test_busy_mount_point_refused_naming_the_holder_then_lazy(env):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              cwd=env.mount_point)
    try:
        out = refused(env, env.dev, "--yes", expect=["is busy", f"pid {holder.pid}",
                                                     "--lazy"])
        assert "python" in out
        code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--yes", "--lazy")
        assert code == 0, out
        assert str(env.mount_point) not in mounts_of(env.old.dev)
    finally:
        holder.kill()
        holder.wait()


def ring_weights(env):
    from swift.common.ring import RingBuilder

    out = {}
    for ring in ("account", "container", "object"):
        b = RingBuilder.load(str(env.root / "builders" / f"{ring}.builder"))
        out[ring] = [d["weight"] for d in b.devs if d and d["device"] == env.dev]
    return out


def ring_parts(env):
    from swift.common.ring import RingBuilder

    out = {}
    for ring in ("account", "container", "object"):
        b = RingBuilder.load(str(env.root / "builders" / f"{ring}.builder"))
        (d,) = [d for d in b.devs if d and d["device"] == env.dev]
        out[ring] = d["parts"]
    return out


def test_weight_zero_while_out_and_restored_after(env):
    assert ring_weights(env) == {r: [100.0] for r in ("account", "container", "object")}
    before = state_of(env)
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--weight-zero", "--dry-run")
    assert code == 0, out
    assert ring_weights(env) == {r: [100.0] for r in ("account", "container", "object")}
    assert state_of(env) == before
    assert "a real run changes the rings here; they must then be pushed" in out
    assert "is unmounted and guarded" not in out and "a real run will unmount" in out
    # with --push the plan has the push too: one session per node, in the weight step
    r = run_cli(env, "replace-disk", "s01", env.dev, "--weight-zero", "--push", "--dry-run",
                "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    steps = [(s["host"], s["step"], s["destructive"]) for s in doc["host_steps"]]
    assert steps[0] == ("s01", "weight-zero", True) and "python3" in " ".join(
        doc["host_steps"][0]["argv"])
    assert [s for _, s, _ in steps] == ["weight-zero", "unmount", "guard"]
    assert doc["steps"][0]["name"] == "weight-zero"     # steps and host_steps, both
    assert ring_weights(env) == {r: [100.0] for r in ("account", "container", "object")}
    assert state_of(env) == before
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--weight-zero", "--yes")
    assert code == 0, out
    assert ring_weights(env) == {r: [0.0] for r in ("account", "container", "object")}
    # said where the ring changed, and again as the last line of the report
    due = (f"PUSH DUE: weight 0 for s01/{env.dev} on every ring is written to the builders, "
           f"not yet on the nodes: run `ringmgr push` now")
    assert out.index(due) < out.index("] Unmount")
    assert out.rstrip("\n").splitlines()[-1].startswith(due)
    swap(env)
    # the flag need not be repeated: the journal knows the weight was set to 0
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes")
    assert code == 0, out
    assert "restored at the end" in out
    assert ring_weights(env) == {r: [100.0] for r in ("account", "container", "object")}
    assert mounts_of(env.new.dev) == [str(env.mount_point)]
    # the summary is about the restored rings: the partitions are back, and moved
    parts = ring_parts(env)
    assert all(n > 0 for n in parts.values())
    for ring, n in parts.items():
        assert (f"replication will refill {n} partitions of the {ring} ring onto "
                f"s01/{env.dev}") in out
    assert "no ring change is needed" not in out
    assert "the weight restore (100) gave" in out and "replica moves" in out
    assert out.rstrip("\n").splitlines()[-1].startswith(
        f"PUSH DUE: weight 100 for s01/{env.dev} on every ring is written")


def test_refuses_a_label_another_disk_already_carries(env):
    assert ringmgr(env, "replace-disk", "s01", env.dev)[0] == 0
    swap(env)
    twin = env.disks.create(label=env.dev)  # not the old disk: a different one, same label
    out = refused(env, env.dev, "--replaced", "--yes", expect=["already carries the label",
                                                               "--label"])
    assert twin.dev in out
    # still refused: the journal keeps the label
    refused(env, env.dev, "--replaced", "--yes", expect=["already carries the label"])
    other = env.disks.unique_label("o")
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes",
                        "--label", other)  # nothing formatted yet: the label may change
    assert code == 0, out
    assert blkid(env.new.dev)["LABEL"] == other and blkid(twin.dev)["LABEL"] == env.dev
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--again", "--yes",
                        "--label", env.disks.unique_label("x"))
    assert code == 0, out  # a new run (phase 1): free to choose again


# -- the new disk's size: smaller than the old one, or than its weight suggests -------------
GB = 10**9


@pytest.mark.parametrize("own,peers,old,expected", [
    # weight = size in GB on the other disks: 4000 -> 4 TB
    ({"object": 4000.0}, {"object": [(4000.0, 4000 * GB), (8000.0, 8000 * GB)]}, None,
     {"object": 4000 * GB}),
    # any unit: 100 per TB
    ({"object": 400.0}, {"object": [(800.0, 8000 * GB)]}, 4000 * GB, {"object": 4000 * GB}),
    # every disk weight 100 whatever its size: the weight says nothing about the size
    ({"object": 100.0}, {"object": [(100.0, 4000 * GB), (100.0, 8000 * GB)]}, None, {}),
    # the old disk does not fit the others' ratio: not proportional, no guess
    ({"object": 100.0}, {"object": [(100.0, 4000 * GB)]}, 8000 * GB, {}),
    # within 5 %: vendors' "4 TB" differ by a few GB
    ({"object": 4000.0}, {"object": [(4000.0, 4001 * GB), (4000.0, 3990 * GB)]}, None,
     {"object": pytest.approx(3995.5 * GB, rel=1e-3)}),
    # weight 0 (drive-audit --act), no other disk known, other ring only: nothing to say
    ({"object": 0.0}, {"object": [(100.0, 100 * GB)]}, None, {}),
    ({"object": 100.0}, {}, 100 * GB, {}),
    ({"object": 100.0, "account": 1.0},
     {"object": [(100.0, 100 * GB)], "account": [(1.0, 1000 * GB), (2.0, 1000 * GB)]}, None,
     {"object": 100 * GB}),
])
def test_weight_suggested_sizes(own, peers, old, expected):
    from ringmgr.ops.disk import weight_suggested_sizes

    assert weight_suggested_sizes(own, peers, old) == expected


@pytest.mark.parametrize("new,old,expected,words", [
    (4000 * GB, 4000 * GB, {"object": 4000 * GB}, []),
    (3990 * GB, 4000 * GB, {}, ["smaller than the one it replaces (4000.0 GB)"]),
    (2000 * GB, None, {"object": 4000 * GB}, ["smaller than its ring weight suggests "
                                              "(object ~4000.0 GB"]),
    (3900 * GB, None, {"object": 4000 * GB}, []),  # within the 5 % tolerance
    (2000 * GB, 4000 * GB, {"object": 4000 * GB}, ["than the one it replaces",
                                                   "than its ring weight suggests"]),
])
def test_size_warnings(new, old, expected, words):
    from ringmgr.ops.disk import size_warnings

    got = size_warnings(new, old, expected)
    assert len(got) == len(words)
    for text, w in zip(got, words):
        assert w in text and "set-weight" in text


def test_smaller_new_disk_is_warned_about(env):
    """Old disk 600 MB at weight 200, the node's other disk 300 MB at weight 100: the new
    300 MB disk is smaller than both the old one and what its weight suggests."""
    from tests.helpers.loopdisk import set_weights

    env.disks.detach(env.old)
    env.old = env.disks.create(label=env.dev, size_mb=600)
    spare = env.disks.create(size_mb=300)
    set_weights(env.root / "builders", env.node_ip, {env.dev: 200.0, "spare": 100.0})
    env.write_config(env.old.dev, more_block_devices={"spare": spare.dev})
    mount(env.old.dev, env.mount_point)
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    env.disks.detach(env.old)
    env.new = env.disks.create(mkfs=False, size_mb=300)
    env.write_config(env.new.dev, more_block_devices={"spare": spare.dev})
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes", "--json")
    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    assert report["precheck"]["weight_suggests"] == {
        r: pytest.approx(600 * 1024 * 1024, rel=0.01) for r in ("account", "container", "object")}
    (smaller, weight) = report["warnings"]
    assert "smaller than the one it replaces (0.6 GB)" in smaller
    assert "smaller than its ring weight suggests (account ~0.6 GB" in weight


# -- push messages after a weight change --------------------------------------------------
@pytest.mark.parametrize("written,push,dry_run,words", [
    (True, False, False, "push the changed rings to every node: ringmgr push"),
    (True, True, False, "the push above"),
    (False, False, False, "nothing to push"),
    (False, True, False, "nothing to push"),
    (False, False, True, "push them then: ringmgr push"),
    (False, True, True, "a real run pushes the changed rings"),
])
def test_push_note(written, push, dry_run, words):
    from ringmgr.ops.disk import push_note

    note = push_note(written, push, dry_run)
    assert words in note
    assert ("ringmgr push" in note) == (not push and (written or dry_run))


# -- holders (device-mapper cannot run in this kernel: one adapter fakes only that) --------
class HoldersFake:
    """A LocalExecutor whose only untruth: ``ls -1 /sys/block/<disk>/holders`` answers
    dm-7, as for a disk under device-mapper (which this kernel lacks). Every other
    command runs for real."""

    def __init__(self, inner, kname):
        self.inner, self.host, self.kname = inner, inner.host, kname

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True):
        if tuple(argv) == ("ls", "-1", f"/sys/block/{self.kname}/holders"):
            from ringmgr.exec.base import Result

            return Result(self.host, tuple(argv), 0, "dm-7\n", "")
        return self.inner.run(argv, check=check, input=input, timeout=timeout,
                              mutates=mutates)


def test_refuses_a_device_with_holders_reported_by_sysfs(env):
    from ringmgr.errors import Refused

    before = state_of(env)
    ex = Recording(HoldersFake(LocalExecutor("s01"), os.path.basename(env.old.dev)))
    with pytest.raises(Refused, match="held by dm-7.*tear that down"):
        replace_disk(load_config(env.config), "s01", env.dev, ReplaceOptions(replaced=True),
                     ex=ex, confirm=lambda s: None)
    assert ex.recorded == [] and state_of(env) == before


# -- the interactive confirmation repeats node and device ----------------------------------
def test_interactive_confirmation_names_node_and_device(env, monkeypatch):
    import ringmgr.cli.app

    monkeypatch.setattr(ringmgr.cli.app, "interactive", lambda: True)

    def ask(answers):
        r = run_cli(env, "replace-disk", "s01", env.dev, input=answers)
        return r.exit_code, r.output

    code, out = ask("n\n")  # "is the new disk in?" no: stop at the swap
    assert code == 0 and f"Is the new disk for {env.dev} in s01 now" in out, out
    assert mounts_of(env.old.dev) == []
    swap(env)
    before = state_of(env)
    code, out = ask("y\nn\n")  # the disk is in, but do not format
    assert code == 2
    one_line_error(out, "not confirmed")
    assert (f"on node s01: this destroys everything on device {env.dev} of node s01. "
            f"Continue?") in out
    assert state_of(env) == before
    code, out = ask("y\ny\n")
    assert code == 0, out
    assert mounts_of(env.new.dev) == [str(env.mount_point)]


def test_configured_mkfs_options_fstab_by_uuid_and_label(env):
    """mkfs_options reach mkfs.xfs (-i size=1024, as for old kernels); fstab_by = "uuid"
    writes a UUID= entry; --label names the filesystem."""
    import subprocess

    extra = {"mkfs_options": '["-i", "size=1024"]', "fstab_by": '"uuid"',
             "mount_options": '"noatime,nofail,logbufs=8"'}
    env.write_config(env.old.dev, **extra)
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    env.disks.detach(env.old)
    env.new = env.disks.create(mkfs=False)
    env.write_config(env.new.dev, **extra)
    label = env.disks.unique_label("L")
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes",
                        "--label", label, "--json")
    assert code == 0, out
    uuid = json.loads(out[out.index("{"):])["params"]["uuid"]
    assert blkid(env.new.dev)["LABEL"] == label
    info = subprocess.run(["xfs_info", str(env.mount_point)], capture_output=True,
                          text=True, check=True).stdout
    assert "isize=1024" in info
    assert env.fstab.read_text() == (FSTAB_TEXT + f"UUID={uuid} {env.mount_point} xfs "
                                     f"noatime,nofail,logbufs=8 0 0\n")


@pytest.mark.parametrize("args,expect", [
    (["--label", "abcdefghijklm"], ["longer than XFS's 12 characters", "--label"]),
    (["--label", "a/b"], ["outside [A-Za-z0-9._-]"]),
])
def test_refuses_bad_labels(env, args, expect):
    refused(env, env.dev, "--yes", *args, expect=expect)
    assert not (env.state_dir / f"replace-disk.s01.{env.dev}.json").exists()


def test_refuses_to_go_on_when_the_kernel_does_not_see_the_new_disk(env):
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    env.disks.detach(env.old)  # pulled, nothing in its place yet
    refused(env, env.dev, "--replaced", "--yes",
            expect=[f"the kernel does not see {env.old.dev}", "dmesg, lsblk"])


def test_label_cannot_change_once_formatted(env):
    """Killed right after mkfs: the filesystem has the journaled label; --label refuses."""
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    swap(env)
    kill_after(env, 1, replaced=True)
    out = refused(env, env.dev, "--replaced", "--yes", "--label", "otherlabel",
                  expect=["formatted (or began to format) with label", "omit --label"])
    assert blkid(env.new.dev)["LABEL"] == env.dev


def test_weight_zero_without_yes_or_terminal_is_refused_before_any_change(env):
    out = refused(env, env.dev, "--weight-zero", expect=["--yes", "no terminal"])
    assert ring_weights(env) == {r: [100.0] for r in ("account", "container", "object")}
    assert mounts_of(env.old.dev) == [str(env.mount_point)]
