"""push and verify against real sshd hosts on loopback addresses (sim/hosts.py).

Every node is a real OpenSSH server with its own swift_dir; the rings are made by
swift's RingBuilder.  Failure cases use the real thing: a refused connection, a
read-only bind mount, a full tmpfs, a wrong known_hosts, a push killed by SIGKILL.
"""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from swift.common.ring import RingBuilder, RingData

from tests.helpers.checksums import flat_checksums, md5_of
from tests.helpers.cli import run_cli
from tests.helpers.mounts import read_only, umount_when_free  # noqa: F401 (importable here too)
from tests.helpers.ringfactory import lock_held

RINGS = ("account", "container", "object")


def make_rings(d, names=RINGS, pp=6, changes=0, devices=6, builders=False):
    """Real rings; each ``changes`` is one more weight change + rebalance (version up).
    ``builders``: save the builders too (an admin host's builder_dir: push sends only
    rings that are what their builders make)."""
    os.makedirs(d, exist_ok=True)
    out = {}
    for n in names:
        b = RingBuilder(pp, 3, 0)
        for i in range(devices):
            b.add_dev({"region": 1, "zone": i % 3, "ip": f"10.9.0.{i + 1}", "port": 6200,
                       "device": "sdb", "weight": 100.0})
        b.rebalance(seed=1)
        for _ in range(changes):
            b.set_dev_weight(0, b.devs[0]["weight"] + 10)
            b.rebalance(seed=1)
        path = os.path.join(d, f"{n}.ring.gz")
        b.get_ring().save(path)
        if builders:
            b.save(os.path.join(d, f"{n}.builder"))
        out[n] = path
    return out


def admin_builders(admin, rings=RINGS):
    """An admin host's builder_dir for the sshd test hosts: builders and rings of three
    nodes (10.9.0.1-3, a zone each), sdb and sdc on each."""
    admin.mkdir()
    for ring in rings:
        b = RingBuilder(6, 3, 0)
        for i in range(3):
            for dev in ("sdb", "sdc"):
                b.add_dev({"region": 1, "zone": i + 1, "ip": f"10.9.0.{i + 1}", "port": 6200,
                           "replication_ip": f"10.9.0.{i + 1}", "replication_port": 6200,
                           "device": dev, "weight": 100.0, "meta": ""})
        b.rebalance(seed=1)
        b.save(str(admin / f"{ring}.builder"))
        b.get_ring().save(str(admin / f"{ring}.ring.gz"))
    return admin


class Env:
    def __init__(self, hosts, tmp_path, **cfg):
        self.hosts = hosts
        self.admin = tmp_path / "admin"
        self.rings = make_rings(self.admin, changes=1, builders=True)
        self.config = hosts.write_config(tmp_path / "ringmgr.toml", self.admin, **cfg)

    def run(self, *args):
        return run_cli(self.config, *args)

    def sub(self, *args, **kw):
        return subprocess.run(["ringmgr", "--config", str(self.config), *args],
                              capture_output=True, text=True, **kw)

    def admin_md5(self):
        return {f"{n}.ring.gz": md5_of(p) for n, p in self.rings.items()}

    def node(self, name):
        return self.hosts.host(name).swift_dir

    def seed_old_rings(self, *names):
        """Give nodes an older version of every ring (as after the previous push)."""
        for name in names:
            make_rings(self.node(name), changes=0)


