"""Durable file primitives: atomic writes, directory fsync, md5, checks on the files
ringmgr reads and replaces.

Every write goes to a new temp file in the target's directory (``mkstemp``: a random
name opened ``O_CREAT|O_EXCL``, named ``.ringmgr-tmp.*`` so that recovery can sweep
leftovers safely), is fsynced, renamed over the target, and the directory is fsynced.
A write that fails removes its temp file.  Power-loss durability rests on fsync; it
cannot be tested on this machine.

The directory lock lives in ``rings/lock.py``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import signal
import stat
import tempfile
from pathlib import Path

from ringmgr.errors import BuilderError, Refused, UsageError

TMP_PREFIX = ".ringmgr-tmp."
FAULT_ENV = "RINGMGR_TEST_FAULT"

# a builder at part power 22 with 1,000s of devices stays far below this
MAX_BUILDER_BYTES = 1 << 30


def fault_point(point: str) -> None:
    """A place where tests may kill this process with SIGKILL.

    Switched on only by ``$RINGMGR_TEST_FAULT``: a point's name (e.g.
    ``rename:object.builder``) kills there; a number N kills at the N-th point reached,
    so a test can walk through every write, fsync and rename of a change.  With
    ``$RINGMGR_TEST_FAULT_ERRNO`` set (e.g. ``EIO``), the point raises that OSError
    instead of killing: an I/O error exactly there.
    """
    target = os.environ.get(FAULT_ENV)
    if not target:
        return
    if target.isdigit():
        fault_point.seen = getattr(fault_point, "seen", 0) + 1
        hit = fault_point.seen == int(target)
    else:
        hit = target == point
    if hit:
        code = os.environ.get(FAULT_ENV + "_ERRNO")
        if code:
            num = getattr(errno, code)
            raise OSError(num, os.strerror(num), point)
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644,
                 replace: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix.

    ``replace=False`` never replaces an existing ``path`` (it is linked into place,
    which fails with FileExistsError if a file appeared there).  The temp file has a
    random name and is created exclusively, so nobody can plant it beforehand; it is
    removed if anything fails.  ``mode`` is set on the descriptor before the rename
    (0644 by default, what swift gives builders and rings).
    """
    path = Path(path)
    fault_point(f"write:{path.name}")
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            fault_point(f"fsync:{path.name}")
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        fault_point(f"rename:{path.name}")
        if replace:
            os.rename(tmp, path)
        else:
            os.link(tmp, path)
            tmp.unlink()
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def sweep_temp_files(directory: Path) -> list[Path]:
    """Remove temp files a killed ringmgr left in ``directory``; return them."""
    removed = []
    if directory.is_dir():
        for p in directory.iterdir():
            if p.name.startswith(TMP_PREFIX) and not p.is_symlink() and p.is_file():
                p.unlink()
                removed.append(p)
    return removed


def md5_file(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "md5").hexdigest()
    except FileNotFoundError:
        return None


def read_regular(path: Path, *, limit: int = MAX_BUILDER_BYTES, what: str = "file") -> bytes:
    """The bytes of ``path``, which must be a regular file (not a symlink, FIFO or
    device) no larger than ``limit``: read once, so a check and a use see the same
    bytes.  FileNotFoundError passes through; anything else is one line."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BuilderError(symlink_message(path, what))
        if e.errno == errno.ENOENT:
            raise FileNotFoundError(e.errno, e.strerror, str(path))
        raise BuilderError(f"{what} {path} cannot be read ({e.strerror})")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BuilderError(f"{what} {path} is not a regular file; move it away "
                               f"(restore the real file from backups/)")
        if st.st_size > limit:
            raise BuilderError(f"{what} {path} is {st.st_size} bytes, more than the "
                               f"{limit} a {what} can be: not reading it")
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise BuilderError(f"{what} {path} grew past {limit} bytes while being read")
        return data
    finally:
        os.close(fd)


def symlink_message(path: Path, what: str) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return (f"{what} {path} is a symlink (to {target}): ringmgr replaces files atomically "
            f"and would replace the link with a file; set builder_dir to the directory "
            f"that holds the real files, or replace the link by the file")


def check_replaceable(path: Path, what: str) -> None:
    """Refuse before a change when ``path`` could not be replaced atomically: a symlink
    or non-regular file in its place, an immutable or append-only file (``chattr``),
    or a directory that this user cannot write."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise Refused(symlink_message(path, what))
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{what} {path} is not a regular file; move it away first")
        flags = _inode_flags(path)
        if flags & (FS_IMMUTABLE_FL | FS_APPEND_FL):
            kind = "immutable" if flags & FS_IMMUTABLE_FL else "append-only"
            raise Refused(f"{path} is {kind} (chattr {'+i' if kind == 'immutable' else '+a'}):"
                          f" nothing was changed; remove the flag with "
                          f"`chattr -{'i' if kind == 'immutable' else 'a'} {path}`, or leave "
                          f"this ring alone")
    check_writable_dir(path.parent)


