"""The OpenStack databases the SQL recovery talks to: a target from its
``[openstack]`` URL, the connection (PyMySQL), and the guide's volume query."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from ringmgr.errors import ConfigError, StepFailed


@dataclass(frozen=True)
class DBTarget:
    """One database from a ``mysql+pymysql://user:pw@host[:port]/db[?unix_socket=]`` URL."""

    key: str
    user: str
    password: str
    host: str
    port: int
    database: str
    unix_socket: str | None = None

    def describe(self) -> str:
        where = self.unix_socket or f"{self.host}:{self.port}"
        return f"{self.database} on {where} as {self.user}"


def parse_db_url(url: str | None, key: str) -> DBTarget:
    """Parse one ``[openstack]`` database URL; ``key`` names it in errors."""
    if not url:
        raise ConfigError(f"openstack.{key} is not set: add the {key.split('_')[0]} "
                          f"database URL (mysql+pymysql://user:password@host/db) to the "
                          f"[openstack] section")
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"):
        raise ConfigError(f"openstack.{key}: unsupported scheme {parts.scheme!r} "
                          f"(use mysql+pymysql://)")
    db = parts.path.lstrip("/")
    if not db or "/" in db:
        raise ConfigError(f"openstack.{key}: the URL must name one database "
                          f"(mysql+pymysql://user:password@host/db)")
    query = parse_qs(parts.query)
    unknown = set(query) - {"unix_socket", "charset"}
    if unknown:
        raise ConfigError(f"openstack.{key}: unknown URL parameter(s) {', '.join(sorted(unknown))}")
    try:
        port = parts.port or 3306
    except ValueError:
        raise ConfigError(f"openstack.{key}: bad port in URL")
    return DBTarget(key=key, user=unquote(parts.username or "root"),
                    password=unquote(parts.password or ""),
                    host=parts.hostname or "localhost", port=port, database=db,
                    unix_socket=query.get("unix_socket", [None])[0])


def connect(target: DBTarget):
    import pymysql

    kw = dict(user=target.user, password=target.password, database=target.database,
              autocommit=False, connect_timeout=10, charset="utf8mb4",
              cursorclass=pymysql.cursors.DictCursor)
    if target.unix_socket:
        kw["unix_socket"] = target.unix_socket
    else:
        kw.update(host=target.host, port=target.port)
    try:
        return pymysql.connect(**kw)
    except pymysql.err.MySQLError as e:
        raise StepFailed(f"cannot connect to {target.key} ({target.describe()}): {e.args[-1]}")


# -- volumes (the guide's cinder/nova join, across two databases) -----------------------
VOLUMES_SQL = ("SELECT instance_uuid, id AS volume_uuid, status, attach_status, mountpoint, "
               "display_name FROM volumes WHERE instance_uuid IN %s AND deleted = 0 "
               "ORDER BY instance_uuid, mountpoint")


def attached_volumes(cinder: DBTarget, instances: list[str], connector=connect) -> list[dict]:
    """The guide joins cinder.volumes with nova.instances on one server; the two may
    live on different servers, so the instance list comes from nova (or the backup)
    and only cinder is queried here."""
    if not instances:
        return []
    con = connector(cinder)
    try:
        with con.cursor() as cur:
            cur.execute(VOLUMES_SQL, (tuple(instances),))
            return [dict(r) for r in cur.fetchall()]
    finally:
        con.rollback()
        con.close()
