#!/usr/bin/env python3
"""Regenerate the demo cluster's builders and rings (deterministic: fixed seed).

Six storage nodes in three zones, two disks each; account, container, object and one
extra object policy (object-1); part power 10, 3 replicas, min_part_hours 1.
Run from anywhere: python3 examples/demo/make_demo.py
"""

from pathlib import Path

from swift.common.ring import RingBuilder

HERE = Path(__file__).resolve().parent
NODES = {f"s0{i}": (f"10.0.0.{i}", (i - 1) // 2 + 1) for i in range(1, 7)}
PORTS = {"account": 6202, "container": 6201, "object": 6200, "object-1": 6200}
WEIGHTS = {"account": 100.0, "container": 100.0, "object": 4000.0, "object-1": 4000.0}


def main() -> None:
    out = HERE / "rings"
    out.mkdir(exist_ok=True)
    for ring, port in PORTS.items():
        b = RingBuilder(10, 3, 1)
        for name, (ip, zone) in NODES.items():
            for dev in ("sdb", "sdc"):
                b.add_dev({"region": 1, "zone": zone, "ip": ip, "port": port,
                           "replication_ip": ip, "replication_port": port,
                           "device": dev, "weight": WEIGHTS[ring], "meta": ""})
        b.rebalance(seed=42)
        b._last_part_moves_epoch = 1_700_000_000  # long ago: the min_part_hours gate is open
        b.save(str(out / f"{ring}.builder"))
        b.get_ring().save(str(out / f"{ring}.ring.gz"))
    print(f"wrote {len(PORTS)} builders and rings to {out}")


if __name__ == "__main__":
    main()
