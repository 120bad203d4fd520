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
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ringmgr.config import Config
from ringmgr.errors import BuilderError, Refused, UsageError
from ringmgr.exec import plan as hostplan

log = logging.getLogger("ringmgr.push")

TMP_MARK = ".ringmgr-"
COMMAND_TIMEOUT = 120.0
# The system python3 when there is one (the script needs only the standard library;
# a pyenv or virtualenv shim on PATH can cost more than the whole push), else PATH's.
NODE_PYTHON = 'p=/usr/bin/python3; [ -x "$p" ] || p=python3; exec "$p" -I -S -c "$0" "$@"'
BOOTSTRAP = "import sys,json;exec(json.loads(sys.stdin.buffer.readline()))"
hostplan.abbreviate(("sh", "-c", NODE_PYTHON, BOOTSTRAP), "python3 <ringmgr push_node.py>")

# The node side is ``push_node.py``, shipped as source: it travels as the first line of
# stdin (JSON-encoded) behind a one-line bootstrap, and runs as ``__main__`` there.


REMOTE_SCRIPT = Path(__file__).with_name("push_node.py").read_text()


@functools.cache
def _node_lib() -> dict:
    """The node script's functions, for the admin side's own ring files too: one
    parser of ring headers on both ends (table-tested against swift's RingData), and
    no ``import swift`` (about 1-2 s) in ``ringmgr push``."""
    from ringmgr.ops import push_node

    return vars(push_node)


# -- facts ------------------------------------------------------------------------

@dataclass(frozen=True)
class LocalRing:
    name: str                  # file name: object.ring.gz
    md5: str
    version: int | None
    size: int
    data: bytes = field(repr=False, compare=False, default=b"")


@dataclass(frozen=True)
class RemoteRing:
    name: str
    md5: str | None
    version: int | None
    size: int | None
    error: str | None = None
    regular: bool = True       # False: a symlink, FIFO, ... in the ring's place


@dataclass(frozen=True)
class RemoteState:
    """What the inspect command found in one node's swift_dir."""

    exists: bool
    rings: dict[str, RemoteRing]
    writable: bool = True
    free: int | None = None
    removed_tmp: tuple[str, ...] = ()
    unsafe: str | None = None   # why swift_dir must not be written (others can write it)


def parse_inspect(stdout: str) -> RemoteState:
    """Parse the inspect command's JSON line.

    Sample: ``{"dir": "/etc/swift", "exists": true, "rings": {"object.ring.gz":
    {"md5": "9e1...", "size": 812345, "version": 7, "error": null}},
    "removed_tmp": [".object.ring.gz.ringmgr-1a2b.tmp"], "writable": true,
    "free": 1073741824, "unsafe": null}``; a ring that is not a regular file has
    ``"regular": false`` and its error says what it is.
    """
    d = json.loads(stdout.strip().splitlines()[-1])
    rings = {name: RemoteRing(name, r.get("md5"), r.get("version"), r.get("size"),
                              r.get("error"), r.get("regular", True) is not False)
             for name, r in d.get("rings", {}).items()}
    return RemoteState(d["exists"], rings, d.get("writable", False), d.get("free"),
                       tuple(d.get("removed_tmp", ())), d.get("unsafe"))


def load_local_rings(builder_dir: Path, rings: tuple[str, ...] | None) -> dict[str, LocalRing]:
    """The admin host's rings: ``[cluster].rings`` or every ``*.ring.gz`` there.

    Each file is read once: what is pushed is exactly what was checked (a whole-file
    gzip CRC check plus the ring header, as on the nodes).
    """
    from ringmgr.rings.files import is_ring_name

    builder_dir = Path(builder_dir)
    if not builder_dir.is_dir():
        raise BuilderError(f"builder_dir {builder_dir} does not exist or is not a directory")
    if rings:
        paths = [builder_dir / f"{r}.ring.gz" for r in rings]
    else:  # only swift's ring names: a stray "old.ring.gz" must not reach the nodes
        paths = sorted(p for p in builder_dir.glob("*.ring.gz")
                       if is_ring_name(p.name[: -len(".ring.gz")]))
    if not paths:
        raise BuilderError(f"no ring files (account, container, object, object-N .ring.gz) "
                           f"in {builder_dir} (write them first: ringmgr write-rings)")
    parse = _node_lib()["ring_bytes_info"]
    out = {}
    for p in paths:
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise BuilderError(f"{p} does not exist ([cluster].rings names it)") from None
        except OSError as e:
            raise BuilderError(f"cannot read {p}: {e.strerror}") from None
        info = parse(data)
        if info["error"]:
            raise BuilderError(f"{p} is not a valid ring ({info['error']}); refusing to push "
                               f"it (rewrite it from its builder)")
        out[p.name] = LocalRing(p.name, info["md5"], info["version"], len(data), data)
    return out


