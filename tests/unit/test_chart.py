"""The --chart picture: a real PNG with matplotlib, terminal bars without it."""

from __future__ import annotations

import sys

import pytest

from tests.helpers.small_rings import build_ring, node_ip, nodes_by_ip, remove_node
from ringmgr.rings.chart import fill_table, render_bars, write_chart
from ringmgr.rings.report import ring_report


@pytest.fixture(scope="module")
def reports():
    b = build_ring(part_power=6, nodes=4, disks=2, zones=4)
    a, moved = remove_node(b, node_ip(3))
    return {"object": ring_report("object", b, a, moved, nodes_by_ip(b))}


def test_fill_table(reports):
    t = fill_table(reports["object"])
    nodes = {n["node"]: n for n in t["nodes"]}
    assert nodes["s04"]["parts_after"] == 0 and nodes["s04"]["fill_after"] is None
    assert nodes["s04"]["fill_before"] == pytest.approx(100.0)
    assert sum(n["parts_after"] for n in t["nodes"]) == 64 * 3
    for name in ("s01", "s02", "s03"):
        assert nodes[name]["fill_after"] == pytest.approx(100.0, abs=2)


def test_render_bars(reports):
    text = render_bars(reports, width=20, devices=3)
    assert text.startswith("object: assigned partitions before / after")
    lines = text.splitlines()
    s04 = lines.index(next(x for x in lines if x.strip().startswith("s04 ")))
    assert lines[s04].count("█") == 15  # 48 of the largest 64, on 20 cells
    assert "█" not in lines[s04 + 1]  # emptied
    assert "devices that change most (of 8):" in text
    assert text.count("before") == 1 + 4 + 3


def test_write_chart_png(reports, tmp_path):
    # no importorskip: CI installs the chart extra (scripts/test-all), so a missing
    # matplotlib is a setup failure to see, not a skip
    import matplotlib  # noqa: F401

    path = tmp_path / "c.png"
    assert write_chart(reports, path) is True
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_without_matplotlib_nothing_is_written(reports, tmp_path, monkeypatch):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    path = tmp_path / "c.png"
    assert write_chart(reports, path) is False
    assert not path.exists()
