"""inspect-disk's mount of a tenant filesystem, on real read-only loop devices holding
real XFS and ext4 filesystems that crashed with a dirty journal (as a failed guest
leaves them; qemu-nbd attaches images read-only as these loop devices are)."""

import os
import shutil
import stat
import subprocess

import pytest

from ringmgr.exec.local import LocalExecutor
from ringmgr.ops.inspect_mount import mount_read_only
from tests.helpers.loopdisk import loopdisks, mounts_of  # noqa: F401

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def crashed_guest_image(disks, tmp_path, fstype):
    """A filesystem with a setuid program and a device node in it, shut down hard
    (the journal stays dirty), then attached read-only like qemu-nbd --read-only."""
    disk = disks.create(mkfs=False)
    mkfs = (["mkfs.xfs", "-q", "-f"] if fstype == "xfs" else ["mkfs.ext4", "-q", "-F"])
    subprocess.run([*mkfs, disk.dev], check=True, capture_output=True)
    mnt = tmp_path / "guest"
    mnt.mkdir()
    subprocess.run(["mount", disk.dev, str(mnt)], check=True)
    try:
        shutil.copy("/bin/true", mnt / "suid-true")
        os.chmod(mnt / "suid-true", 0o4755)
        os.mknod(mnt / "mem", 0o666 | stat.S_IFCHR, os.makedev(1, 1))
    finally:
        subprocess.run(["umount", str(mnt)], check=True)  # those are on disk for good
    subprocess.run(["mount", disk.dev, str(mnt)], check=True)
    try:
        (mnt / "unsynced").write_text("in the journal only\n")
        subprocess.run(["sync"], check=True)
        subprocess.run(["xfs_io", "-x", "-c", "shutdown", str(mnt)], check=True)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    subprocess.run(["losetup", "-d", disk.dev], check=True)
    ro = subprocess.run(["losetup", "--find", "--show", "--read-only", str(disk.file)],
                        check=True, capture_output=True, text=True).stdout.strip()
    disk.dev = ro  # cleaned up with the others
    return ro


def options_of(path):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if parts[4] == str(path):
                return set(parts[5].split(","))
    return None


@pytest.mark.parametrize("fstype", ["xfs", "ext4"])
def test_dirty_tenant_filesystem_mounts_read_only_nosuid_nodev_noexec(loopdisks, tmp_path,
                                                                     fstype):
    dev = crashed_guest_image(loopdisks, tmp_path, fstype)
    plain = tmp_path / "plain"
    plain.mkdir()
    r = subprocess.run(["mount", "-o", "ro", dev, str(plain)], capture_output=True, text=True)
    assert r.returncode != 0 and "read-only" in r.stderr  # what a plain `mount -o ro` does
    root = tmp_path / "ringmgr-inspect"
    mnt = root / "9b969a05-3f5e-4f0c-9a64-6f1b1c1d0e01"
    try:
        opts = mount_read_only(LocalExecutor("c01"), dev, str(mnt), root=str(root))
        assert mounts_of(dev) == [str(mnt)]
        assert {"ro", "nosuid", "nodev", "noexec"} <= options_of(mnt)
        assert opts.endswith(",norecovery" if fstype == "xfs" else ",noload")
        st = os.stat(root)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
        assert (mnt / "suid-true").stat().st_mode & stat.S_ISUID  # there, but inert:
        with pytest.raises(PermissionError):
            subprocess.run([str(mnt / "suid-true")], check=True)
        with pytest.raises(PermissionError):
            open(mnt / "mem", "rb")
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_an_existing_inspect_root_is_made_0700(loopdisks, tmp_path):
    dev = crashed_guest_image(loopdisks, tmp_path, "xfs")
    root = tmp_path / "ringmgr-inspect"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o777)
    mnt = root / "x"
    try:
        mount_read_only(LocalExecutor("c01"), dev, str(mnt), root=str(root))
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(mnt).st_mode) in (0o700, 0o755)  # the guest's root dir
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_nothing_to_mount_is_refused(loopdisks, tmp_path):
    from ringmgr.errors import Refused

    blank = loopdisks.create(mkfs=False)
    root = tmp_path / "ringmgr-inspect"
    with pytest.raises(Refused, match="blkid finds no filesystem"):
        mount_read_only(LocalExecutor("c01"), blank.dev, str(root / "x"), root=str(root))
    assert mounts_of(blank.dev) == []
