"""push when the bytes that reach a node are not the ones announced, over real sshd.

The admin side announces each ring's md5 and size, then streams its bytes.  Here the
stream is damaged on the way, after the announcement: one byte flipped (same length),
or cut short and the channel closed.  The node script (the real one, run by the node's
python3 over a real sshd test host) must refuse, keep the old ring and leave no temp
file; the admin side must name the node.  The damage is done in the admin's channel
writer (``RemoteProcess.write``), the only place the wire can be reached from here.

The node-side functions are also driven in-process with a real directory
(``tests/unit/test_push_node.py``); these tests prove the same over the wire, end to end.
"""

import json

import pytest

from ringmgr.exec import channel
from tests.helpers.checksums import flat_checksums as tree
from tests.integration.test_push import Env


@pytest.fixture
def env(sshd_hosts, tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    e = Env(sshd_hosts, tmp_path)
    e.seed_old_rings("h01", "h02", "h03")
    return e


def damage_ring_bytes(monkeypatch, env, host, damage):
    """Make ``damage(proc, data, send)`` send the object ring's bytes meant for
    ``host`` (the last ring sent); every other write (the script, the request, the
    other rings, other hosts) goes through untouched."""
    rings = {open(env.rings["object"], "rb").read()}
    real = channel.RemoteProcess.write
    seen = []

    def write(self, data, timeout=None):
        if isinstance(data, bytes) and data in rings and self.ex.host == host:
            seen.append(len(data))
            return damage(self, data, lambda d: real(self, d, timeout))
        return real(self, data, timeout)

    monkeypatch.setattr(channel.RemoteProcess, "write", write)
    return seen


def flip_one_byte(proc, data, send):
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF
    send(bytes(bad))


def cut_short(proc, data, send):
    send(data[:-10])
    proc.chan.shutdown_write()        # the admin side is gone: the node sees EOF


def host_of(env, name):
    return env.hosts.host(name)


def md5_refused(err):
    return "md5" in err and "expected" in err and "no ring on the node was changed" in err


def eof_refused(err):
    # the node script exits 3 on EOF mid-transfer (every temp file removed first);
    # a node that read on would meet the size or md5 check
    return any(w in err for w in ("exit 3", "incomplete", "md5"))


@pytest.mark.parametrize("host, damage, refused", [
    ("h02", flip_one_byte, md5_refused),    # bytes differing from the announced md5
    ("h03", cut_short, eof_refused),        # a short stream
], ids=["differing-bytes", "short-stream"])
def test_damaged_ring_bytes_are_refused_old_ring_kept_node_named(env, monkeypatch, host,
                                                                 damage, refused):
    before = {h.name: tree(h.swift_dir) for h in env.hosts.hosts}
    target = host_of(env, host)
    seen = damage_ring_bytes(monkeypatch, env, host, damage)
    r = env.run("--json", "push")
    assert seen, f"no ring bytes were sent to {host}"
    assert r.exit_code == 2, r.output
    rep = json.loads(r.stdout)
    err = rep["hosts"][host]["error"]
    assert refused(err), err
    assert rep["hosts"][host]["updated"] == []
    assert host in r.stderr.strip().splitlines()[-1]
    assert tree(target.swift_dir) == before[host]     # old rings, no temp file left
    for name in {"h01", "h02", "h03"} - {host}:        # the others got the new rings
        assert tree(host_of(env, name).swift_dir) == env.admin_md5()
