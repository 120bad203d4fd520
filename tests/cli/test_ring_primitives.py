"""create, set-info, set-zone, set-region, set-overload, set-replicas, set-min-part-hours:
each one cross-checked against the real swift-ring-builder doing the same operation
on a copy of the same builders (the commands an operator would type, one ring at a
time): the same builder afterwards, byte-identical ring.gz, and swift's validate
passes.  Then the flow every ring change has (dry run, --json, history and its replay,
rollback, the gate, plans) and bad input (exit 2, one line, nothing changed)."""

import json
import shutil
import subprocess

import pytest
from swift.common.ring import RingBuilder

from tests.helpers.cli import run_cli
from tests.helpers.replay import replay_with_swift
from tests.helpers.ringfactory import make_cluster
from tests.helpers.swift_conf import EC21, REPLICATED, with_swift_conf

RINGS = ("account", "container", "object", "object-1")
SRB = shutil.which("swift-ring-builder")
pytestmark = pytest.mark.skipif(SRB is None, reason="swift-ring-builder not installed")

def srb(builder, *args):
    return subprocess.run([SRB, str(builder), *map(str, args)], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)


def builder_state(path) -> dict:
    """Everything a builder file holds, but the time of its last rebalance (seconds)."""
    d = RingBuilder.load(str(path)).to_dict()
    d.pop("_last_part_moves_epoch")
    d["_replica2part2dev"] = [list(r) for r in d["_replica2part2dev"] or []]
    d["_last_part_moves"] = list(d["_last_part_moves"] or [])
    return d


@pytest.fixture
def cluster(cluster):
    with_swift_conf(cluster, REPLICATED)
    return cluster


def reshape(cluster, *, weights=None, overload=None):
    """Rebuild the fixture's builders with other weights (ip -> weight) or overload, as
    if they had been running so (rebalanced, the gate open), rings written."""
    for ring in RINGS:
        path = cluster.builder_dir / f"{ring}.builder"
        b = RingBuilder.load(str(path))
        for d in b.devs:
            if d is not None and weights and d["ip"] in weights:
                b.set_dev_weight(d["id"], weights[d["ip"]])
        if overload is not None:
            b.set_overload(overload)
        b.pretend_min_part_hours_passed()
        b.rebalance(seed=1)
        b._last_part_moves_epoch -= 2 * 3600
        b.save(str(path))
        b.get_ring().save(str(cluster.builder_dir / f"{ring}.ring.gz"))


IP = {f"s0{i}": f"127.0.9.{i}" for i in range(1, 8)}

