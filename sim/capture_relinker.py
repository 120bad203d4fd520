#!/usr/bin/env python3
"""Capture real ``GET /recon/relinker`` answers from a real swift-object-relinker run.

Usage: capture_relinker.py OUT_DIR

Builds a small node in a temporary directory: swift.conf with two replicated policies
(0 and 1), their object rings (part power 3, four devices) prepared for a partition
power increase by swift's own RingBuilder, and a few objects per policy and device
written through swift's DiskFile.  Then runs swift's relinker (``swift.cli.relinker``'s
entry point in a fresh process, ``relink`` then ``cleanup``, one worker, stats
every partition) and, every time the relinker writes its recon cache, asks swift's own
recon middleware for ``/recon/relinker`` and keeps the answer body as served.  Nothing
of swift is changed: the hook only reads after each write.

Writes to OUT_DIR (tests/data/recon/): ``relinker-relink-midway.json`` (policy 0
relinked on every device, policy 1 begun), ``relinker-relink-done.json``,
``relinker-cleanup-midway.json``, ``relinker-cleanup-done.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

DEVICES = ("sdb", "sdc", "sdd", "sde")
SWIFT_CONF = """[swift-hash]
swift_hash_path_suffix = capture
swift_hash_path_prefix = relinker

[storage-policy:0]
name = gold
default = yes

[storage-policy:1]
name = silver
"""


def build_node(root: Path) -> tuple[Path, Path, Path]:
    from swift.common import storage_policy, utils
    from swift.common.ring import RingBuilder

    swift_dir, devices, cache = root / "etc", root / "srv", root / "cache"
    for d in (swift_dir, devices, cache):
        d.mkdir()
    (swift_dir / "swift.conf").write_text(SWIFT_CONF)
    # recon_cache_path has no command-line option: the relinker reads it from here
    (swift_dir / "object-server.conf").write_text(
        f"[DEFAULT]\nswift_dir = {swift_dir}\ndevices = {devices}\nmount_check = false\n"
        f"log_name = relinker\n\n[object-relinker]\n"
        f"recon_cache_path = {cache}\nworkers = 0\nstats_interval = 0.000001\n")
    utils.set_swift_dir(str(swift_dir))
    storage_policy.reload_storage_policies()
    for ring in ("object", "object-1"):
        b = RingBuilder(3, 1, 0)
        for i, dev in enumerate(DEVICES):
            b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": 6200,
                       "device": dev, "weight": 100, "meta": ""})
        b.rebalance(seed=1)
        b.prepare_increase_partition_power()
        b.get_ring().save(str(swift_dir / f"{ring}.ring.gz"))
    for dev in DEVICES:
        (devices / dev).mkdir()
    write_objects(swift_dir, devices)
    return swift_dir, devices, cache


def write_objects(swift_dir: Path, devices: Path) -> None:
    """A few objects per policy, each on the device its partition is assigned to."""
    from swift.common.storage_policy import POLICIES
    from swift.common.utils import Timestamp, get_logger
    from swift.obj.diskfile import DiskFileRouter

    conf = {"devices": str(devices), "mount_check": "false", "swift_dir": str(swift_dir)}
    router = DiskFileRouter(conf, get_logger(conf))
    for policy in POLICIES:
        policy.object_ring = None
        policy.load_ring(str(swift_dir))
        ring = policy.object_ring
        for n in range(24):
            obj = f"o{n}"
            part, nodes = ring.get_nodes("AUTH_test", "c", obj)
            df = router[policy].get_diskfile(nodes[0]["device"], part, "AUTH_test", "c",
                                             obj, policy=policy)
            body = f"object {n}".encode()
            ts = Timestamp.now()
            with df.create() as writer:
                writer.write(body)
                writer.put({"X-Timestamp": ts.internal, "Content-Length": str(len(body)),
                            "ETag": __import__("hashlib").md5(body).hexdigest(),
                            "name": f"/AUTH_test/c/{obj}",
                            "Content-Type": "text/plain"})
                writer.commit(ts)


RUN = """
import sys
from swift.cli import relinker
from swift.common.middleware.recon import ReconMiddleware
from swift.common.swob import Request

cache, log, step, conf = sys.argv[1:]
recon = ReconMiddleware(lambda env, start: [], {"recon_cache_path": cache})
real_dump = relinker.dump_recon_cache

def dump_then_ask(*args, **kwargs):
    real_dump(*args, **kwargs)
    resp = Request.blank("/recon/relinker").get_response(recon)
    with open(log, "ab") as f:
        f.write(resp.body + b"\\n")

relinker.dump_recon_cache = dump_then_ask
sys.exit(relinker.main([step, conf]))
"""


def capture(swift_dir: Path, devices: Path, cache: Path, step: str) -> list[dict]:
    """Run swift's relinker ``step`` (a fresh process, its swift.conf from swift_dir);
    the recon answer after each of its cache writes."""
    import subprocess

    log = cache / f"answers-{step}.jsonl"
    run = (f"from swift.common import storage_policy, utils\n"
           f"utils.set_swift_dir({str(swift_dir)!r})\n"
           f"storage_policy.reload_storage_policies()\n" + RUN)
    r = subprocess.run([sys.executable, "-c", run, str(cache), str(log), step,
                        str(swift_dir / "object-server.conf")], timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"relinker {step} exited {r.returncode}")
    return [json.loads(line) for line in log.read_text().splitlines()]


def midway(answers: list[dict], step: str) -> dict:
    """An answer where policy 0 is complete on every device and policy 1 is complete
    on some devices but not all (or, failing that, the most mixed one)."""
    def state(a):
        devs = a.get("devices") or {}
        out = {}
        for dev, d in devs.items():
            for p, rec in (d.get("policies") or {}).items():
                out.setdefault(p, []).append(rec.get("step") == step
                                             and rec["parts_done"] >= rec["total_parts"])
        return out

    for a in answers:
        s = state(a)
        if all(s.get("0", [False])) and len(s.get("0", ())) == len(DEVICES) \
                and "1" in s and any(s["1"]) and not (all(s["1"])
                                                      and len(s["1"]) == len(DEVICES)):
            return a
    raise SystemExit(f"no answer of the {step} run has policy 1 partly done")


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    out = Path(sys.argv[1])
    os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")
    root = Path(tempfile.mkdtemp(prefix="capture-relinker."))
    try:
        swift_dir, devices, cache = build_node(root)
        for step in ("relink", "cleanup"):
            if step == "cleanup":   # the rings of the increased part power, as pushed
                finish_increase(swift_dir)
            answers = capture(swift_dir, devices, cache, step)
            for name, answer in (("midway", midway(answers, step)),
                                 ("done", answers[-1])):
                (out / f"relinker-{step}-{name}.json").write_text(
                    json.dumps(answer, indent=1, sort_keys=True) + "\n")
                print(f"wrote {out}/relinker-{step}-{name}.json")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def finish_increase(swift_dir: Path) -> None:
    """Between relink and cleanup: the rings at the new part power, as swift's
    increase_partition_power makes them from the prepared builder.  The builders are
    not kept, so the prepared ring's builder is rebuilt the same way (same seed)."""
    from swift.common.ring import RingBuilder

    for ring in ("object", "object-1"):
        b = RingBuilder(3, 1, 0)
        for dev in DEVICES:
            b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": 6200,
                       "device": dev, "weight": 100, "meta": ""})
        b.rebalance(seed=1)
        b.prepare_increase_partition_power()
        b.increase_partition_power()
        b.get_ring().save(str(swift_dir / f"{ring}.ring.gz"))


if __name__ == "__main__":
    sys.exit(main())
