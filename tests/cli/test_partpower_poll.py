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
