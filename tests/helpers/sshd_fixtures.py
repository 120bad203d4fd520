"""pytest fixtures around sim/hosts.py: real sshd test hosts on loopback addresses.

Registered for every test by ``tests/conftest.py``.

- ``sshd_hosts``: three started hosts (``SSHHosts``), stopped after the test.
- ``sshd_hosts_factory(count=3, **kw)``: start as many as a test needs (several
  daemons beyond 16); every one started is stopped after the test, also on failure.

Each host has its own empty ``swift_dir`` (``host.swift_dir``); ``hosts.write_config``
writes a ringmgr.toml that reaches them (see sim/hosts.py for the whole API).
"""

from __future__ import annotations

import os
import shutil

import pytest

from sim.hosts import SSHHosts


def _need_sshd():
    if shutil.which("ssh-keygen") is None or not os.path.exists("/usr/sbin/sshd"):
        pytest.fail("sshd tests need openssh-server and openssh-client "
                    "(scripts/apt-packages.txt)")


@pytest.fixture
def sshd_hosts_factory(tmp_path_factory):
    _need_sshd()
    started: list[SSHHosts] = []

    def start(count: int = 3, **kw) -> SSHHosts:
        kw.setdefault("workdir", tmp_path_factory.mktemp("sshd"))
        hosts = SSHHosts(count, **kw).start()
        started.append(hosts)
        return hosts

    yield start
    for hosts in started:
        hosts.stop()


@pytest.fixture
def sshd_hosts(sshd_hosts_factory) -> SSHHosts:
    return sshd_hosts_factory(3)
