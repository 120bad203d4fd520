"""``ringmgr plan`` against the same RingBuilder calls timed bare, side by side.

    python benchmarks/bench_plan.py [--dir DIR] [--repeat 3]

Uses the cached part power 18 set from benchmarks/rings.py (the object ring: 20 nodes
x 12 disks = 240 devices, 3 replicas); nothing in it is changed.  The desired state
is the set's config with one node more (s21, 12 disks, to be ramped in) and one node
less (s01, to be drained), capped at 10% per step.

Measured (median of --repeat):
1. the planner (``rings.converge.plan_converge``, builders loaded): the differences,
   the first step simulated exactly (as many tries as the cap needs) and the later
   steps estimated, against the same RingBuilder calls bare: for each simulation the
   planner ran, ``copy.deepcopy`` + ``add_dev``/``set_dev_weight`` + ``rebalance``
   with the same seed;                                              target <= 1.10
2. ``ringmgr plan --json`` end to end (a subprocess: interpreter, config, load, plan,
   output), wall and CPU, beside ``RingBuilder.load`` + the bare calls.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.rings import SPECS, node_ip, ring_set  # noqa: E402

SEED = 42


def desired_config(set_dir: Path, work: Path) -> Path:
    spec = SPECS["pp18"]
    text = (set_dir / "ringmgr.toml").read_text().replace(
        'builder_dir = "."', f'builder_dir = "{set_dir}"\nrings = ["object"]', 1)
    start = text.index("[nodes.s01]")
    end = text.index("[nodes.s02]")
    text = text[:start] + text[end:]   # s01 leaves: drained
    devs = ", ".join(f"d{d:02d} = {spec.weight}" for d in range(spec.disks))
    n = spec.nodes
    text += (f'\n[nodes.s{n + 1:02d}]\nip = "{node_ip(n)}"\nzone = {n % spec.zones + 1}\n'
             f"devices = {{ {devs} }}\n\n[converge]\nmax_move = 10\n")
    p = work / "ringmgr.toml"
    p.write_text(text)
    return p


def plan_once(config, builders, max_move=10.0):
    from ringmgr.rings.converge import plan_converge
    from ringmgr.rings.engine import simulate_ring

    calls = []

    def sim(name, builder, change, seed, pretend):
        calls.append((name, change, seed, pretend))
        return simulate_ring(name, builder, change, seed, pretend, validate=False)

    t0 = time.perf_counter()
    c0 = time.process_time()
    plan = plan_converge(config, builders, max_move, SEED, sim)
    return time.perf_counter() - t0, time.process_time() - c0, calls, plan


def bare_once(builders, calls):
    from ringmgr.rings.engine import swift_seed

    t0 = time.perf_counter()
    c0 = time.process_time()
    for name, change, seed, pretend in calls:
        b = copy.deepcopy(builders[name])
        if pretend:
            b.pretend_min_part_hours_passed()
        for i in change.removes:
            b.remove_dev(i)
        for i, w in change.weights.items():
            b.set_dev_weight(i, w)
        for d in change.adds:
            b.add_dev(dict(d))
        b.rebalance(seed=swift_seed(seed))
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-move", type=float, default=10.0,
                    help="the cap (2 makes the planner search for the fraction)")
    args = ap.parse_args(argv)
    from swift.common.ring import RingBuilder

    from ringmgr.config import load_config

    set_dir = ring_set("pp18", ("object",), base=args.dir)
    work = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    cfg = desired_config(set_dir, work)
    config = load_config(cfg)
    t0 = time.perf_counter()
    builders = {"object": RingBuilder.load(str(set_dir / "object.builder"))}
    load = time.perf_counter() - t0
    plans, bares = [], []
    for _ in range(args.repeat):
        wall, cpu, calls, plan = plan_once(config, builders, args.max_move)
        plans.append((wall, cpu))
        bares.append(bare_once(builders, calls))
    step = plan.steps["object"]
    pw, pc = statistics.median(p[0] for p in plans), statistics.median(p[1] for p in plans)
    bw, bc = statistics.median(b[0] for b in bares), statistics.median(b[1] for b in bares)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"plan: {len(plan.differences)} differences, first step x{step.fraction:.2f} "
          f"moving {step.parts_moved_pct:.2f}% in {step.tries} simulation(s), about "
          f"{plan.estimated_steps} steps in all")
    print(f"1. planner        wall {pw:7.3f} s  cpu {pc:7.3f} s")
    print(f"   bare calls     wall {bw:7.3f} s  cpu {bc:7.3f} s")
    print(f"   ratio          wall {pw / bw:7.3f}    cpu {pc / bc:7.3f}    (target <= 1.10)")
    env = dict(os.environ, RINGMGR_LOG=str(work / "audit.log"),
               PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    c0 = resource_children()
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", "from ringmgr.cli.main import main; main()",
                        "--config", str(cfg), "--json", "plan", "--seed", str(SEED),
                        "--max-move", f"{args.max_move:g}"],
                       capture_output=True, env=env)
    wall = time.perf_counter() - t0
    cpu = resource_children() - c0
    assert p.returncode == 1, p.stderr.decode()[-2000:]
    print(f"2. ringmgr plan --json end to end: wall {wall:.2f} s, cpu {cpu:.2f} s; "
          f"load {load:.2f} s + bare calls {bw:.2f} s = {load + bw:.2f} s")
    return 0


def resource_children() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


if __name__ == "__main__":
    sys.exit(main())
