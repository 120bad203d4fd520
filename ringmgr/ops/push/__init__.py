"""Ring distribution: push the admin host's ``*.ring.gz`` to every node, and verify.

Replaces the operations guide's ``for i in s01 s02 s03; do scp *.ring.gz
$i:/etc/swift; done`` (sequential, not atomic, unverified).

Per node, over one SSH connection and one remote process (a small stdlib-only
Python script that stays up for the whole exchange, so a node pays one shell and
interpreter start-up):

1. **inspect**: remove temp files left by a killed push, and
   report md5, size, builder version and validity of every ``*.ring.gz`` in the
   node's ``swift_dir``, plus whether the directory is writable and its free space.
2. **plan** (pure, :func:`plan_host`): upload what is missing, stale or corrupt;
   skip what has the same md5; refuse a ring whose version on the node is newer
   (unless ``force``); refuse early on a read-only or too-full directory.
3. **send** the rings to upload on the same process's stdin, right after the apply
   request; it writes each to ``.<name>.ringmgr-<token>.tmp`` (never matching
   ``*.ring.gz``, so Swift never loads a half-written file).  One channel per node:
   no SFTP subsystem to start (each channel costs the node a login shell).
4. **apply** (one request to the same process): check each temp file's size and md5, re-check
   the version, fsync, give it the owner and mode of the file it replaces (default
   ``[defaults].owner``, 0644); only when every file passed, rename each over its
   ring atomically and fsync the directory (otherwise remove them all: the node
   keeps its old rings).

Nodes are pushed in parallel, at most ``[ssh].parallel`` at once; a failure on one
node is collected in its :class:`HostResult`, never fatal to the others.

The package, by noun: ``plan`` (what the admin host and a node have, and the pure
decision per ring: upload, unchanged, refused), ``report`` (per-host results and the
run's report and tables), ``session`` (the wire exchange with one node's script),
``run`` (the fan-out over hosts: ``push_rings``, ``verify_rings``, and ``push_hosts``
for a chosen subset of hosts, e.g. a canary wave).
"""

from ringmgr.ops.push.plan import (HostPlan, LocalRing, RemoteRing, RemoteState, RingAction,
                                   VERIFY_STATES, load_local_rings, parse_inspect,
                                   plan_host, ring_action, verify_host)
from ringmgr.ops.push.report import HostResult, PushReport
from ringmgr.ops.push.run import (Progress, planned_push, prepare_push, push_hosts,
                                  push_rings, refuse_not_current, select_hosts,
                                  verify_rings)
from ringmgr.ops.push.session import (BOOTSTRAP, COMMAND_TIMEOUT, NODE_PYTHON, REMOTE_SCRIPT,
                                      TMP_MARK, session_argv)

__all__ = ["BOOTSTRAP", "COMMAND_TIMEOUT", "HostPlan", "HostResult", "LocalRing",
           "NODE_PYTHON", "Progress", "PushReport", "REMOTE_SCRIPT", "RemoteRing",
           "RemoteState", "RingAction", "TMP_MARK", "VERIFY_STATES", "load_local_rings",
           "parse_inspect", "plan_host", "planned_push", "prepare_push", "push_hosts",
           "push_rings", "refuse_not_current", "ring_action", "select_hosts",
           "session_argv", "verify_host", "verify_rings"]
