"""ok-to-stop --max / --zone (exact search checked against every subset through
ok_to_stop itself; greedy beyond 16) and the live state on the real lab (a stopped
server and unmounted devices on mount_check nodes count as down, named)."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from ringmgr.rings.risk import DownSet, ok_to_stop
from ringmgr.rings.stop_max import EXACT_MAX, constraints, largest_subset, max_stop
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import checksums, make_cluster
from tests.e2e.test_health import ringmgr


def _builders(tmp_path, **kw):
    from swift.common.ring import RingBuilder

    c = make_cluster(tmp_path, **kw)
    rings = {p.stem: RingBuilder.load(str(p)) for p in sorted(c.builder_dir.glob("*.builder"))}
    return c, rings


def _safe(builders, ips, down=DownSet()):
    return ok_to_stop(builders, {}, set(ips), down)["ok"]


@pytest.mark.parametrize("nodes,zones,replicas,seed", [(6, 3, 3, 1), (8, 4, 3, 2),
                                                       (7, 7, 3, 3), (6, 2, 2, 4)])
def test_exact_search_finds_a_largest_safe_set(tmp_path, nodes, zones, replicas, seed):
    c, builders = _builders(tmp_path, nodes=nodes, zones=zones, replicas=replicas, seed=seed,
                            extra_nodes=0, rings=("object", "account"))
    ips = sorted({d["ip"] for b in builders.values() for d in b.devs if d})
    random.Random(seed).shuffle(ips)
    got = max_stop(builders, {}, ips, DownSet())
    assert got["method"] == "exact"
    assert _safe(builders, got["stop"])
    best = max(len(s) for k in range(len(ips) + 1) for s in itertools.combinations(ips, k)
               if _safe(builders, s))
    assert len(got["stop"]) == best


def test_tie_break_prefers_the_earliest_candidates(tmp_path):
    """Three zones of two nodes, 3 replicas: any one zone can stop; with equal margins
    the zone whose nodes come first in the given order wins."""
    c, builders = _builders(tmp_path, nodes=6, zones=3, extra_nodes=0, rings=("object",))
    ip = {n: v for n, v in [(f"s0{i}", f"127.0.9.{i}") for i in range(1, 7)]}
    order = [ip["s03"], ip["s06"], ip["s01"], ip["s04"], ip["s02"], ip["s05"]]
    got = max_stop(builders, {}, order, DownSet())
    assert sorted(got["stop"]) == sorted([ip["s03"], ip["s06"]])   # zone 3, named first


def test_already_down_and_greedy(tmp_path):
    c, builders = _builders(tmp_path, nodes=6, zones=3, extra_nodes=0, rings=("object",))
    ips = [f"127.0.9.{i}" for i in range(1, 7)]
    down = DownSet([ips[0]])                     # s01 (zone 1) already down
    got = max_stop(builders, {}, ips[1:], down)
    assert got["stop"] == [ips[3]]          # only s04, s01's zone mate
    assert _safe(builders, got["stop"], down) and not _safe(builders, ips[1:3], down)
    matrix, spare = constraints(builders, {}, ips, DownSet())
    wide = EXACT_MAX + 1
    m2 = __import__("numpy").zeros((len(spare), wide), dtype=int)
    m2[:, :6] = matrix
    chosen, method = largest_subset(m2, spare, wide)
    # in order: s01, then s04 (its zone mate); the empty columns always fit
    assert method == "greedy" and chosen == [0, 3] + list(range(6, wide))


def test_constraints_beyond_one_key_word(tmp_path):
    """More than 16 candidates take a second 64-bit key word: each distinct row of the
    matrix is a real partition's count of primaries per candidate, none merged."""
    import numpy as np

    c, builders = _builders(tmp_path, nodes=20, zones=5, extra_nodes=0, rings=("object",),
                            part_power=8)
    b = builders["object"]
    ips = [f"127.0.9.{i}" for i in range(1, 21)]
    down = DownSet([ips[19]])
    matrix, spare = constraints(builders, {}, ips, down)
    on = np.array([ips.index(d["ip"]) for d in b.devs])[
        np.array([np.frombuffer(r, dtype=np.uint16) for r in b._replica2part2dev])]
    counts = np.stack([(on == i).sum(axis=0) for i in range(20)], axis=1)
    counts[:, 19] = 0                          # already down: nothing more to lose there
    want = np.unique(counts[counts.any(axis=1)], axis=0)
    assert sorted(map(tuple, matrix.tolist())) == sorted(map(tuple, want.tolist()))
    assert matrix[:, 16:19].any()              # the second word is filled
    chosen, method = largest_subset(matrix, spare, 20)
    assert method == "greedy" and _safe(builders, [ips[i] for i in chosen], down)


