"""replace-disk over SSH: the same two-phase flow on a real sshd test host.

The sshd host is this machine on a loopback address, so the node's loop devices,
temp fstab and mount_root are the same files; the commands go through SSHExecutor.
"""

import json
import os

import pytest
from click.testing import CliRunner

from tests.helpers.loopdisk import FSTAB_TEXT, blkid, loopdisks, mount, mounted_env, mounts_of  # noqa: F401
from ringmgr.cli.main import cli
from ringmgr.config import load_config
from ringmgr.exec.ssh import SSHExecutor
from ringmgr.ops.disk import ReplaceOptions, replace_disk
from tests.test_replace_disk import Recording

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


@pytest.fixture
def env(tmp_path, monkeypatch, loopdisks, sshd_hosts_factory):
    hosts = sshd_hosts_factory(1)
    h = hosts.hosts[0]

    def over_ssh(e):
        e.host, e.ssh_port = h.address, h.port
        e.ssh_toml = (f'[ssh]\nuser = "root"\nport = {h.port}\n'
                      f'identity_file = "{hosts.identity_file}"\n'
                      f'known_hosts = "{hosts.known_hosts}"\nretries = 1\n\n')

    return mounted_env(tmp_path, monkeypatch, loopdisks, setup=over_ssh)


def ringmgr(env, *args):
    r = CliRunner().invoke(cli, ["--config", str(env.config), *args])
    return r.exit_code, r.output, r.stdout


def test_two_phase_flow_over_ssh(env):
    code, out, _ = ringmgr(env, "replace-disk", "s01", env.dev, "--yes")
    assert code == 0 and "--replaced" in out, out
    assert mounts_of(env.old.dev) == []
    env.disks.detach(env.old)
    env.new = env.disks.create(mkfs=False)
    env.write_config(env.new.dev)

    config = load_config(env.config)
    node = config.node("s01")
    with SSHExecutor(node, config.ssh) as ssh:
        plan = replace_disk(config, "s01", env.dev, ReplaceOptions(replaced=True),
                            dry_run=True, ex=ssh)
        real = Recording(ssh)
        run = replace_disk(config, "s01", env.dev, ReplaceOptions(replaced=True), ex=real,
                           confirm=lambda step: None)
    assert run.summary.finished, run.summary.table()
    assert plan.commands == real.recorded and real.recorded[0][0] == "mkfs.xfs"
    assert blkid(env.new.dev)["UUID"] == run.ctx.params["uuid"]
    assert mounts_of(env.new.dev) == [str(env.mount_point)]
    assert env.fstab.read_text() == (FSTAB_TEXT + f"LABEL={env.dev} {env.mount_point} xfs "
                                     f"noatime,nofail 0 0\n")


def test_refusal_over_ssh_changes_nothing(env):
    mount(env.old.dev, env.root / "elsewhere")
    before = (env.fstab.read_bytes(), sorted(mounts_of(env.old.dev)))
    code, out, stdout = ringmgr(env, "replace-disk", "s01", env.dev, "--replaced", "--yes",
                                "--json")
    assert code == 2 and "elsewhere" in out
    report = json.loads(stdout)
    assert report["written"] is False and "elsewhere" in report["errors"][0]
    assert (env.fstab.read_bytes(), sorted(mounts_of(env.old.dev))) == before
