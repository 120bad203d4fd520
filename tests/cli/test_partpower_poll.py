"""The waiting look at a node's relinker (``status_argv(..., wait)``): the real start
script, locally.  It answers as soon as the step ends, and after ``wait`` at the latest
while it runs; it never waits for a step that is not running."""

import os
import signal
import subprocess
import time

from ringmgr.config import Node
from ringmgr.ops import relinker as rl


def node(tmp_path):
    return Node("s01", "h", None, str(tmp_path), "root", run_dir=str(tmp_path / "run"))


def look(n, op, wait):
    t0 = time.monotonic()
    out = subprocess.run(rl.status_argv(n, op, "relink", wait), capture_output=True,
                         text=True, timeout=60).stdout
    return rl.parse_state(out), time.monotonic() - t0


def test_a_waiting_look_answers_when_the_step_ends(tmp_path):
    n = node(tmp_path)
    st = rl.parse_state(subprocess.run(rl.start_argv(n, "op", "relink", ["sleep", "1.5"]),
                                       capture_output=True, text=True).stdout)
    assert st.state == "started"
    st, took = look(n, "op", 30)
    assert (st.state, st.rc) == ("finished", 0)
    assert took < 20, f"waited {took:.1f} s after the step ended"


def test_a_waiting_look_at_a_running_step_answers_after_wait(tmp_path):
    n = node(tmp_path)
    st = rl.parse_state(subprocess.run(rl.start_argv(n, "op", "relink", ["sleep", "30"]),
                                       capture_output=True, text=True).stdout)
    try:
        assert st.state == "started"
        running, took = look(n, "op", 0.5)
        assert (running.state, running.pid) == ("running", st.pid)
        assert took >= 0.5, "the look did not wait"
        now, took0 = look(n, "op", 0)
        assert now.state == "running"
    finally:
        os.killpg(os.getpgid(st.pid), signal.SIGKILL)
    assert took0 < took


def test_a_look_never_waits_for_a_step_that_does_not_run(tmp_path):
    n = node(tmp_path)
    st, took = look(n, "never", 30)
    assert st.state == "none"
    assert took < 10
    subprocess.run(rl.start_argv(n, "op", "relink", ["false"]), capture_output=True)
    for _ in range(100):
        st, took = look(n, "op", 30)
        if st.state == "finished":
            break
    assert (st.state, st.rc) == ("finished", 1) and took < 10


def test_one_gather_reads_the_files_and_the_state(tmp_path):
    n = node(tmp_path)
    a, b, missing = tmp_path / "a.conf", tmp_path / "b.conf", tmp_path / "none.conf"
    a.write_text("[DEFAULT]\nuser = swift\n")
    b.write_text("no newline at the end")
    paths = [str(a), str(missing), str(b)]
    token = "ringmgr-0123abcd"
    out = subprocess.run(rl.gather_argv(n, "op", "relink", paths, token),
                         capture_output=True, text=True, timeout=60).stdout
    texts, st = rl.parse_gather(out, token, paths)
    assert texts == [a.read_text(), None, b.read_text()]
    assert st.state == "none"
    subprocess.run(rl.start_argv(n, "op", "relink", ["true"]), capture_output=True)
    for _ in range(100):
        out = subprocess.run(rl.gather_argv(n, "op", "relink", paths, token),
                             capture_output=True, text=True, timeout=60).stdout
        texts, st = rl.parse_gather(out, token, paths)
        if st.state == "finished":
            break
        time.sleep(0.05)
    assert (st.state, st.rc) == ("finished", 0)
    assert texts[0] == a.read_text()
    assert rl.parse_gather("garbage", token, paths)[1].state == "error"


class Counting:
    """This machine's shell, counting the commands (round trips over SSH)."""

    def __init__(self):
        from ringmgr.exec.local import LocalExecutor

        self.inner, self.argvs = LocalExecutor(), []

    def run(self, argv, **kw):
        self.argvs.append(list(argv))
        return self.inner.run(argv, **kw)


def test_a_start_with_the_config_seen_is_one_command(tmp_path):
    from ringmgr.errors import Refused
    from ringmgr.ops import partpower_nodes as pn

    conf = tmp_path / "object-server.conf"
    conf.write_text("[DEFAULT]\nuser = swift\n[filter:recon]\nuse = egg:swift#recon\n")
    n = Node("s01", "h", None, str(tmp_path), "root", run_dir=str(tmp_path / "run"),
             object_server_conf=str(conf), swift_command_prefix=("sh", "-c", "exit 0"))
    on = pn.ObjectNode(n, {"object": ["sdb"]})
    opts = rl.RelinkOptions()
    # no config seen yet: look, write ringmgr's relinker config, start
    ex = Counting()
    st = pn.start_relinker(on, ex, "op1", "relink", ["object"], opts, seen=None)
    assert st["state"] in ("started", "finished") and not st["found"]
    assert len(ex.argvs) == 3, [" ".join(a)[-90:] for a in ex.argvs]
    seen = st["seen"]
    own = tmp_path / "run" / rl.OWN_CONF
    assert seen["own"] == own.read_text()
    # seen: the look and the start are one command, which writes the missing config
    own.unlink()
    ex = Counting()
    st = pn.start_relinker(on, ex, "op2", "relink", ["object"], opts, seen=seen)
    assert st["state"] in ("started", "finished") and not st["found"]
    assert len(ex.argvs) == 1 and (tmp_path / "run" / "op2" / "relink.pid").exists()
    assert own.read_text() == seen["own"]
    # already running or finished: found, nothing started again
    ex = Counting()
    again = pn.start_relinker(on, ex, "op2", "relink", ["object"], opts, seen=seen)
    assert again["found"] and again["state"] in ("running", "finished")
    # the config changed since: the node does not start; ringmgr checks the new one
    # and refuses it (its [object-relinker] reports where recon does not look)
    conf.write_text(conf.read_text() + "[object-relinker]\nrecon_cache_path = /else\n")
    ex = Counting()
    try:
        pn.start_relinker(on, ex, "op3", "relink", ["object"], opts, seen=seen)
        raise AssertionError("started with a config ringmgr refuses")
    except Refused:
        pass
    assert len(ex.argvs) == 1 and not (tmp_path / "run" / "op3" / "relink.pid").exists()
