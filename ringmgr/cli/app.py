"""Per-invocation state shared by the commands: config, output mode, confirmation."""

from __future__ import annotations

import getpass
import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from ringmgr.errors import Refused

log = logging.getLogger("ringmgr")


@dataclass
class App:
    config_path: str | None = None
    argv: list[str] = field(default_factory=list)
    verbose: int = 0
    json: bool = False
    json_emitted: bool = False
    written: bool = False
    _config: object = field(default=None, repr=False)

    @staticmethod
    def current() -> "App | None":
        ctx = click.get_current_context(silent=True)
        if ctx is None:
            return None
        return ctx.find_root().obj

    @property
    def config(self):
        """The loaded ringmgr.toml (loaded on first use, so --help needs none)."""
        if self._config is None:
            from ringmgr.config import find_config_path, load_config

            self._config = load_config(find_config_path(self.config_path))
        return self._config

    def setup_logging(self, ctx: click.Context) -> None:
        """Log every invocation and every command ringmgr runs to the audit log."""
        root = logging.getLogger("ringmgr")
        audit = logging.getLogger("ringmgr.audit")
        root.setLevel(logging.DEBUG)
        audit.propagate = False
        for logger in (root, audit):  # a fresh set per invocation (tests run many)
            for h in [h for h in logger.handlers if getattr(h, "_ringmgr", False)]:
                logger.removeHandler(h)
                h.close()
        err = logging.StreamHandler(sys.stderr)
        err.setLevel({0: logging.WARNING, 1: logging.INFO}.get(self.verbose, logging.DEBUG))
        err.setFormatter(logging.Formatter("%(message)s"))
        err._ringmgr = True
        root.addHandler(err)
        fh = _audit_handler(audit_log_path())
        if fh is not None:
            fh.setLevel(logging.INFO)
            fh.setFormatter(logging.Formatter(
                f"%(asctime)s pid={os.getpid()} %(levelname)s %(message)s"))
            fh._ringmgr = True
            root.addHandler(fh)
            audit.addHandler(fh)
        logging.getLogger("ringmgr.audit").info("user=%s argv=%s", _user(), shlex.join(self.argv))

    # -- output ---------------------------------------------------------------
    def out(self, text: str = "") -> None:
        """Human output: stdout normally, stderr when --json owns stdout."""
        click.echo(text, err=self.json)

    def note(self, text: str) -> None:
        """Progress and remarks: always stderr."""
        click.echo(text, err=True)

    def emit(self, data: dict) -> None:
        """The JSON document (once per invocation), when --json was given."""
        if self.json and not self.json_emitted:
            click.echo(json.dumps(data, indent=2, sort_keys=False, default=_json_default))
            self.json_emitted = True

    def confirm(self, question: str, yes: bool) -> None:
        """Ask on the terminal; --yes skips; no terminal and no --yes refuses."""
        if yes:
            return
        if not interactive():
            raise Refused("no terminal to confirm on: re-run with --yes to proceed "
                          "(or --dry-run to see what would change)")
        if not click.confirm(question, default=False, err=True):
            raise Refused("not confirmed; nothing was changed")


def interactive() -> bool:
    """Is there a terminal to ask on?"""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def audit_log_path() -> Path:
    env = os.environ.get("RINGMGR_LOG")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "ringmgr" / "ringmgr.log"


class _AuditHandler(logging.StreamHandler):
    """Appends to the audit log through a descriptor opened 0600 without following a
    symlink (``statedir.open_private_append``); closes it with the handler."""

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            super().close()


def _audit_handler(path: Path):
    """The audit log's handler, or None (with one line on stderr) when it cannot be
    written safely: its directory made private (0700), the file 0600, never a symlink."""
    from ringmgr.errors import RingmgrError
    from ringmgr.exec.statedir import open_private_append, private_dir

    try:
        if not os.environ.get("RINGMGR_LOG"):
            private_dir(path.parent)
        elif not path.parent.is_dir():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = open_private_append(path)
    except RingmgrError as e:
        click.echo(f"warning: audit log not written: {e}", err=True)
        return None
    except OSError as e:
        click.echo(f"warning: audit log {path} not written: {e.strerror}", err=True)
        return None
    return _AuditHandler(os.fdopen(fd, "a", buffering=1, encoding="utf-8"))


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_json"):
        return o.to_json()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _set_json(ctx, param, value):
    if value:
        root = ctx.find_root()
        root.ensure_object(App).json = True
    return value


json_option = click.option("--json", "json_flag", is_flag=True, expose_value=False,
                           callback=_set_json, is_eager=True,
                           help="machine-readable output on stdout")


def pass_app(f):
    """Pass the App as the first argument (after --json is applied)."""
    import functools

    @functools.wraps(f)
    def wrapper(*a, **kw):
        return f(App.current(), *a, **kw)

    return wrapper
