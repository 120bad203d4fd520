"""Compute runbooks through the CLI.  The OpenStack API and nova-compute's service
control cannot run here, so the admin host's and compute host's executors are the
recording executor (tests/helpers/openstack_recorder.py); steps that can run for
real run over real sshd hosts in test_runbook_sshd.py."""

import json

import pytest

from tests.helpers.apps import run_cli
from tests.helpers.openstack_recorder import RecordingExecutor, Reply, recorded
from tests.helpers.refusal import one_line_error
from tests.helpers.ringfactory import checksums

W1 = "9b969a05-3f5e-4f0c-9a64-6f1b1c1d0e01"
D1 = "4c3d2a10-77aa-4bd1-8c1e-6f1b1c1d0e02"
C01, C02 = "c01.example.com", "c02.example.com"


def state_files(env) -> dict:
    """md5 of every run journal and record in the state dir; the empty flock files a
    run opens (``.<key>.lock``, no data, held only while it runs) are left out."""
    return {k: v for k, v in checksums(env.tmp / "state").items()
            if not (k.endswith(".lock") and v == EMPTY_MD5)}


EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def show(uuid, host, status="ACTIVE", task=None):
    return json.dumps({"id": uuid, "name": uuid[:4], "status": status,
                       "OS-EXT-SRV-ATTR:host": host,
                       "OS-EXT-SRV-ATTR:instance_name": "instance-0000274a",
                       "OS-EXT-STS:task_state": task, "volumes_attached": []})


def services(host, status="enabled", state="up"):
    return json.dumps([{"ID": 7, "Binary": "nova-compute", "Host": host, "Zone": "nova",
                        "Status": status, "State": state}])


STATE_CHANGING_API = ("compute service set", "server migrate", "server reboot",
                      "server evacuate", "server add volume", "server remove volume")
# the hypervisor's (virsh, qemu-nbd: they cannot run here); service control, ps, tail,
# mv and mount run over real sshd hosts in test_runbook_sshd.py
STATE_CHANGING_HOST = ("virsh suspend", "virsh resume", "qemu-nbd", "modprobe nbd",
                       "service nova-compute start", "service nova-compute stop", "umount")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "ringmgr.log"))
    cfg = tmp_path / "ringmgr.toml"
    cfg.write_text(f'[cluster]\nbuilder_dir = "{tmp_path}"\n\n[openstack]\n'
                   f'openrc = "{tmp_path / "openrc"}"\n')
    api = RecordingExecutor(host="admin")
    # the state-changing calls answer with nothing, as the client does; every other
    # command a test does not give an answer fails (the recorder is strict)
    for verb in STATE_CHANGING_API:
        api.on(verb, "")
    hosts = {}

    def new_host(name):
        ex = RecordingExecutor(host=name)
        for verb in STATE_CHANGING_HOST:
            ex.on(verb, "")
        return ex

    def host_executor(name, address):
        return hosts.setdefault(address, new_host(name))

    def invoke(*args):
        return run_cli(["--config", str(cfg), *args], api=api, hosts=host_executor,
                       sleep=lambda s: None)

    class Env:
        pass

    e = Env()
    e.api, e.hosts, e.invoke, e.tmp = api, hosts, invoke, tmp_path
    e.host = lambda a: hosts.setdefault(a, new_host(a))
    yield e
    # a command nobody expected is a failure, even one run with check=False
    assert api.unmatched == []
    assert {a: h.unmatched for a, h in hosts.items() if h.unmatched} == {}


def test_the_recorder_fails_a_command_it_has_no_answer_for():
    from ringmgr.exec.base import CommandFailed

    ex = RecordingExecutor(host="admin").on("server list", "[]")
    assert ex.run(["openstack", "server", "list"]).stdout == "[]"
    with pytest.raises(CommandFailed, match="no recorded answer"):
        ex.run(["openstack", "server", "delete", "x"])
    assert ex.run(["virsh", "list"], check=False).rc == 127
    assert ex.unmatched == [("openstack", "server", "delete", "x"), ("virsh", "list")]


