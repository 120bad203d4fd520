"""safe-to-destroy: does a device hold anything that is not safely on its primaries?

Checked exactly, never by sampling:

1. over SSH, what the device still holds: every partition directory of ``objects*``,
   ``accounts`` and ``containers``, and the async pendings (``destroy_node.py``);
2. per object partition: its suffix hashes, freshly computed by the node's own object
   server (REPLICATE), against those of every primary of the partition in the current
   ring (suffixes rehashed there too, so a file removed behind swift's back counts);
   erasure-coded partitions per fragment index, against the primaries meant to hold
   that fragment (suffixes with tombstones only: against every primary);
3. per database: its replication info (from its own server, pending rows committed)
   against every primary's: rows merged or equal, timestamps and metadata as new.

Verdict: ``safe`` (exit 0), ``not_yet`` (1: the device is still assigned partitions,
something differs, async pendings wait), ``cannot_tell`` (2: a primary or the device's
own server did not answer, the device is not mounted or not listable).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ringmgr.errors import StepFailed, UsageError
from ringmgr.ops import destroy_compare as cmp
from ringmgr.ops.replicate_client import (
    ReplicateError, Target, db_info, object_hashes, own_server_down,
)

log = logging.getLogger("ringmgr.destroy")

CONCURRENCY = 16
LOCAL_ID = "ringmgr-safe-to-destroy"   # a sync id no server has: the answer changes nothing
DB_RINGS = {"accounts": "account", "containers": "container"}


@dataclass
class Check:
    """One partition (or database) against one primary."""

    ring: str
    partition: int
    primary: str
    state: str                 # in_sync | differ | missing | unknown
    suffixes: int = 0          # suffixes (objects) that differ
    db: str | None = None      # database hash (accounts, containers)
    fragment: int | None = None
    detail: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class DeviceReport:
    node: str
    device: str
    path: str
    assigned: dict[str, int] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)   # datadir -> partitions
    databases: int = 0
    async_pending: int = 0
    checks: list[Check] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.errors or any(c.state == "unknown" for c in self.checks):
            return "cannot_tell"
        if self.assigned or self.async_pending or self.problems:
            return "not_yet"
        return "safe"

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.state != "in_sync"]

    def to_json(self) -> dict:
        return {"node": self.node, "device": self.device, "path": self.path,
                "verdict": self.verdict, "safe": self.verdict == "safe",
                "assigned": self.assigned, "partitions": self.partitions,
                "databases": self.databases, "async_pending": self.async_pending,
                "checked": len(self.checks),
                "in_sync": sum(1 for c in self.checks if c.state == "in_sync"),
                "problems": [c.to_json() for c in self.problems], "errors": self.errors}


@dataclass
class DestroyReport:
    node: str
    devices: list[DeviceReport]

    @property
    def verdict(self) -> str:
        verdicts = {d.verdict for d in self.devices}
        for v in ("cannot_tell", "not_yet"):
            if v in verdicts:
                return v
        return "safe"

    def to_json(self) -> dict:
        return {"node": self.node, "verdict": self.verdict, "safe": self.verdict == "safe",
                "devices": {d.device: d.to_json() for d in self.devices}}

    def render_text(self, limit: int = 20) -> str:
        lines = []
        for d in self.devices:
            parts = sum(d.partitions.values())
            head = {"safe": "SAFE to destroy", "not_yet": "NOT YET safe",
                    "cannot_tell": "CANNOT TELL"}[d.verdict]
            lines.append(f"{d.node}/{d.device}: {head}: {parts} partition(s), "
                         f"{d.databases} database(s), {len(d.checks)} primary check(s), "
                         f"{len(d.problems)} not in sync, {d.async_pending} async pending(s)")
            for ring, n in sorted(d.assigned.items()):
                lines.append(f"  still assigned {n} partition-replica(s) in the {ring} ring "
                             f"(drain it first: weight 0, rebalance, push)")
            for e in d.errors:
                lines.append(f"  cannot tell: {e}")
            rows = [(c.ring, str(c.partition), c.primary, c.state,
                     c.db or (f"frag {c.fragment}" if c.fragment is not None else ""),
                     str(c.suffixes) if c.suffixes else "", c.detail)
                    for c in d.problems]
            if rows:
                head_row = ("ring", "partition", "primary", "state", "what", "suffixes",
                            "detail")
                shown = rows[:limit]
                widths = [max(len(x) for x in col) for col in zip(head_row, *shown)]
                for row in (head_row, *shown):
                    lines.append("  " + "  ".join(x.ljust(w) for x, w in
                                                  zip(row, widths)).rstrip())
                if len(rows) > limit:
                    lines.append(f"  ... and {len(rows) - limit} more (--json lists all)")
        return "\n".join(lines)


# -- where things are ------------------------------------------------------------

def parse_spec(config, spec: str, builders: dict) -> tuple:
    """NODE or NODE/DEV -> (node, [devices]): the node's devices in the config and in
    any ring (a removed device is still checked when named)."""
    name, _, dev = spec.partition("/")
    node = config.node(name)
    in_rings = sorted({d["device"] for b in builders.values() for d in b.devs
                       if d is not None and d["ip"] == node.ip})
    known = set(in_rings) | set(node.devices) | {
        x for devs in node.ring_devices.values() for x in devs}
    if dev:
        if dev not in known:
            raise UsageError(f"{name} has no device {dev!r} in the config or any ring "
                             f"(known: {', '.join(sorted(known)) or 'none'})")
        return node, [dev]
    if not known:
        raise UsageError(f"{name} has no devices in the config or any ring")
    return node, sorted(known)


def _dev_label(config, dev: dict) -> str:
    node = config.node_by_ip(dev["ip"])
    return f"{node.name if node else dev['ip']}/{dev['device']}"


def _target(config, dev: dict) -> Target:
    return Target(dev.get("replication_ip") or dev["ip"],
                  int(dev.get("replication_port") or dev["port"]), dev["device"],
                  _dev_label(config, dev))


def local_target(config, node, ring: str, builder, device: str) -> tuple[Target, int | None]:
    """The device's own server for ``ring``, and its id there (None: not in the ring)."""
    for d in builder.devs:
        if d is not None and d["ip"] == node.ip and d["device"] == device:
            return _target(config, d), d["id"]
    f = node.device_fields(ring, device, config.cluster.port_for(ring))
    return Target(f["replication_ip"], int(f["replication_port"]), device,
                  f"{node.name}/{device}"), None


