"""set_weight_all_rings: the ring change replace-disk and drive-audit call (the core: it
writes, it never pushes)."""

import pytest
from swift.common.ring import RingBuilder

from ringmgr.config import load_config
from ringmgr.errors import Refused
from ringmgr.rings.node_weight import set_weight_all_rings
from tests.helpers.ringfactory import make_cluster


def weights(cluster, ip, dev):
    out = {}
    for ring in ("account", "container", "object", "object-1"):
        b = RingBuilder.load(str(cluster.builder_dir / f"{ring}.builder"))
        out[ring] = [d["weight"] for d in b.devs if d and d["ip"] == ip and d["device"] == dev]
    return out


def test_sets_every_ring_once_and_is_idempotent(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0)
    config = load_config(c.config)
    r = set_weight_all_rings(config, "s02", "sdb", 0.0, yes=True)
    assert r.written
    assert all(w == [0.0] for w in weights(c, "127.0.9.2", "sdb").values())
    assert all(w == [100.0] for w in weights(c, "127.0.9.2", "sdc").values())
    before = c.checksums()
    again = set_weight_all_rings(config, "s02", "sdb", 0.0, yes=True)
    assert again.written is False
    assert c.checksums() == before


def test_refuses_without_yes_and_without_anyone_to_ask(tmp_path):
    c = make_cluster(tmp_path, min_part_hours=0)
    before = c.checksums()
    with pytest.raises(Refused, match="--yes"):
        set_weight_all_rings(load_config(c.config), "s02", "sdb", 0.0, yes=False)
    assert c.checksums() == before


def test_ring_devices_is_the_node_devices_in_every_ring_by_ip(tmp_path):
    from ringmgr.rings.devices import ring_devices

    c = make_cluster(tmp_path, min_part_hours=0)
    config = load_config(c.config)
    found = ring_devices(config, config.node("s02"))
    rings = ("account", "container", "object", "object-1")
    assert sorted(found) == ["sdb", "sdc"]
    for dev, per_ring in found.items():
        assert sorted(per_ring) == sorted(rings)
        for ring, d in per_ring.items():
            b = RingBuilder.load(str(c.builder_dir / f"{ring}.builder"))
            [real] = [x for x in b.devs if x and x["ip"] == "127.0.9.2" and x["device"] == dev]
            assert d == {"id": real["id"], "weight": real["weight"], "parts": real["parts"]}
    assert sorted(ring_devices(config, config.node("s02"), "sdc")) == ["sdc"]
    assert ring_devices(config, config.node("s02"), "sdz") == {}
