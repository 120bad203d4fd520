"""push's node script, function by function, in this process (real directories, real
rings made by swift's RingBuilder): the ring header parser, inspect, the request
checks, check_one's refusals, and main() with its argv, stdin and stdout.

The node runs this file as shipped source, where no mutant can reach it; so these
in-process tests are what the mutation score counts for the node side
(docs/testing.md), next to tests/unit/test_push_node.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import sys
import time
import zlib

import pytest

from ringmgr.ops import push_node as pn
from tests.integration.test_push import make_rings
from tests.helpers.push_node import node, request, serve  # noqa: F401 (node: a fixture)


def ring_gz(meta: dict, fmt: int = 1, tail: bytes = b"") -> bytes:
    raw = json.dumps(meta).encode()
    head = b"R1NG" + struct.pack("!H", fmt) + (struct.pack("!I", len(raw)) if fmt == 1
                                               else struct.pack("!Q", len(raw)))
    return zlib.compress(head + raw + tail, wbits=31)


# -- the ring header ------------------------------------------------------------------

def test_ring_info_of_both_formats_and_real_rings(node):
    d, _ = node
    for fmt in (1, 2):
        data = ring_gz({"version": 7, "part_shift": 28}, fmt, b"\0" * 100)
        assert pn.ring_bytes_info(data) == {"md5": hashlib.md5(data).hexdigest(),
                                            "size": len(data), "version": 7, "error": None}
    raw = (d / "object.ring.gz").read_bytes()
    from swift.common.ring import RingData

    info = pn.ring_bytes_info(raw)
    assert info["version"] == RingData.load(str(d / "object.ring.gz")).version
    assert info["error"] is None and info["size"] == len(raw)
    assert pn.ring_bytes_info(ring_gz([1, 2]))["version"] is None     # not a dict


@pytest.mark.parametrize("data, error", [
    (zlib.compress(b"XXXX\0\1" + b"\0" * 20, wbits=31), "corrupt: no R1NG magic"),
    (zlib.compress(b"R1N", wbits=31), "corrupt: no R1NG magic"),
    (zlib.compress(b"R1NG\0\3" + b"\0" * 20, wbits=31), "corrupt: unknown ring format 3"),
    (zlib.compress(b"R1NG\0\1\0\0", wbits=31), "corrupt: truncated ring header"),
    (zlib.compress(b"R1NG\0\1\0\0\0\x10{}", wbits=31), "corrupt: truncated ring header"),
    (zlib.compress(b"R1NG\0\1\0\0\0\2{x", wbits=31), None),
    (b"not gzip at all", None),
    (b"", "corrupt: truncated (gzip stream ends early)"),
])
def test_ring_info_names_what_is_wrong(data, error):
    info = pn.ring_bytes_info(data)
    assert info["md5"] == hashlib.md5(data).hexdigest() and info["version"] is None
    if error:
        assert info["error"] == error
    else:
        assert info["error"].startswith("corrupt: ")


def test_ring_info_bad_json_header_and_truncated_gzip():
    info = pn.ring_bytes_info(zlib.compress(b"R1NG\0\1\0\0\0\2{x", wbits=31))
    assert info["error"].startswith("corrupt: bad ring header (")
    data = ring_gz({"version": 2}, 1, b"\0" * 5000)
    info = pn.ring_bytes_info(data[:-12])
    assert info["error"] == "corrupt: truncated (gzip stream ends early)"
    info = pn.ring_bytes_info(b"\x1f\x8b\x08\x00garbage-after-the-magic")
    assert info["error"].startswith("corrupt: ") and info["md5"] is not None


def test_header_needs_more_until_complete():
    raw = b"R1NG" + struct.pack("!HI", 1, 2) + b"{}"
    assert pn._header(raw[:5]) == (None, None)
    assert pn._header(raw[:5], final=True) == (None, "no R1NG magic")
    assert pn._header(raw[:8]) == (None, None)
    assert pn._header(raw[:8], final=True) == (None, "truncated ring header")
    assert pn._header(raw[:11]) == (None, None)
    assert pn._header(raw) == ({}, None)
    big = b"R1NG" + struct.pack("!HQ", 2, pn.MAX_META + 1)
    assert pn._header(big) == (None, "ring header claims %d bytes (more than %d)"
                               % (pn.MAX_META + 1, pn.MAX_META))
    ok = b"R1NG" + struct.pack("!HQ", 2, 2) + b"{}"
    assert pn._header(ok) == ({}, None)


def test_header_edge_cases_name_the_numbers_as_written():
    """Exactly the 6 bytes of magic and format; format and length fields unsigned."""
    assert pn._header(b"R1NG\0\1", final=True) == (None, "truncated ring header")
    assert pn._header(b"R1NG\xff\xff") == (None, "unknown ring format 65535")
    v1 = b"R1NG" + struct.pack("!HI", 1, 0xFFFFFFFF)
    assert pn._header(v1) == (None, "ring header claims 4294967295 bytes (more than %d)"
                              % pn.MAX_META)
    v2 = b"R1NG" + struct.pack("!HQ", 2, (1 << 64) - 1)
    assert pn._header(v2) == (None, "ring header claims %d bytes (more than %d)"
                              % ((1 << 64) - 1, pn.MAX_META))
    err = pn._header(b"R1NG" + struct.pack("!HI", 1, 2) + b"{x")[1]
    try:
        json.loads(b"{x")
    except ValueError as e:
        assert err == "bad ring header (%s)" % e


def test_ring_info_wants_gzip_counts_every_chunk_and_names_zlib_errors(monkeypatch):
    meta = b'{"version": 3}'
    raw = b"R1NG" + struct.pack("!HI", 1, len(meta)) + meta
    assert pn.ring_bytes_info(zlib.compress(raw, wbits=31))["version"] == 3
    # the same bytes as a zlib stream (not gzip) are not a ring.gz
    assert pn.ring_bytes_info(zlib.compress(raw))["error"].startswith("corrupt: ")
    data = ring_gz({"version": 3}, 1, b"\0" * 100)
    monkeypatch.setattr(pn, "CHUNK", 7)
    info = pn.ring_bytes_info(data)
    assert (info["size"], info["version"], info["error"]) == (len(data), 3, None)
    monkeypatch.undo()
    bad = data[:10] + bytes(b ^ 0xFF for b in data[10:30]) + data[30:]
    try:
        zlib.decompress(bad, wbits=31)
    except zlib.error as e:
        want = "corrupt: %s" % e
    assert pn.ring_bytes_info(bad)["error"] == want


def test_two_gzip_members_are_one_stream():
    data = ring_gz({"version": 4}) + zlib.compress(b"more", wbits=31)
    assert pn.ring_bytes_info(data)["error"] is None


def test_too_big_is_not_read(monkeypatch):
    monkeypatch.setattr(pn, "MAX_FILE", 10)
    data = ring_gz({"version": 1})
    assert pn.ring_stream_info(io.BytesIO(data), 11) == {
        "md5": None, "size": 11, "version": None,
        "error": "too big: 11 bytes (more than 10); not read"}
    info = pn.ring_stream_info(io.BytesIO(data), None)      # no size given: read, then cut
    assert info == {"md5": None, "size": len(data), "version": None,
                    "error": "too big: more than 10 bytes; not read further"}
    monkeypatch.setattr(pn, "CHUNK", 4)
    monkeypatch.setattr(pn, "MAX_FILE", 1 << 20)
    assert pn.ring_bytes_info(data)["version"] == 1          # in 4-byte chunks


def test_memory_error_is_reported(monkeypatch):
    class Boom:
        def read(self, n):
            raise MemoryError

    assert pn.ring_stream_info(Boom(), 5)["error"] == "corrupt: too big to check"


# -- names, owners, kinds -------------------------------------------------------------

def test_is_tmp():
    assert pn.is_tmp(".object.ring.gz.ringmgr-ab12.tmp")
    for name in ("object.ring.gz.ringmgr-ab12.tmp", ".object.ring.gz.ringmgr-ab12",
                 ".object.ring.gz.tmp", ".x/.ringmgr-a.tmp"):
        assert not pn.is_tmp(name), name
    assert pn.MARK == ".ringmgr-"


def test_users_groups_and_owner_ids():
    assert pn._user(0) == "root" and pn._user(987654) == "987654"
    assert pn._group(0) == "root" and pn._group(987654) == "987654"
    assert pn.owner_ids("root") == (0, 0)
    assert pn.owner_ids("root:root") == (0, 0)
    assert pn.owner_ids("nobody:root") == (65534, 0)
    with pytest.raises(KeyError):
        pn.owner_ids("no-such-user-here")


def test_not_regular_names_the_kind(tmp_path):
    os.mkfifo(tmp_path / "f")
    os.symlink("x", tmp_path / "l")
    kinds = {"f": "FIFO", "l": "symlink", ".": "directory"}
    for name, kind in kinds.items():
        e = pn.not_regular("/etc/swift/" + name, os.lstat(tmp_path / name))
        assert isinstance(e, pn.NotRegular)
        assert str(e) == ("/etc/swift/%s is not a regular file (a %s, owner root): ringmgr "
                          "replaces only regular files; remove it on the node, then push "
                          "again" % (name, kind))
    st = os.lstat("/dev/null")
    assert "(a character device, owner root)" in str(pn.not_regular("/x", st))


def test_unsafe_dir(tmp_path):
    d = tmp_path / "swift"
    d.mkdir()
    os.chmod(d, 0o755)
    st = lambda: os.stat(d)                                      # noqa: E731
    assert pn.unsafe_dir(str(d), st(), "root:root") is None
    assert pn.unsafe_dir(str(d), st(), None) is None
    os.chown(d, 65534, 0)
    assert pn.unsafe_dir(str(d), st(), "nobody") is None         # the configured owner
    assert pn.unsafe_dir(str(d), st(), "unknown-owner") == (
        "swift_dir %s (owner nobody:root, mode 0755) is writable by its owner nobody, not "
        "only by root and the configured owner unknown-owner: nothing was changed; fix it "
        "(chown root %s), then push again" % (d, d))
    os.chown(d, 0, 65534)
    os.chmod(d, 0o775)
    msg = pn.unsafe_dir(str(d), st(), "root")
    assert "is writable by group nogroup" in msg and "(chmod g-w %s)" % d in msg
    assert "mode 0775" in msg
    assert pn.unsafe_dir(str(d), st(), "root:nogroup") is None
    os.chmod(d, 0o757)
    os.chown(d, 0, 0)
    msg = pn.unsafe_dir(str(d), st(), "root")
    assert "is writable by everyone" in msg and "(chmod o-w %s)" % d in msg
    os.chmod(d, 0o755)
    # an owner unknown on the node still leaves root's dir safe
    assert pn.unsafe_dir(str(d), st(), "no-such-user") is None
    os.chmod(d, 0o775)
    assert pn.unsafe_dir(str(d), st(), "no-such-user") is None     # root's group
    os.chmod(d, 0o755)
    os.chown(d, 0, 65534)
    assert pn.unsafe_dir(str(d), st(), "root") is None              # no group write
    os.chown(d, 0, 0)
    os.chmod(d, 0o757)
    assert "the configured owner root: nothing" in pn.unsafe_dir(str(d), st(), None)
    os.chmod(d, 0o755)


def test_open_regular_names_a_symlink_without_following_it(tmp_path):
    (tmp_path / "real").write_bytes(b"x")
    os.symlink(tmp_path / "real", tmp_path / "object.ring.gz")
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(pn.NotRegular) as e:
            pn.open_regular(dfd, "object.ring.gz", "/srv/node/object.ring.gz")
    finally:
        os.close(dfd)
    assert str(e.value).startswith("/srv/node/object.ring.gz is not a regular file "
                                   "(a symlink, owner root)")


# -- inspect ----------------------------------------------------------------------------

def test_inspect_reports_rings_and_sweeps_only_on_cleanup(node):
    d, _ = node
    tmp = d / ".object.ring.gz.ringmgr-dead.tmp"
    tmp.write_bytes(b"x")
    (d / "notes.txt").write_text("x")
    a = {"dir": str(d), "cleanup": False, "owner": "root"}
    out = pn.inspect(a)
    assert out["exists"] and out["writable"] and out["unsafe"] is None
    assert out["free"] == os.statvfs(d).f_bavail * os.statvfs(d).f_frsize
    assert sorted(out["rings"]) == ["account.ring.gz", "container.ring.gz", "object.ring.gz"]
    assert out["rings"]["object.ring.gz"]["md5"] == \
        hashlib.md5((d / "object.ring.gz").read_bytes()).hexdigest()
    assert out["removed_tmp"] == [] and tmp.exists()
    out = pn.inspect(dict(a, cleanup=True))
    assert out["removed_tmp"] == [tmp.name] and not tmp.exists()
    assert pn.inspect({"dir": str(d / "missing")}) == {
        "dir": str(d / "missing"), "exists": False, "rings": {}, "removed_tmp": [],
        "writable": False, "free": None, "unsafe": None}


def test_inspect_does_not_sweep_an_unsafe_dir(node):
    d, _ = node
    tmp = d / ".object.ring.gz.ringmgr-dead.tmp"
    tmp.write_bytes(b"x")
    os.chmod(d, 0o777)
    try:
        out = pn.inspect({"dir": str(d), "cleanup": True, "owner": "root"})
    finally:
        os.chmod(d, 0o755)
    assert out["unsafe"] and out["removed_tmp"] == [] and tmp.exists()


def test_inspect_judges_swift_dir_by_the_configured_owner(node):
    """A swift_dir owned by the configured owner is safe; the same dir with no owner
    configured is reported, naming its path."""
    d, _ = node
    os.chown(d, 65534, 65534)
    try:
        assert pn.inspect({"dir": str(d), "owner": "nobody"})["unsafe"] is None
        unsafe = pn.inspect({"dir": str(d)})["unsafe"]
    finally:
        os.chown(d, 0, 0)
    assert unsafe.startswith("swift_dir %s (owner nobody:nogroup, mode 0755) is writable by "
                             "its owner nobody" % d)


def test_inspect_ring_errors(node, monkeypatch):
    d, _ = node
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert pn.inspect_ring(dfd, "gone.ring.gz", "/x") == {
            "md5": None, "size": None, "version": None, "error": "vanished"}

        def unreadable(*a):
            raise PermissionError(13, "Permission denied")

        unread = {"md5": None, "size": None, "version": None,
                  "error": "unreadable: Permission denied"}
        monkeypatch.setattr(pn, "open_regular", unreadable)
        assert pn.inspect_ring(dfd, "object.ring.gz", "/x") == unread
        monkeypatch.undo()
        monkeypatch.setattr(pn, "fd_ring_info", unreadable)
        assert pn.inspect_ring(dfd, "object.ring.gz", "/x") == unread
        monkeypatch.undo()
        # the admin side reads every key of the answer, also for a non-regular file
        os.mkfifo(d / "fifo.ring.gz")
        path = os.path.join(str(d), "fifo.ring.gz")
        assert pn.inspect_ring(dfd, "fifo.ring.gz", path) == {
            "md5": None, "size": None, "version": None, "regular": False,
            "error": "%s is not a regular file (a FIFO, owner root): ringmgr replaces only "
                     "regular files; remove it on the node, then push again" % path}
    finally:
        os.close(dfd)


def test_open_dir(tmp_path):
    assert pn.open_dir(str(tmp_path / "missing")) is None
    (tmp_path / "f").write_text("x")
    assert pn.open_dir(str(tmp_path / "f")) is None
    fd = pn.open_dir(str(tmp_path))
    try:
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


# -- requests and check_one --------------------------------------------------------------

@pytest.mark.parametrize("field, value, error", [
    ("name", "../object.ring.gz", "bad ring name '../object.ring.gz'"),
    ("name", "sub/object.ring.gz", "bad ring name 'sub/object.ring.gz'"),
    ("name", ".object.ring.gz", "bad ring name '.object.ring.gz'"),
    ("name", "object.builder", "bad ring name 'object.builder'"),
    ("name", 7, "bad ring name 7"),
    ("tmp", "object.tmp", "bad temp name 'object.tmp'"),
    ("tmp", None, "bad temp name None"),
    ("size", -1, "bad size -1 for object.ring.gz"),
    ("size", "5", "bad size '5' for object.ring.gz"),
    ("size", (1 << 30) + 1, "bad size %d for object.ring.gz" % ((1 << 30) + 1)),
])
def test_check_request(field, value, error):
    f = {"name": "object.ring.gz", "tmp": ".object.ring.gz.ringmgr-a.tmp", "size": 5}
    pn.check_request([f])
    pn.check_request([dict(f, size=0)])
    pn.check_request([dict(f, size=1 << 30)])
    with pytest.raises(ValueError) as e:
        pn.check_request([dict(f, **{field: value})])
    assert str(e.value) == error


def test_bad_request_answers_every_file(node):
    d, new = node
    req, data = request(d, new, ("object", "account"))
    req["files"][1]["tmp"] = "plain"
    before = sorted(os.listdir(d))
    out = serve(d, req, io.BytesIO(data))
    assert out == {"files": {"object.ring.gz": {"ok": False, "error": "bad request: bad temp "
                                                "name 'plain'"},
                             "account.ring.gz": {"ok": False, "error": "bad request: bad temp "
                                                 "name 'plain'"}},
                   "seconds": {"receive": 0, "apply": 0}}
    assert sorted(os.listdir(d)) == before


def test_nothing_streamed_is_not_received(node):
    d, new = node
    req, _ = request(d, new)
    req["stream"] = False
    out = serve(d, req, io.BytesIO(b""))
    assert out["files"] == {"object.ring.gz": {"ok": False, "error": "not received"}}
    assert set(out["seconds"]) == {"receive", "apply"}


def check_one(d, f, data, owner="root:root"):
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open(f["tmp"], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dfd)
    try:
        os.write(fd, data)
        return pn.check_one(dfd, str(d), f, fd, owner)
    finally:
        os.close(fd)
        os.close(dfd)


def test_check_one_size_md5_version_owner(node):
    d, new = node
    req, data = request(d, new)
    f = dict(req["files"][0])
    with pytest.raises(ValueError) as e:
        check_one(d, dict(f, tmp=".a.ringmgr-1.tmp"), data[:-3])
    assert str(e.value) == "uploaded copy is incomplete (%d of %d bytes)" % (len(data) - 3,
                                                                              len(data))
    with pytest.raises(ValueError) as e:
        check_one(d, dict(f, tmp=".a.ringmgr-2.tmp", md5="0" * 32), data)
    assert str(e.value) == "uploaded copy has md5 %s, expected %s" % (
        hashlib.md5(data).hexdigest(), "0" * 32)
    with pytest.raises(ValueError) as e:
        check_one(d, dict(f, tmp=".a.ringmgr-3.tmp", version=0), data)
    old_version = pn.ring_bytes_info((d / "object.ring.gz").read_bytes())["version"]
    assert str(e.value) == "node has a newer ring (version %s > 0)" % old_version
    check_one(d, dict(f, tmp=".a.ringmgr-4.tmp", version=0, force=True), data)
    check_one(d, dict(f, tmp=".a.ringmgr-5.tmp", version=None), data)
    check_one(d, dict(f, tmp=".a.ringmgr-6.tmp", version=old_version), data)   # same: fine
    # no old ring: the configured owner, mode 0644
    g = dict(f, name="object-1.ring.gz", tmp=".a.ringmgr-7.tmp")
    check_one(d, g, data, owner="nobody:root")
    st = os.stat(d / ".a.ringmgr-7.tmp")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 0, 0o644)
    with pytest.raises(ValueError) as e:
        check_one(d, dict(g, tmp=".a.ringmgr-8.tmp"), data, owner="no-such-user")
    assert str(e.value) == "owner no-such-user does not exist on the node"


def test_an_old_corrupt_ring_is_replaced_whatever_its_version(node):
    d, new = node
    (d / "object.ring.gz").write_bytes(b"garbage")
    req, data = request(d, new)
    req["files"][0]["version"] = 0
    out = serve(d, req, io.BytesIO(data))
    assert out["files"]["object.ring.gz"] == {"ok": True, "error": None}
    assert (d / "object.ring.gz").read_bytes() == data


def test_describe():
    assert pn.describe(OSError(28, "No space left on device")) == "No space left on device"
    assert pn.describe(OSError(13, "Permission denied", "/x")) == "Permission denied: /x"
    assert pn.describe(ValueError("why")) == "why"


def test_write_all_handles_short_writes(tmp_path, monkeypatch):
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, b: real(fd, bytes(b[:3])))
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        pn._write_all(fd, b"0123456789")
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"0123456789"


def test_fd_md5_reads_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(pn, "CHUNK", 3)
    (tmp_path / "f").write_bytes(b"0123456789")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert pn.fd_md5(fd) == hashlib.md5(b"0123456789").hexdigest()
    finally:
        os.close(fd)


def test_a_write_error_is_that_files_error_and_its_temp_is_removed(node, monkeypatch):
    d, new = node
    req, data = request(d, new, ("object", "account"))
    real = pn._write_all
    calls = []

    def fail_second(fd, chunk):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(fd, chunk)

    monkeypatch.setattr(pn, "_write_all", fail_second)
    before = sorted(os.listdir(d))
    out = serve(d, req, io.BytesIO(data))
    assert out["files"]["account.ring.gz"] == {"ok": False, "error": "No space left on device"}
    assert out["files"]["object.ring.gz"] == {"ok": False, "error": None, "skipped": True}
    assert sorted(os.listdir(d)) == before


def test_a_temp_name_taken_is_that_files_error(node):
    d, new = node
    req, data = request(d, new, ("object",))
    (d / req["files"][0]["tmp"]).write_bytes(b"planted")
    out = serve(d, req, io.BytesIO(data))
    assert out["files"]["object.ring.gz"] == {
        "ok": False, "error": "File exists: " + req["files"][0]["tmp"]}
    assert (d / req["files"][0]["tmp"]).read_bytes() == b"planted"     # not ours: kept


def test_apply_refuses_an_unsafe_dir_and_memory_errors(node, monkeypatch):
    d, new = node
    req, data = request(d, new)
    os.chmod(d, 0o777)
    try:
        out = serve(d, req, io.BytesIO(data))
    finally:
        os.chmod(d, 0o755)
    assert out["files"]["object.ring.gz"]["error"].startswith("swift_dir %s (owner" % d)
    assert not [n for n in os.listdir(d) if n.startswith(".")]

    def oom(*a):
        raise MemoryError

    monkeypatch.setattr(pn, "check_one", oom)
    req, data = request(d, new, token="t1")
    out = serve(d, req, io.BytesIO(data))
    assert out["files"]["object.ring.gz"] == {"ok": False, "error": "out of memory checking it"}


def test_same_file_and_unlink_ours(tmp_path):
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        (tmp_path / "a").write_text("x")
        (tmp_path / "b").write_text("x")
        st = os.stat(tmp_path / "a")
        assert pn.same_file(dfd, "a", st) and not pn.same_file(dfd, "b", st)
        assert not pn.same_file(dfd, "missing", st)
        fd = os.open(tmp_path / "b", os.O_RDONLY)
        try:
            pn._unlink_ours(dfd, "a", fd)          # "a" is not the file behind fd: kept
            assert (tmp_path / "a").exists()
            pn._unlink_ours(dfd, "b", fd)
            assert not (tmp_path / "b").exists()
            pn._unlink_ours(dfd, "b", fd)          # already gone: no error
        finally:
            os.close(fd)
    finally:
        os.close(dfd)


# -- main ------------------------------------------------------------------------------

def run_main(monkeypatch, argv, stdin=b""):
    out = io.StringIO()

    class Stdin:
        buffer = io.BytesIO(stdin)

    monkeypatch.setattr(sys, "argv", ["push_node", *argv])
    monkeypatch.setattr(sys, "stdin", Stdin)
    monkeypatch.setattr(sys, "stdout", out)
    code = None
    try:
        pn.main()
    except SystemExit as e:
        code = e.code
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_main_inspect_answers_once(node, monkeypatch):
    d, _ = node
    code, lines = run_main(monkeypatch, ["inspect", json.dumps({"dir": str(d)})])
    assert code is None and len(lines) == 1 and lines[0]["exists"] is True
    assert sorted(lines[0]["rings"]) == ["account.ring.gz", "container.ring.gz",
                                         "object.ring.gz"]


def test_main_session_inspects_then_applies(node, monkeypatch):
    d, new = node
    req, data = request(d, new)
    arg = json.dumps({"dir": str(d), "cleanup": True, "owner": "root:root"})
    code, lines = run_main(monkeypatch, ["session", arg],
                           json.dumps(req).encode() + b"\n" + data)
    assert code is None and len(lines) == 2
    assert lines[0]["exists"] and lines[1]["files"] == {"object.ring.gz": {"ok": True,
                                                                           "error": None}}
    assert (d / "object.ring.gz").read_bytes() == data


def test_main_session_without_a_request_changes_nothing(node, monkeypatch):
    d, _ = node
    before = {p: (d / p).read_bytes() for p in os.listdir(d)}
    for stdin in (b"", b"\n", b"   \n"):
        code, lines = run_main(monkeypatch, ["session", json.dumps({"dir": str(d)})], stdin)
        assert code is None and len(lines) == 1
    assert {p: (d / p).read_bytes() for p in os.listdir(d)} == before


def test_main_session_short_stream_exits_3_and_leaves_nothing(node, monkeypatch):
    d, new = node
    req, data = request(d, new)
    before = {p: (d / p).read_bytes() for p in os.listdir(d)}
    code, lines = run_main(monkeypatch, ["session", json.dumps({"dir": str(d),
                                                               "owner": "root:root"})],
                           json.dumps(req).encode() + b"\n" + data[:-1])
    assert code == 3 and len(lines) == 1
    assert {p: (d / p).read_bytes() for p in os.listdir(d)} == before


def test_main_session_refuses_a_swapped_swift_dir(node, monkeypatch, tmp_path):
    d, new = node
    req, data = request(d, new)

    class Swapping(io.BytesIO):
        def readline(self, *a):            # the request arrives after swift_dir was swapped
            os.rename(d, tmp_path / "old-swift")
            make_rings(d, changes=0)
            return super().readline(*a)

    class Stdin:
        buffer = Swapping(json.dumps(req).encode() + b"\n" + data)

    out = io.StringIO()
    monkeypatch.setattr(sys, "argv", ["push_node", "session", json.dumps({"dir": str(d)})])
    monkeypatch.setattr(sys, "stdin", Stdin)
    monkeypatch.setattr(sys, "stdout", out)
    pn.main()
    monkeypatch.undo()
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines[1] == {"files": {"object.ring.gz": {
        "ok": False, "error": "swift_dir %s was replaced since it was inspected" % d}},
        "seconds": {"receive": 0, "apply": 0}}
    assert (d / "object.ring.gz").read_bytes() != data


def test_main_session_of_a_missing_dir(node, monkeypatch, tmp_path):
    d, new = node
    req, data = request(d, new)
    code, lines = run_main(monkeypatch, ["session", json.dumps({"dir": str(tmp_path / "no")})],
                           json.dumps(req).encode() + b"\n")
    assert lines[0]["exists"] is False
    assert lines[1]["files"]["object.ring.gz"]["error"] == \
        "swift_dir %s was replaced since it was inspected" % (tmp_path / "no")


def test_main_session_answers_a_malformed_request_for_a_replaced_dir(monkeypatch, tmp_path):
    """A file without a name is answered as "?", a request without files with none."""
    arg = json.dumps({"dir": str(tmp_path / "no")})
    code, lines = run_main(monkeypatch, ["session", arg],
                           json.dumps({"files": [{"size": 1}]}).encode() + b"\n")
    why = "swift_dir %s was replaced since it was inspected" % (tmp_path / "no")
    assert lines[1]["files"] == {"?": {"ok": False, "error": why}}
    code, lines = run_main(monkeypatch, ["session", arg], b"{}\n")
    assert code is None and lines[1] == {"files": {}, "seconds": {"receive": 0, "apply": 0}}


def test_received_temp_files_are_private_until_checked(node):
    """While bytes arrive, the temp file is 0600 (no one else reads a half ring)."""
    d, new = node
    req, data = request(d, new)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        got = pn.receive(dfd, req["files"], io.BytesIO(data))
        tmp = d / req["files"][0]["tmp"]
        assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o600
        pn.discard(dfd, req["files"], got)
        assert not tmp.exists()
    finally:
        os.close(dfd)


def test_same_file_never_follows_a_symlink(tmp_path):
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        (tmp_path / "a").write_text("x")
        os.symlink(tmp_path / "a", tmp_path / "link")
        assert not pn.same_file(dfd, "link", os.stat(tmp_path / "a"))
    finally:
        os.close(dfd)


def test_messages_name_the_full_path_on_the_node(node):
    d, new = node
    os.mkfifo(d / "fifo.ring.gz")
    fifo = os.path.join(str(d), "fifo.ring.gz")
    out = pn.inspect({"dir": str(d)})
    assert out["rings"]["fifo.ring.gz"]["error"].startswith(fifo + " is not a regular file")
    req, data = request(d, new)
    f = dict(req["files"][0], name="fifo.ring.gz")
    with pytest.raises(pn.NotRegular) as e:
        check_one(d, f, data)
    assert str(e.value).startswith(fifo + " is not a regular file (a FIFO")


def test_serve_apply_reports_durations_and_nameless_files(node):
    d, new = node
    req, data = request(d, new)
    t = time.monotonic()
    out = serve(d, req, io.BytesIO(data))
    took = time.monotonic() - t
    assert out["files"]["object.ring.gz"]["ok"] is True
    assert 0 <= out["seconds"]["receive"] <= took and 0 <= out["seconds"]["apply"] <= took
    bad = dict(req, files=[{"size": 1}])
    assert list(serve(d, bad, io.BytesIO(b""))["files"]) == ["?"]


def test_a_ring_new_on_the_node_belongs_to_the_configured_owner(node):
    """swift_dir owned by the configured owner is safe, and a ring the node did not
    have yet is installed as that owner."""
    d, new = node
    os.unlink(d / "object.ring.gz")
    os.chown(d, 65534, 65534)
    try:
        req, data = request(d, new)
        req["owner"] = "nobody:nogroup"
        out = serve(d, req, io.BytesIO(data))
    finally:
        os.chown(d, 0, 0)
    assert out["files"]["object.ring.gz"] == {"ok": True, "error": None}
    st = os.stat(d / "object.ring.gz")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o644)