# (ringmgr arguments, {ring: [swift-ring-builder commands]} (None: every ring the same),
#  how the fixture is reshaped first)
CASES = {
    "set-info ip": (
        ["set-info", "s02", "--ip", "127.0.9.92"],
        {None: [["set_info", "--ip", IP["s02"], "--change-ip", "127.0.9.92", "--yes"],
                ["write_ring"]]}, {}),
    "set-info port meta one device": (
        ["set-info", "s02/sdc", "--port", "object=6300", "--meta", "rack 4"],
        {"object": [["set_info", "--ip", IP["s02"], "--device", "sdc", "--change-port",
                     "6300", "--change-meta", "rack 4", "--yes"], ["write_ring"]],
         None: [["set_info", "--ip", IP["s02"], "--device", "sdc", "--change-meta",
                 "rack 4", "--yes"], ["write_ring"]]}, {}),
    "set-info replication network": (
        ["set-info", "s03", "--replication-ip", "127.0.10.3",
         "--replication-port", "object=6210,object-1=6211"],
        {"object": [["set_info", "--ip", IP["s03"], "--change-replication-ip", "127.0.10.3",
                     "--change-replication-port", "6210", "--yes"], ["write_ring"]],
         "object-1": [["set_info", "--ip", IP["s03"], "--change-replication-ip",
                       "127.0.10.3", "--change-replication-port", "6211", "--yes"],
                      ["write_ring"]],
         None: [["set_info", "--ip", IP["s03"], "--change-replication-ip", "127.0.10.3",
                 "--yes"], ["write_ring"]]}, {}),
    "set-zone": (
        ["set-zone", "s01", "2"],
        {None: [["set_zone", IP["s01"], "2", "--yes"], ["rebalance", "7"]]},
        {"overload": 1.0}),
    "set-region one device": (
        ["set-region", "s01/sdb", "2"],
        {None: [["set_region", f"{IP['s01']}/sdb", "2", "--yes"], ["rebalance", "7"]]},
        {"overload": 1.0}),
    "set-overload every ring": (
        ["set-overload", "0.5"],
        {None: [["set_overload", "0.5"], ["rebalance", "7"]]},
        {"weights": {IP["s04"]: 300.0}}),
    "set-overload one ring, percent": (
        ["set-overload", "object", "10%"],
        {"object": [["set_overload", "10%"], ["rebalance", "7"]]},
        {"weights": {IP["s04"]: 300.0}}),
    "set-overload moving nothing": (
        ["set-overload", "container", "0.2"],
        {"container": [["set_overload", "0.2"], ["rebalance", "7"]]}, {}),
    "set-replicas": (
        ["set-replicas", "object", "4"],
        {"object": [["set_replicas", "4"], ["rebalance", "7"]]}, {}),
    "set-replicas fractional": (
        ["set-replicas", "object-1", "2.5"],
        {"object-1": [["set_replicas", "2.5"], ["rebalance", "7"]]}, {}),
    "set-min-part-hours": (
        ["set-min-part-hours", "3"],
        {None: [["set_min_part_hours", "3"], ["write_ring"]]}, {}),
    "set-min-part-hours one ring": (
        ["set-min-part-hours", "container", "0"],
        {"container": [["set_min_part_hours", "0"], ["write_ring"]]}, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_as_swift_ring_builder_on_a_copy(case, cluster, tmp_path):
    args, commands, shape = CASES[case]
    if shape:
        reshape(cluster, **shape)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    touched = [r for r in RINGS if r in commands or None in commands]
    for ring in touched:
        shutil.copy(cluster.builder_dir / f"{ring}.builder", theirs / f"{ring}.builder")
    r = run_cli(cluster, "--json", *args, "--yes", "--seed", "7")
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.stdout)
    assert doc["written"] is True, doc
    assert set(doc["rings"]) == set(touched)
    moved = sum(rep["parts_moved"] for rep in doc["rings"].values())
    rebalanced = {rep.get("rebalanced", True) for rep in doc["rings"].values()}
    if args[0] in ("set-info", "set-min-part-hours") or "nothing" in case:
        assert moved == 0 and rebalanced == {False}, case
    else:  # the case is made so that swift moves data
        assert moved > 0 and rebalanced == {True}, case
    for ring in touched:
        path = theirs / f"{ring}.builder"
        for cmd in commands.get(ring, commands.get(None)):
            p = srb(path, *cmd)
            assert p.returncode in (0, 1), (ring, cmd, p.stdout, p.stderr)
        if not (theirs / f"{ring}.ring.gz").exists():  # swift refused to save a rebalance
            assert srb(path, "write_ring").returncode == 0
        ours = cluster.builder_dir / f"{ring}.builder"
        assert builder_state(ours) == builder_state(path), ring
        assert (cluster.builder_dir / f"{ring}.ring.gz").read_bytes() == \
            (theirs / f"{ring}.ring.gz").read_bytes(), ring
        p = srb(ours, "validate")
        assert p.returncode == 0, p.stdout + p.stderr
    for ring in set(RINGS) - set(touched):
        assert not list((cluster.builder_dir / "backups").glob(f"*.{ring}.builder"))


def test_zone_move_with_overload_moves_data_and_says_so(cluster):
    reshape(cluster, overload=1.0)
    r = run_cli(cluster, "--json", "set-zone", "s01", "2", "--dry-run", "--seed", "7")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    rep = doc["rings"]["object"]
    assert rep["parts_moved"] > 0
    moved = [d for d in rep["devices"] if d.get("fields")]
    assert {d["device"] for d in moved} == {"sdb", "sdc"}
    assert all(d["fields"]["zone"] == [1, 2] and d["node"] == "s01" for d in moved)
    assert "zone 1 -> 2" in run_cli(cluster, "set-zone", "s01", "2", "--dry-run").output


def test_create_is_swift_ring_builder_create_add_rebalance(tmp_path, monkeypatch):
    """A cluster from nothing, with the odd fields: a per-device port, meta, replication
    network, a device in another zone, overload, fractional replicas, per-ring devices."""
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    d = tmp_path / "rings"
    d.mkdir()
    cfg = tmp_path / "ringmgr.toml"
    cfg.write_text(f"""[cluster]
builder_dir = "{d}"
replication_ports = {{ object = 6210 }}

[rings.account]
part_power = 6
min_part_hours = 0

[rings.object]
part_power = 7
replicas = 2.5
min_part_hours = 2
overload = 0.1

[nodes.s01]
ip = "127.0.9.1"
replication_ip = "127.0.10.1"
zone = 1
meta = "rack 1"
devices = {{ sdb = 100.0, sdc = {{ weight = 50.0, port = 6300, zone = 4, meta = "ssd" }} }}
rings.account.devices = {{ sda = 10.0 }}

[nodes.s02]
ip = "127.0.9.2"
zone = 2
devices = {{ sdb = 100.0, sdc = 100.0 }}
rings.object.port = 6400

[nodes.s03]
ip = "127.0.9.3"
zone = 3
devices = {{ sdb = 100.0 }}
""")
    c = type("C", (), {"config": cfg})
    r = run_cli(c, "--json", "create", "--yes", "--seed", "7")
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.stdout)
    assert doc["written"] is True and set(doc["rings"]) == {"account", "object"}
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    want = {"account": (["create", "6", "3", "0"], [
        "r1z1-127.0.9.1:6202R127.0.10.1:6202/sda_rack 1 10",
        "r1z2-127.0.9.2:6202/sdb 100", "r1z2-127.0.9.2:6202/sdc 100",
        "r1z3-127.0.9.3:6202/sdb 100"], []),
        "object": (["create", "7", "2.5", "2"], [
            "r1z1-127.0.9.1:6200R127.0.10.1:6210/sdb_rack 1 100",
            "r1z4-127.0.9.1:6300R127.0.10.1:6210/sdc_ssd 50",
            "r1z2-127.0.9.2:6400R127.0.9.2:6210/sdb 100",
            "r1z2-127.0.9.2:6400R127.0.9.2:6210/sdc 100",
            "r1z3-127.0.9.3:6200R127.0.9.3:6210/sdb 100"], [["set_overload", "0.1"]])}
    for ring, (create, adds, settings) in want.items():
        path = theirs / f"{ring}.builder"
        assert srb(path, *create).returncode == 0
        for add in adds:
            value, weight = add.rsplit(" ", 1)
            p = srb(path, "add", value, weight)
            assert p.returncode == 0, p.stdout
        for s in settings:
            assert srb(path, *s).returncode == 0
        assert srb(path, "rebalance", "7").returncode in (0, 1)
        ours = d / f"{ring}.builder"
        a, b = builder_state(ours), builder_state(path)
        assert a.pop("id") and b.pop("id")  # a new builder gets a random id
        assert a == b, ring
        assert (d / f"{ring}.ring.gz").read_bytes() == (theirs / f"{ring}.ring.gz").read_bytes()
        assert srb(ours, "validate").returncode == 0
    # the history replays it from nothing
    entry = json.loads(run_cli(c, "--json", "history").stdout)["history"][-1]
    replay = entry["rings"]["object"]["replay"]
    assert "from" not in replay and replay["commands"][0][2] == "create"
    work = tmp_path / "replay"
    work.mkdir()
    for argv in replay["commands"]:
        p = subprocess.run([str(work / "object.builder") if a == "{builder}" else a
                            for a in argv], capture_output=True, text=True)
        assert p.returncode in (0, 1), (argv, p.stdout)
    assert (work / "object.ring.gz").read_bytes() == (d / "object.ring.gz").read_bytes()
    assert "create 7 2.5 2" in run_cli(c, "history", "--replay").stdout
    # and it refuses to build over what exists
    r = run_cli(c, "create", "--yes")
    assert r.exit_code == 2 and "already exist" in r.output


