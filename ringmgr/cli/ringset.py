"""The rest of swift-ring-builder on every ring at once: create, set-info, set-zone,
set-region, set-overload, set-replicas, set-min-part-hours.

Thin: parse, plan with ``ringmgr.rings.primitives`` / ``create``, and run the change
through the same flow as every ring change (``cli.ringflow.run_ring_change``: simulation, report,
confirmation, transaction, history, push).  Heavy imports stay inside the functions.
"""

from __future__ import annotations

import click

from ringmgr.cli.app import App
from ringmgr.cli.ringflow import change_options, node_dev, run_ring_change
from ringmgr.errors import UsageError

# a value that looks like an option (-1) must reach our check, not click's
_ARGS = {"ignore_unknown_options": True}


def _policies(config):
    from ringmgr.rings.policies import load_policies

    return None if config.cluster.swift_conf is None else load_policies(config.cluster.swift_conf)


def _ring_and_value(args, what: str) -> tuple[str | None, str]:
    """``[RING] VALUE`` -> (ring or None for every ring, value)."""
    if len(args) == 1:
        return None, args[0]
    if len(args) == 2:
        return args[0], args[1]
    raise UsageError(f"expected [RING] {what}, got {len(args)} arguments: "
                     f"{' '.join(args)}")


def _config_stale(app, node, device, key: str, value) -> None:
    """After a change to what the config also says about the node: say so (warnings[]),
    unless [converge] had the config updated with the change."""
    if (app.data.get("config_update") or {}).get("written"):
        return
    if device is None and getattr(node, key) != value:
        app.warn(f"nodes.{node.name}.{key} is still {getattr(node, key)!r} in "
                 f"{app.config.path}: set it to {value!r}"
                 + (" (ringmgr finds a node's devices by its ip)" if key == "ip" else
                    " (add-node uses it for new devices)"))


def overload_advice(ring: str, overload: float, required: float) -> str:
    """swift's required overload next to the one being set, and what it means."""
    head = (f"{ring}: overload {overload * 100:.2f}%, swift's required overload "
            f"{required * 100:.2f}%")
    if overload < required:
        return (f"{head}: below it, swift keeps to the weights and some partitions keep "
                f"two replicas in one failure domain (dispersion above 0)")
    if required == 0:
        return f"{head}: the weights already allow full dispersion; overload changes nothing"
    return (f"{head}: at or above it, replicas spread across the failure domains; a "
            f"device may then take up to {overload * 100:.2f}% more than its weight's share")


