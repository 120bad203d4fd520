"""controller/restore-order/schedule: pure parsers and tables, then the commands with
real MariaDB / sshd where the check crosses a machine boundary (the OpenStack API is
the recording executor: it cannot run here)."""

import json

import pytest

from ringmgr.errors import ConfigError
from ringmgr.ops.runbooks import compute as rb
from ringmgr.ops.runbooks import restore_order as ro
from ringmgr.ops.runbooks import schedule as sch
from tests.helpers.mariadb import available, mariadb_server
from tests.helpers.apps import run_cli
from tests.helpers.openstack_recorder import RecordingExecutor, recorded


@pytest.mark.parametrize("text, state", [
    (recorded("nova-compute.log"), True),
    (recorded("nova-compute-unreachable.log"), False),
    ("2026-11-24 INFO nova.service Starting compute node\n", None),
    ("", None),
])
def test_amqp_state(text, state):
    assert rb.amqp_state(text)[0] is state


def test_processes_matching_ignores_grep_and_ps():
    from ringmgr.ops import facts

    procs = facts.parse_ps("  7 root grep nova-\n  8 root ps -o pid=,user=,args= -e\n"
                           "  9 nova /usr/bin/python3 /usr/bin/nova-api\n\n")
    assert facts.processes_matching(procs, "nova-") == ["/usr/bin/python3 /usr/bin/nova-api"]


def test_guide_restore_order_and_checks():
    items = ro.entries(None)
    assert [e.priority for e in items] == [1, 2, 3, 4, 5, 10, 15, 20, 21, 22, 98, 99, 100]
    assert {e.service: e.check for e in items}["Message queue and database services"] == "databases"
    assert items[0].check is None and items[-1].check is None


def test_restore_order_override_sorted():
    items = ro.entries(["20 nova-api services", "5 Keystone services"])
    assert [(e.priority, e.check) for e in items] == [(5, "keystone"), (20, "nova-api")]


@pytest.mark.parametrize("line", ["Keystone", "x10 y", "10"])
def test_restore_order_override_bad(line):
    with pytest.raises(ConfigError, match="PRIORITY SERVICE"):
        ro.entries([line])


@pytest.mark.parametrize("text, rows", [
    ("Filesystem 1-blocks Used Available Capacity Mounted on\n"
     "/dev/loop3 314572800 19398656 295174144 7% /srv/node/sdb\n",
     [("/dev/loop3", 314572800, 19398656, "/srv/node/sdb")]),
    ("Filesystem 1-blocks Used Available Capacity Mounted on\n", []),
])
def test_parse_df(text, rows):
    assert sch.parse_df(text) == rows


def test_schedule_covers_every_period_in_order():
    assert [p for p in sch.PERIODS if any(t.period == p for t in sch.TASKS)] == list(sch.PERIODS)
    assert {t.check for t in sch.TASKS if t.check} == {"weird-instances", "disk-space", "rings"}


# -- commands --------------------------------------------------------------------------
@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "ringmgr.log"))
    monkeypatch.setenv("OS_CLOUD", "recorded")  # a cloud to ask: the recording executor
    for name in ("OS_AUTH_URL",):
        monkeypatch.delenv(name, raising=False)
    api = RecordingExecutor(host="admin")
    monkeypatch.setitem(_RECORDER, "api", api)

    def invoke(cfg_text, *args):
        cfg = tmp_path / "ringmgr.toml"
        cfg.write_text(f'[cluster]\nbuilder_dir = "{tmp_path}"\n' + cfg_text)
        return run_cli(["--config", str(cfg), *args], api=api, now=_RECORDER.get("now"))

    return api, invoke


def test_restore_order_list_json(cli_env):
    api, invoke = cli_env
    res = invoke("", "restore-order", "--json")
    assert res.exit_code == 0
    order = json.loads(res.stdout)["order"]
    assert order[5] == {"priority": 10, "service": "Message queue and database services",
                        "check": "databases"}
    assert api.calls == []


def test_restore_order_bad_override_exit_2(cli_env):
    api, invoke = cli_env
    res = invoke('[openstack]\nrestore_order = ["Keystone first"]\n', "restore-order")
    assert res.exit_code == 2 and "openstack.restore_order[0]" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert api.calls == []


