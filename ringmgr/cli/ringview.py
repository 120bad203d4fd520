"""Rings as text: import (a ringmgr.toml from existing builders), diff (two states of
the rings), dump (a builder for review in git).  Nothing here writes into
builder_dir; output files go through ``rings.files.write_output`` (never over a file
without --force).  Heavy imports stay inside the functions.
"""

from __future__ import annotations

from pathlib import Path

import click

from ringmgr.cli.app import App, json_option
from ringmgr.errors import EXIT_OK, EXIT_WARNING


def _protected(builder_dir: Path) -> tuple:
    return (builder_dir / ".ringmgr", builder_dir / "backups", builder_dir / ".lock")


def _write(app, path, text: str, force: bool, protected) -> None:
    from ringmgr.rings.files import write_output

    write_output(path, text.encode(), force=force, option="-o", protected=protected)
    app.remark(f"written to {path}")


def _nodes_by_ip(app) -> dict:
    """ip -> node name from the config, if there is one (names only make the report
    easier to read: diff of two files needs no config)."""
    from ringmgr.errors import ConfigError

    try:
        return {n.ip: name for name, n in app.config.nodes.items()}
    except ConfigError as e:
        if "not found" not in str(e):
            app.note(f"note: the config was not read ({e}): devices are shown by ip")
        return {}


def register(group: click.Group) -> None:
    @group.command("import")
    @click.argument("builder_dir", type=click.Path(file_okay=False))
    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                  metavar="FILE", help="write the config to FILE (default: stdout)")
    @click.option("--force", is_flag=True, help="overwrite FILE if it exists")
    @json_option
    def import_(builder_dir, output, force):
        """Write a ringmgr.toml describing the builders in BUILDER_DIR: nodes by ip,
        zones, regions, devices and weights per ring, ports, replication addresses,
        meta, and each ring's part power, replicas, min_part_hours and overload."""
        from ringmgr.rings.files import check_output
        from ringmgr.rings.importer import describe_builders
        from ringmgr.rings.store import RingStore

        app = App.current()
        d = Path(builder_dir).resolve()
        protected = _protected(d)
        if output is not None:
            check_output(output, force=force, option="-o", protected=protected)
        store = RingStore(d)
        pending = store.pending() if d.is_dir() else None
        builders = store.load_all()
        if pending:
            app.warn(f"a ring change is pending in {store.txn_dir}: the builders may be "
                     f"about to change (`ringmgr resume` with a config for {d})")
        result = describe_builders(builders, d)
        for w in result.warnings:
            app.warn(w)
        if output is None:
            app.out(result.text.rstrip("\n"))
        else:
            _write(app, output, result.text, force, protected)
        app.emit({"builder_dir": str(d), "rings": result.rings, "nodes": result.nodes,
                  "devices": result.devices, "output": output,
                  "config": result.text})
        return EXIT_OK

    @group.command("diff")
    @click.argument("a")
    @click.argument("b")
    @click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
                  help="show at most N devices, nodes or zones per list")
    @json_option
    def diff(a, b, top):
        """Compare two states of the rings: A and B each a builder, a ring.gz, a backup of
        either, a history change id (12: the rings right after change 12), a saved plan,
        or a ring name (its builder now).  Exit 0 same, 1 different."""
        from ringmgr.rings.diff import diff_sources, render_diff
        from ringmgr.rings.sources import resolve

        app = App.current()
        sa = resolve(a, lambda: app.config)
        sb = resolve(b, lambda: app.config)
        result = diff_sources(sa, sb, _nodes_by_ip(app))
        app.out(render_diff(result, top=top))
        app.emit(result)
        if result["same"]:
            return EXIT_OK
        app.reason = "check_failed"
        return EXIT_WARNING

    @group.command("dump")
    @click.argument("ring")
    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                  metavar="FILE", help="write the dump to FILE (default: stdout)")
    @click.option("--force", is_flag=True, help="overwrite FILE if it exists")
    @json_option
    def dump(ring, output, force):
        """RING's builder (a ring name, or a builder or ring file) as deterministic text:
        settings, devices, and per device its partition count and a digest of the set;
        commit it next to the builders and `git diff` shows what a change did."""
        from ringmgr.errors import UsageError
        from ringmgr.rings.dump import dump_builder
        from ringmgr.rings.files import check_output, is_ring_name
        from ringmgr.rings.sources import resolve

        app = App.current()
        protected = ()
        if is_ring_name(ring) and not Path(ring).exists():
            protected = _protected(Path(app.config.cluster.builder_dir))
        if output is not None:
            check_output(output, force=force, option="-o", protected=protected)
        src = resolve(ring, lambda: app.config)
        if len(src.rings) != 1:
            raise UsageError(f"{ring} holds {len(src.rings)} rings ({', '.join(src.rings)}): "
                             f"dump takes one")
        (name, builder), = src.rings.items()
        text = dump_builder(name, builder)
        if output is None:
            app.out(text.rstrip("\n"))
        else:
            _write(app, output, text, force, protected)
        app.emit({"ring": name, "source": src.kind, "output": output, "dump": text})
        return EXIT_OK
