"""ringmgr diff (builders, ring files, backups, change ids, plans) and ringmgr dump, on
real builders; the counts checked against a brute-force walk over the assignments."""

import hashlib
import json
import shutil
import subprocess

import pytest
from swift.common.ring import RingBuilder

from tests.helpers.checksums import checksums
from tests.helpers.cli import run_cli

SRB = shutil.which("swift-ring-builder")


def backup(cluster, change_id, name):
    (path,) = (cluster.builder_dir / "backups").glob(f"*.{change_id}.{name}")
    return path


def brute(a, b):
    """Moves by walking every assignment: total, and per device / zone (gained, lost)."""
    moved = 0
    dev = {}
    zone = {}
    for r in range(max(len(a._replica2part2dev), len(b._replica2part2dev))):
        ra = list(a._replica2part2dev[r]) if r < len(a._replica2part2dev) else []
        rb = list(b._replica2part2dev[r]) if r < len(b._replica2part2dev) else []
        for p in range(max(len(ra), len(rb))):
            x = ra[p] if p < len(ra) else None
            y = rb[p] if p < len(rb) else None
            if x == y:
                continue
            moved += 1
            for devs, i, k in ((a.devs, x, 1), (b.devs, y, 0)):
                if i is None:
                    continue
                dev.setdefault(i, [0, 0])[k] += 1
            za = None if x is None else (a.devs[x]["region"], a.devs[x]["zone"])
            zb = None if y is None else (b.devs[y]["region"], b.devs[y]["zone"])
            if za != zb:
                if za:
                    zone.setdefault(za, [0, 0])[1] += 1
                if zb:
                    zone.setdefault(zb, [0, 0])[0] += 1
    return moved, dev, zone


def test_diff_of_a_change_counts_what_a_walk_counts(cluster):
    assert run_cli(cluster, "remove-device", "s05", "sdc", "--yes", "--seed", "3").exit_code in (0, 1)
    assert run_cli(cluster, "set-weight", "s03", "50", "--yes", "--seed", "2").exit_code in (0, 1)
    old, new = backup(cluster, 1, "object.builder"), cluster.builder_dir / "object.builder"
    r = run_cli(cluster, "--json", "diff", str(old), str(new))
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["same"] is False and doc["a_kind"] == "backup of a builder"
    ring = doc["rings"]["object"]
    a, b = RingBuilder.load(str(old)), RingBuilder.load(str(new))
    moved, per_dev, per_zone = brute(a, b)
    assert ring["moves"]["moved"] == moved > 0
    assert {x["id"]: [x["gained"], x["lost"]] for x in ring["moves"]["devices"]} == per_dev
    assert {(x["region"], x["zone"]): [x["gained"], x["lost"]]
            for x in ring["moves"]["zones"] if x["gained"] or x["lost"]} == per_zone
    changed = {x["device"]: x["fields"] for x in ring["devices"]["changed"] if x["node"] == "s03"}
    assert changed == {"sdb": {"weight": [100.0, 50.0]}, "sdc": {"weight": [100.0, 50.0]}}
    assert [(x["node"], x["device"]) for x in ring["devices"]["removed"]] == [("s05", "sdc")]
    assert ring["settings"]["version"] == [a.version, b.version]
    assert ring["balance_before"] == pytest.approx(a.get_balance(), abs=1e-4)
    text = run_cli(cluster, "diff", str(old), str(new)).output
    assert "- id 9 s05/sdc 127.0.9.5:6200" in text and "~ id 4 s03/sdb: weight 100 -> 50" in text
    assert f"replica assignments moved: {moved} of 192" in text
    # change ids: the rings right after change 1 are the backups change 2 took
    mid = str(backup(cluster, 2, "object.builder"))
    by_file = json.loads(run_cli(cluster, "--json", "diff", mid, str(new)).stdout)["rings"]
    by_id = json.loads(run_cli(cluster, "--json", "diff", "1", "2").stdout)["rings"]
    assert set(by_id) == {"account", "container", "object", "object-1"}
    assert by_id["object"]["moves"] == by_file["object"]["moves"] == json.loads(
        run_cli(cluster, "--json", "diff", "#1", "object").stdout)["rings"]["object"]["moves"]
    assert by_id["object"]["moves"]["moved"] < moved


