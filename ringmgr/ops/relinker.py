"""swift-object-relinker on a storage node: run detached, found again, judged done.

A relink or cleanup runs for hours or days on a real cluster, far longer than one
``ringmgr`` invocation or SSH session, so it runs detached on the node (``setsid``):
the declared exception to "no process outlives ringmgr".  Per node and step, under
``<run_dir>/<operation id>/``:

``<step>.pid``   the pid of the wrapper shell that waits for the relinker
``<step>.log``   the relinker's stdout and stderr
``<step>.rc``    its exit code, written when it ends (0 done, 2 no applicable policy,
                 1 error)

and one lock for the whole node, ``<run_dir>/relinker.lock``, held (``flock``) by the
wrapper for as long as the relinker runs.  Starting is one shell script that first
looks for a result or a live wrapper of the same step (a restarted ringmgr finds it
and starts nothing), and starts under ``flock -n`` (two ringmgrs racing: one wins, the
other sees ``busy``), so one node never runs two relinkers.

The relinker needs the node's own object-server config for its ``[object-relinker]``
section (it refuses to run without one) and reads swift.conf for the policies.  When
that section is missing, ringmgr writes its own ``<run_dir>/object-relinker.conf``
(the object-server config's ``[DEFAULT]`` plus an ``[object-relinker]`` whose
``recon_cache_path`` is the recon middleware's), never editing the operator's file.

Facts are a command plus a pure parser with a sample of its output.
"""

from __future__ import annotations

import configparser
import shlex
from dataclasses import dataclass, field

from ringmgr.ops.relinker_sh import (GATHER, GATHER_START, START, STOP,  # noqa: F401
                                     TAIL)
from ringmgr.rings.partpower import policy_index

RELINKER = "swift-object-relinker"
DEFAULT_RECLAIM_AGE = 604800      # swift's default: one week
DEFAULT_RECON_CACHE = "/var/cache/swift"
STATS_INTERVAL = 5.0              # seconds between the relinker's recon updates
OWN_CONF = "object-relinker.conf"
LOCK = "relinker.lock"


@dataclass
class RunState:
    """What the node says about one detached step (``parse_state``)."""

    state: str                 # finished, running, started, died, none, busy, error
    pid: int | None = None
    rc: int | None = None
    msg: str = ""

    def to_json(self) -> dict:
        return {"state": self.state, "pid": self.pid, "rc": self.rc, "msg": self.msg}


def parse_state(stdout: str) -> RunState:
    """``state=finished rc=0`` / ``state=running pid=4242`` / ``state=busy`` -> RunState."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith("state=")), "")
    kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
    st = RunState(kv.get("state", "error"))
    if "pid" in kv and kv["pid"].isdigit():
        st.pid = int(kv["pid"])
    if "rc" in kv and kv["rc"].lstrip("-").isdigit():
        st.rc = int(kv["rc"])
    st.msg = kv.get("msg", "" if line else f"unexpected output: {stdout.strip()[-200:]!r}")
    return st


@dataclass
class RelinkOptions:
    files_per_second: float | None = None
    workers: str | None = None
    devices: tuple[str, ...] = ()
    stats_interval: float = STATS_INTERVAL


@dataclass
class ObjectConf:
    """What the relinker and the precheck need from a node's object-server config."""

    path: str
    has_relinker_section: bool
    defaults: dict = field(default_factory=dict)
    recon_cache_path: str = DEFAULT_RECON_CACHE      # the recon middleware's
    relinker_recon_cache_path: str | None = None     # [object-relinker]'s, if any
    reclaim_age: int = DEFAULT_RECLAIM_AGE
    mount_check: bool = True
    user: str = "swift"
    devices: str = "/srv/node"