@pytest.mark.skipif(not available(), reason="needs root")
def test_restore_order_check_in_order(cli_env, tmp_path):
    api, invoke = cli_env
    api.on("compute service list", recorded("service_list_all.json"))
    api.on("server list", recorded("server_list_c01.json"))
    api.on("project list", recorded("project_list.json"))
    api.on("image list", recorded("image_list.json"))
    api.on("volume service list", recorded("volume_service_list.json"))
    with mariadb_server(tmp_path / "db") as db:
        db.execute("CREATE DATABASE nova")
        res = invoke(f'[openstack]\nnova_db = "{db.url("nova")}"\n'
                     f'neutron_db = "{db.url("neutron_gone")}"\n', "restore-order", "--check",
                     "--json")
    doc = json.loads(res.stdout)
    assert res.exit_code == 1
    st = {o["service"]: (o["status"], o["detail"]) for o in doc["order"]}
    # c02's nova-compute is down in the recorded list: the first entry to restore
    assert st["nova-compute, nova-network, cinder hosts"][0] == "fail"
    assert "c02.example.com (down)" in st["nova-compute, nova-network, cinder hosts"][1]
    assert doc["restore_next"] == "4 nova-compute, nova-network, cinder hosts"
    # real MariaDB: nova answers, the neutron database does not exist
    assert st["Message queue and database services"][0] == "fail"
    assert "neutron_gone" in st["Message queue and database services"][1]
    assert st["Keystone services"] == ("pass", "2 project(s)")
    assert st["cinder-scheduler"][0] == "pass"
    assert st["Internal network connectivity"][0] == "manual"


def test_schedule_list_only(cli_env):
    api, invoke = cli_env
    res = invoke("", "schedule", "--no-checks")
    assert res.exit_code == 0 and api.calls == []
    assert res.stdout.splitlines()[0] == "Hourly:"
    assert "Semiannually:" in res.stdout


def test_schedule_daily_finds_error_instances(cli_env):
    api, invoke = cli_env
    api.on("server list", recorded("server_list_error.json"))
    res = invoke("", "schedule", "--period", "daily", "--json")
    assert res.exit_code == 1
    tasks = json.loads(res.stdout)["tasks"]
    auto = [t for t in tasks if t["automated"]]
    assert auto[0]["status"] == "fail" and "broken on c03.example.com: ERROR" in auto[0]["detail"]


def _closed_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_RECORDER: dict = {}     # the recorder for this admin host's OpenStack client, the clock


def _invoke(args):
    return run_cli(args, api=_RECORDER.get("api"), now=_RECORDER.get("now"))


def _weekly(cfg):
    res = _invoke(["--config", str(cfg), "schedule", "--period", "weekly",
                                   "--full-pct", "99", "--json"])
    tasks = {t["task"]: t for t in json.loads(res.stdout)["tasks"]}
    return (res, tasks["Disk space on the storage nodes"],
            tasks["Ring consistency across storage nodes and proxies (ringmgr verify)"])