# -- pure planning ------------------------------------------------------------------

@dataclass(frozen=True)
class RingAction:
    name: str
    action: str        # upload | unchanged | refused
    reason: str        # missing | stale | corrupt | older-forced | same md5 | ...


@dataclass(frozen=True)
class HostPlan:
    actions: tuple[RingAction, ...]
    error: str | None = None   # the whole node is refused (read-only, full, no dir)

    @property
    def uploads(self) -> list[str]:
        return [a.name for a in self.actions if a.action == "upload"]

    @property
    def unchanged(self) -> list[str]:
        return [a.name for a in self.actions if a.action == "unchanged"]

    @property
    def refused(self) -> dict[str, str]:
        return {a.name: a.reason for a in self.actions if a.action == "refused"}


def ring_action(local: LocalRing, remote: RemoteRing | None, force: bool) -> RingAction:
    """What to do with one ring on one node."""
    if remote is None:
        return RingAction(local.name, "upload", "missing")
    if not remote.regular:       # never replace (or follow) what ringmgr did not make
        return RingAction(local.name, "refused", remote.error or "not a regular file")
    if remote.error:
        return RingAction(local.name, "upload", "corrupt")
    if remote.md5 == local.md5:
        return RingAction(local.name, "unchanged", "same md5")
    if (remote.version is not None and local.version is not None
            and remote.version > local.version):
        if force:
            return RingAction(local.name, "upload", "older-forced")
        return RingAction(local.name, "refused",
                          f"node has a newer ring (version {remote.version} > "
                          f"{local.version}); use --force to replace it")
    return RingAction(local.name, "upload", "stale")


def plan_host(local: dict[str, LocalRing], state: RemoteState, force: bool = False,
              swift_dir: str = "") -> HostPlan:
    """Per ring: upload, unchanged or refused; or the whole node refused with why."""
    actions = tuple(ring_action(r, state.rings.get(name), force)
                    for name, r in sorted(local.items()))
    plan = HostPlan(actions)
    if not plan.uploads:
        return plan
    if not state.exists:
        return HostPlan(actions, f"swift_dir {swift_dir} does not exist on the node")
    if state.unsafe:
        return HostPlan(actions, state.unsafe)
    if not state.writable:
        return HostPlan(actions, f"swift_dir {swift_dir} is not writable "
                                 f"(read-only filesystem?); nothing was changed")
    need = sum(local[n].size for n in plan.uploads)
    if state.free is not None and state.free < need:
        return HostPlan(actions, f"not enough space in {swift_dir}: {need} bytes needed, "
                                 f"{state.free} free; nothing was changed")
    return plan


VERIFY_STATES = ("ok", "stale", "newer", "missing", "corrupt", "extra")


def verify_host(local: dict[str, LocalRing], state: RemoteState) -> dict[str, str]:
    """Ring file name -> ok | stale | newer | missing | corrupt | extra."""
    out = {}
    for name, ring in sorted(local.items()):
        remote = state.rings.get(name)
        if remote is None:
            out[name] = "missing"
        elif remote.error:
            out[name] = "corrupt"
        elif remote.md5 == ring.md5:
            out[name] = "ok"
        elif (remote.version is not None and ring.version is not None
              and remote.version > ring.version):
            out[name] = "newer"
        else:
            out[name] = "stale"
    for name in sorted(set(state.rings) - set(local)):
        out[name] = "extra"
    return out


# -- results ------------------------------------------------------------------------

@dataclass
class HostResult:
    node: str
    address: str
    ok: bool = False
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    planned: list[str] = field(default_factory=list)
    verify: dict[str, str] = field(default_factory=dict)
    removed_tmp: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    plan: list[hostplan.HostStep] = field(default_factory=list)   # a dry run's command

    def to_json(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v)
                for k, v in self.__dict__.items() if k != "plan"} | {
            "timings": {k: round(v, 3) for k, v in self.timings.items()}}


