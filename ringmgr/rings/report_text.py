"""The simulation report as text: one summary line per ring, then each ring's details
(moves, balance, dispersion, failure-domain risk, devices that changed most).

Pure: takes the per-ring reports ``report.ring_report`` builds, returns strings.
"""

from __future__ import annotations

from typing import Iterable

def _fmt_bytes(n) -> str:
    if n is None:
        return "unknown"
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(x) < 1024 or unit == "PiB":
            return f"{x:.1f} {unit}" if unit != "B" else f"{int(x)} B"
        x /= 1024
    return str(n)


def _fmt_pct(x) -> str:
    return "n/a" if x is None else f"{x:.2f}%"


def _node_totals(devices: Iterable[dict]) -> list[tuple[str, int, int, int]]:
    totals: dict[str, list[int]] = {}
    for d in devices:
        t = totals.setdefault(d["node"], [0, 0])
        t[0] += d["parts_before"]
        t[1] += d["parts_after"]
    return [(n, b, a, a - b) for n, (b, a) in totals.items()]


def _summary_table(reports: dict[str, dict]) -> list[str]:
    if len(reports) < 2:
        return []
    head = (f"{'ring':<12} {'replica moves':>14} {'of all':>8}  {'balance':<17} "
            f"{'dispersion':>10}  at risk (2 replicas in 1 zone / node)")
    out = [head, "-" * len(head)]
    for ring, r in reports.items():
        risk = r.get("risk_after") or {}
        bal = f"{_fmt_pct(r.get('balance_before'))} -> {_fmt_pct(r.get('balance_after'))}"
        out.append(f"{ring:<12} {r['parts_moved']:>14} {r['parts_moved_pct']:>7.2f}%  "
                   f"{bal:<17} {_fmt_pct(r.get('dispersion_after')):>10}  "
                   f"{risk.get('parts_same_zone', 0)} / {risk.get('parts_same_node', 0)}")
    out.append("")
    return out


def _setting_text(key: str, v) -> str:
    if key == "overload":
        return f"{v * 100:.2f}% ({v:g})"
    if key == "min_part_hours":
        return f"{v} h"
    return f"{v:g}"


def _value(v) -> str:
    return repr(v) if isinstance(v, str) and (v == "" or " " in v) else str(v)


def _weight_note(d: dict) -> str:
    wb, wa = d.get("weight_before"), d.get("weight_after")
    if wb is None or wa is None or wb == wa:
        return ""
    return f"  weight {wb:g} -> {wa:g}"


