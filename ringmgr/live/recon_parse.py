"""Pure parsers of swift's recon middleware answers (``GET /recon/<what>``).

Each parser takes the decoded JSON body of one answer and returns a small typed value,
or raises ``ReconParseError`` with one line saying what was wrong: recon answers come
from cache files the daemons write, so a half-upgraded or misconfigured server can
answer anything.  ``None`` values mean "no pass has finished yet" (the cache file does
not have the key), which is not an error.

The samples in the docstrings are real answers captured from the rehearsal lab (swift
2.38.3); more are checked in under ``tests/data/recon/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class ReconParseError(ValueError):
    """A recon answer that does not have the shape swift's recon middleware gives."""


def _num(value, what: str, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReconParseError(f"{what} is {value!r}, not a number")
    return float(value)


def _mapping(obj, what: str) -> dict:
    if not isinstance(obj, dict):
        raise ReconParseError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj


@dataclass(frozen=True)
class Pass:
    """One replication (or reconstruction) pass as recon reports it: ``start`` and
    ``end`` in epoch seconds (None when no pass has finished), ``failures`` per the
    pass's stats (None when the daemon reports none)."""

    start: float | None
    end: float | None
    duration: float | None     # seconds
    failures: int | None = None
    attempted: int | None = None


def parse_replication(kind: str, obj) -> Pass:
    """``/recon/replication/<kind>`` -> Pass.

    Object (``replication_time`` in *minutes*; the start is ``last - 60 * time``)::

        {"replication_time": 4.78665033976237e-05, "replication_stats": {"attempted": 0,
         "failure": 0, "hashmatch": 0, "remove": 0, "rsync": 0, "success": 0,
         "suffix_count": 0, "suffix_hash": 0, "suffix_sync": 0},
         "replication_last": 1796192729.158647,
         "object_replication_time": 4.78665033976237e-05,
         "object_replication_last": 1796192729.158647}

    Account and container (``replication_time`` in *seconds*; the stats carry the
    pass's ``start``)::

        {"replication_time": 0.000400543212890625, "replication_stats": {"attempted": 0,
         "deferred": 0, "diff": 0, "diff_capped": 0, "empty": 0, "failure": 0,
         "hashmatch": 0, "no_change": 0, "remote_merge": 0, "remove": 0, "rsync": 0,
         "start": 1796192729.102413, "success": 0, "ts_repl": 0},
         "replication_last": 1796192729.1028135}

    Before the first pass every value is null.
    """
    obj = _mapping(obj, f"replication/{kind}")
    if "replication_last" not in obj:
        raise ReconParseError(f"replication/{kind}: no replication_last key")
    last = _num(obj.get("replication_last"), f"replication/{kind} replication_last")
    took = _num(obj.get("replication_time"), f"replication/{kind} replication_time")
    stats = obj.get("replication_stats")
    if stats is not None:
        stats = _mapping(stats, f"replication/{kind} replication_stats")
    stats = stats or {}
    failures = stats.get("failure")
    attempted = stats.get("attempted")
    failures = None if failures is None else int(_num(failures, f"replication/{kind} failure"))
    attempted = None if attempted is None else int(_num(attempted,
                                                        f"replication/{kind} attempted"))
    if kind == "object":
        duration = None if took is None else took * 60.0
        start = None if last is None or duration is None else last - duration
    else:
        duration = took
        start = _num(stats.get("start"), f"replication/{kind} start")
        if start is None and last is not None and took is not None:
            start = last - took
    return Pass(start=start, end=last, duration=duration, failures=failures,
                attempted=attempted)


def parse_reconstruction(obj) -> Pass:
    """``/recon/reconstruction/object`` (erasure-coded policies; time in minutes)::

        {"object_reconstruction_last": null, "object_reconstruction_time": null}
    """
    obj = _mapping(obj, "reconstruction/object")
    if "object_reconstruction_last" not in obj:
        raise ReconParseError("reconstruction/object: no object_reconstruction_last key")
    last = _num(obj["object_reconstruction_last"], "object_reconstruction_last")
    took = _num(obj.get("object_reconstruction_time"), "object_reconstruction_time")
    duration = None if took is None else took * 60.0
    start = None if last is None or duration is None else last - duration
    return Pass(start=start, end=last, duration=duration)


@dataclass(frozen=True)
class DiskUsage:
    device: str
    mounted: bool
    size: int | None     # bytes; None when unmounted
    used: int | None
    avail: int | None
    error: str | None = None   # recon's text when the mount check itself failed

    @property
    def percent(self) -> float | None:
        if not self.size:
            return None
        return 100.0 * self.used / self.size


def parse_diskusage(obj) -> list[DiskUsage]:
    """``/recon/diskusage``: one entry per directory under the server's devices path.

    Unmounted (a device that is a plain directory, as in the lab without ``--xfs``)::

        [{"device": "sdc", "mounted": false, "size": "", "used": "", "avail": ""},
         {"device": "sdb", "mounted": false, "size": "", "used": "", "avail": ""}]

    Mounted (the lab with ``--xfs``)::

        [{"device": "sdb", "mounted": true, "size": 247463936, "used": 17731584,
          "avail": 229732352}]

    Recon checks "is it a mount point" whatever the server's ``mount_check`` says, so
    whether an unmounted entry matters is the caller's decision.
    """
    if not isinstance(obj, list):
        raise ReconParseError(f"diskusage: expected a JSON list, got {type(obj).__name__}")
    out = []
    for entry in obj:
        entry = _mapping(entry, "diskusage entry")
        dev = entry.get("device")
        if not isinstance(dev, str) or not dev:
            raise ReconParseError(f"diskusage entry without a device name: {entry!r:.80}")
        mounted = entry.get("mounted")
        if mounted is True:
            vals = [_num(entry.get(k), f"diskusage {dev} {k}", allow_none=False)
                    for k in ("size", "used", "avail")]
            out.append(DiskUsage(dev, True, *(int(x) for x in vals)))
        else:
            out.append(DiskUsage(dev, False, None, None, None,
                                 error=mounted if isinstance(mounted, str) else None))
    return out


def parse_unmounted(obj) -> list[str]:
    """``/recon/unmounted`` -> the device names recon found not mounted::

        [{"device": "sdc", "mounted": false}, {"device": "sdb", "mounted": false}]
    """
    if not isinstance(obj, list):
        raise ReconParseError(f"unmounted: expected a JSON list, got {type(obj).__name__}")
    names = []
    for entry in obj:
        entry = _mapping(entry, "unmounted entry")
        if not isinstance(entry.get("device"), str):
            raise ReconParseError(f"unmounted entry without a device name: {entry!r:.80}")
        names.append(entry["device"])
    return sorted(names)


def parse_async(obj) -> int | None:
    """``/recon/async`` -> async pendings (None: the updater has not counted yet)::

        {"async_pending": null, "async_pending_last": null}
    """
    obj = _mapping(obj, "async")
    if "async_pending" not in obj:
        raise ReconParseError("async: no async_pending key")
    n = _num(obj["async_pending"], "async_pending")
    return None if n is None else int(n)


def parse_quarantined(obj) -> dict[str, int]:
    """``/recon/quarantined`` -> {"objects": n, "containers": n, "accounts": n}::

        {"objects": 0, "containers": 0, "accounts": 0, "policies": {}}
    """
    obj = _mapping(obj, "quarantined")
    out = {}
    for key in ("objects", "containers", "accounts"):
        if key not in obj:
            raise ReconParseError(f"quarantined: no {key} key")
        out[key] = int(_num(obj[key], f"quarantined {key}", allow_none=False))
    return out


def parse_md5s(obj, what: str = "ringmd5") -> dict[str, str | None]:
    """``/recon/ringmd5`` or ``/recon/swiftconfmd5`` -> file *name* -> md5 (the md5 of
    the file on disk; recon gives full paths, which differ per node)::

        {"/srv/s01/etc/swift/account.ring.gz": "33d2a8f2d8f1b4efbcd2c5b3b3acff6e",
         "/srv/s01/etc/swift/object.ring.gz": "b4cc83dfff7e2482f2d23985cbb364a9"}

    A file recon could not read has a null md5.
    """
    obj = _mapping(obj, what)
    out = {}
    for path, md5 in obj.items():
        if md5 is not None and not (isinstance(md5, str) and len(md5) == 32):
            raise ReconParseError(f"{what}: {path}: {md5!r:.40} is not an md5")
        out[str(path).rsplit("/", 1)[-1]] = md5
    return out


def parse_time(obj) -> float:
    """``/recon/time`` -> the server's clock (epoch seconds)::

        1796192720.110193
    """
    t = _num(obj, "time", allow_none=False)
    if t <= 0:
        raise ReconParseError(f"time is {obj!r}, not a clock reading")
    return t


def parse_driveaudit(obj) -> int | None:
    """``/recon/driveaudit`` -> errors swift-drive-audit found (None: it never ran)::

        {"drive_audit_errors": null}
    """
    obj = _mapping(obj, "driveaudit")
    if "drive_audit_errors" not in obj:
        raise ReconParseError("driveaudit: no drive_audit_errors key")
    n = _num(obj["drive_audit_errors"], "drive_audit_errors")
    return None if n is None else int(n)


@dataclass(frozen=True)
class RelinkerDevice:
    """One device's progress for one policy (``policy`` None: an answer without
    per-policy entries, the device's totals only)."""
    device: str
    policy: int | None
    step: str | None          # "relink" or "cleanup"
    parts_done: int | None
    total_parts: int | None
    finished: bool


def parse_relinker(obj) -> list[RelinkerDevice]:
    """``/recon/relinker`` -> progress of swift-object-relinker per device and policy.

    Never run::

        {"devices": null, "workers": null}

    Running or run (swift writes each policy's progress under the device, keyed by the
    policy index as a string; the device's own ``parts_done`` / ``total_parts`` are the
    sums over its policies and it has no ``step``; a run starts from an empty cache)::

        {"devices": {"sdb": {"parts_done": 12, "total_parts": 16, "stats": {...},
                             "policies": {"0": {"step": "relink", "parts_done": 8,
                                                "total_parts": 8, "part_power": 3,
                                                "next_part_power": 4, ...},
                                          "1": {"step": "relink", "parts_done": 4,
                                                "total_parts": 8, ...}}}},
         "workers": {"4242": {"devices": ["sdb"], "return_code": null, ...}}}

    One entry per device and policy, sorted; finished when swift has been through the
    device for the policy (``total_time`` is set) and its parts are all done.
    """
    obj = _mapping(obj, "relinker")
    if "devices" not in obj:
        raise ReconParseError("relinker: no devices key")
    devices = obj["devices"] or {}
    devices = _mapping(devices, "relinker devices")
    out = []
    for dev, st in sorted(devices.items()):
        st = _mapping(st, f"relinker {dev}")
        policies = st.get("policies")
        if policies is None:
            out.append(_relinker_entry(dev, None, st, f"relinker {dev}"))
            continue
        policies = _mapping(policies, f"relinker {dev} policies")
        for key, rec in policies.items():
            if not str(key).isdigit():
                raise ReconParseError(f"relinker {dev}: policy {key!r:.20} is not an index")
        for key in sorted(policies, key=int):
            what = f"relinker {dev} policy {key}"
            rec = _mapping(policies[key], what)
            e = _relinker_entry(dev, int(key), rec, what)
            # swift sets total_time when it has gone through the whole device for the
            # policy; before that a device just begun shows 0 of 0 parts
            out.append(e if "total_time" in rec else
                       RelinkerDevice(e.device, e.policy, e.step, e.parts_done,
                                      e.total_parts, finished=False))
    return out


def _relinker_entry(dev: str, policy, st: dict, what: str) -> RelinkerDevice:
    done, total = st.get("parts_done"), st.get("total_parts")
    done = None if done is None else int(_num(done, f"{what} parts_done"))
    total = None if total is None else int(_num(total, f"{what} total_parts"))
    step = st.get("step")
    return RelinkerDevice(dev, policy, step if isinstance(step, str) else None, done, total,
                          finished=done is not None and total is not None and done >= total)


def relinker_by_policy(entries) -> list[dict]:
    """Per policy: its step and how many devices are done with it, out of the devices
    the answer names (a device the relinker has not reached for a policy yet counts
    as not done)::

        [{"policy": 1, "step": "relink", "devices": 4, "devices_done": 3}]

    ``step`` is None when the devices report different steps (or none)."""
    total = len({e.device for e in entries})
    by: dict = {}
    for e in entries:
        by.setdefault(e.policy, []).append(e)
    out = []
    for policy in sorted(by, key=lambda p: -1 if p is None else p):
        devs = by[policy]
        steps = {d.step for d in devs}
        out.append({"policy": policy, "step": steps.pop() if len(steps) == 1 else None,
                    "devices": total, "devices_done": sum(d.finished for d in devs)})
    return out


def parse_version(obj) -> str:
    """``/recon/version``::

        {"version": "2.38.3"}
    """
    obj = _mapping(obj, "version")
    v = obj.get("version")
    if not isinstance(v, str):
        raise ReconParseError(f"version: {v!r:.40} is not a version string")
    return v


PARSERS = {
    "replication/object": lambda o: parse_replication("object", o),
    "replication/container": lambda o: parse_replication("container", o),
    "replication/account": lambda o: parse_replication("account", o),
    "reconstruction/object": parse_reconstruction,
    "diskusage": parse_diskusage,
    "unmounted": parse_unmounted,
    "async": parse_async,
    "quarantined": parse_quarantined,
    "ringmd5": parse_md5s,
    "swiftconfmd5": lambda o: parse_md5s(o, "swiftconfmd5"),
    "time": parse_time,
    "driveaudit": parse_driveaudit,
    "relinker": parse_relinker,
    "version": parse_version,
}
