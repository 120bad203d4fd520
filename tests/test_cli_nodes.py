"""shutdown-node / rejoin-node: out for days, back with exactly the options it had."""

import json

from click.testing import CliRunner
from swift.common.ring import RingBuilder

from ringmgr.cli.main import cli
from tests.helpers.ringfactory import make_cluster

RINGS = ("account", "container", "object", "object-1")


def run(cluster, *args):
    return CliRunner().invoke(cli, ["--config", str(cluster.config), *args])


def devs_of(cluster, ring, ip):
    b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
    return sorted(({k: d[k] for k in ("region", "zone", "ip", "port", "replication_ip",
                                      "replication_port", "device", "weight", "meta")}
                   for d in b.devs if d and d["ip"] == ip), key=lambda d: d["device"])


def test_shutdown_then_rejoin_restores_exact_device_options(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0)
    # options that differ from the config: only the history can restore them
    for ring in RINGS:
        path = str(c.builder_dir / f"{ring}.builder")
        b = RingBuilder.load(path)
        for d in b.devs:
            if d and d["ip"] == "127.0.9.2":
                d["meta"] = "chassis-7"
                d["replication_ip"] = "127.0.10.2"
                d["weight"] = 77.0
        b.save(path)
        b.get_ring().save(str(c.builder_dir / f"{ring}.ring.gz"))
    before = {ring: devs_of(c, ring, "127.0.9.2") for ring in RINGS}
    r = run(c, "--json", "shutdown-node", "s02", "--yes")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["written"] is True
    assert all(devs_of(c, ring, "127.0.9.2") == [] for ring in RINGS)
    r = run(c, "--json", "rejoin-node", "s02", "--yes")
    assert r.exit_code in (0, 1), r.output
    for ring in RINGS:
        assert devs_of(c, ring, "127.0.9.2") == before[ring]
    r = run(c, "rejoin-node", "s02", "--yes")
    assert r.exit_code == 2 and "already" in r.output


def test_shutdown_refused_when_it_would_leave_partitions_short(tmp_path):
    c = make_cluster(tmp_path, nodes=3, zones=3, min_part_hours=0)
    assert run(c, "set-weight", "s01", "0", "--yes").exit_code in (0, 1)
    before = c.checksums()
    r = run(c, "shutdown-node", "s02", "--yes")
    assert r.exit_code == 2
    assert "short of a write quorum" in r.output.strip().splitlines()[-1]
    assert c.checksums() == before


def test_rejoin_without_history_refused(tmp_path):
    c = make_cluster(tmp_path)
    before = c.checksums()
    r = run(c, "rejoin-node", "s03", "--yes")
    assert r.exit_code == 2 and "add-node" in r.output
    assert c.checksums() == before


def test_two_replica_shutdown_allowed_by_swifts_quorum_refused_by_majority(tmp_path):
    """2 replicas, every node up: swift writes with 1 of 2, so stopping one node is safe
    by default; --quorum majority (2 of 2) refuses.  The dry run shows the verdict."""
    c = make_cluster(tmp_path, nodes=3, zones=3, replicas=2, min_part_hours=0)
    before = c.checksums()
    r = run(c, "--json", "shutdown-node", "s02", "--dry-run")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["written"] is False
    assert data["ok_to_stop"]["ok"] is True and data["ok_to_stop"]["quorum_rule"] == "swift"
    text = run(c, "shutdown-node", "s02", "--dry-run").stdout
    assert "write quorum 1 of 2 (majority: 2 of 2)" in text and "safe to stop s02" in text
    assert c.checksums() == before
    for args in (("--dry-run",), ("--yes",)):
        r = run(c, "shutdown-node", "s02", "--quorum", "majority", *args)
        assert r.exit_code == 2, r.output
        assert "do NOT stop s02" in r.output
        assert "short of a write quorum" in r.output.strip().splitlines()[-1]
        assert c.checksums() == before
    # with another node already down, not even swift's quorum holds: refused
    r = run(c, "shutdown-node", "s02", "--down", "s01", "--yes")
    assert r.exit_code == 2 and "short of a write quorum" in r.output.strip().splitlines()[-1]
    assert c.checksums() == before
    r = run(c, "--json", "shutdown-node", "s02", "--yes")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["written"] is True
    assert all(devs_of(c, ring, "127.0.9.2") == [] for ring in RINGS)
