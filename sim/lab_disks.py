"""The lab's disks: plain directories, or (``--xfs``) sparse XFS loop disks, their
teardown, and the physical swap of a failed one.  Mounts are read with ringmgr's own
mountinfo parser (``ringmgr.ops.facts.parse_mountinfo``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ringmgr.ops.facts import parse_mountinfo
from sim import lab_configs as cfg
from sim.lab_files import write_config
from sim.lab_procs import LabError, Records
from sim.lab_state import find_node, load_lab, save_lab, say


def _run(argv: list[str], **kw) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def make_disks(lab: cfg.Lab, node: cfg.LabNode, records: Records) -> None:
    """Plain directories, or (``--xfs``) a sparse 300 MB XFS loop disk per device."""
    for dev in node.devices:
        Path(node.mount_root, dev).mkdir(parents=True, exist_ok=True)
    if not lab.xfs:
        return
    img_dir = Path(lab.state, "disks")
    img_dir.mkdir(exist_ok=True)
    for dev in node.devices:
        img = img_dir / f"{node.name}-{dev}.img"
        with open(img, "wb") as f:
            f.truncate(300 * 1024 * 1024)
        _run(["mkfs.xfs", "-q", "-f", "-L", cfg.xfs_label(lab, node, dev), str(img)])
        loop = _run(["losetup", "--find", "--show", str(img)]).strip()
        mnt = f"{node.mount_root}/{dev}"
        records.set_disks(records.disks() + [{"image": str(img), "loop": loop, "mount": mnt}])
        lab.block_devices.setdefault(node.name, {})[dev] = loop
        _run(["mount", "-t", "xfs", "-o", "noatime", loop, mnt])


def remove_disks(state: str) -> list[str]:
    """Unmount everything mounted under the state dir, deepest first, then detach every
    loop device whose backing file is in it: what ``up`` made, plus whatever a rehearsed
    runbook (a disk replacement, say) added there.  Nothing outside the state dir."""
    problems = []
    prefix = state.rstrip("/") + "/"
    for _ in range(10):
        under = sorted((m for _src, m in mounts() if m.startswith(prefix)), key=len,
                       reverse=True)
        if not under:
            break
        for mnt in under:
            r = subprocess.run(["umount", mnt], capture_output=True, text=True)
            if r.returncode != 0:
                r = subprocess.run(["umount", "-l", mnt], capture_output=True, text=True)
                if r.returncode != 0:
                    problems.append(f"umount {mnt}: {r.stderr.strip()}")
        if problems:
            return problems
    for loop, back in _loops():
        if back.startswith(prefix):
            r = subprocess.run(["losetup", "-d", loop], capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"losetup -d {loop}: {r.stderr.strip()}")
    return problems


def _loops() -> list[tuple[str, str]]:
    out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True,
                         text=True).stdout
    return parse_losetup(out)


def parse_losetup(text: str) -> list[tuple[str, str]]:
    """(loop device, backing file) pairs from ``losetup -l -n -O NAME,BACK-FILE``.

    Sample (a deleted backing file is marked, a path may contain spaces)::

        /dev/loop0 /tmp/ringmgr-lab/disks/s01-sdb.img
        /dev/loop3 /tmp/old disk.img (deleted)
    """
    pairs = []
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            pairs.append((parts[0], parts[1].strip().removesuffix(" (deleted)")))
    return pairs


def mount_table(text: str) -> list[tuple[str, str]]:
    """(source, mount point) pairs from /proc/self/mountinfo, escapes decoded."""
    return [(m.source, m.mount_point) for m in parse_mountinfo(text)]


def mounts() -> list[tuple[str, str]]:
    """What is mounted now: (source, mount point) pairs."""
    return mount_table(Path("/proc/self/mountinfo").read_text())


def swap_disk(state: str, name: str, dev: str) -> str:
    """The physical swap of a failed disk: the old loop disk goes, a blank one appears
    under the same device name (what a hot-swapped /dev/sdX does).  Refused while the
    old disk is mounted anywhere: unmounting is the runbook's job."""
    lab = load_lab(os.path.abspath(state))
    node = find_node(lab, name)
    if not lab.xfs:
        raise LabError("swap-disk needs loop disks: start the lab with `sim/lab up --xfs`")
    if dev not in node.devices:
        raise LabError(f"{name} has no device {dev!r} (it has {', '.join(node.devices)})")
    loop = lab.block_devices[name][dev]
    mnt = f"{node.mount_root}/{dev}"
    for source, target in mounts():
        if source == loop or target == mnt:
            raise LabError(f"{name} {dev} is mounted ({source} on {target}): unmount it "
                           f"first, e.g. `ringmgr replace-disk {name} {dev}`")
    prefix = lab.state + "/"
    backing = dict(_loops()).get(loop)
    if backing is not None and not backing.startswith(prefix):
        raise LabError(f"{loop} is backed by {backing}, not by this lab: not touching it")
    if backing is not None:
        _run(["losetup", "-d", loop])
        Path(backing).unlink(missing_ok=True)
    n = 1
    while (img := Path(lab.state, "disks", f"{name}-{dev}.{n}.img")).exists():
        n += 1
    with open(img, "wb") as f:
        f.truncate(300 * 1024 * 1024)
    records = Records(lab.state)
    try:
        _run(["losetup", loop, str(img)])
    except LabError:  # somebody took that loop device meanwhile: use another name
        loop = _run(["losetup", "--find", "--show", str(img)]).strip()
        lab.block_devices[name][dev] = loop
        save_lab(lab)
        write_config(lab)
        say(f"the old name was taken: the new disk is {loop} (ringmgr.toml updated)")
    records.set_disks(records.disks() + [{"image": str(img), "loop": loop, "mount": mnt}])
    say(f"{name} {dev}: a new blank 300 MB disk is {loop}; next: ringmgr replace-disk "
        f"{name} {dev} --replaced")
    return loop
