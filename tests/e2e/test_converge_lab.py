"""converge on the real lab with the live-cluster checks: a step that moves data waits
for a replication pass that started after the last push (the replication gate), and a
drained device leaves the rings only once safe-to-destroy says its data is on its
primaries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.test_health import ringmgr, tree_sums

CONVERGE = ("--json", "converge", "--max-move", "100", "--push", "--yes")


def _drop_device_from_config(path: Path, node: str, dev: str) -> None:
    """Remove ``dev`` from ``[nodes.NODE].devices`` and add a [converge] section."""
    text = path.read_text()
    head, sep, rest = text.partition(f"[nodes.{node}]\n")
    assert sep, f"no [nodes.{node}] in {path}"
    body, nxt, tail = rest.partition("\n[")
    body = re.sub(rf"(devices = \{{[^}}]*?)\s*,?\s*{dev} = [0-9.]+", r"\1", body)
    body = body.replace("{ ,", "{")
    path.write_text(head + sep + body + nxt + tail + "\n[converge]\nmax_move = 100\n")


@pytest.mark.lab(nodes=4, disks=2, part_power=6)
def test_converge_waits_for_replication_and_for_safe_to_destroy(lab_cluster):
    from swift.common.ring import RingBuilder

    lab = lab_cluster
    env = lab.env
    assert lab.put("c") in (201, 202)
    for i in range(20):
        assert lab.put("c", f"o{i}", b"x" * 50) == 201
    lab.replicate()
    _drop_device_from_config(Path(lab.config_path), "s04", "sdc")
    builder = Path(lab.builder_dir) / "object.builder"

    def s04_sdc():
        b = RingBuilder.load(str(builder))
        return [d for d in b.devs if d is not None and d["device"] == "sdc"
                and d["ip"] == lab.nodes[3].ip]

    # step 1: the drain to weight 0, pushed
    r = ringmgr(*CONVERGE, env=env)
    doc = json.loads(r.stdout)
    assert doc["written"], (r.stdout, r.stderr)
    assert s04_sdc() and s04_sdc()[0]["weight"] == 0

    # no replication pass since that push: the gate is closed, nothing written
    before = tree_sums(lab.builder_dir)
    r = ringmgr(*CONVERGE, env=env, check=1)
    doc = json.loads(r.stdout)
    assert doc["reason"] == "gate_closed" and not doc["written"], r.stdout
    assert "replication has not caught up with the last push" in doc["message"]
    assert "s04" in doc["message"]
    assert tree_sums(lab.builder_dir) == before

    # a pass later the device is drained and empty in the rings, but a file only it
    # holds (a partition its primaries do not have): the removal is held, by name
    lab.replicate()
    stray = (Path(lab.nodes[3].mount_root) / "sdc" / "objects" / "5" / "fff"
             / ("f" * 32) / "1700000000.00000.data")
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"only here")
    before = tree_sums(lab.builder_dir)
    r = ringmgr(*CONVERGE, env=env, check=1)
    doc = json.loads(r.stdout)
    assert not doc["written"] and doc["reason"] == "gate_closed", r.stdout
    assert f"{lab.nodes[3].ip}/sdc" in doc["message"] and "not yet safe to destroy" in doc["message"]
    assert "comparing s04/sdc" in r.stderr
    assert tree_sums(lab.builder_dir) == before and s04_sdc()

    # once it is gone (as replication would move it), safe-to-destroy says safe
    stray.unlink()
    r = ringmgr(*CONVERGE, env=env)
    doc = json.loads(r.stdout)
    assert doc["written"] and not s04_sdc(), (r.stdout, r.stderr)
    assert "comparing s04/sdc" in r.stderr
    for i in range(20):
        assert lab.get("c", f"o{i}") == (200, b"x" * 50)
