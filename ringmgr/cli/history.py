"""``ringmgr history`` (what changed when) and ``ringmgr history show N`` (one change in
full), with the pushes that followed each change.

Changes are recorded by the ring store (``history.jsonl``); pushes by ``record_push``
(``pushes.jsonl`` beside it), called after every real push: ``ringmgr push`` and the
push of ``--push`` / ``[cluster].push``.
"""

from __future__ import annotations

import shlex

import click

from ringmgr.cli.app import App, json_option


def _time(ts) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def record_push(config, report, change_id: int | None = None) -> None:
    """Append the push ``report`` (a real one, not a dry run) to the push records.

    ``change_id`` is the change the push followed; without it, the latest change when
    the rings pushed are the ones it wrote (else None: the rings were changed outside
    ringmgr since)."""
    from ringmgr.rings.store import RingStore

    if report.dry_run:
        return
    store = RingStore.from_config(config)
    md5s = {n.removesuffix(".ring.gz"): r.md5 for n, r in sorted(report.rings.items())}
    if change_id is None:
        history = store.history()
        if history:
            latest = history[-1]
            after = {n: r.get("ring_md5_after") for n, r in latest.get("rings", {}).items()
                     if n in md5s}
            if after and all(md5s[n] == m for n, m in after.items()):
                change_id = latest["id"]
    hosts = {}
    for r in report.results:
        hosts[r.node] = {"address": r.address, "updated": list(r.updated),
                         "unchanged": list(r.unchanged), "error": r.error,
                         "refused": dict(r.refused)}
    store.record_push({"change_id": change_id, "ok": report.ok, "rings": md5s,
                       "hosts": hosts})


def _with_pushes(entries: list[dict], pushes: list[dict]) -> list[dict]:
    out = []
    for e in entries:
        out.append({**e, "pushes": [p for p in pushes if p.get("change_id") == e["id"]]})
    return out


def _push_line(e: dict) -> str:
    pushes = e.get("pushes", [])
    if not pushes:
        return "     pushed: not recorded (`ringmgr push` sends the rings to the nodes)"
    p = pushes[-1]
    good = sorted(n for n, h in p["hosts"].items() if not h["error"] and not h["refused"])
    bad = sorted(set(p["hosts"]) - set(good))
    line = f"     pushed: {_time(p['time'])} to {len(good)} host(s)"
    if bad:
        line += f", FAILED on {', '.join(bad)}"
    if len(pushes) > 1:
        line += f" ({len(pushes)} pushes)"
    return line


def render_list(entries: list[dict], builder_dir: str | None = None,
                replay: bool = False) -> str:
    from ringmgr.rings.history import render_history

    if not entries:
        return render_history([])
    return "\n".join(render_history([e], builder_dir, replay=replay) + "\n" + _push_line(e)
                     for e in entries)


