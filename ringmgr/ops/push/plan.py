"""What the admin host and one node have (``LocalRing``, ``RemoteState`` from the node
script's inspect line), and the pure decision per ring: upload, unchanged or refused
(``plan_host``), or how a node's rings compare (``verify_host``)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.errors import BuilderError

@functools.cache
def _node_lib() -> dict:
    """The node script's functions, for the admin side's own ring files too: one
    parser of ring headers on both ends (table-tested against swift's RingData), and
    no ``import swift`` (about 1-2 s) in ``ringmgr push``."""
    from ringmgr.ops import push_node

    return vars(push_node)


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
