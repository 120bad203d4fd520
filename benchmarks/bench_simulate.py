"""Simulation cost against swift's own tools, side by side in one run.

    python benchmarks/bench_simulate.py [--dir DIR] [--node s01]

Uses the cached part power 18 set from benchmarks/rings.py (account, container,
object; 240 devices each; ~11 s per ring to generate on first use).  Nothing in the
set is changed: ringmgr runs with --dry-run, swift-ring-builder on a copy.

Measured (each ratio against its target):
1. one ring: ``ringmgr remove-node NODE --dry-run`` (a real subprocess: interpreter,
   config, load, simulation, report, output) vs the bare RingBuilder
   ``remove_dev`` x 12 + ``rebalance`` of the same change with the same seed on the
   same builder (in-process, load not counted);            target <= 1.10
2. three rings: the same command's wall time vs the sum of the three bare
   rebalances;                                             target <= 0.75 (2 cores)
3. peak memory: ringmgr's (PSS of all its processes added up, sampled every 20 ms) vs
   ``swift-ring-builder X rebalance`` on a copy of the same builder with the same
   removal, measured the same way;                         target <= 1.5
4. ``ringmgr --help``                                      target <= 0.3 s
5. ``ringmgr status`` of the set                           target <= 1.5 s

Timings are wall clock and also CPU seconds (user+sys of the processes): on a
shared, busy machine the CPU column is the steadier one for 1, 3, 4, 5; for 2 only
wall time means anything.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.rings import SPECS, node_ip, ring_set  # noqa: E402

SEED = 42
RINGS = ("account", "container", "object")

BARE = r"""
import sys, time, resource
from swift.common.ring import RingBuilder
path, ip, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = RingBuilder.load(path)
t0 = time.perf_counter(); c0 = time.process_time()
for d in [d for d in b.devs if d is not None and d["ip"] == ip]:
    b.remove_dev(d["id"])
moved = b.rebalance(seed=seed)[0]
print(time.perf_counter() - t0, time.process_time() - c0, moved)
"""


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def tree_rss_kb(pid: int) -> int:
    """Memory of ``pid`` and all its descendants, in KiB: the sum of their PSS
    (proportional set size), so that pages forked workers share with their parent
    are counted once, not once per process."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            for t in Path(f"/proc/{p}/task").iterdir():
                kids = (t / "children").read_text().split()
                stack.extend(int(k) for k in kids)
        except (OSError, ValueError):
            continue
    return total


def run_measured(argv, env=None) -> dict:
    """Run ``argv``; wall and CPU seconds, and the peak of the summed RSS of its tree."""
    c0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
            stop.wait(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(map(str, argv))} failed ({proc.returncode}):\n"
                         f"{err.decode()[-2000:]}")
    return {"wall": wall, "cpu": children_cpu() - c0, "peak_kb": peak[0],
            "stdout": out.decode(), "stderr": err.decode()}


def bare(builder: Path, ip: str) -> dict:
    r = run_measured([sys.executable, "-c", BARE, str(builder), ip, str(SEED)])
    wall, cpu, moved = r["stdout"].split()
    return {"wall": float(wall), "cpu": float(cpu), "moved": int(moved)}


def config_for(set_dir: Path, rings, work: Path) -> Path:
    text = (set_dir / "ringmgr.toml").read_text().replace(
        'builder_dir = "."', f'builder_dir = "{set_dir}"\nrings = {list(rings)!r}'.replace("'", '"'), 1)
    p = work / f"ringmgr-{'-'.join(rings)}.toml"
    p.write_text(text)
    return p


def ringmgr(*args) -> list[str]:
    exe = shutil.which("ringmgr") or "ringmgr"
    return [exe, *args]


def srb_peak_kb(set_dir: Path, ring: str, ip: str, work: Path) -> dict:
    """swift-ring-builder X rebalance (same removal, same seed) on a copy: peak PSS
    (as for ringmgr) and GNU time's max RSS."""
    copy = work / f"{ring}.builder"
    shutil.copy(set_dir / f"{ring}.builder", copy)
    subprocess.run(["swift-ring-builder", str(copy), "remove", ip, "--yes"],
                   check=True, capture_output=True)
    r = run_measured(["/usr/bin/time", "-f", "%M", "swift-ring-builder", str(copy),
                      "rebalance", "--seed", str(SEED)])
    r["maxrss_kb"] = int(r["stderr"].strip().splitlines()[-1])
    return r