@pytest.mark.parametrize("args", [["set-info", "s02", "--ip", "127.0.9.92", "--meta", ""],
                                  ["set-zone", "s01/sdb", "3"],
                                  ["set-replicas", "object-1", "2.5"],
                                  ["set-overload", "0.5"],
                                  ["set-min-part-hours", "object", "4"]])
def test_history_replay_reproduces_the_new_kinds(args, cluster, tmp_path):
    reshape(cluster, weights={IP["s04"]: 300.0})
    r = run_cli(cluster, *args, "--yes", "--seed", "7")
    assert r.exit_code in (0, 1), r.output
    entry = json.loads(run_cli(cluster, "--json", "history").stdout)["history"][-1]
    for ring, copy in replay_with_swift(cluster, entry, tmp_path).items():
        assert builder_state(copy) == builder_state(cluster.builder_dir / f"{ring}.builder")


# -- the flow -------------------------------------------------------------------------

def test_dry_run_writes_nothing_and_the_real_run_is_what_it_showed(cluster):
    before = cluster.checksums()
    dry = json.loads(run_cli(cluster, "--json", "set-zone", "s02", "3", "--dry-run",
                         "--seed", "5").stdout)
    assert dry["written"] is False and cluster.checksums() == before
    assert dry["next"][0]["command"].endswith("--seed 5")
    real = json.loads(run_cli(cluster, "--json", "set-zone", "s02", "3", "--yes",
                          "--seed", "5").stdout)
    assert real["written"] is True and real["change_id"] == 1
    for ring in RINGS:
        assert dry["rings"][ring]["devices"] == real["rings"][ring]["devices"]
    assert any("nodes.s02.zone is still 2" in w for w in real["warnings"])
    # the zone is saved without a rebalance (nothing could move): status shows the
    # dispersion of the new layout, not the figure the builder kept from before
    assert real["rings"]["object"].get("rebalanced") is False
    st = json.loads(run_cli(cluster, "--json", "status").stdout)
    layout = real["rings"]["object"]["dispersion_after"]
    assert layout > 0 and st["rings"]["object"]["dispersion"] == pytest.approx(layout, abs=0.01)
    assert any(n["command"].endswith(" push") for n in real["next"])