def part_devices(builder, part: int) -> list[dict | None]:
    """The primaries of ``part`` in replica order (one per replica row)."""
    out = []
    for row in builder._replica2part2dev:
        if part < len(row):
            dev_id = row[part]
            out.append(builder.devs[dev_id] if dev_id < len(builder.devs) else None)
    return out


def assigned_parts(builder, node, device: str) -> int:
    ids = {d["id"] for d in builder.devs
           if d is not None and d["ip"] == node.ip and d["device"] == device}
    if not ids or builder._replica2part2dev is None:
        return 0
    import numpy as np

    return int(sum(np.isin(np.frombuffer(row, dtype=row.typecode), list(ids)).sum()
                   for row in builder._replica2part2dev))


# -- the checks -------------------------------------------------------------------

def check_object_partition(config, ring: str, builder, policy,
                           part: int, suffixes: list[str], local: Target,
                           self_id, timeout: float) -> list[Check]:
    checks: list[Check] = []
    try:
        mine = object_hashes(local, part, policy.index or 0, suffixes, timeout)
    except ReplicateError as e:
        return [Check(ring, part, str(local), "unknown", detail=f"the device's own object "
                                                              f"server: {e.why}")]
    mine = {s: h for s, h in mine.items() if h is not None}
    if not any(h for h in mine.values()):
        return []                       # empty suffix directories only: nothing to lose
    nodes = part_devices(builder, part)
    unique = policy.unique_fragments if policy.is_ec else 0
    pairs = [(i % unique if unique else None, d) for i, d in enumerate(nodes)]
    if unique:   # only the primaries meant for a fragment (or tombstone) held here
        pairs = [(fi, d) for fi, d in pairs if cmp.ec_differences(mine, {}, fi)[0]]
    for fi, d in pairs:
        if d is None or d["id"] == self_id:
            continue
        target = _target(config, d)
        try:
            theirs = object_hashes(target, part, policy.index or 0, (), timeout)
            if theirs:
                theirs = object_hashes(target, part, policy.index or 0, list(mine), timeout)
        except ReplicateError as e:
            checks.append(Check(ring, part, target.label, "unknown", fragment=fi,
                                detail=e.why))
            continue
        diff = (cmp.ec_differences(mine, theirs, fi)[1] if fi is not None
                else cmp.differing_suffixes(mine, theirs))
        state = "in_sync" if not diff else ("missing" if not theirs else "differ")
        checks.append(Check(ring, part, target.label, state, len(diff), fragment=fi,
                            detail="" if not diff else f"suffixes {','.join(diff[:5])}"
                                                       f"{'...' if len(diff) > 5 else ''}"))
    return checks


