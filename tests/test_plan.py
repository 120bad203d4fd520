"""Saved plans: --plan-out writes nothing but the plan; apply installs exactly the
simulated builders; a stale or corrupt plan is refused (exit 2) and changes nothing.
The property test: predicted parts_moved == moves counted between the builder files
before and after apply, on every ring, over random small clusters and changes."""

import hashlib
import json
import pickle
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings, strategies as st
from swift.common.ring import RingBuilder

from ringmgr.cli.main import cli
from tests.helpers.ringfactory import checksums, make_cluster


def run(config, *args):
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def moves_between(before: RingBuilder, after: RingBuilder) -> int:
    """Brute force: replica slots whose device differs (a slot on one side only counts)."""
    rb = [list(r) for r in before._replica2part2dev]
    ra = [list(r) for r in after._replica2part2dev]
    moved = 0
    for r, row in enumerate(ra):
        for p, dev in enumerate(row):
            if r >= len(rb) or p >= len(rb[r]) or rb[r][p] != dev:
                moved += 1
    return moved


@pytest.fixture(autouse=True)
def audit_log(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path_factory.mktemp("log") / "audit.log"))


@pytest.fixture
def cluster(tmp_path):
    return make_cluster(tmp_path)


def test_plan_out_writes_nothing_and_apply_installs_exactly_the_plan(cluster, tmp_path):
    plan = tmp_path / "plan.json"
    before = checksums(cluster.builder_dir)
    r = run(cluster.config, "--json", "remove-node", "s03", "--plan-out", str(plan), "--seed", "4")
    assert r.exit_code == 0, r.output
    assert checksums(cluster.builder_dir) == before
    assert json.loads(r.stdout)["plan"] == str(plan)
    doc = json.loads(plan.read_text())
    body = doc["body"]
    assert body["seed"] == 4 and set(body["results"]) == {"account", "container", "object",
                                                          "object-1"}
    for ring, ident in body["base"].items():
        assert ident["md5"] == before[f"{ring}.builder"]

    r = run(cluster.config, "--json", "apply", str(plan), "--yes")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["written"] is True
    after = checksums(cluster.builder_dir)
    for ring, res in body["results"].items():
        assert after[f"{ring}.builder"] == res["md5"]  # byte for byte as simulated
        b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
        assert not [d for d in b.devs if d and d["ip"] == cluster.nodes["s03"][0]]
    hist = [json.loads(x) for x in
            (cluster.builder_dir / ".ringmgr" / "history.jsonl").read_text().splitlines()]
    assert hist[-1]["description"].startswith("apply plan: remove s03")
    assert hist[-1]["seed"] == 4 and len(hist[-1]["removed_devices"]) == 8


def test_plan_equals_a_direct_change_with_the_same_seed(tmp_path):
    a = make_cluster(tmp_path / "a")
    b = make_cluster(tmp_path / "b")
    plan = tmp_path / "p.json"
    assert run(a.config, "set-weight", "s02", "50", "--seed", "9", "--plan-out", str(plan)).exit_code == 0
    assert run(a.config, "apply", str(plan), "--yes").exit_code == 0
    r = run(b.config, "set-weight", "s02", "50", "--seed", "9", "--yes")
    assert r.exit_code in (0, 1), r.output
    for ring in ("account", "object"):
        ba = RingBuilder.load(str(a.builder_dir / f"{ring}.builder"))
        bb = RingBuilder.load(str(b.builder_dir / f"{ring}.builder"))
        assert [list(x) for x in ba._replica2part2dev] == [list(x) for x in bb._replica2part2dev]


def test_stale_plan_is_refused_and_changes_nothing(cluster, tmp_path):
    plan = tmp_path / "plan.json"
    assert run(cluster.config, "remove-node", "s02", "--plan-out", str(plan)).exit_code == 0
    r = run(cluster.config, "set-weight", "s05/sdb", "60", "--yes")
    assert r.exit_code in (0, 1), r.output
    before = checksums(cluster.builder_dir)
    r = run(cluster.config, "apply", str(plan), "--yes")
    assert r.exit_code == 2
    assert "re-plan" in r.output and "Traceback" not in r.output
    assert r.output.count("ringmgr: error:") == 1
    assert checksums(cluster.builder_dir) == before


def test_applying_a_plan_twice_is_refused(cluster, tmp_path):
    plan = tmp_path / "plan.json"
    assert run(cluster.config, "remove-device", "s01", "sdb", "--plan-out", str(plan)).exit_code == 0
    assert run(cluster.config, "apply", str(plan), "--yes").exit_code == 0
    before = checksums(cluster.builder_dir)
    r = run(cluster.config, "apply", str(plan), "--yes")
    assert r.exit_code == 2 and "changed since the plan was made" in r.output
    assert checksums(cluster.builder_dir) == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "empty", "other-json",
                                    "missing"])
def test_corrupt_plan_file_is_exit_2_one_line(cluster, tmp_path, damage):
    plan = tmp_path / "plan.json"
    assert run(cluster.config, "remove-node", "s02", "--plan-out", str(plan)).exit_code == 0
    raw = plan.read_bytes()
    if damage == "truncate":
        plan.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        plan.write_bytes(b"\x00\xff" * 100)
    elif damage == "flip":  # valid JSON, one builder byte changed
        doc = json.loads(raw)
        data = doc["body"]["results"]["object"]["data"]
        doc["body"]["results"]["object"]["data"] = ("A" if data[0] != "A" else "B") + data[1:]
        plan.write_text(json.dumps(doc))
    elif damage == "empty":
        plan.write_bytes(b"")
    elif damage == "other-json":
        plan.write_text('{"rings": {}}')
    else:
        plan.unlink()
    before = checksums(cluster.builder_dir)
    r = run(cluster.config, "apply", str(plan), "--yes")
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ringmgr: error:"), r.output
    assert checksums(cluster.builder_dir) == before


