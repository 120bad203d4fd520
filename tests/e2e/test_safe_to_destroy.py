"""safe-to-destroy: the pure comparisons (tables), the REPLICATE answer parser, and the
verdict on a real lab cluster (data on a removed device, replication, a copy deleted
behind swift's back, a primary stopped)."""

import json
import pickle
from pathlib import Path

import pytest

from ringmgr.ops import destroy_compare as cmp
from ringmgr.ops.replicate_client import parse_hashes
from tests.helpers import json_schema as js
from tests.helpers.cli import run_cli


@pytest.mark.parametrize("local, remote, want", [
    ({"9e9": "a"}, {"9e9": "a"}, []),
    ({"9e9": "a"}, {}, ["9e9"]),
    ({"9e9": "a", "0af": "b"}, {"9e9": "a", "0af": "c"}, ["0af"]),
    ({"9e9": None}, {}, []),                       # an empty suffix: nothing to lose
    ({"9e9": "a"}, {"9e9": "a", "fff": "x"}, []),  # more on the primary is fine
])
def test_differing_suffixes(local, remote, want):
    assert cmp.differing_suffixes(local, remote) == want


@pytest.mark.parametrize("remote, frag, want", [
    ({"9e9": {None: "d", 2: "f2"}, "0af": {None: "t"}}, 2, (True, [])),
    ({"9e9": {None: "d", 2: "f2"}}, 2, (True, ["0af"])),          # the tombstone is missing
    ({"0af": {None: "t"}}, 5, (True, [])),                         # only the tombstone is its
    ({}, 5, (True, ["0af"])),
    ({"9e9": {None: "d", 2: "x"}, "0af": {None: "t"}}, 2, (True, ["9e9"])),
])
def test_ec_differences_per_primary(remote, frag, want):
    local = {"9e9": {None: "d", 2: "f2"}, "0af": {None: "t"}}
    assert cmp.ec_differences(local, remote, frag) == want
    assert cmp.ec_differences({"9e9": {None: "d", 2: "f2"}}, {}, 5) == (False, [])


LOCAL_DB = {"max_row": 5, "hash": "h1", "id": "L", "put_timestamp": "0000000002.00000",
            "delete_timestamp": "0", "metadata": json.dumps({"X-K": ["v", "0000000003.00000"]})}


@pytest.mark.parametrize("remote, problems", [
    ({**LOCAL_DB, "point": -1, "id": "R"}, 0),                      # same rows (hash)
    ({**LOCAL_DB, "hash": "h2", "point": 5}, 0),                    # merged up to max_row
    ({**LOCAL_DB, "hash": "h2", "point": 4}, 1),                    # one row not merged
    ({**LOCAL_DB, "put_timestamp": "0000000001.00000", "point": 5}, 1),
    ({**LOCAL_DB, "metadata": "", "point": 5}, 1),                  # metadata not there
    (None, 1),                                                       # no such database
])
def test_db_differences(remote, problems):
    assert len(cmp.db_differences(LOCAL_DB, remote)) == problems


def test_replicate_answers_are_data_only():
    assert parse_hashes(pickle.dumps({"9e9": "a", "0af": {None: "x", 1: "y"}}, 2)) == \
        {"9e9": "a", "0af": {None: "x", 1: "y"}}

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError):
        parse_hashes(pickle.dumps(Evil(), 2))
    with pytest.raises(ValueError):
        parse_hashes(pickle.dumps(["not", "a", "dict"], 2))


# -- on the lab -----------------------------------------------------------------------

def destroy(lab, target):
    """safe-to-destroy in process (its --json checked against the schema)."""
    r = run_cli(None, "safe-to-destroy", target, "--json", env=lab.env)
    doc = json.loads(r.stdout)
    assert not js.errors("safe-to-destroy", doc)
    assert doc["exit_code"] == r.exit_code
    return r.exit_code, doc


def ringmgr_ok(lab, *args):
    r = run_cli(None, *args, env=lab.env)
    assert r.exit_code in (0, 1), r.output
    return r