def render_text(reports: dict[str, dict], *, top: int = 10) -> str:
    """An operator-readable summary of per-ring reports (ring name -> report): one
    table line per ring first (what a tired reader needs), then each ring's details."""
    lines: list[str] = _summary_table(reports)
    for ring, r in reports.items():
        lines.append(f"{ring}: {r['parts_moved']} replica moves "
                     f"({r['parts_moved_pct']:.2f}% of {r.get('assignments', '?')} "
                     f"assignments), data to copy: " + (
                         f"~{_fmt_bytes(r['bytes_moved'])}" if r.get("bytes_moved") is not None
                         else "unknown (no used bytes given)"))
        lines.append(f"  balance {_fmt_pct(r.get('balance_before'))} -> "
                     f"{_fmt_pct(r.get('balance_after'))}, dispersion after "
                     f"{_fmt_pct(r.get('dispersion_after'))}")
        for key, (was, now) in (r.get("settings") or {}).items():
            lines.append(f"  {key.replace('_', ' ')}: {_setting_text(key, was)} -> "
                         f"{_setting_text(key, now)}")
        if r.get("note"):
            lines.append(f"  note: {r['note']}")
        if r.get("bytes_moved") is not None:
            lines.append(f"  bytes: estimated {r['bytes_estimate']}")
        risk = r.get("risk_after") or {}
        before = r.get("risk_before") or {}
        for dom in ("zone", "node"):
            n = risk.get(f"parts_same_{dom}", 0)
            nb = before.get(f"parts_same_{dom}", 0)
            if n:
                lines.append(f"  RISK: {n} partitions would hold two replicas in one {dom} "
                             f"(now {nb}; {risk.get(dom + 's', '?')} {dom}s with weight)")
            elif nb:
                lines.append(f"  fixes: {nb} partitions now holding two replicas in one "
                             f"{dom} would be spread out")
        if not any(risk.get(f"parts_same_{d}") for d in ("zone", "node")):
            lines.append(f"  failure domains: no partition doubles up in a zone or node "
                         f"({risk.get('zones', '?')} zones, {risk.get('nodes', '?')} nodes)")
        reweighted = [d for d in r.get("devices", []) if _weight_note(d)]
        if reweighted:
            lines.append("  weights:")
            for d in reweighted[:top]:
                lines.append(f"    {d['node']}/{d['device']} (id {d['id']}): "
                             f"{d['weight_before']:g} -> {d['weight_after']:g}")
            if len(reweighted) > top:
                lines.append(f"    ... {len(reweighted) - top} more devices re-weighted")
        edited = [d for d in r.get("devices", []) if d.get("fields")]
        if edited:
            lines.append("  device fields:")
            for d in edited[:top]:
                what = ", ".join(f"{k} {_value(a)} -> {_value(b)}"
                                 for k, (a, b) in d["fields"].items())
                lines.append(f"    {d['node']}/{d['device']} (id {d['id']}): {what}")
            if len(edited) > top:
                lines.append(f"    ... {len(edited) - top} more devices changed")
        changed = [d for d in r.get("devices", []) if d["delta"] or d["status"] != "unchanged"]
        if not changed:
            lines.append("  no device gains or loses partitions")
            lines.append("")
            continue
        nodes = sorted((t for t in _node_totals(r["devices"]) if t[3]),
                       key=lambda t: (-abs(t[3]), t[0]))
        if nodes:
            lines.append("  per node (parts before -> after):")
            for name, b, a, dl in nodes[:top]:
                lines.append(f"    {name:<16} {b:>9} -> {a:>9}  {dl:+d}")
            if len(nodes) > top:
                lines.append(f"    ... {len(nodes) - top} more nodes")
        lines.append("  biggest device changes:")
        biggest = sorted(changed, key=lambda d: (-abs(d["delta"]), d["id"]))[:top]
        shown = {id(d) for d in biggest}
        current = None
        for d in r["devices"]:  # keep the node grouping of the report
            if id(d) not in shown:
                continue
            if d["node"] != current:
                current = d["node"]
                lines.append(f"    {current}:")
            note = "" if d["status"] in ("changed", "unchanged") else f"  [{d['status']}]"
            lines.append(f"      {d['device']:<10} id {d['id']:<5} z{d['zone']} "
                         f"{d['parts_before']:>8} -> {d['parts_after']:>8}  "
                         f"{d['delta']:+d}{note}{_weight_note(d)}")
        if len(changed) > top:
            lines.append(f"    ... {len(changed) - top} more devices changed")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_brief(reports: dict[str, dict]) -> str:
    """One line per ring (``--brief``): moves, balance, dispersion, devices touched."""
    lines = []
    for ring, r in reports.items():
        devs = r.get("devices", [])
        counts = {s: sum(1 for d in devs if d["status"] == s)
                  for s in ("added", "removed")}
        counts["re-weighted"] = sum(1 for d in devs if d["status"] == "changed"
                                    and d["weight_before"] != d["weight_after"])
        touched = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no device changed"
        lines.append(f"{ring}: {r['parts_moved']} replica moves ({r['parts_moved_pct']:.2f}%), "
                     f"balance {_fmt_pct(r.get('balance_before'))} -> "
                     f"{_fmt_pct(r.get('balance_after'))}, dispersion "
                     f"{_fmt_pct(r.get('dispersion_after'))}, {touched}")
    return "\n".join(lines) + "\n"
