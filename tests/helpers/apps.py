"""Run the CLI with an App whose transport a test chose (how tests reach hosts).

ringmgr makes every executor in one factory (``ringmgr.exec.factory``); a test
hands the CLI an ``App`` whose ``transport`` answers for the hosts that cannot run
here (the OpenStack client on the admin host, through the recorder) and uses the
real transport (SSH to the sshd test hosts, or local) for everything else.
"""

from __future__ import annotations

from ringmgr.cli.app import App
from ringmgr.exec.factory import ADMIN, default_transport
from tests.helpers import cli


def transport(api=None, hosts=None):
    """``api``: the executor for this admin host's OpenStack client; ``hosts``: a
    callable (name, address) -> executor for other hosts; without it the real one."""
    def make(config, host, known_hosts=None):
        if host is ADMIN and api is not None:
            return api
        if hosts is not None:
            return hosts(host.name, host.host)
        return default_transport(config, host, known_hosts)
    return make


def run_cli(args, *, api=None, hosts=None, sleep=None, now=None, **kw):
    """``tests.helpers.cli.run_cli(None, *args)`` with an App set up for the test."""
    app = App(transport=transport(api, hosts) if (api or hosts) else None)
    if sleep is not None:
        app.sleep = sleep
    if now is not None:
        app.now = now
    return cli.run_cli(None, *args, obj=app, **kw)


class Executed:
    """Around a real executor: every state-changing command it runs, as (host, argv),
    appended to ``log`` (what a fidelity test compares with the dry run's plan) -
    except those of steps declared as checks or polls (``exec.plan`` kind), which
    go to ``checks``."""

    def __init__(self, inner, log: list, checks: list | None = None):
        self.inner, self.log = inner, log
        self.checks = checks if checks is not None else []
        self.host = inner.host

    def _note(self, argv) -> None:
        from ringmgr.exec.plan import CHANGE, planned as current

        step = current(self.host, argv)
        (self.log if step.kind == CHANGE else self.checks).append(
            (self.host, tuple(str(a) for a in argv)))

    @property
    def capabilities(self):
        return self.inner.capabilities

    @property
    def timings(self):
        return self.inner.timings

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True):
        if mutates:
            self._note(argv)
        return self.inner.run(argv, check=check, input=input, timeout=timeout,
                              mutates=mutates)

    def start(self, argv, *, input=None, mutates=True):
        if mutates:
            self._note(argv)
        return self.inner.start(argv, input=input, mutates=mutates)

    def close(self):
        self.inner.close()


def recording(log: list, api=None, checks: list | None = None):
    """A transport: the real one (or ``api`` for the admin host's OpenStack client),
    each executor wrapped in ``Executed``."""
    real = transport(api)

    def make(config, host, known_hosts=None):
        return Executed(real(config, host, known_hosts), log, checks)
    return make


def planned(doc: dict) -> list[tuple[str, tuple[str, ...]]]:
    """(host, argv) of a ``--dry-run --json`` report's ``host_steps``."""
    return [(s["host"], tuple(s["argv"])) for s in doc["host_steps"]]


def run_recorded(args, log: list, api=None, checks: list | None = None, **kw):
    app = App(transport=recording(log, api, checks), sleep=kw.pop("sleep", lambda s: None))
    return cli.run_cli(None, *args, obj=app, **kw)
