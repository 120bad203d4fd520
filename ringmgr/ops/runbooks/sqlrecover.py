"""Total compute-node failure, the SQL way (operations guide, "Total Compute Node
Failure"): move a dead host's instances and port bindings to another host in the
nova and neutron databases.

Why this shape: nova and neutron are separate databases, often on separate servers,
so there is no single transaction across both.  The rows are therefore

1. locked (``SELECT ... FOR UPDATE`` in one transaction per database),
2. written to a backup file (fsynced) before anything changes,
3. moved in nova, committed; moved in neutron, committed;
4. and if neutron fails after nova committed, nova is put back from the backup file
   (only rows that still carry exactly the values this run wrote are touched).

``--dry-run`` shows the statements and the rows they would touch and changes nothing.
Nova's own ``server evacuate`` is the supported path; this is for when it cannot work.
"""

from __future__ import annotations

import datetime
import decimal
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.errors import StepFailed, UsageError
# parse_db_url and attached_volumes are re-exported for the runbooks and the CLI
from ringmgr.ops.runbooks.sqldb import (  # noqa: F401
    DBTarget, attached_volumes, connect, parse_db_url,
)

NOVA_INSTANCES = "instances"
NEUTRON_TABLES = ("ml2_port_bindings", "ml2_port_binding_levels")


# -- the statements (pure) --------------------------------------------------------------
# Only the columns the move changes or the undo needs: a backup file or --json output
# must never carry the rest of a row (instances.user_data holds cloud-init secrets).
COLUMNS = {NOVA_INSTANCES: ("uuid", "host", "node"),
           "ml2_port_bindings": ("port_id", "host"),
           "ml2_port_binding_levels": ("port_id", "host", "level")}


def select_sql(table: str) -> str:
    cols = ", ".join(COLUMNS[table])
    if table == NOVA_INSTANCES:
        return (f"SELECT {cols} FROM instances WHERE host = %s AND deleted = 0 "
                f"ORDER BY uuid FOR UPDATE")
    return f"SELECT {cols} FROM {table} WHERE host = %s ORDER BY port_id FOR UPDATE"


def update_sql(table: str) -> str:
    if table == NOVA_INSTANCES:
        return ("UPDATE instances SET host = %s, node = %s "
                "WHERE host = %s AND deleted = 0 AND uuid IN %s")
    return f"UPDATE {table} SET host = %s WHERE host = %s AND port_id IN %s"


def update_args(table: str, failed: str, target: str, node: str, keys: list[str]) -> tuple:
    if table == NOVA_INSTANCES:
        return (target, node, failed, tuple(keys))
    return (target, failed, tuple(keys))


def render(sql: str, args: tuple) -> str:
    """A statement with its arguments inlined, for display only (never executed)."""
    def lit(v):
        if isinstance(v, tuple):
            return "(" + ", ".join(lit(x) for x in v) + ")"
        if v is None:
            return "NULL"
        return "'" + str(v).replace("\\", "\\\\").replace("'", "''") + "'"
    sql = sql.replace(" FOR UPDATE", "")
    return sql.replace("%s", "{}").format(*(lit(a) for a in args)) + ";"


def _key(table: str, row: dict) -> str:
    return row["uuid"] if table == NOVA_INSTANCES else row["port_id"]


# -- the move --------------------------------------------------------------------------
@dataclass
class MoveReport:
    failed: str
    target: str
    node: str
    dry_run: bool
    rows: dict[str, list[dict]] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)
    backup: Path | None = None
    committed: list[str] = field(default_factory=list)

    @property
    def instances(self) -> list[str]:
        return [r["uuid"] for r in self.rows.get(NOVA_INSTANCES, [])]

    @property
    def empty(self) -> bool:
        return not any(self.rows.values())

    def to_json(self) -> dict:
        return {"failed": self.failed, "target": self.target, "node": self.node,
                "dry_run": self.dry_run, "backup": str(self.backup) if self.backup else None,
                "committed": self.committed, "statements": self.statements,
                "rows": {t: [{k: _plain(v) for k, v in r.items()} for r in rows]
                         for t, rows in self.rows.items()}}

    def text(self) -> str:
        lines = [f"rows on {self.failed}:"]
        for table, rows in self.rows.items():
            keys = ", ".join(_key(table, r) for r in rows) or "none"
            lines.append(f"  {table}: {len(rows)} ({keys})")
        lines.append("statements:" if self.statements else "statements: none")
        lines += [f"  {s}" for s in self.statements]
        if self.backup:
            lines.append(f"backup: {self.backup}")
        return "\n".join(lines)


