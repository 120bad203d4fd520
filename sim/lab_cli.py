"""``sim/lab``'s command line: up, replicate, reconstruct, add-node, status, swap-disk, stop-node,
start-node, reboot, down (see sim/README.md and docs/lab.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from sim import lab_cluster
from sim import lab_configs as cfg
from sim.lab_cluster import add_node, down, print_status, status, up
from sim.lab_daemons import reconstruct, replicate, start_node, stop_node
from sim.lab_disks import swap_disk
from sim.lab_procs import LabError
from sim.lab_reboot import reboot
from sim.lab_ringmgr import exports
from sim.lab_state import DEFAULT_STATE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sim/lab", description=lab_cluster.__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start a local Swift cluster")
    p_up.add_argument("--nodes", type=int, default=4)
    p_up.add_argument("--disks", type=int, default=2, help="devices per node")
    p_up.add_argument("--zones", type=int, default=None, help="default: one per node")
    p_up.add_argument("--part-power", type=int, default=8)
    p_up.add_argument("--min-part-hours", type=int, default=0,
                      help="of every ring (default 0: a rehearsal need not wait an hour)")
    p_up.add_argument("--ring-reload", type=float, default=1.0,
                      help="seconds between the servers' ring.gz checks (swift's own: 15)")
    p_up.add_argument("--proxy-ring-reload", type=float, default=None,
                      help="the proxy's own interval, when it should differ (a proxy slow "
                           "to load a pushed ring)")
    p_up.add_argument("--xfs", action="store_true", help="real XFS loop disks (300 MB sparse)")
    p_up.add_argument("--ec", action="store_true",
                      help="a third storage policy, ec42: erasure coded 4+2 (ring object-2)")
    p_up.add_argument("--net", type=int, default=None,
                      help="use 127.0.NET.0/24 (default: the first free from 127.0.5)")
    p_up.add_argument("--no-ssh", action="store_true", help="start no sshd test hosts")
    p_up.add_argument("--spare", type=int, default=2,
                      help="sshd also serves this many addresses for later add-node (default 2)")
    p_up.add_argument("--timeout", type=float, default=60.0)
    for name, help_ in [("replicate", "run every replicator once on every node"),
                        ("reconstruct", "run the object reconstructor once on every node "
                                        "(--ec labs)"),
                        ("down", "stop and remove everything the lab started")]:
        sub.add_parser(name, help=help_)
    p_add = sub.add_parser("add-node", help="start one more storage node (in no ring yet)")
    p_add.add_argument("--disks", type=int, default=None, help="default: as the last node")
    p_add.add_argument("--zone", type=int, default=None, help="default: a zone of its own")
    p_status = sub.add_parser("status", help="what runs and what is mounted, per node")
    p_status.add_argument("--json", action="store_true")
    p_swap = sub.add_parser("swap-disk", help="replace an unmounted loop disk by a blank one")
    p_swap.add_argument("node")
    p_swap.add_argument("dev")
    for name, help_ in [("stop-node", "stop a node's servers (a failed node)"),
                        ("start-node", "start a stopped node's servers again")]:
        sub.add_parser(name, help=help_).add_argument("node")
    p_reboot = sub.add_parser("reboot", help="what a reboot does to a node: servers and "
                                             "SSH down for a while, then up again")
    p_reboot.add_argument("node")
    p_reboot.add_argument("--down-for", type=float, default=cfg.REBOOT_DOWN_FOR,
                          help=f"seconds the node stays unreachable (default "
                               f"{cfg.REBOOT_DOWN_FOR:g})")
    for p in sub.choices.values():
        p.add_argument("--state", default=os.environ.get("RINGMGR_LAB_STATE", DEFAULT_STATE),
                       help=f"state directory (default $RINGMGR_LAB_STATE or {DEFAULT_STATE})")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            lab = up(args.state, nodes=args.nodes, disks=args.disks, zones=args.zones,
                     part_power=args.part_power, min_part_hours=args.min_part_hours,
                     xfs=args.xfs, net=args.net,
                     ssh=not args.no_ssh, spare=args.spare, ring_reload=args.ring_reload,
                     proxy_ring_reload=args.proxy_ring_reload, timeout=args.timeout,
                     ec=args.ec)
            sys.stdout.write(exports(lab))
        elif args.cmd == "replicate":
            replicate(args.state)
        elif args.cmd == "reconstruct":
            reconstruct(args.state)
        elif args.cmd == "add-node":
            add_node(args.state, disks=args.disks, zone=args.zone)
        elif args.cmd == "status":
            st = status(args.state)
            if args.json:
                print(json.dumps(st, indent=2))
            else:
                print_status(st)
        elif args.cmd == "swap-disk":
            swap_disk(args.state, args.node, args.dev)
        elif args.cmd == "stop-node":
            stop_node(args.state, args.node)
        elif args.cmd == "start-node":
            start_node(args.state, args.node)
        elif args.cmd == "reboot":
            reboot(args.state, args.node, down_for=args.down_for)
        else:
            down(args.state)
    except (LabError, ValueError) as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # e.g. ringmgr rejecting the written config: one line, exit 2
        print(f"lab: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