def test_set_info_writes_the_ring_swift_would_call_obsolete(cluster):
    """swift does not version set_info: ringmgr writes the ring.gz in the same change,
    and rollback brings the old address back as a higher version."""
    versions = {r: RingBuilder.load(str(cluster.builder_dir / f"{r}.builder")).version
                for r in RINGS}
    r = run_cli(cluster, "--json", "set-info", "s02", "--ip", "127.0.9.92", "--yes")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert any("nodes.s02.ip is still '127.0.9.2'" in w for w in doc["warnings"])
    for ring in RINGS:
        b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
        assert b.version == versions[ring]  # as swift-ring-builder set_info
        assert "is up-to-date" in srb(cluster.builder_dir / f"{ring}.builder").stdout
        assert {d["ip"] for d in b.devs if d["device"] == "sdb" and d["id"] == 2} == \
            {"127.0.9.92"}
    st = json.loads(run_cli(cluster, "--json", "status").stdout)
    assert all(st["rings"][r]["ring_gz"] == "up to date" for r in RINGS)
    assert "object: device id 2 ip -> '127.0.9.92'" in run_cli(cluster, "history", "show",
                                                            "1").output
    assert run_cli(cluster, "rollback", "--yes").exit_code == 0
    for ring in RINGS:
        b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
        assert b.devs[2]["ip"] == "127.0.9.2" and b.version == versions[ring] + 1


