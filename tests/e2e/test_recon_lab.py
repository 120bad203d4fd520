"""The recon client against the real lab: one sweep of every server, then one stopped."""
from __future__ import annotations

import pytest

from ringmgr.config import load_config
from ringmgr.live.recon import (CHECKS, ReconClient, clock_skew, plan_checks, ring_devices,
                                servers_from_devices)


@pytest.mark.lab(nodes=3, disks=1, part_power=6)
def test_a_sweep_of_the_lab(lab_cluster):
    config = load_config(lab_cluster.config_path)
    devs = ring_devices(config.cluster.builder_dir)
    servers = servers_from_devices(devs, config)
    assert {(s.node, s.kind) for s in servers} == {
        (n, k) for n in ("s01", "s02", "s03") for k in ("account", "container", "object")}
    sweep = ReconClient(config.recon).sweep(plan_checks(servers, CHECKS))
    assert all(r.ok for r in sweep.replies.values()), [
        r.error for r in sweep.replies.values() if not r.ok]
    s01 = next(s for s in servers if s.node == "s01" and s.kind == "object")
    assert abs(clock_skew(sweep.get(s01, "time"))) < 1.0
    assert "object.ring.gz" in sweep.get(s01, "ringmd5").value
    lab_cluster.stop_node("s02")
    sweep = ReconClient(config.recon).sweep(plan_checks(servers, CHECKS))
    assert sorted({s.node for s in sweep.unreachable()}) == ["s02"]
    assert len(sweep.unreachable()) == 3