def test_cli_max_and_zone(tmp_path):
    c = make_cluster(tmp_path, nodes=6, zones=3, extra_nodes=0)
    before = checksums(c.builder_dir)
    r = run_cli(c, "--json", "ok-to-stop", "--max", "s01", "s02", "s03", "s04")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["ok"]
    assert doc["max"]["method"] == "exact" and doc["max"]["candidates"] == ["s01", "s02",
                                                                            "s03", "s04"]
    assert doc["max"]["stop"] == ["s01", "s04"]        # one zone (1): s01 and s04
    r = run_cli(c, "ok-to-stop", "--zone", "2")
    assert r.exit_code == 0 and "largest set that can stop together" in r.stdout
    assert "s02, s05" in r.stdout
    r = run_cli(c, "ok-to-stop", "--zone", "9")
    assert r.exit_code == 2 and "no node has a ring device in zone 9" in r.stderr
    r = run_cli(c, "ok-to-stop")
    assert r.exit_code == 2 and "needs a NODE" in r.stderr
    assert checksums(c.builder_dir) == before


@pytest.mark.lab(nodes=4, disks=1, part_power=6)
def test_live_state_counts_as_down(lab_cluster, tmp_path):
    lab = lab_cluster
    before = checksums(lab.builder_dir)
    r = ringmgr("--json", "ok-to-stop", "s01", env=lab.env, check=0)
    doc = json.loads(r.stdout)
    assert doc["live"] == {"servers_down": [], "devices_unmounted": [], "notes": []}
    # s02 stops answering: with 3 replicas over 4 nodes, stopping s01 too is not safe
    lab.stop_node("s02")
    r = ringmgr("--json", "ok-to-stop", "s01", env=lab.env, check=1)
    doc = json.loads(r.stdout)
    s02 = lab.node("s02").ip
    assert sorted(doc["live"]["servers_down"]) == [f"{s02}:{p}" for p in (16200, 16201,
                                                                          16202)]
    r = ringmgr("ok-to-stop", "s01", env=lab.env, check=1)
    assert "live: s02: object server" in r.stdout and "counted as down" in r.stdout
    assert "do NOT stop s01" in r.stdout
    ringmgr("ok-to-stop", "s01", "--no-live", env=lab.env, check=0)
    # --max with s02 down: no other node can stop (every partition has a replica there
    # or on the node stopped with it... 3 replicas on 4 nodes, quorum 2)
    r = ringmgr("--json", "ok-to-stop", "--max", "s01", "s03", "s04", env=lab.env, check=1)
    assert json.loads(r.stdout)["max"]["stop"] == []
    lab.start_node("s02")
    r = ringmgr("--json", "ok-to-stop", "--max", "s01", "s02", "s03", env=lab.env, check=0)
    assert len(json.loads(r.stdout)["max"]["stop"]) == 1

    # unmounted devices count only where the servers run with mount_check = true: the
    # lab's devices are plain directories, which recon reports as unmounted
    cfg = tmp_path / "mount_check.toml"
    cfg.write_text(lab.config_path.read_text().replace(
        "[nodes.s03]\n", "[nodes.s03]\nmount_check = true\n"))
    r = ringmgr("--config", str(cfg), "--json", "ok-to-stop", "s01", env=lab.env)
    doc = json.loads(r.stdout)
    assert doc["live"]["devices_unmounted"] == [f"{lab.node('s03').ip}/sdb"]
    assert "s03: sdb counted as down (recon: unmounted, mount_check = true)" in \
        doc["live"]["notes"]
    assert r.exit_code == 1
    assert checksums(lab.builder_dir) == before