def ratio_line(name, value, base, target, unit="") -> str:
    ratio = value / base if base else float("inf")
    ok = "ok" if ratio <= target else "OVER"
    return f"  {name:<58} {ratio:6.2f}x  (target <= {target:g}x) {ok}{unit}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="ring cache directory (see benchmarks/rings.py)")
    ap.add_argument("--node", default="s01", help="the node to remove (12 devices)")
    args = ap.parse_args(argv)

    set_dir = ring_set("pp18", RINGS, args.dir, log=lambda m: print(m, file=sys.stderr))
    n = int(args.node[1:]) - 1
    ip = node_ip(n)
    spec = SPECS["pp18"]
    print(f"ring set {set_dir}: part power {spec.part_power}, {spec.devices} devices, "
          f"removing {args.node} ({spec.disks} devices, ip {ip}), seed {SEED}, "
          f"{len(os.sched_getaffinity(0))} CPUs, load {os.getloadavg()[0]:.1f}")
    env = dict(os.environ, RINGMGR_LOG=os.devnull)
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        work = Path(tmp)
        one = config_for(set_dir, ("object",), work)
        three = config_for(set_dir, RINGS, work)

        print("\nbare RingBuilder remove + rebalance (in-process, load not counted):")
        bares = {}
        for ring in RINGS:
            bares[ring] = bare(set_dir / f"{ring}.builder", ip)
            print(f"  {ring:<10} {bares[ring]['wall']:6.2f} s wall {bares[ring]['cpu']:6.2f} s "
                  f"CPU  {bares[ring]['moved']} moves")

        print("\nringmgr remove-node --dry-run (whole command, subprocess):")
        r1 = run_measured(ringmgr("--config", str(one), "remove-node", args.node, "--dry-run",
                                  "--seed", str(SEED)), env)
        print(f"  one ring   {r1['wall']:6.2f} s wall {r1['cpu']:6.2f} s CPU  "
              f"peak {r1['peak_kb'] / 1024:.0f} MiB")
        r3 = run_measured(ringmgr("--config", str(three), "remove-node", args.node,
                                  "--dry-run", "--seed", str(SEED)), env)
        print(f"  3 rings    {r3['wall']:6.2f} s wall {r3['cpu']:6.2f} s CPU  "
              f"peak {r3['peak_kb'] / 1024:.0f} MiB (all processes)")
        r3s = run_measured(ringmgr("--config", str(three), "remove-node", args.node,
                                   "--dry-run", "--seed", str(SEED)),
                           dict(env, RINGMGR_NO_PARALLEL="1"))
        print(f"  3 rings, sequential (RINGMGR_NO_PARALLEL=1) {r3s['wall']:6.2f} s wall "
              f"peak {r3s['peak_kb'] / 1024:.0f} MiB")
        expect = f"object: {bares['object']['moved']} replica moves"
        if expect not in r1["stdout"]:
            print(f"  WARNING: ringmgr's prediction differs from the bare rebalance "
                  f"(wanted {expect!r})")

        print("\nswift-ring-builder object.builder rebalance (copy, same removal):")
        srb = srb_peak_kb(set_dir, "object", ip, work)
        print(f"  {srb['wall']:6.2f} s wall {srb['cpu']:6.2f} s CPU  "
              f"peak {srb['peak_kb'] / 1024:.0f} MiB (max RSS {srb['maxrss_kb'] / 1024:.0f} MiB)")

        print("\nquick commands:")
        helps = [run_measured(ringmgr("--help"), env) for _ in range(3)]
        h = min(helps, key=lambda x: x["wall"])
        print(f"  ringmgr --help   {h['wall']:6.3f} s wall {h['cpu']:6.3f} s CPU (best of 3)")
        sts = [run_measured(ringmgr("--config", str(three), "status"), env) for _ in range(2)]
        st = min(sts, key=lambda x: x["wall"])
        print(f"  ringmgr status   {st['wall']:6.3f} s wall {st['cpu']:6.3f} s CPU (best of 2)")

        print("\nratios:")
        b1 = bares["object"]
        print(ratio_line("1. one ring dry run / bare remove+rebalance (wall)",
                         r1["wall"], b1["wall"], 1.10))
        print(ratio_line("   same, CPU seconds", r1["cpu"], b1["cpu"], 1.10))
        total = sum(b["wall"] for b in bares.values())
        print(ratio_line("2. three rings wall / sum of three bare rebalances",
                         r3["wall"], total, 0.75))
        print(ratio_line("3. peak memory one ring / swift-ring-builder rebalance",
                         r1["peak_kb"], srb["peak_kb"], 1.5))
        print(ratio_line("   three rings (all processes) / 3 x swift-ring-builder",
                         r3["peak_kb"], 3 * srb["peak_kb"], 1.5))
        print(ratio_line("4. ringmgr --help / 0.3 s (wall)", h["wall"], 0.3, 1.0))
        print(ratio_line("5. ringmgr status / 1.5 s (wall)", st["wall"], 1.5, 1.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
