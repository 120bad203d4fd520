"""ok-to-stop and failure-impact at part power 20 with 1,008 devices (budget: 1 s).

    python benchmarks/bench_risk.py [--dir DIR] [--repeat N]

Uses the cached ring set from benchmarks/rings.py (generated on first use, ~1 min).
Prints, side by side: the end-to-end CLI wall time (a real ``ringmgr`` subprocess:
interpreter start, config, builder load, analysis, output), the analysis alone, the
builder load alone, and swift-ring-builder printing the same builder as a
reference for "just reading it"; each with its ratio to the 1 s budget.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.rings import node_ip, ring_set  # noqa: E402

BUDGET = 1.0


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_of(fn, repeat):
    """Median CPU seconds (user + sys) of the child processes ``fn`` runs: on a
    shared, busy machine this is closer to the idle wall time than wall time is."""
    import resource

    times = []
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        fn()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return statistics.median(times)


def run_cli(config: Path, *args):
    # the console script next to this interpreter: a pyenv shim would add ~0.4 s
    beside = Path(sys.executable).with_name("ringmgr")
    exe = str(beside) if beside.exists() else (shutil.which("ringmgr") or "ringmgr")
    r = subprocess.run([exe, "--config", str(config), *args], capture_output=True, text=True,
                       env={**os.environ, "RINGMGR_LOG": "/dev/null"})
    if r.returncode not in (0, 1):
        raise SystemExit(f"ringmgr {' '.join(args)} failed: {r.stderr}")
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="ring cache (default $RINGMGR_BENCH_DIR or /tmp/ringmgr-bench)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    root = ring_set("pp20", base=args.dir, log=lambda m: print(m, file=sys.stderr))
    config = root / "ringmgr.toml"

    from swift.common.ring import RingBuilder

    from ringmgr.rings.risk import DownSet, failure_impact, ok_to_stop

    path = root / "object.builder"
    load = timed(lambda: RingBuilder.load(str(path)), args.repeat)
    b = RingBuilder.load(str(path))
    builders = {"object": b}
    n_dev = sum(1 for d in b.devs if d is not None)
    stop = {node_ip(0)}
    down = DownSet([node_ip(1)], [(node_ip(2), "d03")])
    core_ok = timed(lambda: ok_to_stop(builders, {}, stop, down), args.repeat)
    core_fi = timed(lambda: failure_impact(builders, {node_ip(0), node_ip(1), node_ip(6)}),
                    args.repeat)
    ok_args = ("ok-to-stop", "s01", "--down", "s02", "--down", "s03/d03", "--json")
    fi_args = ("failure-impact", "s01", "s02", "s07", "--json")
    cli_ok = timed(lambda: run_cli(config, *ok_args), args.repeat)
    cli_fi = timed(lambda: run_cli(config, *fi_args), args.repeat)
    cpu_ok = cpu_of(lambda: run_cli(config, *ok_args), args.repeat)
    cpu_fi = cpu_of(lambda: run_cli(config, *fi_args), args.repeat)
    srb_beside = Path(sys.executable).with_name("swift-ring-builder")
    srb = str(srb_beside) if srb_beside.exists() else shutil.which("swift-ring-builder")
    ref = timed(lambda: subprocess.run([srb, str(path)], capture_output=True),
                args.repeat) if srb else None

    load_avg = os.getloadavg()[0]
    print(f"load average {load_avg:.2f} on {os.cpu_count()} cores")
    print(f"ring: part power {b.part_power}, {n_dev} devices, {b.replicas:g} replicas "
          f"({b.parts * b.replicas:,.0f} assignments); median of {args.repeat}")
    rows = [
        ("ringmgr ok-to-stop s01 --down s02 --down s03/d03 (CLI)", cli_ok),
        ("ringmgr failure-impact s01 s02 s07 (CLI)", cli_fi),
        ("  ok-to-stop CLI, CPU time (user+sys)", cpu_ok),
        ("  failure-impact CLI, CPU time (user+sys)", cpu_fi),
        ("  ok_to_stop() analysis only", core_ok),
        ("  failure_impact() analysis only", core_fi),
        ("  RingBuilder.load(object.builder)", load),
    ]
    if ref is not None:
        rows.append(("swift-ring-builder object.builder (reference: load + print)", ref))
    for label, t in rows:
        print(f"{label:<62} {t:7.3f} s   {t / BUDGET:5.2f}x budget")
    ok = cli_ok <= BUDGET and cli_fi <= BUDGET
    cpu_ok_ = cpu_ok <= BUDGET and cpu_fi <= BUDGET
    print("PASS" if ok else "FAIL", f"(budget {BUDGET:.1f} s wall, end to end)",
          "" if ok or not cpu_ok_ else
          f"- CPU time within budget; wall time inflated by load {load_avg:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
