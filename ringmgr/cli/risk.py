"""Risk commands: ok-to-stop and failure-impact (read-only; nothing is written).

Thin: resolve node names through the config, load the builders and swift.conf's
policies, call ``ringmgr.rings.risk``, print.  Heavy imports stay inside functions.
"""

from __future__ import annotations

import click

from ringmgr.cli.app import App, json_option
from ringmgr.errors import EXIT_OK, EXIT_WARNING, UsageError


def _load(app: App):
    return load_for_risk(app.config, app.note)


def load_for_risk(config, note):
    """Builders of every ring, swift.conf policies, ip -> node name."""
    from ringmgr.rings.policies import load_policies
    from ringmgr.rings.store import RingStore

    store = RingStore.from_config(config)
    try:
        from ringmgr.rings.store import pending_change

        pending = pending_change(config.cluster.builder_dir)
    except ImportError:  # store without journal support
        pending = None
    if pending:
        note("warning: an interrupted ring change is pending (`ringmgr resume`); "
                 "the builders on disk may not be what the nodes run")
    builders = store.load_all_read_only()
    policies = load_policies(config.cluster.swift_conf)
    if config.cluster.swift_conf is None and any(r.startswith("object") for r in builders):
        note("note: no [cluster].swift_conf in the config: every object ring is "
                 "treated as replicated")
    nodes_by_ip = {n.ip: name for name, n in config.nodes.items() if n.ip}
    return builders, policies, nodes_by_ip


def _zone_nodes(config, zone: int) -> list[str]:
    """The config nodes whose ring devices are in ``zone`` (any ring), by name."""
    from ringmgr.rings.store import RingStore

    builders = RingStore.from_config(config).load_all_read_only()
    ips = {d["ip"] for b in builders.values() for d in b.devs
           if d is not None and d.get("zone") == zone}
    names = sorted(n for n, node in config.nodes.items() if node.ip in ips)
    if not names:
        raise UsageError(f"--zone {zone}: no node has a ring device in zone {zone}")
    return names


def _node_ip(config, name: str) -> str:
    node = config.node(name)  # UsageError naming the known nodes
    if not node.ip:
        raise UsageError(f"node {name!r} has no ip in {config.path}; ring devices are "
                         f"matched by ip")
    return node.ip


def _parse_down(config, builders, specs) -> tuple[set, set]:
    ips, devs = set(), set()
    for spec in specs:
        name, _, dev = spec.partition("/")
        ip = _node_ip(config, name)
        if not dev:
            ips.add(ip)
            continue
        known = any(d is not None and d["ip"] == ip and d["device"] == dev
                    for b in builders.values() for d in b.devs)
        if not known:
            raise UsageError(f"--down {spec}: no ring has a device {dev!r} on {name} ({ip})")
        devs.add((ip, dev))
    return ips, devs


def _warn_not_in_rings(note, builders, names_ips):
    for name, ip in names_ips:
        if not any(d is not None and d["ip"] == ip for b in builders.values() for d in b.devs):
            note(f"note: {name} ({ip}) has no device in any ring")


QUORUM_HELP = ("replicated write quorum the verdict uses: 'swift' = swift's own "
               "quorum_size, (replicas + 1) // 2, what a write needs to succeed (default); "
               "'majority' = replicas // 2 + 1, stricter for even replica counts. Both "
               "counts are reported")


def quorum_option(f):
    return click.option("--quorum", type=click.Choice(["swift", "majority"]),
                        default="swift", show_default=True, help=QUORUM_HELP)(f)


def down_option(f):
    return click.option("--down", "down", multiple=True, metavar="NODE[/DEV]",
                        help="already down: a whole node or one device (repeatable)")(f)


def live_enabled(config, live: bool | None) -> bool:
    """--live / --no-live, else on when the config has a [recon] section."""
    return config.recon.configured if live is None else live


