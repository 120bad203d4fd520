"""recover-host --method sql against a real MariaDB (started by tests/helpers/mariadb.py)."""

import json

import pytest

from ringmgr.errors import ConfigError, StepFailed, UsageError
from ringmgr.ops.runbooks import sqlrecover as sr
from tests.helpers.mariadb import available, create_openstack_dbs, mariadb_server

pytestmark = pytest.mark.skipif(not available(), reason="needs root")

FAILED, TARGET = "c01.example.com", "c02.example.com"
I1, I2, I3, I_DEL = ("9b969a05-0000-0000-0000-000000000001", "4c3d2a10-0000-0000-0000-000000000002",
                     "77777777-0000-0000-0000-000000000003", "dddddddd-0000-0000-0000-000000000004")
P1, P2, P3 = ("port-1", "port-2", "port-3")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mariadb_server(tmp_path_factory.mktemp("sqlrecover")) as db:
        yield db


@pytest.fixture
def db(server):
    for name in ("nova", "neutron", "cinder"):
        server.execute(f"DROP DATABASE IF EXISTS {name}")
    create_openstack_dbs(server)
    server.script([
        f"INSERT INTO instances (uuid, host, node, display_name, vm_state) VALUES "
        f"('{I1}', '{FAILED}', '{FAILED}', 'web1', 'active'),"
        f"('{I2}', '{FAILED}', '{FAILED}', 'db1', 'active'),"
        f"('{I3}', 'c03.example.com', 'c03.example.com', 'other', 'active')",
        f"INSERT INTO instances (uuid, host, node, display_name, vm_state, deleted) VALUES "
        f"('{I_DEL}', '{FAILED}', '{FAILED}', 'gone', 'deleted', 5)",
    ], db="nova")
    server.script([
        f"INSERT INTO ml2_port_bindings (port_id, host, vif_type) VALUES "
        f"('{P1}', '{FAILED}', 'ovs'), ('{P2}', '{FAILED}', 'ovs'), ('{P3}', 'c03.example.com', 'ovs')",
        f"INSERT INTO ml2_port_binding_levels (port_id, host, level, driver) VALUES "
        f"('{P1}', '{FAILED}', 0, 'openvswitch'), ('{P2}', '{FAILED}', 0, 'openvswitch'),"
        f"('{P3}', 'c03.example.com', 0, 'openvswitch')",
    ], db="neutron")
    server.script([
        f"INSERT INTO volumes (id, instance_uuid, status, attach_status, mountpoint, display_name) "
        f"VALUES ('vol-1', '{I1}', 'in-use', 'attached', '/dev/vdc', 'test'),"
        f"('vol-2', '{I3}', 'in-use', 'attached', '/dev/vdb', 'other')",
    ], db="cinder")
    return server


def targets(db, tcp=False):
    return (sr.parse_db_url(db.url("nova", tcp=tcp), "nova_db"),
            sr.parse_db_url(db.url("neutron", tcp=tcp), "neutron_db"))


def snapshot(db):
    return {
        "instances": db.execute("SELECT uuid, host, node, deleted FROM instances ORDER BY uuid",
                                db="nova"),
        "bindings": db.execute("SELECT port_id, host FROM ml2_port_bindings ORDER BY port_id, host",
                               db="neutron"),
        "levels": db.execute("SELECT port_id, host, level FROM ml2_port_binding_levels "
                             "ORDER BY port_id, host", db="neutron"),
    }


def test_rows_moved_and_backup_written(db, tmp_path):
    nova, neutron = targets(db)
    backup = tmp_path / "b" / "backup.json"
    report = sr.move_host(nova, neutron, FAILED, TARGET, backup_path=backup)
    assert report.committed == ["nova_db", "neutron_db"]
    snap = snapshot(db)
    assert snap["instances"] == [
        (I2, TARGET, TARGET, 0), (I3, "c03.example.com", "c03.example.com", 0),
        (I1, TARGET, TARGET, 0), (I_DEL, FAILED, FAILED, 5)]
    assert snap["bindings"] == [(P1, TARGET), (P2, TARGET), (P3, "c03.example.com")]
    assert snap["levels"] == [(P1, TARGET, 0), (P2, TARGET, 0), (P3, "c03.example.com", 0)]
    data = json.loads(backup.read_text())
    assert sorted(r["uuid"] for r in data["rows"]["instances"]) == sorted([I1, I2])
    assert all(r["host"] == FAILED for rows in data["rows"].values() for r in rows)
    assert [r["port_id"] for r in data["rows"]["ml2_port_binding_levels"]] == [P1, P2]
    assert backup.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in backup.parent.iterdir()] == ["backup.json"]   # no temp file
    # run again: nothing left on the failed host, nothing to do, no new backup
    again = sr.move_host(nova, neutron, FAILED, TARGET, backup_path=tmp_path / "b2.json")
    assert again.empty and again.backup is None and not (tmp_path / "b2.json").exists()