def move_host(nova: DBTarget, neutron: DBTarget, failed: str, target: str, *,
              node: str | None = None, backup_path: Path | None = None,
              dry_run: bool = False, connector=connect) -> MoveReport:
    """Move ``failed``'s live instances and its port bindings to ``target``.

    Raises StepFailed when a database step fails; by then every database is as it was
    before (the failing one rolled back, an earlier one restored from the backup file).
    """
    if failed == target:
        raise UsageError("the failed host and the target host are the same")
    node = node or target
    report = MoveReport(failed, target, node, dry_run)
    con_nova = connector(nova)
    try:
        con_neutron = connector(neutron)
    except BaseException:
        con_nova.close()
        raise
    try:
        for con, tables in ((con_nova, (NOVA_INSTANCES,)), (con_neutron, NEUTRON_TABLES)):
            con.begin()
            with con.cursor() as cur:
                for table in tables:
                    cur.execute(select_sql(table), (failed,))
                    report.rows[table] = list(cur.fetchall())
        for table, rows in report.rows.items():
            if rows:
                args = update_args(table, failed, target, node, [_key(table, r) for r in rows])
                report.statements.append(render(update_sql(table), args))
        if dry_run or report.empty:
            con_nova.rollback()
            con_neutron.rollback()
            return report

        report.backup = write_backup(backup_path or default_backup_path(failed), report,
                                     nova, neutron)
        _apply(con_nova, report, (NOVA_INSTANCES,), nova)
        report.committed.append(nova.key)
        try:
            _apply(con_neutron, report, NEUTRON_TABLES, neutron)
        except StepFailed as e:
            try:
                saved = read_backup(report.backup)
                restored = undo_nova(con_nova, MoveReport(
                    failed, target, node, False,
                    rows={NOVA_INSTANCES: saved["rows"].get(NOVA_INSTANCES, [])}))
            except Exception as undo_err:
                raise StepFailed(
                    f"{e}; AND undoing nova failed ({undo_err}): nova still has the "
                    f"instances on {target}; restore them from {report.backup} "
                    f"(ringmgr compute recover-host {failed} --undo {report.backup})")
            report.committed.remove(nova.key)
            raise StepFailed(f"{e}; nova was put back from {report.backup} "
                             f"({restored} instance(s)); nothing is changed")
        report.committed.append(neutron.key)
        return report
    finally:
        for con in (con_nova, con_neutron):
            try:
                con.close()
            except Exception:
                pass


def _apply(con, report: MoveReport, tables, db: DBTarget) -> None:
    import pymysql

    try:
        with con.cursor() as cur:
            for table in tables:
                rows = report.rows.get(table, [])
                if not rows:
                    continue
                keys = [_key(table, r) for r in rows]
                n = cur.execute(update_sql(table),
                                update_args(table, report.failed, report.target,
                                            report.node, keys))
                if n != len(rows):
                    raise StepFailed(f"{db.key}: {table}: {n} row(s) changed, expected "
                                     f"{len(rows)}")
        con.commit()
    except pymysql.err.MySQLError as e:
        con.rollback()
        raise StepFailed(f"{db.key} ({db.describe()}): {e.args[-1]}; its transaction "
                         f"was rolled back")
    except StepFailed:
        con.rollback()
        raise


