"""Parallel simulation (forked processes) gives the same outcome as the sequential one."""

import pytest
from swift.common.ring import RingBuilder

from ringmgr.rings import parallel
from ringmgr.rings.engine import ChangeSet, RingChange, simulate
from tests.helpers.small_rings import build_ring, node_ip


def rings():
    return {"account": build_ring(part_power=7, nodes=5, seed=1),
            "container": build_ring(part_power=7, nodes=5, replicas=2.5, seed=2),
            "object": build_ring(part_power=8, nodes=6, zones=3, seed=3)}


def changes(builders):
    out = {}
    for name, b in builders.items():
        ids = [d["id"] for d in b.devs if d and d["ip"] == node_ip(1)]
        out[name] = RingChange(removes=ids[:1], weights={ids[-1]: 20.0} if len(ids) > 1 else {})
    return ChangeSet("test", out)


def snapshot(b: RingBuilder):
    return ([list(r) for r in b._replica2part2dev], b.devs, b.version, b.get_balance(),
            b.dispersion, list(b._last_part_moves), b._remove_devs)


def test_forked_simulation_equals_sequential(monkeypatch):
    monkeypatch.setattr(parallel, "PARALLEL_MIN_ASSIGNMENTS", 0)
    builders = rings()
    cs = changes(builders)
    assert parallel.worth_parallel(builders, cs, workers=2)
    seen = []
    progress = lambda name: seen.append(("start", name))  # noqa: E731
    progress.done = lambda name, s, moved: seen.append(("done", name, moved))
    par = parallel.simulate_all(builders, cs, 11, progress=progress, workers=2)
    seq = simulate(builders, cs, 11)
    assert list(par) == list(seq) == list(cs.rings)
    for name in cs.rings:
        p, s = par[name], seq[name]
        assert p.before is builders[name]
        assert (p.parts_moved, p.balance, p.changed, p.blocked) == \
            (s.parts_moved, s.balance, s.changed, s.blocked)
        assert snapshot(p.after) == snapshot(s.after)
    assert sorted(x for x in seen if x[0] == "done") == \
        sorted(("done", n, seq[n].parts_moved) for n in cs.rings)
    # the real builders were not touched by the workers or by the simulation
    fresh = rings()
    for name in builders:
        assert snapshot(builders[name]) == snapshot(fresh[name])


def test_forked_simulation_carries_the_new_kinds(monkeypatch):
    """Edits written without a rebalance, settings marks swift's save rule keeps, and
    zone marks: the outcome's fields come back from the workers as computed in-process."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_ASSIGNMENTS", 0)
    builders = rings()
    one = {d["id"] for d in builders["object"].devs if d and d["ip"] == node_ip(1)}
    cs = ChangeSet("kinds", {
        "account": RingChange(info={0: {"ip": "127.9.9.9", "meta": "x"}}),
        "container": RingChange(overload=0.0001),
        "object": RingChange(zones={i: 9 for i in one}, min_part_hours=3)})
    par = parallel.simulate_all(builders, cs, 5, workers=2)
    seq = simulate(builders, cs, 5)
    for name in cs.rings:
        p, s = par[name], seq[name]
        assert (p.rebalanced, p.note, p.edited, p.layout_dispersion, p.changed) == \
            (s.rebalanced, s.note, s.edited, s.layout_dispersion, s.changed), name
        assert snapshot(p.after) == snapshot(s.after)
    assert par["account"].rebalanced is False and par["account"].edited == (0,)
    assert par["account"].after.devs[0]["ip"] == "127.9.9.9"
    assert par["object"].after.min_part_hours == 3


def test_small_or_single_rings_stay_in_process():
    builders = rings()
    cs = changes(builders)
    assert not parallel.worth_parallel(builders, cs, workers=2)  # too small to pay
    one = ChangeSet("one", {"object": cs.rings["object"]})
    assert not parallel.worth_parallel(builders, one, workers=8)


def test_a_failing_ring_is_a_usage_error_from_a_worker(monkeypatch):
    from ringmgr.errors import UsageError

    monkeypatch.setattr(parallel, "PARALLEL_MIN_ASSIGNMENTS", 0)
    builders = rings()
    cs = changes(builders)
    # remove every device of the object ring: swift cannot place any replica
    cs.rings["object"] = RingChange(removes=[d["id"] for d in builders["object"].devs if d])
    assert parallel.worth_parallel(builders, cs, workers=2)  # the error comes from a worker
    with pytest.raises(UsageError, match="object"):
        parallel.simulate_all(builders, cs, 1, workers=2)


def test_cli_dry_run_progress_per_ring_and_parallel_equals_sequential(tmp_path):
    """A real `ringmgr` process on two part power 14 rings (big enough to fork):
    progress per ring on stderr (both started before either is done), JSON alone on
    stdout, the same report as with RINGMGR_NO_PARALLEL=1, nothing written."""
    import json
    import os
    import subprocess

    from tests.helpers.checksums import checksums
    from tests.helpers.ringfactory import make_cluster

    c = make_cluster(tmp_path / "c", part_power=14, rings=("account", "object"), nodes=4,
                     zones=4, disks=2)
    before = checksums(c.builder_dir)
    argv = ["ringmgr", "--config", str(c.config), "--json", "remove-device", "s01", "sdb",
            "--dry-run", "--seed", "3"]
    env = dict(os.environ, RINGMGR_LOG=str(tmp_path / "audit.log"))
    env.pop("RINGMGR_NO_PARALLEL", None)
    par = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    seq = subprocess.run(argv, env=dict(env, RINGMGR_NO_PARALLEL="1"), capture_output=True,
                         text=True, timeout=120)
    assert par.returncode == seq.returncode == 0, par.stderr + seq.stderr
    assert checksums(c.builder_dir) == before
    progress = [ln for ln in par.stderr.splitlines() if ln.startswith("simulat")]
    if parallel.cpus() >= 2:  # forked only with more than one CPU
        assert sorted(progress[:2]) == ["simulating account ...", "simulating object ..."]
    assert [ln.split(":")[0] for ln in progress[2:]] != [] and all(
        ln.startswith("simulated ") and "replica moves in" in ln for ln in progress[2:])
    seq_progress = [ln for ln in seq.stderr.splitlines() if ln.startswith("simulat")]
    assert seq_progress[1].startswith("simulated account:")  # one after the other
    p, s = json.loads(par.stdout), json.loads(seq.stdout)
    assert p["rings"] == s["rings"] and p["rings"]["object"]["parts_moved"] > 0