def test_ring_changes_round_trip_through_json():
    from ringmgr.rings.changes import ChangeSet, RingChange

    full = RingChange(removes=[1], weights={2: 5.0}, adds=[{"device": "sdx"}], force=True,
                      zones={3: 2}, regions={4: 3}, info={5: {"ip": "1.2.3.4", "meta": ""}},
                      overload=0.25, replicas=2.5, min_part_hours=12)
    cs = ChangeSet("all", {"object": full}, {"create": {"object": {"part_power": 6}}})
    again = ChangeSet.from_json(json.loads(json.dumps(cs.to_json())))
    assert again == cs
    old = RingChange.from_json({"remove": [1], "set_weight": {"2": 5.0}, "add": []})
    assert old == RingChange(removes=[1], weights={2: 5.0}) and old.needs_rebalance
    assert RingChange(info={1: {"meta": "x"}}).needs_rebalance is False
    assert RingChange().empty and RingChange().needs_rebalance


def test_again_is_nothing_to_do(cluster):
    assert run_cli(cluster, "set-min-part-hours", "5", "--yes").exit_code == 0
    before = cluster.checksums()
    r = run_cli(cluster, "--json", "set-min-part-hours", "5", "--yes")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["reason"] == "nothing_to_do" and not doc["written"]
    for args in (["set-zone", "s01", "1"], ["set-overload", "0"],
                 ["set-info", "s01", "--meta", ""], ["set-replicas", "object", "3"]):
        r = run_cli(cluster, "--json", *args, "--yes")
        assert r.exit_code == 0 and json.loads(r.stdout)["reason"] == "nothing_to_do", args
    assert cluster.checksums() == before


