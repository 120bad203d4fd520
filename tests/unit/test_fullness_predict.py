"""Measured bytes and predicted fullness: the du/df parsers and the prediction (pure)."""

from __future__ import annotations

from ringmgr.ops.usage import Filesystem, NodeUsage, datadir_ring, parse_df, parse_du
from ringmgr.rings.fullness import predict


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