@pytest.fixture
def env(sshd_hosts, tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    return Env(sshd_hosts, tmp_path)


def test_push_updates_every_node_byte_identical_then_skips(env):
    env.seed_old_rings("h01")
    r = env.run("push")
    assert r.exit_code == 0, r.output
    want = env.admin_md5()
    for h in env.hosts.hosts:
        assert flat_checksums(h.swift_dir) == want
        for f in want:
            st = os.stat(h.swift_dir / f)
            assert oct(st.st_mode & 0o777) == "0o644" and st.st_uid == 0
    # RingData reads what landed (a real, loadable ring)
    assert RingData.load(str(env.node("h02") / "object.ring.gz")).version == \
        RingData.load(env.rings["object"]).version
    r = env.run("--json", "push")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["written"] is False
    assert all(h["updated"] == [] and len(h["unchanged"]) == 3 for h in rep["hosts"].values())
    assert rep["reason"] == "nothing_to_do"
    assert "pushed:" not in r.stderr  # no report text on stderr, only progress
    assert not any(line.startswith("node ") for line in r.stderr.splitlines())
    # one ring changes: only that one travels
    make_rings(env.admin, names=("object",), changes=2, builders=True)
    rep = json.loads(env.run("--json", "push").stdout)
    assert [h["updated"] for h in rep["hosts"].values()] == [["object.ring.gz"]] * 3
    assert rep["reason"] == "ok"
    assert flat_checksums(env.node("h03")) == env.admin_md5()


def test_push_keeps_owner_and_mode_of_the_replaced_ring(env):
    env.seed_old_rings("h01")
    target = env.node("h01") / "object.ring.gz"
    os.chown(target, 65534, 65534)
    os.chmod(target, 0o640)
    assert env.run("push", "h01").exit_code == 0
    st = os.stat(target)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o640)
    assert md5_of(target) == env.admin_md5()["object.ring.gz"]


