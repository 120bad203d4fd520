"""The failed-disk flow as steps: precheck, unmount, guard, swap, mkfs, fstab, mount, checks.

Why each step exists, in the order they run:

* precheck (always, also on resume): node and device known in the config and the
  rings, the block device present, the mount point a directory inside ``mount_root``,
  the block device not mounted anywhere else, not in use (``safety``); the
  kernel-log errors that are about the disk now in the slot (``logwindow``, ``kernel_log``).
* unmount ``mount_root/DEV`` (a no-op when unmounted; busy: refuse naming the holders).
* guard: the empty mount point becomes ``root:root 0755``, so nothing running as swift
  fills the root filesystem while the disk is out; done on a descriptor opened without
  following a symlink (``node.guard``), since swift owns ``mount_root``.
* swap: without ``--replaced`` the run stops here (exit 0) and prints what to run once
  the new disk is in.  With it: the kernel must see the device; a device that still
  carries the filesystem UUID mounted there before was not swapped (refused unless
  ``--force-format``).
* mkfs.xfs with the label and the UUID chosen before the run (journaled, so a dry run
  shows the very command a real run executes), right after checking again that the
  disk is not in use (mounts, holders, parents, loop devices, open descriptors, an
  ``O_EXCL`` probe).
* fstab: exactly one entry, by LABEL or UUID (``fstab.set_entry``), written atomically
  with a backup; ``systemctl daemon-reload`` where systemd runs.
* mount from that entry; check it is writable and that user xattrs work (swift keeps
  object metadata in them) while it is still root's; then chown it to the owner.
* with ``--weight-zero``: weight 0 first and the weight restored last, each pushed or
  announced as due (``weight``).

Every check that decides whether a step runs reads only state the earlier steps do not
change, so the dry run's command list equals the real run's.

The package, by noun: ``context`` (options, the context the steps share, names and
journaled parameters), ``precheck``, ``steps``, ``flow`` (the whole operation and its
report), ``sizes`` (size heuristics), ``weight`` (``--weight-zero``'s ring change and
push), ``safety`` (what is checked before a disk is touched), ``node`` (the script run
on the node).
"""

from ringmgr.ops.disk.context import (DiskContext, ReplaceOptions, check_name,
                                      choose_params, operation_key)
from ringmgr.ops.disk.flow import ReplaceRun, finished_result_stands, replace_disk
from ringmgr.ops.disk.precheck import precheck
from ringmgr.ops.disk.sizes import peer_sizes, size_warnings, weight_suggested_sizes
from ringmgr.ops.disk.steps import replace_disk_steps, take_out_steps
from ringmgr.ops.disk.weight import push_note, refill_report

__all__ = ["DiskContext", "ReplaceOptions", "ReplaceRun", "check_name", "choose_params",
           "finished_result_stands", "operation_key", "peer_sizes", "precheck", "push_note",
           "refill_report", "replace_disk", "replace_disk_steps",
           "size_warnings", "take_out_steps", "weight_suggested_sizes"]