def object_files(lab, node, dev="sdb"):
    root = Path(lab.node(node).mount_root) / dev / "objects"
    return sorted(root.glob("*/*/*/*.data"))


@pytest.mark.slow
@pytest.mark.lab(nodes=4, disks=1, part_power=6)
def test_removed_device_safe_only_when_every_primary_has_its_data(lab_cluster):
    lab = lab_cluster
    assert lab.put("keep") in (201, 202)
    for i in range(8):
        assert lab.put("keep", f"o{i}", f"body {i}".encode() * 10) == 201

    code, doc = destroy(lab, "s01")
    dev = doc["safe_to_destroy"]["devices"]["sdb"]
    assert code == 1 and dev["assigned"]["object"] > 0      # still in the rings

    ringmgr_ok(lab, "remove-device", "s01", "sdb", "--yes", "--push")
    held = object_files(lab, "s01")
    assert held, "s01 held no object to check"
    code, doc = destroy(lab, "s01/sdb")
    dev = doc["safe_to_destroy"]["devices"]["sdb"]
    assert code == 1 and doc["reason"] == "risk", doc
    assert not dev["assigned"]
    # the new primaries do not have the data yet: named per partition and primary
    assert {p["state"] for p in dev["problems"]} <= {"missing", "differ"}
    assert any(p["ring"] == "object" for p in dev["problems"])

    lab.replicate()
    code, doc = destroy(lab, "s01")
    assert code == 0, doc["safe_to_destroy"]
    assert doc["safe_to_destroy"]["safe"] is True
    assert object_files(lab, "s01") == held     # the check itself removed nothing

    # one copy of one object goes missing on a primary, behind swift's back (no
    # hashes.invalid entry): the rehash sees it
    victim = held[0]
    part, suffix, obj_hash = victim.parts[-4], victim.parts[-3], victim.parts[-2]
    others = [p for n in ("s02", "s03", "s04") for p in object_files(lab, n)
              if p.parts[-2] == obj_hash]
    assert others
    others[0].unlink()
    owner = next(n.name for n in lab.nodes if str(others[0]).startswith(n.mount_root))
    code, doc = destroy(lab, "s01")
    problems = doc["safe_to_destroy"]["devices"]["sdb"]["problems"]
    assert code == 1
    assert [(p["ring"], p["partition"], p["primary"], p["suffixes"]) for p in problems] == \
        [("object", int(part), f"{owner}/sdb", 1)], problems
    assert suffix in problems[0]["detail"]

    # a primary that does not answer: cannot tell (exit 2), named
    down = next(n for n in ("s02", "s03", "s04") if n != owner)
    lab.stop_node(down)
    try:
        code, doc = destroy(lab, "s01")
    finally:
        lab.start_node(down)
    assert code == 2 and doc["reason"] == "failed"
    assert down in doc["errors"][0]
    unknown = [p for p in doc["safe_to_destroy"]["devices"]["sdb"]["problems"]
               if p["state"] == "unknown"]
    assert unknown and all(p["primary"] == f"{down}/sdb" for p in unknown)