def test_same_is_exit_0(cluster, tmp_path):
    path = cluster.builder_dir / "object.builder"
    copy = tmp_path / "copy-object.builder"
    shutil.copy(path, copy)
    r = run_cli(cluster, "--json", "diff", str(path), str(copy))
    assert r.exit_code == 0 and json.loads(r.stdout)["same"] is True
    r = run_cli(cluster, "diff", str(path), str(cluster.builder_dir / "object.ring.gz"))
    assert r.exit_code == 0 and "object: same" in r.output


@pytest.mark.skipif(SRB is None, reason="swift-ring-builder not installed")
def test_a_ring_file_the_builder_has_left_behind(cluster):
    """set_info by hand without write_ring: the ring.gz still has the old address."""
    path = cluster.builder_dir / "object.builder"
    p = subprocess.run([SRB, str(path), "set_info", "--ip", "127.0.9.2", "--change-ip",
                        "127.0.9.92", "--yes"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout
    r = run_cli(cluster, "--json", "diff", str(cluster.builder_dir / "object.ring.gz"), str(path))
    assert r.exit_code == 1
    ring = json.loads(r.stdout)["rings"]["object"]
    assert {x["id"]: x["fields"] for x in ring["devices"]["changed"]} == {
        2: {"ip": ["127.0.9.2", "127.0.9.92"]}, 3: {"ip": ["127.0.9.2", "127.0.9.92"]}}
    assert ring["moves"]["moved"] == 0
    assert "min_part_hours" not in ring["settings"] and ring["dispersion_before"] is None


def test_a_saved_plan_against_the_builders_it_changes(cluster, tmp_path):
    plan = tmp_path / "p.plan"
    assert run_cli(cluster, "remove-node", "s06", "--plan-out", str(plan), "--seed", "4").exit_code == 0
    saved = json.loads(plan.read_text())["body"]["reports"]["object"]
    r = run_cli(cluster, "--json", "diff", "object", str(plan))
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["b_kind"].startswith("saved plan: remove s06")
    assert doc["rings"]["object"]["moves"]["moved"] == saved["parts_moved"]


def test_a_different_part_power_is_not_compared_partition_by_partition(cluster, tmp_path):
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    b.prepare_increase_partition_power()
    b.increase_partition_power()
    b.save(str(tmp_path / "object.builder"))
    r = run_cli(cluster, "--json", "diff", str(cluster.builder_dir / "object.builder"),
            str(tmp_path / "object.builder"))
    assert r.exit_code == 1
    ring = json.loads(r.stdout)["rings"]["object"]
    assert ring["settings"]["part_power"] == [6, 7] and ring["moves"]["comparable"] is False


def test_diff_of_two_files_needs_no_config(cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RINGMGR_CONFIG", raising=False)
    (tmp_path / "ringmgr.toml").rename(tmp_path / "elsewhere.toml")
    path = str(cluster.builder_dir / "object.builder")
    r = run_cli(None, "diff", path, path)
    assert r.exit_code == 0, r.output
    assert "127.0.9.1" in run_cli(None, "diff", str(backup_after(cluster, tmp_path)), path).output


def backup_after(cluster, tmp_path):
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    b.set_dev_weight(0, 10.0)
    b.rebalance(seed=1)
    b.save(str(tmp_path / "object.builder"))
    return tmp_path / "object.builder"


@pytest.mark.parametrize("make_a, expect", [
    (lambda c, t: c.config, "is a TOML text file (a ringmgr config?), not a builder"),
    (lambda c, t: _write(t / "x.json", b'{"a": 1}'), "is a JSON file that is not a ringmgr plan"),
    (lambda c, t: _write(t / "x.bin", bytes(range(256))), "is binary data"),
    (lambda c, t: _write(t / "x.gz", __import__("gzip").compress(b"hello")),
     "is a gzip file that is not a swift ring"),
    (lambda c, t: c.builder_dir / "account.builder",
     "unrelated: " ),
    (lambda c, t: t / "nothing-here", "no such file, and not a change id"),
    (lambda c, t: "#99", "no change #99 in the history"),
])
def test_unrelated_or_unreadable_inputs_exit_2_say_what_they_are(cluster, tmp_path, make_a,
                                                                  expect):
    a = make_a(cluster, tmp_path)
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, "diff", str(a), str(cluster.builder_dir / "object.builder"))
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ringmgr: error: ") and expect in lines[0]
    if "unrelated" in expect:
        assert "account.builder (builder; account: part power 6" in lines[0]
        assert "object.builder (builder; object: part power 6" in lines[0]
    assert checksums(cluster.builder_dir) == before


def _write(path, data):
    path.write_bytes(data)
    return path


# -- dump ----------------------------------------------------------------------------

def test_dump_is_deterministic_and_shows_what_changed(cluster, tmp_path):
    first = run_cli(cluster, "dump", "object").stdout
    assert first == run_cli(cluster, "dump", "object").stdout
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    b.pretend_min_part_hours_passed()  # the gate clock is not part of the dump
    (tmp_path / "aged").mkdir()
    b.save(str(tmp_path / "aged" / "object.builder"))
    assert run_cli(cluster, "dump", str(tmp_path / "aged" / "object.builder")).stdout == first
    # the digest is of the partitions each device holds
    parts0 = sorted({p for row in b._replica2part2dev for p, d in enumerate(row) if d == 0})
    import numpy as np

    digest = hashlib.sha256(np.array(parts0, dtype="<u4").tobytes()).hexdigest()[:16]
    assert f"parts 0 127.0.9.1/sdb {len(parts0)} {digest}\n" in first
    assert run_cli(cluster, "set-weight", "s03/sdb", "40", "--yes", "--seed", "1").exit_code in (0, 1)
    second = run_cli(cluster, "dump", "object").stdout
    old, new = set(first.splitlines()), set(second.splitlines())
    changed = {ln.split()[0] for ln in old ^ new}
    assert changed <= {"version", "balance", "dispersion", "device", "parts"}
    assert any(ln.startswith("device 4 ") and "weight 40.0" in ln for ln in new - old)
    moved_devs = {int(ln.split()[1]) for ln in new - old if ln.startswith("parts ")}
    after = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    truth = {d for d in range(len(b.devs))
             if {p for row in b._replica2part2dev for p, x in enumerate(row) if x == d} !=
             {p for row in after._replica2part2dev for p, x in enumerate(row) if x == d}}
    assert moved_devs == truth and 4 in truth


def test_dump_to_a_file_never_overwrites_without_force(cluster, tmp_path):
    out = cluster.builder_dir / "object.dump"
    assert run_cli(cluster, "dump", "object", "-o", str(out)).exit_code == 0
    text = out.read_text()
    assert text == run_cli(cluster, "dump", "object").stdout
    r = run_cli(cluster, "dump", "object", "-o", str(out))
    assert r.exit_code == 2 and "exists" in r.output
    assert run_cli(cluster, "dump", "object", "-o", str(out), "--force").exit_code == 0
    for bad in (cluster.builder_dir / "object.builder", cluster.builder_dir / ".lock"):
        before = checksums(cluster.builder_dir)
        r = run_cli(cluster, "dump", "object", "-o", str(bad), "--force")
        assert r.exit_code == 2 and "ringmgr: error: -o" in r.output
        assert checksums(cluster.builder_dir) == before
    doc = json.loads(run_cli(cluster, "--json", "dump", "object").stdout)
    assert doc["dump"] == text and doc["ring"] == "object"