@pytest.mark.root
@pytest.mark.slow
def test_schedule_weekly_over_ssh(sshd_hosts_factory, tmp_path, monkeypatch):
    """Real rings (swift's RingBuilder) pushed with `ringmgr push` to real sshd nodes:
    consistent passes; before the push, and after one node's ring is replaced, fails."""
    from swift.common.ring import RingData

    from tests.helpers.ringfactory import make_cluster

    hosts = sshd_hosts_factory(2)
    cluster = make_cluster(tmp_path / "cluster", nodes=3, disks=1,
                           rings=("account", "container", "object"))
    cfg = hosts.write_config(tmp_path / "ringmgr.toml", cluster.builder_dir)
    # [ssh] port is wrong: each node's own ssh_port must be the one used
    text = cfg.read_text()
    assert f"\nport = {hosts.port}\n" in text
    cfg.write_text(text.replace(f"\nport = {hosts.port}\n", f"\nport = {_closed_port()}\n", 1))
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "ringmgr.log"))
    monkeypatch.setitem(_RECORDER, "api", RecordingExecutor().on("server list", "[]"))

    res, disk, rings = _weekly(cfg)              # nothing pushed yet
    assert disk["status"] == "pass" and "on 2 node(s)" in disk["detail"], disk
    assert rings["status"] == "fail" and "h01, h02" in rings["detail"], rings
    assert res.exit_code == 1

    push = _invoke(["--config", str(cfg), "push"])
    assert push.exit_code == 0, push.output
    res, disk, rings = _weekly(cfg)
    assert rings == {"period": "weekly", "task": rings["task"], "automated": True,
                     "status": "pass", "detail": "2 host(s) have the admin host's rings"}
    assert res.exit_code == 0, res.output
    assert "[ok]   Ring consistency" in _invoke(
        ["--config", str(cfg), "schedule", "--period", "weekly", "--full-pct", "99"]).stdout

    # h02 gets another (valid) object ring: the check names it, and only it
    other = RingData.load(str(cluster.builder_dir / "object.ring.gz"))
    other.devs[0]["weight"] += 1
    other.save(str(hosts.host("h02").swift_dir / "object.ring.gz"))
    res, disk, rings = _weekly(cfg)
    assert rings["status"] == "fail" and "on: h02 " in rings["detail"], rings
    assert res.exit_code == 1

    # a node that is full by the threshold's measure
    res = _invoke(["--config", str(cfg), "schedule", "--period", "weekly",
                                   "--full-pct", "0.001", "--json"])
    disk = {t["task"]: t for t in json.loads(res.stdout)["tasks"]}["Disk space on the storage nodes"]
    assert disk["status"] == "fail" and "h01:/ " in disk["detail"]


# -- schedule: not applicable, stuck tasks, bad input -----------------------------------
def test_schedule_without_storage_nodes_skips_disk_and_rings(cli_env):
    api, invoke = cli_env
    api.on("server list", recorded("server_list_c01.json"))
    res = invoke("", "schedule", "--period", "weekly", "--period", "daily", "--json")
    assert res.exit_code == 0, res.output
    tasks = {t["task"]: t for t in json.loads(res.stdout)["tasks"]}
    disk = tasks["Disk space on the storage nodes"]
    assert disk["status"] == "skipped" and "no storage nodes" in disk["detail"]
    rings = tasks["Ring consistency across storage nodes and proxies (ringmgr verify)"]
    assert rings["status"] == "skipped" and "no storage nodes or proxies" in rings["detail"]
    text = invoke("", "schedule", "--period", "weekly").stdout
    assert "[n/a]  Disk space on the storage nodes - no storage nodes" in text


def test_schedule_without_an_openstack_cloud_is_n_a_not_fail(cli_env, monkeypatch):
    """No [openstack].openrc and no OS_CLOUD / OS_AUTH_URL: the instances check has no
    cloud to look at; it is shown as n/a and asks the client nothing."""
    api, invoke = cli_env
    monkeypatch.delenv("OS_CLOUD")
    res = invoke("", "schedule", "--period", "daily", "--json")
    assert res.exit_code == 0, res.output
    auto = [t for t in json.loads(res.stdout)["tasks"] if t["automated"]]
    assert auto[0]["status"] == "skipped" and "no OpenStack cloud configured" in auto[0]["detail"]
    assert api.calls == []
    text = invoke("", "schedule", "--period", "daily").stdout
    assert "[n/a]  Check for instances in a failed or weird state" in text
    # with an openrc configured it asks the cloud again (and fails on what it finds)
    api.on("server list", recorded("server_list_error.json"))
    res = invoke('[openstack]\nopenrc = "/nonexistent/openrc"\n', "schedule", "--period",
                 "daily", "--json")
    auto = [t for t in json.loads(res.stdout)["tasks"] if t["automated"]]
    assert res.exit_code == 1 and auto[0]["status"] == "fail", res.output


@pytest.mark.parametrize("openrc, env, configured", [
    (None, {}, None), (None, {"OS_CLOUD": ""}, None),
    (None, {"OS_CLOUD": "prod"}, "$OS_CLOUD"),
    (None, {"OS_AUTH_URL": "https://keystone:5000/v3"}, "$OS_AUTH_URL"),
    ("/root/openrc", {}, "[openstack].openrc = /root/openrc"),
])
def test_openstack_configured(openrc, env, configured):
    assert sch.openstack_configured(openrc, env) == configured


STUCK = "b1b1b1b1-2222-4333-8444-555566667777"


def _servers(*rows):
    return json.dumps([{"ID": i, "Name": n, "Status": st, "Task State": task,
                        "Host": "c01.example.com"} for i, n, st, task in rows])


