"""reboot-node over real sshd: the ok-to-stop gate, the wait for the node to come back
(its SSH server really goes away and returns), and the checks afterwards."""

import json
import os
import signal
import subprocess
import time

import pytest
from swift.common.ring import RingBuilder

from ringmgr.config import load_config
from ringmgr.ops.reboot import reboot_node
from tests.helpers.cli import run_cli


def build_rings(builder_dir, ips, replicas=3):
    builder_dir.mkdir(parents=True, exist_ok=True)
    for ring, port in (("account", 6202), ("object", 6200)):
        b = RingBuilder(6, replicas, 0)
        for i, ip in enumerate(ips):
            b.add_dev({"region": 1, "zone": i + 1, "ip": ip, "port": port,
                       "replication_ip": ip, "replication_port": port,
                       "device": "sdb", "weight": 100.0, "meta": ""})
        b.rebalance(seed=1)
        b.save(str(builder_dir / f"{ring}.builder"))
        b.get_ring().save(str(builder_dir / f"{ring}.ring.gz"))


@pytest.fixture
def cluster(sshd_hosts, tmp_path, monkeypatch):
    yield from _cluster(sshd_hosts, tmp_path, monkeypatch, replicas=3)


@pytest.fixture
def cluster2(sshd_hosts, tmp_path, monkeypatch):
    """The same with 2 replicas."""
    yield from _cluster(sshd_hosts, tmp_path, monkeypatch, replicas=2)


def _cluster(sshd_hosts, tmp_path, monkeypatch, replicas):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    hosts = sshd_hosts
    admin = tmp_path / "admin"
    build_rings(admin, [f"10.9.0.{i + 1}" for i in range(3)], replicas=replicas)
    mount_root = tmp_path / "srv"
    (mount_root / "sdb").mkdir(parents=True)
    pidfile = hosts.workdir / "sshd.0.pid"
    restart = (f"kill $(cat {pidfile}); (sleep 4; exec /usr/sbin/sshd -f "
               f"{hosts.workdir}/sshd_config.0) </dev/null >/dev/null 2>&1 &")
    text = hosts.config_toml(admin)
    text = text.replace("[defaults]\n", f'[defaults]\nmount_root = "{mount_root}"\n'
                        f'reboot_command = ["sh", "-c", {json.dumps(restart)}]\n', 1)
    cfg = tmp_path / "ringmgr.toml"
    cfg.write_text(text)
    assert run_cli(cfg, "push").exit_code == 0
    yield cfg, hosts, mount_root
    # the restarted sshd is ours too: stop it by the pid it wrote
    try:
        pid = int(pidfile.read_text())
        if pid not in hosts.pids:
            os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


def test_reboot_waits_for_the_node_and_checks_disks_and_rings(cluster):
    cfg, hosts, mount_root = cluster
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_root / "sdb")],
                   check=True)
    try:
        lines = []
        t = time.monotonic()
        report = reboot_node(load_config(cfg), "h01", force=False, dry_run=False, timeout=30,
                             confirm=lambda q: None, echo=lines.append, poll=0.3)
        assert report.ok, report.to_json()
        assert any("is down" in ln for ln in lines), lines  # it really went away
        assert any("is back" in ln for ln in lines)
        assert report.seconds_down is not None and report.seconds_down > 0
        assert report.rings == {"account.ring.gz": "ok", "object.ring.gz": "ok"}
        assert time.monotonic() - t < 30
    finally:
        subprocess.run(["umount", str(mount_root / "sdb")], check=True)


def test_reboot_reports_an_unmounted_disk_and_stale_ring(cluster):
    cfg, hosts, mount_root = cluster
    (hosts.host("h01").swift_dir / "object.ring.gz").write_bytes(b"not a ring")
    r = run_cli(cfg, "--json", "reboot-node", "h01", "--yes", "--timeout", "30")
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    assert data["unmounted"] == ["sdb"]
    assert data["rings"]["object.ring.gz"] == "corrupt"


