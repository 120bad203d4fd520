"""The host-operations layer's own rules, in process: one executor factory (transport,
capabilities, dry run), host plans as data with one renderer, and the fan-out."""

import threading

import pytest

from ringmgr.errors import EXIT_ERROR, EXIT_OK, ConfigError, StepFailed
from ringmgr.exec import plan as hostplan
from ringmgr.exec.base import STREAM, DryRunExecutor, NotCapable, Result
from ringmgr.exec.factory import (ADMIN, AdHocHost, executor_for, host_for,
                                  transport_name)
from ringmgr.exec.fanout import fan_out
from ringmgr.exec.local import LocalExecutor


class Fake:
    """A transport's executor that answers every command with success and keeps them."""

    capabilities = frozenset()

    def __init__(self, host):
        self.host, self.ran, self.closed, self.timings = host, [], False, {}

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True):
        self.ran.append((tuple(argv), mutates))
        return Result(self.host, tuple(argv), 0, "answer\n")

    def start(self, argv, *, input=None, mutates=True):
        raise AssertionError("not streaming")

    def close(self):
        self.closed = True


class Cfg:
    def __init__(self, hosts=None):
        self._hosts = hosts or {}

    def hosts(self):
        return self._hosts


def test_transport_by_address_capability_and_explicit_name():
    assert transport_name(AdHocHost("c01", "localhost")) == "local"
    assert transport_name(AdHocHost("c01", "10.0.0.5")) == "ssh"
    # push needs a streaming session: a localhost node is reached over SSH then
    assert transport_name(AdHocHost("s01", "localhost"), frozenset({STREAM})) == "ssh"

    class Pod(AdHocHost):
        transport = "kubectl"

    assert transport_name(Pod("s01", "pod-0")) == "kubectl"
    with pytest.raises(ConfigError, match="unknown transport 'kubectl'"):
        executor_for(Cfg(), Pod("s01", "pod-0"), dry_run=False)


def test_the_configured_transport_is_the_one_used(tmp_path):
    """ringmgr.toml's ``transport`` decides the executor, over the address rule."""
    from ringmgr.config import load_config
    from ringmgr.exec.ssh import SSHExecutor

    p = tmp_path / "ringmgr.toml"
    p.write_text('[cluster]\nbuilder_dir = "rings"\n\n'
                 '[nodes.s01]\nip = "10.0.0.1"\nhost = "10.0.0.1"\ntransport = "local"\n\n'
                 '[nodes.s02]\nip = "10.0.0.2"\nhost = "localhost"\ntransport = "ssh"\n\n'
                 '[nodes.s03]\nip = "10.0.0.3"\nhost = "localhost"\n')
    config = load_config(p)
    assert isinstance(executor_for(config, config.node("s01"), dry_run=False), LocalExecutor)
    assert isinstance(executor_for(config, config.node("s02"), dry_run=False), SSHExecutor)
    assert isinstance(executor_for(config, config.node("s03"), dry_run=False), LocalExecutor)
    ex = executor_for(config, config.node("s01"), dry_run=True)
    assert isinstance(ex, DryRunExecutor) and isinstance(ex.inner, LocalExecutor)


def test_a_transport_without_a_needed_capability_is_refused_and_closed():
    made = []

    def transport(config, host, known_hosts=None):
        made.append(Fake(host.name))
        return made[-1]

    with pytest.raises(NotCapable, match=r"^\[s01\] .* cannot stream"):
        executor_for(Cfg(), AdHocHost("s01", "10.0.0.1"), dry_run=False, needs={STREAM},
                     transport=transport)
    assert made[0].closed
    assert isinstance(NotCapable("x"), StepFailed)     # a host failure: exit 2 at the boundary


