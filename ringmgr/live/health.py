"""``ringmgr health``: what one recon sweep says about every node, and what is wrong.

The facts per node (replication per server type, disks, unmounted devices, async
pendings, quarantined, ring and swift.conf md5s against the admin host's, relinker,
clock skew, drive-audit errors) come from ``recon.CHECKS``; ``assess`` turns a sweep
into a report: one entry per node and a list of problems, each an ``error`` (a
server that does not answer, or answers something that is not recon: exit 2) or a
``warning`` (a stale ring, a skewed clock, an unmounted device on a node with
``mount_check``, a failed replication, a nearly full disk, drive errors: exit 1).

Pure: the sweep, the admin host's md5s and the clock reading come in as arguments.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.live.recon import SERVER_TYPES, Server, Sweep, clock_skew

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    severity: str      # error / warning
    node: str
    what: str          # the check (or "server")
    message: str       # one line, naming the node

    def to_json(self) -> dict:
        return {"severity": self.severity, "node": self.node, "check": self.what,
                "message": self.message}


@dataclass
class Report:
    nodes: dict[str, dict] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    servers: int = 0
    checked_at: float = 0.0

    @property
    def exit_code(self) -> int:
        if any(p.severity == ERROR for p in self.problems):
            return 2
        return 1 if self.problems else 0

    def to_json(self) -> dict:
        return {"checked_at": self.checked_at, "servers": self.servers,
                "nodes": self.nodes, "problems": [p.to_json() for p in self.problems]}


def file_md5s(directory: Path, names) -> dict[str, str]:
    """name -> md5 of each existing file ``directory/name`` (the admin host's side of
    swift-recon --md5)."""
    out = {}
    for name in names:
        path = Path(directory) / name
        try:
            out[name] = hashlib.md5(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            continue
    return out


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "never"
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def assess(sweep: Sweep, config, *, ring_md5s: dict[str, str],
           swift_conf_md5: str | None, ec_policies: bool, now: float) -> Report:
    """The health report of ``sweep`` (a sweep of ``recon.CHECKS``)."""
    rep = Report(servers=len(sweep.servers()), checked_at=now)
    by_node: dict[str, list[Server]] = {}
    for s in sweep.servers():
        by_node.setdefault(s.node, []).append(s)
    unreachable = sweep.unreachable()
    replies = sweep.by_server()
    for node, servers in sorted(by_node.items()):
        rep.nodes[node] = _node(node, servers, replies, unreachable, config, rep.problems,
                                ring_md5s=ring_md5s, swift_conf_md5=swift_conf_md5,
                                ec_policies=ec_policies)
    rep.problems = list(dict.fromkeys(rep.problems))  # several ports of one host: once
    return rep


def _node(name, servers, replies, unreachable, config, problems, *, ring_md5s,
          swift_conf_md5, ec_policies) -> dict:
    cfg_node = config.nodes.get(name)
    mount_check = cfg_node.mount_check if cfg_node else True
    out = {"servers": {}, "replication": {}, "devices": [], "unmounted": [],
           "mount_check": mount_check, "async_pending": None, "quarantined": None,
           "rings": {}, "swift_conf": None, "relinker": [], "relinker_policies": [],
           "clock_skew": None, "drive_audit_errors": None}

    def problem(sev, what, msg):
        problems.append(Problem(sev, name, what, f"{name}: {msg}"))

    for s in servers:
        if s in unreachable:
            out["servers"][s.kind] = {"ip": s.ip, "port": s.port, "up": False,
                                      "error": unreachable[s]}
            problem(ERROR, "server", f"{s.kind} server {s.ip}:{s.port} does not answer "
                                     f"recon: {unreachable[s]}")
            continue
        if out["servers"].get(s.kind, {}).get("up", True):  # one port down: shown
            out["servers"][s.kind] = {"ip": s.ip, "port": s.port, "up": True,
                                      "error": None}
        for r in sorted(replies.get(s, ()), key=lambda r: r.check):
            check = r.check
            if not r.ok:
                problem(ERROR, check, f"{s.kind} server {s.ip}:{s.port} /recon/{check}: "
                                      f"{r.error}")
                continue
            _fact(out, s, check, r, problem, config=config, mount_check=mount_check,
                  ring_md5s=ring_md5s, swift_conf_md5=swift_conf_md5,
                  ec_policies=ec_policies)
    return out


def _fact(out, s, check, r, problem, *, config, mount_check, ring_md5s, swift_conf_md5,
          ec_policies):
    v = r.value
    if check.startswith(("replication/", "reconstruction/")):
        key = "reconstruction" if check.startswith("reconstruction") else s.kind
        if key == "reconstruction" and not ec_policies:
            return
        out["replication"][key] = {"start": v.start, "end": v.end, "duration": v.duration,
                                   "failures": v.failures}
        what = "object reconstruction" if key == "reconstruction" else f"{key} replication"
        if v.end is None:
            problem(WARNING, check, f"{what} has not reported a finished pass")
        elif v.failures:
            problem(WARNING, check, f"{what}: {v.failures} failure(s) in the pass that "
                                    f"ended {_fmt_time(v.end)}")
    elif check == "diskusage":
        for d in v:
            pct = d.percent
            out["devices"].append({"device": d.device, "mounted": d.mounted, "size": d.size,
                                   "used": d.used, "avail": d.avail,
                                   "percent": None if pct is None else round(pct, 2)})
            if pct is not None and pct > config.cluster.full_percent:
                problem(WARNING, check, f"{d.device} is {pct:.1f}% full (over "
                                        f"[cluster].full_percent, "
                                        f"{config.cluster.full_percent:g}%)")
    elif check == "unmounted":
        out["unmounted"] = list(v)
        if v and mount_check:
            problem(WARNING, check, f"unmounted: {', '.join(v)} (the servers answer 507 "
                                    f"for them)")
    elif check == "async":
        out["async_pending"] = v
    elif check == "quarantined":
        out["quarantined"] = v
    elif check == "ringmd5":
        for ring_file, want in sorted(ring_md5s.items()):
            have = v.get(ring_file)
            state = "ok" if have == want else ("missing" if have is None else "differs")
            name = ring_file.removesuffix(".ring.gz")
            if out["rings"].get(name, {}).get("state", "ok") == "ok":  # a stale port shows
                out["rings"][name] = {"md5": have, "state": state}
            if state != "ok":
                problem(WARNING, check, f"{ring_file} {state} from the admin host's "
                                        f"(ringmgr push / ringmgr verify)")
    elif check == "swiftconfmd5":
        have = v.get("swift.conf")
        state = None if swift_conf_md5 is None else (
            "ok" if have == swift_conf_md5 else "differs")
        out["swift_conf"] = {"md5": have, "state": state}
        if state == "differs":
            problem(WARNING, check, "swift.conf differs from the admin host's "
                                    "([cluster].swift_conf)")
    elif check == "relinker":
        from ringmgr.live.recon_parse import relinker_by_policy

        out["relinker"] = [{"device": d.device, "policy": d.policy, "step": d.step,
                            "parts_done": d.parts_done, "total_parts": d.total_parts,
                            "finished": d.finished} for d in v]
        out["relinker_policies"] = relinker_by_policy(v)
    elif check == "time":
        skew = clock_skew(r)
        out["clock_skew"] = None if skew is None else round(skew, 3)
        if skew is not None and abs(skew) > config.recon.max_clock_skew:
            problem(WARNING, check, f"clock is {skew:+.1f} s off the admin host's (more "
                                    f"than [recon].max_clock_skew, "
                                    f"{config.recon.max_clock_skew:g} s)")
    elif check == "driveaudit":
        out["drive_audit_errors"] = v
        if v:
            problem(WARNING, check, f"swift-drive-audit found {v} error(s) "
                                    f"(ringmgr drive-audit {s.node})")


def render(rep: Report) -> str:
    """The text table: one line per node, then the problems."""
    rows = [("node", "servers", "object repl", "container", "account", "disks",
             "async", "quar", "rings", "skew", "relinker")]
    for name, n in rep.nodes.items():
        up = "".join(k[0] if n["servers"].get(k, {}).get("up") else "-"
                     for k in SERVER_TYPES if k in n["servers"])
        repl = [_pass_cell(n["replication"].get(k)) for k in ("object", "container",
                                                              "account")]
        disks = " ".join(f"{d['device']}:{_pct(d, n['mount_check'])}"
                         for d in n["devices"]) or "-"
        quar = n["quarantined"]
        rings = n["rings"]
        ring_cell = ("ok" if rings and all(r["state"] == "ok" for r in rings.values())
                     else ",".join(f"{k}:{r['state']}" for k, r in rings.items()
                                   if r["state"] != "ok") or "-")
        skew = "-" if n["clock_skew"] is None else f"{n['clock_skew']:+.1f}s"
        rows.append((name, up, *repl, disks, _dash(n["async_pending"]),
                     "-" if quar is None else str(sum(quar.values())), ring_cell, skew,
                     relinker_cell(n["relinker_policies"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if rep.problems:
        lines.append("")
        lines += [f"{p.severity}: {p.message}" for p in rep.problems]
    lines.append("")
    errs = sum(p.severity == ERROR for p in rep.problems)
    warns = len(rep.problems) - errs
    lines.append(f"{len(rep.nodes)} node(s), {rep.servers} server(s): "
                 + ("healthy" if not rep.problems else f"{errs} error(s), {warns} warning(s)"))
    return "\n".join(lines)


def relinker_cell(policies) -> str:
    """'policy 1: relinking, 3/4 devices done' per policy; '-' when it never ran."""
    cells = []
    for p in policies:
        doing = {"relink": "relinking", "cleanup": "cleaning up"}.get(p["step"], "running")
        state = (f"{p['step']} done" if p["devices_done"] == p["devices"] and p["step"]
                 else f"{doing}, {p['devices_done']}/{p['devices']} devices done")
        cells.append(state if p["policy"] is None else f"policy {p['policy']}: {state}")
    return "; ".join(cells) or "-"


def _pass_cell(p) -> str:
    if p is None:
        return "-"
    if p["end"] is None:
        return "never"
    import time

    took = p["duration"]
    cell = time.strftime("%H:%M:%S", time.localtime(p["end"]))
    if took is not None:
        cell += f" ({took:.0f}s)" if took >= 1 else " (<1s)"
    if p["failures"]:
        cell += f" {p['failures']}F"
    return cell


def _pct(d, mount_check: bool) -> str:
    if d["mounted"]:
        return f"{d['percent']:.0f}%"
    return "UNMOUNTED" if mount_check else "dir"  # a plain directory (mount_check false)


def _dash(v) -> str:
    return "-" if v is None else str(v)


def recon_servers(config, nodes=None) -> list[Server]:
    """Every recon endpoint of the rings in ``[cluster].builder_dir`` (``nodes``: only
    those node names)."""
    from ringmgr.live.recon import ring_devices, servers_from_devices

    devs = ring_devices(config.cluster.builder_dir, config.cluster.rings)
    return servers_from_devices(devs, config, None if nodes is None else set(nodes))


def check(config, nodes=None, *, clock=None, transport=None) -> Report:
    """Sweep every server (of ``nodes``) and assess it: ``ringmgr health``."""
    import time

    from ringmgr.live.recon import ReconClient, plan_health
    from ringmgr.rings.policies import load_policies

    clock = clock or time.time
    servers = recon_servers(config, nodes)
    rings = sorted({p.name for p in Path(config.cluster.builder_dir).glob("*.ring.gz")})
    if config.cluster.rings:
        rings = [f"{r}.ring.gz" for r in config.cluster.rings]
    md5s = file_md5s(config.cluster.builder_dir, rings)
    conf = config.cluster.swift_conf
    conf_md5 = file_md5s(conf.parent, [conf.name]).get(conf.name) if conf else None
    ec = any(p.is_ec for p in load_policies(conf).values()) if conf else False
    sweep = ReconClient(config.recon, clock=clock, transport=transport).sweep(
        plan_health(servers))
    return assess(sweep, config, ring_md5s=md5s, swift_conf_md5=conf_md5,
                  ec_policies=ec, now=sweep.started)