def undo_nova(con, report: MoveReport) -> int:
    """Put each backed-up instance row back where it was, if it still says TARGET."""
    rows = report.rows.get(NOVA_INSTANCES, [])
    con.begin()
    n = 0
    with con.cursor() as cur:
        for r in rows:
            n += cur.execute(
                "UPDATE instances SET host = %s, node = %s "
                "WHERE uuid = %s AND host = %s AND node <=> %s AND deleted = 0",
                (r["host"], r["node"], r["uuid"], report.target, report.node))
    con.commit()
    return n


# -- the backup file ---------------------------------------------------------------------
def default_backup_dir() -> Path:
    from ringmgr.exec.runner import default_state_dir

    return default_state_dir().parent / "backups"


def default_backup_path(failed: str, now=time.gmtime) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", now())
    return default_backup_dir() / f"recover-host.{failed}.{stamp}.json"


def _plain(v):
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


def write_backup(path: Path, report: MoveReport, nova: DBTarget, neutron: DBTarget) -> Path:
    """Write the rows as they are now (the one atomic writer, ``rings.files``: temp
    file, fsync, into place, fsync of the directory; 0600).  An existing file (an
    earlier attempt) is never overwritten: the new one gets a numbered name."""
    from ringmgr.exec.statedir import private_dir
    from ringmgr.rings.files import atomic_write

    path = Path(path)
    if path.parent == default_backup_dir():
        private_dir(path.parent)          # 0700, and refused if others can write it
    else:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    n, base = 1, path
    while path.exists():
        n += 1
        path = base.with_name(f"{base.stem}.{n}{base.suffix}")
    data = {"kind": "ringmgr recover-host backup", "created": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "failed": report.failed, "target": report.target, "node": report.node,
            "databases": {nova.key: nova.describe(), neutron.key: neutron.describe()},
            "rows": {t: [{k: _plain(v) for k, v in r.items()} for r in rows]
                     for t, rows in report.rows.items()}}
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, text.encode("utf-8"), mode=0o600, replace=False)
    return path


def read_backup(path: Path) -> dict:
    """A backup file written by ``write_backup``; a UsageError (one line) for anything
    else, before any database is touched."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a readable recover-host backup ({e})")
    rows = data.get("rows") if isinstance(data, dict) else None
    if (not isinstance(rows, dict) or data.get("kind") != "ringmgr recover-host backup"
            or not all(isinstance(data.get(k), str) for k in ("failed", "target", "node"))
            or not all(isinstance(r, dict) and "host" in r
                       and r.get("uuid" if t == NOVA_INSTANCES else "port_id")
                       for t in (NOVA_INSTANCES, *NEUTRON_TABLES) for r in rows.get(t, []))
            or not all("node" in r for r in rows.get(NOVA_INSTANCES, []))):
        raise UsageError(f"{path}: not a recover-host backup file (written by ringmgr "
                         f"compute recover-host --method sql)")
    return data


def restore_from_backup(path: Path, nova: DBTarget, neutron: DBTarget,
                        connector=connect) -> dict[str, int]:
    """Undo a recover-host move from its backup file (both databases, each in one
    transaction; rows that no longer carry the moved values are left alone)."""
    data = read_backup(path)
    failed, target, node = data["failed"], data["target"], data["node"]
    counts = {}
    con = connector(nova)
    try:
        report = MoveReport(failed, target, node, False,
                            rows={NOVA_INSTANCES: data["rows"].get(NOVA_INSTANCES, [])})
        counts[NOVA_INSTANCES] = undo_nova(con, report)
    finally:
        con.close()
    con = connector(neutron)
    try:
        con.begin()
        with con.cursor() as cur:
            for table in NEUTRON_TABLES:
                keys = tuple(r["port_id"] for r in data["rows"].get(table, []))
                counts[table] = cur.execute(
                    f"UPDATE {table} SET host = %s WHERE host = %s AND port_id IN %s",
                    (failed, target, keys)) if keys else 0
        con.commit()
    finally:
        con.close()
    return counts
