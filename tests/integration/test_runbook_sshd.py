"""Runbook steps that run on hosts, over real sshd test hosts (sim/hosts.py): process
checks, the nova-compute log, init files moved aside and back.  Only the OpenStack
API is the recording executor (it cannot run here)."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.apps import run_cli
from tests.helpers.openstack_recorder import RecordingExecutor, recorded

pytestmark = [pytest.mark.root, pytest.mark.slow]
C01, C02 = "c01.example.com", "c02.example.com"
W1 = "9b969a05-3f5e-4f0c-9a64-6f1b1c1d0e01"
D1 = "4c3d2a10-77aa-4bd1-8c1e-6f1b1c1d0e02"


@pytest.fixture
def procs():
    """Start processes with a chosen name (what `ps` shows); stop them by pid."""
    started = []

    def start(name):
        p = subprocess.Popen(["bash", "-c", f"exec -a {name} sleep 300"],
                             start_new_session=True)
        started.append(p)
        deadline = time.monotonic() + 30   # until bash has exec'd: ps shows the name
        while not Path(f"/proc/{p.pid}/cmdline").read_bytes().startswith(name.encode()):
            assert time.monotonic() < deadline and p.poll() is None, name
            time.sleep(0.02)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            p.wait()


@pytest.fixture
def env(sshd_hosts_factory, tmp_path, monkeypatch):
    hosts = sshd_hosts_factory(1)
    cfg = hosts.write_config(tmp_path / "ringmgr.toml", tmp_path)
    monkeypatch.setenv("RINGMGR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "ringmgr.log"))
    api = RecordingExecutor(host="admin")
    def invoke(*args):
        return run_cli(["--config", str(cfg), *args], api=api, sleep=lambda s: None)

    return hosts.hosts[0], api, invoke, tmp_path


def test_controller_check_over_ssh(env, procs):
    h, api, invoke, tmp = env
    tag = f"{os.getpid()}x{time.monotonic_ns() % 100000}"
    for name in ("nova-api", "nova-scheduler", "keystone-wsgi", "cinder-volume"):
        procs(f"{name}-{tag}")
    api.on("server list", recorded("server_list_c01.json"))
    api.on("image list", recorded("image_list.json"))
    api.on("project list", recorded("project_list.json"))
    res = invoke("controller", "check", "ctl1", "--address", h.address, "--json")
    doc = json.loads(res.stdout)
    by = {c["check"].split(" on ")[0]: c for c in doc["checks"]}
    assert by["process nova-*"]["status"] == "pass"
    assert by["process keystone"]["status"] == "pass"
    # no glance process runs on this machine (unless some other test starts one)
    if by["process glance-*"]["status"] == "fail":
        assert res.exit_code == 1
        glance = procs(f"glance-api-{tag}")
        res = invoke("controller", "check", "ctl1", "--address", h.address, "--json")
        assert res.exit_code == 0, res.output
        glance.terminate()
    doc = json.loads(res.stdout)
    assert {c["status"] for c in doc["checks"]} == {"pass"}
    assert [c["detail"] for c in doc["checks"][-3:]] == ["2 server(s)", "2 image(s)",
                                                         "2 project(s)"]


def test_controller_check_proxy_role(env, procs):
    h, api, invoke, tmp = env
    api.on("swift stat", "Account: AUTH_test\nContainers: 0\n")

    res = invoke("controller", "check", "p1", "--address", h.address, "--role", "proxy",
                 "--json")
    doc = json.loads(res.stdout)
    by = {c["check"].split(" on ")[0]: c for c in doc["checks"]}
    assert by["swift stat (proxy)"] == {"check": "swift stat (proxy)", "status": "pass",
                                        "detail": "Account: AUTH_test"}
    # another test's lab may run a swift proxy on this machine meanwhile
    if by["process swift-proxy"]["status"] == "fail":
        assert res.exit_code == 1 and doc["ok"] is False
    procs(f"swift-proxy-server-{os.getpid()}")
    res = invoke("controller", "check", "p1", "--address", h.address, "--role", "proxy")
    assert res.exit_code == 0, res.output
    assert "swift stat (proxy)" in res.stdout and "Account: AUTH_test" in res.stdout


def test_after_reboot_over_ssh(env, procs):
    h, api, invoke, tmp = env
    log = tmp / "nova-compute.log"
    log.write_text(recorded("nova-compute.log"))
    api.on("server list --host", recorded("server_list_c01.json"))
    api.on("server show", json.dumps({"id": W1, "name": "x", "status": "ACTIVE"}))
    args = ("compute", "after-reboot", C01, "--address", h.address, "--log", str(log), "--yes")
    ps = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    if "nova-compute" not in ps:
        res = invoke(*args)
        assert res.exit_code == 2 and "nova-compute is not running" in res.stderr
    procs(f"nova-compute-{os.getpid()}")
    res = invoke(*args, "--resume")
    assert res.exit_code == 0, res.output
    assert api.mutating == []         # both instances already ACTIVE: nothing rebooted
    log.write_text(recorded("nova-compute-unreachable.log"))
    res = invoke(*args)
    assert res.exit_code == 2 and "lost AMQP" in res.stderr, res.output


def test_init_files_moved_aside_and_back_over_ssh(env):
    h, api, invoke, tmp = env
    init = tmp / "etc-init"
    init.mkdir()
    (init / "nova-compute.conf").write_text("start on runlevel [2345]\n")
    (init / "nova-compute").write_text("#!/bin/sh\n")
    held = tmp / "held"
    api.on("server list --host", "[]")
    api.on(f"compute service list --host {C02}", json.dumps(
        [{"ID": 8, "Binary": "nova-compute", "Host": C02, "Status": "enabled", "State": "up"}]))
    api.on(f"compute service list --host {C01}", json.dumps(
        [{"ID": 7, "Binary": "nova-compute", "Host": C01, "Status": "disabled", "State": "up"}]))
    res = invoke("compute", "evacuate", C01, "--to", C02, "--address", h.address,
                 "--move-init-files", "--held-dir", str(held),
                 "--init-file", str(init / "nova-compute.conf"),
                 "--init-file", str(init / "nova-compute"), "--yes", "--json")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in held.iterdir()) == ["nova-compute", "nova-compute.conf"]
    assert list(init.iterdir()) == []
    steps = {s["name"]: s for s in json.loads(res.stdout)["steps"]}
    assert steps["disable-service"]["reason"] == "already disabled"
    # nova-compute is no service on this test machine: `service nova-compute status`
    # fails, so the runbook finds it stopped and does not try to stop it
    assert steps["stop-service"]["status"] == "skipped"
    # restore: files back (nova-compute's start cannot run here: the step fails, after
    # the files are back)
    res = invoke("compute", "restore", C01, "--address", h.address, "--yes")
    assert sorted(p.name for p in init.iterdir()) == ["nova-compute", "nova-compute.conf"]
    assert list(held.iterdir()) == []
    assert res.exit_code == 2 and "nova-compute" in res.stderr


def test_sshd_hosts_stopped_when_the_test_fails(tmp_path):
    from sim.hosts import SSHHosts

    seen = {}
    with pytest.raises(RuntimeError, match="test body failed"):
        with SSHHosts(1, workdir=tmp_path / "w") as hosts:
            seen["pids"] = list(hosts.pids)
            assert seen["pids"]
            raise RuntimeError("test body failed")
    for pid in seen["pids"]:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # reaped by now unless still alive; a zombie would show as such in /proc
        state = open(f"/proc/{pid}/stat").read().split()[2]
        assert state == "Z", f"sshd {pid} still running"


def test_evacuate_dry_run_host_steps_are_what_the_run_executes_over_ssh(env):
    """compute evacuate --move-init-files: the dry run's host_steps (the OpenStack
    client's and the compute host's commands) are exactly what the real run executes
    over SSH and through the recorder."""
    from tests.helpers.apps import planned, run_recorded

    h, api, invoke, tmp = env
    init = tmp / "etc-init"
    init.mkdir()
    (init / "nova-compute.conf").write_text("start on runlevel [2345]\n")
    held = tmp / "held"
    api.on("server list --host", "[]")
    api.on(f"compute service list --host {C02}", json.dumps(
        [{"ID": 8, "Binary": "nova-compute", "Host": C02, "Status": "enabled", "State": "up"}]))
    enabled, disabled = (json.dumps([{"ID": 7, "Binary": "nova-compute", "Host": C01,
                                      "Status": st, "State": "up"}])
                         for st in ("enabled", "disabled"))
    # the dry run's check, the real run's check, then its verify
    api.on(f"compute service list --host {C01}", enabled, enabled, disabled)
    api.on("compute service set", "")
    args = ["compute", "evacuate", C01, "--to", C02, "--address", h.address,
            "--move-init-files", "--held-dir", str(held),
            "--init-file", str(init / "nova-compute.conf")]
    res = invoke(*args, "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    plan = planned(doc)
    assert [s["step"] for s in doc["host_steps"]] == ["disable-service"] + \
        ["hold-init-files"] * 3
    assert plan[-1] == (C01, ("mv", str(init / "nova-compute.conf"),
                              str(held / "nova-compute.conf")))
    assert list(init.iterdir()) and api.mutating == []
    executed = []
    cfg = tmp / "ringmgr.toml"
    res = run_recorded(["--config", str(cfg), *args, "--yes", "--json"], executed, api=api)
    assert res.exit_code == 0, res.output
    assert executed == plan
    assert list(init.iterdir()) == [] and [p.name for p in held.iterdir()] == [
        "nova-compute.conf"]


@pytest.fixture
def compute_host(sshd_hosts_factory, tmp_path, monkeypatch):
    """A real sshd host whose /etc/init.d holds a test's nova-compute init script (in a
    private mount namespace), and the recorder for the OpenStack API."""
    from tests.helpers.compute_host import ComputeHost

    hosts = sshd_hosts_factory(1)
    cfg = hosts.write_config(tmp_path / "ringmgr.toml", tmp_path)
    monkeypatch.setenv("RINGMGR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "ringmgr.log"))
    host = ComputeHost(hosts, tmp_path / "c01").start()
    api = RecordingExecutor(host="admin")
    try:
        yield host, api, cfg, tmp_path
    finally:
        host.stop()
    assert api.unmatched == []


def _services(host, *states):
    return [json.dumps([{"ID": 7, "Binary": "nova-compute", "Host": host, "Status": st,
                         "State": "up"}]) for st in states]


def test_evacuate_restore_after_reboot_with_a_real_nova_compute_service(compute_host):
    """The guide's maintenance round trip on a compute host over SSH: `service
    nova-compute stop` really stops the process and its init file is really moved
    aside (and planned exactly so by the dry run); restore puts it back and `service
    nova-compute start` starts it; after-reboot finds it with ps and its AMQP line
    with tail.  Only the OpenStack API is the recorder."""
    from tests.helpers.apps import planned, run_cli, run_recorded

    host, api, cfg, tmp = compute_host
    held = tmp / "held"
    run = ["--config", str(cfg)]
    api.on("server list --host", "[]")
    api.on(f"compute service list --host {C02}", *_services(C02, "enabled"))
    api.on(f"compute service list --host {C01}", *_services(C01, "enabled"))
    api.on("compute service set", "")
    res = run_cli([*run, "compute", "restore", C01, "--address", host.address, "--yes"],
                  api=api, sleep=lambda s: None)    # nothing held yet: starts the service
    assert res.exit_code == 0, res.output
    first = host.pid()
    assert first is not None

    args = [*run, "compute", "evacuate", C01, "--to", C02, "--address", host.address,
            "--move-init-files", "--held-dir", str(held),
            "--init-file", "/etc/init.d/nova-compute"]
    res = run_cli([*args, "--dry-run", "--json"], api=api, sleep=lambda s: None)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [(s["host"], s["step"]) for s in doc["host_steps"]] == [
        ("admin", "disable-service"), (C01, "stop-service"), (C01, "hold-init-files"),
        (C01, "hold-init-files"), (C01, "hold-init-files")]
    assert host.pid() == first and host.script.exists()      # the dry run changed nothing
    # the real run's check (enabled), then its verify (disabled)
    api.on(f"compute service list --host {C01}", *_services(C01, "enabled", "disabled"))
    executed = []
    res = run_recorded([*args, "--yes", "--json"], executed, api=api)
    assert res.exit_code == 0, res.output
    assert executed == planned(doc)
    assert host.pid() is None                                 # really stopped
    assert not host.script.exists() and (held / "nova-compute").exists()

    api.on(f"compute service list --host {C01}", *_services(C01, "disabled"))
    res = run_cli([*run, "compute", "restore", C01, "--address", host.address, "--yes",
                   "--json"], api=api, sleep=lambda s: None)
    assert res.exit_code == 0, res.output
    assert {s["name"]: s["status"] for s in json.loads(res.stdout)["steps"]} == {
        "unhold-init-files": "done", "start-service": "done", "enable-service": "done"}
    assert host.script.exists() and not (held / "nova-compute").exists()
    assert host.pid() is not None and host.pid() != first      # a new nova-compute

    res = run_cli([*run, "compute", "after-reboot", C01, "--address", host.address,
                   "--log", str(host.log), "--yes", "--json"], api=api, sleep=lambda s: None)
    assert res.exit_code == 0, res.output
    assert [s["status"] for s in json.loads(res.stdout)["steps"]] == ["done", "done", "done"]
    host.stop()                     # the process gone: after-reboot says so
    res = run_cli([*run, "compute", "after-reboot", C01, "--address", host.address,
                   "--log", str(host.log), "--yes"], api=api, sleep=lambda s: None)
    assert res.exit_code == 2
