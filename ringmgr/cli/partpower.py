"""``ringmgr increase-part-power``: thin; the phases are in ``ringmgr.ops.partpower``."""

from __future__ import annotations

import time

import click

from ringmgr.cli.app import App, iso_time, json_option


def render(data: dict) -> str:
    """The operation as text: rings, phases, per node the relinker runs, next."""
    lines = []
    for ring, r in data["rings"].items():
        lines.append(f"{ring}: part_power {r['part_power']}, next_part_power "
                     f"{r['next_part_power']}, version {r['version']} ({r['stage']})")
    if data.get("operation"):
        lines.append(f"operation {data['operation']}")
    for p in data["phases"]:
        mark = {"done": "[x]", "next": "[>]"}.get(p["state"], "[ ]")
        when = f" (finished {iso_time(p['finished'])})" if p.get("finished") else ""
        lines.append(f"  {mark} {p['name']:<9} {p['text']}{when}")
    for step, runs in data.get("nodes", {}).items():
        lines.append(f"{step}:")
        for node, r in runs.items():
            prog = []
            for dev, pols in sorted((r.get("progress") or {}).items()):
                for pol, rec in sorted(pols.items()):
                    if rec:
                        prog.append(f"{dev}/p{pol} {rec['parts_done']}/{rec['total_parts']}")
            state = "done" if r.get("done") else r.get("state")
            lines.append(f"  {node:<10} {state:<12} pid {r.get('pid') or '-'}  "
                         + (" ".join(prog) or "-")
                         + (f"  !! {r['error']}" if r.get("error") else ""))
    lines.append(f"next: {data['phase'] or 'nothing: complete'} ({data['why']})")
    return "\n".join(lines)


def render_plan(steps: list[dict]) -> str:
    import shlex

    lines = []
    for s in steps:
        lines.append(f"{s['phase']}: {s['text']}")
        if s["ring_call"]:
            lines.append(f"  ring: {s['ring_call']}, write the ring")
        for h in s["host_steps"]:
            lines.append(f"  [{h['host']}] {shlex.join(h['argv'])}")
    return "\n".join(lines) or "nothing to do: the operation is complete"


def register(group: click.Group) -> None:
    @group.command("increase-part-power")
    @click.argument("rings", nargs=-1, metavar="[RING]...")
    @click.option("--all-phases", is_flag=True, help="run every remaining phase (with "
                  "--wait: to the end), not just the next one")
    @click.option("--wait", is_flag=True, help="wait for the relinkers to finish instead "
                  "of returning while they run")
    @click.option("--cancel", is_flag=True, help="cancel the increase (only before the "
                  "increase phase): cancel, push, cleanup, finish")
    @click.option("--status", "show_status", is_flag=True,
                  help="show the phase, per-node progress and the next command; change "
                       "nothing")
    @click.option("--files-per-second", type=float, default=None,
                  help="the relinker's rate limit, per worker (default: none)")
    @click.option("--workers", default=None, metavar="N|auto",
                  help="the relinker's worker processes per node (default: one per device)")
    @click.option("--device", "devices", multiple=True,
                  help="relink only this device (repeatable; the phase completes only "
                       "when every device is done)")
    @click.option("--poll", type=float, default=5.0, show_default=True,
                  help="with --wait: seconds a progress check waits on a node for its "
                  "relinker to end (an end is seen at once)")
    @click.option("--dry-run", is_flag=True, help="print every remaining phase with its "
                  "host commands; change nothing")
    @click.option("--new", "new", is_flag=True, help="after a finished increase: start "
                  "another one (one more power)")
    @click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
    @json_option
    def increase_part_power(rings, all_phases, wait, cancel, show_status, files_per_second,
                            workers, devices, poll, dry_run, new, yes):
        """The partition-power increase of the object rings (every object ring, or the
        RINGs given), phase by phase: precheck, prepare, relink, increase, cleanup,
        finish (swift's "Modifying Ring Partition Power").  Each run does the next
        phase; run it again (or use --all-phases --wait) until it reports complete.
        Account and container rings are refused."""
        from ringmgr.errors import UsageError
        from ringmgr.ops import partpower as op
        from ringmgr.ops.relinker import RelinkOptions

        app = App.current()
        config = app.config
        if workers is not None and workers != "auto" and not workers.isdigit():
            raise UsageError(f"--workers must be a number or 'auto', not {workers!r}")
        if files_per_second is not None and files_per_second < 0:
            raise UsageError("--files-per-second must not be negative")
        names = op.select_rings(config, rings)
        env = op.Env(config, names, RelinkOptions(files_per_second, workers, tuple(devices)),
                     argv=app.argv, echo=app.note, warn=app.warn, push=_pusher(app, config),
                     poll_interval=poll)
        with env:    # one executor (SSH connection) per host, closed at the end
            return _command(app, env, op, names, cancel, all_phases, wait, show_status,
                            dry_run, new, yes, poll)


