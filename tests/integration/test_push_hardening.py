"""push against a node where a local account is hostile, over a real sshd.

The account is a real unprivileged user (``useradd``), planting its files with
``setpriv`` through a descriptor of swift_dir (the test's temp dirs are 0700, so it
could not reach swift_dir by path).  What must hold: nothing outside swift_dir changes
(owner, mode, content), whatever the owner puts in swift_dir; a swift_dir that anyone
but root and the configured owner can write is refused before anything is sent.
"""

import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest

from tests.helpers.checksums import flat_checksums, md5_of
from tests.helpers.cli import run_cli
from tests.helpers.users import as_user
from tests.integration.test_push import make_rings

# Run as the node's configured owner, with swift_dir as the descriptor in argv[1].  It plants a FIFO
# as account.ring.gz (mode 06777, its own), a symlink container.ring.gz -> a root file
# outside, and a symlink that looks like a leftover temp file; then it waits for root
# to open the FIFO and, at that moment, swaps push's temp file for a symlink to the
# victim (the race a FIFO makes certain).
ATTACKER = r"""
import os, sys, time
fd = int(sys.argv[1])
victim, victim2, victim3 = sys.argv[2:5]
os.mkfifo("account.ring.gz", 0o600, dir_fd=fd)
os.chmod("account.ring.gz", 0o6777, dir_fd=fd)
os.symlink(victim2, "container.ring.gz", dir_fd=fd)
os.symlink(victim3, ".object.ring.gz.ringmgr-dead.tmp", dir_fd=fd)
print("ready", flush=True)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        w = os.open("account.ring.gz", os.O_WRONLY | os.O_NONBLOCK, dir_fd=fd)
    except OSError:
        time.sleep(0.001)
        continue
    for name in os.listdir(fd):
        if name.startswith(".account.ring.gz.ringmgr-") and name.endswith(".tmp"):
            os.unlink(name, dir_fd=fd)
            os.symlink(victim, name, dir_fd=fd)
            print("swapped", name, flush=True)
    os.close(w)
    break
"""


def snapshot(path):
    st = os.lstat(path)
    digest = hashlib.md5(open(path, "rb").read()).hexdigest() if stat.S_ISREG(st.st_mode) \
        else None
    return (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), digest)


@pytest.fixture
def audit(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))


def test_owner_planting_a_fifo_and_symlinks_cannot_touch_anything_outside_swift_dir(
        sshd_hosts_factory, unix_user, tmp_path, audit):
    user = unix_user()
    hosts = sshd_hosts_factory(1, owner=user.owner)
    h = hosts.hosts[0]
    os.chown(h.swift_dir, user.uid, user.gid)
    os.chmod(h.swift_dir, 0o755)      # the owner's own directory: allowed, as swift's layout
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [outside / "shadow", outside / "ssh_config", outside / "cron.d"]
    victims[0].write_text("root:secret\n")
    victims[1].write_text("PermitRootLogin no\n")
    victims[2].mkdir()
    for v in victims:
        os.chmod(v, 0o600 if v.is_file() else 0o700)
    before = {v: snapshot(v) for v in victims}
    admin = tmp_path / "admin"
    make_rings(admin, changes=1, builders=True)
    config = hosts.write_config(tmp_path / "ringmgr.toml", admin)

    dfd = os.open(h.swift_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        attacker = as_user(user, [sys.executable, "-I", "-c", ATTACKER, str(dfd),
                                  *map(str, victims)],
                           pass_fds=(dfd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    finally:
        os.close(dfd)
    try:
        assert attacker.stdout.readline().strip() == "ready", attacker.stderr.read()
        r = run_cli(config, "--json", "push")
    finally:
        attacker.kill()
        attacker.wait()

    assert {v: snapshot(v) for v in victims} == before          # nothing outside changed
    assert r.exit_code == 2, r.output
    rep = next(iter(json.loads(r.stdout)["hosts"].values()))
    assert set(rep["refused"]) == {"account.ring.gz", "container.ring.gz"}
    assert "not a regular file (a FIFO" in rep["refused"]["account.ring.gz"]
    assert f"owner {user.name}" in rep["refused"]["account.ring.gz"]
    assert "symlink" in rep["refused"]["container.ring.gz"]
    assert rep["updated"] == ["object.ring.gz"]
    st = os.stat(h.swift_dir / "object.ring.gz")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (user.uid, user.gid, 0o644)
    assert md5_of(h.swift_dir / "object.ring.gz") == md5_of(admin / "object.ring.gz")
    assert stat.S_ISFIFO(os.lstat(h.swift_dir / "account.ring.gz").st_mode)  # left alone
    assert os.path.islink(h.swift_dir / "container.ring.gz")
    assert sorted(os.listdir(h.swift_dir)) == ["account.ring.gz", "container.ring.gz",
                                               "object.ring.gz"]


@pytest.mark.parametrize("how", ["owned by another user", "group-writable",
                                 "world-writable"])
def test_swift_dir_writable_by_someone_else_is_refused(sshd_hosts_factory, unix_user,
                                                       tmp_path, audit, how):
    """Not the owner's doing: the configured owner is root, another account can write
    swift_dir.  The push is refused for that node, naming the path and its owner, and
    nothing in swift_dir changes (not even the temp-file sweep)."""
    other = unix_user()
    hosts = sshd_hosts_factory(2)
    h = hosts.hosts[0]
    make_rings(h.swift_dir, changes=0)
    (h.swift_dir / ".object.ring.gz.ringmgr-dead.tmp").write_bytes(b"half")
    if how == "owned by another user":
        os.chown(h.swift_dir, other.uid, other.gid)
        os.chmod(h.swift_dir, 0o755)
    elif how == "group-writable":
        os.chown(h.swift_dir, 0, other.gid)
        os.chmod(h.swift_dir, 0o775)
    else:
        os.chmod(h.swift_dir, 0o1777)
    before = flat_checksums(h.swift_dir)
    admin = tmp_path / "admin"
    make_rings(admin, changes=1, builders=True)
    config = hosts.write_config(tmp_path / "ringmgr.toml", admin)
    r = run_cli(config, "--json", "push")
    assert r.exit_code == 2, r.output
    hosts_out = json.loads(r.stdout)["hosts"]
    err = hosts_out["h01"]["error"]
    assert f"swift_dir {h.swift_dir}" in err and "nothing was changed" in err
    if how == "world-writable":
        assert "everyone" in err
    else:
        assert other.name in err
    assert flat_checksums(h.swift_dir) == before
    assert hosts_out["h02"]["ok"] and hosts_out["h02"]["updated"]
    os.chmod(h.swift_dir, 0o755)
    os.chown(h.swift_dir, 0, 0)
    assert run_cli(config, "push", "h01").exit_code == 0
