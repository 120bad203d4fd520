"""ringmgr's state on the admin host (run journals, backups, the audit log) is private:
made 0700/0600, never reached through a planted symlink, refused when another account
can write it; a journal edited to name another node, device or operation is refused."""

import json
import os
import stat

import pytest

from ringmgr.errors import Refused
from ringmgr.exec.runner import Journal, Step, run_steps
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import make_cluster


def mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_STATE_HOME", "RINGMGR_STATE_DIR", "RINGMGR_LOG"):
        monkeypatch.delenv(var, raising=False)
    return home


def test_state_dir_is_made_0700_and_the_audit_log_0600(home, tmp_path):
    c = make_cluster(tmp_path / "c")
    r = run_cli(c, "history")
    assert r.exit_code == 0, r.output
    state = home / ".local" / "state" / "ringmgr"
    log = state / "ringmgr.log"
    assert mode(state) == 0o700 and mode(log) == 0o600
    assert "argv=" in log.read_text()
    with Journal.open("op"):
        pass
    assert mode(state / "runs") == 0o700
    assert mode(state / "runs" / ".op.lock") == 0o600


def test_existing_audit_log_is_tightened_to_0600(home, tmp_path):
    state = home / ".local" / "state" / "ringmgr"
    state.mkdir(parents=True, mode=0o700)
    (state / "ringmgr.log").write_text("old line\n")
    os.chmod(state / "ringmgr.log", 0o644)
    c = make_cluster(tmp_path / "c")
    assert run_cli(c, "history").exit_code == 0
    assert mode(state / "ringmgr.log") == 0o600
    assert (state / "ringmgr.log").read_text().startswith("old line\n")


@pytest.mark.parametrize("how", ["world-writable", "group-writable", "other owner",
                                 "parent writable"])
def test_state_dir_others_can_write_is_refused(tmp_path, unix_user, how):
    d = tmp_path / "parent" / "state"
    d.mkdir(parents=True, mode=0o700)
    if how == "world-writable":
        os.chmod(d, 0o777)
    elif how == "group-writable":
        os.chmod(d, 0o770)
    elif how == "other owner":
        u = unix_user()
        os.chown(d, u.uid, u.gid)
    else:
        os.chmod(d.parent, 0o777)
    with pytest.raises(Refused) as e:
        Journal.open("op", d)
    msg = str(e.value)
    assert "\n" not in msg and f"state directory {d}" in msg and "fix it" in msg
    assert os.listdir(d) == []                 # no lock file, no journal made there


def test_sticky_parent_like_tmp_is_fine(tmp_path):
    parent = tmp_path / "shared"
    parent.mkdir()
    os.chmod(parent, 0o1777)
    with Journal.open("op", parent / "mine") as j:
        j.param("x", lambda: 1)
    assert mode(parent / "mine") == 0o700


def test_planted_lock_symlink_is_not_followed(tmp_path):
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    target = tmp_path / "cron.d-entry"           # a dangling symlink: root would create it
    os.symlink(target, d / ".op.lock")
    with pytest.raises(Refused, match="lock file"):
        Journal.open("op", d)
    assert not target.exists()


def test_audit_log_symlink_is_not_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "ringmgr.log"
    os.symlink(victim, link)
    monkeypatch.setenv("RINGMGR_LOG", str(link))
    c = make_cluster(tmp_path / "c")
    r = run_cli(c, "history")
    assert r.exit_code == 0, r.output
    assert victim.read_text() == "precious\n"
    assert "audit log" in r.stderr and "not written" in r.stderr


def _started(d, identity):
    with Journal.open("replace-disk.s01.sdb", d, identity=identity) as j:
        j.param("uuid", lambda: "u-1")
        run_steps([Step("a", "A", lambda ctx: None),
                   Step("b", "B", lambda ctx: (_ for _ in ()).throw(Refused("stop")))],
                  None, journal=j)
    return d / "replace-disk.s01.sdb.json"


def test_journal_edited_to_name_another_device_is_refused(tmp_path):
    d = tmp_path / "state"
    ident = {"node": "s01", "device": "sdb", "block_device": "/dev/sdb"}
    path = _started(d, ident)
    data = json.loads(path.read_text())
    assert data["identity"] == ident
    data["identity"]["block_device"] = "/dev/sda"          # the system disk
    path.write_text(json.dumps(data))
    before = path.read_text()
    with pytest.raises(Refused) as e:
        Journal.open("replace-disk.s01.sdb", d, identity=ident, resume=True)
    assert "was started for another block_device '/dev/sda' (now '/dev/sdb')" in str(e.value)
    assert path.read_text() == before
    # the same when the config changed under a run in progress
    data["identity"]["block_device"] = "/dev/sdb"
    path.write_text(json.dumps(data))
    with pytest.raises(Refused, match="another block_device '/dev/sdb' \\(now '/dev/sdc'\\)"):
        Journal.open("replace-disk.s01.sdb", d, resume=True,
                     identity={**ident, "block_device": "/dev/sdc"})
    with Journal.open("replace-disk.s01.sdb", d, identity=ident, resume=True) as j:
        assert j.params == {"uuid": "u-1"}


def test_journal_of_another_operation_is_refused(tmp_path):
    d = tmp_path / "state"
    path = _started(d, None)
    os.rename(path, d / "replace-disk.s02.sdb.json")           # copied to another node
    with pytest.raises(Refused, match="is for operation 'replace-disk.s01.sdb'"):
        Journal.open("replace-disk.s02.sdb", d)


def test_param_read_back_is_checked(tmp_path):
    d = tmp_path / "state"
    with Journal.open("op", d) as j:
        j.param("label", lambda: "sdb")
    path = d / "op.json"
    data = json.loads(path.read_text())
    data["params"]["label"] = "sda\nLABEL=root"
    path.write_text(json.dumps(data))

    def check(v):
        if not v.isalnum():
            raise Refused(f"bad label {v!r}")

    with Journal.open("op", d) as j:
        with pytest.raises(Refused, match="bad label"):
            j.param("label", lambda: "sdb", check=check)
