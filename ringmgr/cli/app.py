"""Per-invocation state shared by the commands: config, output mode, confirmation, and
what the JSON envelope reports (reason, warnings, next steps).

Commands contribute; the boundary in ``ringmgr.cli.main`` builds the envelope once the
exit code is known (``App.envelope``) and prints it: a command never prints JSON itself.
"""

from __future__ import annotations

import datetime
import getpass
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click

from ringmgr.errors import Refused

if TYPE_CHECKING:
    from ringmgr.config import Config

log = logging.getLogger("ringmgr")


ENVELOPE_KEYS = ("written", "exit_code", "reason", "message", "warnings", "errors", "next")


@dataclass
class App:
    config_path: str | None = None
    argv: list[str] = field(default_factory=list)
    verbose: int = 0
    json: bool = False
    written: bool = False
    reason: str | None = None        # a code from ringmgr.errors.REASONS; None: from the exit code
    message: str | None = None       # the one-line outcome, when there is one
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    next: list[dict] = field(default_factory=list)
    data: dict = field(default_factory=dict)   # the command's own JSON keys
    # how host commands reach their hosts: None is the configured transport
    # (exec.factory); a test sets a transport here (a recorder for what cannot run)
    transport: Callable | None = field(default=None, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)  # runbook polls
    now: Callable[[], datetime.datetime] | None = field(default=None, repr=False)
    _config: Config | None = field(default=None, repr=False)

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
            from ringmgr.exec.factory import check_transports

            config = load_config(find_config_path(self.config_path))
            check_transports(config)
            self._config = config
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

    def executor(self, host, *, dry_run: bool, needs=()):
        """The executor for ``host`` (``exec.factory.executor_for`` with this run's
        transport)."""
        from ringmgr.exec.factory import executor_for

        return executor_for(self.config, host, dry_run=dry_run, needs=needs,
                            transport=self.transport)

    # -- output ---------------------------------------------------------------
    # out: the text report (stdout; nowhere with --json, whose report is the JSON)
    # remark: a line of the report that belongs on stderr (what was written, what to
    #         do next); nowhere with --json, where the envelope carries it
    # note: progress and notes worth seeing while it runs: always stderr
    # warn: always stderr, and in the envelope's warnings[]
    def out(self, text: str = "") -> None:
        """The human report: stdout; nothing with --json (stdout is the JSON)."""
        if not self.json:
            click.echo(text)

    def remark(self, text: str) -> None:
        """A remark of the text report on stderr; nothing with --json."""
        if not self.json:
            click.echo(text, err=True)

    def note(self, text: str) -> None:
        """Progress and notes while it runs: always stderr."""
        click.echo(text, err=True)

    def warn(self, text: str, prefix: str = "warning: ") -> None:
        """A warning: stderr (also with --json: cron mails it) and ``warnings[]``."""
        self.warnings.append(text)
        click.echo(f"{prefix}{text}", err=True)

    def cmd(self, *words: str) -> str:
        """A ringmgr command line for next[], with this run's --config (a script that
        runs it gets the same cluster)."""
        import shlex

        if len(words) == 1 and words[0].startswith("ringmgr "):
            words = tuple(shlex.split(words[0])[1:])
        config = ["--config", self.config_path] if self.config_path else []
        return shlex.join(["ringmgr", *config, *words])

    def rerun(self, drop: tuple[str, ...] = ("--dry-run",), add: tuple[str, ...] = ()) -> str:
        """This command line again, without ``drop`` and with ``add``."""
        import shlex

        return shlex.join([a for a in self.argv if a not in drop] + list(add))

    def add_next(self, command: str, not_before: float | str | None = None) -> None:
        """A command to run next (``next[]``); ``not_before`` a Unix time or ISO string."""
        if isinstance(not_before, (int, float)):
            not_before = iso_time(not_before)
        if not any(n["command"] == command for n in self.next):
            self.next.append({"command": command, "not_before": not_before})

    def emit(self, data: dict) -> None:
        """The command's own JSON keys (printed in the envelope at the boundary)."""
        self.data.update(data)

    def envelope(self, code: int) -> dict:
        """The JSON report: the envelope (``ENVELOPE_KEYS``), then the command's own keys.
        A command's own ``written``, ``warnings`` and ``message`` fold into the envelope's."""
        own = dict(self.data)
        written = bool(self.written or own.get("written", False))
        warnings = [*_strings(own.get("warnings", [])), *self.warnings]
        message = self.message or (own["message"] if isinstance(own.get("message"), str)
                                   else None)
        for k in ENVELOPE_KEYS:
            own.pop(k, None)
        return {"written": written, "exit_code": code,
                "reason": self.reason or _default_reason(code), "message": message,
                "warnings": list(dict.fromkeys(warnings)), "errors": list(self.errors),
                "next": list(self.next), **own}

    def print_envelope(self, code: int) -> None:
        if self.json:
            click.echo(json.dumps(self.envelope(code), indent=2, default=_json_default))

    def confirm(self, question: str, yes: bool) -> None:
        """Ask on the terminal; --yes skips; no terminal and no --yes refuses."""
        if yes:
            return
        if not interactive():
            raise Refused("no terminal to confirm on: re-run with --yes to proceed "
                          "(or --dry-run to see what would change)")
        if not click.confirm(question, default=False, err=True):
            raise Refused("not confirmed; nothing was changed")


def _default_reason(code: int) -> str:
    if code == 0:
        return "ok"
    if code == 1:  # commands with another exit-1 case set app.reason
        return "check_failed"
    return "failed"


def _strings(v) -> list[str]:
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]


def iso_time(ts: float) -> str:
    """A Unix time as ISO 8601 in UTC, to the second: ``2025-03-01T02:13:00Z``."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