def test_the_gate_blocks_a_zone_move_like_a_weight_change(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    c = make_cluster(tmp_path, min_part_hours=24, gate_open=False)
    reshape_closed = RingBuilder.load(str(c.builder_dir / "object.builder"))
    assert reshape_closed.min_part_seconds_left > 0
    before = c.checksums()
    for args in (["set-zone", "s01", "4"], ["set-region", "s02", "2"],
                 ["set-overload", "0.3"]):
        r = run_cli(c, "--json", *args, "--yes")
        doc = json.loads(r.stdout)
        assert r.exit_code == 1 and doc["reason"] == "gate_closed", (args, doc)
        assert doc["written"] is False and doc["next"][0]["not_before"]
        assert "min_part_hours (24 h) not yet passed" in doc["message"]
    assert c.checksums() == before
    # no data moves for min_part_hours or set_info: never gated
    assert run_cli(c, "set-min-part-hours", "1", "--yes").exit_code == 0
    assert run_cli(c, "set-info", "s01", "--meta", "x", "--yes").exit_code == 0


def test_set_overload_shows_swifts_required_overload(cluster):
    reshape(cluster, weights={IP["s04"]: 300.0})
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    need = b.get_required_overload()
    assert need > 0
    r = run_cli(cluster, "set-overload", "object", "1%", "--dry-run")
    assert r.exit_code == 0, r.output
    assert f"swift's required overload {need * 100:.2f}%: below it" in r.output
    doc = json.loads(run_cli(cluster, "--json", "set-overload", "object", "1%", "--dry-run").stdout)
    assert doc["required_overload"]["object"] == pytest.approx(need)
    assert doc["rings"]["object"]["settings"]["overload"] == [0.0, 0.01]


def test_set_replicas_refused_on_an_erasure_coded_ring(cluster, tmp_path):
    (tmp_path / "swift.conf").write_text(EC21)    # the fixture's [cluster].swift_conf
    before = cluster.checksums()
    r = run_cli(cluster, "set-replicas", "object-1", "4", "--yes")
    assert r.exit_code == 2 and "erasure coded 2+1" in r.output and "stay 3 x 1 = 3" in r.output
    assert cluster.checksums() == before
    # without swift.conf ringmgr cannot tell: object rings need --force
    cluster.config.write_text("\n".join(ln for ln in cluster.config.read_text().splitlines()
                                        if not ln.startswith("swift_conf")) + "\n")
    r = run_cli(cluster, "set-replicas", "object", "4", "--yes")
    assert r.exit_code == 2 and "swift_conf is not set" in r.output
    assert cluster.checksums() == before
    assert run_cli(cluster, "set-replicas", "account", "4", "--yes").exit_code in (0, 1)
    assert run_cli(cluster, "set-replicas", "object", "4", "--yes", "--force").exit_code in (0, 1)
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    assert b.replicas == 4 and len(b._replica2part2dev) == 4


def test_a_saved_plan_of_a_new_kind_applies_exactly(cluster, tmp_path):
    plan = tmp_path / "zone.plan"
    reshape(cluster, overload=1.0)
    r = run_cli(cluster, "set-zone", "s03", "1", "--plan-out", str(plan), "--seed", "2")
    assert r.exit_code == 0, r.output
    dry = json.loads(run_cli(cluster, "--json", "set-zone", "s03", "1", "--dry-run",
                         "--seed", "2").stdout)
    assert run_cli(cluster, "apply", str(plan), "--yes").exit_code == 0
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    assert {d["zone"] for d in b.devs if d["ip"] == IP["s03"]} == {1}
    parts = {d["id"]: d["parts"] for d in b.devs}
    assert parts == {d["id"]: d["parts_after"] for d in dry["rings"]["object"]["devices"]}


def test_a_plan_of_create_applies_and_refuses_when_the_ring_appeared(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    c = make_cluster(tmp_path, rings=("object",))
    text = c.config.read_text() + "\n[rings.account]\npart_power = 5\n\n[rings.container]\n" \
                                  "part_power = 5\n"
    c.config.write_text(text)
    plan = tmp_path / "create.plan"
    r = run_cli(c, "create", "account", "container", "--plan-out", str(plan), "--seed", "3")
    assert r.exit_code == 0, r.output
    assert not (c.builder_dir / "account.builder").exists()
    dup = tmp_path / "create2.plan"
    assert run_cli(c, "create", "account", "--plan-out", str(dup), "--seed", "3").exit_code == 0
    assert run_cli(c, "apply", str(plan), "--yes").exit_code == 0
    for ring in ("account", "container"):
        assert srb(c.builder_dir / f"{ring}.builder", "validate").returncode == 0
    before = c.checksums()
    r = run_cli(c, "apply", str(dup), "--yes")
    assert r.exit_code == 2 and "account was created since the plan was made" in r.output
    assert c.checksums() == before


# -- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("args, expect", [
    (["set-info", "s01", "--ip", "127.0.9.2"], "is the ip of node s02"),
    (["set-info", "s01", "--ip", "127.0.9.7"], "is the ip of node s07"),
    (["set-info", "s01", "--port", "object=70000"], "port 70000 is outside 1-65535"),
    (["set-info", "s01", "--port", "object=0"], "port 0 is outside 1-65535"),
    (["set-info", "s01", "--replication-port", "object=-5"], "outside 1-65535"),
    (["set-info", "s01", "--port", "object=http"], "is not a port number"),
    (["set-info", "s01", "--port", "6200"], "expected RING=PORT"),
    (["set-info", "s01", "--port", "object-9=6200"], "no ring 'object-9'"),
    (["set-info", "s01", "--ip", "not an ip"], "is not an ip address"),
    (["set-info", "s01"], "give what to change"),
    (["set-info", "s01/sdb", "--ip", "127.0.9.91"], "--ip belongs to the node"),
    (["set-zone", "s01", "0"], "zone must be a positive integer"),
    (["set-zone", "s01", "-1"], "zone must be a positive integer"),
    (["set-zone", "s01", "1.5"], "zone must be a positive integer"),
    (["set-zone", "s01", "two"], "zone must be a positive integer"),
    (["set-region", "s01", "0"], "region must be a positive integer"),
    (["set-region", "s01/sdz", "2"], "device sdz of node s01"),
    (["set-zone", "s99", "2"], "unknown node 's99'"),
    (["set-overload", "-0.1"], "must not be negative"),
    (["set-overload", "-5%"], "must not be negative"),
    (["set-overload", "lots"], "is not a number"),
    (["set-overload", "nan"], "finite"),
    (["set-overload", "10"], "means 1000%"),
    (["set-overload", "object-7", "0.1"], "no ring 'object-7'"),
    (["set-replicas", "object", "0.5"], "at least 1"),
    (["set-replicas", "object", "0"], "at least 1"),
    (["set-replicas", "object", "13"], "the ring has 12"),
    (["set-replicas", "object", "12.5"], "at least 13 devices"),
    (["set-replicas", "object", "three"], "is not a number"),
    (["set-min-part-hours", "256"], "at most 255"),
    (["set-min-part-hours", "-1"], "whole number of hours"),
    (["set-min-part-hours", "1.5"], "whole number of hours"),
    (["set-min-part-hours", "object", "1", "2"], "expected [RING] H"),
    (["create"], "no [rings.NAME] section"),
])
def test_bad_input_exit_2_one_line_nothing_changed(cluster, args, expect):
    before = cluster.checksums()
    r = run_cli(cluster, *args, "--yes")
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("ringmgr: error: ") and expect in lines[-1], r.output
    assert sum(ln.startswith("ringmgr: error: ") for ln in lines) == 1
    assert "Traceback" not in r.output
    assert cluster.checksums() == before


