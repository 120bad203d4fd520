"""Config and rings stay one truth: with ``[converge]`` configured, an imperative ring
change (add/remove/set-weight/drain, set-info, set-zone, ...) also rewrites
ringmgr.toml so that it describes the rings as the change leaves them, and the next
``ringmgr converge`` does not undo it.

``config_edit(text, config, outcomes, changes)`` is pure: the file's text in, the new
text out (tomlkit keeps comments and layout), or a ``SyncProblem`` when the file cannot
say the result exactly.  It edits at the most general level that is true (a node's
zone when all its devices moved, else the device's table) and then proves itself: the
new text, parsed, must describe every changed device of every changed ring as the
builders after the change hold it, and leave every other difference as it was.

A drain (``drain-node``) makes the node's devices leave the config (the desired state
is "drained and removed": converge would finish it); a ramp leaves the configured
weights (its target) in place.
"""

from __future__ import annotations

import difflib
from pathlib import Path

NODE_FIELDS = ("zone", "region", "meta", "replication_ip")
DEVICE_FIELDS = ("weight", "zone", "region", "meta", "replication_ip", "port",
                 "replication_port")


class SyncProblem(Exception):
    """The config cannot be made to say this change (the message says what to edit)."""


def _devices_table(node_tbl, ring: str, config_node):
    """The table holding the node's devices for ``ring`` (the ring override, if any)."""
    if ring in config_node.ring_devices:
        return node_tbl["rings"][ring]["devices"]
    if "devices" not in node_tbl:
        import tomlkit

        node_tbl["devices"] = tomlkit.inline_table()
    return node_tbl["devices"]


def _set_device_key(table, dev: str, key: str, value) -> None:
    import tomlkit

    entry = table.get(dev)
    if key == "weight" and not isinstance(entry, dict):
        table[dev] = value
        return
    if not isinstance(entry, dict):
        t = tomlkit.inline_table()
        t["weight"] = float(entry) if entry is not None else 0.0
        table[dev] = t
        entry = table[dev]
    entry[key] = value


def _changed_devices(outcomes: dict) -> dict[str, dict]:
    """ring -> {id: (before dev or None, after dev or None)} for devices that changed."""
    from ringmgr.rings.engine import live_devs

    out = {}
    for ring, o in outcomes.items():
        if not o.changed:
            continue
        before = {d["id"]: d for d in live_devs(o.before)}
        after = {d["id"]: d for d in live_devs(o.after)}
        changed = {}
        for i in set(before) | set(after):
            b, a = before.get(i), after.get(i)
            if b is None or a is None or any(b.get(k) != a.get(k) for k in
                                             ("ip", *DEVICE_FIELDS)):
                changed[i] = (b, a)
        out[ring] = changed
    return out


