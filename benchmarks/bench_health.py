"""ringmgr health against swift-recon over 4, 16 and 64 real recon servers.

    python benchmarks/bench_health.py [--repeat N] [--net N]

Starts 64 of swift's own object servers (recon middleware in the pipeline, workers = 0)
on 4 loopback addresses 127.0.NET.2-5 (16 ports each), each with its devices and recon
cache; builds an object ring of 4, 16 or 64 of them (one device per server); then times,
end to end as subprocesses, in the same run:

- ``ringmgr health --json``: one concurrent sweep, 11 recon checks (replication,
  reconstruction, diskusage, unmounted, async, quarantined, ringmd5, swiftconfmd5,
  relinker, time, driveaudit) of the first server on each address, and the 3 that
  can differ per port (replication, reconstruction, ringmd5) of the other servers
  there: the node-wide facts once per host;
- ``swift-recon object -a -d -u --md5``: async, diskusage, unmounted, ring and
  swift.conf md5 of every server -- one sweep per option.

What is compared: ringmgr's full health report (every fact swift-recon's run gives,
and six more) against that swift-recon run, over the same servers; the two commands
run in turn (A B A B ...) and the ratio is taken pair by pair, so a change in the
machine's load during the run moves both.

Targets: ringmgr at 64 servers <= 4x its time at 4 (the sweep is concurrent, not a
loop); swift-recon / ringmgr >= 2 for the same servers.  Every server it started is
stopped by pid at the end (also on failure or Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SWIFTRUN = REPO / "sim" / "lab_swiftrun.py"
PER_IP = 16
BASE_PORT = 17300

CONF = """[DEFAULT]
bind_ip = {ip}
bind_port = {port}
workers = 0
user = root
swift_dir = {swift_dir}
devices = {devices}
mount_check = false
log_name = bench-{port}
recon_cache_path = {cache}
disable_fallocate = true

[pipeline:main]
pipeline = recon object-server

[filter:recon]
use = egg:swift#recon
recon_cache_path = {cache}

[app:object-server]
use = egg:swift#object
"""

SWIFT_CONF = """[swift-hash]
swift_hash_path_suffix = bench