def test_dry_run_shows_the_command_and_reboots_nothing(cluster):
    cfg, hosts, _ = cluster
    pid_before = (hosts.workdir / "sshd.0.pid").read_text()
    r = run_cli(cfg, "--json", "reboot-node", "h01", "--dry-run")
    assert r.exit_code in (0, 1), r.output
    data = json.loads(r.stdout)
    assert data["dry_run"] is True and data["commands"][0][:2] == ["sh", "-c"]
    assert (hosts.workdir / "sshd.0.pid").read_text() == pid_before


def test_refused_when_not_safe_to_stop(cluster):
    cfg, hosts, _ = cluster
    # h02 and h03 already down by weight 0: rebooting h01 would leave nothing
    admin = load_config(cfg).cluster.builder_dir
    for ring in ("account", "object"):
        b = RingBuilder.load(str(admin / f"{ring}.builder"))
        for d in b.devs:
            if d["ip"] != "10.9.0.1":
                b.set_dev_weight(d["id"], 0.0)
        b.save(str(admin / f"{ring}.builder"))
    pid_before = (hosts.workdir / "sshd.0.pid").read_text()
    r = run_cli(cfg, "reboot-node", "h01", "--yes")
    assert r.exit_code == 2, r.output
    assert "short of a write quorum" in r.output.strip().splitlines()[-1]
    assert (hosts.workdir / "sshd.0.pid").read_text() == pid_before


def test_two_replicas_reboot_allowed_by_swifts_quorum_refused_by_majority(cluster2):
    """2 replicas, every node up: a write succeeds with 1 of 2 (swift's quorum_size), so
    the default allows the reboot and its dry run shows the verdict; --quorum majority
    refuses it, and so does --down with another node already down."""
    cfg, hosts, _ = cluster2
    pid_before = (hosts.workdir / "sshd.0.pid").read_text()
    r = run_cli(cfg, "--json", "reboot-node", "h01", "--dry-run")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["ok_to_stop"]["ok"] is True and data["ok_to_stop"]["quorum_rule"] == "swift"
    assert "write quorum 1 of 2 (majority: 2 of 2)" in r.stderr
    assert "safe to stop h01" in r.stderr
    for extra in (["--quorum", "majority"], ["--down", "h02"]):
        for mode in ("--dry-run", "--yes"):
            r = run_cli(cfg, "reboot-node", "h01", mode, *extra)
            assert r.exit_code == 2, (extra, mode, r.output)
            assert "do NOT stop h01" in r.output
            assert "short of a write quorum" in r.output.strip().splitlines()[-1]
    bad = run_cli(cfg, "reboot-node", "h01", "--dry-run", "--down", "h09")
    assert bad.exit_code == 2 and "h09" in bad.output.strip().splitlines()[-1]
    assert (hosts.workdir / "sshd.0.pid").read_text() == pid_before


def test_a_failing_reboot_command_is_exit_2_without_waiting(cluster):
    cfg, hosts, _ = cluster
    text = cfg.read_text()
    start = text.index("reboot_command = ")
    end = text.index("\n", start)
    cfg.write_text(text[:start] + 'reboot_command = ["sh", "-c", "echo no such unit >&2; '
                   'exit 3"]' + text[end:])
    pid_before = (hosts.workdir / "sshd.0.pid").read_text()
    r = run_cli(cfg, "reboot-node", "h01", "--yes", "--timeout", "600")
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]
    assert "reboot command failed on h01 (exit 3: no such unit)" in last
    assert "not rebooted" in last and "is down" not in r.output
    assert (hosts.workdir / "sshd.0.pid").read_text() == pid_before


def test_dry_run_host_steps_are_what_the_reboot_executes(cluster):
    """The plan is the reboot command; the real run executes exactly it (the wait
    only reads, and the rings check after it is a declared check)."""
    from tests.helpers.apps import planned, run_cli, run_recorded

    cfg, hosts, mount_root = cluster
    r = run_cli(["--config", str(cfg), "--json", "reboot-node", "h01", "--dry-run"])
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.stdout)
    assert [(s["step"], s["destructive"]) for s in doc["host_steps"]] == [("reboot", True)]
    executed, checks = [], []
    r = run_recorded(["--config", str(cfg), "--json", "reboot-node", "h01", "--yes",
                      "--timeout", "30"], executed, checks=checks)
    assert r.exit_code in (0, 1), r.output
    assert executed == planned(doc)
    assert [h for h, _ in checks] == ["h01"]           # verify's session, declared a check