def ok_to_stop_check(config, node, down=(), *, weight_zero_up: bool = False,
                     worst: int = 10, note=lambda m: None, quorum: str = "swift",
                     live: bool | None = None, max_of=None) -> dict:
    """The ok-to-stop result for ``node`` (a config node name, or a list of them that
    stop together), ``down`` being NODE or NODE/DEV strings: for commands that check
    before they stop a node (reboot-node).  With the live state (``live``, default:
    when [recon] is configured) servers that do not answer recon and unmounted
    devices (mount_check nodes) count as down.  ``max_of``: candidate node names;
    the largest subset of them that can stop together is found and checked.
    ``result["ok"]`` is the verdict; ``render_ok_to_stop`` prints it.
    Raises UsageError / ConfigError / BuilderError on bad input (exit 2)."""
    from ringmgr.rings.risk import DownSet, ok_to_stop

    names = [node] if isinstance(node, str) else list(node)
    ips = {n: _node_ip(config, n) for n in names + list(max_of or ())}
    builders, policies, nodes_by_ip = load_for_risk(config, note)
    down_ips, down_devs = _parse_down(config, builders, down)
    _warn_not_in_rings(note, builders, list(ips.items()))
    base = DownSet(down_ips, down_devs, weight_zero=not weight_zero_up)
    live_json = None
    if live_enabled(config, live):
        from ringmgr.live.downstate import live_down

        found = live_down(config, builders)
        base = base.union(devices=found.devices, servers=found.servers)
        live_json = found.to_json()
    max_json = None
    if max_of is not None:
        from ringmgr.rings.stop_max import max_stop

        cands = [ips[n] for n in max_of]
        m = max_stop(builders, policies, cands, base, quorum)
        chosen = [n for n in max_of if ips[n] in set(m["stop"])]
        max_json = {"candidates": list(max_of), "stop": chosen, "method": m["method"],
                    "tie_break": m["tie_break"], "constraints": m["constraints"]}
        names = chosen
    result = ok_to_stop(builders, policies, {ips[n] for n in names}, base,
                        nodes_by_ip=nodes_by_ip, worst=worst, quorum=quorum)
    out = {"written": False, "node": names[0] if names else None, "nodes": names,
           **result, "down": list(down), "live": live_json}
    if max_json is not None:
        out["max"] = max_json
        out["ok"] = bool(names) and result["ok"]
    return out


def register(group: click.Group) -> None:
    @group.command("ok-to-stop")
    @click.argument("nodes", nargs=-1, metavar="NODE...")
    @click.option("--max", "max_", is_flag=True,
                  help="the largest subset of NODE... that can stop together (exact up to "
                       "16 candidates, greedy beyond)")
    @click.option("--zone", type=int, default=None, metavar="Z",
                  help="the largest subset of zone Z's nodes that can stop together")
    @click.option("--live/--no-live", "live", default=None,
                  help="count servers that do not answer recon and unmounted devices "
                       "(mount_check nodes) as down (default: when [recon] is configured)")
    @down_option
    @click.option("--weight-zero-up", is_flag=True,
                  help="do not count devices at weight 0 as down (by default they are: "
                       "weight 0 is how a failed disk is parked)")
    @click.option("--worst", type=click.IntRange(0, 1000), default=10, show_default=True,
                  help="partitions to list per ring when it is not safe")
    @quorum_option
    @json_option
    def ok_to_stop_cmd(nodes, max_, zone, live, down, weight_zero_up, worst, quorum):
        """Would stopping NODE (several: together) now leave any partition below its
        write quorum, or with nothing to read from?  Exit 0 if safe, 1 if not (listing
        the worst partitions per ring).  --max NODE... / --zone Z: the largest subset
        that can stop together (exit 1 if none can).  Read-only: changes nothing."""
        from ringmgr.rings.risk import render_ok_to_stop

        app = App.current()
        config = app.config
        if zone is not None:
            if nodes:
                raise UsageError("--zone Z takes no NODE arguments (its nodes are the "
                                 "candidates)")
            nodes = tuple(_zone_nodes(config, zone))
            max_ = True
        if not nodes:
            raise UsageError("ok-to-stop needs a NODE (or --max NODE..., --zone Z)")
        if len(set(nodes)) != len(nodes):
            raise UsageError("a NODE is named twice")
        result = ok_to_stop_check(config, list(nodes) if not max_ else [], down,
                                  weight_zero_up=weight_zero_up, worst=worst, note=app.note,
                                  quorum=quorum, live=live,
                                  max_of=list(nodes) if max_ else None)
        if max_:
            m = result["max"]
            app.out(f"candidates: {', '.join(m['candidates'])}")
            app.out(f"largest set that can stop together ({m['method']}; tie-break: "
                    f"{m['tie_break']}): {', '.join(m['stop']) or 'none'}")
        if result["nodes"] or not max_:
            app.out(render_ok_to_stop(result, result["nodes"]).rstrip("\n"))
        app.emit(result)
        app.reason = None if result["ok"] else "risk"
        return EXIT_OK if result["ok"] else EXIT_WARNING

    @group.command("failure-impact")
    @click.argument("nodes", nargs=-1, required=True)
    @quorum_option
    @json_option
    def failure_impact_cmd(nodes, quorum):
        """How many partitions per ring would lose 1, 2, ... replicas if NODES failed
        together?  Read-only; exit 0 (it is a what-if, not a check)."""
        from ringmgr.rings.risk import failure_impact, render_failure_impact

        app = App.current()
        config = app.config
        ips = {name: _node_ip(config, name) for name in nodes}
        builders, policies, _ = _load(app)
        _warn_not_in_rings(app.note, builders, ips.items())
        result = failure_impact(builders, set(ips.values()), policies, quorum=quorum)
        result = {"written": False, "nodes": list(nodes), **result}
        app.out(render_failure_impact(result, list(nodes)).rstrip("\n"))
        app.emit(result)
        return EXIT_OK