def check_database(config, ring: str, builder, part: int, db_hash: str, local: Target,
                   self_id, timeout: float) -> list[Check]:
    try:
        mine = db_info(local, part, db_hash, LOCAL_ID, timeout)
    except ReplicateError as e:
        return [Check(ring, part, str(local), "unknown", db=db_hash,
                      detail=f"the device's own {ring} server: {e.why}")]
    if mine is None:
        return []                       # gone meanwhile (a replicator removed it)
    checks = []
    for d in part_devices(builder, part):
        if d is None or d["id"] == self_id:
            continue
        target = _target(config, d)
        try:
            theirs = db_info(target, part, db_hash, mine["id"], timeout)
        except ReplicateError as e:
            checks.append(Check(ring, part, target.label, "unknown", db=db_hash, detail=e.why))
            continue
        why = cmp.db_differences(mine, theirs)
        state = "in_sync" if not why else ("missing" if theirs is None else "differ")
        checks.append(Check(ring, part, target.label, state, db=db_hash,
                            detail="; ".join(why)))
    return checks


def _down(rep: DeviceReport, node, kind: str, local: Target, timeout, seen) -> bool:
    """The device's own ``kind`` server does not answer: one error, no partition asked."""
    why = own_server_down(node.name, kind, local, timeout, seen)
    if why and why not in rep.errors:
        rep.errors.append(why)
    return bool(why)


def check_device(config, node, device: str, listing: dict, builders: dict, policies,
                 timeout: float, pool, seen: dict | None = None) -> DeviceReport:
    from ringmgr.rings.policies import policy_for_ring

    seen = {} if seen is None else seen
    rep = DeviceReport(node.name, device, f"{node.mount_root}/{device}")
    for ring, b in sorted(builders.items()):
        n = assigned_parts(b, node, device)
        if n:
            rep.assigned[ring] = n
    if listing.get("error"):
        rep.errors.append(f"cannot list {rep.path}: {listing['error']}")
    if not listing.get("exists"):
        rep.errors.append(f"{rep.path} does not exist on {node.name}: its data cannot be "
                          f"seen (mount the disk to check it)")
        return rep
    if not listing.get("mount") and not listing.get("entries"):
        rep.errors.append(f"{rep.path} is an empty directory, not a mount point: an "
                          f"unmounted disk looks like this (mount it to check it)")
        return rep
    rep.async_pending = sum(listing.get("async_pending", {}).values())
    jobs = []
    for datadir, parts in sorted(listing.get("objects", {}).items()):
        rep.partitions[datadir] = len(parts)
        ring = "object" if datadir == "objects" else "object-" + datadir.split("-", 1)[1]
        if ring not in builders:
            rep.errors.append(f"{datadir} has {len(parts)} partition(s) but there is no "
                              f"{ring} ring in {config.cluster.builder_dir}")
            continue
        b = builders[ring]
        policy = policy_for_ring(policies, ring)
        local, self_id = local_target(config, node, ring, b, device)
        if any(parts.values()) and _down(rep, node, "object", local, timeout, seen):
            continue
        for part, suffixes in parts.items():
            if suffixes:
                jobs.append(pool.submit(check_object_partition, config, ring, b, policy,
                                        int(part), suffixes, local, self_id, timeout))
    for datadir, parts in sorted(listing.get("dbs", {}).items()):
        rep.partitions[datadir] = len(parts)
        ring = DB_RINGS[datadir]
        if ring not in builders:
            if any(parts.values()):
                rep.errors.append(f"{datadir} holds databases but there is no {ring} ring")
            continue
        b = builders[ring]
        local, self_id = local_target(config, node, ring, b, device)
        rep.databases += sum(len(hashes) for hashes in parts.values())
        if any(parts.values()) and _down(rep, node, ring, local, timeout, seen):
            continue
        for part, hashes in parts.items():
            for h in hashes:
                jobs.append(pool.submit(check_database, config, ring, b, int(part), h,
                                        local, self_id, timeout))
    for j in jobs:
        rep.checks.extend(j.result())
    rep.checks.sort(key=lambda c: (c.ring, c.partition, c.db or "", c.primary))
    return rep


