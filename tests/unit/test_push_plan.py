"""The pure part of push/verify: per-ring decisions, node refusals, verify states, and
the node-side script's ring parser checked against swift's own reader."""

import json
import subprocess
import sys

import pytest
from swift.common.ring import RingBuilder, RingData

from ringmgr.ops.push import (REMOTE_SCRIPT, LocalRing, PushReport, HostResult, RemoteRing,
                              RemoteState, parse_inspect, plan_host, ring_action, verify_host)

L = LocalRing("object.ring.gz", "new", 7, 1000)


def R(md5="old", version=5, error=None):
    return RemoteRing("object.ring.gz", md5, version, 900, error)


@pytest.mark.parametrize("remote, force, action, reason", [
    (None, False, "upload", "missing"),
    (R(md5="new", version=7), False, "unchanged", "same md5"),
    (R(version=5), False, "upload", "stale"),
    (R(version=7), False, "upload", "stale"),          # same version, other bytes
    (R(version=None), False, "upload", "stale"),       # version unknown: not provably newer
    (R(md5="x", version=None, error="corrupt: CRC check failed"), False, "upload", "corrupt"),
    (R(version=9, error="corrupt: truncated"), False, "upload", "corrupt"),
    (R(version=9), True, "upload", "older-forced"),
])
def test_ring_action(remote, force, action, reason):
    a = ring_action(L, remote, force)
    assert (a.action, a.reason) == (action, reason)


def test_newer_ring_refused_with_the_fix():
    a = ring_action(L, R(version=9), False)
    assert a.action == "refused"
    assert "version 9 > 7" in a.reason and "--force" in a.reason


LOCAL = {"account.ring.gz": LocalRing("account.ring.gz", "a", 3, 4000),
         "object.ring.gz": LocalRing("object.ring.gz", "o", 3, 6000)}


@pytest.mark.parametrize("state, error", [
    (RemoteState(True, {}, True, 10_000), None),
    (RemoteState(True, {}, True, 9_999), "not enough space"),
    (RemoteState(True, {}, False, 10**9), "not writable"),
    (RemoteState(False, {}, False, None), "does not exist"),
    # nothing to upload: a full or read-only dir is no reason to fail
    (RemoteState(True, {"account.ring.gz": RemoteRing("account.ring.gz", "a", 3, 4000),
                        "object.ring.gz": RemoteRing("object.ring.gz", "o", 3, 6000)},
                 False, 0), None),
])
def test_plan_host_refuses_the_whole_node(state, error):
    plan = plan_host(LOCAL, state, swift_dir="/etc/swift")
    if error is None:
        assert plan.error is None
    else:
        assert error in plan.error and "/etc/swift" in plan.error


def test_plan_host_splits_uploads_unchanged_refused():
    state = RemoteState(True, {"account.ring.gz": RemoteRing("account.ring.gz", "a", 3, 4000),
                               "object.ring.gz": RemoteRing("object.ring.gz", "z", 8, 1)})
    plan = plan_host(LOCAL, state)
    assert plan.unchanged == ["account.ring.gz"] and plan.uploads == []
    assert list(plan.refused) == ["object.ring.gz"]
    plan = plan_host(LOCAL, state, force=True)
    assert plan.uploads == ["object.ring.gz"] and not plan.refused


def test_verify_host_states():
    state = RemoteState(True, {
        "account.ring.gz": RemoteRing("account.ring.gz", "a", 3, 1),
        "object.ring.gz": RemoteRing("object.ring.gz", "x", 2, 1),
        "object-1.ring.gz": RemoteRing("object-1.ring.gz", "y", 1, 1)})
    local = {**LOCAL, "container.ring.gz": LocalRing("container.ring.gz", "c", 3, 1)}
    assert verify_host(local, state) == {"account.ring.gz": "ok", "container.ring.gz": "missing",
                                         "object.ring.gz": "stale", "object-1.ring.gz": "extra"}
    state = RemoteState(True, {
        "account.ring.gz": RemoteRing("account.ring.gz", "x", 4, 1),
        "object.ring.gz": RemoteRing("object.ring.gz", None, None, 3, "corrupt: bad")})
    assert verify_host(LOCAL, state) == {"account.ring.gz": "newer", "object.ring.gz": "corrupt"}


def test_parse_inspect_sample():
    s = parse_inspect('noise from a login script\n{"dir": "/etc/swift", "exists": true, '
                      '"rings": {"object.ring.gz": {"md5": "9e1", "size": 812345, '
                      '"version": 7, "error": null}}, "removed_tmp": '
                      '[".object.ring.gz.ringmgr-1a2b.tmp"], "writable": true, "free": 1024}')
    assert s.rings["object.ring.gz"] == RemoteRing("object.ring.gz", "9e1", 7, 812345, None)
    assert s.removed_tmp == (".object.ring.gz.ringmgr-1a2b.tmp",) and s.free == 1024


