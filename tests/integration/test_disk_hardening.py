"""replace-disk and drive-audit against a hostile node: symlinks under mount_root, a
planted check file, disks in use through loop devices, open descriptors or another
mount namespace, and config values that would reach commands and fstab.

Real XFS loop disks on this machine (host = "localhost"); the planting that an
unprivileged owner of mount_root (swift, in swift's default layout) could do is done
by the test between two real commands, where a real attacker would race.
"""

import os
import stat
import subprocess
import sys

import pytest

from tests.helpers.loopdisk import loopdisks, mount, mounted_env, mounts_of  # noqa: F401
from tests.integration.test_replace_disk import Recording, ringmgr, state_of, swap
from ringmgr.config import load_config
from ringmgr.exec.local import LocalExecutor
from ringmgr.ops.disk import ReplaceOptions, replace_disk

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


@pytest.fixture
def env(tmp_path, monkeypatch, loopdisks):
    return mounted_env(tmp_path, monkeypatch, loopdisks)


class After:
    """Runs every command for real; after the first one whose argv starts with
    ``prefix`` it calls ``then()`` (the attacker's move in the race window)."""

    def __init__(self, inner, prefix, then):
        self.inner, self.host, self.prefix, self.then = inner, inner.host, prefix, then
        self.recorded, self.fired = [], False

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True):
        r = self.inner.run(argv, check=check, input=input, timeout=timeout, mutates=mutates)
        if mutates:
            self.recorded.append(tuple(argv))
        if not self.fired and tuple(argv[:len(self.prefix)]) == self.prefix:
            self.fired = True
            self.then()
        return r


def victim_dir(env):
    """A directory nobody but its owner (uid 4242) may enter: what the guard must not
    re-own to root:root 0755."""
    v = env.root / "victim"
    v.mkdir()
    os.chown(v, 4242, 4242)
    os.chmod(v, 0o700)
    return v