@dataclass
class PushReport:
    kind: str                            # push | verify
    rings: dict[str, LocalRing]
    results: list[HostResult]
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.node for r in self.results if r.error or r.refused]

    @property
    def differ(self) -> list[str]:
        return [r.node for r in self.results
                if not r.error and any(s != "ok" for s in r.verify.values())]

    @property
    def written(self) -> bool:
        return any(r.updated for r in self.results)

    def retry_command(self) -> str | None:
        if not self.failed:
            return None
        import shlex

        return shlex.join(["ringmgr", self.kind, *self.failed])  # node names may have spaces

    @property
    def plan(self) -> list[hostplan.HostStep]:
        return [s for r in self.results for s in r.plan]

    def to_json(self) -> dict:
        extra = {"host_steps": hostplan.to_json(self.plan)} if self.dry_run else {}
        return extra | {
            "written": self.written,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "rings": {n: {"md5": r.md5, "version": r.version, "size": r.size}
                      for n, r in sorted(self.rings.items())},
            "hosts": {r.node: r.to_json() for r in self.results},
            "failed": self.failed,
            "retry": self.retry_command(),
        }

    def render_table(self) -> str:
        if self.kind == "verify":
            return self._render_verify()
        head = ("node", "would update" if self.dry_run else "updated", "unchanged",
                "time", "error")
        rows = []
        for r in self.results:
            upd = r.planned if self.dry_run else r.updated
            err = r.error or "; ".join(f"{n}: {why}" for n, why in r.refused.items())
            rows.append((r.node, _names(upd), _names(r.unchanged), f"{r.seconds:.2f}s",
                         err or ""))
        return _table(head, rows)

    render_text = render_table

    def _render_verify(self) -> str:
        names = sorted({n for r in self.results for n in r.verify} | set(self.rings))
        head = ("node", *[n.removesuffix(".ring.gz") for n in names], "error")
        rows = [(r.node, *[r.verify.get(n, "-") if not r.error else "?" for n in names],
                 r.error or "") for r in self.results]
        return _table(head, rows)


def _names(files) -> str:
    return ",".join(n.removesuffix(".ring.gz") for n in files) or "-"


def _table(head, rows) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
             for row in [head, *rows]]
    return "\n".join(lines)


# -- the engine ---------------------------------------------------------------------

def select_hosts(config, names) -> dict:
    hosts = config.hosts()
    if not names:
        if not hosts:
            raise UsageError(f"no nodes or proxies in {config.path}")
        return hosts
    unknown = [n for n in names if n not in hosts]
    if unknown:
        raise UsageError(f"unknown node {', '.join(unknown)} (nodes and proxies in "
                         f"{config.path}: {', '.join(sorted(hosts)) or 'none'})")
    return {n: hosts[n] for n in dict.fromkeys(names)}


Progress = Callable[[HostResult], None]


def push_rings(config: Config, names=None, *, force: bool = False,
               accept_new_host_keys: bool = False, dry_run: bool = False,
               progress: Progress | None = None, transport=None) -> PushReport:
    """Push the admin host's rings to the named nodes (default all nodes and proxies).

    Raises ``Refused`` while an interrupted ring change is pending; per-node
    failures are in the report (``report.ok``, ``report.failed``), not raised.
    """
    with _push_lock(config, dry_run) as lock:
        _refuse_if_pending(config.cluster.builder_dir, held=lock is not None)
        hosts = select_hosts(config, names)
        local = load_local_rings(config.cluster.builder_dir, config.cluster.rings)
        refuse_not_current(config, local)
        return _run_all("push", config, hosts, local, accept_new_host_keys, progress,
                        transport,
                        lambda ex, node, res: _push_one(ex, node, local, res, force, dry_run),
                        dry_run)


def _push_lock(config, dry_run: bool):
    """The builder directory's lock for the whole push: no ring change can rename files
    under a push that is reading them, and two pushes from this admin host never race
    on a node's temp files.  A read-only builder_dir (a user who may push but not
    change rings) pushes without it."""
    import contextlib
    import os

    from ringmgr.rings.lock import directory_lock

    d = Path(config.cluster.builder_dir)
    if dry_run or not os.access(d, os.W_OK):
        return contextlib.nullcontext()
    return directory_lock(d, config.cluster.lock_timeout)


