"""The swift-ring-builder command lines that reproduce a ringmgr change.

Per ring, from the pre-change backup of its builder: the same marks (remove, then
set_weight, then add, in the order ringmgr applies them) and ``rebalance SEED`` with
the seed as swift-ring-builder reads it (``engine.swift_seed``).  Replayed on a copy of
that very backup file, they give the same builder and a byte-identical ring.gz: the
min_part_hours gate state is part of the file (``_last_part_moves`` ages with wall-clock
hours), so a replay must start from the same file, soon enough that no partition
crossed the gate in between.

Commands are argv lists with ``{builder}`` standing for the copy's path.
"""

from __future__ import annotations

import shlex

BUILDER = "{builder}"


def _num(x) -> str:
    return repr(float(x))


def replay_commands(change, seed, *, format_version: int | None = None) -> list[list[str]]:
    """argv lists for one ring's ``engine.RingChange`` and the change's seed."""
    tool = "swift-ring-builder"
    cmds: list[list[str]] = []
    if change.removes:
        cmds.append([tool, BUILDER, "remove", *[f"d{i}" for i in change.removes], "--yes"])
    if change.weights:
        pairs = [x for i, w in change.weights.items() for x in (f"d{i}", _num(w))]
        cmds.append([tool, BUILDER, "set_weight", *pairs, "--yes"])
    for dev in change.adds:
        cmds.append([tool, BUILDER, "add",
                     "--region", str(dev["region"]), "--zone", str(dev["zone"]),
                     "--ip", str(dev["ip"]), "--port", str(dev["port"]),
                     "--replication-ip", str(dev.get("replication_ip") or dev["ip"]),
                     "--replication-port", str(dev.get("replication_port") or dev["port"]),
                     "--device", str(dev["device"]), "--weight", _num(dev["weight"]),
                     "--meta", str(dev.get("meta") or "")])
    rebalance = [tool, BUILDER, "rebalance"]
    if seed is not None:
        rebalance.append(str(seed))
    if getattr(change, "force", False):
        rebalance.append("--force")
    rebalance += ["--format-version", str(format_version if format_version is not None else 1)]
    cmds.append(rebalance)
    return cmds


def render_replay(ring: str, replay: dict, builder_dir: str) -> list[str]:
    """Shell lines: copy the backup, then the commands (quoted for copy and paste)."""
    src = f"{builder_dir.rstrip('/')}/{replay['from']}"
    path = f"$d/{ring}.builder"
    lines = [f"d=$(mktemp -d) && cp {shlex.quote(src)} \"{path}\""]
    for argv in replay["commands"]:
        parts = [f'"{path}"' if a == BUILDER else shlex.quote(a) for a in argv]
        lines.append(" ".join(parts))
    return lines
