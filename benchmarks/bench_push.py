"""Ring distribution: `ringmgr push` against the operations guide's scp loop.

Three rings (one part-power-18 RingBuilder with 100 devices, saved as account,
container and object: about 0.8 MB each) go to 16 real sshd hosts on loopback
addresses (sim/hosts.py), all measured in one run:

- the ops guide's loop: ``for h in ...; do scp *.ring.gz $h:/etc/swift; done``
- 16 parallel plain ``scp`` processes (which verify nothing and are not atomic)
- ``ringmgr push`` as a command (a new process, like scp), then the engine in-process
  for 1, 4 and 16 hosts with where the time goes (connect / transfer / remote script).

Every node's swift_dir is emptied before each measured run, so every file travels.
The three variants run in interleaved rounds (``--repeat``, default 3) and the median
is reported, so that load from other work on the machine hits all of them alike.
Targets (issue 5): push >= 2x faster than the loop, <= 1.3x the parallel scp.

    python benchmarks/bench_push.py [--part-power 18] [--hosts 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.hosts import SSHHosts  # noqa: E402

RINGS = ("account", "container", "object")


def make_rings(d: Path, part_power: int, devices: int) -> list[Path]:
    from swift.common.ring import RingBuilder

    b = RingBuilder(part_power, 3, 1)
    for i in range(devices):
        b.add_dev({"region": 1, "zone": i % 5 + 1, "ip": f"10.0.{i // 10}.{i % 10 + 1}",
                   "port": 6200, "device": f"d{i}", "weight": 100.0 + (i % 3) * 50})
    b.rebalance(seed=1)
    ring = b.get_ring()
    paths = []
    for n in RINGS:
        p = d / f"{n}.ring.gz"
        ring.save(str(p))
        b.save(str(d / f"{n}.builder"))  # push sends only rings current with a builder
        paths.append(p)
    return paths


def clean(hosts) -> None:
    for h in hosts:
        for f in os.listdir(h.swift_dir):
            os.unlink(h.swift_dir / f)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part-power", type=int, default=18)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--hosts", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-push-"))
    os.environ.setdefault("RINGMGR_LOG", str(tmp / "audit.log"))
    try:
        admin = tmp / "admin"
        admin.mkdir()
        t = timed(lambda: make_rings(admin, args.part_power, args.devices))
        files = sorted(admin.glob("*.ring.gz"))
        sizes = ", ".join(f"{f.name} {f.stat().st_size / 1e6:.2f} MB" for f in files)
        print(f"rings: part power {args.part_power}, {args.devices} devices: {sizes} "
              f"(built in {t:.1f}s)")
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        with SSHHosts(args.hosts, workdir=tmp / "hosts") as hs:
            cfg = hs.write_config(tmp / "ringmgr.toml", admin, parallel=32)
            hosts = hs.hosts

            def scp_loop():
                for h in hosts:
                    subprocess.run(hs.scp_argv(files, h, h.swift_dir), check=True)

            def scp_parallel():
                procs = [subprocess.Popen(hs.scp_argv(files, h, h.swift_dir)) for h in hosts]
                assert all(p.wait() == 0 for p in procs)

            def ringmgr_push():
                subprocess.run(["ringmgr", "--config", str(cfg), "push"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            variants = (("scp loop (ops guide)", scp_loop),
                        (f"{len(hosts)} parallel scp", scp_parallel),
                        ("ringmgr push (command)", ringmgr_push))
            runs = {name: [] for name, _ in variants}
            for _ in range(args.repeat):            # interleaved: load drifts hit all alike
                for name, fn in variants:
                    clean(hosts)
                    runs[name].append(timed(fn))
            print(f"\n{len(hosts)} hosts, 3 rings each, {args.repeat} interleaved rounds "
                  f"(median, then every round):")
            med = {name: statistics.median(v) for name, v in runs.items()}
            for name, v in runs.items():
                print(f"  {name:28s} {med[name]:6.2f} s   "
                      f"[{', '.join(f'{x:.2f}' for x in v)}]")
            loop, par, push = med.values()
            print(f"  loop / push      = {loop / push:4.2f}x  (target >= 2.0)")
            print(f"  push / par. scp  = {push / par:4.2f}x  (target <= 1.3)")

            from ringmgr.config import load_config
            from ringmgr.ops.push import push_rings

            config = load_config(cfg)
            print("\nringmgr push engine in-process (no interpreter start-up), by hosts;")
            print("per host, mean: connect = TCP + SSH handshake + auth; start+inspect = "
                  "channel, login shell, python3, inspect;\n  receive = the node receiving "
                  "the rings (request to last byte, node clock); apply = md5, fsync, rename")
            keys = ("connect", "inspect", "node_receive", "node_apply")
            print(f"  {'hosts':>5} {'wall':>6}  {'connect':>8} {'start+inspect':>14} "
                  f"{'receive':>8} {'apply':>7} {'host total':>11}")
            for n in sorted({1, 4, len(hosts)}):
                clean(hosts)
                names = [h.name for h in hosts[:n]]
                rep = push_rings(config, names)
                assert rep.ok, rep.render_table()
                m = {k: sum(r.timings.get(k, 0) for r in rep.results) / n for k in keys}
                total = sum(r.seconds for r in rep.results) / n
                print(f"  {n:5d} {rep.seconds:5.2f}s  {m['connect']:7.2f}s "
                      f"{m['inspect']:13.2f}s {m['node_receive']:7.2f}s "
                      f"{m['node_apply']:6.2f}s {total:10.2f}s")
            clean(hosts)
            rep = push_rings(config)
            rep2 = push_rings(config)
            print(f"\n  again with nothing to send (md5 equal): {rep2.seconds:.2f}s "
                  f"(first {rep.seconds:.2f}s)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
