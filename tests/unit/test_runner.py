"""The plan runner: order, skip reasons, failure, stop, resume from the journal."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ringmgr.errors import LockHeld, Refused, StepFailed, UsageError
from ringmgr.exec.runner import Journal, Step, StopRun, run_steps


def steps_recording(log, *, fail_at=None, skip=(), stop_at=None, refuse_at=None,
                    bad_verify=None, destructive=()):
    def make(name):
        def check(ctx):
            if name == refuse_at:
                raise Refused(f"{name} refused")
            return f"{name} already right" if name in skip else None

        def action(ctx):
            if name == stop_at:
                raise StopRun(f"stop at {name}")
            log.append(name)
            if name == fail_at:
                raise StepFailed(f"{name} broke")

        def verify(ctx):
            if name == bad_verify:
                raise StepFailed(f"{name} not right")

        return Step(name, f"Step {name}", action, check=check, verify=verify,
                    destructive=name in destructive)

    return [make(n) for n in ("a", "b", "c", "d")]


def statuses(summary):
    return [(r.name, r.status) for r in summary.results]


def test_runs_in_order_and_records_skips(tmp_path):
    log = []
    s = run_steps(steps_recording(log, skip={"b"}), None,
                  journal=Journal.open("op", tmp_path))
    assert log == ["a", "c", "d"]
    assert statuses(s) == [("a", "done"), ("b", "skipped"), ("c", "done"), ("d", "done")]
    assert s.results[1].reason == "b already right"
    assert s.ok and s.finished
    data = json.loads((tmp_path / "op.json").read_text())
    assert data["finished"] is True
    assert s.to_json()["steps"][1] == {"name": "b", "title": "Step b", "status": "skipped",
                                       "reason": "b already right", "destructive": False}
    assert "b already right" in s.table()


def test_failure_stops_and_rerun_resumes_at_failed_step(tmp_path):
    log = []
    j = Journal.open("op", tmp_path)
    s = run_steps(steps_recording(log, fail_at="c"), None, journal=j)
    j.close()
    assert statuses(s) == [("a", "done"), ("b", "done"), ("c", "failed"), ("d", "pending")]
    assert not s.ok and isinstance(s.error, StepFailed)
    with pytest.raises(StepFailed):
        s.raise_error()
    log.clear()
    j = Journal.open("op", tmp_path, resume=True)
    s = run_steps(steps_recording(log), None, journal=j)
    assert log == ["c", "d"]
    assert [r.reason for r in s.results[:2]] == ["in an earlier run"] * 2
    assert s.finished


def test_verify_failure_is_a_failed_step(tmp_path):
    s = run_steps(steps_recording([], bad_verify="b"), None)
    assert statuses(s)[1] == ("b", "failed") and "not right" in s.results[1].reason


def test_refusal_in_check_runs_nothing_of_that_step(tmp_path):
    log = []
    s = run_steps(steps_recording(log, refuse_at="b"), None, journal=Journal.open("op", tmp_path))
    assert log == ["a"]
    assert isinstance(s.error, Refused)
    data = json.loads((tmp_path / "op.json").read_text())
    assert "b" not in data["steps"]


def test_stop_run_keeps_step_pending(tmp_path):
    log = []
    j = Journal.open("op", tmp_path)
    s = run_steps(steps_recording(log, stop_at="c"), None, journal=j)
    j.close()
    assert s.ok and not s.finished and s.stopped == "stop at c"
    assert statuses(s)[2:] == [("c", "stopped"), ("d", "pending")]
    log.clear()
    s = run_steps(steps_recording(log), None, journal=Journal.open("op", tmp_path))
    assert log == ["c", "d"] and s.finished


def test_confirm_called_once_before_first_destructive_action(tmp_path):
    log, asked = [], []
    s = run_steps(steps_recording(log, destructive={"c", "d"}), None,
                  confirm=lambda step: asked.append(step.name))
    assert asked == ["c"] and s.finished

    def no(step):
        raise Refused("not confirmed")

    log.clear()
    s = run_steps(steps_recording(log, destructive={"c"}), None, confirm=no)
    assert log == ["a", "b"] and isinstance(s.error, Refused)


def test_confirm_not_asked_when_destructive_step_skips():
    asked = []
    run_steps(steps_recording([], skip={"c"}, destructive={"c"}), None,
              confirm=lambda step: asked.append(step.name))
    assert asked == []


def test_params_chosen_once_and_kept_across_runs(tmp_path):
    j = Journal.open("op", tmp_path)
    first = j.param("uuid", lambda: "u-1")
    j.close()
    j = Journal.open("op", tmp_path)
    assert j.param("uuid", lambda: "u-2") == first == "u-1"


def test_dry_run_saves_params_but_no_step_state(tmp_path):
    j = Journal.open("op", tmp_path, dry_run=True)
    j.param("uuid", lambda: "u-dry")
    log = []
    s = run_steps(steps_recording(log), None, journal=j, dry_run=True)
    j.close()
    assert log == ["a", "b", "c", "d"] and s.dry_run and s.finished
    assert [r.status for r in s.results] == ["planned"] * 4
    data = json.loads((tmp_path / "op.json").read_text())
    assert data["params"] == {"uuid": "u-dry"} and data["steps"] == {}
    assert Journal.open("op", tmp_path).param("uuid", lambda: "other") == "u-dry"


def test_finished_journal_is_archived_and_resume_refuses(tmp_path):
    with Journal.open("op", tmp_path) as j:
        run_steps(steps_recording([]), None, journal=j)
    with pytest.raises(UsageError, match="nothing to resume"):
        Journal.open("op", tmp_path, resume=True)
    archived = [p.name for p in tmp_path.glob("op.*.json")]
    assert len(archived) == 1


def test_second_run_of_same_operation_is_locked_out(tmp_path):
    j = Journal.open("op", tmp_path)
    code = textwrap.dedent(f"""
        from ringmgr.exec.runner import Journal
        from ringmgr.errors import LockHeld
        try:
            Journal.open("op", {str(tmp_path)!r})
        except LockHeld:
            raise SystemExit(3)
    """)
    rc = subprocess.run([sys.executable, "-c", code]).returncode
    j.close()
    assert rc == 3
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_state_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_STATE_DIR", str(tmp_path / "st"))
    Journal.open("replace-disk.s02.sdb").param("x", lambda: 1)
    assert (tmp_path / "st" / "replace-disk.s02.sdb.json").exists()


def test_killed_mid_action_reruns_that_step(tmp_path):
    """A process killed inside an action leaves the step 'started'; the next run redoes it."""
    code = textwrap.dedent(f"""
        import os, signal
        from ringmgr.exec.runner import Journal, Step, run_steps
        def die(ctx): os.kill(os.getpid(), signal.SIGKILL)
        run_steps([Step("a", "A", lambda c: None), Step("b", "B", die)], None,
                  journal=Journal.open("op", {str(tmp_path)!r}))
    """)
    rc = subprocess.run([sys.executable, "-c", code]).returncode
    assert rc == -9
    data = json.loads((tmp_path / "op.json").read_text())
    assert data["steps"]["a"]["state"] == "done" and data["steps"]["b"]["state"] == "started"
    ran = []
    s = run_steps([Step("a", "A", lambda c: ran.append("a")),
                   Step("b", "B", lambda c: ran.append("b"))], None,
                  journal=Journal.open("op", tmp_path, resume=True))
    assert ran == ["b"] and s.finished


def test_duplicate_names_rejected():
    with pytest.raises(ValueError):
        run_steps([Step("a", "A", print), Step("a", "A2", print)], None)


def test_cluster_state_dir_separates_clusters(tmp_path, monkeypatch):
    """Two clusters with the same node and device names never share a run journal."""
    from ringmgr.config import parse_config
    from ringmgr.exec.runner import cluster_state_dir

    monkeypatch.delenv("RINGMGR_STATE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    a = parse_config({"cluster": {"builder_dir": str(tmp_path / "a")}}, tmp_path / "a.toml")
    b = parse_config({"cluster": {"builder_dir": str(tmp_path / "b")}}, tmp_path / "b.toml")
    a2 = parse_config({"cluster": {"builder_dir": str(tmp_path / "a")}}, tmp_path / "c.toml")
    assert cluster_state_dir(a) != cluster_state_dir(b)
    assert cluster_state_dir(a) == cluster_state_dir(a2)
    monkeypatch.setenv("RINGMGR_STATE_DIR", str(tmp_path / "explicit"))
    assert cluster_state_dir(a) == tmp_path / "explicit"


def test_keep_finished_returns_the_finished_journal_until_archived(tmp_path):
    with Journal.open("op", tmp_path) as j:
        j.param("uuid", lambda: "u-1")
        run_steps(steps_recording([]), None, journal=j)
    with Journal.open("op", tmp_path, keep_finished=True) as j:
        assert j.finished and j.params == {"uuid": "u-1"}
        assert list(tmp_path.glob("op.*.json")) == []
    with Journal.open("op", tmp_path, keep_finished=True, resume=True) as j:
        assert j.finished  # the caller decides: "already done" or "nothing to resume"
        j.archive()
        assert not j.finished and j.params == {} and not j.in_progress
        assert j.param("uuid", lambda: "u-2") == "u-2"
    (archived,) = tmp_path.glob("op.*.json")
    assert json.loads(archived.read_text())["params"] == {"uuid": "u-1"}
    assert json.loads((tmp_path / "op.json").read_text())["params"] == {"uuid": "u-2"}


def test_journal_is_written_by_the_one_atomic_writer(tmp_path, monkeypatch):
    """Saved through rings.files.atomic_write: private (0600), no temp file left, and a
    write that fails (an I/O error at its fsync) leaves the previous journal whole."""
    j = Journal.open("op", tmp_path)
    j.set_param("uuid", "u1")
    path = tmp_path / "op.json"
    assert os.stat(path).st_mode & 0o777 == 0o600
    before = path.read_bytes()
    monkeypatch.setenv("RINGMGR_TEST_FAULT", "fsync:op.json")
    monkeypatch.setenv("RINGMGR_TEST_FAULT_ERRNO", "EIO")
    with pytest.raises(OSError):
        j.set_param("uuid", "u2")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".op.lock")) \
        == ["op.json"]
    j.close()