def refuse_not_current(config, local: dict) -> None:
    """Push only rings that are exactly what their builders make: a ring.gz that is
    missing, stale (also after a builder edit swift does not version), truncated or
    another ring's file is refused, with the fix (``write-rings``)."""
    from ringmgr.rings.store import RingStore

    store = RingStore.from_config(config)
    names = store.discover()
    md5s = {name[: -len(".ring.gz")]: ring.md5 for name, ring in local.items()}
    bad = {n: c for n, c in store.ring_checks(names, ring_md5s=md5s).items()
           if not c.current}
    if bad:
        what = "; ".join(f"{n}.ring.gz is {c.state} ({c.detail})" for n, c in bad.items())
        raise Refused(f"not pushing: {what}. Run `ringmgr write-rings` first; nothing was "
                      f"pushed")


def verify_rings(config: Config, names=None, *, accept_new_host_keys: bool = False,
                 progress: Progress | None = None, transport=None) -> PushReport:
    """Compare every node's rings with the admin host's (md5 over SSH)."""
    hosts = select_hosts(config, names)
    local = load_local_rings(config.cluster.builder_dir, config.cluster.rings)
    return _run_all("verify", config, hosts, local, accept_new_host_keys, progress,
                    transport, lambda ex, node, res: _verify_one(ex, node, local, res),
                    False)


def _refuse_if_pending(builder_dir, *, held: bool = False) -> None:
    from ringmgr.rings.store import RingStore

    pending = RingStore(Path(builder_dir)).pending(held=held)
    if pending:
        what = "ring change"
        if isinstance(pending, dict) and (pending.get("description") or pending.get("id")):
            what = f"ring change ({pending.get('description') or pending.get('id')})"
        raise Refused(f"an interrupted {what} is pending in {builder_dir}: the "
                      f"rings there may be a mix of old and new; finish or undo it with "
                      f"`ringmgr resume` before pushing")


def _run_all(kind: str, config: Config, hosts: dict, local, accept_new: bool,
             progress: Progress | None, transport, work, dry_run: bool) -> PushReport:
    """``work(ex, node, res)`` on every host through ``fan_out``; each host's executor
    from the factory, with a streaming session (``STREAM``) and one known_hosts file
    shared by the run."""
    from ringmgr.exec.base import STREAM
    from ringmgr.exec.factory import close_all, executor_for
    from ringmgr.exec.fanout import fan_out, one_line
    from ringmgr.exec.ssh import KnownHosts

    known = KnownHosts.from_config(config.ssh, accept_new)

    def one(node) -> HostResult:
        res = HostResult(node.name, node.host)
        t0 = time.monotonic()
        ex = None
        try:
            ex = executor_for(config, node, dry_run=dry_run, needs={STREAM},
                              known_hosts=known, transport=transport)
            # verify's session only removes a killed push's temp files: a check
            with hostplan.step(kind, reason=f"{kind} the rings in {node.swift_dir}",
                               kind=hostplan.CHECK if kind == "verify" else hostplan.CHANGE):
                work(ex, node, res)
        except Exception as e:  # noqa: BLE001 - one node's failure is collected
            res.error = one_line(e).removeprefix(f"[{node.name}] ")
            res.ok = False
            log.debug("[%s] %s failed", node.name, kind, exc_info=True)
        finally:
            close_all(ex)
        res.seconds = time.monotonic() - t0
        res.timings = dict(ex.timings) if ex is not None else {}
        return res

    def show(outcome) -> None:
        if progress is not None and outcome.value is not None:
            progress(outcome.value)

    group = fan_out(hosts.values(), one, parallel=config.ssh.parallel, progress=show,
                    label=kind)
    return PushReport(kind, local, [o.value for o in group.outcomes], dry_run, group.seconds)


def session_argv(node, cleanup: bool) -> list[str]:
    """The command that starts the node script for one node (``push_node.py``)."""
    arg = json.dumps({"dir": node.swift_dir, "cleanup": cleanup, "owner": node.owner})
    return ["sh", "-c", NODE_PYTHON, BOOTSTRAP, "session", arg]


def _session(ex, node, cleanup: bool):
    """Start the node script; return it (waiting for an apply request) and its facts."""
    proc = ex.start(session_argv(node, cleanup),
                    input=json.dumps(REMOTE_SCRIPT) + "\n", mutates=cleanup)
    t0 = time.monotonic()
    line = proc.readline(COMMAND_TIMEOUT)
    ex.timings["inspect"] = ex.timings.get("inspect", 0.0) + time.monotonic() - t0
    try:
        return proc, parse_inspect(line)
    except (ValueError, KeyError, IndexError):
        r = proc.finish(COMMAND_TIMEOUT, check=False)
        raise RuntimeError(f"the node script failed (exit {r.rc}): "
                           f"{(line + r.stdout + r.stderr).strip()[-300:]!r}") from None