def test_tcp_url_and_target_node(db, tmp_path):
    nova, neutron = targets(db, tcp=True)
    assert nova.unix_socket is None and nova.port == db.port
    sr.move_host(nova, neutron, FAILED, TARGET, node="c02-hv", backup_path=tmp_path / "b.json")
    assert db.execute(f"SELECT DISTINCT host, node FROM instances WHERE uuid IN ('{I1}', '{I2}')",
                      db="nova") == [(TARGET, "c02-hv")]


def test_dry_run_changes_nothing_and_shows_sql(db, tmp_path):
    before = snapshot(db)
    nova, neutron = targets(db)
    report = sr.move_host(nova, neutron, FAILED, TARGET, dry_run=True,
                          backup_path=tmp_path / "b.json")
    assert snapshot(db) == before
    assert not (tmp_path / "b.json").exists()
    assert report.instances == sorted([I1, I2])
    text = report.text()
    assert (f"UPDATE instances SET host = '{TARGET}', node = '{TARGET}' WHERE host = '{FAILED}' "
            f"AND deleted = 0 AND uuid IN ('{I2}', '{I1}');") in text
    assert f"UPDATE ml2_port_binding_levels SET host = '{TARGET}'" in text
    assert I_DEL not in text


def test_trigger_failure_in_neutron_rolls_everything_back(db, tmp_path):
    """neutron fails after ml2_port_bindings changed in its transaction and after nova
    committed: neutron rolls back, nova is restored from the backup file."""
    db.execute("CREATE TRIGGER no_levels BEFORE UPDATE ON ml2_port_binding_levels FOR EACH ROW "
               "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'", db="neutron")
    before = snapshot(db)
    nova, neutron = targets(db)
    backup = tmp_path / "backup.json"
    with pytest.raises(StepFailed, match="injected failure.*nova was put back from"):
        sr.move_host(nova, neutron, FAILED, TARGET, backup_path=backup)
    assert snapshot(db) == before
    assert backup.exists()


def test_undo_reads_the_backup_file(db, tmp_path, monkeypatch):
    """The undo after a neutron failure uses the rows in the backup file: a file that
    cannot be read back leaves nova moved, and the error says so."""
    db.execute("CREATE TRIGGER no_levels BEFORE UPDATE ON ml2_port_binding_levels FOR EACH ROW "
               "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'", db="neutron")
    real_write = sr.write_backup

    def write_then_spoil(path, *a):
        out = real_write(path, *a)
        out.write_text("{")
        return out

    monkeypatch.setattr(sr, "write_backup", write_then_spoil)
    nova, neutron = targets(db)
    with pytest.raises(StepFailed, match="AND undoing nova failed.*not a readable"):
        sr.move_host(nova, neutron, FAILED, TARGET, backup_path=tmp_path / "b.json")
    assert {h for u, h, _, d in snapshot(db)["instances"] if u in (I1, I2)} == {TARGET}


@pytest.mark.parametrize("text", [
    "{", "[]", '{"kind": "ringmgr recover-host backup"}',
    '{"kind": "ringmgr recover-host backup", "failed": "a", "target": "b", "node": "b", '
    '"rows": {"instances": [{"host": "a", "node": "a"}]}}',
])
def test_bad_backup_file_is_usage_error_before_any_change(db, tmp_path, text):
    before = snapshot(db)
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    nova, neutron = targets(db)
    with pytest.raises(UsageError, match="bad.json: not a"):
        sr.restore_from_backup(bad, nova, neutron)
    assert snapshot(db) == before