def test_dry_run_records_changes_as_host_steps_and_runs_reads():
    fake = Fake("s01")
    ex = executor_for(Cfg(), AdHocHost("s01", "10.0.0.1"), dry_run=True,
                      transport=lambda c, h, k=None: fake)
    assert isinstance(ex, DryRunExecutor) and ex.inner is fake
    assert ex.run(["cat", "/proc/mounts"], mutates=False).stdout == "answer\n"
    with hostplan.step("unmount", destructive=False, reason="Unmount /srv/node/sdb"):
        assert ex.run(["umount", "--", "/srv/node/sdb"]).ok
    with hostplan.step("mkfs", destructive=True, reason="Format /dev/sdb"):
        ex.run(["mkfs.xfs", "-f", "--", "/dev/sdb"])
        session = ex.start(["sh", "-c", "script"])
        assert session.readline() == "" and session.finish().ok
    assert fake.ran == [(("cat", "/proc/mounts"), False)]     # only the read reached it
    assert [s.to_json() for s in ex.plan] == [
        {"host": "s01", "step": "unmount", "argv": ["umount", "--", "/srv/node/sdb"],
         "destructive": False, "reason": "Unmount /srv/node/sdb"},
        {"host": "s01", "step": "mkfs", "argv": ["mkfs.xfs", "-f", "--", "/dev/sdb"],
         "destructive": True, "reason": "Format /dev/sdb"},
        {"host": "s01", "step": "mkfs", "argv": ["sh", "-c", "script"],
         "destructive": True, "reason": "Format /dev/sdb"}]
    ex.close()
    assert fake.closed


def test_the_local_transport_cannot_stream():
    ex = LocalExecutor("c01")
    assert STREAM not in ex.capabilities
    with pytest.raises(NotCapable, match=r"\[c01\] the LocalExecutor transport cannot start"):
        ex.start(["cat"])


def test_ad_hoc_hosts_and_configured_ones():
    node = AdHocHost("s01", "10.0.0.1")
    cfg = Cfg({"s01": node})
    assert host_for(cfg, "s01") is node
    assert host_for(cfg, "c01.example.com", "10.1.1.1") == AdHocHost("c01.example.com",
                                                                     "10.1.1.1")
    assert host_for(cfg, "c01", "localhost").host == "localhost"
    assert ADMIN.host == "localhost"


def test_one_renderer_quotes_each_argv_once():
    steps = [hostplan.HostStep("s01", "fstab", ("dd", "of=/etc/fs tab", "status=none")),
             hostplan.HostStep("s01", "x", ("echo", "it's"), skipped="already done")]
    assert hostplan.render_text(steps) == [
        "  [s01] dd 'of=/etc/fs tab' status=none",
        "  [s01] echo 'it'\"'\"'s'   (skipped: already done)"]
    assert hostplan.to_json(steps) == [steps[0].to_json()]     # a skipped step is no command
    hostplan.abbreviate(("python3", "-c", "LOADER"), "python3 <script.py>")
    assert hostplan.command_text(("python3", "-c", "LOADER", "guard", "/a b")) == \
        "python3 <script.py> guard '/a b'"
    assert hostplan.HostStep.from_json(steps[0].to_json()) == steps[0]


def test_fan_out_collects_each_hosts_result_or_error_in_order():
    def work(name):
        if name == "s02":
            raise StepFailed(f"[{name}] cannot connect to 10.0.0.2:22\nsecond line")
        return name.upper()

    group = fan_out(["s01", "s02", "s03"], work, parallel=2, name=str)
    assert [o.host for o in group.outcomes] == ["s01", "s02", "s03"]
    assert group.values == ["S01", "S03"]
    assert group.failed == {"s02": "cannot connect to 10.0.0.2:22"}
    assert not group.ok and group.exit_code == EXIT_ERROR
    assert group.summary().startswith("3 host(s): 2 ok, 1 failed: s02: cannot connect")
    ok = fan_out(["a"], lambda h: 1, parallel=4, name=str)
    assert ok.ok and ok.exit_code == EXIT_OK
    assert fan_out([], lambda h: 1, parallel=4).outcomes == []


def test_fan_out_runs_at_most_parallel_hosts_at_once():
    """Without timing: every work item waits until it sees how many run beside it, and
    the most ever seen together is the bound."""
    lock = threading.Lock()
    running, most = [0], [0]
    gate = threading.Barrier(3, timeout=30)   # 3 must be able to run together

    def work(h):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if h < 3:
            gate.wait()
        with lock:
            running[0] -= 1
        return h

    seen = []
    group = fan_out(list(range(9)), work, parallel=3, name=str, progress=seen.append)
    assert group.ok and group.values == list(range(9))
    assert most[0] == 3 and len(seen) == 9
