"""replace-disk over SSH: the same two-phase flow on a real sshd test host.

The sshd host is this machine on a loopback address, so the node's loop devices,
temp fstab and mount_root are the same files; the commands go through SSHExecutor.
"""

import json
import os

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.loopdisk import FSTAB_TEXT, blkid, loopdisks, mount, mounted_env, mounts_of  # noqa: F401
from tests.helpers.loopdisk import over_sshd
from ringmgr.config import load_config
from ringmgr.exec.ssh import SSHExecutor
from ringmgr.ops.disk import ReplaceOptions, replace_disk
from tests.integration.test_replace_disk import Recording

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


@pytest.fixture
def env(tmp_path, monkeypatch, loopdisks, sshd_hosts_factory):
    hosts = sshd_hosts_factory(1)
    return mounted_env(tmp_path, monkeypatch, loopdisks, setup=lambda e: over_sshd(e, hosts))


def ringmgr(env, *args):
    r = run_cli(env, *args)
    return r.exit_code, r.output, r.stdout


def test_two_phase_flow_over_ssh(env):
    code, out, _ = ringmgr(env, "replace-disk", "s01", env.dev, "--yes")
    assert code == 0 and "--replaced" in out, out
    assert mounts_of(env.old.dev) == []
    env.disks.detach(env.old)
    env.new = env.disks.create(mkfs=False)
    env.write_config(env.new.dev)

    config = load_config(env.config)
    node = config.node("s01")
    with SSHExecutor(node, config.ssh) as ssh:
        plan = replace_disk(config, "s01", env.dev, ReplaceOptions(replaced=True),
                            dry_run=True, ex=ssh)
        real = Recording(ssh)
        run = replace_disk(config, "s01", env.dev, ReplaceOptions(replaced=True), ex=real,
                           confirm=lambda step: None)
    assert run.summary.finished, run.summary.table()
    assert plan.commands == real.recorded and real.recorded[0][0] == "mkfs.xfs"
    assert blkid(env.new.dev)["UUID"] == run.ctx.params["uuid"]
    assert mounts_of(env.new.dev) == [str(env.mount_point)]
    assert env.fstab.read_text() == (FSTAB_TEXT + f"LABEL={env.dev} {env.mount_point} xfs "
                                     f"noatime,nofail 0 0\n")


def test_refusal_over_ssh_changes_nothing(env):
    mount(env.old.dev, env.root / "elsewhere")
    before = (env.fstab.read_bytes(), sorted(mounts_of(env.old.dev)))
    code, out, stdout = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes",
                                "--json")
    assert code == 2 and "elsewhere" in out
    report = json.loads(stdout)
    assert report["written"] is False and "elsewhere" in report["errors"][0]
    assert (env.fstab.read_bytes(), sorted(mounts_of(env.old.dev))) == before


def test_guard_over_ssh_never_follows_a_symlink_planted_after_the_unmount(env):
    """The guard runs disk_node.py on the node through the SSH channel; the symlink the
    owner of mount_root plants right after the unmount is refused, its target kept."""
    from tests.integration.test_disk_hardening import After, owner_mode, victim_dir

    victim = victim_dir(env)

    def plant():
        env.mount_point.rmdir()
        env.mount_point.symlink_to(victim)

    config = load_config(env.config)
    with SSHExecutor(config.node("s01"), config.ssh) as ssh:
        ex = After(ssh, ("umount",), plant)
        run = replace_disk(config, "s01", env.dev, ReplaceOptions(), ex=ex)
    assert ex.fired and mounts_of(env.old.dev) == []
    assert "is a symlink to" in str(run.summary.error)
    assert owner_mode(victim) == (4242, 4242, 0o700)


def node_ring_weight(swift_dir, ip, dev):
    from swift.common.ring import RingData

    path = swift_dir / "object.ring.gz"
    if not path.exists():
        return None
    ring = RingData.load(str(path))
    (d,) = [d for d in ring.devs if d and d["ip"] == ip and d["device"] == dev]
    return d["weight"]