def parse_object_conf(text: str, path: str) -> ObjectConf:
    """Parse an object-server.conf (swift's paste-ini dialect)::

        [DEFAULT]
        devices = /srv/node
        user = swift
        recon_cache_path = /var/cache/swift
        [filter:recon]
        use = egg:swift#recon
        recon_cache_path = /var/cache/swift
        [object-replicator]
        reclaim_age = 604800

    ``reclaim_age``: the replicator's, else the server app's, else [DEFAULT]'s, else
    swift's default (the replicator and the relinker's cleanup both reclaim by it).
    """
    cp = configparser.RawConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string(text, source=path)
    d = dict(cp.defaults())
    own = {s: {k: v for k, v in cp.items(s) if k not in d or cp.get(s, k) != d[k]}
           for s in cp.sections()}
    recon = own.get("filter:recon", {}).get("recon_cache_path") or d.get(
        "recon_cache_path", DEFAULT_RECON_CACHE)
    rel = own.get("object-relinker")
    reclaim = (own.get("object-replicator", {}).get("reclaim_age")
               or own.get("app:object-server", {}).get("reclaim_age")
               or d.get("reclaim_age") or DEFAULT_RECLAIM_AGE)
    return ObjectConf(
        path=path, has_relinker_section=rel is not None, defaults=d,
        recon_cache_path=recon,
        relinker_recon_cache_path=None if rel is None else
        rel.get("recon_cache_path", d.get("recon_cache_path", DEFAULT_RECON_CACHE)),
        reclaim_age=int(float(reclaim)),
        mount_check=str(d.get("mount_check", "true")).lower() in ("true", "1", "yes", "on"),
        user=d.get("user", "swift"), devices=d.get("devices", "/srv/node"))


def own_relinker_conf(conf: ObjectConf) -> str:
    """ringmgr's relinker config for a node whose object-server config has no
    [object-relinker]: its [DEFAULT], and the recon middleware's recon_cache_path."""
    lines = ["# written by ringmgr increase-part-power from " + conf.path, "[DEFAULT]"]
    lines += [f"{k} = {v}" for k, v in conf.defaults.items()]
    lines += ["", "[object-relinker]", f"recon_cache_path = {conf.recon_cache_path}", ""]
    return "\n".join(lines)


def relinker_conf_path(node, conf: ObjectConf) -> str:
    return conf.path if conf.has_relinker_section else f"{node.run_dir}/{OWN_CONF}"


def conf_problem(conf: ObjectConf) -> str | None:
    """A relinker section that would report progress where recon does not look."""
    if conf.has_relinker_section and conf.relinker_recon_cache_path != conf.recon_cache_path:
        return (f"{conf.path}: [object-relinker] recon_cache_path "
                f"{conf.relinker_recon_cache_path} differs from the recon middleware's "
                f"{conf.recon_cache_path}: /recon/relinker would never show the progress; "
                f"make them the same")
    return None


def relinker_argv(node, step: str, rings, conf_path: str, opts: RelinkOptions) -> list[str]:
    """The relinker command for ``node``: the node's command prefix (a virtualenv, an
    env, a wrapper that points swift at its swift.conf), the config, one --policy per
    ring, and the rate/worker/device options passed through."""
    argv = [*node.swift_command_prefix, RELINKER, step, conf_path,
            "--swift-dir", node.swift_dir, "--devices", node.mount_root,
            "--stats-interval", f"{opts.stats_interval:g}"]
    for ring in sorted(rings):
        argv += ["--policy", str(policy_index(ring))]
    if opts.files_per_second is not None:
        argv += ["--files-per-second", f"{opts.files_per_second:g}"]
    if opts.workers is not None:
        argv += ["--workers", str(opts.workers)]
    for dev in opts.devices:
        argv += ["--device", dev]
    return argv


def run_dir(node, op_id: str) -> str:
    return f"{node.run_dir}/{op_id}"


def start_argv(node, op_id: str, step: str, command: list[str]) -> list[str]:
    """The one command that starts ``command`` detached (or finds it)."""
    return ["sh", "-c", START, "sh", run_dir(node, op_id), step, f"{node.run_dir}/{LOCK}",
            *command]


