"""A private, real MariaDB server for tests (Debian mariadb-server).

``mariadb_server(tmp_dir)`` initialises its own datadir with mariadb-install-db,
starts mariadbd on a unix socket and on 127.0.0.1 at a free port, yields a
``MariaDB`` handle, then stops the server by its pid and removes the datadir, also
when the test fails.  Nothing is shared with a system MariaDB.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

MARIADBD = shutil.which("mariadbd", path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", ""))
INSTALL_DB = shutil.which("mariadb-install-db")


@dataclass
class MariaDB:
    root: Path
    socket: str
    port: int
    pid: int

    def url(self, db: str, user: str = "root", password: str = "", tcp: bool = False) -> str:
        auth = f"{user}:{password}" if password else user
        if tcp:
            return f"mysql+pymysql://{auth}@127.0.0.1:{self.port}/{db}"
        return f"mysql+pymysql://{auth}@localhost/{db}?unix_socket={self.socket}"

    def connect(self, db: str | None = None, **kw):
        return pymysql.connect(unix_socket=self.socket, user="root", database=db,
                               autocommit=True, **kw)

    def execute(self, sql: str, args=None, db: str | None = None) -> list[tuple]:
        con = self.connect(db)
        try:
            with con.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            con.close()

    def script(self, statements: list[str], db: str | None = None) -> None:
        for sql in statements:
            self.execute(sql, db=db)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> bool:
    """Root is needed (the server runs as root with its own datadir); a missing
    mariadb-server is a failure, not a skip (see ``mariadb_server``)."""
    return os.geteuid() == 0


@contextlib.contextmanager
def mariadb_server(base: Path):
    if not (MARIADBD and INSTALL_DB):
        raise RuntimeError("MariaDB tests need mariadb-server (mariadbd, mariadb-install-db; "
                           "scripts/apt-packages.txt)")
    base = Path(base)
    root = base / "mariadb"
    root.mkdir(parents=True)
    datadir, sock, pidfile, errlog = (root / "data", root / "mysqld.sock",
                                      root / "mysqld.pid", root / "error.log")
    proc = None
    try:
        subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={datadir}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=60)
        port = _free_port()
        proc = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--datadir={datadir}", f"--socket={sock}",
             f"--port={port}", "--bind-address=127.0.0.1", "--user=root",
             f"--pid-file={pidfile}", f"--log-error={errlog}", "--skip-name-resolve",
             "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
             "--performance-schema=OFF", "--skip-log-bin"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited {proc.returncode}: "
                                   f"{errlog.read_text()[-2000:] if errlog.exists() else ''}")
            try:
                pymysql.connect(unix_socket=str(sock), user="root").close()
                break
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mariadbd did not start within 30 s")
                time.sleep(0.1)
        yield MariaDB(root=root, socket=str(sock), port=port, pid=proc.pid)
    finally:
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


# The tables the operations guide's queries touch, cut down to the columns they use
# (plus the keys the real schemas have, so duplicate bindings fail as they would).
NOVA_SCHEMA = [
    """CREATE TABLE instances (
         id INT AUTO_INCREMENT PRIMARY KEY,
         uuid VARCHAR(36) NOT NULL UNIQUE,
         host VARCHAR(255), node VARCHAR(255),
         display_name VARCHAR(255),
         vm_state VARCHAR(255), task_state VARCHAR(255),
         user_data MEDIUMTEXT,
         deleted INT NOT NULL DEFAULT 0) ENGINE=InnoDB""",
]
NEUTRON_SCHEMA = [
    """CREATE TABLE ml2_port_bindings (
         port_id VARCHAR(36) NOT NULL, host VARCHAR(255) NOT NULL DEFAULT '',
         vif_type VARCHAR(64) NOT NULL, vnic_type VARCHAR(64) NOT NULL DEFAULT 'normal',
         profile VARCHAR(4095) NOT NULL DEFAULT '', vif_details VARCHAR(4095) NOT NULL DEFAULT '',
         status VARCHAR(16) NOT NULL DEFAULT 'ACTIVE',
         PRIMARY KEY (port_id, host)) ENGINE=InnoDB""",
    """CREATE TABLE ml2_port_binding_levels (
         port_id VARCHAR(36) NOT NULL, host VARCHAR(255) NOT NULL, level INT NOT NULL,
         driver VARCHAR(64), segment_id VARCHAR(36),
         PRIMARY KEY (port_id, host, level)) ENGINE=InnoDB""",
]
CINDER_SCHEMA = [
    """CREATE TABLE volumes (
         id VARCHAR(36) NOT NULL PRIMARY KEY, instance_uuid VARCHAR(36),
         status VARCHAR(255), attach_status VARCHAR(255), mountpoint VARCHAR(255),
         display_name VARCHAR(255), deleted TINYINT(1) NOT NULL DEFAULT 0) ENGINE=InnoDB""",
]


def create_openstack_dbs(db: MariaDB) -> None:
    for name, schema in (("nova", NOVA_SCHEMA), ("neutron", NEUTRON_SCHEMA),
                         ("cinder", CINDER_SCHEMA)):
        db.execute(f"CREATE DATABASE {name}")
        db.script(schema, db=name)