def render_change(e: dict) -> str:
    """One change in full: everything its history record holds."""
    lines = [f"change #{e['id']}: {e.get('description', '')}",
             f"  time:     {_time(e['time'])}",
             f"  user:     {e.get('user', '?')}",
             f"  command:  {shlex.join(str(a) for a in e.get('argv') or []) or '?'}"]
    if e.get("seed") is not None:
        lines.append(f"  seed:     {e['seed']} (the same seed on the same builders gives the "
                     f"same result)")
    if "rollback_to" in e:
        to = e["rollback_to"]
        state = "before the previous change" if to is None else f"right after change #{to}"
        lines.append(f"  rollback: to the state {state}")
    if isinstance(e.get("plan"), dict):
        p = e["plan"]
        lines.append(f"  plan:     {p.get('path')} (made {p.get('created', '?')} by "
                     f"{' '.join(p.get('argv') or []) or '?'})")
    for ring, r in sorted(e.get("rings", {}).items()):
        lines.append(f"  {ring}:")
        lines.append(f"    version       {r.get('version_before')} -> {r.get('version_after')}")
        if r.get("parts_moved") is not None:
            lines.append(f"    replica moves {r['parts_moved']}")
        lines.append(f"    builder md5   {r.get('builder_md5_before') or '-'} -> "
                     f"{r.get('builder_md5_after') or '-'}")
        lines.append(f"    ring.gz md5   {r.get('ring_md5_before') or '-'} -> "
                     f"{r.get('ring_md5_after') or '-'}")
        backups = [r[k] for k in ("backup_builder", "backup_ring") if r.get(k)]
        if backups:
            lines.append(f"    backups       {', '.join(backups)}")
    change = (e.get("change") or {}).get("rings", {})
    for ring, c in sorted(change.items()):
        for dev_id in c.get("remove", []):
            lines.append(f"  {ring}: remove device id {dev_id}")
        for dev_id, w in sorted(c.get("set_weight", {}).items(), key=lambda kv: int(kv[0])):
            lines.append(f"  {ring}: device id {dev_id} weight -> {w:g}")
        for d in c.get("add", []):
            lines.append(f"  {ring}: add {d['ip']}:{d['port']}/{d['device']} "
                         f"r{d['region']}z{d['zone']} weight {d['weight']:g}")
        for kind in ("region", "zone"):
            for dev_id, v in sorted(c.get(f"set_{kind}", {}).items(), key=lambda kv: int(kv[0])):
                lines.append(f"  {ring}: device id {dev_id} {kind} -> {v}")
        for dev_id, fields in sorted(c.get("set_info", {}).items(), key=lambda kv: int(kv[0])):
            what = ", ".join(f"{k} -> {v!r}" for k, v in fields.items())
            lines.append(f"  {ring}: device id {dev_id} {what}")
        for key in ("overload", "replicas", "min_part_hours"):
            if c.get(f"set_{key}") is not None:
                lines.append(f"  {ring}: {key} -> {c[f'set_{key}']:g}")
    for d in e.get("removed_devices", []):
        lines.append(f"  removed from {d['ring']}: id {d['id']} {d['ip']}:{d['port']}/"
                     f"{d['device']} r{d['region']}z{d['zone']} weight {d['weight']:g}"
                     + (f" meta {d['meta']!r}" if d.get("meta") else ""))
    pushes = e.get("pushes", [])
    if not pushes:
        lines.append("  pushed:   not recorded")
    for p in pushes:
        lines.append(f"  pushed:   {_time(p['time'])} by {p.get('user', '?')}"
                     f"{'' if p['ok'] else ' (FAILED on some hosts)'}")
        for node, h in sorted(p["hosts"].items()):
            if h["error"] or h["refused"]:
                why = h["error"] or "; ".join(f"{n}: {w}" for n, w in h["refused"].items())
                state = f"FAILED: {why}"
            else:
                state = (f"updated {', '.join(h['updated'])}" if h["updated"]
                         else "already current")
            lines.append(f"    {node:<12} ({h['address']}) {state}")
    return "\n".join(lines)


def register(group: click.Group) -> None:
    @group.group("history", invoke_without_command=True)
    @click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
                  help="show the latest N changes")
    @click.option("--replay", is_flag=True,
                  help="show, per ring, the swift-ring-builder commands that reproduce each "
                       "change from its pre-change backup")
    @click.option("--repair", is_flag=True,
                  help="set damaged history lines aside (into .ringmgr/set-aside/) so that "
                       "rollback and new changes work again")
    @json_option
    @click.pass_context
    def history(ctx, limit, replay, repair):
        """What changed when: id, time, user, command, seed, per ring version and md5,
        and where it was pushed.  `ringmgr history show N` shows one change in full.
        A damaged line is reported with its number (exit 1); --repair sets it aside."""
        if ctx.invoked_subcommand is not None:
            return None
        from ringmgr.rings.store import RingStore

        app = App.current()
        store = RingStore.from_config(app.config)
        if repair:
            return _repair(app, store)
        records, damage = store.read_history()
        entries = _with_pushes(records[-limit:], store.pushes())
        app.out(render_list(entries, str(store.dir), replay=replay))
        app.emit({"history": entries,
                  "damaged_lines": [{"line": n, "reason": why} for n, why in damage]})
        if damage:
            app.warn(store.damage_message(damage))
            app.reason = "check_failed"
            app.add_next(app.cmd("history", "--repair"))
            return 1
        return 0

    def _repair(app, store) -> int:
        with store.lock():
            gone = store.repair_history()
        if gone:
            app.out(f"set aside {len(gone)} damaged line(s) of {store.history_path} into "
                    f"{store.state_dir / 'set-aside'}: "
                    + ", ".join(f"line {n} ({why})" for n, why in gone))
        else:
            app.out(f"{store.history_path} has no damaged lines")
            app.reason = "nothing_to_do"
        app.written = bool(gone)
        app.emit({"set_aside": [{"line": n, "reason": why} for n, why in gone]})
        return 0

    @history.command("show")
    @click.argument("change_id", metavar="N", type=int)
    @json_option
    def show(change_id):
        """One change in full: command, seed, per ring versions, md5s and backups, the
        devices changed, and every push that followed it."""
        from ringmgr.errors import UsageError
        from ringmgr.rings.store import RingStore

        app = App.current()
        store = RingStore.from_config(app.config)
        hist = store.history()
        entry = next((e for e in hist if e["id"] == change_id), None)
        if entry is None:
            known = f"{hist[0]['id']}..{hist[-1]['id']}" if hist else "none yet"
            raise UsageError(f"no change #{change_id} in the history (known: {known})")
        (entry,) = _with_pushes([entry], store.pushes())
        app.out(render_change(entry))
        app.emit({"change": entry})
        return 0
