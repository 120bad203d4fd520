"""A failed instance's disk ("Inspecting and Recovering Data from Failed Instances"):
virsh suspend, qemu-nbd, a read-only mount; and back."""

from __future__ import annotations

import re
from typing import Callable

from pathlib import Path

from ringmgr.errors import Refused, UsageError
from ringmgr.exec.base import Executor
from ringmgr.exec.runner import Step
from ringmgr.ops.inspect_mount import INSPECT_ROOT, mount_read_only
from ringmgr.ops.openstack import (IMAGE_FORMATS, QemuNbd, Virsh, first_partition,
                                   parse_mounts)
from ringmgr.ops.runbooks.common import RunbookContext, read_record, write_record

def inspect_mountpoint(uuid: str) -> str:
    return f"{INSPECT_ROOT}/{uuid}"


def _domain_state(c, domain: str) -> str | None:
    d = Virsh(c.host).domain(domain)
    return d.state if d else None


def inspect_steps(ctx: RunbookContext, uuid: str, domain: str, disk: str, fmt: str,
                  device: Callable[[], str]) -> list[Step]:
    """``device()`` returns the nbd device to use (chosen once, journaled); ``fmt`` is
    the image format from the domain XML (qemu-nbd never probes it)."""
    mnt = inspect_mountpoint(uuid)

    def suspend_check(c):
        st = _domain_state(c, domain)
        if st is None:
            raise Refused(f"[{c.host.host}] no libvirt domain {domain} (virsh list --all)")
        return "already paused" if st == "paused" else None

    def connect_check(c):
        if mnt in _mounts(c):
            return "already mounted"
        dev = device()
        base = dev.rsplit("/", 1)[-1]
        if c.host.run(["test", "-e", f"/sys/block/{base}/pid"], check=False,
                      mutates=False).rc == 0:
            return f"{dev} already connected (an earlier run)"
        return None

    def connect(c):
        nbd = QemuNbd(c.host)
        nbd.load_module()
        nbd.connect(device(), disk, fmt)

    def mount(c):
        dev = device()
        base = dev.rsplit("/", 1)[-1]
        ls = c.host.run(["ls", f"/sys/block/{base}"], check=False, mutates=False).stdout
        part = first_partition(dev, ls.split())
        c.data["mount_options"] = mount_read_only(c.host, part, mnt, dry_run=c.dry_run)
        c.data["mountpoint"] = mnt

    return [
        Step("suspend", f"virsh suspend {domain}", action=lambda c: Virsh(c.host).suspend(domain),
             check=suspend_check),
        Step("nbd-connect", f"qemu-nbd --read-only -f {fmt} -c {disk}", action=connect,
             check=connect_check),
        Step("mount", f"mount read-only (nosuid, nodev, noexec, no journal replay) at {mnt} "
                      f"under a 0700 {INSPECT_ROOT}", action=mount,
             check=lambda c: "already mounted" if mnt in _mounts(c) else None),
    ]


def _mounts(c) -> dict[str, str]:
    return parse_mounts(c.host.run(["cat", "/proc/mounts"], mutates=False).stdout)


def release_steps(ctx: RunbookContext, uuid: str, domain: str, device: str | None) -> list[Step]:
    """The reverse of ``inspect_steps``; every step checks first, so it is also the
    cleanup after a failed inspection."""
    mnt = inspect_mountpoint(uuid)

    def umount(c):
        c.host.run(["umount", mnt])

    def umount_check(c):
        src = _mounts(c).get(mnt)
        c.data["device"] = re.sub(r"p\d+$", "", src) if src else device
        return None if src else "not mounted"

    def disconnect_check(c):
        dev = c.data.get("device") or device
        if not dev:
            return "no nbd device recorded"
        base = dev.rsplit("/", 1)[-1]
        if c.host.run(["test", "-e", f"/sys/block/{base}/pid"], check=False,
                      mutates=False).rc != 0:
            return f"{dev} not connected"
        return None

    def resume_check(c):
        st = _domain_state(c, domain)
        return None if st == "paused" else f"domain is {st or 'gone'}, not paused"

    return [
        Step("umount", f"umount {mnt}", action=umount, check=umount_check),
        Step("nbd-disconnect", "qemu-nbd -d",
             action=lambda c: QemuNbd(c.host).disconnect(c.data.get("device") or device),
             check=disconnect_check),
        Step("resume", f"virsh resume {domain}", action=lambda c: Virsh(c.host).resume(domain),
             check=resume_check),
    ]


def choose_disk(hx: Executor, domain: str, target: str | None):
    """The domain's disk to inspect (its target, default the first), refused unless
    the domain XML names its image format (qemu-nbd must never probe it)."""
    disks = Virsh(hx).domain_disks(domain)
    if target:
        disks = [d for d in disks if d.target == target]
    if not disks:
        raise UsageError(f"[{hx.host}] no disk {target or ''} in virsh dumpxml {domain}")
    disk = disks[0]
    if disk.format not in IMAGE_FORMATS:
        raise UsageError(f"[{hx.host}] the domain XML of {domain} gives "
                         f"{'no' if not disk.format else repr(disk.format)} image format for "
                         f"{disk.target} ({disk.source}); refusing to let qemu-nbd guess it "
                         f"(a guest can make a raw image look like qcow2 with a backing file "
                         f"on the host)")
    return disk


class NbdDevice:
    """The nbd device of one inspection, chosen once (a free one, or the one the
    record names) and recorded for ``--release``."""

    def __init__(self, hx: Executor, record: Path, host: str, domain: str, dry_run: bool):
        self.hx, self.record, self.host, self.domain = hx, record, host, domain
        self.dry_run = dry_run
        self.device: str | None = None

    def __call__(self) -> str:
        if self.device is None:
            rec = read_record(self.record) or {}
            self.device = rec.get("device") or QemuNbd(self.hx).free_device()
            if not self.dry_run:
                write_record(self.record, {"device": self.device, "host": self.host,
                                           "domain": self.domain})
        return self.device
