"""The replication gate of gradual ring steps: has replication caught up with the
last push?

Swift's admin guide says to wait for a finished replication pass before the next ring
step.  Recon keeps one pass per server type (not per ring): the object replicator's
``replication_last``/``replication_time`` (minutes) cover every replicated object
policy, the reconstructor's cover the erasure-coded ones, and the account and
container replicators carry their pass's start in ``replication_stats``.  A pass that
was aborted because the ring changed mid-pass still writes ``replication_last``, and a
daemon may use the old ring for up to ``reload_time`` after the file changed; so only
a pass that *started* after the last push of the ring plus ``[cluster].ring_reload``
counts.

The gate is open when, for every ring the step changes: its last change was pushed
(ringmgr's push records), and every server that holds the ring's devices -- the new
primaries and the draining or weight-0 nodes that push data out alike -- answers recon
with such a pass, its clock within ``[recon].max_clock_skew`` of the admin host's,
and (on nodes with ``mount_check``) none of the ring's devices unmounted.  A ring
with no recorded push has nothing to wait for (a note says so).

``evaluate`` is pure (the sweep and the push times come in); ``replication_gate``
does the reading.  drain-node, add-node and rejoin-node ``--max-move`` use it, and any
other gradual operation can: ``replication_gate(config, rings)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ringmgr.live.recon import Server, Sweep, clock_skew, server_type


@dataclass
class Push:
    ring: str
    time: float | None             # the last recorded push of the ring (None: none)
    unpushed_change: dict | None   # a history entry of the ring newer than that push


@dataclass
class GateResult:
    errors: list[str] = field(default_factory=list)    # cannot tell: refuse (exit 2)
    pending: list[str] = field(default_factory=list)   # not yet: exit 1
    notes: list[str] = field(default_factory=list)
    required: dict[str, float] = field(default_factory=dict)  # ring -> earliest pass start
    servers: int = 0

    @property
    def open(self) -> bool:
        return not self.errors and not self.pending

    def to_json(self) -> dict:
        return {"open": self.open, "errors": list(self.errors), "pending": list(self.pending),
                "notes": list(self.notes), "servers": self.servers,
                "pass_must_start_after": {r: t for r, t in sorted(self.required.items())}}


def clock(ts: float) -> str:
    """14:10:03 (the admin host's local time), with the date when not today."""
    lt, today = time.localtime(ts), time.localtime()
    fmt = "%H:%M:%S" if lt[:3] == today[:3] else "%Y-%m-%d %H:%M:%S"
    return time.strftime(fmt, lt)


def last_pushes(rings, history: list[dict], pushes: list[dict]) -> dict[str, Push]:
    """Per ring: when it was last pushed, and a later change that was not pushed."""
    out = {}
    for ring in rings:
        times = [p["time"] for p in pushes if ring in (p.get("rings") or {})
                 and isinstance(p.get("time"), (int, float))]
        last = max(times) if times else None
        later = [e for e in history if ring in (e.get("rings") or {})
                 and last is not None and e["time"] > last]
        out[ring] = Push(ring, last, later[-1] if later else None)
    return out


def pass_check(ring: str, ec_rings: set[str]) -> str:
    """The recon check whose pass serves ``ring``."""
    kind = server_type(ring)
    if kind == "object" and ring in ec_rings:
        return "reconstruction/object"
    return f"replication/{kind}"


def _what(check: str) -> str:
    return {"reconstruction/object": "object reconstruction"}.get(
        check, check.replace("replication/", "") + " replication")


def evaluate(sweep: Sweep, ring_servers: dict[str, dict[Server, list[str]]],
             pushes: dict[str, Push], config, *, ec_rings: set[str] = frozenset()
             ) -> GateResult:
    """The gate over ``sweep`` (which asked each server in ``ring_servers`` its pass
    check, and each node's object server ``time`` and ``unmounted``).

    ``ring_servers``: ring -> server -> the ring's device names on that server."""
    res = GateResult(servers=len({s for m in ring_servers.values() for s in m}))
    reload_s = config.cluster.ring_reload
    skews: dict[str, float | None] = {}
    node_facts: dict[str, Server] = {}
    for (s, check) in sweep.replies:
        if check == "time":
            node_facts[s.node] = s
    reported = set()

    def once(lst, line):
        if line not in reported:
            reported.add(line)
            lst.append(line)

    for node, s in sorted(node_facts.items()):
        r = sweep.get(s, "time")
        if not r.ok:
            skews[node] = None
            once(res.errors, f"{node}: recon {s.ip}:{s.port} /recon/time: {r.error}")
            continue
        skew = clock_skew(r)
        skews[node] = skew
        if abs(skew) > config.recon.max_clock_skew:
            once(res.errors, f"{node}: clock is {skew:+.1f} s off the admin host's (more "
                             f"than [recon].max_clock_skew, {config.recon.max_clock_skew:g} "
                             f"s): its pass times cannot be compared with the push time")

    # one verdict per (server, pass): the latest push among the rings it serves
    needs: dict[tuple[Server, str], tuple[float, str, float]] = {}
    devices: dict[Server, set[str]] = {}
    for ring in sorted(ring_servers):
        push = pushes.get(ring)
        if push is None or push.time is None:
            res.notes.append(f"{ring}: no push of this ring is recorded: no replication "
                             f"pass to wait for")
            continue
        if push.unpushed_change is not None:
            e = push.unpushed_change
            once(res.pending, f"{ring}: change #{e.get('id')} ({clock(e['time'])}) has not "
                              f"been pushed (last push {clock(push.time)}): run `ringmgr "
                              f"push`, let replication finish, then run this again")
            continue
        need = push.time + reload_s
        res.required[ring] = need
        check = pass_check(ring, ec_rings)
        for s, devs in ring_servers[ring].items():
            if (s, check) not in needs or needs[(s, check)][0] < need:
                needs[(s, check)] = (need, ring, push.time)
            devices.setdefault(s, set()).update(devs)

    for (s, check), (need, ring, pushed) in sorted(needs.items()):
        node = s.node
        r = sweep.get(s, check)
        if r is None or not r.ok:
            once(res.errors, f"{node}: recon {s.ip}:{s.port} /recon/{check}: "
                             f"{r.error if r else 'not asked'}")
            continue
        p = r.value
        skew = skews.get(node) or 0.0
        if p.start is None:
            once(res.pending, f"{_what(check)} on {node} has not reported a finished pass; "
                              f"the {ring} push was at {clock(pushed)}")
        elif p.start - skew < need:
            once(res.pending, f"{_what(check)} on {node} last started "
                              f"{clock(p.start - skew)}, before the {clock(pushed)} push of "
                              f"{ring} + {reload_s:g} s ring reload ({clock(need)})")
        cfg_node = config.nodes.get(node)
        facts = node_facts.get(node)
        if cfg_node is not None and cfg_node.mount_check and facts is not None:
            u = sweep.get(facts, "unmounted")
            if u is not None and u.ok:
                down = sorted(set(u.value) & devices.get(s, set()))
                if down:
                    once(res.pending, f"{node}: {', '.join(down)} unmounted (mount_check "
                                      f"= true): its partitions cannot replicate")
            elif u is not None:
                once(res.errors, f"{node}: recon /recon/unmounted: {u.error}")
    return res


def ring_servers(config, rings) -> dict[str, dict[Server, list[str]]]:
    """ring -> recon server -> the ring's device names it serves (every device in the
    ring, whatever its weight: weight-0 and draining devices push data out)."""
    from ringmgr.live.recon import ring_devices, servers_from_devices

    out: dict[str, dict[Server, list[str]]] = {}
    devs = ring_devices(config.cluster.builder_dir, list(rings))
    for ring, ds in devs.items():
        m: dict[Server, list[str]] = {}
        for d in ds:
            (s,) = servers_from_devices({ring: [d]}, config)
            m.setdefault(s, []).append(d["device"])
        out[ring] = m
    return out


def replication_gate(config, rings, *, clock_fn=time.time, transport=None) -> GateResult:
    """Read the push records and history, sweep recon, evaluate.  Nothing to sweep when
    no ring has a recorded push."""
    from ringmgr.live.recon import ReconClient
    from ringmgr.rings.policies import load_policies
    from ringmgr.rings.store import RingStore

    store = RingStore.from_config(config)
    rings = sorted(rings)
    pushes = last_pushes(rings, store.history(), store.pushes())
    policies = load_policies(config.cluster.swift_conf) if config.cluster.swift_conf else {}
    ec_rings = {p.ring_name for p in policies.values() if p.is_ec}
    servers = ring_servers(config, rings)
    wanted = {r for r in rings if pushes[r].time is not None and pushes[r].unpushed_change is None}
    pairs, nodes_seen = [], {}
    for ring in sorted(wanted):
        check = pass_check(ring, ec_rings)
        for s in servers.get(ring, {}):
            pairs.append((s, check))
            if s.kind == "object" or s.node not in nodes_seen:
                nodes_seen.setdefault(s.node, s)
                if s.kind == "object":
                    nodes_seen[s.node] = s
    for s in nodes_seen.values():
        pairs += [(s, "time"), (s, "unmounted")]
    pairs = list(dict.fromkeys(pairs))
    sweep = Sweep() if not pairs else ReconClient(config.recon, clock=clock_fn,
                                                  transport=transport).sweep(pairs)
    res = evaluate(sweep, servers, pushes, config, ec_rings=ec_rings)
    unknown = [r for r in rings if r.startswith("object-")] if not policies else []
    if unknown:
        res.notes.append(f"no [cluster].swift_conf: {', '.join(unknown)} taken as replicated "
                         f"(the object replicator's pass counts); an erasure-coded policy's "
                         f"data moves with the reconstructor, whose pass is then not waited "
                         f"for: set swift_conf")
    return res