def test_revoked_privilege_on_neutron_rolls_back(db, tmp_path):
    db.script(["CREATE USER IF NOT EXISTS 'neutron'@'127.0.0.1' IDENTIFIED BY 'pw'",
               "GRANT SELECT ON neutron.* TO 'neutron'@'127.0.0.1'"])
    try:
        before = snapshot(db)
        nova = sr.parse_db_url(db.url("nova"), "nova_db")
        neutron = sr.parse_db_url(
            f"mysql+pymysql://neutron:pw@127.0.0.1:{db.port}/neutron", "neutron_db")
        with pytest.raises(StepFailed, match="UPDATE command denied"):
            sr.move_host(nova, neutron, FAILED, TARGET, backup_path=tmp_path / "b.json")
        assert snapshot(db) == before
    finally:
        db.execute("DROP USER 'neutron'@'127.0.0.1'")


def test_duplicate_binding_on_target_rolls_back(db, tmp_path):
    db.execute(f"INSERT INTO ml2_port_bindings (port_id, host, vif_type, status) VALUES "
               f"('{P2}', '{TARGET}', 'ovs', 'INACTIVE')", db="neutron")
    before = snapshot(db)
    nova, neutron = targets(db)
    with pytest.raises(StepFailed, match="Duplicate entry"):
        sr.move_host(nova, neutron, FAILED, TARGET, backup_path=tmp_path / "b.json")
    assert snapshot(db) == before


def test_unreachable_neutron_changes_nothing(db, tmp_path):
    before = snapshot(db)
    nova = sr.parse_db_url(db.url("nova"), "nova_db")
    neutron = sr.parse_db_url(db.url("neutron") + "x", "neutron_db")  # bad socket path
    with pytest.raises(StepFailed, match="cannot connect to neutron_db"):
        sr.move_host(nova, neutron, FAILED, TARGET, backup_path=tmp_path / "b.json")
    assert snapshot(db) == before and not (tmp_path / "b.json").exists()


def test_restore_from_backup(db, tmp_path):
    before = snapshot(db)
    nova, neutron = targets(db)
    backup = tmp_path / "b.json"
    sr.move_host(nova, neutron, FAILED, TARGET, backup_path=backup)
    assert snapshot(db) != before
    counts = sr.restore_from_backup(backup, nova, neutron)
    assert counts == {"instances": 2, "ml2_port_bindings": 2, "ml2_port_binding_levels": 2}
    assert snapshot(db) == before


def test_attached_volumes(db):
    cinder = sr.parse_db_url(db.url("cinder"), "cinder_db")
    vols = sr.attached_volumes(cinder, [I1, I2])
    assert vols == [{"instance_uuid": I1, "volume_uuid": "vol-1", "status": "in-use",
                     "attach_status": "attached", "mountpoint": "/dev/vdc",
                     "display_name": "test"}]
    assert sr.attached_volumes(cinder, []) == []


def test_same_host_refused(db):
    nova, neutron = targets(db)
    with pytest.raises(UsageError):
        sr.move_host(nova, neutron, FAILED, FAILED)


@pytest.mark.parametrize("url, expect", [
    ("mysql+pymysql://nova:se%40cret@db1.example.com:3307/nova",
     ("nova", "se@cret", "db1.example.com", 3307, "nova", None)),
    ("mysql+pymysql://nova:x@controller/nova",
     ("nova", "x", "controller", 3306, "nova", None)),
    ("mysql+pymysql://root@localhost/neutron?unix_socket=/run/mysqld/mysqld.sock",
     ("root", "", "localhost", 3306, "neutron", "/run/mysqld/mysqld.sock")),
])
def test_parse_db_url(url, expect):
    t = sr.parse_db_url(url, "nova_db")
    assert (t.user, t.password, t.host, t.port, t.database, t.unix_socket) == expect


@pytest.mark.parametrize("url, msg", [
    (None, "openstack.nova_db is not set"),
    ("postgresql://u@h/nova", "unsupported scheme"),
    ("mysql+pymysql://u@h/", "must name one database"),
    ("mysql+pymysql://u@h/nova?sslmode=x", "unknown URL parameter"),
])
def test_parse_db_url_errors(url, msg):
    with pytest.raises(ConfigError, match=msg):
        sr.parse_db_url(url, "nova_db")


def test_mariadb_fixture_cleans_up_when_the_test_fails(tmp_path):
    import os

    seen = {}
    with pytest.raises(RuntimeError, match="test body failed"):
        with mariadb_server(tmp_path) as db:
            seen["pid"], seen["root"] = db.pid, db.root
            assert db.execute("SELECT 1") == [(1,)]
            raise RuntimeError("test body failed")
    with pytest.raises(ProcessLookupError):
        os.kill(seen["pid"], 0)
    assert not seen["root"].exists()
