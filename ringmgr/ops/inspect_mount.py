"""Mounting a tenant's filesystem for a look, without handing anything in it to anyone.

A guest's filesystem is the tenant's: a setuid binary or a device node in it must not
become usable on the compute host, and nobody but root should reach it.  So it is
mounted ``ro,nosuid,nodev,noexec`` under a 0700 directory.  qemu-nbd attaches the
image read-only, and a crashed guest leaves a dirty journal that a plain ``ro`` mount
refuses to replay ("cannot mount read-only"): ``norecovery`` (XFS) and ``noload``
(ext3/ext4) mount it as it is, without replaying.

``mount_read_only(ex, part, mnt)`` runs through the host's executor (real commands; in
a dry run, the filesystem type is whatever blkid will find).
"""

from __future__ import annotations

import re

from ringmgr.errors import Refused
from ringmgr.exec.base import Executor
from ringmgr.ops import facts

INSPECT_ROOT = "/mnt/ringmgr-inspect"
SAFE_OPTIONS = "ro,nosuid,nodev,noexec"
NO_REPLAY = {"xfs": "norecovery", "ext3": "noload", "ext4": "noload"}


def mount_options(fstype: str) -> str:
    """Pure: the options for a tenant filesystem of ``fstype``.

    >>> mount_options("xfs")
    'ro,nosuid,nodev,noexec,norecovery'
    >>> mount_options("vfat")
    'ro,nosuid,nodev,noexec'
    """
    extra = NO_REPLAY.get(fstype)
    return f"{SAFE_OPTIONS},{extra}" if extra else SAFE_OPTIONS


def mount_read_only(ex: Executor, part: str, mnt: str, *, root: str = INSPECT_ROOT,
                    dry_run: bool = False) -> str:
    """mkdir ROOT 0700, mkdir MNT 0700 inside it, mount PART there; the options used."""
    if not mnt.startswith(root.rstrip("/") + "/"):
        raise ValueError(f"{mnt} is not under {root}")
    ex.run(["mkdir", "-p", "-m", "0700", "--", root])
    ex.run(["chmod", "0700", "--", root])    # it may have existed with another mode
    ex.run(["mkdir", "-p", "-m", "0700", "--", mnt])
    probe = facts.parse_blkid_export(ex.run(facts.blkid_argv(part), check=False,
                                            mutates=False).stdout)
    fstype = probe.get("TYPE", "")
    if not re.fullmatch(r"[a-z0-9_]+", fstype):
        if not dry_run:
            raise Refused(f"[{ex.host}] blkid finds no filesystem on {part}: nothing to "
                          f"mount (a swap partition, LVM, an encrypted disk?)")
        fstype = "<type blkid finds>"
    options = mount_options(fstype)
    ex.run(["mount", "-t", fstype, "-o", options, "--", part, mnt])
    return options
