"""ok-to-stop and failure-impact at part power 20 with 1,008 devices (budget: 1 s).

    python benchmarks/bench_risk.py [--dir DIR] [--repeat N]

Uses the cached ring set from benchmarks/rings.py (generated on first use, ~1 min).
Prints, side by side: the end-to-end CLI wall time (a real ``ringmgr`` subprocess:
interpreter start, config, builder load, analysis, output), the analysis alone, the
builder load alone, and swift-ring-builder printing the same builder as a
reference for "just reading it"; each with its ratio to the 1 s budget.

Then the second target: ``ringmgr ok-to-stop NODE`` and ``ringmgr ok-to-stop --max``
over 12 candidate nodes, each end to end, at most 1.0x ``swift-ring-builder
object.builder`` (swift's own load and print of the same builder).  The three commands
run in turn, round after round, and each ratio is taken within a round (paired), so a
machine whose speed drifts during the run still gives a meaningful ratio; the median of
the paired ratios is the figure, wall and CPU (user + sys of the child).  Every child
may write bytecode (an installed ringmgr has its .pyc files, as swift has), and one
unmeasured round goes first.
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
SWIFT_RATIO = 1.0   # ok-to-stop end to end vs swift-ring-builder object.builder


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


def script(name: str) -> str | None:
    """The console script next to this interpreter: a pyenv shim would add ~0.4 s."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def child_env() -> dict:
    """The benchmark's environment for the commands it times: bytecode may be written
    (PYTHONDONTWRITEBYTECODE would make every run compile ringmgr's modules again,
    which no installed copy does), the audit log goes nowhere."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "RINGMGR_LOG": "/dev/null"}


def run_cli(config: Path, *args):
    exe = script("ringmgr") or "ringmgr"
    r = subprocess.run([exe, "--config", str(config), *args], capture_output=True, text=True,
                       env=child_env())
    if r.returncode not in (0, 1):
        raise SystemExit(f"ringmgr {' '.join(args)} failed: {r.stderr}")
    return r


def run_timed(argv, ok=(0,)) -> tuple[float, float]:
    """(wall, CPU user + sys) seconds of one child process."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, env=child_env())
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.decode()}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


CANDIDATES = 12


def paired_against_swift(config: Path, builder: Path, repeat: int) -> list[tuple]:
    """Rows (label, wall, cpu, wall ratio, cpu ratio) for ok-to-stop NODE and ok-to-stop
    --max over CANDIDATES nodes against ``swift-ring-builder BUILDER``, paired per round;
    the swift row's ratios are None."""
    srb = script("swift-ring-builder")
    if srb is None:
        return []
    exe = script("ringmgr") or "ringmgr"
    base = [exe, "--config", str(config)]
    # s01..s12: two nodes per zone, several pairs sharing partitions (on this ring 10
    # of the 12 can stop together), so the exact search has conflicts to resolve
    cands = [f"s{n:02d}" for n in range(1, CANDIDATES + 1)]
    cmds = {
        "ringmgr ok-to-stop s01 (CLI)": (base + ["ok-to-stop", "s01"], (0, 1)),
        f"ringmgr ok-to-stop --max {CANDIDATES} nodes (CLI)":
            (base + ["ok-to-stop", "--max", *cands], (0, 1)),
        "swift-ring-builder object.builder": ([srb, str(builder)], (0,)),
    }
    for argv, ok in cmds.values():   # warm-up: bytecode written, files in the page cache
        run_timed(argv, ok)
    rounds = [{label: run_timed(argv, ok) for label, (argv, ok) in cmds.items()}
              for _ in range(repeat)]
    ref = "swift-ring-builder object.builder"
    rows = []
    for label in cmds:
        wall = statistics.median(r[label][0] for r in rounds)
        cpu = statistics.median(r[label][1] for r in rounds)
        if label == ref:
            rows.append((label, wall, cpu, None, None))
            continue
        rows.append((label, wall, cpu,
                     statistics.median(r[label][0] / r[ref][0] for r in rounds),
                     statistics.median(r[label][1] / r[ref][1] for r in rounds)))
    return rows


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
    srb = script("swift-ring-builder")
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

    print(f"\nagainst swift-ring-builder, paired by round (median of {args.repeat} "
          f"rounds; target <= {SWIFT_RATIO:.1f}x)")
    paired = paired_against_swift(config, path, args.repeat)
    for label, wall, cpu, r_wall, r_cpu in paired:
        ratio = "reference" if r_wall is None else f"{r_wall:5.2f}x wall  {r_cpu:5.2f}x CPU"
        print(f"{label:<48} {wall:7.3f} s wall {cpu:7.3f} s CPU   {ratio}")
    vs_ok = all(r[3] <= SWIFT_RATIO for r in paired if r[3] is not None)
    print(f"load average {os.getloadavg()[0]:.2f} after the paired rounds")
    if not paired:
        print("SKIP (no swift-ring-builder)")
    else:
        print("PASS" if vs_ok else "FAIL", f"(<= {SWIFT_RATIO:.1f}x swift-ring-builder, "
              f"wall, end to end)")
    return 0 if ok and vs_ok else 1


if __name__ == "__main__":
    sys.exit(main())
