"""push --canary and verify --live: the pure parts (canary choice, waves, swift's
partition hash, moved partitions) and rollouts on a real lab cluster: one that goes
through, one whose canary proxy keeps routing by the old ring, one whose canary cannot
write its swift_dir."""

import copy
import hashlib
import json
from pathlib import Path

import pytest

from ringmgr.ops import endpoints as ep
from ringmgr.ops.rollout import choose_canaries, waves_of
from tests.helpers import json_schema as js
from tests.helpers.cli import run_cli
from tests.helpers.mounts import read_only


def test_canaries_take_one_proxy_first_then_nodes():
    hosts = dict.fromkeys(["s01", "s02", "s03", "p01", "p02"])
    assert choose_canaries(hosts, 1, {"p01", "p02"}) == ["p01"]
    assert choose_canaries(hosts, 3, {"p01", "p02"}) == ["p01", "s01", "s02"]
    assert choose_canaries(hosts, 9, {"p01", "p02"}) == ["p01", "s01", "s02", "s03", "p02"]
    assert choose_canaries(dict.fromkeys(["s01", "s02"]), 1, set()) == ["s01"]
    assert waves_of(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_partition_of_is_swifts_hash_path(monkeypatch):
    import swift.common.utils as u

    monkeypatch.setattr(u, "HASH_PATH_PREFIX", b"pre")
    monkeypatch.setattr(u, "HASH_PATH_SUFFIX", b"suf")
    import struct

    for names in [("AUTH_a",), ("AUTH_a", "c"), ("AUTH_a", "c", "o/with/slash")]:
        want = struct.unpack_from(">I", u.hash_path(*names, raw_digest=True))[0] >> 22
        assert ep.partition_of((b"pre", b"suf"), 22, *names) == want


def test_moved_partitions_and_probe_names():
    from swift.common.ring import RingBuilder

    b = RingBuilder(6, 3, 0)
    for i in range(4):
        b.add_dev({"id": i, "region": 1, "zone": i, "ip": f"10.0.0.{i}", "port": 6200,
                   "device": "sdb", "weight": 100})
    b.rebalance(seed=1)
    old = b.get_ring()
    assert ep.moved_partitions(old, b.get_ring()) == set()
    nb = copy.deepcopy(b)
    nb.set_dev_weight(0, 10)
    nb.pretend_min_part_hours_passed()
    nb.rebalance(seed=2)
    new = nb.get_ring()
    moved = ep.moved_partitions(old, new)
    truth = {p for p in range(64) if ep.primaries(old, p) != ep.primaries(new, p)}
    assert moved == truth and moved
    names, part = ep.find_probe("object", new._part_shift, moved, (b"x", b"y"))
    assert part in moved and ep.partition_of((b"x", b"y"), new._part_shift, *names) == part
    # a device's address changing moves no partition but changes every endpoint on it
    ib = copy.deepcopy(nb)
    ib.devs[1]["ip"] = "10.0.0.99"
    assert ep.moved_partitions(new, ib.get_ring()) == {
        p for p in range(64) if any(d == ("10.0.0.1", 6200, "sdb") for d in ep.primaries(new, p))}


# -- on the lab -----------------------------------------------------------------------

def run(lab, *args):
    r = run_cli(None, *args, "--json", env=lab.env)
    doc = json.loads(r.stdout)
    assert not js.errors(args[0], doc), js.errors(args[0], doc)
    return r.exit_code, doc


def ring_md5s(d: str) -> dict:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(Path(d).glob("*.ring.gz"))}


def change_rings(lab):
    r = run_cli(None, "set-weight", "s01", "40", "--yes", "--no-push", env=lab.env)
    assert r.exit_code in (0, 1), r.output
    return ring_md5s(lab.builder_dir)