def register(group: click.Group) -> None:
    @group.command("create")
    @click.argument("rings", nargs=-1, metavar="[RING]...")
    @change_options
    def create(rings, **kw):
        """Build the rings of the config's [rings.NAME] sections (every one, or the RINGs
        given): part_power, replicas, min_part_hours and overload from there (an
        erasure-coded policy's replica count from swift.conf), every node's configured
        devices, then the first rebalance.  Refused if a builder or ring file exists."""
        from ringmgr.rings.create import CreateLoader, plan_create, rings_to_create

        app = App.current()
        config = app.config
        for r in rings:
            from ringmgr.rings.files import is_ring_name

            if not is_ring_name(r):
                raise UsageError(f"{r!r} is not a ring name (account, container, object, "
                                 f"object-N)")
        policies = _policies(config)
        names = rings_to_create(config, rings)
        if policies is None and any(r.startswith("object") for r in names):
            app.note("note: no [cluster].swift_conf in the config: object rings are made "
                     "as replicated rings")
        loader = CreateLoader(config, names, policies)
        return run_ring_change(lambda b: plan_create(config, loader, b), load=loader, **kw)

    @group.command("set-info")
    @click.argument("target", metavar="NODE[/DEV]")
    @click.option("--ip", default=None, help="the node's new ip (its devices in every ring)")
    @click.option("--port", "ports", multiple=True, metavar="RING=PORT[,RING=PORT]",
                  help="new port per ring (ports differ per ring); repeatable")
    @click.option("--replication-ip", default=None, help="new replication ip")
    @click.option("--replication-port", "replication_ports", multiple=True,
                  metavar="RING=PORT[,RING=PORT]", help="new replication port per ring")
    @click.option("--meta", default=None, help="new meta string (\"\" clears it)")
    @change_options
    def set_info(target, ip, ports, replication_ip, replication_ports, meta, **kw):
        """swift-ring-builder's set_info for NODE's devices (or one device) in every ring,
        then write the rings (no data moves: swift does not even version it, so the
        ring.gz files are rewritten in the same change)."""
        from ringmgr.rings.primitives import address, plan_set_info, ring_ports

        app = App.current()
        config = app.config
        name, dev = node_dev(target)
        node = config.node(name)
        new_ip = None if ip is None else address(ip, "--ip")
        new_rip = None if replication_ip is None else address(replication_ip,
                                                              "--replication-ip")
        p = ring_ports(ports, "--port")
        rp = ring_ports(replication_ports, "--replication-port")
        code = run_ring_change(lambda b: plan_set_info(b, config, node, dev, ip=new_ip, ports=p,
                                            replication_ip=new_rip, replication_ports=rp,
                                            meta=meta), **kw)
        if app.written:
            if new_ip is not None:
                _config_stale(app, node, dev, "ip", new_ip)
            synced = (app.data.get("config_update") or {}).get("written")
            if new_rip is not None and dev is None and not synced and \
                    (node.replication_ip or node.ip) != new_rip:
                app.warn(f"nodes.{node.name}.replication_ip is still "
                         f"{node.replication_ip or node.ip!r} in {config.path}: set it to "
                         f"{new_rip!r} (add-node uses it for new devices)")
        elif new_ip is not None and new_rip is None:
            app.remark(f"note: the replication ip stays as it is; add --replication-ip "
                       f"{new_ip} to move it too")
        return code

    def _set_domain(kind: str, target: str, value: str, kw: dict) -> int:
        from ringmgr.rings.primitives import plan_set_domain, positive_int

        app = App.current()
        name, dev = node_dev(target)
        v = positive_int(value, kind)
        node = app.config.node(name)
        code = run_ring_change(lambda b: plan_set_domain(b, node, dev, kind, v), **kw)
        if app.written:
            _config_stale(app, node, dev, kind, v)
        return code

    @group.command("set-zone", context_settings=_ARGS)
    @click.argument("target", metavar="NODE[/DEV]")
    @click.argument("zone", metavar="Z")
    @change_options
    def set_zone(target, zone, **kw):
        """Move NODE's devices (or one device) to zone Z in every ring and rebalance
        (simulated first; the min_part_hours gate applies as to a weight change)."""
        return _set_domain("zone", target, zone, kw)

    @group.command("set-region", context_settings=_ARGS)
    @click.argument("target", metavar="NODE[/DEV]")
    @click.argument("region", metavar="R")
    @change_options
    def set_region(target, region, **kw):
        """Move NODE's devices (or one device) to region R in every ring and rebalance."""
        return _set_domain("region", target, region, kw)

    @group.command("set-overload", context_settings=_ARGS)
    @click.argument("args", nargs=-1, required=True, metavar="[RING] X")
    @change_options
    def set_overload(args, **kw):
        """Set the overload of RING (default: every ring) to X (a fraction, 0.1, or a
        percentage, 10%) and rebalance; shows swift's required overload per ring."""
        from ringmgr.rings.primitives import (overload_value, pick_rings, plan_set_overload,
                                              required_overload)

        app = App.current()
        ring, value = _ring_and_value(args, "X")
        x = overload_value(value, force=kw.get("force", False))
        needed = {}

        def planner(builders):
            for name, b in pick_rings(builders, ring).items():
                needed[name] = required_overload(b)
            cs = plan_set_overload(builders, ring, x)
            for name, r in needed.items():
                if r is not None:
                    app.remark(overload_advice(name, x, r))
            return cs

        return run_ring_change(planner, extra_json={"required_overload": needed}, **kw)

    @group.command("set-replicas", context_settings=_ARGS)
    @click.argument("ring")
    @click.argument("replicas", metavar="N")
    @change_options
    def set_replicas(ring, replicas, **kw):
        """Change RING's replica count to N (fractional allowed, e.g. 3.5) and rebalance
        (simulated first).  Refused on an erasure-coded ring."""
        from ringmgr.rings.primitives import plan_set_replicas, replicas_value

        app = App.current()
        n = replicas_value(replicas)
        policies = _policies(app.config)
        force = kw.get("force", False)
        return run_ring_change(lambda b: plan_set_replicas(b, ring, n, policies, force=force), **kw)

    @group.command("set-min-part-hours", context_settings=_ARGS)
    @click.argument("args", nargs=-1, required=True, metavar="[RING] H")
    @change_options
    def set_min_part_hours(args, **kw):
        """Set min_part_hours of RING (default: every ring) to H (0-255); no data moves."""
        from ringmgr.rings.primitives import min_part_hours_value, plan_set_min_part_hours

        ring, value = _ring_and_value(args, "H")
        h = min_part_hours_value(value)
        return run_ring_change(lambda b: plan_set_min_part_hours(b, ring, h), **kw)
