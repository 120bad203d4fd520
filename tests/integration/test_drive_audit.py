"""drive-audit: real kernel-log lines from a real XFS failure on a loop disk, mapped to
the ring device and its mount point; --act unmounts and guards it."""

import json
import os
import stat
import subprocess

import pytest

from ringmgr.config import parse_config
from ringmgr.ops import facts
from ringmgr.ops.drive_audit import map_errors
from ringmgr.ops.kernel_log import read_kernel_log
from ringmgr.exec.local import LocalExecutor
from tests.helpers.checksums import checksums
from tests.helpers.cli import run_cli
from tests.helpers.loopdisk import loopdisks, mounted_env, mounts_of, over_sshd  # noqa: F401

LOG = """\
[  812.311] blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x0
[  812.314] Buffer I/O error on dev sdb1, logical block 0, async page read
[  812.315] XFS (dm-3): metadata I/O error in "xfs_da_read_buf+0x8c" at daddr 0x48 len 8 error 5
[  812.316] nvme0n1: I/O Cmd(0x2) @ LBA 2048, 8 blocks, I/O Error (sct 0x2 / sc 0x81) DNR
[  812.317] XFS (sdc): Ending clean mount
"""


def node():
    cfg = parse_config({"cluster": {"builder_dir": "/nonexistent"},
                        "nodes": {"s01": {"ip": "10.0.0.1", "mount_root": "/srv/node",
                                          "devices": {"sdb": 1.0, "meta": 1.0, "sdc": 1.0}}}},
                       __import__("pathlib").Path("/x/ringmgr.toml"))
    return cfg.node("s01")


def test_map_errors_table():
    mounts = facts.parse_mountinfo(
        "301 27 8:16 / /srv/node/sdb rw - xfs /dev/sdb rw\n")
    rings = {"sdb": {"object": {"id": 3, "weight": 1.0, "parts": 77}}}
    names = {"sdb": "sdb", "dm-3": "meta", "sdc": "sdc"}
    found = map_errors(facts.parse_kernel_log(LOG), names, node(), mounts, rings)
    rows = [(f.kernel_name, f.device, f.errors, f.kinds, f.mount_point, f.mounted, f.rings)
            for f in found]
    assert rows == [
        ("dm-3", "meta", 1, ["fs-error"], "/srv/node/meta", False, {}),
        ("sdb", "sdb", 2, ["buffer-io-error", "io-error"], "/srv/node/sdb", True,
         rings["sdb"]),
        ("nvme0n1", None, 1, ["nvme-error"], None, False, {}),
    ]


class Answers:
    """Canned answers per command, for the choice of log source only: every source
    exists on this machine, so a node that lacks one cannot be had for real here."""

    host = "table"

    def __init__(self, table):
        self.table, self.asked = table, []

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True):
        from ringmgr.exec.base import Result

        assert mutates is False
        self.asked.append(argv[0])
        rc, out = self.table.get(argv[0], (127, ""))
        return Result(self.host, tuple(argv), rc, out, "" if rc == 0 else "not here")


@pytest.mark.parametrize("table,source,asked", [
    ({"journalctl": (0, "[1.0] I/O error, dev sdb, sector 1\n")}, "journalctl -k",
     ["journalctl"]),
    # journald without kernel messages (a container), dmesg answers
    ({"journalctl": (0, "-- No entries --\n"), "dmesg": (0, "[1.0] x\n")}, "dmesg",
     ["journalctl", "dmesg"]),
    # no journalctl, dmesg restricted (kernel.dmesg_restrict): the syslog file
    ({"dmesg": (1, ""), "cat": (0, "Nov 24 kernel: x\n")}, "/var/log/kern.log",
     ["journalctl", "dmesg", "cat"]),
    ({}, "", ["journalctl", "dmesg", "cat"]),
])
def test_kernel_log_source_is_the_first_that_answers(table, source, asked):
    ex = Answers(table)
    got, text = read_kernel_log(ex)
    assert got == source and ex.asked == asked
    assert (text != "") == bool(source)


def test_reads_this_machines_kernel_log():
    source, text = read_kernel_log(LocalExecutor())
    assert source in ("journalctl -k", "dmesg", "/var/log/kern.log")
    assert text.strip()


# -- end to end on a real failing XFS loop disk ------------------------------------------
@pytest.fixture
def failing(tmp_path, monkeypatch, loopdisks):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    e = mounted_env(tmp_path, monkeypatch, loopdisks)
    # the filesystem fails as on a dying disk: XFS logs an I/O error and shuts down
    subprocess.run(["xfs_io", "-x", "-c", "shutdown", str(e.mount_point)], check=True)
    return e


