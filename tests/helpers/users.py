"""Real unprivileged local users for security tests (``useradd``/``userdel``).

``local_user()`` (a pytest fixture factory, see ``unix_user`` below) creates a system
user with its own group, no home directory and no login shell, and removes both after
the test, also on failure.  Files are planted as that user with ``setpriv`` (no login
shell needed); ``as_user(user, argv, pass_fds=...)`` runs a command with the user's
uid, gid and groups.  A directory descriptor handed down with ``pass_fds`` lets the
user work in a directory whose parents it cannot traverse (pytest's 0700 temp dirs).
"""

from __future__ import annotations

import grp
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int

    @property
    def owner(self) -> str:
        return f"{self.name}:{self.name}"


def create_user(prefix: str = "rmt") -> User:
    name = f"{prefix}{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    pw = pwd.getpwnam(name)
    return User(name, pw.pw_uid, pw.pw_gid)


def remove_user(user: User) -> None:
    subprocess.run(["userdel", user.name], check=False, capture_output=True)
    try:  # --user-group made the group; userdel removes it unless someone else uses it
        grp.getgrnam(user.name)
        subprocess.run(["groupdel", user.name], check=False, capture_output=True)
    except KeyError:
        pass


def as_user(user: User, argv, **kw) -> subprocess.Popen:
    """Start ``argv`` as ``user`` (real and effective ids, its groups only)."""
    return subprocess.Popen(["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
                             "--init-groups", "--reset-env", "--", *argv], **kw)


def run_as_user(user: User, argv, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = as_user(user, argv, stdout=subprocess.PIPE if kw.pop("capture_output") else None,
                stderr=subprocess.PIPE, text=kw.pop("text"), **kw)
    out, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@pytest.fixture
def unix_user():
    """``unix_user()`` -> a new User; every user made is deleted after the test."""
    if shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.fail("these tests need useradd and setpriv (passwd, util-linux)")
    made: list[User] = []

    def make() -> User:
        u = create_user()
        made.append(u)
        return u

    yield make
    for u in made:
        remove_user(u)
