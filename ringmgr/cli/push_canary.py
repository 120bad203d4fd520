"""The live halves of push and verify: ``push --canary N`` (a confirmed rollout) and
``verify --live`` (the servers' recon ring md5s).  Called from ``cli/push.py``."""

from __future__ import annotations

import shlex

from ringmgr.errors import NotYet, StepFailed


def run_canary(app, nodes, canary: int, *, force: bool, accept_new: bool, dry_run: bool,
               progress) -> int:
    from ringmgr.cli.history import record_push
    from ringmgr.ops.push import push_rings, select_hosts
    from ringmgr.ops.rollout import choose_canaries, rollout, waves_of

    config = app.config
    if dry_run:
        hosts = select_hosts(config, list(nodes))
        canaries = choose_canaries(hosts, canary, set(config.proxies))
        later = [h for h in hosts if h not in canaries]
        report = push_rings(config, list(nodes), force=force, accept_new_host_keys=accept_new,
                            dry_run=True, progress=progress,
                            transport=app.transport)
        app.out(report.render_table())
        plan = [{"number": 0, "kind": "canary", "hosts": canaries}] + [
            {"number": i, "kind": "wave", "hosts": w}
            for i, w in enumerate(waves_of(later, config.ssh.parallel), start=1)]
        for w in plan:
            name = "canary" if w["kind"] == "canary" else f"wave {w['number']}"
            app.out(f"{name}: {', '.join(w['hosts'])}")
        app.emit({**report.to_json(), "rollout": {"canary": canary, "dry_run": True,
                                                  "ok": True, "waves": plan, "pending": [],
                                                  "stopped": None, "notes": []}})
        if report.failed:
            raise StepFailed(f"push would fail on {', '.join(report.failed)}")
        if not any(r.planned for r in report.results):
            app.reason = "nothing_to_do"
        else:
            app.add_next(app.rerun())
        return 0
    ro = rollout(config, list(nodes), canary, force=force, accept_new=accept_new,
                 progress=progress, note=app.note, transport=app.transport)
    for w in ro.waves:
        if w.report is not None:
            record_push(config, w.report)
    for n in ro.notes:
        app.warn(n, prefix="note: ")
    app.out(ro.render_text())
    updated = sorted({h for w in ro.waves for h, files in w.updated.items() if files})
    app.written = bool(updated)
    app.emit({"written": app.written, "rollout": ro.to_json()})
    if ro.stopped:
        pushed = [h for h in ro.pushed]
        cont = app.cmd("push", *ro.pending) if ro.pending else None
        msg = (f"rollout stopped: {ro.stopped}. "
               f"{'New rings on: ' + ', '.join(pushed) if pushed else 'No host has the new rings'}; "
               f"{'old rings kept on: ' + ', '.join(ro.pending) if ro.pending else ''}. "
               f"Fix the cause, then continue with `{cont}`; or roll back: `ringmgr rollback` "
               f"(the previous rings as a new version) and `ringmgr push --canary {canary}`")
        err = StepFailed(msg, next=[c for c in (cont,) if c])
        err.written = app.written
        raise err
    if not updated:
        app.reason = "nothing_to_do"
    app.remark(f"rollout done: {len(updated)} host(s) updated, canaries confirmed")
    return 0


def verify_live(app, nodes) -> dict:
    """Per node and ring: the md5 recon reports for the file on disk against the
    admin host's (``swift-recon --md5``, for every ring's servers).  Returns
    ``{"hosts": {node: {ring: state}}, "unreachable": {node: why}}``."""
    from pathlib import Path

    from ringmgr.live.health import file_md5s, recon_servers
    from ringmgr.live.recon import ReconClient

    config = app.config
    names = sorted(p.name for p in Path(config.cluster.builder_dir).glob("*.ring.gz"))
    if config.cluster.rings:
        names = [f"{r}.ring.gz" for r in config.cluster.rings]
    want = file_md5s(config.cluster.builder_dir, names)
    servers = [s for s in recon_servers(config, list(nodes) or None) if s.kind == "object"]
    sweep = ReconClient(config.recon).sweep([(s, "ringmd5") for s in servers])
    hosts, unreachable = {}, {}
    for s in servers:
        reply = sweep.get(s, "ringmd5")
        if reply is None or reply.error:
            unreachable[s.node] = f"{s.label}: {reply.error if reply else 'no answer'}"
            continue
        hosts[s.node] = {n.removesuffix(".ring.gz"): (
            "ok" if reply.value.get(n) == m else "missing" if reply.value.get(n) is None
            else "differs") for n, m in sorted(want.items())}
    return {"hosts": hosts, "unreachable": unreachable}


def report_live(app, live: dict, check: bool = True) -> None:
    """Print the recon comparison; with ``check``, raise for what it found (the SSH
    verify's own findings come first)."""
    rows = [(n, ", ".join(f"{r} {s}" for r, s in rings.items() if s != "ok") or "ok")
            for n, rings in sorted(live["hosts"].items())]
    rows += [(n, f"UNREACHABLE: {why}") for n, why in sorted(live["unreachable"].items())]
    if rows:
        width = max(len(n) for n, _ in rows)
        app.out("recon (the servers' own view of their ring files):")
        for n, what in rows:
            app.out(f"  {n.ljust(width)}  {what}")
    app.emit({"live": live})
    if not check:
        return
    if live["unreachable"]:
        raise StepFailed(f"recon did not answer on {', '.join(sorted(live['unreachable']))}: "
                         f"their rings could not be checked live")
    differ = sorted(n for n, rings in live["hosts"].items()
                    if any(s != "ok" for s in rings.values()))
    if differ:
        fix = shlex.join(["ringmgr", "push", *differ])
        raise NotYet(f"recon reports rings that differ from the admin host's on "
                     f"{', '.join(differ)}: run `{fix}`", reason="check_failed",
                     next=[app.cmd(fix)])


def push_after_canary(app, config, change_id: int | None = None) -> None:
    """``--push`` after a ring change when ``[cluster].canary`` is set: the same
    confirmed rollout as ``push --canary``; the JSON ``push`` key is the combined push
    report plus ``rollout``."""
    from ringmgr.cli.history import record_push
    from ringmgr.ops.rollout import rollout

    canary = config.cluster.canary
    app.note(f"pushing the rings: {canary} canary host(s) first ([cluster].canary) ...")
    ro = rollout(config, [], canary, note=app.note, transport=app.transport)
    reports = [w.report for w in ro.waves if w.report is not None]
    for rep in reports:
        record_push(config, rep, change_id)
    for n in ro.notes:
        app.warn(n, prefix="note: ")
    app.out(ro.render_text())
    hosts = {h: r for rep in reports for h, r in rep.to_json()["hosts"].items()}
    rings = reports[0].to_json()["rings"] if reports else {}
    retry = app.cmd("push", *ro.pending) if ro.pending else None
    app.emit({"push": {"written": any(rep.written for rep in reports),
                       "ok": ro.stopped is None, "dry_run": False,
                       "seconds": round(sum(rep.seconds for rep in reports), 3),
                       "rings": rings, "hosts": hosts, "failed": ro.pending if ro.stopped
                       else [], "retry": retry if ro.stopped else None,
                       "rollout": ro.to_json()}})
    if ro.stopped:
        raise StepFailed(f"the rings were written, but the rollout stopped: {ro.stopped}; "
                         f"old rings kept on {', '.join(ro.pending) or 'no host'}. Fix the "
                         f"cause and run `{retry}`, or `ringmgr rollback` and push again",
                         next=[c for c in (retry,) if c])
