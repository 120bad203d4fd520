"""Real XFS disks on loop devices for tests; every loop device and mount is cleaned up.

``LoopDisks(workdir)`` (a context manager; the ``loopdisks`` fixture gives one per test)::

    disk = disks.create(label=disks.unique_label())   # sparse 300 MB file, losetup, mkfs.xfs
    disk.dev          # "/dev/loop7"
    blank = disks.create(mkfs=False)                   # a "new disk": no filesystem
    same = disks.create(mkfs=False, on=disk.dev)       # ... in the old one's slot
    disks.detach(disk)                                 # pull the disk (unmounts it first)
    disks.cleanup()                                    # unmount + detach all; also on failure

Loop devices share the machine's kernel with other engineers' tests, so labels are
random (``unique_label()``) and only the loop devices created here are touched.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SIZE_MB = 300  # xfsprogs on Debian 12 refuses smaller filesystems


@dataclass
class LoopDisk:
    file: Path
    dev: str
    label: str | None


def unique_label(prefix: str = "rt") -> str:
    """A label no other loop device on this machine carries (12 characters at most)."""
    return (prefix + secrets.token_hex(5))[:12]


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def mounts_of(dev: str) -> list[str]:
    """Mount points where ``dev`` (or a partition of it) is mounted, from mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-", 6)
            if parts[sep + 2] == dev or re.fullmatch(re.escape(dev) + r"p\d+", parts[sep + 2]):
                out.append(parts[4].replace("\\040", " "))
    return out


class LoopDisks:
    def __init__(self, workdir: str | os.PathLike):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.disks: list[LoopDisk] = []
        self.nodes: list[str] = []  # device nodes made by hand, removed at cleanup

    def __enter__(self) -> "LoopDisks":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    unique_label = staticmethod(unique_label)

    def create(self, label: str | None = None, *, mkfs: bool = True,
               size_mb: int = SIZE_MB, on: str | None = None) -> LoopDisk:
        """``on``: the loop device to use (the new disk in the old one's slot, with the
        old one's kernel name, as a swapped sdb is sdb again)."""
        file = self.workdir / f"disk{len(self.disks)}-{secrets.token_hex(3)}.img"
        with open(file, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        if on is not None:
            r = _run("losetup", on, str(file), check=False)
            if r.returncode != 0:
                file.unlink()
                pytest.skip(f"{on} was taken by another test meanwhile: {r.stderr.strip()}")
            dev = on
        else:
            dev = _run("losetup", "--find", "--show", str(file)).stdout.strip()
        disk = LoopDisk(file, dev, None)
        self.disks.append(disk)
        if mkfs:
            disk.label = label or unique_label()
            _run("mkfs.xfs", "-q", "-f", "-L", disk.label, dev)
        return disk

    def create_partitioned(self, parts: int = 1) -> tuple[LoopDisk, str]:
        """A disk with ``parts`` MBR partitions (written by hand: no sfdisk here), each
        big enough for XFS; returns the disk and its first partition (the others are
        ``f"{disk.dev}p2"``, ...)."""
        import struct

        per = SIZE_MB + 10  # each partition itself must reach xfsprogs' minimum
        size_mb = per * parts + 10
        disk = self.create(mkfs=False, size_mb=size_mb)
        table = b""
        for i in range(parts):
            start = 2048 + i * per * 2048
            table += struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", start,
                                 per * 2048)
        with open(disk.file, "r+b") as f:
            f.seek(446)
            f.write(table)
            f.seek(510)
            f.write(b"\x55\xaa")
        _run("losetup", "-d", disk.dev)
        disk.dev = _run("losetup", "--find", "--show", "-P", str(disk.file)).stdout.strip()
        for i in range(1, parts + 1):
            part = f"{disk.dev}p{i}"
            if not Path("/sys/class/block", os.path.basename(part)).exists():
                _run("partx", "-a", disk.dev, check=False)
            if not os.path.exists(part):  # no udev here: make the node the kernel announced
                sysfs = Path("/sys/class/block") / os.path.basename(part) / "dev"
                major, minor = sysfs.read_text().strip().split(":")
                os.mknod(part, 0o600 | stat.S_IFBLK, os.makedev(int(major), int(minor)))
                self.nodes.append(part)
        return disk, f"{disk.dev}p1"

    def detach(self, disk: LoopDisk) -> None:
        for mp in reversed(mounts_of(disk.dev)):
            _run("umount", "-l", mp, check=False)
        _run("losetup", "-d", disk.dev, check=False)

    def cleanup(self) -> None:
        for disk in reversed(self.disks):
            try:
                backing = _run("losetup", "-n", "-O", "BACK-FILE", disk.dev,
                               check=False).stdout.strip()
                if backing and Path(backing.split(" (")[0]) == disk.file:
                    self.detach(disk)
            finally:
                disk.file.unlink(missing_ok=True)
        self.disks.clear()
        for node in self.nodes:
            Path(node).unlink(missing_ok=True)
        self.nodes.clear()


@pytest.fixture
def loopdisks(tmp_path):
    with LoopDisks(tmp_path / "disks") as disks:
        yield disks


