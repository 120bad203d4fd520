"""Measured bytes and predicted fullness: parsers, the prediction, and the lab with
real XFS disks (a change that would fill them past full_percent is refused)."""

from __future__ import annotations

import json
import re

import pytest

from ringmgr.ops.usage import Filesystem, NodeUsage, datadir_ring, parse_df, parse_du
from ringmgr.rings.fullness import predict
from tests.helpers.ringfactory import checksums
from tests.test_health import ringmgr


def test_parsers():
    du = ("8192\t/srv/node/sdb/objects\n4096\t/srv/node/sdb/accounts\n"
          "4096\t/srv/node/sdb/tmp\n100\t/srv/node/sdb/objects-1\n16384\t/srv/node/sdb\n"
          "4096\t/srv/node/sdc\n")
    assert parse_du(du, "/srv/node") == {"sdb": {"object": 8192, "account": 4096,
                                                 "object-1": 100}, "sdc": {}}
    df = ("Mounted on    1B-blocks        Used       Avail\n"
          "/srv/node/sdb 247463936    17731584   229732352\n")
    assert parse_df(df, ["/srv/node/sdb"]) == {"/srv/node/sdb": Filesystem(
        247463936, 17731584, 229732352, "/srv/node/sdb")}
    assert [datadir_ring(n) for n in ("objects", "objects-12", "containers", "tmp",
                                      "objects-x")] == ["object", "object-12", "container",
                                                        None, None]


def _dev(node, dev, before, after):
    return {"node": node, "device": dev, "parts_before": before, "parts_after": after}


def test_prediction():
    """Two devices of 100 parts; one holds 1000 bytes/part, the other 3000; the first
    is drained into a new device c (no parts yet: gets the mean, 2000/part)."""
    reports = {"object": {"devices": [_dev("s1", "a", 100, 0), _dev("s2", "b", 100, 100),
                                      _dev("s3", "c", 0, 100)]}}
    usage = {"s1": NodeUsage("s1", {"a": {"object": 100_000}}, {"a": Filesystem(10**6, 150_000, 0, "/")}),
             "s2": NodeUsage("s2", {"b": {"object": 300_000}}, {"b": Filesystem(10**6, 350_000, 0, "/")}),
             "s3": NodeUsage("s3", {"c": {}}, {"c": Filesystem(250_000, 20_000, 0, "/")})}
    out = predict(reports, usage, 90)
    rows = {r["device"]: r for r in out["devices"]}
    assert reports["object"]["bytes_moved"] == 100_000            # a's own bytes leave
    assert reports["object"]["bytes_per_partition_replica"] == 2000
    assert rows["a"]["used_after"] == 50_000 and rows["b"]["used_after"] == 350_000
    assert rows["c"]["used_after"] == 220_000 and rows["c"]["percent_after"] == 88.0
    assert out["over"] == []
    out = predict(reports, usage, 85)
    assert [r["device"] for r in out["over"]] == ["c"]


@pytest.mark.lab(nodes=4, disks=1, part_power=6, xfs=True)
def test_a_change_that_overfills_small_disks_is_refused(lab_cluster, tmp_path):
    lab = lab_cluster
    assert lab.put("c") in (201, 202)
    blob = bytes(range(256)) * 4096   # 1 MiB
    for i in range(40):
        assert lab.put("c", f"o{i}", blob) == 201
    cfg = tmp_path / "full.toml"
    cfg.write_text(lab.config_path.read_text().replace("[cluster]\n",
                                                       "[cluster]\nfull_percent = 21\n", 1))
    before = checksums(lab.builder_dir)
    r = ringmgr("--config", str(cfg), "--json", "remove-node", "s04", "--dry-run",
                env=lab.env, check=1)
    doc = json.loads(r.stdout)
    assert doc["reason"] == "risk" and not doc["written"]
    over = {f"{o['node']}/{o['device']}" for o in doc["fullness"]["over"]}
    assert over == {"s01/sdb", "s02/sdb", "s03/sdb"}
    assert re.search(r"s01/sdb \d+(\.\d+)?% -> 2\d(\.\d+)?%", doc["message"])
    assert "over [cluster].full_percent = 21%" in doc["message"]
    obj = doc["rings"]["object"]
    assert obj["bytes_moved"] > 10 * 2**20 and obj["bytes_estimate"].startswith("measured")
    r = ringmgr("--config", str(cfg), "remove-node", "s04", "--yes", env=lab.env, check=1)
    assert "refused: the change would fill s01/sdb" in r.stderr
    assert checksums(lab.builder_dir) == before
    # the same change with room to spare, and with --allow-full
    r = ringmgr("--json", "remove-node", "s04", "--dry-run", env=lab.env, check=0)
    assert json.loads(r.stdout)["fullness"]["over"] == []
    r = ringmgr("--config", str(cfg), "--json", "remove-node", "s04", "--dry-run",
                "--allow-full", env=lab.env)
    assert r.exit_code in (0, 1) and "--allow-full" in " ".join(json.loads(r.stdout)["warnings"])
    assert checksums(lab.builder_dir) == before