def _command(app, env, op, names, cancel, all_phases, wait, show_status, dry_run, new,
             yes, poll):
    config = env.config
    journal = op.read_journal(config)
    builders = op.load_builders(config, names)
    done_before = None if new else op.finished_already(config, builders)
    if done_before:
        from ringmgr.errors import NothingToDo

        app.emit({"written": False, **op.status_data(
            env, op.read_journal(config, finished=True), builders)})
        raise NothingToDo(done_before)
    if show_status or dry_run:
        data = op.status_data(env, journal, builders, cancel)
        if show_status and data["phase"] in ("relink", "cleanup") and journal:
            data = _live(env, journal, builders, data)
        if dry_run:
            data["plan"] = op.plan(env, journal, builders, cancel)
            data["host_steps"] = [h for s in data["plan"] for h in s["host_steps"]]
            app.out(render_plan(data["plan"]))
            app.add_next(app.rerun())
        else:
            app.out(render(data))
            if data["phase"]:
                app.add_next(app.rerun(drop=("--status",)))
        app.emit({"written": False, **data})
        return 0
    app.confirm("Run the partition-power increase's next phase"
                + (" and the ones after it" if all_phases else "") + "?", yes)
    outcome = op.run(env, cancel=cancel, all_phases=all_phases, wait=wait)
    app.written = outcome.written
    app.out(render(outcome.data))
    app.emit(outcome.data)
    if outcome.nothing_to_do:
        app.reason = "nothing_to_do"
        return 0
    if outcome.complete:
        return 0
    app.reason = "in_progress"
    again = app.rerun()
    if outcome.waiting:
        app.message = f"{outcome.waiting}; run the same command again to check"
        app.add_next(again, time.time() + poll)
    else:
        app.message = f"next phase: {outcome.data['phase']}"
        app.add_next(again)
    app.remark(app.message)
    return 1


def _live(env, journal, builders, data):
    """Ask the nodes (read only) how the running relinkers are doing."""
    from ringmgr.ops import partpower_nodes as pn
    from ringmgr.rings.partpower import RELINK_PHASES

    step = RELINK_PHASES[data["phase"]]
    nodes = pn.object_nodes(env.config, builders)
    op_id = journal["params"].get("op_id")
    states = pn.parallel(env.config, nodes, lambda on: pn.relinker_state(
        on, env.executor(on.node), env.recon, op_id, step, env.rings))
    live = {}
    for name, st in states.items():
        live[name] = ({"state": "unreachable", "pid": None, "rc": None, "done": False,
                       "error": pn.one_line(st), "progress": {}}
                      if isinstance(st, Exception) else
                      {k: st.get(k) for k in ("state", "pid", "rc", "done", "error",
                                              "progress")})
    data["nodes"] = {**data.get("nodes", {}), step: live}
    return data


def _pusher(app, config):
    def push(change_id):
        from ringmgr.cli.history import record_push
        from ringmgr.ops.push import push_rings

        app.note("pushing the rings to every node and proxy ...")
        report = push_rings(config, transport=app.transport)
        record_push(config, report, change_id)
        app.out(report.render_table())
        return report

    return push
