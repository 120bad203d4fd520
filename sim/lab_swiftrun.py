#!/usr/bin/env python3
"""Run one of swift's console scripts against a swift.conf outside /etc/swift.

Usage: lab_swiftrun.py SWIFT_DIR SCRIPT [ARGS...]
       e.g. lab_swiftrun.py /tmp/lab/nodes/s01/etc/swift swift-object-server object-server.conf -v

Why this exists: swift reads its storage policies from ``/etc/swift/swift.conf`` when
``swift.common.storage_policy`` is imported, and the WSGI servers' ``swift_dir`` option
only re-reads the hash prefix/suffix, not the policies; the replicators do not look at
``swift_dir`` for swift.conf at all.  A lab node keeps its swift.conf in its own
swift_dir (so that several labs, and the host, never share one), so before handing over
to swift's own entry point (looked up by its console-script name, exactly what the
installed ``swift-*`` script would call) we point swift at that file and reload the
policies and constraints.

One lab knob: ``$RINGMGR_LAB_RING_RELOAD`` (seconds) replaces swift's fixed 15 s
interval at which a running server notices a new ring.gz (swift.common.ring.ring's
DEFAULT_RELOAD_TIME, which no config option reaches), so that a rehearsal does not wait
15 s after every push.  Nothing else is changed.
"""

import sys
from importlib.metadata import entry_points


def main() -> int:
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__.split("\n\n")[0] + "\n")
        return 2
    swift_dir, script, *args = sys.argv[1:]
    import os

    from swift.common import constraints, storage_policy, utils
    from swift.common.ring import ring

    if os.environ.get("RINGMGR_LAB_RING_RELOAD"):
        ring.DEFAULT_RELOAD_TIME = float(os.environ["RINGMGR_LAB_RING_RELOAD"])

    utils.set_swift_dir(swift_dir)
    storage_policy.reload_storage_policies()
    constraints.reload_constraints()
    matches = [e for e in entry_points(group="console_scripts") if e.name == script]
    if not matches:
        sys.stderr.write(f"lab_swiftrun: no console script named {script!r}\n")
        return 2
    sys.argv = [script, *args]
    return matches[0].load()()


if __name__ == "__main__":
    sys.exit(main())
