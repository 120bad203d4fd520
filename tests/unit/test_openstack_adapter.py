"""The OpenStack / virsh / qemu-nbd adapters: command lines (table) and parsers
(recorded outputs).  These tools cannot run here; see ringmgr/ops/openstack.py."""

import pytest

from ringmgr.errors import StepFailed, UsageError
from ringmgr.ops import hypervisor as hv
from ringmgr.ops import openstack as osa
from tests.helpers.openstack_recorder import RecordingExecutor, recorded

RC = "/root/openrc"
WRAP = ["sh", "-c", '. "$0" && exec "$@"', RC]
UUID = "9b969a05-3f5e-4f0c-9a64-6f1b1c1d0e01"


def _argv_of(call):
    ex = (RecordingExecutor().otherwise().on("list", "[]")
          .on("show", recorded("server_show_web1_c02.json")))
    api = osa.OpenStack(ex, openrc=RC)
    call(api)
    assert len(ex.calls) == 1
    return list(ex.calls[0]), ex


@pytest.mark.parametrize("call, expected, mutates", [
    (lambda a: a.servers_on("c01"),
     ["openstack", "server", "list", "--all-projects", "--long", "--host", "c01",
      "-f", "json"], False),
    (lambda a: a.server(UUID), ["openstack", "server", "show", UUID, "-f", "json"], False),
    (lambda a: a.compute_services("c01"),
     ["openstack", "compute", "service", "list", "--host", "c01", "--service",
      "nova-compute", "-f", "json"], False),
    (lambda a: a.disable_service("c01", "maintenance"),
     ["openstack", "compute", "service", "set", "--disable", "--disable-reason",
      "maintenance", "c01", "nova-compute"], True),
    (lambda a: a.enable_service("c01"),
     ["openstack", "compute", "service", "set", "--enable", "c01", "nova-compute"], True),
    (lambda a: a.force_down("c01"),
     ["openstack", "--os-compute-api-version", "2.11", "compute", "service", "set",
      "--down", "c01", "nova-compute"], True),
    (lambda a: a.live_migrate(UUID, "c02"),
     ["openstack", "--os-compute-api-version", "2.30", "server", "migrate",
      "--live-migration", "--host", "c02", UUID], True),
    (lambda a: a.live_migrate(UUID, "c02", block_migrate=True),
     ["openstack", "--os-compute-api-version", "2.30", "server", "migrate",
      "--live-migration", "--host", "c02", "--block-migration", UUID], True),
    (lambda a: a.evacuate(UUID, "c02"),
     ["openstack", "--os-compute-api-version", "2.29", "server", "evacuate", "--host",
      "c02", UUID, "-f", "json"], True),
    (lambda a: a.reboot(UUID), ["openstack", "server", "reboot", UUID], True),
    (lambda a: a.reboot(UUID, hard=True),
     ["openstack", "server", "reboot", "--hard", UUID], True),
    (lambda a: a.detach_volume(UUID, "v1"),
     ["openstack", "server", "remove", "volume", UUID, "v1"], True),
    (lambda a: a.attach_volume(UUID, "v1", "/dev/vdc"),
     ["openstack", "server", "add", "volume", "--device", "/dev/vdc", UUID, "v1"], True),
    (lambda a: a.images(), ["openstack", "image", "list", "-f", "json"], False),
    (lambda a: a.projects(), ["openstack", "project", "list", "-f", "json"], False),
    (lambda a: a.swift_stat(), ["swift", "stat"], False),
])
def test_command_lines(call, expected, mutates):
    argv, ex = _argv_of(call)
    assert argv == WRAP + expected
    assert bool(ex.mutating) == mutates


def test_no_openrc_runs_client_directly():
    ex = RecordingExecutor().on("list", "[]")
    osa.OpenStack(ex).images()
    assert ex.calls == [("openstack", "image", "list", "-f", "json")]


def test_credentials_never_in_argv(tmp_path):
    rc = tmp_path / "openrc"
    rc.write_text("export OS_PASSWORD='s3cret'\nexport OS_USERNAME=admin\n")
    ex = RecordingExecutor().on("list", "[]")
    osa.OpenStack(ex, openrc=rc).projects()
    assert not any("s3cret" in a for a in ex.calls[0])
    assert osa.parse_openrc(rc.read_text()) == {"OS_PASSWORD": "s3cret", "OS_USERNAME": "admin"}


def test_parse_server_list():
    servers = osa.parse_server_list(recorded("server_list_c01.json"))
    assert [(s.name, s.status, s.host) for s in servers] == [
        ("web1", "ACTIVE", "c01.example.com"), ("db1", "ACTIVE", "c01.example.com")]
    assert osa.parse_server_list("[]") == []


@pytest.mark.parametrize("fixture, host, task, name, volumes", [
    ("server_show_web1_c02.json", "c02.example.com", None, "instance-0000274a",
     ("1f0fbf36-2a4b-4c5d-8e9f-0a1b2c3d4e5f",)),
    ("server_show_web1_migrating.json", "c01.example.com", "migrating",
     "instance-0000274a", ("1f0fbf36-2a4b-4c5d-8e9f-0a1b2c3d4e5f",)),
    ("server_show_db1_sdk.json", "c02.example.com", None, "instance-00000981", ()),
])
def test_parse_server_show(fixture, host, task, name, volumes):
    s = osa.parse_server_show(recorded(fixture))
    assert (s.host, s.task_state, s.instance_name, s.volumes) == (host, task, name, volumes)


