"""Both ways with swift's own tools: the real swift-ring-builder reads what ringmgr
writes, ringmgr reads what it writes, ring files are byte-identical, and the two
tools' directory locks exclude each other."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from swift.common.ring import Ring, RingBuilder

from tests.helpers.checksums import checksums
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import lock_held, make_cluster, swift_ring_builder_safe

SRB = shutil.which("swift-ring-builder")
pytestmark = pytest.mark.skipif(SRB is None, reason="swift-ring-builder not installed")


def srb(*args, cwd=None, name="swift-ring-builder"):
    exe = SRB
    if name == "swift-ring-builder-safe":
        exe = str(swift_ring_builder_safe(Path(cwd)))
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(autouse=True)
def hash_suffix(monkeypatch):
    import swift.common.utils as u

    monkeypatch.setattr(u, "HASH_PATH_SUFFIX", b"ringmgr-tests")


def test_builders_made_by_swift_ring_builder_are_read(tmp_path):
    d = tmp_path / "rings"
    d.mkdir()
    b = str(d / "object.builder")
    assert srb(b, "create", "6", "3", "0").returncode == 0
    for i, z in ((1, 1), (2, 2), (3, 3), (4, 1)):
        p = srb(b, "add", f"r1z{z}-127.0.9.{i}:6200/sdb", "100")
        assert p.returncode == 0, p.stdout
    assert srb(b, "rebalance").returncode in (0, 1)
    cfg = tmp_path / "ringmgr.toml"
    cfg.write_text(f'[cluster]\nbuilder_dir = "{d}"\n\n'
                   + "".join(f'[nodes.s0{i}]\nip = "127.0.9.{i}"\nzone = {z}\n\n'
                             for i, z in ((1, 1), (2, 2), (3, 3), (4, 1))))
    r = run_cli(cfg, "--json", "status")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["rings"]["object"]["devices"] == 4
    assert set(data["rings"]["object"]["nodes"]) == {"s01", "s02", "s03", "s04"}
    r = run_cli(cfg, "remove-node", "s04", "--yes")
    assert r.exit_code in (0, 1), r.output
    p = srb(b, "validate")
    assert p.returncode == 0, p.stdout


def test_what_ringmgr_writes_passes_swift_ring_builder(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0)
    assert run_cli(c, "remove-node", "s02", "--yes").exit_code in (0, 1)
    assert run_cli(c, "add-node", "s07", "--yes").exit_code in (0, 1)
    for ring in ("account", "container", "object", "object-1"):
        builder = str(c.builder_dir / f"{ring}.builder")
        p = srb(builder, "validate")
        assert p.returncode == 0, p.stdout + p.stderr
        listing = srb(builder, "list_parts", "127.0.9.7")
        assert listing.returncode == 0, listing.stdout
        # the same devices, in swift-ring-builder's own device table
        b = RingBuilder.load(builder)
        table = srb(builder)
        assert table.returncode in (0, 1), table.stdout
        lines = table.stdout.splitlines()
        start = next(i for i, ln in enumerate(lines) if ln.startswith("Devices:"))
        rows = [ln.split() for ln in lines[start + 1:]]
        listed = {(int(r[0]), r[3].rsplit(":", 1)[0], int(r[3].rsplit(":", 1)[1]), r[5])
                  for r in rows if r and r[0].isdigit()}
        assert listed == {(d["id"], d["ip"], d["port"], d["device"]) for d in b.devs if d}
        assert srb(builder, "search", "127.0.9.2").returncode == 2  # removed: not found
        ring_obj = Ring(str(c.builder_dir), ring_name=ring)
        assert {d["ip"] for d in ring_obj.devs if d} == {d["ip"] for d in b.devs if d}
        assert ring_obj.partition_count == 64


def test_ring_files_byte_identical_to_swift_ring_builders(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0)
    assert run_cli(c, "remove-node", "s05", "--yes").exit_code in (0, 1)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    for ring in ("account", "object", "object-1"):
        shutil.copy(c.builder_dir / f"{ring}.builder", theirs / f"{ring}.builder")
        p = srb(str(theirs / f"{ring}.builder"), "write_ring")
        assert p.returncode == 0, p.stdout
        assert (theirs / f"{ring}.ring.gz").read_bytes() == \
            (c.builder_dir / f"{ring}.ring.gz").read_bytes()


def test_builder_bytes_match_ringbuilder_save(tmp_path):
    """ringmgr pickles builders exactly as RingBuilder.save does (only atomically)."""
    c = make_cluster(tmp_path, min_part_hours=0)
    assert run_cli(c, "remove-node", "s05", "--yes").exit_code in (0, 1)
    b = RingBuilder.load(str(c.builder_dir / "object.builder"))
    b.save(str(tmp_path / "resaved.builder"))
    assert (tmp_path / "resaved.builder").read_bytes() == \
        (c.builder_dir / "object.builder").read_bytes()


def test_swift_ring_builder_safe_waits_for_ringmgrs_lock(tmp_path):
    """ringmgr holds swift's own directory lock: swift-ring-builder-safe cannot write
    meanwhile (it gives up after its 15 s lock timeout)."""
    c = make_cluster(tmp_path)
    with lock_held(c.builder_dir, by="ringmgr"):
        before = checksums(c.builder_dir)
        t = time.monotonic()
        p = srb(str(c.builder_dir / "object.builder"), "set_weight", "d0", "1",
                cwd=tmp_path, name="swift-ring-builder-safe")
        assert time.monotonic() - t >= 14
        assert p.returncode != 0
        assert checksums(c.builder_dir) == before
    p = srb(str(c.builder_dir / "object.builder"), "set_weight", "d0", "1",
            cwd=tmp_path, name="swift-ring-builder-safe")
    assert p.returncode == 0, p.stdout


def test_ringmgr_waits_for_swift_ring_builder_safes_lock(tmp_path, monkeypatch):
    """The other way: a lock taken the way swift-ring-builder-safe takes it stops ringmgr."""
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    c = make_cluster(tmp_path)
    with lock_held(c.builder_dir) as holder:
        p = subprocess.run(["ringmgr", "--config", str(c.config), "remove-node", "s01", "--yes"],
                           capture_output=True, text=True, env=dict(os.environ))
        assert p.returncode == 2
        assert f"pid {holder.pid}" in p.stderr