def ringmgr(env, *args):
    r = run_cli(env, *args)
    return r.exit_code, r.output, r.stdout


def test_audit_finds_the_failing_disk(failing):
    e = failing
    code, out, stdout = ringmgr(e, "drive-audit", "--json")
    assert code == 1, out
    report = json.loads(stdout)
    (node,) = report["nodes"].values()
    assert node["node"] == "s01" and node["log_source"] in ("dmesg", "journalctl -k")
    (dev,) = [d for d in node["devices"] if d["device"] == e.dev]
    kname = os.path.basename(e.old.dev)
    assert dev["kernel_name"] == kname and dev["errors"] >= 1 and "fs-error" in dev["kinds"]
    assert dev["mount_point"] == str(e.mount_point) and dev["mounted"] is True
    assert set(dev["rings"]) == {"account", "container", "object"}
    assert report["written"] is False and mounts_of(e.old.dev) == [str(e.mount_point)]

    code, out, _ = ringmgr(e, "drive-audit", "s01")
    assert code == 1 and f"{e.dev} ({kname})" in out and "mounted" in out


def test_act_dry_run_changes_nothing(failing):
    e = failing
    code, out, stdout = ringmgr(e, "drive-audit", "s01", "--act", "--dry-run", "--json")
    assert code == 1, out
    (acted,) = json.loads(stdout)["acted"]
    assert acted["commands"][0] == ["umount", "--", str(e.mount_point)]
    assert "a real run sets it to 0 on every ring" in acted["summary"]
    from swift.common.ring import RingBuilder

    b = RingBuilder.load(str(e.root / "builders" / "object.builder"))
    assert [d["weight"] for d in b.devs if d["device"] == e.dev] == [100.0]
    assert mounts_of(e.old.dev) == [str(e.mount_point)]


def test_act_dry_run_with_push_plans_the_push_after_the_weight_change(failing):
    """[cluster].push: a real --act pushes the weight-0 rings, so the dry run's
    host_steps end with the push session on every host."""
    from ringmgr.config import load_config
    from ringmgr.ops.push.session import session_argv

    e = failing
    text = e.config.read_text()
    e.config.write_text(text.replace("[cluster]\n", "[cluster]\npush = true\n", 1))
    code, out, stdout = ringmgr(e, "drive-audit", "s01", "--act", "--dry-run", "--json")
    assert code == 1, out
    (acted,) = json.loads(stdout)["acted"]
    steps = acted["host_steps"]
    assert [s["step"] for s in steps] == ["unmount", "guard", "push"]
    node = load_config(e.config).node("s01")
    assert steps[-1]["host"] == "s01" and steps[-1]["argv"] == session_argv(node, True)
    assert mounts_of(e.old.dev) == [str(e.mount_point)]


def test_act_unmounts_and_guards(failing):
    e = failing
    before = unchanged(e)
    code, out, _ = ringmgr(e, "drive-audit", "s01", "--act")
    assert code == 2 and "--yes" in out  # no terminal, no --yes: refused
    one_line_error(out)
    assert unchanged(e) == before
    code, out, _ = ringmgr(e, "drive-audit", "s01", "--act", "--yes")
    assert code == 1, out
    assert mounts_of(e.old.dev) == []
    st = os.stat(e.mount_point)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o755)
    assert (f"s01/{e.dev}: unmount done, guard done; weight set to 0 on every ring (push "
            f"the changed rings to every node: ringmgr push)") in out
    from swift.common.ring import RingBuilder

    b = RingBuilder.load(str(e.root / "builders" / "object.builder"))
    assert [d["weight"] for d in b.devs if d["device"] == e.dev] == [0.0]


def test_replace_disk_precheck_shows_the_kernel_errors(failing):
    e = failing
    code, out, stdout = ringmgr(e, "replace-disk", "s01", e.dev, "--dry-run", "--json")
    assert code == 0, out
    assert json.loads(stdout)["precheck"]["kernel_errors"] >= 1
    assert "I/O errors (errors since " in out and "), last: " in out
    assert os.path.basename(e.old.dev) in out


def test_unknown_node_is_an_error(failing):
    before = unchanged(failing)
    code, out, _ = ringmgr(failing, "drive-audit", "s99", "--act", "--yes")
    assert code == 2 and "unknown node 's99'" in out
    one_line_error(out)
    assert unchanged(failing) == before


def unchanged(e):
    """What a refused run must leave as it was: the builders, fstab, the mount."""
    return checksums(e.root / "builders"), e.fstab.read_bytes(), mounts_of(e.old.dev)