def _push_one(ex, node, local, res: HostResult, force: bool, dry_run: bool) -> None:
    proc, state = _session(ex, node, cleanup=not dry_run)
    try:
        _push_planned(ex, proc, node, local, state, res, force, dry_run)
    finally:
        proc.close()


def _push_planned(ex, proc, node, local, state, res, force, dry_run) -> None:
    res.removed_tmp = list(state.removed_tmp)
    plan = plan_host(local, state, force, node.swift_dir)
    res.unchanged = plan.unchanged
    res.refused = plan.refused
    res.planned = plan.uploads
    if plan.error:
        res.error = plan.error
        if dry_run:       # a real run still starts the session (it removes temp files)
            res.plan = [_planned_session(node, plan)]
        return
    if dry_run:
        res.plan = [_planned_session(node, plan)]
    if dry_run or not plan.uploads:
        proc.finish(COMMAND_TIMEOUT)
        res.ok = not plan.refused
        return
    token = secrets.token_hex(4)
    files = [{"name": n, "tmp": f".{n}{TMP_MARK}{token}.tmp", "md5": local[n].md5,
              "size": local[n].size, "version": local[n].version, "force": force}
             for n in plan.uploads]
    log.info("[%s] run: send %s (%d bytes) to %s and apply", node.name,
             ", ".join(plan.uploads), sum(f["size"] for f in files), node.swift_dir)
    proc.write(json.dumps({"dir": node.swift_dir, "owner": node.owner, "files": files,
                           "stream": True}) + "\n")
    t0 = time.monotonic()
    try:
        for n in plan.uploads:
            proc.write(local[n].data, timeout=COMMAND_TIMEOUT)  # seconds without progress
    except Exception as e:  # noqa: BLE001
        raise RuntimeError(f"sending the rings failed: {_one_line(e)}; the node's rings "
                           f"were not changed") from None
    line = proc.readline(COMMAND_TIMEOUT)
    ex.timings["send+apply"] = time.monotonic() - t0
    try:
        answer = json.loads(line)
        outcome = answer["files"]
        # as the node measured them: from the request to the last byte, then the apply
        ex.timings["node_receive"] = answer["seconds"]["receive"]
        ex.timings["node_apply"] = answer["seconds"]["apply"]
    except (ValueError, KeyError):
        r = proc.finish(COMMAND_TIMEOUT, check=False)
        raise RuntimeError(f"the node script failed while applying (exit {r.rc}): "
                           f"{(line + r.stdout + r.stderr).strip()[-300:]!r}") from None
    proc.finish(COMMAND_TIMEOUT)
    errors = []
    for f in files:
        o = outcome.get(f["name"], {"ok": False, "error": "no answer"})
        if o["ok"]:
            res.updated.append(f["name"])
        elif o.get("error"):
            errors.append(f"{f['name']}: {o['error']}")
    if errors:
        res.error = "; ".join(errors) + "; no ring on the node was changed"
    res.ok = not errors and not plan.refused


def _planned_session(node, plan: HostPlan) -> hostplan.HostStep:
    """What a real push runs on the node: one session, which first removes the temp
    files of a killed push, then applies the uploads (if any and none refused)."""
    ups = ", ".join(f"{a.name} ({a.reason})" for a in plan.actions if a.action == "upload")
    why = "remove temp files a killed push left; " + (
        f"upload {ups} to {node.swift_dir}" if ups and not plan.error else
        "upload nothing" + (f" ({plan.error})" if plan.error else " (rings current)"))
    return hostplan.HostStep(node.name, "push", tuple(session_argv(node, True)), False, why)


def _verify_one(ex, node, local, res: HostResult) -> None:
    proc, state = _session(ex, node, cleanup=True)
    proc.finish(COMMAND_TIMEOUT)
    res.removed_tmp = list(state.removed_tmp)
    if not state.exists:
        res.error = f"swift_dir {node.swift_dir} does not exist on the node"
        return
    res.verify = verify_host(local, state)
    res.ok = all(s == "ok" for s in res.verify.values())


def _one_line(e: BaseException) -> str:
    from ringmgr.exec.fanout import one_line

    return one_line(e)
