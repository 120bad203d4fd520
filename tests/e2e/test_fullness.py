"""Measured bytes and predicted fullness on the real lab with XFS disks: a change that
would fill them past full_percent is refused."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers.ringfactory import checksums
from tests.e2e.test_health import ringmgr


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
