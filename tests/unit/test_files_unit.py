"""rings/files.py in-process, on real files in a temp directory: atomic writes, temp-file
sweeps, reads of regular files only, replaceability checks, output paths, names.

The fsync order of a real process is checked under strace (test_fsync_order.py); a
SIGKILL at every fault point by test_random_faults.py.  These tests pin each function's
result and message, so that a changed condition or constant fails here (the mutation
score, docs/testing.md).
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess

import pytest

from ringmgr.errors import BuilderError, Refused, UsageError
from ringmgr.rings import files
from ringmgr.rings.files import (
    TMP_PREFIX, atomic_write, check_output, check_replaceable, check_writable_dir,
    device_name_problem, fault_point, fsync_dir, is_ring_name, md5_file, os_error_message,
    read_regular, sweep_temp_files, write_output,
)


def names(d):
    return sorted(p.name for p in d.iterdir())


# -- atomic_write -----------------------------------------------------------------------

def test_atomic_write_replaces_with_mode_and_leaves_no_temp(tmp_path):
    p = tmp_path / "object.builder"
    p.write_bytes(b"old")
    os.chmod(p, 0o600)
    atomic_write(p, b"new bytes")
    assert p.read_bytes() == b"new bytes"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644
    assert names(tmp_path) == ["object.builder"]
    atomic_write(p, b"x", mode=0o600)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600


def test_atomic_write_without_replace_never_overwrites(tmp_path):
    p = tmp_path / "plan.json"
    atomic_write(p, b"first", replace=False)
    assert p.read_bytes() == b"first"
    with pytest.raises(FileExistsError):
        atomic_write(p, b"second", replace=False)
    assert p.read_bytes() == b"first"
    assert names(tmp_path) == ["plan.json"]           # the temp file is gone too


def test_atomic_write_temp_name_is_swept_and_removed_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "object.ring.gz"
    seen = []
    real = os.rename

    def failing_rename(src, dst):
        seen.append(src)
        raise OSError(errno.EIO, "I/O error", str(src))

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError):
        atomic_write(p, b"data")
    monkeypatch.setattr(os, "rename", real)
    # the temp file is in the target's directory (a rename within one filesystem)
    assert seen and os.path.dirname(seen[0]) == str(tmp_path)
    assert os.path.basename(seen[0]).startswith(f"{TMP_PREFIX}object.ring.gz.")
    assert names(tmp_path) == []


@pytest.mark.parametrize("point", ["write", "fsync"])
def test_atomic_write_fault_points_before_the_rename(tmp_path, monkeypatch, point):
    """write:NAME is before the temp file exists, fsync:NAME after its bytes are in it:
    either way the old file stays and no temp file is left."""
    p = tmp_path / "x.builder"
    p.write_bytes(b"old")
    monkeypatch.setenv("RINGMGR_TEST_FAULT", f"{point}:x.builder")
    monkeypatch.setenv("RINGMGR_TEST_FAULT_ERRNO", "EIO")
    with pytest.raises(OSError) as e:
        atomic_write(p, b"new")
    assert e.value.filename == f"{point}:x.builder"
    assert p.read_bytes() == b"old" and names(tmp_path) == ["x.builder"]
    monkeypatch.setenv("RINGMGR_TEST_FAULT", f"{point}:other.builder")
    atomic_write(p, b"new")                       # another file's point: not this write
    assert p.read_bytes() == b"new"


def test_atomic_write_interrupted_after_the_temp_exists_removes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_TEST_FAULT", "rename:x.builder")
    monkeypatch.setenv("RINGMGR_TEST_FAULT_ERRNO", "EIO")
    with pytest.raises(OSError) as e:
        atomic_write(tmp_path / "x.builder", b"data")
    assert e.value.errno == errno.EIO and e.value.filename == "rename:x.builder"
    assert names(tmp_path) == []


def test_fsync_dir_opens_a_directory_only(tmp_path):
    fsync_dir(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        fsync_dir(tmp_path / "f")


# -- fault points -------------------------------------------------------------------------

def test_fault_point_by_name_and_by_count(monkeypatch):
    monkeypatch.delenv("RINGMGR_TEST_FAULT", raising=False)
    fault_point("write:a")                                   # off: nothing happens
    monkeypatch.setenv("RINGMGR_TEST_FAULT_ERRNO", "ENOSPC")
    monkeypatch.setenv("RINGMGR_TEST_FAULT", "fsync:b")
    fault_point("write:a")
    with pytest.raises(OSError) as e:
        fault_point("fsync:b")
    assert (e.value.errno, e.value.strerror, e.value.filename) == \
        (errno.ENOSPC, os.strerror(errno.ENOSPC), "fsync:b")
    monkeypatch.setattr(fault_point, "seen", 0, raising=False)
    monkeypatch.setenv("RINGMGR_TEST_FAULT", "3")
    fault_point("p1")
    fault_point("p2")
    with pytest.raises(OSError):
        fault_point("p3")
    fault_point("p4")                                        # only the third
    assert fault_point.seen == 4


def test_fault_point_counts_from_the_first_point_a_process_reaches(monkeypatch):
    monkeypatch.delattr(fault_point, "seen", raising=False)   # a fresh process
    monkeypatch.setenv("RINGMGR_TEST_FAULT_ERRNO", "EIO")
    monkeypatch.setenv("RINGMGR_TEST_FAULT", "2")
    fault_point("p1")
    with pytest.raises(OSError) as e:
        fault_point("p2")
    assert e.value.filename == "p2"


def test_fault_point_without_errno_sigkills_this_process(monkeypatch):
    """In a forked copy of this process (so that the code under test is this one)."""
    monkeypatch.setenv("RINGMGR_TEST_FAULT", "b")
    monkeypatch.delenv("RINGMGR_TEST_FAULT_ERRNO", raising=False)
    fault_point("a")                                   # another point: nothing happens
    pid = os.fork()
    if pid == 0:
        try:
            fault_point("a")
            fault_point("b")
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9


def test_fault_point_without_errno_kills_the_process(tmp_path):
    code = ("from ringmgr.rings.files import fault_point\n"
            "fault_point('a')\nprint('passed a', flush=True)\nfault_point('b')\n"
            "print('passed b')\n")
    env = dict(os.environ, RINGMGR_TEST_FAULT="b")
    env.pop("RINGMGR_TEST_FAULT_ERRNO", None)
    p = subprocess.run(["python3", "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == -9 and p.stdout == "passed a\n"


# -- sweep, md5 -------------------------------------------------------------------------

def test_sweep_removes_only_regular_temp_files(tmp_path):
    (tmp_path / f"{TMP_PREFIX}object.builder.abc").write_text("x")
    (tmp_path / "object.builder").write_text("keep")
    (tmp_path / ".other.tmp").write_text("keep")
    (tmp_path / f"{TMP_PREFIX}dir").mkdir()
    target = tmp_path / "target"
    target.write_text("keep")
    os.symlink(target, tmp_path / f"{TMP_PREFIX}link")
    removed = sweep_temp_files(tmp_path)
    assert [p.name for p in removed] == [f"{TMP_PREFIX}object.builder.abc"]
    assert names(tmp_path) == sorted([".other.tmp", f"{TMP_PREFIX}dir", f"{TMP_PREFIX}link",
                                      "object.builder", "target"])
    assert sweep_temp_files(tmp_path / "missing") == []


def test_md5_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert md5_file(tmp_path / "f") == "900150983cd24fb0d6963f7d28e17f72"
    assert md5_file(tmp_path / "missing") is None


# -- read_regular -------------------------------------------------------------------------

def test_read_regular_reads_whole_file_in_chunks(tmp_path, monkeypatch):
    p = tmp_path / "object.builder"
    data = os.urandom(3 * (1 << 20) + 5)
    p.write_bytes(data)
    assert read_regular(p) == data
    assert read_regular(p, limit=len(data)) == data
    with pytest.raises(BuilderError) as e:
        read_regular(p, limit=len(data) - 1, what="builder")
    assert str(e.value) == (f"builder {p} is {len(data)} bytes, more than the "
                            f"{len(data) - 1} a builder can be: not reading it")
    (tmp_path / "empty").write_bytes(b"")
    assert read_regular(tmp_path / "empty") == b""


def test_read_regular_notices_a_file_growing_past_the_limit(tmp_path, monkeypatch):
    p = tmp_path / "f"
    p.write_bytes(b"12345")
    real_fstat = os.fstat

    class Small:
        def __init__(self, st):
            self.st_mode, self.st_size = st.st_mode, 1

    monkeypatch.setattr(os, "fstat", lambda fd: Small(real_fstat(fd)))
    with pytest.raises(BuilderError) as e:
        read_regular(p, limit=4, what="ring")
    assert str(e.value) == f"ring {p} grew past 4 bytes while being read"
    assert read_regular(p, limit=5) == b"12345"


def test_read_regular_reads_at_most_one_byte_past_the_limit(tmp_path, monkeypatch):
    """Short reads (as from a file growing while it is read) still stop one byte past
    the limit, so a file larger than its stat said is refused, never held whole."""
    p = tmp_path / "f"
    p.write_bytes(b"x" * 100)
    real_fstat, real_read = os.fstat, os.read
    asked = []

    class Small:
        def __init__(self, st):
            self.st_mode, self.st_size = st.st_mode, 1

    def short_read(fd, n):
        asked.append(n)
        return real_read(fd, min(n, 4))

    monkeypatch.setattr(os, "fstat", lambda fd: Small(real_fstat(fd)))
    monkeypatch.setattr(os, "read", short_read)
    with pytest.raises(BuilderError) as e:
        read_regular(p, limit=8, what="ring")
    assert str(e.value) == f"ring {p} grew past 8 bytes while being read"
    assert asked == [9, 5, 1]                      # 4 + 4 + 1 bytes: limit + 1 in all


def test_read_regular_refuses_symlink_fifo_directory_and_says_missing(tmp_path):
    real = tmp_path / "real.builder"
    real.write_bytes(b"x")
    link = tmp_path / "object.builder"
    os.symlink(real, link)
    with pytest.raises(BuilderError) as e:
        read_regular(link, what="builder")
    assert str(e.value) == files.symlink_message(link, "builder")
    assert f"is a symlink (to {real})" in str(e.value)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BuilderError) as e:
        read_regular(fifo, what="ring")             # would block without O_NONBLOCK
    assert str(e.value) == (f"ring {fifo} is not a regular file; move it away "
                            f"(restore the real file from backups/)")
    with pytest.raises(FileNotFoundError) as e:
        read_regular(tmp_path / "missing")
    assert e.value.filename == str(tmp_path / "missing") and e.value.errno == errno.ENOENT
    assert e.value.strerror == os.strerror(errno.ENOENT)
    with pytest.raises(BuilderError) as e:
        read_regular(tmp_path / "real.builder" / "below")
    assert str(e.value) == (f"file {tmp_path / 'real.builder' / 'below'} cannot be read "
                            f"(Not a directory)")


def test_symlink_message_of_a_vanished_link(tmp_path):
    assert "(to ?)" in files.symlink_message(tmp_path / "gone", "ring")
    assert files.symlink_message(tmp_path / "gone", "ring").startswith(
        f"ring {tmp_path / 'gone'} is a symlink (to ?): ringmgr replaces files atomically")


# -- check_replaceable, check_writable_dir --------------------------------------------------

def chattr(flag, path):
    r = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"chattr {flag} not supported here: {r.stderr.strip()}")


def test_check_replaceable_accepts_regular_and_missing(tmp_path):
    (tmp_path / "object.builder").write_bytes(b"x")
    check_replaceable(tmp_path / "object.builder", "builder")
    check_replaceable(tmp_path / "missing.builder", "builder")


def test_check_replaceable_refuses_symlink_and_non_regular(tmp_path):
    os.symlink(tmp_path / "elsewhere", tmp_path / "object.builder")
    with pytest.raises(Refused) as e:
        check_replaceable(tmp_path / "object.builder", "builder")
    assert str(e.value) == files.symlink_message(tmp_path / "object.builder", "builder")
    (tmp_path / "d.builder").mkdir()
    with pytest.raises(Refused) as e:
        check_replaceable(tmp_path / "d.builder", "builder")
    assert str(e.value) == f"builder {tmp_path / 'd.builder'} is not a regular file; move it away first"


@pytest.mark.parametrize("flag, kind, letter", [("+i", "immutable", "i"),
                                                ("+a", "append-only", "a")])
def test_check_replaceable_refuses_chattr_flags(tmp_path, flag, kind, letter):
    p = tmp_path / "object.ring.gz"
    p.write_bytes(b"x")
    chattr(flag, p)
    try:
        with pytest.raises(Refused) as e:
            check_replaceable(p, "builder")
        assert str(e.value) == (f"{p} is {kind} (chattr {flag}): nothing was changed; "
                                f"remove the flag with `chattr -{letter} {p}`, or leave "
                                f"this ring alone")
    finally:
        subprocess.run(["chattr", f"-{letter}", str(p)])
    check_replaceable(p, "builder")


def test_check_writable_dir(tmp_path):
    check_writable_dir(tmp_path)
    with pytest.raises(Refused) as e:
        check_writable_dir(tmp_path / "missing")
    assert str(e.value) == f"{tmp_path / 'missing'} is not a directory: nothing was changed"
    d = tmp_path / "frozen"
    d.mkdir()
    chattr("+i", d)
    try:
        with pytest.raises(Refused) as e:
            check_writable_dir(d)
        assert str(e.value) == (f"{d} is immutable (chattr +i): nothing was changed; remove "
                                f"the flag with `chattr -i {d}`")
    finally:
        subprocess.run(["chattr", "-i", str(d)])
    # a directory in a file's place under the check: the parent must be writable
    with pytest.raises(Refused):
        check_replaceable(tmp_path / "missing" / "object.builder", "builder")


def test_check_writable_dir_read_only_and_not_writable(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setattr(files, "_read_only_fs", lambda path: True)
    with pytest.raises(Refused) as e:
        check_writable_dir(tmp_path)
    assert str(e.value) == f"{tmp_path} is on a read-only filesystem: nothing was changed"
    monkeypatch.undo()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(Refused) as e:                  # the real statvfs of tmp_path
        check_writable_dir(tmp_path)
    assert str(e.value) == f"{tmp_path} is not writable by this user: nothing was changed"


def test_inode_flags_never_follow_a_symlink_nor_block_on_a_fifo(tmp_path):
    """A name swapped for a symlink or FIFO after the lstat reads as no flags."""
    import signal

    p = tmp_path / "f"
    p.write_text("x")
    chattr("+a", p)
    try:
        os.symlink(p, tmp_path / "link")
        assert files._inode_flags(p) & files.FS_APPEND_FL
        assert files._inode_flags(tmp_path / "link") == 0
    finally:
        subprocess.run(["chattr", "-a", str(p)])
    os.mkfifo(tmp_path / "fifo")

    def blocked(*_):
        raise AssertionError("_inode_flags blocked opening a FIFO")

    old = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(5)
    try:
        assert files._inode_flags(tmp_path / "fifo") == 0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_inode_flags_and_read_only(tmp_path):
    p = tmp_path / "f"
    p.write_text("x")
    assert files._inode_flags(p) & (files.FS_IMMUTABLE_FL | files.FS_APPEND_FL) == 0
    assert files._inode_flags(tmp_path / "missing") == 0
    chattr("+a", p)
    try:
        assert files._inode_flags(p) & files.FS_APPEND_FL == files.FS_APPEND_FL
        assert files._inode_flags(p) & files.FS_IMMUTABLE_FL == 0
    finally:
        subprocess.run(["chattr", "-a", str(p)])
    assert files._read_only_fs(tmp_path) is False
    assert files._read_only_fs(tmp_path / "missing") is False
    if os.path.ismount("/proc") and os.statvfs("/proc/sys").f_flag & os.ST_RDONLY:
        assert files._read_only_fs("/proc/sys") is True
    assert (files.FS_IOC_GETFLAGS, files.FS_IMMUTABLE_FL, files.FS_APPEND_FL) == \
        (0x80086601, 0x10, 0x20)


def test_inode_flags_on_a_filesystem_without_them(tmp_path, monkeypatch):
    import fcntl

    def no_flags(*a):
        raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")

    monkeypatch.setattr(fcntl, "ioctl", no_flags)
    (tmp_path / "f").write_text("x")
    assert files._inode_flags(tmp_path / "f") == 0


# -- messages -----------------------------------------------------------------------------

@pytest.mark.parametrize("code, fix", [
    (errno.ENOSPC, "free space on that filesystem"), (errno.EDQUOT, "raise the quota or free space"),
    (errno.EROFS, "remount it read-write"), (errno.EACCES, "check the permissions"),
    (errno.EPERM, "check the permissions and `lsattr` flags"),
    (errno.EISDIR, "move the directory away"), (errno.ENOTDIR, "move the file away"),
    (errno.EIO, "check the disk (dmesg)"), (errno.EBUSY, "fix the cause")])
def test_os_error_message_names_path_and_fix(code, fix):
    e = OSError(code, os.strerror(code), "/r/object.builder")
    assert os_error_message(e, "writing") == \
        f"writing: {os.strerror(code)} (/r/object.builder); {fix}"


def test_os_error_message_without_path_or_strerror():
    assert os_error_message(OSError("odd"), "doing") == "doing: odd (?); fix the cause"


# -- output paths ---------------------------------------------------------------------------

def test_check_output_refusals(tmp_path):
    for name in ("x.builder", "x.ring.gz", "x.ring"):
        with pytest.raises(UsageError) as e:
            check_output(tmp_path / name, force=True, option="--plan-out")
        assert str(e.value) == (f"--plan-out {tmp_path / name} would overwrite a swift ring "
                                f"or builder file; choose another file name")
    state = tmp_path / ".ringmgr"
    state.mkdir()
    for target in (state, state / "h.json"):
        with pytest.raises(UsageError) as e:
            check_output(target, force=True, option="--chart", protected=(state,))
        assert str(e.value) == (f"--chart {target} is {state}, which ringmgr keeps for "
                                f"itself; choose another file")
    with pytest.raises(UsageError) as e:
        check_output(tmp_path, force=True, option="--plan-out")
    assert str(e.value) == f"--plan-out {tmp_path} is a directory; give a file name"
    with pytest.raises(UsageError) as e:
        check_output(tmp_path / "no" / "p.json", force=True, option="--plan-out")
    assert str(e.value) == (f"--plan-out {tmp_path / 'no' / 'p.json'}: directory "
                            f"{tmp_path / 'no'} does not exist")
    (tmp_path / "real.json").write_text("x")
    os.symlink(tmp_path / "real.json", tmp_path / "link.json")
    with pytest.raises(UsageError) as e:
        check_output(tmp_path / "link.json", force=True, option="--plan-out")
    assert str(e.value) == f"--plan-out {tmp_path / 'link.json'} is a symlink; give the real file name"
    os.symlink(tmp_path / "dangling", tmp_path / "dangling.json")
    with pytest.raises(UsageError):
        check_output(tmp_path / "dangling.json", force=True, option="--plan-out")
    with pytest.raises(UsageError) as e:
        check_output(tmp_path / "real.json", force=False, option="--plan-out")
    assert str(e.value) == (f"--plan-out {tmp_path / 'real.json'} exists; ringmgr does not "
                            f"overwrite it (choose another name, or add --force)")
    check_output(tmp_path / "real.json", force=True, option="--plan-out")
    check_output(tmp_path / "new.json", force=False, option="--plan-out",
                 protected=(state, tmp_path / "other"))


def test_write_output(tmp_path, monkeypatch):
    p = tmp_path / "plan.json"
    write_output(p, b"one", force=False, option="--plan-out")
    assert p.read_bytes() == b"one" and stat.S_IMODE(os.stat(p).st_mode) == 0o644
    write_output(p, b"two", force=True, option="--plan-out")
    assert p.read_bytes() == b"two"
    # appeared between the check and the write: never overwritten without --force
    monkeypatch.setattr(files, "check_output", lambda *a, **k: None)
    with pytest.raises(UsageError) as e:
        write_output(p, b"three", force=False, option="--plan-out")
    assert str(e.value) == (f"--plan-out {p} appeared while writing; not overwritten "
                            f"(add --force to overwrite)")
    assert p.read_bytes() == b"two"
    with pytest.raises(UsageError) as e:
        write_output(tmp_path / "no" / "p.json", b"x", force=True, option="--chart")
    assert str(e.value).startswith(f"--chart {tmp_path / 'no' / 'p.json'} could not be "
                                   f"written: No such file or directory")
    # the checks run first, with the option's name and the protected paths
    state = tmp_path / ".ringmgr"
    state.mkdir()
    monkeypatch.undo()
    with pytest.raises(UsageError) as e:
        write_output(state / "x.json", b"x", force=True, option="--chart", protected=(state,))
    assert str(e.value).startswith(f"--chart {state / 'x.json'} is {state}, which ringmgr")
    assert names(state) == []


# -- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, ok", [
    ("account", True), ("container", True), ("object", True), ("object-1", True),
    ("object-12", True), ("object-", False), ("objects", False), ("xobject", False),
    ("object-1x", False), ("account-1", False), ("", False), ("object-a", False)])
def test_is_ring_name(name, ok):
    assert is_ring_name(name) is ok


def test_device_name_problem():
    for ok in ("sdb", "d1", "a" * 64, "x.y_z-1", "0"):
        assert device_name_problem(ok) is None, ok
    assert device_name_problem("") == "a device name must not be empty"
    assert device_name_problem(None) == "a device name must not be empty"
    assert device_name_problem(7) == "a device name must not be empty"
    for bad in (".hidden", "-x", "a/b", "a" * 65, "sd b", "../x"):
        assert device_name_problem(bad) == (
            f"device name {bad!r} must be letters, digits, '.', '_' or '-' (at most 64, not "
            f"starting with '.' or '-'): it is a directory under mount_root"), bad