def list_devices(config, node, devices: list[str], accept_new_host_keys: bool = False,
                 executor=None) -> dict:
    """What each device holds, listed on the node over SSH."""
    from pathlib import Path

    from ringmgr.exec.factory import executor_for
    from ringmgr.exec.ssh import KnownHosts
    from ringmgr.ops.push import BOOTSTRAP, NODE_PYTHON

    script = Path(__file__).with_name("destroy_node.py").read_text()
    ex = executor or executor_for(config, node, dry_run=False, known_hosts=KnownHosts.from_config(
        config.ssh, accept_new_host_keys))
    try:
        r = ex.run(["sh", "-c", NODE_PYTHON, BOOTSTRAP,
                    json.dumps({"root": node.mount_root, "devices": devices})],
                   input=json.dumps(script) + "\n", mutates=False, check=False,
                   timeout=600)
    except Exception as e:  # noqa: BLE001 - one clear line
        raise StepFailed(f"cannot list {node.name}'s devices over SSH: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                         f"whether they are safe to destroy cannot be told") from None
    finally:
        if executor is None:
            ex.close()
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])["devices"]
    except (ValueError, KeyError, IndexError):
        tail = (r.stderr or r.stdout).strip()[-200:]
        raise StepFailed(f"listing {node.name}'s devices failed (exit {r.rc}): {tail!r}; "
                         f"whether they are safe to destroy cannot be told") from None


def safe_to_destroy(config, spec: str, *, timeout: float = 10.0,
                    accept_new_host_keys: bool = False, executor=None,
                    progress=None) -> DestroyReport:
    """The verdict for NODE or NODE/DEV (see the module docstring)."""
    from ringmgr.rings.policies import load_policies
    from ringmgr.rings.store import RingStore

    builders = RingStore.from_config(config).load_all()
    node, devices = parse_spec(config, spec, builders)
    policies = load_policies(config.cluster.swift_conf)
    if progress:
        progress(f"listing {', '.join(devices)} on {node.name} ...")
    listings = list_devices(config, node, devices, accept_new_host_keys, executor)
    reports, seen = [], {}
    with ThreadPoolExecutor(max_workers=CONCURRENCY,
                            thread_name_prefix="ringmgr-destroy") as pool:
        for dev in devices:
            if progress:
                parts = sum(len(p) for p in listings[dev].get("objects", {}).values()) + \
                    sum(len(p) for p in listings[dev].get("dbs", {}).values())
                progress(f"comparing {node.name}/{dev}: {parts} partition(s) with their "
                         f"primaries ...")
            reports.append(check_device(config, node, dev, listings[dev], builders,
                                        policies, timeout, pool, seen))
    return DestroyReport(node.name, reports)
