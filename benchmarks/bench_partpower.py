"""The relink and cleanup of a partition-power increase on the rehearsal lab: ringmgr's
parallel run against the manual procedure (the same relinker commands run node after
node over SSH), side by side in one run.

A lab (``sim/lab up --xfs``, 4 nodes x 2 disks, part power 6) gets OBJECTS objects
(policies gold and silver), then:

1. ringmgr: ``increase-part-power`` phase by phase, 6 -> 7; the relink and cleanup phases
   timed (wall), and the relinker processes' own run time per node from the wrapper's
   start/exit lines in each node's log;
2. manual, 7 -> 8: ``swift-ring-builder prepare_increase_partition_power`` + write_ring +
   ``ringmgr push`` (the copy), then ``ssh node swift-object-relinker relink ...`` on one
   node after the other (the swift doc's procedure), increase + push, cleanup node after
   node, finish + push.

Printed: relink and cleanup wall time of each, the ratio, and ringmgr's orchestration
overhead: its phase time (the whole ``ringmgr increase-part-power`` invocation) minus the
longest relinker process (the floor: the nodes work at once); of that, what lies inside
the phase (the journal's start and end) and what is ringmgr's start-up and exit. The
reload waits swift requires ([cluster].ring_reload) are counted apart.

    python benchmarks/bench_partpower.py [--objects 2000] [--poll 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.lab_fixture import lab_down, lab_up  # noqa: E402

RINGMGR = [sys.executable, "-c", "from ringmgr.cli.main import main; main()"]


def ringmgr(lab, *args):
    t0 = time.monotonic()
    r = subprocess.run([*RINGMGR, *args], env={**lab.env, "PYTHONPATH": str(REPO)},
                       capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"ringmgr {' '.join(args)} failed:\n{r.stderr}")
    return time.monotonic() - t0, r


def relinker_span(lab, op: str, step: str) -> dict[str, tuple[float, float]]:
    """Per node: when the relinker process started and exited (epoch, the wrapper's
    lines)."""
    out = {}
    for n in lab.nodes:
        log = Path(n.mount_root).parent.parent / "var/lib/ringmgr" / op / f"{step}.log"
        text = log.read_text()
        start = re.findall(r"ringmgr: started pid \d+ at ([0-9.]+)", text)
        end = re.findall(r"ringmgr: exit -?\d+ at ([0-9.]+)", text)
        out[n.name] = (float(start[-1]), float(end[-1]))
    return out


def relinker_seconds(lab, op: str, step: str) -> dict[str, float]:
    """Per node: the relinker process's own run time (the wrapper's start/exit lines)."""
    return {n: end - start for n, (start, end) in relinker_span(lab, op, step).items()}


def manual(lab, step: str, prefix_of, conf_of) -> float:
    """The relinker on each node, one after the other, over SSH (as an operator would)."""
    import tomllib

    cfg = tomllib.loads(Path(lab.config_path).read_text())
    ssh = cfg["ssh"]
    t0 = time.monotonic()
    for n in lab.nodes:
        argv = [*prefix_of(n), "swift-object-relinker", step, conf_of(n), "--swift-dir",
                n.swift_dir, "--devices", n.mount_root]
        import shlex

        subprocess.run(["ssh", "-p", str(ssh["port"]), "-i", ssh["identity_file"],
                        "-o", f"UserKnownHostsFile={ssh['known_hosts']}", "-o",
                        "BatchMode=yes", f"root@{n.ip}", shlex.join(argv)],
                       check=True, capture_output=True)
    return time.monotonic() - t0


def srb(lab, ring, *cmd):
    subprocess.run(["swift-ring-builder", f"{lab.builder_dir}/{ring}.builder", *cmd],
                   check=True, capture_output=True)


def look_costs(lab, op: str, rounds: int = 10) -> None:
    """What one progress check of every node costs: over the run's reused connections
    (now) and with a new connection per check (before)."""
    from ringmgr.config import load_config
    from ringmgr.ops import partpower_nodes as pn
    from ringmgr.ops.partpower_env import Env

    config = load_config(Path(lab.config_path))
    nodes = {n.name: pn.ObjectNode(n, {"object": ["sdb"]}) for n in config.nodes.values()}

    def one_round(env):
        states = pn.parallel(config, nodes, lambda on: pn.relinker_state(
            on, env.executor(on.node), env.recon, op, "cleanup", ["object"]))
        assert not any(isinstance(s, Exception) for s in states.values()), states

    with Env(config, ["object"]) as env:
        one_round(env)                      # connect
        t0 = time.monotonic()
        for _ in range(rounds):
            one_round(env)
        reused = (time.monotonic() - t0) / rounds
    t0 = time.monotonic()
    for _ in range(rounds):
        with Env(config, ["object"]) as env:
            one_round(env)
    fresh = (time.monotonic() - t0) / rounds
    print(f"one progress check of all {len(nodes)} nodes (status + recon): "
          f"{1000 * reused:.0f} ms over the reused connections, {1000 * fresh:.0f} ms "
          f"with a new connection per check (load average {os.getloadavg()[0]:.1f})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=2000)
    ap.add_argument("--poll", type=float, default=5.0,
                    help="ringmgr's --poll (its default: 5 s)")
    args = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-partpower-")) / "lab"
    lab = lab_up(state, nodes=4, disks=2, xfs=True, part_power=6)
    try:
        for pol in ("gold", "silver"):
            lab.put(f"c-{pol}", policy=pol)
        t0 = time.monotonic()
        for i in range(args.objects):
            pol = ("gold", "silver")[i % 2]
            assert lab.put(f"c-{pol}", f"o{i:05d}", b"x" * (100 + i % 900)) == 201
        print(f"uploaded {args.objects} objects in {time.monotonic() - t0:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f})")
        phase_time, inside, spans = {}, {}, {}
        for _ in range(6):
            secs, r = ringmgr(lab, "increase-part-power", "--yes", "--wait", "--poll",
                              str(args.poll), "--json")
            doc = json.loads(r.stdout)
            done = [p for p in doc["phases"] if p["state"] == "done"]
            name = done[-1]["name"] if done else "?"
            phase_time[name] = secs
            if done and done[-1].get("finished") and done[-1].get("started"):
                inside[name] = done[-1]["finished"] - done[-1]["started"]
                spans[name] = (done[-1]["started"], done[-1]["finished"])
            if doc["phase"] is None:
                break
        op = doc.get("operation") or json.loads((state / "ringmgr/runs/"
                                                 "increase-part-power.json").read_text()
                                                ).get("params", {}).get("op_id")
        reload_wait = float(re.search(r"ring_reload = ([0-9.]+)",
                                      Path(lab.config_path).read_text()).group(1))
        rl = relinker_seconds(lab, op, "relink")
        cl = relinker_seconds(lab, op, "cleanup")
        # the manual procedure, 7 -> 8, on the same objects
        import tomllib

        nodes_cfg = tomllib.loads(Path(lab.config_path).read_text())["nodes"]

        def prefix_of(n):
            return nodes_cfg[n.name]["swift_command_prefix"]

        def conf_of(n):
            return f"{nodes_cfg[n.name]['run_dir']}/object-relinker.conf"

        for ring in ("object", "object-1"):
            srb(lab, ring, "prepare_increase_partition_power")
            srb(lab, ring, "write_ring")
        ringmgr(lab, "push")
        time.sleep(reload_wait)
        man_relink = manual(lab, "relink", prefix_of, conf_of)
        for ring in ("object", "object-1"):
            srb(lab, ring, "increase_partition_power")
            srb(lab, ring, "write_ring")
        ringmgr(lab, "push")
        time.sleep(reload_wait)
        man_cleanup = manual(lab, "cleanup", prefix_of, conf_of)
        print(f"load average {os.getloadavg()[0]:.1f} at the end; 4 nodes x 2 XFS disks, "
              f"{args.objects} objects, 2 policies")
        print(f"{'':<22}{'ringmgr (parallel)':>20}{'manual (node by node)':>24}{'ratio':>8}")
        for name, ours, theirs in (("relink", phase_time.get("relink"), man_relink),
                                   ("cleanup", phase_time.get("cleanup"), man_cleanup)):
            print(f"{name + ' wall (s)':<22}{ours:>20.2f}{theirs:>24.2f}{theirs / ours:>8.2f}x")
        for name, per in (("relink", rl), ("cleanup", cl)):
            floor = max(per.values())
            ours = phase_time.get(name)
            print(f"{name}: relinker processes {', '.join(f'{k} {v:.2f}' for k, v in per.items())}"
                  f" s; floor {floor:.2f} s; ringmgr's overhead {ours - floor:.2f} s "
                  f"({100 * (ours - floor) / ours:.0f}% of the phase)")
            if name in inside:
                print(f"  {name}: {inside[name]:.2f} s inside the phase (journal), "
                      f"{ours - inside[name]:.2f} s ringmgr's start-up and exit; inside the "
                      f"phase {inside[name] - floor:.2f} s above the floor "
                      f"({100 * (inside[name] - floor) / inside[name]:.0f}%)")
                began, ended = spans[name]
                sp = relinker_span(lab, op, name)
                first, last = min(a for a, _ in sp.values()), max(a for a, _ in sp.values())
                print(f"  {name}: relinkers started {first - began:.2f}-{last - began:.2f} s "
                      f"into the phase; the last one ended {ended - max(b for _, b in sp.values()):.2f}"
                      f" s before the phase did")
        total = sum(phase_time.values())
        floor_all = max(rl.values()) + max(cl.values()) + 3 * reload_wait
        print(f"whole operation {total:.1f} s; relinkers + reload waits {floor_all:.1f} s; "
              f"orchestration {total - floor_all:.1f} s "
              f"({100 * (total - floor_all) / total:.0f}%)")
        print("phases:", ", ".join(f"{k} {v:.1f} s" for k, v in phase_time.items()))
        look_costs(lab, op)
    finally:
        lab_down(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