@pytest.mark.slow
@pytest.mark.lab(nodes=4, disks=1, part_power=6)
def test_canary_rollout_proves_the_proxy_routes_by_the_new_ring(lab_cluster):
    lab = lab_cluster
    new = change_rings(lab)
    code, doc = run(lab, "push", "--canary", "2", "--dry-run")
    assert code == 0 and doc["written"] is False
    assert [w["hosts"] for w in doc["rollout"]["waves"]] == [["proxy", "s01"],
                                                            ["s02", "s03", "s04"]]
    assert all(ring_md5s(n.swift_dir) != new for n in lab.nodes)
    code, doc = run(lab, "push", "--canary", "2")
    assert code == 0, doc
    ro = doc["rollout"]
    canary, *waves = ro["waves"]
    assert canary["kind"] == "canary" and canary["hosts"] == ["proxy", "s01"]
    assert canary["confirmed"] == {"proxy": "ok", "s01": "ok"}
    assert {e["ring"] for e in canary["endpoints"]} == {"account", "container", "object"}
    assert all(e["ok"] and e["moved"] for e in canary["endpoints"]), canary["endpoints"]
    assert [w["hosts"] for w in waves] == [["s02", "s03", "s04"]]
    for n in lab.nodes:
        assert ring_md5s(n.swift_dir) == new
    code, doc = run(lab, "verify", "--live")
    assert code == 0 and set(doc["live"]["hosts"]) == {"s01", "s02", "s03", "s04"}

    # [cluster].canary makes a ring change's --push a confirmed rollout too
    cfg = Path(lab.config_path)
    cfg.write_text(cfg.read_text().replace("[cluster]\n", "[cluster]\ncanary = 1\n", 1))
    r = run_cli(None, "set-weight", "s02", "60", "--yes", "--push", "--json", env=lab.env)
    doc = json.loads(r.stdout)
    assert r.exit_code in (0, 1) and doc["push"]["ok"] is True, r.output
    canary = doc["push"]["rollout"]["waves"][0]
    assert canary["hosts"] == ["proxy"] and all(e["ok"] for e in canary["endpoints"])
    assert canary["endpoints"]
    assert all(ring_md5s(n.swift_dir) == ring_md5s(lab.builder_dir) for n in lab.nodes)

    lab.stop_node("s03")      # recon does not answer: verify --live cannot tell
    try:
        code, doc = run(lab, "verify", "--live")
    finally:
        lab.start_node("s03")
    assert code == 2 and list(doc["live"]["unreachable"]) == ["s03"]


@pytest.mark.slow
@pytest.mark.lab(nodes=4, disks=1, part_power=6, proxy_ring_reload=900)
def test_failed_canaries_stop_the_rollout_and_the_rest_keep_the_old_rings(lab_cluster):
    lab = lab_cluster
    old = ring_md5s(lab.node("s01").swift_dir)
    new = change_rings(lab)
    assert new != old

    # 1. the canary's swift_dir is read-only: the push fails there, nothing else moves
    with read_only(lab.node("s01").swift_dir):
        code, doc = run(lab, "push", "--canary", "1", "s01", "s02", "s03", "s04")
    assert code == 2, doc
    ro = doc["rollout"]
    assert len(ro["waves"]) == 1 and ro["waves"][0]["hosts"] == ["s01"]
    assert "not writable" in ro["stopped"]
    assert ro["pending"] == ["s01", "s02", "s03", "s04"]
    assert "ringmgr rollback" in doc["errors"][0] and "push s01 s02 s03 s04" in doc["errors"][0]
    for n in lab.nodes:
        assert ring_md5s(n.swift_dir) == old, n.name

    # 2. the canary proxy has the file but still routes by the old ring (it re-reads
    #    rings only every 900 s): stopped after the canary, the nodes keep the old rings
    code, doc = run(lab, "push", "--canary", "1")
    assert code == 2, doc
    ro = doc["rollout"]
    canary = ro["waves"][0]
    assert canary["hosts"] == ["proxy"] and canary["confirmed"] == {"proxy": "ok"}
    bad = [e for e in canary["endpoints"] if not e["ok"]]
    assert bad and all(e["moved"] for e in bad)
    assert "old ring" in ro["stopped"]
    assert ro["pending"] == ["s01", "s02", "s03", "s04"]
    assert ring_md5s(lab.proxy_swift_dir) == new
    for n in lab.nodes:
        assert ring_md5s(n.swift_dir) == old, n.name

    # verify says so: over SSH and from the servers' own recon
    code, doc = run(lab, "verify")
    assert code == 1 and sorted(doc["hosts"]) == ["proxy", "s01", "s02", "s03", "s04"]
    assert doc["hosts"]["proxy"]["ok"] is True
    assert all(doc["hosts"][n]["verify"]["object.ring.gz"] == "stale"
               for n in ("s01", "s02", "s03", "s04"))
    code, doc = run(lab, "verify", "--live")
    assert code == 1
    assert all(doc["live"]["hosts"][n]["object"] == "differs"
               for n in ("s01", "s02", "s03", "s04"))

    # 3. a later wave fails (waves of one host, [ssh].parallel = 1): the hosts after it
    #    keep the old rings
    cfg = Path(lab.config_path)
    cfg.write_text(cfg.read_text().replace("parallel = 16", "parallel = 1", 1))
    with read_only(lab.node("s03").swift_dir):
        code, doc = run(lab, "push", "--canary", "1", "s01", "s02", "s03", "s04")
    assert code == 2, doc
    ro = doc["rollout"]
    assert [(w["kind"], w["hosts"], w["ok"]) for w in ro["waves"]] == [
        ("canary", ["s01"], True), ("wave", ["s02"], True), ("wave", ["s03"], False)]
    assert ro["pending"] == ["s03", "s04"] and ro["stopped"].startswith("wave 2 failed")
    assert "push s03 s04" in doc["errors"][0]
    assert [ring_md5s(lab.node(n).swift_dir) == new for n in ("s01", "s02", "s03", "s04")] \
        == [True, True, False, False]