[storage-policy:0]
name = gold
default = yes
"""


def wait_up(ip, port, deadline):
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{ip}:{port}/recon/version", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"object server {ip}:{port} did not come up")


def build_ring(root: Path, servers, n: int) -> Path:
    from swift.common.ring import RingBuilder

    d = root / f"ring{n}"
    d.mkdir()
    b = RingBuilder(8, 3, 0)
    for ip, port in servers[:n]:
        b.add_dev({"region": 1, "zone": 1 + servers.index((ip, port)) % 4, "ip": ip,
                   "port": port, "device": "sdb", "weight": 100, "meta": "",
                   "replication_ip": ip, "replication_port": port})
    b.rebalance(seed=1)
    b.save(str(d / "object.builder"))
    b.get_ring().save(str(d / "object.ring.gz"))
    (d / "swift.conf").write_text(SWIFT_CONF)
    ips = sorted({ip for ip, _ in servers[:n]})
    lines = ["[cluster]", f'builder_dir = "{d}"', f'swift_conf = "{d}/swift.conf"', "",
             "[recon]", "timeout = 5", "concurrency = 64", ""]
    for i, ip in enumerate(ips):
        lines += [f"[nodes.b{i + 1:02d}]", f'ip = "{ip}"', "mount_check = false", ""]
    (d / "ringmgr.toml").write_text("\n".join(lines))
    return d


def timed_pairs(a, b, repeat, env):
    """Median wall seconds of ``a`` and of ``b``, run in turn, and the median of the
    pairwise ratios b / a."""
    ta, tb, ratios = [], [], []
    for argv in (a, b):          # one warm-up run each, not counted (page cache, .pyc)
        subprocess.run(argv, capture_output=True, env=env)
    for _ in range(repeat):
        pair = []
        for argv in (a, b):
            t0 = time.perf_counter()
            r = subprocess.run(argv, capture_output=True, text=True, env=env)
            pair.append(time.perf_counter() - t0)
            if r.returncode not in (0, 1):
                raise SystemExit(f"{argv[0]} failed ({r.returncode}): {r.stderr[-500:]}")
        ta.append(pair[0])
        tb.append(pair[1])
        ratios.append(pair[1] / pair[0])
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def requests(n: int, hosts: int = 4) -> tuple[int, int]:
    """HTTP requests per run: ringmgr (11 on one server per host, 3 on the others),
    swift-recon (5 per server)."""
    h = min(n, hosts)
    return 11 * h + 3 * (n - h), 5 * n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--net", type=int, default=251, help="use 127.0.NET.2-5")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="ringmgr-bench-health-"))
    procs: list[subprocess.Popen] = []
    try:
        servers = []
        for h in range(4):
            ip = f"127.0.{args.net}.{h + 2}"
            node = root / f"n{h}"
            swift_dir = node / "etc"
            swift_dir.mkdir(parents=True)
            (swift_dir / "swift.conf").write_text(SWIFT_CONF)
            (node / "srv" / "sdb").mkdir(parents=True)
            (node / "cache").mkdir()
            for k in range(PER_IP):
                port = BASE_PORT + h * PER_IP + k
                conf = swift_dir / f"object-{port}.conf"
                conf.write_text(CONF.format(ip=ip, port=port, swift_dir=swift_dir,
                                            devices=node / "srv", cache=node / "cache"))
                procs.append(subprocess.Popen(
                    [sys.executable, str(SWIFTRUN), str(swift_dir), "swift-object-server",
                     str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True))
                servers.append((ip, port))
        # interleave the addresses: the first 4 servers are on 4 hosts, as are 16 and 64
        servers = [servers[h * PER_IP + k] for k in range(PER_IP) for h in range(4)]
        print(f"starting {len(servers)} object servers ...", file=sys.stderr)
        deadline = time.monotonic() + 300
        for ip, port in servers:
            wait_up(ip, port, deadline)
        env = {**os.environ, "RINGMGR_LOG": "/dev/null", "PYTHONPATH": str(REPO)}
        beside = Path(sys.executable).with_name("ringmgr")
        ringmgr = str(beside) if beside.exists() else shutil.which("ringmgr")
        recon = str(Path(sys.executable).with_name("swift-recon"))
        if not Path(recon).exists():
            recon = shutil.which("swift-recon")
        rows = []
        for n in (4, 16, 64):
            d = build_ring(root, servers, n)
            load0 = os.getloadavg()[0]
            t_r, t_s, ratio = timed_pairs(
                [ringmgr, "--config", str(d / "ringmgr.toml"), "health", "--json"],
                [recon, "object", "-a", "-d", "-u", "--md5", "--swiftdir", str(d),
                 "-t", "5"], args.repeat, env)
            rows.append((n, t_r, t_s, ratio, load0))
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at the end; "
              f"median of {args.repeat} pairs")
        print(f"{'servers':>7}  {'ringmgr health':>15}  {'swift-recon -a -d -u --md5':>27}"
              f"  {'swift-recon / ringmgr':>21}  {'requests':>9}  {'load':>5}")
        for n, t_r, t_s, ratio, load0 in rows:
            q_r, q_s = requests(n)
            print(f"{n:>7}  {t_r:>13.3f} s  {t_s:>25.3f} s  {ratio:>20.2f}x"
                  f"  {q_r:>4}/{q_s:<4}  {load0:>5.1f}")
        print("requests: ringmgr's / swift-recon's; facts: ringmgr's 11 kinds include "
              "swift-recon's 5")
        scale = rows[-1][1] / rows[0][1]
        print(f"ringmgr 64 servers / 4 servers: {scale:.2f}x (target <= 4)")
        ok = scale <= 4 and all(ratio >= 2 for _, _, _, ratio, _ in rows)
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
