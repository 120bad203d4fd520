"""Adapters to the hypervisor tools on a compute host: libvirt (``virsh``) and
``qemu-nbd``.  Neither can run on this machine (no libvirtd, no nbd-capable kernel, no
instance images): like the OpenStack adapter (``ops.openstack``), each is pure command
builders plus pure parsers of recorded output, run through the host's executor, and
the tests drive them through the recording executor, the one fake the project allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ringmgr.errors import StepFailed, UsageError
from ringmgr.exec.base import Executor


# -- libvirt (virsh) --------------------------------------------------------------------
@dataclass(frozen=True)
class Domain:
    id: str | None   # None when shut off ("-")
    name: str
    state: str


def parse_virsh_list(text: str) -> list[Domain]:
    """``virsh list --all``.

    Sample::

         Id   Name                State
        ------------------------------------
         1    instance-00000981   running
         30   instance-0000274a   paused
         -    instance-00000a01   shut off
    """
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("Id") or set(line) <= {"-"}:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        dom_id, name, state = parts
        out.append(Domain(None if dom_id == "-" else dom_id, name, state.strip()))
    return out


def parse_domblklist(text: str) -> list[tuple[str, str]]:
    """``virsh domblklist NAME``: (target, source) pairs, the disk files.

    Sample::

         Target   Source
        -------------------------------------------------------------
         vda      /var/lib/nova/instances/9b969a05-.../disk
         vdb      /var/lib/nova/instances/9b969a05-.../disk.local
    """
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2 or parts[0] == "Target" or set(line.strip()) <= {"-"}:
            continue
        if parts[1] != "-":
            out.append((parts[0], parts[1]))
    return out


# qemu's image formats: what a domain's <driver type=...> may say
IMAGE_FORMATS = ("raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vhdx", "vpc", "luks",
                 "parallels", "bochs", "cloop", "dmg")


@dataclass(frozen=True)
class DomainDisk:
    target: str          # vda
    source: str          # the image file (or block device)
    format: str | None   # the <driver type=...>: qcow2, raw


def parse_domain_disks(xml: str) -> list[DomainDisk]:
    """``virsh dumpxml NAME``: the domain's disks with their image format.

    Sample (trimmed)::

        <domain type='kvm'>
          <devices>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2' cache='none'/>
              <source file='/var/lib/nova/instances/9b969a05-.../disk'/>
              <target dev='vda' bus='virtio'/>
            </disk>
            <disk type='file' device='cdrom'>
              <driver name='qemu' type='raw'/>
              <target dev='hdd' bus='ide'/>
            </disk>
          </devices>
        </domain>

    Disks without a source (an empty cdrom) are left out.
    """
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise StepFailed(f"virsh dumpxml printed no domain XML ({e})") from None
    out = []
    for disk in root.iter("disk"):
        src, tgt, drv = disk.find("source"), disk.find("target"), disk.find("driver")
        path = None
        if src is not None:
            path = src.get("file") or src.get("dev")
        if path and tgt is not None and tgt.get("dev"):
            out.append(DomainDisk(tgt.get("dev"), path,
                                  drv.get("type") if drv is not None else None))
    return out


@dataclass
class Virsh:
    """``virsh`` on a compute host, through that host's executor.

    Cannot run here (no libvirtd): tests use a recording executor with recorded
    ``virsh`` output.
    """

    executor: Executor

    def domains(self) -> list[Domain]:
        return parse_virsh_list(self.executor.run(["virsh", "list", "--all"],
                                                  mutates=False).stdout)

    def domain(self, name: str) -> Domain | None:
        for d in self.domains():
            if d.name == name:
                return d
        return None

    def disks(self, name: str) -> list[tuple[str, str]]:
        return parse_domblklist(self.executor.run(["virsh", "domblklist", name],
                                                  mutates=False).stdout)

    def domain_disks(self, name: str) -> list[DomainDisk]:
        """The disks with their image formats (from the domain XML)."""
        return parse_domain_disks(self.executor.run(["virsh", "dumpxml", name],
                                                    mutates=False).stdout)

    def suspend(self, name: str) -> None:
        self.executor.run(["virsh", "suspend", name])

    def resume(self, name: str) -> None:
        self.executor.run(["virsh", "resume", name])


# -- qemu-nbd ----------------------------------------------------------------------------
FREE_NBD_SCRIPT = 'for d in /sys/block/nbd*; do [ -e "$d/pid" ] || echo "${d##*/}"; done'


def parse_free_nbd(text: str) -> list[str]:
    """Output of FREE_NBD_SCRIPT: one free nbd device name per line (``nbd0``)."""
    names = [n.strip() for n in text.split() if re.fullmatch(r"nbd\d+", n.strip())]
    return sorted(names, key=lambda n: int(n[3:]))


def parse_mounts(text: str) -> dict[str, str]:
    """``/proc/mounts``: mount point -> source device."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[1].replace("\\040", " ")] = parts[0]
    return out


@dataclass
class QemuNbd:
    """``qemu-nbd`` on a compute host: attach a disk image read-only as /dev/nbdN.

    Cannot run here (no nbd module on the test kernel, no instance images): the
    command lines are table-tested and the device search parses recorded output.
    """

    executor: Executor

    def load_module(self) -> None:
        self.executor.run(["modprobe", "nbd", "max_part=16"])

    def free_device(self) -> str:
        res = self.executor.run(["sh", "-c", FREE_NBD_SCRIPT], mutates=False)
        free = parse_free_nbd(res.stdout)
        if not free:
            raise StepFailed(f"[{self.executor.host}] no free /dev/nbd device "
                             f"(is the nbd module loaded? modprobe nbd max_part=16)")
        return f"/dev/{free[0]}"

    def connect(self, device: str, image: str, fmt: str) -> None:
        """Attach ``image`` read-only as ``device`` with its format given (``-f``), never
        probed: a raw image whose guest wrote a qcow2 header there would otherwise be
        opened as qcow2, with a backing file of the guest's choosing."""
        if fmt not in IMAGE_FORMATS:
            raise UsageError(f"image format {fmt!r} of {image} is not one qemu-nbd knows")
        self.executor.run(["qemu-nbd", "--read-only", "-f", fmt, "-c", device, "--", image])

    def disconnect(self, device: str) -> None:
        self.executor.run(["qemu-nbd", "-d", device])


def first_partition(device: str, partitions: Sequence[str]) -> str:
    """The guide mounts /dev/nbd0p1 when the image has partitions, else /dev/nbd0."""
    base = device.rsplit("/", 1)[-1]
    parts = sorted(p for p in partitions if p.startswith(base + "p"))
    return f"/dev/{parts[0]}" if parts else device