def test_apply_dry_run_checks_and_writes_nothing(cluster, tmp_path):
    plan = tmp_path / "plan.json"
    assert run(cluster.config, "remove-node", "s04", "--plan-out", str(plan)).exit_code == 0
    before = checksums(cluster.builder_dir)
    r = run(cluster.config, "--json", "apply", str(plan), "--dry-run")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["written"] is False
    assert checksums(cluster.builder_dir) == before


def test_plan_out_into_missing_directory_is_exit_2(cluster, tmp_path):
    before = checksums(cluster.builder_dir)
    r = run(cluster.config, "remove-node", "s02", "--plan-out", str(tmp_path / "no" / "p.json"))
    assert r.exit_code == 2 and "does not exist" in r.output
    assert checksums(cluster.builder_dir) == before


# -- prediction equals result, property-based ---------------------------------------------

def _random_cluster(root: Path, part_power, replicas, nodes, zones, disks, weights, seed):
    builder_dir = root / "rings"
    builder_dir.mkdir(parents=True)
    ips = {f"s{i:02d}": f"127.0.8.{i}" for i in range(1, nodes + 2)}
    for ring, port in (("account", 6202), ("object", 6200)):
        b = RingBuilder(part_power, replicas, 1)
        for i, (name, ip) in enumerate(list(ips.items())[:nodes]):
            for d in range(disks):
                b.add_dev({"region": 1, "zone": i % zones + 1, "ip": ip, "port": port,
                           "replication_ip": ip, "replication_port": port,
                           "device": f"sd{chr(98 + d)}", "meta": "",
                           "weight": weights[(i * disks + d) % len(weights)]})
        b.rebalance(seed=seed)
        b._last_part_moves_epoch -= 7200  # the min_part_hours gate is open
        b.save(str(builder_dir / f"{ring}.builder"))
        b.get_ring().save(str(builder_dir / f"{ring}.ring.gz"))
    lines = ["[cluster]", f'builder_dir = "{builder_dir}"', "lock_timeout = 1.5", ""]
    for i, (name, ip) in enumerate(ips.items()):
        lines += [f"[nodes.{name}]", f'ip = "{ip}"', f"zone = {i % zones + 1}",
                  "devices = { sdb = 80.0, sdc = 120.0 }", ""]
    (root / "ringmgr.toml").write_text("\n".join(lines))
    return root / "ringmgr.toml", builder_dir, list(ips)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(part_power=st.integers(4, 8),
       replicas=st.sampled_from([1, 2, 2.5, 3, 3.25]),
       nodes=st.integers(4, 6), zones=st.integers(1, 4), disks=st.integers(1, 2),
       weights=st.lists(st.sampled_from([50.0, 100.0, 150.0, 300.0]), min_size=1, max_size=4),
       change=st.sampled_from(["remove-node", "remove-device", "set-weight", "add-node",
                               "rebalance"]),
       seed=st.integers(0, 2**31 - 1))
def test_predicted_moves_equal_applied_moves(part_power, replicas, nodes, zones, disks,
                                             weights, change, seed):
    with tempfile.TemporaryDirectory() as d:
        config, builder_dir, names = _random_cluster(Path(d), part_power, replicas, nodes,
                                                     zones, disks, weights, seed % 1000)
        args = {"remove-node": ["remove-node", names[1]],
                "remove-device": ["remove-device", names[0], "sdb"],
                "set-weight": ["set-weight", f"{names[2]}/sdb", "10"],
                "add-node": ["add-node", names[-1]],
                "rebalance": ["rebalance"]}[change]
        plan = Path(d) / "plan.json"
        before_sums = checksums(builder_dir)
        r = run(config, *args, "--seed", str(seed), "--plan-out", str(plan))
        assert checksums(builder_dir) == before_sums
        event(f"{change}: exit {r.exit_code}")
        if r.exit_code != 0:
            # swift cannot place the replicas (too few devices), or nothing to do
            assert r.exit_code in (1, 2) and not plan.exists(), r.output
            return
        body = json.loads(plan.read_text())["body"]
        before = {n: RingBuilder.load(str(builder_dir / f"{n}.builder")) for n in body["results"]}
        r = run(config, "apply", str(plan), "--yes")
        assert r.exit_code == 0, r.output
        for ring, res in body["results"].items():
            data = (builder_dir / f"{ring}.builder").read_bytes()
            assert hashlib.md5(data).hexdigest() == res["md5"]
            after = RingBuilder.from_dict(pickle.loads(data))
            assert body["reports"][ring]["parts_moved"] == moves_between(before[ring], after)


def test_chart_png_on_dry_run_and_bars_without_matplotlib(cluster, tmp_path, monkeypatch):
    import sys

    before = checksums(cluster.builder_dir)
    png = tmp_path / "c.png"
    r = run(cluster.config, "remove-node", "s02", "--dry-run", "--chart", str(png))
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    png2 = tmp_path / "d.png"
    r = run(cluster.config, "remove-node", "s02", "--dry-run", "--chart", str(png2))
    assert r.exit_code == 0, r.output
    assert not png2.exists() and "matplotlib is not installed" in r.output
    assert "█" in r.output
    assert checksums(cluster.builder_dir) == before