def check_writable_dir(directory: Path) -> None:
    directory = Path(directory)
    if not directory.is_dir():
        raise Refused(f"{directory} is not a directory: nothing was changed")
    if _inode_flags(directory) & FS_IMMUTABLE_FL:
        raise Refused(f"{directory} is immutable (chattr +i): nothing was changed; remove "
                      f"the flag with `chattr -i {directory}`")
    if not os.access(directory, os.W_OK):
        ro = _read_only_fs(directory)
        why = "is on a read-only filesystem" if ro else "is not writable by this user"
        raise Refused(f"{directory} {why}: nothing was changed")


FS_IOC_GETFLAGS = 0x80086601
FS_IMMUTABLE_FL = 0x00000010
FS_APPEND_FL = 0x00000020


def _inode_flags(path: Path) -> int:
    """The ``chattr`` flags of ``path`` (0 where the filesystem has none, e.g. tmpfs)."""
    import array
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        buf = array.array("l", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
        return int(buf[0])
    except OSError:
        return 0
    finally:
        os.close(fd)


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def os_error_message(e: OSError, doing: str) -> str:
    """One line for an OS error: what failed, on which path, and the usual fix."""
    path = e.filename or "?"
    fix = {errno.ENOSPC: "free space on that filesystem",
           errno.EDQUOT: "raise the quota or free space",
           errno.EROFS: "remount it read-write",
           errno.EACCES: "check the permissions",
           errno.EPERM: "check the permissions and `lsattr` flags",
           errno.EISDIR: "move the directory away",
           errno.ENOTDIR: "move the file away",
           errno.EIO: "check the disk (dmesg)"}.get(e.errno, "fix the cause")
    return f"{doing}: {e.strerror or e} ({path}); {fix}"


# -- files ringmgr writes for the operator ---------------------------------------------

def check_output(path, *, force: bool, option: str,
                 protected: tuple[Path, ...] = ()) -> None:
    """Refuse an output path (``--plan-out``, ``--chart``, ...) before any work is done.

    ringmgr never overwrites a file it did not create for that purpose: an existing
    path is refused unless ``force``; a builder, a ring file, and every path in
    ``protected`` (the config, builder_dir's state and backups) are refused always."""
    path = Path(path)
    real = Path(os.path.realpath(path))
    name = real.name
    if name.endswith((".builder", ".ring.gz", ".ring")):
        raise UsageError(f"{option} {path} would overwrite a swift ring or builder file; "
                         f"choose another file name")
    for p in protected:
        p = Path(os.path.realpath(p))
        if real == p or p in real.parents:
            raise UsageError(f"{option} {path} is {p}, which ringmgr keeps for itself; "
                             f"choose another file")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory; give a file name")
    if not real.parent.is_dir():
        raise UsageError(f"{option} {path}: directory {real.parent} does not exist")
    if os.path.islink(path):
        raise UsageError(f"{option} {path} is a symlink; give the real file name")
    if os.path.lexists(path) and not force:
        raise UsageError(f"{option} {path} exists; ringmgr does not overwrite it (choose "
                         f"another name, or add --force)")


def write_output(path, data: bytes, *, force: bool, option: str,
                 protected: tuple[Path, ...] = ()) -> None:
    """``check_output``, then write ``data`` atomically (never over a file that
    appeared in the meantime, unless ``force``)."""
    check_output(path, force=force, option=option, protected=protected)
    path = Path(path)
    try:
        atomic_write(path, data, mode=0o644, replace=force)
    except FileExistsError:
        raise UsageError(f"{option} {path} appeared while writing; not overwritten "
                         f"(add --force to overwrite)")
    except OSError as e:
        raise UsageError(os_error_message(e, f"{option} {path} could not be written"))


_RING_RE = re.compile(r"^(account|container|object(-[0-9]+)?)$")


def is_ring_name(name: str) -> bool:
    return bool(_RING_RE.match(name))


# a device name is a directory under mount_root on every node
_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def device_name_problem(name) -> str | None:
    """Why ``name`` cannot be a new device (None when it can)."""
    if not isinstance(name, str) or not name:
        return "a device name must not be empty"
    if not _DEVICE_RE.match(name):
        return (f"device name {name!r} must be letters, digits, '.', '_' or '-' (at most 64,"
                f" not starting with '.' or '-'): it is a directory under mount_root")
    return None
