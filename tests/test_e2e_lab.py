"""End to end on a real local Swift cluster (sim/lab): ring changes pushed over real
SSH to the nodes, replication run, and the data still there."""

import json
import subprocess

import pytest

pytestmark = pytest.mark.slow

OBJECTS = {f"o{i}": f"payload {i}".encode() * 50 for i in range(20)}


def ringmgr(lab, *args):
    return subprocess.run(["ringmgr", *args], capture_output=True, text=True, env=lab.env,
                          timeout=300)


def all_readable(lab) -> bool:
    return all(lab.get("e2e", name) == (200, body) for name, body in OBJECTS.items())


@pytest.mark.lab(nodes=4, disks=1)
def test_remove_push_replicate_rejoin(lab_cluster):
    lab = lab_cluster
    assert lab.put("e2e") in (201, 202)
    for name, body in OBJECTS.items():
        assert lab.put("e2e", name, body) == 201
    r = ringmgr(lab, "verify")
    assert r.returncode == 0, r.stdout + r.stderr

    r = ringmgr(lab, "ok-to-stop", "s04")
    assert r.returncode == 0, r.stdout + r.stderr

    r = ringmgr(lab, "--json", "remove-node", "s04", "--yes", "--push")
    assert r.returncode in (0, 1), r.stderr
    assert json.loads(r.stdout)["written"] is True
    r = ringmgr(lab, "verify")
    assert r.returncode == 0, r.stdout + r.stderr  # every node and the proxy have the new rings
    lab.replicate()
    assert all_readable(lab)

    r = ringmgr(lab, "--json", "rejoin-node", "s04", "--yes", "--push")
    assert r.returncode in (0, 1), r.stderr
    assert json.loads(r.stdout)["written"] is True
    assert ringmgr(lab, "verify").returncode == 0
    lab.replicate()
    assert all_readable(lab)
    hist = json.loads(ringmgr(lab, "--json", "history").stdout)["history"]
    assert [e["description"].split()[0] for e in hist][-2:] == ["remove", "rejoin"]
