"""ringmgr import of 1,008 devices (budget: 1 s plus the time to load the builder).

    python benchmarks/bench_import.py [--dir DIR] [--repeat N]

Uses the cached pp20 ring set (benchmarks/rings.py: one object ring, 84 nodes x 12
disks).  Prints describing the builders as TOML alone (in-process, builder loaded),
loading the builder (ringmgr's store: read, md5, unpickle), parsing the written config
back, and the whole `ringmgr import DIR --json` as a subprocess, wall and CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_risk import cpu_of, run_cli, timed  # noqa: E402
from benchmarks.rings import ring_set  # noqa: E402

BUDGET = 1.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="ring cache (default $RINGMGR_BENCH_DIR or /tmp/ringmgr-bench)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    root = ring_set("pp20", base=args.dir, log=lambda m: print(m, file=sys.stderr))

    from ringmgr.config import parse_config
    from ringmgr.rings.importer import describe_builders
    from ringmgr.rings.store import RingStore

    load = timed(lambda: RingStore(root).load_all(), args.repeat)
    builders = RingStore(root).load_all()
    result = describe_builders(builders, root)
    describe = timed(lambda: describe_builders(builders, root), args.repeat)

    import tomllib

    parse = timed(lambda: parse_config(tomllib.loads(result.text), root / "x.toml"),
                  args.repeat)
    cli_args = ("import", str(root), "--json")
    cli = timed(lambda: run_cli(root / "ringmgr.toml", *cli_args), args.repeat)
    cpu = cpu_of(lambda: run_cli(root / "ringmgr.toml", *cli_args), args.repeat)

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{result.devices} devices on {result.nodes} nodes in {', '.join(result.rings)}; "
          f"{len(result.text.splitlines())} lines of TOML; median of {args.repeat}")
    rows = [("describe_builders() alone", describe, BUDGET),
            ("loading the builder (RingStore.load_all)", load, None),
            ("reading the written config back (parse_config)", parse, None),
            ("ringmgr import DIR --json (CLI, wall)", cli, BUDGET + load),
            ("  the same, CPU time (user+sys)", cpu, BUDGET + load)]
    for label, t, budget in rows:
        ratio = f"{t / budget:5.2f}x budget" if budget else ""
        print(f"{label:<62} {t:7.3f} s   {ratio}")
    ok = describe <= BUDGET
    print("PASS" if ok else "FAIL", f"(budget {BUDGET:.1f} s for the import, plus load)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