def with_canary_containers(lab, table: str) -> None:
    cfg = Path(lab.config_path)
    text = cfg.read_text()
    if "canary_containers" in text:
        text = "\n".join(x for x in text.splitlines() if not x.startswith("canary_containers"))
    cfg.write_text(text.replace("[cluster]\n", f"[cluster]\ncanary_containers = {table}\n", 1))


@pytest.mark.slow
@pytest.mark.lab(nodes=4, disks=1, part_power=6)
def test_canary_asks_the_proxy_about_object_n_rings_through_a_container_of_the_policy(
        lab_cluster):
    lab = lab_cluster
    # without a container of policy 1 the proxy cannot be asked about object-1: md5 only
    change_rings(lab)
    code, doc = run(lab, "push", "--canary", "1")
    assert code == 0, doc
    assert {e["ring"] for e in doc["rollout"]["waves"][0]["endpoints"]} == {
        "account", "container", "object"}
    assert any(n.startswith("object-1: confirmed by md5 only") for n in doc["rollout"]["notes"])

    assert lab.put("canary-silver", policy="silver") in (201, 202)
    assert lab.put("canary-gold") in (201, 202)
    with_canary_containers(lab, '{ "object-1" = "AUTH_test/canary-silver" }')
    r = run_cli(None, "set-weight", "s02", "40", "--yes", "--no-push", env=lab.env)
    assert r.exit_code in (0, 1), r.output
    code, doc = run(lab, "push", "--canary", "1")
    assert code == 0, doc
    checks = {e["ring"]: e for e in doc["rollout"]["waves"][0]["endpoints"]}
    assert set(checks) == {"account", "container", "object", "object-1"}
    e = checks["object-1"]
    assert e["ok"] and e["moved"] and e["path"].startswith("AUTH_test/canary-silver/"), e
    assert len(e["expected"]) == 2      # silver: one replica fewer than gold's 3
    assert not any(n.startswith("object-1:") for n in doc["rollout"]["notes"])

    # a container of another policy: the proxy's answer is for policy 0, not object-1's;
    # the rollout stops after the canary
    with_canary_containers(lab, '{ "object-1" = "AUTH_test/canary-gold" }')
    r = run_cli(None, "set-weight", "s03", "40", "--yes", "--no-push", env=lab.env)
    assert r.exit_code in (0, 1), r.output
    code, doc = run(lab, "push", "--canary", "1")
    assert code == 2, doc
    bad = [e for e in doc["rollout"]["waves"][0]["endpoints"] if not e["ok"]]
    assert [e["ring"] for e in bad] == ["object-1"], bad
    assert "by storage policy 0, not 1" in bad[0]["detail"]
    assert doc["rollout"]["pending"] == ["s01", "s02", "s03", "s04"]


@pytest.mark.parametrize("edit, words", [
    (("[cluster]\n", "[cluster]\ncanary = -1\n"), "cluster.canary: must not be negative"),
    (("[cluster]\n", "[cluster]\ncanary = \"2\"\n"), "cluster.canary: must be an integer, not a string"),
    (None, "proxies.p01.endpoints_url: must be an http:// or https:// URL"),
    (("[cluster]\n", '[cluster]\ncanary_containers = { object = "a/c" }\n'),
     "cluster.canary_containers.object: not an object-N ring name"),
    (("[cluster]\n", '[cluster]\ncanary_containers = { "object-1" = "a" }\n'),
     "cluster.canary_containers.object-1: 'a' is not ACCOUNT/CONTAINER"),
])
def test_bad_canary_settings_are_config_errors(tmp_path, edit, words):
    from tests.helpers.ringfactory import make_cluster

    c = make_cluster(tmp_path)
    text = c.config.read_text()
    if edit:
        text = text.replace(*edit, 1)
    else:
        text += '[proxies.p01]\nendpoints_url = "p01:8080/endpoints"\n'
    c.config.write_text(text)
    r = run_cli(c, "push", "--canary", "1")
    assert r.exit_code == 2 and words in r.output, r.output


def test_a_negative_canary_is_a_usage_error(tmp_path):
    from tests.helpers.ringfactory import make_cluster

    c = make_cluster(tmp_path)
    r = run_cli(c, "push", "--canary", "-1")
    assert r.exit_code == 2 and "--canary" in r.output