def test_weight_zero_with_push_reaches_the_node_before_the_unmount(env):
    """--push: the weight-0 rings are on the node (over real sshd) when the disk is
    unmounted; after the swap the restored weight is pushed too, and nothing is due."""
    from tests.integration.test_disk_hardening import After

    swift_dir = env.root / "node-swift"
    swift_dir.mkdir()
    env.write_config(env.old.dev, swift_dir=f'"{swift_dir}"')
    config = load_config(env.config)
    seen = {}
    with SSHExecutor(config.node("s01"), config.ssh) as ssh:
        ex = After(ssh, ("umount",), lambda: seen.update(
            at_umount=node_ring_weight(swift_dir, env.node_ip, env.dev)))
        run = replace_disk(config, "s01", env.dev,
                           ReplaceOptions(weight_zero=True, push=True), ex=ex)
    assert run.summary.stopped and ex.fired, run.summary.table()
    assert seen == {"at_umount": 0.0}
    assert run.ctx.push_due == [] and len(run.ctx.pushed) == 1

    env.disks.detach(env.old)
    env.new = env.disks.create(mkfs=False)
    env.write_config(env.new.dev, swift_dir=f'"{swift_dir}"')
    code, out, stdout = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes",
                                "--push", "--json")
    assert code == 0, out
    report = json.loads(stdout)
    assert report["push_due"] == [] and report["next"] == []
    assert report["pushed"] == [f"weight 100 for s01/{env.dev} on every ring"]
    assert node_ring_weight(swift_dir, env.node_ip, env.dev) == 100.0
    assert "fills them now that the rings are pushed" in " ".join(report["refill"])


def test_cli_dry_run_host_steps_are_what_a_real_run_executes_over_ssh(env):
    """Both phases: the plan of `--dry-run --json` (host_steps) equals the
    state-changing commands the real run then sends over SSH, in order."""
    from tests.helpers.apps import planned, run_cli, run_recorded

    base = ["--config", str(env.config), "replace-disk", "s01", env.dev]
    r = run_cli([*base, "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    plan = planned(doc)
    assert [s["step"] for s in doc["host_steps"]] == ["unmount", "guard"]
    assert plan[0] == ("s01", ("umount", "--", str(env.mount_point)))
    executed = []
    r = run_recorded([*base, "--yes"], executed)
    assert r.exit_code == 0, r.output
    assert executed == plan

    env.disks.detach(env.old)
    env.new = env.disks.create(mkfs=False)
    env.write_config(env.new.dev)
    r = run_cli([*base, "--replaced", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    plan = planned(doc)
    steps = [s["step"] for s in doc["host_steps"]]
    assert steps[0] == "mkfs" and "mount" in steps and steps[-1] == "chown"
    assert [s["destructive"] for s in doc["host_steps"] if s["step"] == "mkfs"] == [True]
    executed = []
    r = run_recorded([*base, "--replaced", "--yes"], executed)
    assert r.exit_code == 0, r.output
    assert executed == plan
    assert mounts_of(env.new.dev) == [str(env.mount_point)]


def test_weight_zero_push_host_steps_are_what_a_real_run_executes_over_ssh(env):
    """--weight-zero --push: the plan's push session (in the weight step) and the
    unmount and guard are the commands the real run sends, the push included (it goes
    through the CLI's transport like every other host command)."""
    from tests.helpers.apps import planned, run_cli, run_recorded

    swift_dir = env.root / "node-swift"
    swift_dir.mkdir()
    env.write_config(env.old.dev, swift_dir=f'"{swift_dir}"')
    base = ["--config", str(env.config), "replace-disk", "s01", env.dev, "--weight-zero",
            "--push"]
    r = run_cli([*base, "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [s["step"] for s in doc["host_steps"]] == ["weight-zero", "unmount", "guard"]
    executed = []
    r = run_recorded([*base, "--yes"], executed)
    assert r.exit_code == 0, r.output
    assert executed == planned(doc)
    assert node_ring_weight(swift_dir, env.node_ip, env.dev) == 0.0
