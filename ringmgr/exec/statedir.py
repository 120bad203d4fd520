"""ringmgr's own state on the admin host: kept where only its user (and root) can change it.

The state directory (``~/.local/state/ringmgr``: run journals, recover-host backups,
the audit log) decides what a resumed operation runs on a node, so another local
account must not be able to plant or edit anything there.  ``private_dir`` makes
what is missing 0700 and refuses a directory (or a parent) that someone else owns
or can write; ``open_private_append`` opens a log file 0600, never through a symlink.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ringmgr.errors import Refused, UsageError


def private_dir(path) -> Path:
    """``path`` as a directory only this user (and root) can change: made 0700 where
    missing; ``Refused`` (one line, with the fix) when it, or a parent, is owned or
    writable by anyone else (a sticky directory such as /tmp is fine as a parent)."""
    path = Path(os.path.abspath(path))
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            raise UsageError(f"cannot create the state directory {d}: {e.strerror}")
    me = os.geteuid()
    for d in [path, *path.parents]:
        try:
            st = os.lstat(d)
        except OSError as e:
            raise UsageError(f"state directory {path}: cannot check {d}: {e.strerror}")
        if stat.S_ISLNK(st.st_mode):
            st = os.stat(d)
        why = _unsafe(st, me, leaf=(d == path))
        if why:
            raise Refused(f"state directory {path} is not private: {d} (owner "
                          f"{_owner(st.st_uid)}, mode {stat.S_IMODE(st.st_mode):04o}) {why}; "
                          f"a run journal there decides what a resumed operation does "
                          f"on a node: fix it (chown {_owner(me)} {d}; chmod go-w {d}) "
                          f"or set RINGMGR_STATE_DIR to a private directory")
    return path


def _unsafe(st, me: int, leaf: bool) -> str | None:
    if st.st_uid not in (0, me):
        return "belongs to another user"
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and (leaf or not mode & stat.S_ISVTX):
        return "can be written by others"
    return None


def _owner(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def open_private_append(path) -> int:
    """A descriptor appending to ``path`` (made 0600; an existing file of this user's
    is set to 0600).  OSError for a symlink (ELOOP) or a file that is not this user's
    own plain file (a hard link to another file, say)."""
    import errno

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                 | os.O_NONBLOCK | os.O_NOCTTY, 0o600)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
        os.close(fd)
        raise OSError(errno.EPERM, "not this user's own plain file", str(path))
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, 0o600)
    return fd
