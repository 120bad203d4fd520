"""SIGKILL during a multi-ring change, at every write, fsync and rename point and at
random moments: after `ringmgr resume` every ring is all-old or all-new, never a mix,
and no temp file remains."""

import json
import os
import random
import signal
import subprocess
import time

import pytest
from swift.common.ring import RingBuilder, RingData

from tests.helpers.ringfactory import make_cluster

RINGS = ("account", "object", "object-1")
GONE_IP = "127.0.9.3"


def ringmgr(cluster, *args, fault=None, **kw):
    env = dict(os.environ, RINGMGR_CONFIG=str(cluster.config),
               RINGMGR_LOG=str(cluster.root / "audit.log"))
    env.pop("RINGMGR_TEST_FAULT", None)
    if fault is not None:
        env["RINGMGR_TEST_FAULT"] = str(fault)
    return subprocess.run(["ringmgr", *args], capture_output=True, text=True, env=env, **kw)


def ring_states(cluster) -> dict[str, str]:
    """Per ring 'old' or 'new' (node s03 still in, or removed); builder and ring.gz agree."""
    out = {}
    for ring in RINGS:
        b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
        rd = RingData.load(str(cluster.builder_dir / f"{ring}.ring.gz"))
        in_builder = any(d and d["ip"] == GONE_IP for d in b.devs)
        in_ring = any(d and d["ip"] == GONE_IP for d in rd.devs)
        assert in_builder == in_ring, f"{ring}: builder and ring.gz disagree"
        assert rd.version == b.version, f"{ring}: ring.gz version differs from builder"
        out[ring] = "old" if in_builder else "new"
    return out


def leftovers(cluster) -> list[str]:
    bad = []
    for p in cluster.builder_dir.rglob("*"):
        if p.name.startswith(".ringmgr-tmp.") or p.name == "txn":
            bad.append(str(p))
        elif ".ring.gz" in p.name and not p.name.endswith(".ring.gz"):
            bad.append(str(p))  # RingData.save's temp file
    return bad


def check_consistent_after_resume(cluster) -> str:
    r = ringmgr(cluster, "resume")
    assert r.returncode == 0, r.stderr
    states = set(ring_states(cluster).values())
    assert len(states) == 1, f"mixed rings after resume: {ring_states(cluster)}"
    assert leftovers(cluster) == []
    hist_file = cluster.builder_dir / ".ringmgr" / "history.jsonl"
    hist = hist_file.read_text().splitlines() if hist_file.exists() else []
    state = states.pop()
    assert len(hist) == (1 if state == "new" else 0)
    return state


@pytest.mark.slow
def test_kill_at_every_fault_point(tmp_path):
    seen = {"old": 0, "new": 0}
    n = 1
    while True:
        cluster = make_cluster(tmp_path / f"run{n}", min_part_hours=0, rings=RINGS)
        r = ringmgr(cluster, "remove-node", "s03", "--yes", "--seed", "3", fault=n)
        if r.returncode != -signal.SIGKILL:
            assert r.returncode in (0, 1), r.stderr
            assert set(ring_states(cluster).values()) == {"new"}
            break
        pending = ringmgr(cluster, "--json", "status")
        if (cluster.builder_dir / ".ringmgr" / "txn").exists() and n % 4 == 0:
            assert pending.returncode == 1
            assert json.loads(pending.stdout)["pending_change"] is not None
            refused = ringmgr(cluster, "remove-node", "s04", "--yes")
            assert refused.returncode == 2 and "ringmgr resume" in refused.stderr
        seen[check_consistent_after_resume(cluster)] += 1
        n += 1
    assert n > 25, "expected a fault point at every write, fsync and rename"
    assert seen["old"] > 0 and seen["new"] > 0


@pytest.mark.slow
def test_kill_at_random_moments(tmp_path):
    rnd = random.Random(1234)
    for i in range(8):
        cluster = make_cluster(tmp_path / f"run{i}", min_part_hours=0, part_power=8, rings=RINGS)
        env = dict(os.environ, RINGMGR_CONFIG=str(cluster.config),
                   RINGMGR_LOG=str(cluster.root / "audit.log"))
        env.pop("RINGMGR_TEST_FAULT", None)
        p = subprocess.Popen(["ringmgr", "remove-node", "s03", "--yes"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.2, 1.2))
        p.send_signal(signal.SIGKILL)
        p.wait()
        check_consistent_after_resume(cluster)