def test_create_where_builders_exist_is_refused(cluster):
    cluster.config.write_text(cluster.config.read_text() +
                              "\n[rings.object]\npart_power = 6\n[rings.object-2]\n"
                              "part_power = 6\n")
    before = cluster.checksums()
    r = run_cli(cluster, "create", "--yes")
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]
    assert "object.builder, object.ring.gz already exist" in last
    assert "ringmgr create object-2" in last
    assert cluster.checksums() == before
    (cluster.builder_dir / "object-2.ring.gz").write_bytes(b"not mine")
    before = cluster.checksums()
    r = run_cli(cluster, "create", "object-2", "--yes")
    assert r.exit_code == 2 and "object-2.ring.gz already exists" in r.output
    assert cluster.checksums() == before


def test_set_info_refuses_what_swift_refuses(cluster):
    """Two devices at one address: swift-ring-builder refuses it (exit 2), so does ringmgr."""
    path = cluster.builder_dir / "object.builder"
    assert srb(path, "add", f"r1z1-{IP['s01']}:6300/sdb", "100").returncode == 0
    copy = cluster.root / "copy.builder"
    shutil.copy(path, copy)
    before = cluster.checksums()
    r = run_cli(cluster, "set-info", "s01/sdb", "--port", "object=6300", "--yes")
    assert r.exit_code == 2, r.output
    assert "device 12 already uses 127.0.9.1:6300/sdb" in r.output.strip().splitlines()[-1]
    assert cluster.checksums() == before
    p = srb(copy, "set_info", "--ip", IP["s01"], "--port", "6200", "--device", "sdb",
            "--change-port", "6300", "--yes")
    assert p.returncode == 2 and "Device 12 already uses 127.0.9.1:6300/sdb" in p.stdout


def test_add_node_takes_every_device_field_from_the_config(cluster):
    text = cluster.config.read_text().replace(
        "[nodes.s07]", '[nodes.s07]\nmeta = "rack 7"\nreplication_ip = "127.0.10.7"\n'
        'rings.object.port = 6300\n', 1).replace(
        'sdc = 100.0 }\n\n', 'sdc = { weight = 50.0, zone = 4, replication_port = 6310 } }\n\n')
    cluster.config.write_text(text)
    r = run_cli(cluster, "add-node", "s07", "--yes")
    assert r.exit_code in (0, 1), r.output
    b = RingBuilder.load(str(cluster.builder_dir / "object.builder"))
    got = {d["device"]: {k: d[k] for k in ("port", "replication_ip", "replication_port",
                                           "zone", "weight", "meta")}
           for d in b.devs if d["ip"] == IP["s07"]}
    assert got == {
        "sdb": {"port": 6300, "replication_ip": "127.0.10.7", "replication_port": 6300,
                "zone": 1, "weight": 100.0, "meta": "rack 7"},
        "sdc": {"port": 6300, "replication_ip": "127.0.10.7", "replication_port": 6310,
                "zone": 4, "weight": 50.0, "meta": "rack 7"}}