def test_evacuate_full_run(env):
    api = env.api
    # listed at the start; after the migrations nothing is left on c01
    api.on("server list --host", recorded("server_list_c01.json"), "[]")
    api.on(f"compute service list --host {C02}", services(C02))
    api.on(f"compute service list --host {C01}", services(C01), services(C01, "disabled"))
    # each instance: on c01 before, migrating once, then ACTIVE on c02
    api.on(f"server show {W1}", show(W1, C01), show(W1, C01, "MIGRATING", "migrating"),
           show(W1, C02))
    api.on(f"server show {D1}", show(D1, C01), show(D1, C02))
    host = env.host(C01)
    host.on("service nova-compute status", Reply(rc=0), Reply(rc=3))
    res = env.invoke("compute", "evacuate", C01, "--to", C02, "--yes", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["written"] is True and doc["finished"] is True
    assert [s["status"] for s in doc["steps"]] == ["done"] * 6
    migr = api.ran("server", "migrate")
    assert [c[-1] for c in migr] == [W1, D1]
    assert all("--block-migration" not in c for c in migr)
    disable = api.ran("--disable")
    assert api.calls.index(disable[0]) < api.calls.index(migr[0])
    assert host.mutating == [("service", "nova-compute", "stop")]
    rec = json.loads((env.tmp / "state" / f"evacuate.{C01}.record.json").read_text())
    assert rec["instances"] == [W1, D1] and rec["target"] == C02


def test_evacuate_refuses_target_down_and_changes_nothing(env):
    api = env.api
    api.on("server list --host", recorded("server_list_c01.json"))
    api.on(f"compute service list --host {C02}", services(C02, state="down"))
    before = state_files(env)
    res = env.invoke("compute", "evacuate", C01, "--to", C02, "--yes")
    assert res.exit_code == 2
    one_line_error(res.stderr, "target c02.example.com: nova-compute is enabled/down")
    assert api.mutating == [] and env.host(C01).mutating == []
    assert state_files(env) == before                 # no run journal, no record


def test_evacuate_dry_run_records_commands_only(env):
    api = env.api
    api.on("server list --host", recorded("server_list_c01.json"))
    api.on("compute service list", services(C01))
    api.on(f"compute service list --host {C02}", services(C02))
    api.on("server show", show(W1, C01))
    env.host(C01).on("service nova-compute status", Reply(rc=0))
    res = env.invoke("compute", "evacuate", C01, "--to", C02, "--block-migrate", "--dry-run",
                     "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["written"] is False
    assert any("--block-migration" in c and W1 in c for c in doc["commands"])
    assert "service nova-compute stop" in doc["commands"]
    # dry run: every state-changing command was only recorded, never sent
    assert api.mutating == [] and env.host(C01).mutating == []
    assert not (env.tmp / "state" / f"evacuate.{C01}.record.json").exists()


def test_evacuate_timeout_then_resume(env):
    api = env.api
    api.on("server list --host", recorded("server_list_c01.json"))
    api.on(f"compute service list --host {C02}", services(C02))
    api.on(f"compute service list --host {C01}", services(C01, "disabled"))
    api.on(f"server show {W1}", show(W1, C01), show(W1, C01, "MIGRATING", "migrating"))
    env.host(C01).on("service nova-compute status", Reply(rc=0))
    res = env.invoke("compute", "evacuate", C01, "--to", C02, "--yes", "--timeout", "0")
    assert res.exit_code == 2
    assert f"live migration of {W1}: not ACTIVE on {C02}" in res.stderr
    assert len(api.ran("server", "migrate")) == 1          # the second was not started
    # the migration finishes on its own; resume continues with the next instance
    api.on(f"server show {W1}", show(W1, C02))
    api.on(f"server show {D1}", show(D1, C01), show(D1, C02))
    api.on("server list --host", "[]")
    env.host(C01).on("service nova-compute status", Reply(rc=0), Reply(rc=3))
    res = env.invoke("compute", "evacuate", C01, "--to", C02, "--yes", "--resume")
    assert res.exit_code == 0, res.output
    assert [c[-1] for c in api.ran("server", "migrate")] == [W1, D1]
    assert "already ACTIVE on c02.example.com" in res.stdout


def test_resume_without_run_is_refused(env):
    before = state_files(env)
    res = env.invoke("compute", "evacuate", C01, "--to", C02, "--resume", "--yes")
    assert res.exit_code == 2
    one_line_error(res.stderr, "nothing to resume")
    assert env.api.mutating == [] and all(h.mutating == [] for h in env.hosts.values())
    assert state_files(env) == before


def test_restore_with_migrate_back(env):
    state = env.tmp / "state"
    state.mkdir()
    (state / f"evacuate.{C01}.record.json").write_text(json.dumps(
        {"host": C01, "target": C02, "instances": [W1], "init_files": [], "held_dir": "/root/tmp"}))
    api = env.api
    api.on(f"compute service list --host {C01}", services(C01, "disabled"), services(C01))
    api.on(f"server show {W1}", show(W1, C02), show(W1, C01))
    host = env.host(C01)
    host.on("test -e", Reply(rc=1))
    host.on("service nova-compute status", Reply(rc=3), Reply(rc=0))
    res = env.invoke("compute", "restore", C01, "--migrate-back", "--yes")
    assert res.exit_code == 0, res.output
    assert host.mutating == [("service", "nova-compute", "start")]
    assert api.ran("--enable", C01)
    assert api.ran("server", "migrate")[0][-3:] == ("--host", C01, W1)


def test_after_reboot_soft_then_hard_and_report(env):
    api = env.api
    api.on("server list --host", recorded("server_list_after_reboot.json"))
    # web1 is SHUTOFF: soft reboot leaves it SHUTOFF (timeout 0), hard reboot fixes it
    api.on(f"server show {W1}", show(W1, C01, "SHUTOFF"), show(W1, C01, "SHUTOFF"),
           show(W1, C01, "ACTIVE"))
    api.on(f"server show {D1}", show(D1, C01))
    host = env.host(C01)
    host.on("ps pid=,user=,args= -e",
            "  41 nova /usr/bin/python3 /usr/bin/nova-compute --config-file x\n  42 root bash\n")
    host.on("tail -n 5000", recorded("nova-compute.log"))
    res = env.invoke("compute", "after-reboot", C01, "--yes", "--timeout", "0", "--json")
    assert res.exit_code == 0, res.output
    reboots = api.ran("server", "reboot")
    assert [c[c.index("reboot") + 1:] for c in reboots] == [(W1,), ("--hard", W1)]
    doc = json.loads(res.stdout)
    st = {s["name"]: s["status"] for s in doc["steps"]}
    assert st[f"start:{D1}"] == "skipped" and st[f"start:{W1}"] == "done"


def test_after_reboot_amqp_lost(env):
    env.api.on("server list --host", "[]")
    host = env.host(C01)
    host.on("ps pid=,user=,args= -e", "  41 nova nova-compute\n")
    host.on("tail -n 5000", recorded("nova-compute-unreachable.log"))
    res = env.invoke("compute", "after-reboot", C01, "--yes")
    assert res.exit_code == 2
    assert "lost AMQP" in res.stderr and "restart nova-compute" in res.stderr


def test_after_reboot_reports_instance_that_stays_down(env):
    env.api.on("server list --host", recorded("server_list_after_reboot.json"))
    env.api.on(f"server show {W1}", show(W1, C01, "SHUTOFF"))
    env.api.on(f"server show {D1}", show(D1, C01))
    host = env.host(C01)
    host.on("ps pid=,user=,args= -e", "  41 nova nova-compute\n")
    host.on("tail -n 5000", recorded("nova-compute.log"))
    res = env.invoke("compute", "after-reboot", C01, "--yes", "--timeout", "0")
    assert res.exit_code == 2
    assert f"did not come back: {W1} (SHUTOFF)" in res.stderr


def test_recover_host_evacuate_refuses_live_host(env):
    env.api.on("server list --host", recorded("server_list_c01.json"))
    env.api.on(f"compute service list --host {C01}", services(C01, state="up"))
    before = state_files(env)
    res = env.invoke("compute", "recover-host", C01, "--to", C02, "--yes")
    assert res.exit_code == 2
    one_line_error(res.stderr, "is reported up")
    assert env.api.mutating == [] and all(h.mutating == [] for h in env.hosts.values())
    assert state_files(env) == before


def test_recover_host_evacuate(env):
    api = env.api
    api.on("server list --host", recorded("server_list_c01.json"))
    api.on(f"compute service list --host {C01}", services(C01, state="down"))
    api.on(f"server show {W1}", show(W1, C01, "SHUTOFF"), show(W1, C02))
    api.on(f"server show {D1}", show(D1, C02))
    res = env.invoke("compute", "recover-host", C01, "--to", C02, "--yes")
    assert res.exit_code == 0, res.output
    assert api.ran("--down", C01) and api.ran("--disable", C01)
    ev = api.ran("server", "evacuate")
    assert api.calls.index(api.ran("--down", C01)[0]) < api.calls.index(ev[0])
    assert [c[-3] for c in ev] == [W1] and "--host" in ev[0]   # db1 already on c02


def test_inspect_disk_failure_releases_in_reverse(env):
    api = env.api
    api.on("server show", recorded("server_show_web1_c02.json"))
    host = env.host(C02)
    host.on("virsh list --all", recorded("virsh_list.txt").replace("paused", "running"),
            recorded("virsh_list.txt"))
    host.on("virsh dumpxml", recorded("virsh_dumpxml.xml"))
    host.on("sh -c", "nbd1\nnbd2\n")
    host.on("cat /proc/mounts", "/dev/sda1 / ext4 rw 0 0\n")
    # not connected before the inspection; connected when the release looks
    host.on("test -e /sys/block/nbd1/pid", Reply(rc=1), Reply(rc=0))
    host.on("ls /sys/block/nbd1", "bdi\npid\nsize\n")             # no partition table
    host.on("blkid -p", "TYPE=ext4\n")
    host.on("mkdir -p -m 0700", "")
    host.on("chmod 0700", "")
    host.on("mount -t", Reply(rc=32, stderr="mount: wrong fs type"))
    res = env.invoke("compute", "inspect-disk", W1, "--yes")
    assert res.exit_code == 2, res.output
    assert "wrong fs type" in res.stderr
    changed = [c[:2] for c in host.mutating]
    assert changed == [("virsh", "suspend"), ("modprobe", "nbd"), ("qemu-nbd", "--read-only"),
                       ("mkdir", "-p"), ("chmod", "0700"), ("mkdir", "-p"), ("mount", "-t"),
                       ("qemu-nbd", "-d"), ("virsh", "resume")]
    assert ("qemu-nbd", "-d", "/dev/nbd1") in host.mutating


def test_inspect_disk_dry_run(env):
    env.api.on("server show", recorded("server_show_web1_c02.json"))
    host = env.host(C02)
    host.on("virsh list --all", recorded("virsh_list.txt").replace("paused", "running"))
    host.on("virsh dumpxml", recorded("virsh_dumpxml.xml"))
    host.on("sh -c", "nbd3\n")
    host.on("cat /proc/mounts", "")
    host.on("test -e", Reply(rc=1))
    # a dry run does not connect the disk: no partitions, no filesystem to see yet
    host.on("ls /sys/block/nbd3", Reply(rc=2, stderr="No such file or directory"))
    host.on("blkid -p", Reply(rc=2))
    res = env.invoke("compute", "inspect-disk", W1, "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert ("qemu-nbd --read-only -f qcow2 -c /dev/nbd3 -- /var/lib/nova/instances/"
            f"{W1}/disk") in doc["commands"]
    assert host.mutating == []


def test_inspect_disk_release_after_success(env):
    env.api.on("server show", recorded("server_show_web1_c02.json"))
    host = env.host(C02)
    mnt = f"/mnt/ringmgr-inspect/{W1}"
    host.on("virsh list --all", recorded("virsh_list.txt"))          # paused
    host.on("cat /proc/mounts", f"/dev/nbd4p1 {mnt} ext4 ro 0 0\n", "")
    host.on("test -e /sys/block/nbd4/pid", Reply(rc=0))
    res = env.invoke("compute", "inspect-disk", W1, "--release", "--yes")
    assert res.exit_code == 0, res.output
    assert host.mutating == [("umount", mnt), ("qemu-nbd", "-d", "/dev/nbd4"),
                             ("virsh", "resume", "instance-0000274a")]
    # released already: every step finds nothing to do
    host.mutating.clear()
    host.on("virsh list --all", recorded("virsh_list.txt").replace("paused", "running"))
    host.on("test -e /sys/block/nbd4/pid", Reply(rc=1))
    res = env.invoke("compute", "inspect-disk", W1, "--release", "--yes")
    assert res.exit_code == 0, res.output
    assert host.mutating == []


@pytest.mark.parametrize("xml, words", [
    (recorded("virsh_dumpxml.xml").replace("type='qcow2' cache", "cache"), "gives no image format"),
    (recorded("virsh_dumpxml.xml").replace("type='qcow2'", "type='auto'"), "gives 'auto' image"),
])
def test_inspect_disk_refuses_to_let_qemu_nbd_probe_the_format(env, xml, words):
    env.api.on("server show", recorded("server_show_web1_c02.json"))
    host = env.host(C02)
    host.on("virsh dumpxml", xml)
    before = state_files(env)
    res = env.invoke("compute", "inspect-disk", W1, "--yes")
    assert res.exit_code == 2
    one_line_error(res.stderr, words, "qemu-nbd guess")
    assert len(res.stderr.strip().splitlines()) == 1
    assert host.mutating == [] and env.api.mutating == []
    assert state_files(env) == before


@pytest.mark.parametrize("args, msg", [
    (("compute", "evacuate", C01, "--to", C01), "HOST and --to TARGET are the same host"),
    (("compute", "recover-host", C01, "--to", C02, "--backup", "/nonexistent-ringmgr-test/backup.json"),
     "--node, --backup and --undo go with --method sql"),
    (("compute", "recover-host", C01, "--to", C02, "--method", "magic"), "Invalid value"),
])
def test_bad_input_exit_2_nothing_changed(env, args, msg):
    env.api.on("server list --host", recorded("server_list_c01.json"))
    before = state_files(env)
    res = env.invoke(*args, "--yes")
    assert res.exit_code == 2 and msg in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert env.api.mutating == [] and all(h.mutating == [] for h in env.hosts.values())
    assert state_files(env) == before


def test_no_yes_no_terminal_refuses_before_any_change(env):
    api = env.api
    api.on("server list --host", recorded("server_list_c01.json"))
    api.on(f"compute service list --host {C02}", services(C02))
    api.on(f"compute service list --host {C01}", services(C01))
    res = env.invoke("compute", "evacuate", C01, "--to", C02)
    assert res.exit_code == 2
    one_line_error(res.stderr, "re-run with --yes")
    assert api.mutating == [] and env.host(C01).mutating == []
    # the read-only target check ran before the first step that asks; its journal
    # records that check and nothing else
    journal = json.loads((env.tmp / "state" / f"compute-evacuate.{C01}.json").read_text())
    assert set(state_files(env)) == {f"compute-evacuate.{C01}.json"}
    assert {k: v["state"] for k, v in journal["steps"].items()} == {"check-target": "done"}


def test_a_journal_left_for_another_target_is_not_reused(env):
    """The target check of a run refused for want of --yes is no check of another
    target: evacuating to a down host next must be refused, not skip the check."""
    api = env.api
    c03 = "c03.example.com"
    api.on("server list --host", recorded("server_list_c01.json"))
    api.on(f"compute service list --host {C02}", services(C02))
    api.on(f"compute service list --host {c03}", services(c03, state="down"))
    api.on(f"compute service list --host {C01}", services(C01))
    assert env.invoke("compute", "evacuate", C01, "--to", C02).exit_code == 2
    before = state_files(env)
    res = env.invoke("compute", "evacuate", C01, "--to", c03, "--yes")
    assert res.exit_code == 2
    one_line_error(res.stderr, "another target", c03)
    assert api.mutating == [] and env.host(C01).mutating == []
    assert state_files(env) == before


def test_after_reboot_soft_reboot_refused_goes_hard(env):
    """Nova refuses a soft reboot of a SHUTOFF instance (409): go to --hard at once."""
    api = env.api
    api.on("server list --host", recorded("server_list_after_reboot.json"))
    api.on(f"server show {W1}", show(W1, C01, "SHUTOFF"), show(W1, C01, "ACTIVE"))
    api.on(f"server show {D1}", show(D1, C01))
    api.on(f"server reboot {W1}", Reply(rc=1, stderr="Cannot 'reboot' instance while it is "
                                                     "in vm_state stopped (HTTP 409)"))
    api.on(f"server reboot --hard {W1}", Reply())
    host = env.host(C01)
    host.on("ps pid=,user=,args= -e", "  41 nova /usr/bin/python3 /usr/bin/nova-compute\n")
    host.on("tail -n 5000", recorded("nova-compute.log"))
    res = env.invoke("compute", "after-reboot", C01, "--yes", "--json")
    assert res.exit_code == 0, res.output
    reboots = api.ran("server", "reboot")
    assert [c[c.index("reboot") + 1:] for c in reboots] == [(W1,), ("--hard", W1)]
    assert any("HTTP 409" in n and "--hard" in n for n in json.loads(res.stdout)["notes"])


def test_inspect_disk_mounts_read_only_and_prints_path(env):
    env.api.on("server show", recorded("server_show_web1_c02.json"))
    host = env.host(C02)
    mnt = f"/mnt/ringmgr-inspect/{W1}"
    host.on("virsh list --all", recorded("virsh_list.txt").replace("paused", "running"))
    host.on("virsh dumpxml", recorded("virsh_dumpxml.xml"))
    host.on("sh -c", "nbd2\n")
    host.on("cat /proc/mounts", "/dev/sda1 / ext4 rw 0 0\n")
    host.on("test -e", Reply(rc=1))
    host.on("ls /sys/block/nbd2", "bdi\nnbd2p1\nnbd2p2\npid\nsize\n")
    host.on("blkid -p -o export -- /dev/nbd2p1", "DEVNAME=/dev/nbd2p1\nTYPE=xfs\n")
    host.on("mkdir -p -m 0700", "")
    host.on("chmod 0700", "")
    host.on("mount -t xfs", "")
    res = env.invoke("compute", "inspect-disk", W1, "--yes")
    assert res.exit_code == 0, res.output
    root = "/mnt/ringmgr-inspect"
    assert host.mutating == [
        ("virsh", "suspend", "instance-0000274a"), ("modprobe", "nbd", "max_part=16"),
        ("qemu-nbd", "--read-only", "-f", "qcow2", "-c", "/dev/nbd2", "--",
         f"/var/lib/nova/instances/{W1}/disk"),
        ("mkdir", "-p", "-m", "0700", "--", root), ("chmod", "0700", "--", root),
        ("mkdir", "-p", "-m", "0700", "--", mnt),
        ("mount", "-t", "xfs", "-o", "ro,nosuid,nodev,noexec,norecovery", "--", "/dev/nbd2p1",
         mnt)]
    assert f"mounted read-only at {mnt} on {C02}" in res.stdout
    rec = json.loads((env.tmp / "state" / f"inspect-disk.{W1}.record.json").read_text())
    assert rec["device"] == "/dev/nbd2"
