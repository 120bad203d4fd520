"""The SSH executor against nodes that never stop talking (or never answer), and
against Fabric's config files: real sshd hosts on loopback.

A node's output is not trusted to end: each command fails with one line naming the
host, within its deadline or output cap, and leaves no process behind.  Fabric's
``/etc/fabric.*`` and ``~/.fabric.py`` (executed as Python) are never read.
"""

import os
import secrets
import threading
import time

import pytest

from ringmgr.config import load_config
from ringmgr.exec.ssh import CommandTimeout, OutputTooLarge, SSHExecutor
from tests.helpers.cli import run_cli


@pytest.fixture
def cfg(sshd_hosts, tmp_path):
    return load_config(sshd_hosts.write_config(tmp_path / "ringmgr.toml", tmp_path))


def processes_with(token: str) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if token.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


def gone(token: str) -> bool:
    """Wait (a bounded while) for the node's processes carrying ``token`` to end."""
    for _ in range(200):
        if not processes_with(token):
            return True
        time.sleep(0.05)
    return False


def finishes(fn, *args, **kw):
    """Call fn in a thread; the test fails (instead of hanging) if it never returns."""
    box = {}

    def call():
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the call never returned"
    return box


def one_line_naming(err, host):
    text = str(err)
    assert "\n" not in text and text.startswith(f"[{host}] "), text


@pytest.mark.parametrize("max_output, timeout, error, says", [
    (8 << 20, 30, OutputTooLarge, "more than 8388608 bytes"),   # cut off at the cap
    (1 << 40, 2, CommandTimeout, None),                         # under the cap: the deadline
], ids=["cut-off-at-the-cap", "deadline-under-the-cap"])
def test_endless_stream_without_newline_is_stopped(cfg, max_output, timeout, error, says):
    token = f"ringmgr-flood-{secrets.token_hex(4)}"
    with SSHExecutor(cfg.hosts()["h01"], cfg.ssh, max_output=max_output) as ex:
        box = finishes(ex.run, ["sh", "-c", f"yes {token} | tr -d '\\n'"], timeout=timeout,
                       mutates=False)
    assert isinstance(box.get("error"), error), box
    one_line_naming(box["error"], "h01")
    if says is not None:
        assert says in str(box["error"])
    assert gone(token), processes_with(token)


def test_default_timeout_applies_to_a_run_without_one(cfg):
    token = f"ringmgr-silent-{secrets.token_hex(4)}"
    with SSHExecutor(cfg.hosts()["h02"], cfg.ssh, default_timeout=1.0) as ex:
        box = finishes(ex.run, ["sh", "-c", f"sleep 600; echo {token}"], mutates=False)
        assert isinstance(box.get("error"), CommandTimeout), box
        one_line_naming(box["error"], "h02")
        assert "timed out after 1s" in str(box["error"])
        assert ex.run(["sleep", "2"], timeout=30, mutates=False).ok   # a step may raise it
    assert gone(token), processes_with(token)


def test_remote_process_line_cap_and_deadline(cfg):
    token = f"ringmgr-zero-{secrets.token_hex(4)}"
    with SSHExecutor(cfg.hosts()["h03"], cfg.ssh, max_line=1 << 20) as ex:
        proc = ex.start(["sh", "-c", f"cat /dev/zero; : {token}"], mutates=False)
        box = finishes(proc.readline, timeout=60)
        assert isinstance(box.get("error"), OutputTooLarge), box
        assert "a line longer than 1048576 bytes" in str(box["error"])
        one_line_naming(box["error"], "h03")
        assert gone(token), processes_with(token)
        proc = ex.start(["sh", "-c", f"while :; do printf x; sleep 0.01; done; : {token}"],
                        mutates=False)
        box = finishes(proc.readline, timeout=1.5)
        assert isinstance(box.get("error"), CommandTimeout), box
    assert gone(token), processes_with(token)


# -- Fabric reads no config file ----------------------------------------------------

MARKER_PY = "open({path!r}, 'w').write('executed')\n"


def test_fabric_config_files_are_never_loaded(sshd_hosts, tmp_path, monkeypatch):
    """A push with HOME holding ~/.fabric.py, and /etc simulated: every invoke Config
    made without an explicit system_prefix looks in tmp/etc/ instead of /etc/."""
    import invoke.config

    home, etc = tmp_path / "home", tmp_path / "etc"
    home.mkdir()
    etc.mkdir()
    user_marker, system_marker = tmp_path / "user-ran", tmp_path / "system-ran"
    (home / ".fabric.py").write_text(MARKER_PY.format(path=str(user_marker)))
    (etc / "fabric.py").write_text(MARKER_PY.format(path=str(system_marker)))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    real_init = invoke.config.Config.__init__

    def init(self, *a, system_prefix=None, **kw):
        real_init(self, *a, system_prefix=system_prefix or f"{etc}/", **kw)

    monkeypatch.setattr(invoke.config.Config, "__init__", init)

    from tests.integration.test_push import make_rings

    admin = tmp_path / "admin"
    make_rings(admin, builders=True)
    config = sshd_hosts.write_config(tmp_path / "ringmgr.toml", admin)
    r = run_cli(config, "push")
    assert r.exit_code == 0, r.output
    assert not user_marker.exists() and not system_marker.exists()