def status_argv(node, op_id: str, step: str, wait: float = 0.0) -> list[str]:
    """The same script, looking only (``RINGMGR_STATUS_ONLY=1``): never starts anything.

    With ``wait`` (seconds) it answers when the running step ends, or after ``wait``
    at the latest (checking every 0.1 s on the node, with shell builtins and
    ``sleep``): a poll that learns of the end at once instead of a poll interval
    later, and one command per node per interval."""
    return ["env", "RINGMGR_STATUS_ONLY=1", f"RINGMGR_WAIT={max(0, round(wait * 10))}",
            "sh", "-c", START, "sh", run_dir(node, op_id), step, f"{node.run_dir}/{LOCK}"]


def gather_argv(node, op_id: str, step: str, paths, token: str) -> list[str]:
    """One command: the text of each file in ``paths`` and the step's state
    (``parse_gather``); ``token`` (random) separates the parts."""
    return ["sh", "-c", GATHER, "sh", token, START, run_dir(node, op_id), step,
            f"{node.run_dir}/{LOCK}", *paths]


def parse_gather(stdout: str, token: str, paths) -> tuple[list[str | None], RunState]:
    """``gather_argv``'s output -> (each file's text, None where unreadable), RunState::

        TOKEN file 0
        [DEFAULT]
        ...
        TOKEN file 1
        TOKEN state
        state=running pid=4242
    """
    chunks = ("\n" + stdout).split("\n" + token + " ")[1:]
    texts: list[str | None] = []
    state = RunState("error", msg=f"unexpected output: {stdout.strip()[-200:]!r}")
    for chunk in chunks:
        head, _, body = chunk.partition("\n")
        if head.startswith("file "):
            texts.append(body if head == "file 0" else None)
        elif head == "state":
            state = parse_state(body)
    if len(texts) != len(paths):
        return [None] * len(paths), RunState("error", msg="unexpected output")
    return texts, state


def tail_argv(node, op_id: str, step: str, lines: int = 5) -> list[str]:
    return ["sh", "-c", TAIL, "sh", f"{run_dir(node, op_id)}/{step}.log", str(lines)]


def stop_argv(node, op_id: str, step: str) -> list[str]:
    """Stop the step's relinker on the node (``--cancel`` while relinking)."""
    return ["sh", "-c", STOP, "sh", run_dir(node, op_id), step]


def write_conf_argv(node) -> list[str]:
    """Write stdin to ``<run_dir>/object-relinker.conf`` atomically."""
    path = f"{node.run_dir}/{OWN_CONF}"
    return ["sh", "-c", 'mkdir -p "$1" && umask 022 && cat > "$2.tmp" && mv "$2.tmp" "$2"',
            "sh", node.run_dir, path]


def describe(argv) -> str:
    return shlex.join(argv)


# -- recon's /recon/relinker ------------------------------------------------------

def relinker_progress(data: dict | None, step: str, devices, policies) -> dict:
    """Per device and policy: parts done / total from ``/recon/relinker``::

        {"devices": {"sdb": {"policies": {"0": {"step": "relink", "parts_done": 256,
                                                 "total_parts": 256, "timestamp": ...}},
                             "parts_done": 256, "total_parts": 256, ...}},
         "workers": {"4242": {"devices": ["sdb"], "return_code": 0, ...}}}

    Returns ``{"sdb": {"0": {"step", "parts_done", "total_parts", "complete"}}}``; a
    device or policy the relinker has not reported is ``None`` (nothing to relink
    there, or not yet started)."""
    out: dict = {}
    devs = (data or {}).get("devices") or {}
    for dev in devices:
        pols = (devs.get(dev) or {}).get("policies") or {}
        out[dev] = {}
        for p in policies:
            rec = pols.get(str(p))
            if not isinstance(rec, dict):
                out[dev][str(p)] = None
                continue
            done, total = rec.get("parts_done", 0), rec.get("total_parts", 0)
            # swift sets total_time once it has finished the policy on the device; a
            # policy just started reads 0/0, which is not done
            out[dev][str(p)] = {"step": rec.get("step"), "parts_done": done,
                                "total_parts": total,
                                "complete": rec.get("step") == step and done >= total
                                and "total_time" in rec}
    return out