@pytest.mark.slow
@pytest.mark.lab(nodes=4, disks=1, part_power=6)
def test_drain_node_removes_the_devices_only_once_they_are_safe_to_destroy(lab_cluster):
    lab = lab_cluster
    assert lab.put("d") in (201, 202)
    for i in range(6):
        assert lab.put("d", f"o{i}", b"x" * 100) == 201
    args = ["drain-node", "s04", "--max-move", "100", "--yes", "--push", "--json"]
    r = run_cli(None, *args, env=lab.env)      # weight 0, rebalanced, pushed
    assert r.exit_code == 1 and json.loads(r.stdout)["reason"] == "replication_pending"
    held = object_files(lab, "s04")
    assert held
    builders = sorted(Path(lab.builder_dir).glob("*.builder"))
    before = {p.name: p.read_bytes() for p in builders}

    # no replication yet (past the replication gate, which would refuse first): the
    # removal step is refused, nothing written
    r = run_cli(None, *args, "--no-replication-check", env=lab.env)
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["reason"] == "risk", r.output
    assert doc["written"] is False and "not yet safe to destroy s04" in doc["warnings"][-1]
    assert doc["safe_to_destroy"]["verdict"] == "not_yet"
    assert {p.name: p.read_bytes() for p in builders} == before

    lab.replicate()
    r = run_cli(None, *args, env=lab.env)
    doc = json.loads(r.stdout)
    assert r.exit_code in (0, 1) and doc["written"] is True, r.output
    assert doc["safe_to_destroy"]["verdict"] == "safe"
    status = json.loads(run_cli(None, "status", "--json", env=lab.env).stdout)
    assert all("s04" not in ring["nodes"] for ring in status["rings"].values())
    assert all(lab.get("d", f"o{i}") == (200, b"x" * 100) for i in range(6))


@pytest.mark.slow
@pytest.mark.lab(nodes=4, disks=1, part_power=6)
def test_a_dead_node_cannot_tell_naming_its_servers(lab_cluster):
    lab = lab_cluster
    assert lab.put("dead") in (201, 202)
    for i in range(6):
        assert lab.put("dead", f"o{i}", b"y" * 100) == 201
    ringmgr_ok(lab, "remove-node", "s04", "--yes", "--push")
    held = object_files(lab, "s04")
    assert held

    # its servers are down (its disks and SSH stay): what it holds is listed, but
    # cannot be compared: cannot tell, once per server, naming the node; no partition
    # is reported as if a primary had failed
    lab.stop_node("s04")
    try:
        code, doc = destroy(lab, "s04")
    finally:
        lab.start_node("s04")
    dev = doc["safe_to_destroy"]["devices"]["sdb"]
    assert code == 2 and doc["reason"] == "failed" and dev["verdict"] == "cannot_tell", doc
    assert dev["partitions"]["objects"] > 0 and not dev["problems"]
    ports = {e.split(" server ")[0]: e for e in dev["errors"]}
    # (each server named once, for those of whose data s04 holds some)
    assert "s04's object" in ports and len(ports) == len(dev["errors"]), dev["errors"]
    assert set(ports) <= {"s04's object", "s04's account", "s04's container"}
    assert all("does not answer (Connection refused)" in e for e in dev["errors"])
    assert "cannot tell whether s04 is safe to destroy: s04's " in doc["errors"][0]

    # the same node with its servers running: the data is compared
    code, doc = destroy(lab, "s04")
    assert code == 1 and doc["safe_to_destroy"]["devices"]["sdb"]["problems"]
    lab.replicate()
    code, doc = destroy(lab, "s04")
    assert code == 0, doc["safe_to_destroy"]
    assert object_files(lab, "s04") == held


@pytest.mark.parametrize("target, words", [
    ("s99", "unknown node 's99'"),
    ("s01/sdz", "s01 has no device 'sdz'"),
])
def test_bad_targets_are_one_line_errors(tmp_path, target, words):
    from tests.helpers.ringfactory import make_cluster

    c = make_cluster(tmp_path)
    before = {p.name: p.read_bytes() for p in c.builder_dir.iterdir() if p.is_file()}
    r = run_cli(c, "safe-to-destroy", target)
    assert r.exit_code == 2 and words in r.output
    assert r.output.count("ringmgr: error:") == 1 and "Traceback" not in r.output
    assert {p.name: p.read_bytes() for p in c.builder_dir.iterdir() if p.is_file()} == before


def test_a_node_that_cannot_be_listed_is_cannot_tell(tmp_path):
    from tests.helpers.ringfactory import make_cluster

    c = make_cluster(tmp_path)   # its hosts have names that do not resolve
    r = run_cli(c, "safe-to-destroy", "s01", "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 2 and doc["reason"] == "failed"
    assert "cannot list s01's devices over SSH" in doc["errors"][0]
