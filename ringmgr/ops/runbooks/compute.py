"""Compute-node runbooks from the operations guide, as runner steps.

- ``evacuate_steps``: planned maintenance ("Compute Node Failures and Maintenance"):
  disable the service, live-migrate every instance, stop nova-compute, optionally
  move its init files aside.
- ``restore_steps``: the guide's undo of that, optionally migrating instances back.
- ``after_reboot_steps``: "After a Compute Node Reboots" and "Instances".
- ``recover_host_steps``: "Total Compute Node Failure" (nova ``server evacuate``, or
  the guide's SQL way, see ``sqlrecover``), then hard reboots and volume reattach.
- ``inspect_steps`` / ``release_steps``: "Inspecting and Recovering Data from Failed
  Instances" (virsh suspend, qemu-nbd, read-only mount, and back).

One module per runbook (``evacuate``, ``after_reboot``, ``recover_host``,
``inspect_disk``; what they share in ``common``; parsers of host output in
``ringmgr.ops.facts``); this module is their one import.

Every step reads the state first (``check``) and skips with a reason when there is
nothing to do, so running a runbook again continues where it stopped.  All host and
cloud access goes through executors and the adapters in ``ringmgr.ops.openstack``.
"""

from ringmgr.ops.facts import amqp_state  # noqa: F401 (the API)
from ringmgr.ops.runbooks.after_reboot import after_reboot_steps  # noqa: F401
from ringmgr.ops.runbooks.common import (DEFAULT_HELD_DIR, DEFAULT_LOG,  # noqa: F401
                                         GUIDE_INIT_FILES, RunbookContext,
                                         journaled_instances, read_record, record_path,
                                         service_argv, write_record)
from ringmgr.ops.runbooks.evacuate import evacuate_steps, restore_steps  # noqa: F401
from ringmgr.ops.runbooks.inspect_disk import (NbdDevice, choose_disk,  # noqa: F401
                                               inspect_mountpoint, inspect_steps,
                                               release_steps)
from ringmgr.ops.runbooks.recover_host import (check_recover_params,  # noqa: F401
                                               check_sql_undo, recover_evacuate_steps,
                                               recover_precheck, recover_sql_steps,
                                               sql_steps, sql_undo)