# -- a one-node cluster whose disks are loop devices ---------------------------------
def build_rings(builder_dir: Path, ip: str, devices: list[str]) -> None:
    """account/container/object builders: DEVICES on ``ip`` plus two other nodes."""
    from swift.common.ring import RingBuilder

    builder_dir.mkdir(parents=True, exist_ok=True)
    for ring, port in (("account", 6202), ("container", 6201), ("object", 6200)):
        b = RingBuilder(6, 3, 0)
        for zone, host in enumerate((ip, "10.99.0.2", "10.99.0.3"), 1):
            for i, dev in enumerate(devices if host == ip else ["sdb", "sdc"]):
                b.add_dev({"region": 1, "zone": zone, "ip": host, "port": port,
                           "device": dev, "weight": 100.0})
        b.rebalance(seed=1)
        b.save(str(builder_dir / f"{ring}.builder"))
        b.get_ring().save(str(builder_dir / f"{ring}.ring.gz"))


@dataclass
class DiskEnv:
    """A node ``s01`` on this machine (host "localhost"), its disks loop devices."""

    root: Path
    config: Path
    mount_root: Path
    fstab: Path
    state_dir: Path
    dev: str
    node_ip: str = "10.99.0.1"
    host: str = "localhost"
    extra_node_toml: str = ""
    ssh_toml: str = ""       # an [ssh] section, for a node reached over SSH
    ssh_port: int | None = None

    @property
    def mount_point(self) -> Path:
        return self.mount_root / self.dev

    def write_config(self, block_device: str, *, more_block_devices: dict | None = None,
                     **node_extra) -> None:
        extra = "".join(f"{k} = {v}\n" for k, v in node_extra.items())
        more = "".join(f', {k} = "{v}"' for k, v in (more_block_devices or {}).items())
        self.config.write_text(
            f'[cluster]\nbuilder_dir = "{self.root / "builders"}"\n\n'
            + self.ssh_toml +
            f'[defaults]\nowner = "root:root"\n\n'
            f'[nodes.s01]\nhost = "{self.host}"\nip = "{self.node_ip}"\n'
            + (f"ssh_port = {self.ssh_port}\n" if self.ssh_port else "") +
            f'devices = {{ {self.dev} = 100.0 }}\n'
            f'block_devices = {{ {self.dev} = "{block_device}"{more} }}\n'
            f'mount_root = "{self.mount_root}"\nfstab = "{self.fstab}"\n'
            + extra + self.extra_node_toml)


FSTAB_TEXT = ("# test fstab\nUUID=0000-root / ext4 errors=remount-ro 0 1\n"
              "LABEL=other /srv/node/other xfs noatime,nofail 0 0\n")


def make_env(root: Path, dev: str | None = None) -> DiskEnv:
    dev = dev or unique_label("d")
    env = DiskEnv(root=root, config=root / "ringmgr.toml", mount_root=root / "srv" / "node",
                  fstab=root / "fstab", state_dir=root / "state", dev=dev)
    env.mount_root.mkdir(parents=True)
    env.fstab.write_text(FSTAB_TEXT)
    build_rings(root / "builders", env.node_ip, [dev, "spare"])
    return env


def set_weights(builder_dir: Path, ip: str, weights: dict[str, float]) -> None:
    """Give devices of ``ip`` new weights in every ring (rebalanced, saved)."""
    from swift.common.ring import RingBuilder

    for path in sorted(builder_dir.glob("*.builder")):
        b = RingBuilder.load(str(path))
        for d in b.devs:
            if d and d["ip"] == ip and d["device"] in weights:
                b.set_dev_weight(d["id"], weights[d["device"]])
        b.pretend_min_part_hours_passed()
        b.rebalance(seed=1)
        b.save(str(path))
        b.get_ring().save(str(path.with_suffix(".ring.gz")))


def mount(dev: str, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", dev, str(path))


def blkid(dev: str) -> dict[str, str]:
    out = _run("blkid", "-p", "-o", "export", dev, check=False).stdout
    return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)


def over_sshd(e: DiskEnv, hosts) -> None:
    """Point the env's node at the first sshd test host of ``hosts`` (root, the hosts'
    key and known_hosts); before the config is written (a ``mounted_env`` setup)."""
    h = hosts.hosts[0]
    e.host, e.ssh_port = h.address, h.port
    e.ssh_toml = (f'[ssh]\nuser = "root"\nport = {h.port}\n'
                  f'identity_file = "{hosts.identity_file}"\n'
                  f'known_hosts = "{hosts.known_hosts}"\nretries = 1\n\n')


def mounted_env(tmp_path: Path, monkeypatch, disks: "LoopDisks", *, setup=None) -> DiskEnv:
    """The usual starting point: a node whose disk ``env.dev`` is a real XFS loop disk
    mounted at its mount point, a config that says so, and ringmgr's journals and audit
    log kept in the test's directory.  ``setup(env)`` runs before the config is written
    (e.g. to point the node at an sshd test host)."""
    e = make_env(tmp_path)
    monkeypatch.setenv("RINGMGR_STATE_DIR", str(e.state_dir))
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "ringmgr.log"))
    if setup is not None:
        setup(e)
    e.disks = disks
    e.old = disks.create(label=e.dev)
    e.write_config(e.old.dev)
    mount(e.old.dev, e.mount_point)
    return e
