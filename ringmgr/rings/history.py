"""History views, rollback and write-rings: changes that restore or rewrite, recorded
like any other."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone

from ringmgr.errors import BuilderError, NothingToDo, Refused, UsageError
from ringmgr.rings.files import read_regular
from ringmgr.rings.replay import render_replay
from ringmgr.rings.store import RingStore, builder_from_bytes


def render_history(entries: list[dict], builder_dir: str | None = None,
                   replay: bool = False) -> str:
    """One block per change; ``replay`` adds the swift-ring-builder command lines that
    reproduce each ring's change from its pre-change backup."""
    if not entries:
        return "no changes recorded yet"
    lines = []
    for e in entries:
        t = datetime.fromtimestamp(e["time"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        lines.append(f"#{e['id']}  {t}  {e.get('user', '?')}  {e.get('description', '')}")
        if e.get("argv"):
            lines.append(f"     command: {shlex.join(str(a) for a in e['argv'])}")
        if e.get("seed") is not None:
            lines.append(f"     seed: {e['seed']}")
        for ring, r in sorted(e.get("rings", {}).items()):
            lines.append(f"     {ring}: version {r.get('version_before')} -> "
                         f"{r.get('version_after')}, builder md5 "
                         f"{(r.get('builder_md5_before') or '-')[:8]} -> "
                         f"{(r.get('builder_md5_after') or '-')[:8]}")
        for d in e.get("removed_devices", []):
            lines.append(f"     removed from {d['ring']}: id {d['id']} {d['ip']}:{d['port']}/"
                         f"{d['device']} r{d['region']}z{d['zone']} weight {d['weight']:g}")
        if replay:
            for ring, r in sorted(e.get("rings", {}).items()):
                rp = r.get("replay")
                if rp and builder_dir and (rp.get("from") or _creates(rp)):
                    lines.append(f"     replay {ring} with swift-ring-builder:")
                    lines += [f"       {x}" for x in render_replay(ring, rp, builder_dir)]
    return "\n".join(lines)


def _creates(replay: dict) -> bool:
    """The replay starts with ``create`` (the change made this ring)."""
    cmds = replay.get("commands") or []
    return bool(cmds) and len(cmds[0]) > 2 and cmds[0][2] == "create"


def _load_backup(store: RingStore, rel: str, want_md5: str | None):
    import hashlib

    path = store.dir / rel
    try:
        data = read_regular(path, what="backup")
    except FileNotFoundError:
        raise BuilderError(f"backup {path} is missing: cannot roll back to that point")
    if want_md5 and hashlib.md5(data).hexdigest() != want_md5:
        raise BuilderError(f"backup {path} does not match the md5 the history recorded")
    return builder_from_bytes(data, path)


def target_state(store: RingStore, to_id: int | None) -> tuple[dict, str]:
    """Per ring, the backup that holds the state to restore, and a description."""
    hist = store.history()
    if not hist:
        raise UsageError("no changes recorded yet: nothing to roll back")
    ids = [e["id"] for e in hist]
    if to_id is None:
        later = [hist[-1]]
        what = f"the state before change #{hist[-1]['id']} ({hist[-1].get('description', '')})"
    else:
        if to_id not in ids:
            raise UsageError(f"no change #{to_id} in the history (known: {ids[0]}..{ids[-1]})")
        later = [e for e in hist if e["id"] > to_id]
        if not later:
            raise UsageError(f"change #{to_id} is the latest: the rings are already in that state")
        what = f"the state right after change #{to_id}"
    backups = {}
    for e in later:  # the first later change touching a ring holds its state as a backup
        for ring, r in e.get("rings", {}).items():
            if ring not in backups:
                if "backup_builder" not in r:
                    raise BuilderError(f"change #{e['id']} kept no backup of {ring}.builder "
                                       f"(the ring did not exist before it, and ringmgr "
                                       f"does not delete builders)")
                backups[ring] = (r["backup_builder"], r.get("builder_md5_before"))
    return backups, what


def rollback(config, to_id: int | None, *, dry_run: bool, confirm, show, argv) -> dict:
    """Restore an earlier builder set as a new change.  The dry run shows the same
    report as any ring change: devices appearing or disappearing, moves per ring."""
    import contextlib

    from ringmgr.rings.report import ring_report, render_text

    store = RingStore.from_config(config)
    if dry_run:
        store.refuse_if_pending()
    with contextlib.nullcontext() if dry_run else store.lock():
        if not dry_run:
            store.refuse_if_pending(held=True)
        backups, what = target_state(store, to_id)
        current = {name: store.load(name) for name in backups}
        refuse_during_part_power(current)
        restored = {}
        for ring, (rel, md5) in backups.items():
            b = _load_backup(store, rel, md5)
            b.version = current[ring].version + 1
            restored[ring] = b
        refuse_other_part_power(current, restored)
        by_ip = {n.ip: name for name, n in config.nodes.items()}
        reports = {r: ring_report(r, current[r], b, None, by_ip,
                                  config.cluster.used_bytes.get(r))
                   for r, b in restored.items()}
        show(f"roll back to {what}:")
        for ring, b in restored.items():
            show(f"  {ring}: restore {backups[ring][0]} as version {b.version} "
                 f"(now version {current[ring].version}){_device_changes(current[ring], b)}")
        show("")
        show(render_text(reports))
        for r, rep in reports.items():
            rep["restore_from"] = backups[r][0]
            rep["version"] = restored[r].version
        if dry_run:
            return {"written": False, "rings": reports}
        store.preflight(restored)
        confirm(f"Restore {len(restored)} ring(s) to {what}?")
        record = store.commit(restored, {
            "description": f"rollback to {what}", "argv": argv, "seed": None,
            "rings": {n: {"version_before": current[n].version} for n in restored},
            "rollback_to": to_id,
        })
    show(f"written: change #{record['id']}; push the rings with `ringmgr push`")
    return {"written": True, "change_id": record["id"], "rings": reports}


def _device_changes(before, after) -> str:
    """'; devices back: 2, gone: 1' style summary of a restore."""
    key = lambda d: (d["ip"], d["port"], d["device"])  # noqa: E731
    b = {key(d) for d in before.devs if d is not None}
    a = {key(d) for d in after.devs if d is not None}
    parts = []
    if a - b:
        parts.append(f"devices back: {', '.join(f'{ip}/{dev}' for ip, _, dev in sorted(a - b))}")
    if b - a:
        parts.append(f"devices gone: {', '.join(f'{ip}/{dev}' for ip, _, dev in sorted(b - a))}")
    return ("; " + "; ".join(parts)) if parts else ""


def refuse_during_part_power(current: dict) -> None:
    """A rollback in the middle of a partition-power increase would give the nodes a
    ring whose partitions are not where the relinker put the data."""
    for ring, b in sorted(current.items()):
        if b.next_part_power:
            raise Refused(f"{ring}: a partition-power increase is in progress "
                          f"(next_part_power {b.next_part_power}): a rollback now would "
                          f"send objects to partitions that are not relinked; continue it "
                          f"with `ringmgr increase-part-power` (or cancel it with --cancel "
                          f"before the increase); nothing was changed")


def refuse_other_part_power(current: dict, restored: dict) -> None:
    """Never roll back across a finished partition-power increase: the data sits at the
    new partitions, which the old ring does not know."""
    for ring, b in sorted(restored.items()):
        if b.part_power != current[ring].part_power or b.next_part_power:
            raise Refused(f"{ring}: the target has partition power {b.part_power}"
                          + (f" (next {b.next_part_power})" if b.next_part_power else "")
                          + f", the ring now {current[ring].part_power}: the objects sit at "
                          f"the partitions of the current power; a rollback across a "
                          f"partition-power change is refused; nothing was changed")


def write_rings(config, *, confirm, show, argv, dry_run: bool = False) -> dict:
    """Write every ring.gz that is not the ring its builder makes: missing, stale
    (also after a builder edit that swift does not version, such as set_info),
    corrupt, truncated, or another ring's file."""
    import contextlib

    store = RingStore.from_config(config)
    if dry_run:
        store.refuse_if_pending()
    with contextlib.nullcontext() if dry_run else store.lock():
        if not dry_run:
            store.refuse_if_pending(held=True)
        builders = store.load_all()
        checks = {n: store.ring_check(n, b) for n, b in builders.items() if b._replica2part2dev}
        todo = {n: builders[n] for n, c in checks.items() if not c.current}
        if not todo:
            raise NothingToDo("every ring.gz is up to date: nothing to write")
        for n, b in todo.items():
            c = checks[n]
            show(f"  {n}.ring.gz is {c.state} ({c.detail}): write it from {n}.builder "
                 f"(version {b.version})")
        if dry_run:
            return {"written": False, "rings": sorted(todo),
                    "states": {n: {"state": checks[n].state, "detail": checks[n].detail}
                               for n in todo}}
        confirm(f"Write {len(todo)} ring file(s)?")
        record = store.commit(todo, {
            "description": "write ring files from builders", "argv": argv, "seed": None,
            "rings": {n: {"version_before": b.version} for n, b in todo.items()}})
    return {"written": True, "change_id": record["id"], "rings": sorted(todo),
            "states": {n: {"state": checks[n].state, "detail": checks[n].detail}
                       for n in todo}}