def test_report_json_and_table_name_the_failed_nodes():
    rep = PushReport("push", LOCAL, [
        HostResult("s01", "10.0.0.1", ok=True, updated=["object.ring.gz"],
                   unchanged=["account.ring.gz"], seconds=0.5),
        HostResult("s02", "10.0.0.2", error="cannot connect", seconds=1.0)])
    assert not rep.ok and rep.failed == ["s02"] and rep.written
    assert rep.retry_command() == "ringmgr push s02"
    j = json.loads(json.dumps(rep.to_json()))
    assert j["hosts"]["s02"]["error"] == "cannot connect" and j["retry"] == "ringmgr push s02"
    table = rep.render_table().splitlines()
    assert table[0].split() == ["node", "updated", "unchanged", "time", "error"]
    assert table[1].split()[:3] == ["s01", "object", "account"]


def test_retry_command_quotes_node_names():
    """A node named "rack 1 s01" in the config must come back as one argument."""
    rep = PushReport("push", LOCAL, [HostResult("rack 1 s01", "10.0.0.1", error="down")])
    assert rep.retry_command() == "ringmgr push 'rack 1 s01'"


# -- the node-side script, run locally on real rings ----------------------------------

def _ring(tmp_path, name, fmt, changes=0):
    b = RingBuilder(6, 3, 0)
    for i in range(4):
        b.add_dev({"region": 1, "zone": i, "ip": f"10.0.0.{i}", "port": 6200,
                   "device": "sdb", "weight": 1.0})
    b.rebalance(seed=1)
    for _ in range(changes):
        b.set_dev_weight(0, b.devs[0]["weight"] + 1)
        b.rebalance(seed=1)
    path = tmp_path / name
    b.get_ring().save(str(path), format_version=fmt)
    return path


def _inspect_locally(d, cleanup=True):
    p = subprocess.run([sys.executable, "-", "inspect", json.dumps({"dir": str(d),
                                                                   "cleanup": cleanup})],
                       input=REMOTE_SCRIPT, capture_output=True, text=True, check=True)
    return parse_inspect(p.stdout)


def test_node_script_reads_versions_like_swift(tmp_path):
    v1 = _ring(tmp_path, "object.ring.gz", 1, changes=2)
    v2 = _ring(tmp_path, "account.ring.gz", 2)
    bad = tmp_path / "container.ring.gz"
    bad.write_bytes(v1.read_bytes()[:-40])          # truncated: gzip CRC/length lost
    (tmp_path / ".object.ring.gz.ringmgr-dead.tmp").write_bytes(b"half")
    (tmp_path / "object.builder").write_bytes(b"not a ring")
    s = _inspect_locally(tmp_path)
    assert s.rings["object.ring.gz"].version == RingData.load(str(v1)).version
    assert s.rings["account.ring.gz"].version == RingData.load(str(v2)).version
    assert s.rings["object.ring.gz"].version != s.rings["account.ring.gz"].version
    assert s.rings["container.ring.gz"].error.startswith("corrupt")
    assert set(s.rings) == {"object.ring.gz", "account.ring.gz", "container.ring.gz"}
    assert s.removed_tmp == (".object.ring.gz.ringmgr-dead.tmp",)
    assert not (tmp_path / ".object.ring.gz.ringmgr-dead.tmp").exists()
    assert s.writable and s.free > 0


def test_node_script_without_cleanup_keeps_temp_files(tmp_path):
    (tmp_path / ".object.ring.gz.ringmgr-dead.tmp").write_bytes(b"half")
    s = _inspect_locally(tmp_path, cleanup=False)
    assert s.removed_tmp == () and (tmp_path / ".object.ring.gz.ringmgr-dead.tmp").exists()


def test_admin_side_reads_the_same_version_as_swift(tmp_path):
    from ringmgr.errors import BuilderError
    from ringmgr.ops.push import load_local_rings

    v1 = _ring(tmp_path, "object.ring.gz", 1, changes=2)
    v2 = _ring(tmp_path, "account.ring.gz", 2, changes=1)
    local = load_local_rings(tmp_path, None)
    assert local["object.ring.gz"].version == RingData.load(str(v1)).version
    assert local["account.ring.gz"].version == RingData.load(str(v2)).version
    assert local["object.ring.gz"].data == v1.read_bytes()
    v2.write_bytes(v2.read_bytes()[:-8])
    with pytest.raises(BuilderError, match="account.ring.gz is not a valid ring"):
        load_local_rings(tmp_path, None)
    with pytest.raises(BuilderError, match="container.ring.gz does not exist"):
        load_local_rings(tmp_path, ("object", "container"))