def test_down_node_fails_alone_and_names_the_retry(sshd_hosts, tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    env = Env(sshd_hosts, tmp_path, extra_nodes={"s09": sshd_hosts.unused_address()})
    p = env.sub("push")
    assert p.returncode == 2, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("ringmgr: error: push failed on 1 of 4 node(s): s09")
    assert "ringmgr push s09" in last and "Traceback" not in p.stderr
    assert "connection refused" in p.stdout
    for h in env.hosts.hosts:
        assert flat_checksums(h.swift_dir) == env.admin_md5()


def test_dry_run_changes_nothing(env):
    env.seed_old_rings("h01")
    before = {h.name: flat_checksums(h.swift_dir) for h in env.hosts.hosts}
    r = env.run("push", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "would update" in r.output and "account,container,object" in r.output
    assert {h.name: flat_checksums(h.swift_dir) for h in env.hosts.hosts} == before


def test_unknown_node_is_bad_input(env):
    before = flat_checksums(env.node("h01"))
    p = env.sub("push", "nosuch")
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "unknown node nosuch" in p.stderr and "Traceback" not in p.stderr
    assert flat_checksums(env.node("h01")) == before


def test_read_only_swift_dir_fails_that_node_only(env):
    env.seed_old_rings("h02")
    d = str(env.node("h02"))
    old = flat_checksums(d)
    with read_only(d):
        r = env.run("push")
        assert r.exit_code == 2
        assert "not writable" in r.output and "h02" in r.output
        assert flat_checksums(d) == old
    assert flat_checksums(env.node("h01")) == env.admin_md5()


def test_full_filesystem_keeps_the_old_ring_and_leaves_no_temp_file(env):
    """A tmpfs with room for two of the three temp files: the plan's free-space check
    passes (sizes fit), writing the third hits ENOSPC for real, every temp file is
    removed and the old rings stay."""
    d = str(env.node("h03"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", d], check=True)
    try:
        make_rings(d, changes=0)
        old = flat_checksums(d)
        st = os.statvfs(d)
        pages_free = st.f_bavail
        filler = os.path.join(d, "filler")
        with open(filler, "wb") as f:
            f.write(b"x" * (pages_free - 2) * st.f_frsize)
        old["filler"] = md5_of(filler)
        r = env.run("push")
        assert r.exit_code == 2, r.output
        assert "h03" in r.output and "No space left on device" in r.output
        assert flat_checksums(d) == old                      # no temp file, old rings intact
        # and when nothing fits at all, the plan refuses before uploading
        with open(filler, "ab") as f:
            f.write(b"x" * 2 * st.f_frsize)
        r = env.run("push", "h03")
        assert r.exit_code == 2 and "not enough space" in r.output
    finally:
        subprocess.run(["umount", d], check=True)
    assert flat_checksums(env.node("h01")) == env.admin_md5()


def test_unknown_and_changed_host_keys(env):
    env.hosts.write_known_hosts(omit={"h02"}, wrong={"h03"})
    r = env.run("push")
    assert r.exit_code == 2
    assert "is not in" in r.output and "--accept-new-host-keys" in r.output
    assert "HOST KEY CHANGED" in r.output
    assert os.listdir(env.node("h02")) == [] and os.listdir(env.node("h03")) == []
    assert flat_checksums(env.node("h01")) == env.admin_md5()
    r = env.run("push", "--accept-new-host-keys")
    assert r.exit_code == 2                        # a changed key is never accepted
    assert flat_checksums(env.node("h02")) == env.admin_md5()
    assert os.listdir(env.node("h03")) == []
    assert f"[{env.hosts.host('h02').address}]:" in env.hosts.known_hosts.read_text()
    assert env.run("push", "h01", "h02").exit_code == 0


def test_newer_ring_on_a_node_is_refused_unless_forced(env):
    make_rings(env.node("h01"), names=("object",), changes=3)
    newer = md5_of(env.node("h01") / "object.ring.gz")
    r = env.run("push")
    assert r.exit_code == 2
    assert "newer ring" in r.output and "--force" in r.output and "ringmgr push h01" in r.output
    assert md5_of(env.node("h01") / "object.ring.gz") == newer
    assert md5_of(env.node("h01") / "account.ring.gz") == env.admin_md5()["account.ring.gz"]
    assert flat_checksums(env.node("h02")) == env.admin_md5()
    r = env.run("push", "--force", "h01")              # no terminal, no --yes: refused
    assert r.exit_code == 2 and "--yes" in r.output
    assert md5_of(env.node("h01") / "object.ring.gz") == newer
    assert env.run("push", "--force", "--yes", "h01").exit_code == 0
    assert flat_checksums(env.node("h01")) == env.admin_md5()


def test_corrupt_ring_on_a_node_is_replaced(env):
    assert env.run("push").exit_code == 0
    target = env.node("h02") / "container.ring.gz"
    target.write_bytes(target.read_bytes()[:100])
    r = env.run("verify")
    assert r.exit_code == 1 and "corrupt" in r.output
    r = env.run("--json", "push")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["hosts"]["h02"]["updated"] == ["container.ring.gz"]
    assert flat_checksums(env.node("h02")) == env.admin_md5()


def test_verify_consistent_stale_missing_corrupt_extra(env):
    assert env.run("push").exit_code == 0
    r = env.run("verify")
    assert r.exit_code == 0, r.output
    make_rings(env.node("h01"), names=("object",), changes=0)        # older: stale
    os.unlink(env.node("h02") / "account.ring.gz")                   # missing
    (env.node("h03") / "object.ring.gz").write_bytes(b"\x1f\x8b garbage")   # corrupt
    make_rings(env.node("h03"), names=("object-1",))                 # extra
    r = env.run("--json", "verify")
    assert r.exit_code == 1
    rep = json.loads(r.stdout)
    states = {n: {k: v for k, v in h["verify"].items() if v != "ok"}
              for n, h in rep["hosts"].items()}
    assert rep["reason"] == "check_failed" and rep["next"][0]["command"].endswith(
        "push h01 h02 h03")
    assert states == {"h01": {"object.ring.gz": "stale"},
                      "h02": {"account.ring.gz": "missing"},
                      "h03": {"object.ring.gz": "corrupt", "object-1.ring.gz": "extra"}}
    assert "ringmgr push h01 h02 h03" in r.stderr


def test_pending_ring_change_refuses_the_push(env):
    from ringmgr.rings.store import RingStore

    RingStore(env.admin).txn_dir.mkdir(parents=True)   # what an interrupted change leaves
    p = env.sub("push")
    assert p.returncode == 2 and "pending" in p.stderr and "ringmgr resume" in p.stderr
    assert all(os.listdir(h.swift_dir) == [] for h in env.hosts.hosts)


@pytest.mark.slow
def test_push_killed_midway_leaves_each_node_old_or_new(sshd_hosts_factory, tmp_path,
                                                        monkeypatch):
    """SIGKILL the push as soon as the first node shows a change (a temp file or a new
    ring), at three depths; every node must hold, per ring, the old or the new file."""
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    hosts = sshd_hosts_factory(6)
    old_dir, admin = tmp_path / "old", tmp_path / "admin"
    old = {f"{n}.ring.gz": md5_of(p) for n, p in make_rings(old_dir, pp=14, devices=12).items()}
    new = {f"{n}.ring.gz": md5_of(p)
           for n, p in make_rings(admin, pp=14, devices=12, changes=1,
                                               builders=True).items()}
    cfg = hosts.write_config(tmp_path / "ringmgr.toml", admin, parallel=2)
    killed_mid = 0
    for changes_seen in (1, 3, 6):
        for h in hosts.hosts:
            for f in os.listdir(h.swift_dir):
                os.unlink(h.swift_dir / f)
            for f in old:
                shutil.copy(old_dir / f, h.swift_dir / f)     # every node has the old rings
        proc = subprocess.Popen(["ringmgr", "--config", str(cfg), "push"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        inodes = {(h.name, f): os.stat(h.swift_dir / f).st_ino for h in hosts.hosts for f in old}
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            seen = sum(1 for h in hosts.hosts for f in os.listdir(h.swift_dir)
                       if f.startswith(".") or (f in old and os.stat(h.swift_dir / f).st_ino
                                                != inodes[h.name, f]))
            if seen >= changes_seen:
                break
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        states = set()
        for h in hosts.hosts:
            files = os.listdir(h.swift_dir)
            for f in files:
                if f.endswith(".ring.gz"):
                    assert md5_of(h.swift_dir / f) in (old[f], new[f]), (h.name, f)
                    states.add("new" if md5_of(h.swift_dir / f) == new[f] else "old")
                else:
                    assert ".ringmgr-" in f and f.startswith("."), f
                    states.add("tmp")
            assert {f for f in files if f.endswith(".ring.gz")} == set(old)
        if proc.returncode == -signal.SIGKILL and len(states) > 1:
            killed_mid += 1
        # verify removes what the killed push left, then a push completes
        r = subprocess.run(["ringmgr", "--config", str(cfg), "verify"], capture_output=True,
                           text=True)
        assert r.returncode in (0, 1), r.stderr
        assert all(not f.startswith(".") for h in hosts.hosts for f in os.listdir(h.swift_dir))
    assert killed_mid >= 1, "no kill landed mid-push; the test proved nothing"
    r = subprocess.run(["ringmgr", "--config", str(cfg), "push"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert all(flat_checksums(h.swift_dir) == new for h in hosts.hosts)


def test_a_silent_node_times_out_without_holding_up_the_others(sshd_hosts, tmp_path,
                                                               monkeypatch):
    """A node that accepts TCP but never sends the SSH banner (a hung sshd)."""
    import socket

    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    addr = sshd_hosts.unused_address()
    silent = socket.socket()
    silent.bind((addr, sshd_hosts.port))
    silent.listen(8)
    try:
        env = Env(sshd_hosts, tmp_path, extra_nodes={"s09": addr}, connect_timeout=1.0,
                  retries=1)
        t0 = time.monotonic()
        r = env.run("--json", "push")
        took = time.monotonic() - t0
    finally:
        silent.close()
    assert r.exit_code == 2
    rep = json.loads(r.stdout)
    hosts = rep["hosts"]
    assert "after 2 attempt(s)" in hosts["s09"]["error"]
    assert "did not complete the SSH handshake within 1s" in hosts["s09"]["error"]
    assert hosts["s09"]["seconds"] >= 2.0          # two 1 s timeouts and a 0.5 s backoff
    for name in ("h01", "h02", "h03"):
        assert hosts[name]["ok"]
        assert flat_checksums(env.node(name)) == env.admin_md5()
    assert took < 15


def test_ring_change_with_push_reaches_every_node(sshd_hosts, tmp_path, monkeypatch):
    """The lead's `--push` step calls push_rings after writing: the new rings land."""
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    admin = admin_builders(tmp_path / "admin")
    before = {f"{r}.ring.gz": md5_of(admin / f"{r}.ring.gz") for r in RINGS}
    cfg = sshd_hosts.write_config(tmp_path / "ringmgr.toml", admin)
    p = subprocess.run(["ringmgr", "--config", str(cfg), "set-weight", "h01/sdb", "50",
                        "--yes", "--push"], capture_output=True, text=True)
    assert p.returncode in (0, 1), p.stderr          # 1: balance not yet good (a warning)
    after = {f"{r}.ring.gz": md5_of(admin / f"{r}.ring.gz") for r in RINGS}
    assert after != before
    for h in sshd_hosts.hosts:
        assert flat_checksums(h.swift_dir) == after


def test_push_waits_for_the_builder_dir_lock_and_names_its_holder(env):
    """A ring change (or another push) holding builder_dir's lock keeps the push from
    reading rings mid-change; after lock_timeout it gives up naming the holder."""
    env.config.write_text(env.config.read_text().replace(
        "[cluster]\n", "[cluster]\nlock_timeout = 1.0\n", 1))
    with lock_held(env.admin) as holder:
        before = {n: flat_checksums(env.node(n)) for n in env.hosts.names}
        r = env.run("push")
        assert r.exit_code == 2, r.output
        assert f"pid {holder.pid}" in r.output
        assert {n: flat_checksums(env.node(n)) for n in env.hosts.names} == before
    assert env.run("push").exit_code == 0


def test_dry_run_host_steps_are_what_the_push_executes(env):
    """`push --dry-run --json` plans one session per node (it removes a killed push's
    temp files, then uploads what the node lacks); the real push starts exactly
    those (and nothing else that changes a node)."""
    from tests.helpers.apps import planned, run_cli, run_recorded

    env.seed_old_rings("h01")
    make_rings(env.node("h02"), changes=1)           # h02 already has the admin's rings
    r = run_cli(["--config", str(env.config), "push", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    plan = planned(doc)
    by_host = {s["host"]: s for s in doc["host_steps"]}
    assert set(by_host) == {"h01", "h02", "h03"} and len(plan) == 3
    assert by_host["h01"]["step"] == "push" and "stale" in by_host["h01"]["reason"]
    assert "upload nothing (rings current)" in by_host["h02"]["reason"]
    executed = []
    r = run_recorded(["--config", str(env.config), "push"], executed)
    assert r.exit_code == 0, r.output
    assert sorted(executed) == sorted(plan)
    assert {f"{n}.ring.gz": md5_of(os.path.join(env.node("h01"), f"{n}.ring.gz"))
            for n in RINGS} == env.admin_md5()


def test_drain_dry_run_host_steps_are_what_the_drain_step_executes(sshd_hosts, tmp_path,
                                                                    monkeypatch):
    """`drain-node --push --dry-run --json` has the gradual `steps` and, as
    `host_steps`, the push after the write; the real step with --push starts exactly
    those sessions on the nodes (and nothing else that changes a node)."""
    from tests.helpers.apps import planned, run_cli, run_recorded

    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    admin = admin_builders(tmp_path / "admin")
    cfg = sshd_hosts.write_config(tmp_path / "ringmgr.toml", admin)
    args = ["--config", str(cfg), "drain-node", "h03", "--max-move", "50", "--seed", "3",
            "--push", "--no-replication-check"]
    r = run_cli([*args, "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["steps"] and doc["steps"][0]["action"] == "set-weight"
    plan = planned(doc)
    assert sorted(h for h, _ in plan) == ["h01", "h02", "h03"]
    executed = []
    r = run_recorded([*args, "--yes"], executed)
    assert r.exit_code in (0, 1), r.output            # 1: the next step is due later
    assert sorted(executed) == sorted(plan)
    for h in sshd_hosts.hosts:
        assert flat_checksums(h.swift_dir) == {
            f"{n}.ring.gz": md5_of(admin / f"{n}.ring.gz") for n in RINGS}


def test_canary_rollout_reaches_the_hosts_through_the_cli_transport(env):
    """`push --canary 1` (push, verify, then the waves) makes every executor through
    App.transport like a plain push: a recorder sees one push session per host and the
    canary's verify session (a check), and the rings land."""
    from tests.helpers.apps import run_recorded

    executed, checks = [], []
    r = run_recorded(["--config", str(env.config), "push", "--canary", "1"], executed,
                     checks=checks)
    assert r.exit_code == 0, r.output
    assert sorted(h for h, _ in executed) == ["h01", "h02", "h03"]
    canary = r.output.split("canary: pushing to ")[1].split()[0]
    assert [h for h, _ in checks] == [canary]
    assert all(argv[-2] == "session" for _, argv in executed + checks)
    for name in env.hosts.names:
        assert flat_checksums(env.node(name)) == env.admin_md5()
