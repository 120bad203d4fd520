"""The random-fault run: SIGKILL multi-ring changes, rollbacks and resumes at part
power 12-14, most of them inside the transaction, each followed by ``resume``.

After every kill and resume: every ring is all-old or all-new (the change happened on
every ring or on none), builder and ring.gz agree, no temp file or txn/ is left, no
ringmgr process survives, the builder_dir lock is free, history ids are unique.  The
counts are printed (``-s`` or the CI log's captured output of a failure) and the run
fails if fewer than a third of the kills landed inside a transaction.

Kills are aimed: a change spends most of its time rebalancing, so a uniformly random
moment rarely falls inside the commit.  Most kills wait for the transaction's pending
marker (``.ringmgr/txn``) and strike a random few milliseconds after it appears; some
strike while the forked workers simulate; some kill ``resume`` itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ringmgr.rings.ringfile import check_ring_file
from ringmgr.rings.store import RingStore
from tests.helpers.procs import ringmgr_processes
from tests.helpers.ringfactory import make_cluster

RINGS = ("account", "object", "object-1")
KILLS = 30


def _env(c):
    env = dict(os.environ, RINGMGR_CONFIG=str(c.config), RINGMGR_LOG=str(c.root / "audit.log"))
    env.pop("RINGMGR_TEST_FAULT", None)
    return env


def _start(c, *args):
    return subprocess.Popen(["ringmgr", "--config", str(c.config), *args], env=_env(c), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _processes(c) -> list[int]:
    return ringmgr_processes(str(c.config))


def _builder_md5s(c) -> dict:
    store = RingStore(c.builder_dir)
    return {r: store.files(r).builder.read_bytes() for r in RINGS}


def _lock_free(c) -> bool:
    fd = os.open(c.builder_dir / ".lock", os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _kill_after_marker(p, txn: Path, rnd: random.Random) -> bool:
    """SIGKILL ``p`` a random moment after ``txn`` appears; False if it ended first."""
    while p.poll() is None and not txn.exists():
        time.sleep(0.0005)
    if p.poll() is not None:
        return False
    time.sleep(rnd.uniform(0, 0.04))
    if p.poll() is not None:
        return False
    p.send_signal(signal.SIGKILL)
    p.wait()
    return True


def _kill_during_simulation(c, p) -> bool:
    """SIGKILL ``p`` while its forked workers rebalance."""
    deadline = time.monotonic() + 120
    while p.poll() is None and len(_processes(c)) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    if p.poll() is not None or len(_processes(c)) < 2:
        return False
    time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    return True


def _check(c, before: dict, history_len: int) -> tuple[bool, int]:
    """Invariants after a kill and a resume; returns (torn, new history length)."""
    store = RingStore(c.builder_dir)
    records = store.history()  # raises on a damaged or duplicate-id history
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), f"duplicate history ids: {ids}"
    now = _builder_md5s(c)
    torn = False
    if len(records) > history_len:
        import hashlib

        rec = records[-1]
        for ring, r in rec["rings"].items():
            if hashlib.md5(now[ring]).hexdigest() != r["builder_md5_after"]:
                torn = True
        untouched = [x for x in RINGS if x not in rec["rings"]]
        torn |= any(now[x] != before[x] for x in untouched)
    else:
        torn = now != before
    for ring in RINGS:
        b = store.load(ring)
        check = check_ring_file(store.files(ring).ring, ring, b)
        assert check.current, f"{ring}: builder and ring.gz disagree ({check.detail})"
    left = [str(p) for p in c.builder_dir.rglob("*")
            if p.name.startswith(".ringmgr-tmp.") or p.name == "txn"
            or (".ring.gz" in p.name and not p.name.endswith(".ring.gz")
                and "backups" not in p.parts)]
    assert left == [], f"left behind: {left}"
    deadline = time.monotonic() + 5
    while _processes(c) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes(c) == [], "a ringmgr process outlived its kill"
    assert _lock_free(c), "the builder_dir lock is still held"
    return torn, len(records)


def _resume(c) -> None:
    r = subprocess.run(["ringmgr", "resume"], env=_env(c), capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr


def _operation(c, rnd: random.Random, history_len: int) -> list[str]:
    """A rollback (a quarter of the time) or a weight change that changes something."""
    if history_len and rnd.random() < 0.25:
        return ["rollback", "--yes"]
    n = rnd.randint(1, 6)
    ip = c.nodes[f"s0{n}"][0]
    b = RingStore(c.builder_dir).load("object")
    now = {d["weight"] for d in b.devs if d and d["ip"] == ip}
    weight = rnd.choice([w for w in (50, 70, 90, 110, 130) if w not in now])
    return ["set-weight", f"s0{n}", str(weight), "--yes", "--seed", str(rnd.randint(1, 10**6))]


@pytest.mark.slow
def test_random_kills_never_tear_a_ring_set(tmp_path, figures):
    rnd = random.Random(int(os.environ.get("RINGMGR_FAULT_SEED", "20261201")))
    counts = {"kills": 0, "inside_txn": 0, "during_simulation": 0, "of_resume": 0,
              "torn": 0, "finished_before_the_kill": 0}
    small = make_cluster(tmp_path / "pp12", part_power=12, min_part_hours=0, rings=RINGS)
    big = make_cluster(tmp_path / "pp14", part_power=14, min_part_hours=0, rings=RINGS)
    history = {small.root: 0, big.root: 0}
    attempts = 0
    while counts["kills"] < KILLS:
        attempts += 1
        assert attempts < 4 * KILLS, f"too many attempts ended before their kill: {counts}"
        n = counts["kills"]
        c = big if n % 6 == 5 else small  # every sixth kill: during the forked simulation
        before = _builder_md5s(c)
        p = _start(c, *_operation(c, rnd, history[c.root]))
        if c is big:
            killed = _kill_during_simulation(c, p)
            kind = "during_simulation"
        else:
            killed = _kill_after_marker(p, c.builder_dir / ".ringmgr" / "txn", rnd)
            kind = "inside_txn"
        if not killed:
            p.wait()
            counts["finished_before_the_kill"] += 1
            err = p.stderr.read()
            p.stderr.close()
            assert p.returncode in (0, 1), err
            _, history[c.root] = _check(c, before, history[c.root])
            continue
        counts["kills"] += 1
        p.stderr.close()
        if kind == "during_simulation":
            counts[kind] += 1
        elif (c.builder_dir / ".ringmgr" / "txn").exists():
            counts[kind] += 1
        if n % 5 == 4 and (c.builder_dir / ".ringmgr" / "txn").exists():
            r = _start(c, "resume")  # kill the resume too, then resume for real
            time.sleep(rnd.uniform(0.05, 0.4))
            if r.poll() is None:
                r.send_signal(signal.SIGKILL)
                counts["of_resume"] += 1
                counts["kills"] += 1
            r.wait()
            r.stderr.close()
        _resume(c)
        torn, history[c.root] = _check(c, before, history[c.root])
        counts["torn"] += torn
    figures("random-fault run", json.dumps(counts))
    assert counts["torn"] == 0, counts
    assert counts["during_simulation"] >= 3, counts
    assert counts["inside_txn"] >= counts["kills"] / 3, counts