def one_line_error(out):
    errors = [ln for ln in out.splitlines() if ln.startswith("ringmgr: error:")]
    assert len(errors) == 1 and out.rstrip("\n").endswith(errors[0]), out
    assert "Traceback" not in out


@pytest.mark.slow
def test_audit_over_ssh(failing, sshd_hosts_factory):
    e = failing
    over_sshd(e, sshd_hosts_factory(1))
    e.write_config(e.old.dev)
    code, out, stdout = ringmgr(e, "drive-audit", "--json")
    assert code == 1, out
    (dev,) = [d for d in json.loads(stdout)["nodes"]["s01"]["devices"] if d["device"] == e.dev]
    assert dev["mounted"] and "fs-error" in dev["kinds"]


def test_unreachable_node_is_reported_and_exit_2(failing):
    e = failing
    e.host, e.ssh_port = "127.0.0.254", 1
    e.ssh_toml = '[ssh]\nconnect_timeout = 1.0\nretries = 0\n\n'
    e.write_config(e.old.dev)
    code, out, stdout = ringmgr(e, "drive-audit", "--json")
    assert code == 2, out
    report = json.loads(stdout)
    assert report["nodes"]["s01"]["error"] and "s01" in out


# -- which errors count: the window, and the device's current filesystem --------------------
def test_window_rules_doctests():
    import doctest

    from ringmgr.ops import drive_audit, logwindow

    assert doctest.testmod(logwindow).failed == 0
    assert doctest.testmod(drive_audit).failed == 0


@pytest.mark.parametrize("when,boot,expected", [
    ("812.311", 1_000_000.0, (1_000_812.311, True)),            # dmesg: since boot
    ("812.311", None, (None, True)),                            # no boot time known
    ("2026-12-01T21:31:58.096387+0000", None, (1796161918.096387, False)),  # journalctl
    ("2026-12-01T21:31:58.096387+00:00", None, (1796161918.096387, False)),  # rsyslog
    ("", None, (None, False)),
])
def test_line_time(when, boot, expected):
    from ringmgr.ops.logwindow import line_time

    t, approx = line_time(when, boot=boot, now=1796161918.0)
    assert approx == expected[1]
    assert t == (pytest.approx(expected[0]) if expected[0] is not None else None)


def test_syslog_time_has_no_year():
    from datetime import datetime

    from ringmgr.ops.logwindow import line_time

    jan2 = datetime(2027, 1, 2, 12, 0, 0).timestamp()
    t, approx = line_time("Dec 31 23:00:00", boot=None, now=jan2)
    assert approx and datetime.fromtimestamp(t) == datetime(2026, 12, 31, 23, 0, 0)
    t, _ = line_time("Jan  2 11:00:00", boot=None, now=jan2)
    assert datetime.fromtimestamp(t) == datetime(2027, 1, 2, 11, 0, 0)


def test_kernel_log_lines_carry_their_time():
    line = "2026-12-01T21:31:58.096387+0000 s02 kernel: I/O error, dev sdb, sector 8"
    (err,) = facts.parse_kernel_log(line)
    assert err.when == "2026-12-01T21:31:58.096387+0000"


def test_replaced_disk_is_not_flagged_for_its_predecessors_errors(failing):
    """The old disk failed (real XFS errors in the kernel log); after a full
    replace-disk the new disk, in the same slot with the same kernel name, is healthy:
    neither the phase-2 precheck nor drive-audit may blame it."""
    e = failing
    kname = os.path.basename(e.old.dev)
    code, out, _ = ringmgr(e, "replace-disk", "s01", e.dev, "--yes")
    assert code == 0 and " I/O errors" in out, out  # the failing disk's
    e.disks.detach(e.old)
    e.new = e.disks.create(mkfs=False, on=e.old.dev)
    e.write_config(e.new.dev)
    code, out, _ = ringmgr(e, "replace-disk", "s01", e.dev, "--replaced", "--yes")
    assert code == 0, out
    assert f"no I/O errors for {e.dev}" in out, out
    assert "not counted: " in out and "older than the old disk was taken out" in out
    assert mounts_of(e.new.dev) == [str(e.mount_point)]

    code, out, stdout = ringmgr(e, "drive-audit", "--json")
    report = json.loads(stdout)
    (node,) = report["nodes"].values()
    assert [d for d in node["devices"] if d["device"] == e.dev] == []
    (old,) = [d for d in node["ignored"] if d["device"] == e.dev]
    assert old["kernel_name"] == kname and old["ignored_older_than_filesystem"] >= 1
    assert "filesystem was made at" in old["filesystem_since"]
    assert code == (1 if node["devices"] else 0), out  # other tests' loop disks may fail
    assert report["window"]["from"] == "the default; [drive_audit].since"
    code, out, _ = ringmgr(e, "drive-audit", "s01")
    assert f"{e.dev} ({kname}): not flagged" in out and "about the disk it replaced" in out
    assert "window: errors since " in out
    if node["log_source"] == "dmesg":
        assert "times approximate: dmesg's seconds since boot" in out


