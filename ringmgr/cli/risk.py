"""Risk commands: ok-to-stop and failure-impact (read-only; nothing is written).

Thin: the names, loading and verdicts are ``ringmgr.rings.risk_check`` and
``ringmgr.rings.risk``; this module parses options and prints.  Heavy imports stay
inside functions.
"""

from __future__ import annotations

import click

from ringmgr.cli.app import App, json_option
from ringmgr.errors import EXIT_OK, EXIT_WARNING, UsageError
from ringmgr.rings.risk_check import (load_for_risk, node_ip, ok_to_stop_check,
                                       warn_not_in_rings, zone_nodes)

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
        from ringmgr.live.downstate import live_down_for
        from ringmgr.rings.risk import render_ok_to_stop

        app = App.current()
        config = app.config
        if zone is not None:
            if nodes:
                raise UsageError("--zone Z takes no NODE arguments (its nodes are the "
                                 "candidates)")
            nodes = tuple(zone_nodes(config, zone))
            max_ = True
        if not nodes:
            raise UsageError("ok-to-stop needs a NODE (or --max NODE..., --zone Z)")
        if len(set(nodes)) != len(nodes):
            raise UsageError("a NODE is named twice")
        result = ok_to_stop_check(config, list(nodes) if not max_ else [], down,
                                  weight_zero_up=weight_zero_up, worst=worst, note=app.note,
                                  quorum=quorum, live_down=live_down_for(config, live),
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
        ips = {name: node_ip(config, name) for name in nodes}
        builders, policies, _ = load_for_risk(config, app.note)
        warn_not_in_rings(app.note, builders, ips.items())
        result = failure_impact(builders, set(ips.values()), policies, quorum=quorum)
        result = {"written": False, "nodes": list(nodes), **result}
        app.out(render_failure_impact(result, list(nodes)).rstrip("\n"))
        app.emit(result)
        return EXIT_OK