def progress_incomplete(progress: dict) -> list[str]:
    """'sdb policy 0: 12/256' for every device/policy reported but not complete."""
    out = []
    for dev, pols in sorted(progress.items()):
        for p, rec in sorted(pols.items()):
            if rec is not None and not rec["complete"]:
                out.append(f"{dev} policy {p}: {rec['step']} {rec['parts_done']}/"
                           f"{rec['total_parts']}")
    return out


# -- df -i and df -k -----------------------------------------------------------------

def parse_df_inodes(stdout: str) -> dict[str, dict]:
    """``df -P -i PATH...`` -> {mount point path asked: {inodes, used, free}}::

        Filesystem     Inodes IUsed  IFree IUse% Mounted on
        /dev/loop3     153600  1025 152575    1% /srv/node/sdb

    Keyed by the "Mounted on" column.  (``df -P -k`` has the same columns: 1K-blocks,
    Used, Available.)"""
    out = {}
    for line in stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 6 or not parts[1].isdigit():
            continue
        out[parts[5]] = {"inodes": int(parts[1]), "used": int(parts[2]),
                         "free": int(parts[3])}
    return out


def df_argv(paths) -> list[str]:
    """One df -i and one df -k per path, each headed, so a missing path does not hide
    the others."""
    script = ('for p in "$@"; do echo "== $p"; df -P -i "$p" 2>&1; echo "-- space"; '
              'df -P -k "$p" 2>&1; done')
    return ["sh", "-c", script, "sh", *paths]


def parse_df_per_path(stdout: str) -> dict[str, dict | None]:
    """The output of ``df_argv``: {path: {inodes, used, free, size_kib, avail_kib} or
    None (df failed)}::

        == /srv/node/sdb
        Filesystem     Inodes IUsed  IFree IUse% Mounted on
        /dev/loop3     153600  1025 152575    1% /srv/node/sdb
        -- space
        Filesystem     1024-blocks  Used Available Capacity Mounted on
        /dev/loop3          301056 18164    282892       7% /srv/node/sdb
    """
    out: dict[str, dict | None] = {}
    cur, buf = None, []

    def flush():
        if cur is None:
            return
        text = "\n".join(buf)
        inodes, _, space = text.partition("-- space")
        got = next(iter(parse_df_inodes(inodes).values()), None)
        kib = next(iter(parse_df_inodes(space).values()), None)
        if got is not None and kib is not None:
            got.update(size_kib=kib["inodes"], avail_kib=kib["free"])
        out[cur] = got

    for line in stdout.splitlines():
        if line.startswith("== "):
            flush()
            cur, buf = line[3:], []
        else:
            buf.append(line)
    flush()
    return out


def inode_problem(dev: str, fig: dict | None) -> str | None:
    """Relinking needs about as many free inodes again as are in use."""
    if fig is None:
        return f"{dev}: df -i failed"
    if fig["inodes"] and fig["free"] < fig["used"]:
        return (f"{dev}: {fig['free']} inodes free, {fig['used']} in use: the relink "
                f"needs about as many again")
    return None


KIB_PER_INODE = 1    # what a new inode and its share of new directory blocks take


def space_problem(dev: str, fig: dict | None) -> str | None:
    """The new inodes (512 bytes each on XFS, allocated from free space) and the
    directory blocks of the new partition and suffix directories need room too:
    refused below ``KIB_PER_INODE`` KiB free per inode in use (the relinker would stop
    with ENOSPC half way)."""
    if fig is None or fig.get("avail_kib") is None:
        return None if fig is None else f"{dev}: df -k failed"
    need = fig["used"] * KIB_PER_INODE
    if fig["avail_kib"] < need:
        return (f"{dev}: {fig['avail_kib']} KiB free, the relink of {fig['used']} inodes "
                f"needs about {need} KiB (new inodes and directories): free space first")
    return None


def version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in str(v).split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        out.append(int(digits))
        if not part.isdigit():
            break
    return tuple(out)