def test_errors_before_the_window_do_not_count(failing):
    import time
    from datetime import datetime, timezone

    e = failing
    time.sleep(0.2)  # the shutdown's lines are now older than "now"
    since = datetime.fromtimestamp(time.time(), timezone.utc).isoformat()
    code, out, stdout = ringmgr(e, "drive-audit", "s01", "--since", since, "--json")
    node = next(iter(json.loads(stdout)["nodes"].values()))
    assert [d for d in node["devices"] if d["device"] == e.dev] == [], out
    (old,) = [d for d in node["ignored"] if d["device"] == e.dev]
    assert old["ignored_before_window"] >= 1 and old["ignored_older_than_filesystem"] == 0
    assert node["window"]["from"] == "--since" and node["window"]["given"] == since
    code, out, stdout = ringmgr(e, "drive-audit", "s01", "--since", "1h", "--json")
    assert code == 1
    (dev,) = [d for d in next(iter(json.loads(stdout)["nodes"].values()))["devices"] if d["device"] == e.dev]
    assert dev["errors"] >= 1


def test_the_default_window_comes_from_the_config(failing):
    import time

    e = failing
    with open(e.config, "a") as f:
        f.write('\n[drive_audit]\nsince = "1s"\n')
    time.sleep(1.5)  # the shutdown's lines are now older than the configured window
    code, out, stdout = ringmgr(e, "drive-audit", "s01", "--json")
    report = json.loads(stdout)
    assert report["window"]["from"] == "[drive_audit].since" and report["window"]["given"] == "1s"
    assert [d for d in next(iter(report["nodes"].values()))["devices"] if d["device"] == e.dev] == []
    code, out, _ = ringmgr(e, "drive-audit", "s01", "--since", "1h")
    assert code == 1 and f"{e.dev} ({os.path.basename(e.old.dev)}): " in out


@pytest.mark.parametrize("args,config,words", [
    (["--since", "yesterday"], "", "--since: 'yesterday' is neither a duration"),
    (["--since", "24 hours"], "", "--since: '24 hours'"),
    ([], '\n[drive_audit]\nsince = "often"\n', "drive_audit.since:"),
    ([], '\n[drive_audit]\nwindow = "1h"\n', "drive_audit.window: unknown key"),
])
def test_bad_window_is_one_line_exit_2_nothing_changed(failing, args, config, words):
    e = failing
    if config:
        with open(e.config, "a") as f:
            f.write(config)
    before = unchanged(e)
    code, out, _ = ringmgr(e, "drive-audit", "s01", "--act", "--yes", *args)
    assert code == 2 and words in out, out
    one_line_error(out)
    assert unchanged(e) == before


def test_act_dry_run_host_steps_are_what_the_act_executes_over_ssh(tmp_path, monkeypatch,
                                                                    loopdisks,
                                                                    sshd_hosts_factory):
    """drive-audit --act over a real sshd host: the dry run's host_steps (unmount, guard)
    are exactly what the real --act then executes."""
    from tests.helpers.apps import planned, run_cli, run_recorded

    if os.geteuid() != 0:
        pytest.skip("needs root")
    hosts = sshd_hosts_factory(1)
    e = mounted_env(tmp_path, monkeypatch, loopdisks, setup=lambda env: over_sshd(env, hosts))
    subprocess.run(["xfs_io", "-x", "-c", "shutdown", str(e.mount_point)], check=True)
    base = ["--config", str(e.config), "drive-audit", "s01", "--act"]
    r = run_cli([*base, "--dry-run", "--json"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert [s["step"] for s in doc["host_steps"]] == ["unmount", "guard"]
    assert doc["host_steps"][0]["argv"] == ["umount", "--", str(e.mount_point)]
    assert mounts_of(e.old.dev) == [str(e.mount_point)]
    executed = []
    r = run_recorded([*base, "--yes"], executed)
    assert r.exit_code == 1, r.output
    assert executed == planned(doc)
    assert mounts_of(e.old.dev) == []
