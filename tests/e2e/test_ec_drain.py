"""Draining a node that holds erasure-coded fragments, on the real lab with its EC 4+2
policy (ring object-2): safe-to-destroy is "not yet" until the reconstructor has moved
every fragment index to its new primary, and the replication gate of the EC ring waits
for a reconstructor pass (``/recon/reconstruction/object``), not a replicator's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_health import ringmgr, tree_sums
from tests.e2e.test_safe_to_destroy import destroy

DRAIN = ("--json", "drain-node", "s04", "--max-move", "100", "--yes", "--push")


def fragments(lab, node, dev):
    """The EC fragment archives (``<ts>#<frag index>#d.data``) on the device."""
    return sorted((Path(lab.node(node).mount_root) / dev / "objects-2").glob("*/*/*/*.data"))


@pytest.mark.slow
@pytest.mark.lab(nodes=4, disks=2, part_power=6, ec=True)
def test_ec_drain_waits_for_the_reconstructor(lab_cluster):
    lab = lab_cluster
    assert lab.put("ec", policy="ec42") in (201, 202)
    bodies = {f"o{i}": f"fragment me {i} ".encode() * 500 for i in range(8)}
    for name, body in bodies.items():
        assert lab.put("ec", name, body) == 201
    held = fragments(lab, "s04", "sdc")
    assert held, "s04/sdc holds no EC fragment to check"

    # one device drained (weight 0: swift moves one replica of a partition per
    # rebalance, and a device holds at most one fragment of each): nothing assigned,
    # but its fragments are not on the new primaries yet: not yet, per partition,
    # primary and fragment index
    r = ringmgr("set-weight", "s04/sdc", "0", "--yes", "--push", env=lab.env)
    assert r.exit_code in (0, 1) and "written: change #1" in r.output, r.output
    code, doc = destroy(lab, "s04/sdc")
    dev = doc["safe_to_destroy"]["devices"]["sdc"]
    assert code == 1 and doc["reason"] == "risk" and not dev["assigned"], dev
    ec = [p for p in dev["problems"] if p["ring"] == "object-2"]
    assert ec and all(p["fragment"] in range(6) and p["state"] in ("missing", "differ")
                      for p in ec), ec
    assert all(not p["primary"].startswith("s04/sdc") for p in ec)

    # a replicator pass moves the replicated rings' data, not the fragments
    lab.replicate()
    code, doc = destroy(lab, "s04/sdc")
    problems = doc["safe_to_destroy"]["devices"]["sdc"]["problems"]
    assert code == 1 and problems and {p["ring"] for p in problems} == {"object-2"}, problems

    # the reconstructor moves each fragment index to its primary: safe
    lab.reconstruct()
    code, doc = destroy(lab, "s04/sdc")
    assert code == 0 and doc["safe_to_destroy"]["safe"] is True, doc["safe_to_destroy"]
    assert not fragments(lab, "s04", "sdc")    # reverted: the reconstructor removed them
    for name, body in bodies.items():
        assert lab.get("ec", name) == (200, body)

    # the gate of the EC ring: a drain step right after a push waits for the
    # replicators and the reconstructors, named per node with the times
    r = ringmgr(*DRAIN, env=lab.env, check=1)
    first = json.loads(r.stdout)
    assert first["reason"] == "replication_pending" and first["written"], r.stdout
    before = tree_sums(lab.builder_dir)
    r = ringmgr(*DRAIN, env=lab.env, check=1)
    doc = json.loads(r.stdout)
    assert doc["reason"] == "replication_wait" and not doc["written"], r.stdout
    pending = "\n".join(doc["replication_gate"]["pending"])
    for node in ("s01", "s02", "s03", "s04"):
        assert f"object reconstruction on {node} last started " in pending
        assert f"object replication on {node} last started " in pending
    assert " push of object-2 + 1 s ring reload (" in pending
    assert tree_sums(lab.builder_dir) == before

    # a replicator pass is not a reconstructor pass: the EC ring still waits
    lab.replicate()
    r = ringmgr(*DRAIN, env=lab.env, check=1)
    doc = json.loads(r.stdout)
    assert doc["reason"] == "replication_wait" and not doc["written"], r.stdout
    pending = doc["replication_gate"]["pending"]
    assert len(pending) == 4 and all(p.startswith("object reconstruction on s0")
                                     for p in pending), pending
    assert tree_sums(lab.builder_dir) == before

    lab.reconstruct()
    r = ringmgr(*DRAIN, env=lab.env)
    doc = json.loads(r.stdout)
    assert r.exit_code in (0, 1) and doc["written"], r.stdout
    assert doc["replication_gate"]["open"] is True
    for name, body in bodies.items():
        assert lab.get("ec", name) == (200, body)
