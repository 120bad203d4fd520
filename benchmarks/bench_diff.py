"""ringmgr diff of two part power 20 builders (budget: 1 s plus the time to load them).

    python benchmarks/bench_diff.py [--dir DIR] [--repeat N]

A is the cached pp20 object builder (benchmarks/rings.py: 1,008 devices, 3 replicas,
3,145,728 replica assignments); B is the same ring after removing its last 12-disk
node and rebalancing (generated once, ~30-60 s, cached next to it).  Prints the
comparison alone (in-process, builders already loaded), the load of both builders,
and the whole `ringmgr diff A B --json` as a subprocess, wall and CPU.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_risk import cpu_of, run_cli, timed  # noqa: E402
from benchmarks.rings import node_ip, ring_set  # noqa: E402

BUDGET = 1.0


def changed_builder(root: Path, log=print) -> Path:
    """``root``'s object builder after removing the last node (made once, cached)."""
    from swift.common.ring import RingBuilder

    target = root.parent / f"{root.name}-minus-last-node" / "object.builder"
    if target.exists():
        return target
    b = RingBuilder.load(str(root / "object.builder"))
    ip = max((d["ip"] for d in b.devs if d is not None),
             key=lambda s: tuple(int(x) for x in s.split(".")))
    after = copy.deepcopy(b)
    for d in after.devs:
        if d is not None and d["ip"] == ip:
            after.remove_dev(d["id"])
    t0 = time.perf_counter()
    after.rebalance(seed="42")
    log(f"generated {target} (removed {ip}) in {time.perf_counter() - t0:.1f} s")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(".object.builder.tmp")
    after.save(str(tmp))
    os.replace(tmp, target)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="ring cache (default $RINGMGR_BENCH_DIR or /tmp/ringmgr-bench)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    root = ring_set("pp20", base=args.dir, log=log)
    a_path, b_path = root / "object.builder", changed_builder(root, log)

    from swift.common.ring import RingBuilder

    from ringmgr.rings.diff import diff_ring

    load = timed(lambda: (RingBuilder.load(str(a_path)), RingBuilder.load(str(b_path))),
                 args.repeat)
    a, b = RingBuilder.load(str(a_path)), RingBuilder.load(str(b_path))
    by_ip = {node_ip(n): f"s{n + 1:02d}" for n in range(84)}
    result = diff_ring("object", a, b, nodes_by_ip=by_ip)
    analysis = timed(lambda: diff_ring("object", a, b, nodes_by_ip=by_ip), args.repeat)
    config = root / "ringmgr.toml"
    cli_args = ("diff", str(a_path), str(b_path), "--json")
    cli = timed(lambda: run_cli(config, *cli_args), args.repeat)
    cpu = cpu_of(lambda: run_cli(config, *cli_args), args.repeat)

    m = result["moves"]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"A: part power {a.part_power}, {sum(1 for d in a.devs if d)} devices; B: "
          f"{sum(1 for d in b.devs if d)} devices; {m['moved']:,} of {m['assignments']:,} "
          f"assignments moved; median of {args.repeat}")
    rows = [("diff_ring() comparison alone (numpy over the assignments)", analysis, BUDGET),
            ("RingBuilder.load of A and B", load, None),
            ("ringmgr diff A B --json (CLI, wall)", cli, BUDGET + load),
            ("  the same, CPU time (user+sys)", cpu, BUDGET + load)]
    for label, t, budget in rows:
        ratio = f"{t / budget:5.2f}x budget" if budget else ""
        print(f"{label:<62} {t:7.3f} s   {ratio}")
    ok = analysis <= BUDGET
    print("PASS" if ok else "FAIL", f"(budget {BUDGET:.1f} s for the comparison, plus load)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
