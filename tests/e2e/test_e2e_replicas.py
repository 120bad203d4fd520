"""After a node leaves the rings, its data is on the new primaries, not just readable.

Reads through the proxy succeed while any replica survives, so "every object reads
back" cannot tell a working replication pass from none.  Here the removed node's servers
are stopped and its disks emptied (a decommissioned node), one replication pass runs,
and every object is looked up on each of its primary nodes by the admin host's ring with
a direct HEAD to the object server (tests/helpers/replicas.py).  A ``sim/lab replicate``
that does nothing leaves the new primaries without the objects and fails these tests.
"""

import json
import subprocess

import pytest

from tests.helpers.replicas import account_of, missing_replicas, primary_ips, wipe_devices

pytestmark = pytest.mark.slow

OBJECTS = {f"o{i}": f"payload {i}".encode() * 50 for i in range(20)}


def ringmgr(lab, *args):
    return subprocess.run(["ringmgr", *args], capture_output=True, text=True, env=lab.env,
                          timeout=300)


def fill(lab) -> None:
    assert lab.put("rep", policy="gold") in (201, 202)
    for name, body in OBJECTS.items():
        assert lab.put("rep", name, body) == 201


def written(r) -> dict:
    assert r.returncode in (0, 1), r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["written"] is True, report
    return report


def decommission_and_check(lab, name: str, *, moved: bool = True) -> None:
    """``name`` is in no ring: stop it, empty its disks, replicate once; every object
    must then be on each of its primaries (none of them ``name``).  ``moved``: the
    last ring change left some primary without its replica (no pass ran since)."""
    account = account_of(lab)
    gone = lab.node(name).ip
    assert all(gone not in primary_ips(lab.builder_dir, account, "rep", o) for o in OBJECTS)
    lab.stop_node(name)
    wipe_devices(lab, name)
    if moved:
        before = missing_replicas(lab.builder_dir, account, "rep", OBJECTS)
        assert before, "no primary lacked a replica before replication: nothing shown"
    lab.replicate()
    assert missing_replicas(lab.builder_dir, account, "rep", OBJECTS) == []
    assert all(lab.get("rep", o) == (200, body) for o, body in OBJECTS.items())


@pytest.mark.lab(nodes=4, disks=1)
def test_removed_node_replicas_are_on_every_new_primary(lab_cluster):
    lab = lab_cluster
    fill(lab)
    lab.replicate()
    assert missing_replicas(lab.builder_dir, account_of(lab), "rep", OBJECTS) == []
    written(ringmgr(lab, "--json", "remove-node", "s04", "--yes", "--push"))
    assert ringmgr(lab, "verify").returncode == 0
    decommission_and_check(lab, "s04")


@pytest.mark.lab(nodes=4, disks=1)
def test_drained_node_replicas_are_on_every_new_primary(lab_cluster):
    """Each drain step pushed and replicated while s04 still serves, as the runbook
    says; after the last step (the removal, replicated too) s04 is decommissioned and
    one more pass runs."""
    lab = lab_cluster
    fill(lab)
    for _ in range(10):
        r = ringmgr(lab, "--json", "drain-node", "s04", "--max-move", "40", "--yes", "--push")
        report = json.loads(r.stdout)
        if r.returncode == 0 and report.get("already_removed"):
            break
        written(r)
        lab.replicate()
    else:
        pytest.fail("the drain did not finish")
    decommission_and_check(lab, "s04", moved=False)