def owner_mode(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def one_error_line(out):
    errors = [ln for ln in out.splitlines() if ln.startswith("ringmgr: error: ")]
    assert len(errors) == 1 and out.rstrip("\n").endswith(errors[0]), out
    assert "Traceback" not in out and "internal error" not in out
    return errors[0]


# -- item: symlinks under mount_root ---------------------------------------------------
def test_symlink_planted_right_after_the_unmount_is_not_followed(env):
    victim = victim_dir(env)

    def plant():
        env.mount_point.rmdir()
        env.mount_point.symlink_to(victim)

    ex = After(LocalExecutor("s01"), ("umount",), plant)
    run = replace_disk(load_config(env.config), "s01", env.dev, ReplaceOptions(), ex=ex)
    assert ex.fired and mounts_of(env.old.dev) == []
    assert owner_mode(victim) == (4242, 4242, 0o700)
    err = str(run.summary.error)
    assert "is a symlink to" in err and str(victim) in err and "remove it" in err
    assert [r.status for r in run.summary.results][:2] == ["done", "failed"]


def test_drive_audit_act_never_follows_a_symlinked_mount_point(env):
    victim = victim_dir(env)
    subprocess.run(["xfs_io", "-x", "-c", "shutdown", str(env.mount_point)], check=True)
    subprocess.run(["umount", str(env.mount_point)], check=True)
    env.mount_point.rmdir()
    env.mount_point.symlink_to(victim)
    code, out = ringmgr(env, "drive-audit", "s01", "--act", "--yes", "--since", "1h")
    assert code == 2, out
    line = one_error_line(out)
    assert "outside mount_root" in line and "remove the symlink" in line
    assert owner_mode(victim) == (4242, 4242, 0o700)
    assert env.mount_point.is_symlink()


def test_a_mount_point_that_is_a_file_is_refused(env):
    env.disks.detach(env.old)
    env.mount_point.rmdir()
    env.mount_point.write_text("not a directory\n")
    before = state_of(env)
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--yes")
    assert code == 2 and "is a regular file, not a directory" in one_error_line(out), out
    assert env.mount_point.read_text() == "not a directory\n" and state_of(env) == before


# -- item: the write/xattr check file ----------------------------------------------------
def test_check_file_planted_on_the_new_filesystem_is_not_followed(env):
    """The old check opened .ringmgr-check-<tag> (the tag is in the journal) by path
    after the chown; whoever owned the new filesystem could aim it at any file."""
    import json

    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    swap(env)
    tag = json.loads((env.state_dir / f"replace-disk.s01.{env.dev}.json").read_text()
                     )["params"]["tag"]
    precious = env.root / "precious"
    precious.write_text("keep me\n")

    def plant():
        (env.mount_point / f".ringmgr-check-{tag}").symlink_to(precious)

    ex = After(LocalExecutor("s01"), ("mount",), plant)
    run = replace_disk(load_config(env.config), "s01", env.dev,
                       ReplaceOptions(replaced=True), ex=ex, confirm=lambda s: None)
    assert ex.fired and run.summary.finished, run.summary.table()
    assert precious.read_text() == "keep me\n"
    assert [p.name for p in env.mount_point.glob(".ringmgr-check-*")] == [
        f".ringmgr-check-{tag}"]  # only the planted link; the check's own file is gone


def test_check_runs_before_the_chown(env):
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    swap(env)
    ex = Recording(LocalExecutor("s01"))
    run = replace_disk(load_config(env.config), "s01", env.dev,
                       ReplaceOptions(replaced=True), ex=ex, confirm=lambda s: None)
    assert run.summary.finished
    assert [r.name for r in run.summary.results][-2:] == ["check", "chown"]


# -- item: in-use checks ---------------------------------------------------------------
def phase_two_refused(env, *expect):
    """Phase 2 on the disk now configured: exit 2, one line, nothing changed, no mkfs."""
    before = state_of(env)
    from ringmgr.errors import Refused

    ex = Recording(LocalExecutor("s01"))
    try:
        run = replace_disk(load_config(env.config), "s01", env.dev,
                           ReplaceOptions(replaced=True), ex=ex, confirm=lambda s: None)
        err = str(run.summary.error or "")
    except Refused as e:  # the precheck refuses before any step
        err = str(e)
    for words in expect:
        assert words in err, err
    assert not any(c[0] == "mkfs.xfs" for c in ex.recorded), ex.recorded
    assert state_of(env) == before
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes")
    assert code == 2 and expect[0] in one_error_line(out), out
    assert state_of(env) == before
    return err


def test_refuses_a_disk_that_backs_a_loop_device(env):
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    swap(env)
    loop = subprocess.run(["losetup", "--find", "--show", env.new.dev], check=True,
                          capture_output=True, text=True).stdout.strip()
    try:
        phase_two_refused(env, f"backs the loop device {loop}", f"losetup -d {loop}")
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def test_refuses_a_disk_a_process_holds_open(env):
    """As qemu holds a VM's raw disk, or qemu-nbd / tgtd a disk they export."""
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    swap(env)
    holder = subprocess.Popen([sys.executable, "-c", "import os,sys,time\n"
                               "fd=os.open(sys.argv[1],os.O_RDONLY)\n"
                               "print('open',flush=True)\ntime.sleep(600)", env.new.dev],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        phase_two_refused(env, f"pid {holder.pid}", "is open by", "iSCSI")
    finally:
        holder.kill()
        holder.wait()


def test_refuses_a_disk_mounted_in_another_mount_namespace(env):
    """Invisible in this namespace's mountinfo; the O_EXCL probe right before mkfs
    finds the kernel's claim."""
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    env.disks.detach(env.old)
    env.new = env.disks.create(label=env.disks.unique_label())
    env.write_config(env.new.dev)
    where = env.root / "container-mnt"
    where.mkdir()
    ns = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           f"mount {env.new.dev} {where} && echo mounted && exec sleep 600"],
                          stdout=subprocess.PIPE, text=True)
    try:
        assert ns.stdout.readline() == "mounted\n"
        assert mounts_of(env.new.dev) == []  # not in this namespace
        phase_two_refused(env, "in another mount namespace", str(where))
    finally:
        ns.kill()
        ns.wait()


def test_refuses_a_partition_of_a_disk_whose_other_partition_is_mounted(env):
    """The parents (lsblk -s) count: an unmounted partition of a disk in use (the
    system disk, say) is not a swift disk."""
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    env.disks.detach(env.old)
    disk, p1 = env.disks.create_partitioned(parts=2)
    subprocess.run(["mkfs.xfs", "-q", "-f", "-L", env.disks.unique_label(), p1], check=True,
                   capture_output=True)
    elsewhere = env.root / "elsewhere"
    mount(p1, elsewhere)
    try:
        env.write_config(f"{disk.dev}p2")
        phase_two_refused(env, f"is on {disk.dev}, whose {p1} is mounted at {elsewhere}")
    finally:
        subprocess.run(["umount", str(elsewhere)], check=False)


# -- item: config values that reach commands and fstab -----------------------------------
@pytest.mark.parametrize("key,value", [
    ("mount_options", '"noatime,nofail\\nLABEL=evil /etc xfs defaults 0 0"'),
    ("mount_options", '"noatime nofail"'),
    ("owner", '"swift:swift /etc"'),
    ("mkfs_options", '["-i", "size=1024", "/dev/sda"]'),
])
def test_config_values_that_would_reach_commands_are_refused(env, key, value):
    assert ringmgr(env, "replace-disk", "s01", env.dev, "--yes")[0] == 0
    swap(env)
    env.write_config(env.new.dev, **{key: value})
    before = state_of(env)
    code, out = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes")
    assert code == 2, out
    line = one_error_line(out)
    assert str(env.config) in line and f"nodes.s01.{key}:" in line
    assert state_of(env) == before and "evil" not in env.fstab.read_text()
