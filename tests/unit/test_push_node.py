"""push's node script, run locally: its functions imported (a real directory, real
rings, real descriptors) or the script itself under a memory limit.

What a node must never do: install bytes other than the announced ones, keep a
half-received file, follow or chown a name someone swapped in, copy setuid bits, or
inflate a gzip bomb or a huge file in memory.
"""

import hashlib
import io
import json
import os
import resource
import stat
import struct
import subprocess
import sys
import zlib

import pytest

from ringmgr.ops import push_node
from ringmgr.ops.push import REMOTE_SCRIPT, parse_inspect
from tests.helpers.checksums import flat_checksums as tree
from tests.helpers.push_node import node, request, serve  # noqa: F401 (node: a fixture)


def test_apply_installs_the_announced_bytes(node):
    d, new = node
    req, data = request(d, new, ("object", "account"))
    out = serve(d, req, io.BytesIO(data))
    assert out["files"] == {"object.ring.gz": {"ok": True, "error": None},
                            "account.ring.gz": {"ok": True, "error": None}}
    assert (d / "object.ring.gz").read_bytes() == (new / "object.ring.gz").read_bytes()
    assert not [n for n in os.listdir(d) if n.startswith(".")]


def test_stream_with_other_bytes_than_announced_is_rejected_and_old_ring_kept(node):
    d, new = node
    before = tree(d)
    req, data = request(d, new, ("object", "account"))
    bad = bytearray(data)
    bad[100] ^= 0xFF                                   # same length, one byte differs
    out = serve(d, req, io.BytesIO(bytes(bad)))
    assert not out["files"]["object.ring.gz"]["ok"]
    assert "md5" in out["files"]["object.ring.gz"]["error"]
    assert out["files"]["account.ring.gz"] == {"ok": False, "error": None, "skipped": True}
    assert tree(d) == before                           # old rings, no temp file


def test_short_stream_is_rejected_and_old_ring_kept(node):
    d, new = node
    before = tree(d)
    req, data = request(d, new)
    with pytest.raises(EOFError):
        serve(d, req, io.BytesIO(data[:-10]))
    assert tree(d) == before
    assert not [n for n in os.listdir(d) if n.startswith(".")]


def test_temp_file_swapped_for_a_symlink_is_never_chowned_or_installed(node, tmp_path,
                                                                       monkeypatch):
    """What the FIFO race achieved: the temp name points elsewhere by the time root
    chowns.  The descriptor ringmgr created is what gets chowned; the swap is noticed."""
    d, new = node
    victim = tmp_path / "victim"
    victim.write_text("secret")
    os.chmod(victim, 0o600)
    req, data = request(d, new)
    tmp = req["files"][0]["tmp"]
    real_check = push_node.check_one

    def swap_then_check(dfd, path, f, fd, owner):
        os.unlink(d / tmp)
        os.symlink(victim, d / tmp)
        return real_check(dfd, path, f, fd, owner)

    monkeypatch.setattr(push_node, "check_one", swap_then_check)
    out = serve(d, req, io.BytesIO(data))
    assert "replaced by someone else" in out["files"]["object.ring.gz"]["error"]
    st = os.stat(victim)
    assert (st.st_uid, stat.S_IMODE(st.st_mode), victim.read_text()) == (0, 0o600, "secret")
    assert (d / "object.ring.gz").read_bytes() != (new / "object.ring.gz").read_bytes()


def test_mode_of_the_replaced_ring_is_masked_to_0644(node):
    d, new = node
    os.chown(d / "object.ring.gz", 65534, 65534)
    os.chmod(d / "object.ring.gz", 0o6775)
    req, data = request(d, new)
    assert serve(d, req, io.BytesIO(data))["files"]["object.ring.gz"]["ok"]
    st = os.stat(d / "object.ring.gz")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o644)


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_non_regular_ring_is_reported_not_followed_and_apply_refuses(node, tmp_path, kind):
    d, new = node
    target = d / "object.ring.gz"
    target.unlink()
    outside = tmp_path / "outside.ring.gz"
    outside.write_bytes((new / "object.ring.gz").read_bytes())
    if kind == "fifo":
        os.mkfifo(target)                 # reading it would block forever
    elif kind == "symlink":
        os.symlink(outside, target)
    else:
        target.mkdir()
    state = push_node.inspect({"dir": str(d), "cleanup": True, "owner": "root:root"})
    ring = state["rings"]["object.ring.gz"]
    assert ring["regular"] is False and ring["md5"] is None
    assert "not a regular file" in ring["error"] and "owner root" in ring["error"]
    req, data = request(d, new)
    out = serve(d, req, io.BytesIO(data))
    assert "not a regular file" in out["files"]["object.ring.gz"]["error"]
    kind_now = stat.S_IFMT(os.lstat(target).st_mode)
    assert kind_now == {"fifo": stat.S_IFIFO, "symlink": stat.S_IFLNK,
                        "directory": stat.S_IFDIR}[kind]          # left as it was
    assert outside.read_bytes() == (new / "object.ring.gz").read_bytes()
    assert not [n for n in os.listdir(d) if n.startswith(".")]


def _bomb(inflated_mib: int) -> bytes:
    """A gzip file with a valid ring header, then ``inflated_mib`` MiB of zeros."""
    meta = json.dumps({"version": 3}).encode()
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [c.compress(b"R1NG" + struct.pack("!HI", 1, len(meta)) + meta)]
    zeros = b"\0" * (1 << 20)
    out += [c.compress(zeros) for _ in range(inflated_mib)]
    out.append(c.flush())
    return b"".join(out)


def test_gzip_bomb_is_streamed_in_bounded_memory(tmp_path):
    """512 MiB of inflated data under a 256 MiB address-space limit: the script reads
    it through (md5, header) without holding it."""
    (tmp_path / "object.ring.gz").write_bytes(_bomb(512))

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))

    p = subprocess.run([sys.executable, "-I", "-S", "-c", REMOTE_SCRIPT, "inspect",
                        json.dumps({"dir": str(tmp_path), "cleanup": False})],
                       capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert p.returncode == 0, p.stderr[-500:]
    s = parse_inspect(p.stdout)
    r = s.rings["object.ring.gz"]
    assert r.md5 == hashlib.md5((tmp_path / "object.ring.gz").read_bytes()).hexdigest()
    assert (r.version, r.error) == (3, None)


def test_inflation_and_header_caps(tmp_path, monkeypatch):
    monkeypatch.setattr(push_node, "MAX_INFLATED", 4 << 20)
    info = push_node.ring_bytes_info(_bomb(8))
    assert info["error"] == f"corrupt: inflates to more than {4 << 20} bytes"
    assert info["md5"] == hashlib.md5(_bomb(8)).hexdigest()      # still read through
    huge_header = zlib.compress(b"R1NG" + struct.pack("!HQ", 2, 1 << 40), wbits=31)
    info = push_node.ring_bytes_info(huge_header)
    assert "ring header claims" in info["error"]


def test_huge_file_is_not_read(tmp_path):
    big = tmp_path / "object.ring.gz"
    with open(big, "wb") as f:
        f.truncate(push_node.MAX_FILE + 1)           # sparse: nothing to read anyway
    state = push_node.inspect({"dir": str(tmp_path), "cleanup": False})
    assert state["rings"]["object.ring.gz"]["error"].startswith("too big")
    assert state["rings"]["object.ring.gz"]["md5"] is None