def config_edit(text: str, config, outcomes: dict, changes) -> str | None:
    """The new text of ringmgr.toml (None: nothing to change).  SyncProblem when the
    file cannot describe the result."""
    import tomlkit

    from ringmgr.config import parse_config
    from ringmgr.rings.reconcile import ring_diff

    doc = tomlkit.parse(text)
    nodes_tbl = doc.get("nodes", {})
    by_ip = {n.ip: n for n in config.nodes.values()}
    by_ip.update({n.previous_ip: n for n in config.nodes.values() if n.previous_ip})
    drain = (changes.info.get("gradual") or {}).get("kind") == "drain"
    ramp = (changes.info.get("gradual") or {}).get("kind") == "ramp"
    changed = _changed_devices(outcomes)
    removed: dict[tuple[str, str], set[str]] = {}
    values: dict[tuple[str, str], dict] = {}   # (node, field) -> {(ring, dev): value}
    for ring, devs in changed.items():
        for i, (b, a) in devs.items():
            d = a or b
            node = by_ip.get(b["ip"] if b is not None else d["ip"]) or by_ip.get(d["ip"])
            if node is None:
                raise SyncProblem(f"{ring}: device {i} ({d['ip']}/{d['device']}) belongs to "
                                  f"no node of the config")
            if a is None or (drain and b is not None):
                removed.setdefault((node.name, d["device"]), set()).add(ring)
                continue
            if b is None and ramp:
                continue
            for f in ("ip", *DEVICE_FIELDS):
                if b is None or b.get(f) != a.get(f):
                    if f == "weight" and ramp:
                        continue
                    values.setdefault((node.name, f), {})[(ring, a["device"])] = a[f]
    for (name, f), per in values.items():
        node = config.nodes[name]
        tbl = nodes_tbl[name]
        distinct = set(per.values())
        every = {(r, dev) for r in config_rings(config, outcomes)
                 for dev in node.devices_for(r)}
        if f == "ip":
            tbl["ip"] = distinct.pop() if len(distinct) == 1 else _refuse(name, f)
            if "previous_ip" in tbl:
                del tbl["previous_ip"]
            continue
        if f in NODE_FIELDS and len(distinct) == 1 and every <= set(per):
            tbl[f] = next(iter(distinct))
            for r, dev in per:
                entry = _devices_table(tbl, r, node).get(dev)
                if isinstance(entry, dict) and f in entry:
                    del entry[f]
            continue
        for (r, dev), v in per.items():
            _set_device_key(_devices_table(tbl, r, node), dev, f, v)
    for (name, dev), rings in removed.items():
        node = config.nodes[name]
        tbl = nodes_tbl[name]
        for r in rings:
            if r in node.ring_devices:
                table = tbl["rings"][r]["devices"]
                if dev in table:
                    del table[dev]
        shared = [r for r in config_rings(config, outcomes)
                  if r not in node.ring_devices and dev in node.devices]
        if shared and set(shared) <= rings:
            del tbl["devices"][dev]
            if not tbl["devices"]:
                tbl["devices"] = tomlkit.inline_table()
        elif shared:
            raise SyncProblem(f"{name}/{dev} left {', '.join(sorted(rings))} but stays in "
                              f"{', '.join(sorted(set(shared) - rings))}: give the node "
                              f"rings.RING.devices tables in {config.path}")
    for ring, c in changes.rings.items():
        for key in ("overload", "replicas", "min_part_hours"):
            v = getattr(c, key)
            if v is None:
                continue
            rings_tbl = doc.setdefault("rings", tomlkit.table(is_super_table=True))
            if ring not in rings_tbl:
                rings_tbl[ring] = tomlkit.table()
            rings_tbl[ring][key] = v
    new = tomlkit.dumps(doc)
    if new == text:
        return None
    # the proof: the new file says exactly what the rings now hold for what changed
    import tomllib

    new_config = parse_config(tomllib.loads(new), Path(config.path))
    for ring, o in outcomes.items():
        if not o.changed:
            continue
        old = {_key(d) for d in ring_diff(config, ring, o.after).differences}
        now = {_key(d) for d in ring_diff(new_config, ring, o.after).differences}
        wrong = [d for d in ring_diff(new_config, ring, o.after).differences
                 if _key(d) in now - old or (d.dev_id in changed.get(ring, {})
                                             and d.kind not in ("drain", "empty",
                                                                "remove")
                                             and not (ramp and d.kind in ("weight",
                                                                          "add")))]
        if drain:
            wrong = [d for d in wrong if d.kind not in ("drain", "empty", "remove")]
        if wrong:
            raise SyncProblem(f"{config.path} cannot be updated to say this change exactly "
                              f"({wrong[0].text()}): edit it by hand, or the next converge "
                              f"undoes the change")
    return new


def _key(d) -> tuple:
    return (d.ring, d.kind, d.node, d.device, d.field, str(d.want))


def _refuse(name, f):
    raise SyncProblem(f"nodes.{name}.{f}: the devices would need different values")


def config_rings(config, outcomes) -> list[str]:
    return list(outcomes)


def unified_diff(path, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        f"a/{Path(path).name}", f"b/{Path(path).name}"))


