"""The swift-ring-builder command lines that reproduce a ringmgr change.

Per ring, from the pre-change backup of its builder: the same marks (remove,
set_weight, add, set_region, set_zone, set_info, set_overload, set_replicas,
set_min_part_hours, in the order ringmgr applies them) and ``rebalance SEED`` with the
seed as swift-ring-builder reads it (``engine.swift_seed``), or ``write_ring`` where
ringmgr wrote the builder without a rebalance.  A ring the change created starts with
``create``.  Replayed on a copy of
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


def replay_commands(change, seed, *, format_version: int | None = None,
                    rebalanced: bool = True, create: dict | None = None) -> list[list[str]]:
    """argv lists for one ring's ``engine.RingChange`` and the change's seed.

    ``rebalanced=False``: ringmgr saved the marks or edits without a rebalance (set_info,
    set_min_part_hours, or swift's save rule kept the rebalance after a settings mark):
    the ring is written with ``write_ring`` instead.  ``create`` (``part_power``,
    ``replicas``, ``min_part_hours``): the builder is new, made by ``create`` first."""
    tool = "swift-ring-builder"
    cmds: list[list[str]] = []
    if create is not None:
        cmds.append([tool, BUILDER, "create", str(int(create["part_power"])),
                     _num(create["replicas"]), str(int(create["min_part_hours"]))])
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
    # one device per command: swift-ring-builder's set_region/set_zone with several
    # pairs applies every later value to the earlier devices too
    for kind, values in (("set_region", change.regions), ("set_zone", change.zones)):
        for dev_id, value in values.items():
            cmds.append([tool, BUILDER, kind, f"d{dev_id}", str(int(value)), "--yes"])
    for dev_id, fields in change.info.items():
        cmds += _set_info(tool, dev_id, fields)
    if change.overload is not None:
        cmds.append([tool, BUILDER, "set_overload", _num(change.overload)])
    if change.replicas is not None:
        cmds.append([tool, BUILDER, "set_replicas", _num(change.replicas)])
    if change.min_part_hours is not None:
        cmds.append([tool, BUILDER, "set_min_part_hours", str(int(change.min_part_hours))])
    version = ["--format-version", str(format_version if format_version is not None else 1)]
    if not rebalanced:
        cmds.append([tool, BUILDER, "write_ring", *version])
        return cmds
    rebalance = [tool, BUILDER, "rebalance"]
    if seed is not None:
        rebalance.append(str(seed))
    if getattr(change, "force", False):
        rebalance.append("--force")
    cmds.append(rebalance + version)
    return cmds


def _set_info(tool: str, dev_id: int, fields: dict) -> list[list[str]]:
    """set_info for one device: the option form (hostnames and IPv6 as they are), and
    the ``dN _`` form for an empty meta (the option form skips an empty value)."""
    opts = []
    for key in ("ip", "port", "replication_ip", "replication_port"):
        if key in fields:
            opts += [f"--change-{key.replace('_', '-')}", str(fields[key])]
    meta = fields.get("meta")
    if meta:
        opts += ["--change-meta", str(meta)]
    cmds = []
    if opts:
        cmds.append([tool, BUILDER, "set_info", "--id", str(dev_id), *opts, "--yes"])
    if meta == "":
        cmds.append([tool, BUILDER, "set_info", f"d{dev_id}", "_", "--yes"])
    return cmds


def render_replay(ring: str, replay: dict, builder_dir: str) -> list[str]:
    """Shell lines: copy the backup (none for a ring the change created), then the
    commands (quoted for copy and paste)."""
    path = f"$d/{ring}.builder"
    if replay.get("from"):
        src = f"{builder_dir.rstrip('/')}/{replay['from']}"
        lines = [f"d=$(mktemp -d) && cp {shlex.quote(src)} \"{path}\""]
    else:
        lines = ["d=$(mktemp -d)"]
    for argv in replay["commands"]:
        parts = [f'"{path}"' if a == BUILDER else shlex.quote(a) for a in argv]
        lines.append(" ".join(parts))
    return lines