@pytest.mark.parametrize("status, task, stale, want", [
    # migrating for hours: unchanged before the cutoff -> stuck
    ("MIGRATING", "migrating", True,
     "web9 on c01.example.com: MIGRATING/migrating (unchanged for over 90 min)"),
    # ACTIVE with a task state left behind (the guide's "weird state")
    ("ACTIVE", "rebooting", True,
     "web9 on c01.example.com: ACTIVE/rebooting (unchanged for over 90 min)"),
    # busy, but changed within the last 90 minutes: normal
    ("MIGRATING", "migrating", False, None),
    # a cloud without compute API 2.66: reported, age unknown
    ("MIGRATING", "migrating", "old cloud",
     "web9 on c01.example.com: MIGRATING/migrating (for how long unknown"),
])
def test_weird_instances_stuck_task(status, task, stale, want):
    import datetime

    from ringmgr.errors import StepFailed
    from ringmgr.ops.openstack import OpenStack
    from tests.helpers.openstack_recorder import Reply

    now = datetime.datetime(2026, 11, 24, 23, 0, tzinfo=datetime.timezone.utc)
    busy = (STUCK, "web9", status, task)
    ex = RecordingExecutor().on("server list", _servers(busy, ("a" * 8, "ok1", "ACTIVE", None)))
    if stale == "old cloud":
        ex.on("--changes-before", Reply(rc=1, stderr="versions supported by client: 2.1 - 2.65"))
    else:
        ex.on("--changes-before", _servers(busy) if stale else "[]")
    if want is None:
        assert sch.weird_instances(OpenStack(ex), now, 90) == "2 instance(s), none failed or stuck"
    else:
        with pytest.raises(StepFailed, match="1 instance\\(s\\) need a look") as e:
            sch.weird_instances(OpenStack(ex), now, 90)
        assert want in str(e.value)
    (query,) = ex.ran("--changes-before")
    assert query[:3] == ("openstack", "--os-compute-api-version", "2.66")
    assert query[query.index("--changes-before") + 1] == "2026-11-24T21:30:00Z"


def test_weird_instances_all_normal_makes_one_query():
    import datetime

    from ringmgr.ops.openstack import OpenStack

    ex = RecordingExecutor().on("server list", _servers(
        ("a" * 8, "ok1", "ACTIVE", None), ("b" * 8, "ok2", "SHUTOFF", None)))
    now = datetime.datetime(2026, 11, 24, 23, 0, tzinfo=datetime.timezone.utc)
    assert sch.weird_instances(OpenStack(ex), now) == "2 instance(s), none failed or stuck"
    assert len(ex.calls) == 1


def test_schedule_daily_reports_stuck_through_cli(cli_env, monkeypatch):
    import datetime

    api, invoke = cli_env
    now = datetime.datetime(2026, 11, 24, 23, 0, tzinfo=datetime.timezone.utc)
    monkeypatch.setitem(_RECORDER, "now", lambda: now)
    listing = _servers((STUCK, "web9", "BUILD", "spawning"))
    api.on("server list", listing)
    api.on("--changes-before", listing)
    res = invoke("", "schedule", "--period", "daily", "--stuck-minutes", "30", "--json")
    assert res.exit_code == 1
    auto = [t for t in json.loads(res.stdout)["tasks"] if t["automated"]]
    assert auto[0]["status"] == "fail"
    assert "web9 on c01.example.com: BUILD/spawning (unchanged for over 30 min)" in auto[0]["detail"]
    assert "2026-11-24T22:30:00Z" in api.ran("--changes-before")[0]
    assert api.mutating == []


@pytest.mark.parametrize("args, msg", [
    (("schedule", "--stuck-minutes", "0"), "--stuck-minutes must be above 0"),
    (("schedule", "--full-pct", "150"), "--full-pct in (0, 100]"),
    (("schedule", "--period", "yearly"), "Invalid value"),
    (("restore-order", "--check", "--bogus"), "No such option"),
])
def test_checks_bad_input_exit_2(cli_env, args, msg):
    api, invoke = cli_env
    res = invoke("", *args)
    assert res.exit_code == 2 and msg in res.stderr, res.output
    assert "Traceback" not in res.output and api.calls == []
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
