"""Big test rings for the benchmarks, generated once and cached (never committed).

    python benchmarks/rings.py [--dir DIR] pp18 pp20     # generate (pp20 takes ~1 min)

A ring set is a directory holding ``<ring>.builder`` and ``<ring>.ring.gz`` for each
ring, plus a ``ringmgr.toml`` describing its nodes (``builder_dir = "."``), so any
ringmgr command can run on it with ``--config DIR/ringmgr.toml``.  The cache lives in
the directory the caller gives, else ``$RINGMGR_BENCH_DIR``, else
``/tmp/ringmgr-bench``.  Sets are rebuilt only when missing; generation writes to a
temporary directory and renames it, so an interrupted run leaves no half set.

The rings are made by swift's own RingBuilder with a fixed seed; node n has ip
127.1.<n // 250>.<n % 250 + 1> (loopback: nothing is ever contacted), its zone is
n % zones + 1, and every disk weighs 4000.  The min_part_hours gate is left open
(the builder is aged by min_part_hours + 1 hours), as on a ring that has been
running for a while.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = "/tmp/ringmgr-bench"
PORTS = {"account": 6202, "container": 6201, "object": 6200}


@dataclass(frozen=True)
class RingSpec:
    part_power: int
    nodes: int
    disks: int
    zones: int
    replicas: float = 3
    min_part_hours: int = 1
    weight: float = 4000.0

    @property
    def devices(self) -> int:
        return self.nodes * self.disks


SPECS = {
    # 20 nodes x 12 disks = 240 devices in 5 zones
    "pp18": RingSpec(part_power=18, nodes=20, disks=12, zones=5),
    # 84 nodes x 12 disks = 1,008 devices in 6 zones
    "pp20": RingSpec(part_power=20, nodes=84, disks=12, zones=6),
}
DEFAULT_RINGS = {"pp18": ("account", "container", "object"), "pp20": ("object",)}


def bench_dir(base: str | os.PathLike | None = None) -> Path:
    return Path(base or os.environ.get("RINGMGR_BENCH_DIR") or DEFAULT_DIR)


def node_name(n: int) -> str:
    return f"s{n + 1:02d}"


def node_ip(n: int) -> str:
    return f"127.1.{n // 250}.{n % 250 + 1}"


def build(spec: RingSpec, ring: str = "object", seed: int = 1):
    """A rebalanced swift RingBuilder for ``spec`` (the slow part: ~11 s at pp18,
    ~60 s at pp20 on this machine)."""
    from swift.common.ring import RingBuilder

    b = RingBuilder(spec.part_power, spec.replicas, spec.min_part_hours)
    port = PORTS.get(ring, 6200)
    for n in range(spec.nodes):
        for d in range(spec.disks):
            b.add_dev({"region": 1, "zone": n % spec.zones + 1, "ip": node_ip(n),
                       "port": port, "replication_ip": node_ip(n),
                       "replication_port": port, "device": f"d{d:02d}",
                       "weight": spec.weight, "meta": ""})
    b.rebalance(seed=seed)
    b._last_part_moves_epoch -= (spec.min_part_hours + 1) * 3600
    return b


def config_text(spec: RingSpec) -> str:
    lines = ["[cluster]", 'builder_dir = "."', ""]
    devs = ", ".join(f"d{d:02d} = {spec.weight}" for d in range(spec.disks))
    for n in range(spec.nodes):
        lines += [f"[nodes.{node_name(n)}]", f'ip = "{node_ip(n)}"',
                  f"zone = {n % spec.zones + 1}", f"devices = {{ {devs} }}", ""]
    return "\n".join(lines)


def ring_set(name: str, rings: tuple[str, ...] | None = None,
             base: str | os.PathLike | None = None, log=print) -> Path:
    """The cached ring set ``name`` (a key of SPECS) with ``rings``; generated when
    missing.  Returns its directory (holding ringmgr.toml)."""
    spec = SPECS[name]
    rings = tuple(rings or DEFAULT_RINGS[name])
    root = bench_dir(base)
    target = root / f"{name}-{'-'.join(rings)}"
    if (target / "ringmgr.toml").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        for i, ring in enumerate(rings):
            t0 = time.perf_counter()
            b = build(spec, ring, seed=i + 1)
            b.save(str(tmp / f"{ring}.builder"))
            b.get_ring().save(str(tmp / f"{ring}.ring.gz"))
            log(f"generated {name} {ring}: part power {spec.part_power}, "
                f"{spec.devices} devices in {time.perf_counter() - t0:.1f} s")
        (tmp / "ringmgr.toml").write_text(config_text(spec))
        tmp.chmod(0o755)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help=f"cache directory (default $RINGMGR_BENCH_DIR or {DEFAULT_DIR})")
    ap.add_argument("--rings", help="comma-separated ring names (default per set)")
    ap.add_argument("sets", nargs="+", choices=sorted(SPECS))
    args = ap.parse_args(argv)
    for name in args.sets:
        rings = tuple(args.rings.split(",")) if args.rings else None
        print(ring_set(name, rings, args.dir, log=lambda m: print(m, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
