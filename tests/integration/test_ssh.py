"""The SSH executor against real sshd hosts: quoting, logging, reuse, retries, host keys."""

import logging
import threading

import pytest

from ringmgr.config import load_config
from ringmgr.exec.base import CommandFailed
from ringmgr.exec.ssh import (CommandTimeout, HostKeyChanged, HostKeyUnknown, KnownHosts,
                              SSHError, SSHExecutor)
from tests.helpers.sftp import put


@pytest.fixture
def cfg(sshd_hosts, tmp_path):
    path = sshd_hosts.write_config(tmp_path / "ringmgr.toml", tmp_path,
                                   extra_nodes={"down": sshd_hosts.unused_address()})
    return load_config(path)


def ex_for(cfg, name, **kw):
    return SSHExecutor(cfg.hosts()[name], cfg.ssh, **kw)


def test_argv_is_quoted_once_and_logged_before_it_runs(cfg, caplog):
    caplog.set_level(logging.INFO, logger="ringmgr.exec")
    tricky = ["a b", "it's", "$HOME", "`id`", "x;rm -rf /nonexistent", "*"]
    with ex_for(cfg, "h01") as ex:
        r = ex.run(["printf", "%s\\n", *tricky], mutates=False)
    assert r.ok and r.stdout.splitlines() == tricky and r.host == "h01"
    assert any("[h01] query: printf" in m and "'a b'" in m for m in caplog.messages)


def test_one_connection_reused_for_commands_and_uploads(cfg, sshd_hosts):
    with ex_for(cfg, "h02") as ex:
        first = ex.connect().transport
        pids = {ex.run(["sh", "-c", "echo $PPID"]).stdout for _ in range(3)}
        put(ex, b"hello", str(sshd_hosts.host("h02").swift_dir / "f"))
        assert ex.connect().transport is first
        assert len(pids) == 1            # every command ran under the same sshd session process
    assert (sshd_hosts.host("h02").swift_dir / "f").read_bytes() == b"hello"


def test_exit_codes_stdin_and_check(cfg):
    with ex_for(cfg, "h01") as ex:
        assert ex.run(["cat"], input="from stdin\n").stdout == "from stdin\n"
        r = ex.run(["sh", "-c", "echo oops >&2; exit 3"], check=False)
        assert (r.rc, r.stderr) == (3, "oops\n")
        with pytest.raises(CommandFailed, match=r"exit 3.*oops"):
            ex.run(["sh", "-c", "echo oops >&2; exit 3"])
        with pytest.raises(CommandTimeout):
            ex.run(["sleep", "5"], timeout=0.3)


def test_down_node_retries_with_backoff_then_fails(cfg):
    sleeps = []
    ex = ex_for(cfg, "down", sleep=sleeps.append)
    with pytest.raises(SSHError, match=r"cannot connect .* after 2 attempt\(s\): connection "
                                       r"refused"):
        ex.run(["true"])
    assert sleeps == [0.5]                      # retries = 1 in the test config


def test_bad_key_is_not_retried(cfg, tmp_path):
    import dataclasses
    import subprocess

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    sleeps = []
    ssh = dataclasses.replace(cfg.ssh, identity_file=other, retries=3)
    ex = SSHExecutor(cfg.hosts()["h01"], ssh, sleep=sleeps.append)
    with pytest.raises(SSHError, match="authentication as root .* failed"):
        ex.connect()
    assert sleeps == []


def test_host_keys_unknown_changed_and_accepted_concurrently(sshd_hosts_factory, tmp_path):
    sshd_hosts = sshd_hosts_factory(8)
    path = sshd_hosts.write_config(tmp_path / "many.toml", tmp_path)
    cfg = load_config(path)
    sshd_hosts.write_known_hosts(omit={h.name for h in sshd_hosts.hosts[1:]}, wrong={"h01"})
    with pytest.raises(HostKeyChanged, match="HOST KEY CHANGED.*ssh-keygen -R"):
        SSHExecutor(cfg.hosts()["h01"], cfg.ssh, known_hosts=KnownHosts.from_config(
            cfg.ssh, accept_new=True)).connect()
    with pytest.raises(HostKeyUnknown, match="not in .*--accept-new-host-keys"):
        SSHExecutor(cfg.hosts()["h02"], cfg.ssh).connect()
    known = KnownHosts.from_config(cfg.ssh, accept_new=True)
    errors = []

    def one(name):
        try:
            with SSHExecutor(cfg.hosts()[name], cfg.ssh, known_hosts=known) as ex:
                ex.run(["true"])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=one, args=(h.name,)) for h in sshd_hosts.hosts[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    lines = sshd_hosts.known_hosts.read_text().splitlines()
    assert len(lines) == 8 and len(set(lines)) == 8     # no lost or doubled appends
    # now strictly checked: every new key works without accept_new
    for h in sshd_hosts.hosts[1:]:
        with SSHExecutor(cfg.hosts()[h.name], cfg.ssh) as ex:
            assert ex.run(["true"]).ok


def test_remote_process_talks_line_by_line(cfg):
    with ex_for(cfg, "h01") as ex:
        proc = ex.start(["sh", "-c", "read a; echo got $a; read b; echo then $b >&2; "
                                     "echo end; exit 4"], mutates=False)
        proc.write("one\n")
        assert proc.readline(timeout=30) == "got one\n"
        proc.write("two\n")
        r = proc.finish(timeout=30, check=False)
        assert (r.rc, r.stdout, r.stderr) == (4, "end\n", "then two\n")
        proc = ex.start(["sleep", "5"], mutates=False)
        with pytest.raises(CommandTimeout):
            proc.readline(timeout=0.3)


def test_key_from_the_agent_when_no_identity_file(cfg, sshd_hosts, tmp_path, monkeypatch):
    import dataclasses
    import os
    import signal
    import subprocess

    sock = tmp_path / "agent.sock"
    out = subprocess.run(["ssh-agent", "-s", "-a", str(sock)], capture_output=True,
                         text=True, check=True).stdout
    pid = int(out.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        ssh = dataclasses.replace(cfg.ssh, identity_file=None, retries=0)
        with pytest.raises(SSHError, match="authentication"):      # agent still empty
            SSHExecutor(cfg.hosts()["h01"], ssh).connect()
        subprocess.run(["ssh-add", "-q", str(sshd_hosts.identity_file)], check=True,
                       env={**os.environ, "SSH_AUTH_SOCK": str(sock)})
        with SSHExecutor(cfg.hosts()["h01"], ssh) as ex:
            assert ex.run(["echo", "via agent"]).stdout == "via agent\n"
    finally:
        os.kill(pid, signal.SIGTERM)
