"""A picture of a simulated change: per-device and per-node fill before and after.

``write_chart(reports, path)`` draws a PNG (per ring: partitions per device and per
node, before and after, each labelled with its fill after) with matplotlib (the optional ``chart``
extra; imported only here, only when asked).  Without matplotlib it returns False
and the caller shows ``render_bars(reports)``, the same picture as terminal bars.

"Fill" is a device's share of the ring's replica assignments relative to its share
of the weight: 100% is exactly what its weight asks for, above is over-full.  Bars
of assigned partitions are drawn next to it, so a removed or drained device shows
as emptying rather than as a missing value.  Input: the per-ring dicts made by
``ringmgr.rings.report.ring_report``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_chart", "chart_png", "render_bars", "fill_table", "matplotlib_available"]

BAR = "█"
HALF = "▌"


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _fill(parts: int, weight: float | None, total_parts: int, total_weight: float):
    if not weight or not total_weight or not total_parts:
        return None
    return 100.0 * (parts / total_parts) / (weight / total_weight)


def fill_table(report: dict) -> dict:
    """Per-device and per-node parts and fill, before and after, in report order."""
    devs = report.get("devices", [])
    tp_b = sum(d["parts_before"] for d in devs)
    tp_a = sum(d["parts_after"] for d in devs)
    tw_b = sum(d["weight_before"] or 0 for d in devs)
    tw_a = sum(d["weight_after"] or 0 for d in devs)
    rows = []
    nodes: dict[str, dict] = {}
    for d in devs:
        row = {"node": d["node"], "device": d["device"], "id": d["id"],
               "parts_before": d["parts_before"], "parts_after": d["parts_after"],
               "fill_before": _fill(d["parts_before"], d["weight_before"], tp_b, tw_b),
               "fill_after": _fill(d["parts_after"], d["weight_after"], tp_a, tw_a)}
        rows.append(row)
        n = nodes.setdefault(d["node"], {"node": d["node"], "parts_before": 0,
                                         "parts_after": 0, "weight_before": 0.0,
                                         "weight_after": 0.0})
        n["parts_before"] += d["parts_before"]
        n["parts_after"] += d["parts_after"]
        n["weight_before"] += d["weight_before"] or 0
        n["weight_after"] += d["weight_after"] or 0
    for n in nodes.values():
        n["fill_before"] = _fill(n["parts_before"], n["weight_before"], tp_b, tw_b)
        n["fill_after"] = _fill(n["parts_after"], n["weight_after"], tp_a, tw_a)
    return {"devices": rows, "nodes": list(nodes.values())}


def _bar(value: float, scale: float, width: int) -> str:
    if scale <= 0:
        return ""
    cells = value / scale * width
    full = int(cells)
    return BAR * full + (HALF if cells - full >= 0.5 else "")


def _pct(x) -> str:
    return "   -  " if x is None else f"{x:5.0f}%"


def render_bars(reports: dict[str, dict], *, width: int = 40, devices: int = 20) -> str:
    """Terminal bars per ring: every node, then the ``devices`` most changed devices.
    Each line shows parts before (upper bar) and after (lower bar) and the fill."""
    out: list[str] = []
    for ring, report in reports.items():
        t = fill_table(report)
        out.append(f"{ring}: assigned partitions before / after "
                   f"(fill = share of parts / share of weight)")
        scale = max([n["parts_before"] for n in t["nodes"]] +
                    [n["parts_after"] for n in t["nodes"]] + [1])
        out.append("  per node:")
        for n in t["nodes"]:
            out.extend(_pair(n["node"], n, scale, width))
        changed = sorted((d for d in t["devices"] if d["parts_before"] != d["parts_after"]),
                         key=lambda d: -abs(d["parts_after"] - d["parts_before"]))[:devices]
        if changed:
            dscale = max([d["parts_before"] for d in changed] +
                         [d["parts_after"] for d in changed] + [1])
            out.append(f"  devices that change most (of {len(t['devices'])}):")
            for d in changed:
                out.extend(_pair(f"{d['node']}/{d['device']}", d, dscale, width))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _pair(label: str, row: dict, scale: float, width: int) -> list[str]:
    b, a = row["parts_before"], row["parts_after"]
    return [f"    {label:<20} before {b:>9} {_pct(row['fill_before'])} "
            f"{_bar(b, scale, width)}",
            f"    {'':<20} after  {a:>9} {_pct(row['fill_after'])} "
            f"{_bar(a, scale, width)}"]


def write_chart(reports: dict[str, dict], path) -> bool:
    """Draw the PNG at ``path``; False (nothing written) when matplotlib is missing."""
    png = chart_png(reports)
    if png is None:
        return False
    Path(path).write_bytes(png)
    return True


def chart_png(reports: dict[str, dict]) -> bytes | None:
    """The PNG's bytes; None when matplotlib is missing."""
    import io

    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None

    rings = list(reports)
    fig, axes = plt.subplots(max(1, len(rings)), 2, squeeze=False,
                             figsize=(16, 4.2 * max(1, len(rings))))
    for i, ring in enumerate(rings):
        t = fill_table(reports[ring])
        _draw(axes[i][0], f"{ring}: per device (grouped by node); label: fill after", t["devices"],
              [f"{d['node']}/{d['device']}" for d in t["devices"]], dense=True)
        _draw(axes[i][1], f"{ring}: per node; label: fill after", t["nodes"],
              [n["node"] for n in t["nodes"]], dense=len(t["nodes"]) > 40)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=100, format="png")
    plt.close(fig)
    return buf.getvalue()


def _draw(ax, title, rows, labels, dense):
    """Assigned partitions before/after; above each bar pair (when few), the fill
    after in percent of what the weight asks for."""
    import numpy as np

    x = np.arange(len(rows))
    before = [r["parts_before"] for r in rows]
    after = [r["parts_after"] for r in rows]
    w = 0.4
    ax.bar(x - w / 2, before, w, label="before", color="#9aa7b8")
    ax.bar(x + w / 2, after, w, label="after", color="#2f6db5")
    ax.set_title(title)
    ax.set_ylabel("assigned partitions (replicas)")
    top = max(before + after + [1])
    ax.set_ylim(0, top * 1.15)
    if len(rows) <= 40:
        for xi, r in zip(x, rows):
            f = r["fill_after"]
            ax.text(xi + w / 2, r["parts_after"] + top * 0.01,
                    "gone" if f is None and r["parts_before"] else
                    ("" if f is None else f"{f:.0f}%"),
                    ha="center", va="bottom", fontsize=6, rotation=90)
    if dense and len(rows) > 40:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(rows)} devices, grouped by node")
    else:
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
