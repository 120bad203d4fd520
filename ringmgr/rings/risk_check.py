"""ok-to-stop for a config node: names resolved, builders and policies loaded, the
verdict computed by ``rings.risk``.  Used by the ok-to-stop command and by every
command that checks before it stops a node (shutdown-node, reboot-node)."""

from __future__ import annotations

from ringmgr.errors import UsageError


def load_for_risk(config, note):
    """Builders of every ring, swift.conf policies, ip -> node name."""
    from ringmgr.rings.policies import load_policies
    from ringmgr.rings.store import RingStore, pending_change

    store = RingStore.from_config(config)
    if pending_change(config.cluster.builder_dir):
        note("warning: an interrupted ring change is pending (`ringmgr resume`); "
             "the builders on disk may not be what the nodes run")
    builders = store.load_all_read_only()
    policies = load_policies(config.cluster.swift_conf)
    if config.cluster.swift_conf is None and any(r.startswith("object") for r in builders):
        note("note: no [cluster].swift_conf in the config: every object ring is "
             "treated as replicated")
    nodes_by_ip = {n.ip: name for name, n in config.nodes.items() if n.ip}
    return builders, policies, nodes_by_ip


def node_ip(config, name: str) -> str:
    node = config.node(name)  # UsageError naming the known nodes
    if not node.ip:
        raise UsageError(f"node {name!r} has no ip in {config.path}; ring devices are "
                         f"matched by ip")
    return node.ip


def parse_down(config, builders, specs) -> tuple[set, set]:
    """``NODE`` / ``NODE/DEV`` specs -> (ips, (ip, device) pairs); an unknown device is a
    UsageError."""
    ips, devs = set(), set()
    for spec in specs:
        name, _, dev = spec.partition("/")
        ip = node_ip(config, name)
        if not dev:
            ips.add(ip)
            continue
        known = any(d is not None and d["ip"] == ip and d["device"] == dev
                    for b in builders.values() for d in b.devs)
        if not known:
            raise UsageError(f"--down {spec}: no ring has a device {dev!r} on {name} ({ip})")
        devs.add((ip, dev))
    return ips, devs


def warn_not_in_rings(note, builders, names_ips) -> None:
    for name, ip in names_ips:
        if not any(d is not None and d["ip"] == ip for b in builders.values() for d in b.devs):
            note(f"note: {name} ({ip}) has no device in any ring")


def zone_nodes(config, zone: int) -> list[str]:
    """The config nodes whose ring devices are in ``zone`` (any ring), by name."""
    from ringmgr.rings.store import RingStore

    builders = RingStore.from_config(config).load_all_read_only()
    ips = {d["ip"] for b in builders.values() for d in b.devs
           if d is not None and d.get("zone") == zone}
    names = sorted(n for n, node in config.nodes.items() if node.ip in ips)
    if not names:
        raise UsageError(f"--zone {zone}: no node has a ring device in zone {zone}")
    return names


def ok_to_stop_check(config, node, down=(), *, weight_zero_up: bool = False,
                     worst: int = 10, note=lambda m: None, quorum: str = "swift",
                     live_down=None, max_of=None) -> dict:
    """The ok-to-stop result for ``node`` (a config node name, or a list of them that
    stop together), ``down`` being NODE or NODE/DEV strings: for commands that check
    before they stop a node (reboot-node).  ``live_down``: a callable (builders ->
    ``LiveDown``) giving what the live cluster says is already down (servers that do
    not answer recon, unmounted devices on mount_check nodes); the caller above the
    core passes it (``ringmgr.live.downstate.live_down_for``).  ``max_of``: candidate
    node names; the largest subset of them that can stop together is found and checked.
    ``result["ok"]`` is the verdict; ``render_ok_to_stop`` prints it.
    Raises UsageError / ConfigError / BuilderError on bad input (exit 2)."""
    from ringmgr.rings.risk import DownSet, ok_to_stop

    names = [node] if isinstance(node, str) else list(node)
    ips = {n: node_ip(config, n) for n in names + list(max_of or ())}
    builders, policies, nodes_by_ip = load_for_risk(config, note)
    down_ips, down_devs = parse_down(config, builders, down)
    warn_not_in_rings(note, builders, list(ips.items()))
    base = DownSet(down_ips, down_devs, weight_zero=not weight_zero_up)
    live_json = None
    if live_down is not None:
        found = live_down(builders)
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
