"""ringmgr compute recover-host --method sql: real MariaDB for nova/neutron/cinder, the
recording executor for the OpenStack API (it cannot run here)."""

import json

import pytest

from tests.helpers.mariadb import available, create_openstack_dbs, mariadb_server
from tests.helpers.apps import run_cli
from tests.helpers.openstack_recorder import RecordingExecutor
from tests.integration.test_sqlrecover import FAILED, I1, I2, TARGET, snapshot

pytestmark = pytest.mark.skipif(not available(), reason="needs root")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mariadb_server(tmp_path_factory.mktemp("sqlcli")) as db:
        yield db


@pytest.fixture
def env(server, tmp_path, monkeypatch):

    for name in ("nova", "neutron", "cinder"):
        server.execute(f"DROP DATABASE IF EXISTS {name}")
    create_openstack_dbs(server)
    server.script([f"INSERT INTO instances (uuid, host, node) VALUES "
                   f"('{I1}', '{FAILED}', '{FAILED}'), ('{I2}', '{FAILED}', '{FAILED}')"], db="nova")
    server.script([f"INSERT INTO ml2_port_bindings (port_id, host, vif_type) VALUES "
                   f"('p1', '{FAILED}', 'ovs')",
                   f"INSERT INTO ml2_port_binding_levels (port_id, host, level) VALUES "
                   f"('p1', '{FAILED}', 0)"], db="neutron")
    server.script([f"INSERT INTO volumes (id, instance_uuid, status, attach_status, mountpoint, "
                   f"display_name) VALUES ('vol-1', '{I1}', 'in-use', 'attached', '/dev/vdc', 't')"],
                  db="cinder")
    monkeypatch.setenv("RINGMGR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "ringmgr.log"))
    cfg = tmp_path / "ringmgr.toml"
    cfg.write_text(f'[cluster]\nbuilder_dir = "{tmp_path}"\n\n[openstack]\n'
                   f'nova_db = "{server.url("nova")}"\n'
                   f'neutron_db = "{server.url("neutron", tcp=True)}"\n'
                   f'cinder_db = "{server.url("cinder")}"\n')
    api = RecordingExecutor(host="admin")
    api.on(f"compute service list --host {FAILED}", json.dumps(
        [{"ID": 7, "Binary": "nova-compute", "Host": FAILED, "Status": "enabled", "State": "down"}]))
    api.on("server show", json.dumps({"id": I1, "name": "w", "status": "ACTIVE",
                                      "OS-EXT-SRV-ATTR:host": TARGET}))
    for verb in ("server reboot", "server add volume", "server remove volume"):
        api.on(verb, "")        # what the run changes in nova: answered with nothing
    monkeypatch.setitem(_RECORDER, "api", api)
    return server, cfg, api, tmp_path


_RECORDER: dict = {}     # the fixture's recorder for this admin host's OpenStack client


def invoke(args):
    return run_cli(args, api=_RECORDER["api"], sleep=lambda s: None)


def run(cfg, *args):
    return invoke(["--config", str(cfg), "compute", "recover-host", FAILED,
                   "--to", TARGET, "--method", "sql", *args])


def test_dry_run_prints_sql_and_rows_changes_nothing(env):
    db, cfg, api, tmp = env
    before = snapshot(db)
    res = run(cfg, "--dry-run")
    assert res.exit_code == 0, res.output
    assert snapshot(db) == before and api.mutating == []
    assert f"instances: 2 ({I2}, {I1})" in res.stderr
    assert f"UPDATE ml2_port_bindings SET host = '{TARGET}' WHERE host = '{FAILED}'" in res.stderr
    assert f"server reboot --hard {I1}" in res.stdout
    assert "server add volume --device /dev/vdc" in res.stdout
    assert not list((tmp / "state").glob("../backups/*"))
    doc = json.loads(run(cfg, "--dry-run", "--json").stdout)
    assert doc["written"] is False and snapshot(db) == before
    assert sorted(r["uuid"] for r in doc["sql"]["rows"]["instances"]) == sorted([I1, I2])
    assert [r["port_id"] for r in doc["sql"]["rows"]["ml2_port_binding_levels"]] == ["p1"]
    assert any(st.startswith("UPDATE instances SET host = ") for st in doc["sql"]["statements"])
    assert doc["sql"]["backup"] is None


def test_real_run_moves_rows_reboots_and_reattaches(env):
    db, cfg, api, tmp = env
    backup = tmp / "rows.json"
    res = run(cfg, "--yes", "--backup", str(backup), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["finished"] and doc["written"]
    assert doc["sql"]["backup"] == str(backup) and doc["sql"]["committed"] == ["nova_db",
                                                                              "neutron_db"]
    snap = snapshot(db)
    assert {h for _, h, _, _ in snap["instances"]} == {TARGET}
    assert snap["bindings"] == [("p1", TARGET)]
    assert json.loads(backup.read_text())["rows"]["instances"][0]["host"] == FAILED
    assert [c[-1] for c in api.ran("reboot", "--hard")] == sorted([I1, I2])
    assert api.ran("remove", "volume", I1, "vol-1")
    assert api.ran("add", "volume", "--device", "/dev/vdc", I1, "vol-1")
    # again: every step sees the work done and skips it
    res = run(cfg, "--yes", "--backup", str(tmp / "rows2.json"))
    assert res.exit_code == 0, res.output
    assert "no rows left on" in res.stdout and not (tmp / "rows2.json").exists()


def test_neutron_failure_leaves_everything_and_exits_2(env):
    db, cfg, api, tmp = env
    db.execute("CREATE TRIGGER boom BEFORE UPDATE ON ml2_port_bindings FOR EACH ROW "
               "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected'", db="neutron")
    before = snapshot(db)
    res = run(cfg, "--yes", "--backup", str(tmp / "rows.json"))
    assert res.exit_code == 2
    assert "nova was put back" in res.stderr and "Traceback" not in res.output
    assert snapshot(db) == before
    assert api.mutating == []     # no reboot was attempted
    # the cause fixed, the same command continues; the first backup is kept
    db.execute("DROP TRIGGER boom", db="neutron")
    res = run(cfg, "--yes", "--backup", str(tmp / "rows.json"))
    assert res.exit_code == 0, res.output
    assert snapshot(db)["bindings"] == [("p1", TARGET)]
    assert (tmp / "rows.json").exists() and (tmp / "rows.2.json").exists()


def test_undo_from_backup(env):
    db, cfg, api, tmp = env
    before = snapshot(db)
    assert run(cfg, "--yes", "--backup", str(tmp / "rows.json")).exit_code == 0
    res = run(cfg, "--yes", "--undo", str(tmp / "rows.json"))
    assert res.exit_code == 0, res.output
    assert snapshot(db) == before


def test_missing_db_url_is_config_error(env, tmp_path):
    db, cfg, api, tmp = env
    cfg.write_text(f'[cluster]\nbuilder_dir = "{tmp}"\n')
    before = snapshot(db)
    res = run(cfg, "--yes")
    assert res.exit_code == 2 and "openstack.nova_db is not set" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert snapshot(db) == before and api.mutating == []


@pytest.mark.parametrize("content, msg", [
    ("not json", "not a readable recover-host backup"),
    (json.dumps({"kind": "ringmgr recover-host backup", "failed": "c09", "target": TARGET,
                 "node": TARGET, "rows": {}}),
     "is the backup of a move from c09 to c02.example.com"),
])
def test_bad_undo_file_exit_2_nothing_changed(env, content, msg):
    db, cfg, api, tmp = env
    before = snapshot(db)
    bad = tmp / "bad.json"
    bad.write_text(content)
    res = run(cfg, "--yes", "--undo", str(bad))
    assert res.exit_code == 2 and msg in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert snapshot(db) == before and api.mutating == []


SECRET = "cloud-init-password-Zq81"


def test_user_data_never_reaches_backup_output_or_logs(env):
    """instances.user_data (cloud-init secrets) is neither moved nor restored: no
    backup, --json, text output, audit log or journal may carry it."""
    import base64

    db, cfg, api, tmp = env
    encoded = base64.b64encode(f"#cloud-config\npassword: {SECRET}\n".encode()).decode()
    db.execute(f"UPDATE instances SET user_data = '{encoded}', display_name = 'w'", db="nova")
    outputs = [run(cfg, "--dry-run", "--json"), run(cfg, "--dry-run")]
    assert all(r.exit_code == 0 for r in outputs), outputs[0].output
    assert "instances: 2" in outputs[1].output
    outputs.append(run(cfg, "--yes", "--json"))     # the backup path the dry run chose
    assert outputs[-1].exit_code == 0, outputs[-1].output
    [backup] = (tmp / "backups").glob("recover-host.*.json")
    outputs.append(run(cfg, "--yes", "--undo", str(backup), "--json"))
    assert outputs[-1].exit_code == 0, outputs[-1].output
    texts = [r.output for r in outputs] + [backup.read_text()]
    texts += [p.read_text() for p in tmp.rglob("*") if p.is_file() and p.suffix in
              (".json", ".log")]
    assert json.loads(backup.read_text())["rows"]["instances"][0]["host"] == FAILED
    for text in texts:
        assert SECRET not in text and encoded not in text
    assert db.execute("SELECT DISTINCT user_data FROM instances", db="nova") == [(encoded,)]


def _interrupted_run(db, cfg, tmp):
    """A run stopped after the move: neutron fails once, the journal keeps the plan."""
    db.execute("CREATE TRIGGER boom BEFORE UPDATE ON ml2_port_bindings FOR EACH ROW "
               "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected'", db="neutron")
    assert run(cfg, "--yes", "--backup", str(tmp / "rows.json")).exit_code == 2
    db.execute("DROP TRIGGER boom", db="neutron")
    [journal] = (tmp / "state").glob("compute-recover-host.*.json")
    return journal


def test_resume_with_another_target_is_refused(env):
    db, cfg, api, tmp = env
    _interrupted_run(db, cfg, tmp)
    before = snapshot(db)
    res = invoke(["--config", str(cfg), "compute", "recover-host", FAILED,
                  "--to", "c03.example.com", "--method", "sql", "--yes"])
    assert res.exit_code == 2, res.output
    assert "was started for another target 'c02.example.com'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert snapshot(db) == before and api.mutating == []
    assert run(cfg, "--yes").exit_code == 0           # the right target continues


def test_journal_edited_to_reattach_another_instances_volume_is_refused(env):
    db, cfg, api, tmp = env
    journal = _interrupted_run(db, cfg, tmp)
    data = json.loads(journal.read_text())
    assert data["params"]["volumes"]
    data["params"]["volumes"].append({"instance_uuid": "someone-elses-vm", "volume_uuid":
                                      "their-volume", "mountpoint": "/dev/vdz"})
    journal.write_text(json.dumps(data))
    before = snapshot(db)
    res = run(cfg, "--yes")
    assert res.exit_code == 2, res.output
    assert "volumes (a volume of an instance that is not moved)" in res.stderr
    assert snapshot(db) == before and api.mutating == []


def test_backup_given_after_a_dry_run_is_the_one_written(env):
    db, cfg, api, tmp = env
    assert run(cfg, "--dry-run").exit_code == 0          # journals its default path
    res = run(cfg, "--yes", "--backup", str(tmp / "mine.json"))
    assert res.exit_code == 0, res.output
    assert json.loads((tmp / "mine.json").read_text())["rows"]["instances"]
    assert not list((tmp / "backups").glob("*.json"))