class ConfigSync:
    """The CLI side: after the simulation, work out (and show) the config edit; after
    the commit, write it.  ``None`` from ``for_config`` when there is no [converge]."""

    def __init__(self, app, config):
        self.app, self.config = app, config
        self.path = Path(config.path)
        self.old = self.path.read_text(encoding="utf-8")
        self.new = None
        self.problem = None
        self.written = self.marked = False

    @classmethod
    def for_config(cls, app, config):
        if getattr(config, "converge", None) is None or not getattr(config, "path", None):
            return None
        return cls(app, config)

    def wrap(self, hook):
        def after_simulation(result):
            self.prepare(result.outcomes, result.changes)
            if hook is not None:
                hook(result)
        return after_simulation

    def prepare(self, outcomes: dict, changes) -> None:
        """Work out the config edit for this change and show it (the history keeps it)."""
        try:
            self.new = config_edit(self.old, self.config, outcomes, changes)
        except SyncProblem as e:
            self.problem = str(e)
        if self.new is not None:
            diff = unified_diff(self.path, self.old, self.new)
            changes.info["config"] = {"path": str(self.path), "diff": diff}
            self.app.out(f"ringmgr.toml ([converge]: the config follows the rings):\n"
                         f"{diff.rstrip()}")

    def plan_applied(self, current: dict, builders: dict, change: dict) -> None:
        """``ringmgr apply PLAN``: the edit for the saved builders replacing ``current``
        (a ring the plan creates is not described here: a warning says so)."""
        from types import SimpleNamespace

        from ringmgr.rings.changes import ChangeSet

        changes = ChangeSet.from_json(change)
        outcomes = {n: SimpleNamespace(changed=True, before=current[n], after=b)
                    for n, b in builders.items() if n in current}
        new = sorted(set(builders) - set(current))
        if new:
            self.problem = (f"the plan creates {', '.join(new)}: {self.path} does not "
                            f"describe new rings; edit it by hand")
        self.prepare(outcomes, changes)

    def json(self) -> dict:
        if self.new is None and self.problem is None:
            return {}
        return {"config_update": {"path": str(self.path), "written": False,
                                  "diff": unified_diff(self.path, self.old, self.new)
                                  if self.new else "", "problem": self.problem}}

    def write_before_commit(self) -> None:
        """Called once the change is confirmed, right before the builders are committed:
        the config goes first, so that a crash in between leaves it ahead of the rings
        (marked: `status` names it, `resume` puts it back with the uncommitted change)
        rather than behind them (where converge would undo the change)."""
        if self.problem:
            self.app.warn(self.problem)
        if self.new is None:
            return
        if self.path.read_text(encoding="utf-8") != self.old:
            self.problem = (f"{self.path} changed while the ring change ran: not updated; "
                            f"`ringmgr plan` shows what differs")
            self.app.warn(self.problem)
            self.new = None
            return
        from ringmgr.config_sync_marker import mark, write_config

        # until the builders are committed, status names this edit and resume undoes it
        mark(self.config, self.path, self.old, self.new)
        self.marked = True
        write_config(self.path, self.new)
        self.written = True

    @property
    def marker(self) -> Path:
        from ringmgr.config_sync_marker import marker_path

        return marker_path(self.config)

    def committed(self) -> None:
        """The builders are committed: the config edit is whole."""
        self.marker.unlink(missing_ok=True)

    def undo(self) -> None:
        """The commit failed after the config was written: put the old text back."""
        if self.written and self.path.read_text(encoding="utf-8") == self.new:
            from ringmgr.config_sync_marker import write_config

            write_config(self.path, self.old)
            self.written = False
        if self.marked:
            self.marker.unlink(missing_ok=True)

    def report(self) -> dict:
        out = self.json()
        if self.written:
            out["config_update"]["written"] = True
            self.app.remark(f"{self.path} updated to describe the rings as they are now")
        elif out and self.problem:
            out["config_update"]["problem"] = self.problem
        return out
