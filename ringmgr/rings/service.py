"""One ring change, end to end: load, plan, simulate, report, confirm, commit.

No click here: output and confirmation come in as callables, so the CLI stays thin
and tests can drive the whole flow.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from ringmgr.errors import EXIT_OK, EXIT_WARNING, NotYet
from ringmgr.rings.engine import ChangeSet, Outcome, dev_definition, gate_text
from ringmgr.rings.parallel import simulate_all
from ringmgr.rings.replay import replay_commands
from ringmgr.rings.store import RingStore


@dataclass
class ChangeResult:
    written: bool
    exit_code: int
    reports: dict
    messages: list[str] = field(default_factory=list)
    record: dict | None = None
    seed: int | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    changes: ChangeSet | None = None
    fullness: dict | None = None   # measured bytes: predicted % full per device

    def to_json(self) -> dict:
        d = {"written": self.written, "rings": self.reports, "steps": [],
             "seed": self.seed, "messages": self.messages}
        if self.fullness is not None:
            d["fullness"] = self.fullness
        if self.changes is not None:
            d["change"] = self.changes.description
        if self.record is not None:
            d["change_id"] = self.record["id"]
        return d


def nodes_by_ip(config) -> dict[str, str]:
    return {n.ip: name for name, n in config.nodes.items()}


def new_seed() -> int:
    return random.SystemRandom().randrange(2**31)


def reports_for(config, outcomes: dict[str, Outcome], used_bytes: dict | None = None) -> dict:
    from ringmgr.rings.report import ring_report

    by_ip = nodes_by_ip(config)
    used = dict(config.cluster.used_bytes)
    used.update(used_bytes or {})
    out = {}
    for name, o in outcomes.items():
        r = ring_report(name, o.before, o.after, o.parts_moved, by_ip, used.get(name),
                        edited=o.edited)
        if not o.rebalanced:
            r["rebalanced"] = False
        if o.layout_dispersion is not None:
            r["dispersion_after"] = round(float(o.layout_dispersion), 4)
        if o.note:
            r["note"] = f"the rebalance after this change was not saved ({o.note}); the " \
                        f"change itself is saved and the ring written"
        out[name] = r
    return out


def run_change(config, planner: Callable[[dict], ChangeSet], *, argv: list[str],
               seed: int | None, dry_run: bool, confirm: Callable[[str], None],
               show: Callable[[str], None], used_bytes: dict | None = None,
               progress: Callable[[str], None] | None = None,
               after_simulation: Callable[[ChangeResult], None] | None = None,
               validate: bool | None = None,
               load: Callable[[RingStore], dict] | None = None,
               measure: Callable[[dict], dict] | None = None,
               allow_full: bool = False) -> ChangeResult:
    """Plan with ``planner`` on the current builders, simulate, and unless ``dry_run``
    confirm and commit.  Raises NotYet when the min_part_hours gate blocks the change,
    or when swift's save rule keeps a plain rebalance from being saved.

    ``load(store)`` gives the builders to plan on instead of ``store.load_all()``
    (``create``: new empty builders, with ``store.loaded[name] = None`` so that the
    commit refuses if a builder appeared meanwhile).

    ``measure(builders)`` gives what each device holds (node -> ``NodeUsage``): the
    report then carries measured bytes and each device's predicted fullness, and a
    change that would fill a device past ``[cluster].full_percent`` is refused (exit 1,
    nothing written), dry run or not, unless ``allow_full``."""
    from ringmgr.rings.report import render_text

    store = RingStore.from_config(config)
    if dry_run:
        store.refuse_if_pending()
    lock = contextlib.nullcontext() if dry_run else store.lock()
    with lock:
        if not dry_run:
            store.refuse_if_pending(held=True)
        builders = load(store) if load is not None else store.load_all()
        store.refuse_unchangeable(builders)
        store.check_rings_readable(builders)
        changes = planner(builders)
        if not dry_run:
            store.preflight(changes.rings)  # a full disk or immutable file: refuse now
        seed = new_seed() if seed is None else seed
        outcomes = simulate_all(builders, changes, seed, progress=progress,
                                validate=(not dry_run) if validate is None else validate)
        blocked = {n: o for n, o in outcomes.items() if o.blocked}
        if blocked:
            raise NotYet(_blocked_message(blocked), not_before=time.time() + max(
                o.gate_seconds_left for o in blocked.values()))
        changed = {n: o for n, o in outcomes.items() if o.changed}
        result = ChangeResult(False, EXIT_OK, reports_for(config, outcomes, used_bytes),
                              seed=seed, outcomes=outcomes, changes=changes)
        refused = {n: o.refusal for n, o in outcomes.items() if o.refusal}
        if not changed:
            if refused:
                gated = any("min_part_hours" in why for why in refused.values())
                raise NotYet("nothing was written:\n" + "\n".join(
                    f"  {n}: {why}" for n, why in refused.items()),
                    reason="gate_closed" if gated else "nothing_to_do")
            raise NotYet("nothing to do: no ring needs a rebalance now "
                         "(no partition could be reassigned usefully)", reason="nothing_to_do")
        show(render_text(result.reports))
        if measure is not None:
            usage = measure(list(builders.values()) + [o.after for o in outcomes.values()])
            _check_fullness(config, result, usage, show, allow_full)
        result.messages = _followups(outcomes) + [f"{n}: not saved: {why}"
                                                  for n, why in refused.items()]
        if result.fullness and result.fullness.get("allowed_by"):
            from ringmgr.rings.fullness import over_text

            result.messages.append("--allow-full: the change fills " + over_text(
                result.fullness["over"], config.cluster.full_percent))
        if after_simulation:
            after_simulation(result)
        if dry_run:
            result.exit_code = EXIT_OK
            return result
        confirm(f"Write these changes to {len(changed)} ring(s) in {store.dir}?")
        created = changes.info.get("create") or {}
        record = {
            "description": changes.description,
            "argv": argv,
            "seed": seed,
            "rings": {n: {"version_before": o.before.version, "parts_moved": o.parts_moved,
                          "replay": {"commands": replay_commands(
                              changes.rings[n], seed,
                              format_version=config.cluster.format_version,
                              rebalanced=o.rebalanced, create=created.get(n))}}
                      for n, o in changed.items()},
            "removed_devices": [dict(dev_definition(d), ring=n) for n, o in changed.items()
                                for d in o.removed_devs],
            "change": changes.to_json(),
        }
        result.record = store.commit({n: o.after for n, o in changed.items()}, record)
        result.written = True
        result.exit_code = EXIT_WARNING if result.messages else EXIT_OK
        return result


def _check_fullness(config, result, usage: dict, show, allow_full: bool) -> None:
    from ringmgr.rings.fullness import over_text, predict

    pct = config.cluster.full_percent
    result.fullness = predict(result.reports, usage, pct)
    result.fullness["unmeasured"] = {n: u.error for n, u in sorted(usage.items()) if u.error}
    rows = result.fullness["devices"]
    if rows:
        show("predicted fullness (measured):\n" + "\n".join(
            f"  {r['node']}/{r['device']}: {r['percent_before']:g}% -> {r['percent_after']:g}%"
            f" of {r['size']:,} bytes" for r in rows))
    for node, err in result.fullness["unmeasured"].items():
        show(f"  {node}: not measured: {err}")
    over = result.fullness["over"]
    if over and not allow_full:
        e = NotYet(f"refused: the change would fill {over_text(over, pct)}; nothing was "
                   f"written (add capacity or move less: --max-move; --allow-full to do it "
                   f"anyway)", reason="risk")
        e.data = result.to_json()
        raise e
    if over:
        result.fullness["allowed_by"] = "--allow-full"


def _when(seconds: int) -> str:
    t = datetime.now(timezone.utc).timestamp() + seconds
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _blocked_message(blocked: dict[str, Outcome]) -> str:
    lines = [f"  {n}: min_part_hours ({o.after.min_part_hours} h) not yet passed since the last "
             f"rebalance; data can move again in {gate_text(o.gate_seconds_left)} "
             f"(at {_when(o.gate_seconds_left)})" for n, o in blocked.items()]
    return ("nothing was written: the change cannot move any data yet.\n" + "\n".join(lines)
            + "\nRun the same command again then.")


def _followups(outcomes: dict[str, Outcome]) -> list[str]:
    """What remains after the change: further rebalances and when they can run."""
    msgs = []
    for n, o in outcomes.items():
        if not o.changed:
            continue
        gate = o.after.min_part_seconds_left
        when = (f"after {gate_text(gate)} (at {_when(gate)}) and a finished replication pass"
                if gate else "after a finished replication pass")
        if o.dispersion > 0:
            msgs.append(f"{n}: dispersion {o.dispersion:.2f}% after the change: some partitions "
                        f"keep replicas closer together than the zones allow; another "
                        f"rebalance ({when}) helps only if the weights allow better — review "
                        f"zone weights or overload (`swift-ring-builder {n}.builder dispersion`)")
        elif o.needs_more():
            msgs.append(f"{n}: balance {o.balance:.2f}% after the change: push the rings, then "
                        f"run `ringmgr rebalance` again {when}")
        if o.removed_devs and o.gate_seconds_left > 0:
            msgs.append(f"{n}: the removed devices were emptied; the rest of the rebalance "
                        f"can follow in {gate_text(o.gate_seconds_left)}")
    return msgs


def progress_printer(stream=None):
    """Per-ring progress on ``stream`` (default: sys.stderr at the time of the call)."""
    from ringmgr.rings.parallel import progress_printer as per_ring

    return per_ring(stream)