@pytest.mark.parametrize("fixture, status, state", [
    ("service_list_c01_up.json", "enabled", "up"),
    ("service_list_c01_disabled.json", "disabled", "up"),
    ("service_list_c01_down.json", "enabled", "down"),
])
def test_parse_service_list(fixture, status, state):
    (svc,) = osa.parse_service_list(recorded(fixture))
    assert (svc.binary, svc.host, svc.status, svc.state, svc.id) == (
        "nova-compute", "c01.example.com", status, state, "7")


def test_compute_service_unknown_host_is_usage_error():
    ex = RecordingExecutor().on("compute service list", "[]")
    with pytest.raises(UsageError, match="no nova-compute service on host 'c09'"):
        osa.OpenStack(ex).compute_service("c09")


@pytest.mark.parametrize("text", ["Error: unrecognized arguments: -f", "{", "{}"])
def test_garbage_output_is_a_step_failure(text):
    with pytest.raises(StepFailed):
        osa.parse_server_show(text)


def test_parse_names():
    assert osa.parse_names(recorded("image_list.json"), "image list") == [
        "debian-12", "cirros-0.6"]
    assert osa.parse_names(recorded("project_list.json"), "project list") == [
        "admin", "service"]


def test_parse_virsh_list():
    doms = hv.parse_virsh_list(recorded("virsh_list.txt"))
    assert [(d.id, d.name, d.state) for d in doms] == [
        ("1", "instance-00000981", "running"), ("2", "instance-000009f5", "running"),
        ("30", "instance-0000274a", "paused"), (None, "instance-00000a01", "shut off")]


def test_parse_domblklist_skips_empty_cdrom():
    disks = hv.parse_domblklist(recorded("virsh_domblklist.txt"))
    assert [t for t, _ in disks] == ["vda", "vdb"]
    assert disks[0][1].endswith("/disk")


def test_parse_domain_disks_gives_the_image_formats():
    disks = hv.parse_domain_disks(recorded("virsh_dumpxml.xml"))
    assert [(d.target, d.source.rsplit("/", 1)[-1], d.format) for d in disks] == [
        ("vda", "disk", "qcow2"), ("vdb", "disk.local", "raw")]  # the empty cdrom left out


@pytest.mark.parametrize("fmt", [None, "", "auto", "qcow2 -o x"])
def test_qemu_nbd_never_probes_the_format(fmt):
    ex = RecordingExecutor(host="c01")
    with pytest.raises(UsageError, match="not one qemu-nbd knows"):
        hv.QemuNbd(ex).connect("/dev/nbd1", "/x/disk", fmt)
    assert ex.mutating == []


def test_parse_free_nbd_orders_numerically():
    assert hv.parse_free_nbd(recorded("free_nbd.txt")) == ["nbd1", "nbd2", "nbd3", "nbd10"]


@pytest.mark.parametrize("call, expected", [
    (lambda v, q: v.suspend("instance-0000274a"), ("virsh", "suspend", "instance-0000274a")),
    (lambda v, q: v.resume("instance-0000274a"), ("virsh", "resume", "instance-0000274a")),
    (lambda v, q: q.connect("/dev/nbd1", "/x/disk", "qcow2"),
     ("qemu-nbd", "--read-only", "-f", "qcow2", "-c", "/dev/nbd1", "--", "/x/disk")),
    (lambda v, q: q.disconnect("/dev/nbd1"), ("qemu-nbd", "-d", "/dev/nbd1")),
    (lambda v, q: q.load_module(), ("modprobe", "nbd", "max_part=16")),
])
def test_hypervisor_command_lines(call, expected):
    ex = RecordingExecutor(host="c01").otherwise()
    call(hv.Virsh(ex), hv.QemuNbd(ex))
    assert ex.mutating == [expected]


def test_free_device_none_free():
    ex = RecordingExecutor(host="c01").on("sh -c", "")
    with pytest.raises(StepFailed, match="no free /dev/nbd"):
        hv.QemuNbd(ex).free_device()


@pytest.mark.parametrize("parts, expected", [
    (["nbd1p1", "nbd1p2"], "/dev/nbd1p1"), ([], "/dev/nbd1"), (["nbd10p1"], "/dev/nbd1"),
])
def test_first_partition(parts, expected):
    assert hv.first_partition("/dev/nbd1", parts) == expected


def test_missing_client_says_how_to_install():
    from tests.helpers.openstack_recorder import Reply

    ex = RecordingExecutor().on("openstack", Reply(rc=127, stderr="sh: 1: openstack: not found"))
    with pytest.raises(StepFailed, match="pip install python-openstackclient"):
        osa.OpenStack(ex, openrc=RC).projects()


def test_failed_command_names_it():
    from ringmgr.exec.base import CommandFailed
    from tests.helpers.openstack_recorder import Reply

    ex = RecordingExecutor().on("reboot", Reply(rc=1, stderr="No server with a name or ID of 'x' exists."))
    with pytest.raises(CommandFailed, match="No server with a name"):
        osa.OpenStack(ex).reboot("x")
