"""The click entry point and the one error boundary.

Every command module under ``ringmgr.cli`` exposes ``register(group)``; the list
below is the only place commands are wired in.  Modules import heavy things (swift,
numpy, fabric) inside their functions so that ``ringmgr --help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys

import click

from ringmgr.cli import completion
from ringmgr.cli.app import App, json_option
from ringmgr.errors import EXIT_ERROR, EXIT_OK, EXIT_WARNING, RingmgrError

COMMAND_MODULES = [
    "ringmgr.cli.rings",
    "ringmgr.cli.ringset",
    "ringmgr.cli.ringview",
    "ringmgr.cli.converge",
    "ringmgr.cli.history",
    "ringmgr.cli.nodes",
    "ringmgr.cli.plans",
    "ringmgr.cli.disk",
    "ringmgr.cli.push",
    "ringmgr.cli.risk",
    "ringmgr.cli.destroy",
    "ringmgr.cli.compute",
    "ringmgr.cli.health",
    "ringmgr.cli.controller",
    "ringmgr.cli.partpower",
]

# command name -> its module: a run imports only the module of the command it runs
# (``ringmgr health`` does not load the ring commands); tests/unit/test_cli_lazy.py
# checks this against what each module registers
COMMANDS = {
    **dict.fromkeys(("add-node", "rebalance", "remove-device", "remove-node", "resume",
                     "rollback", "set-weight", "status", "write-rings"), "ringmgr.cli.rings"),
    **dict.fromkeys(("create", "set-info", "set-min-part-hours", "set-overload",
                     "set-region", "set-replicas", "set-zone"), "ringmgr.cli.ringset"),
    **dict.fromkeys(("diff", "dump", "import"), "ringmgr.cli.ringview"),
    **dict.fromkeys(("converge", "plan"), "ringmgr.cli.converge"),
    "history": "ringmgr.cli.history",
    **dict.fromkeys(("reboot-node", "rejoin-node", "shutdown-node"), "ringmgr.cli.nodes"),
    **dict.fromkeys(("apply", "drain-node", "simulate"), "ringmgr.cli.plans"),
    **dict.fromkeys(("drive-audit", "replace-disk"), "ringmgr.cli.disk"),
    **dict.fromkeys(("push", "verify"), "ringmgr.cli.push"),
    **dict.fromkeys(("failure-impact", "ok-to-stop"), "ringmgr.cli.risk"),
    "safe-to-destroy": "ringmgr.cli.destroy",
    "compute": "ringmgr.cli.compute",
    "health": "ringmgr.cli.health",
    **dict.fromkeys(("controller", "restore-order", "schedule"), "ringmgr.cli.controller"),
    "increase-part-power": "ringmgr.cli.partpower",
}

log = logging.getLogger("ringmgr")
_audit = logging.getLogger("ringmgr.audit")
_audit.propagate = False
_audit.addHandler(logging.NullHandler())


class RingmgrGroup(click.Group):
    """A group whose ``main`` maps exceptions to one-line messages and exit codes, and
    prints the one JSON envelope (``--json``) once the exit code is known."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._loaded: set[str] = set()

    # click's lazy group: a command's module is imported (and its commands given their
    # completion) when one of its commands is looked up; listing imports them all
    def get_command(self, ctx, name):
        if name not in self.commands and name in COMMANDS:
            self._load(COMMANDS[name])
        return super().get_command(ctx, name)

    def list_commands(self, ctx):
        for module in COMMAND_MODULES:
            self._load(module)
        return super().list_commands(ctx)

    def _load(self, module: str) -> None:
        if module in self._loaded:
            return
        self._loaded.add(module)
        scratch = click.Group(self.name)
        importlib.import_module(module).register(scratch)
        completion.attach(scratch)
        self.commands.update(scratch.commands)

    def main(self, args=None, prog_name="ringmgr", complete_var=None, **extra):
        # swift's ring module imports eventlet, whose green DNS costs a quarter second
        # at import and is of no use to ringmgr (it resolves nothing through eventlet)
        os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")
        args = list(sys.argv[1:] if args is None else args)
        app = extra.pop("obj", None) or App()   # a test may hand in its App (transport)
        app.argv = ["ringmgr", *args]
        previous = _on_sigterm_raise()
        # click's own shell completion: _RINGMGR_COMPLETE=bash_source ringmgr
        self._main_shell_completion({**extra, "obj": app}, prog_name, complete_var)
        try:
            with self.make_context(prog_name, list(args), obj=app, **extra) as ctx:
                rv = self.invoke(ctx)
            code = rv if isinstance(rv, int) else EXIT_OK
        except click.exceptions.Exit as e:  # --help, --version
            sys.exit(e.exit_code)
        except _NoArgsIsHelp as e:
            e.show()
            code = _fail(app, None, "no command given (`ringmgr --help` lists them)",
                         EXIT_ERROR, "usage", args, quiet=True)
        except click.exceptions.Abort:
            code = _fail(app, None, "aborted at the prompt; nothing was changed", EXIT_ERROR,
                         "aborted", args)
        except click.ClickException as e:
            hint = f" (see `{e.ctx.command_path} --help`)" if getattr(e, "ctx", None) else ""
            code = _fail(app, None, e.format_message() + hint, EXIT_ERROR, "usage", args)
        except RingmgrError as e:
            if getattr(e, "written", False):
                app.written = True  # partly installed: something was written
            code = _fail(app, e, str(e), e.exit_code, e.reason, args)
        except Terminated:
            code = _fail(app, None, "terminated (SIGTERM); if a ring change was being written, "
                                    "`ringmgr status` shows it and `ringmgr resume` finishes "
                                    "or undoes it", EXIT_ERROR, "aborted", args)
        except KeyboardInterrupt:
            code = _fail(app, None, "interrupted; if a ring change was being written, `ringmgr "
                                    "status` shows it and `ringmgr resume` finishes or undoes "
                                    "it", EXIT_ERROR, "aborted", args)
        except OSError as e:
            from ringmgr.rings.files import os_error_message

            code = _fail(app, e, os_error_message(e, "a file operation failed")
                         + _pending_hint(app), EXIT_ERROR, "failed", args)
        except Exception as e:  # a bug: say so in one line, traceback with RINGMGR_DEBUG=1
            code = _fail(app, e, f"internal error: {type(e).__name__}: {e} (set "
                                 f"RINGMGR_DEBUG=1 for the traceback)", EXIT_ERROR,
                         "internal_error", args)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        app.print_envelope(code)
        sys.exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every ``with`` and ``finally``
    unwinds (locks released, forked workers killed) instead of dying mid-step."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _on_sigterm_raise():
    """Install the SIGTERM handler (main thread only); return the previous one."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _pending_hint(app) -> str:
    """'; a ring change is pending: ...' when the error left one behind."""
    try:
        from ringmgr.rings.store import RingStore

        if RingStore.from_config(app.config).pending() is not None:
            return "; a ring change is pending: `ringmgr status` shows it, `ringmgr resume` " \
                   "finishes or undoes it"
    except Exception:
        pass
    return ""


_NoArgsIsHelp = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _fail(app: App, exc, message: str, code: int, reason: str, args, quiet=False) -> int:
    """Record an exception's outcome on ``app`` (the envelope shows it) and say it in one
    line on stderr; return the exit code."""
    if exc is not None and os.environ.get("RINGMGR_DEBUG"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    _audit.warning("exit %d: %s", code, message)
    if not app.json and "--json" in args[:args.index("--") if "--" in args else None]:
        app.json = True  # a usage error before click saw --json: still the envelope
    app.reason, app.message = reason, message
    if code == EXIT_ERROR:
        app.errors.append(message)
    elif code == EXIT_WARNING:
        app.warnings.append(message)
    if getattr(exc, "not_before", None) is not None:
        app.add_next(app.rerun(drop=()), exc.not_before)
    for command in getattr(exc, "next", ()):
        app.add_next(command)
    if code == EXIT_OK:
        app.out(message)
    elif not quiet:
        kind = "warning" if code == EXIT_WARNING else "error"
        click.echo(f"ringmgr: {kind}: {message}", err=True)
    return code


@click.group(cls=RingmgrGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", type=click.Path(dir_okay=False),
              help="ringmgr.toml (default: $RINGMGR_CONFIG, ./ringmgr.toml, "
                   "/etc/ringmgr/ringmgr.toml)")
@click.option("-v", "--verbose", count=True, help="more detail on stderr (-vv: every command)")
@json_option
@click.version_option(package_name="ringmgr")
@click.pass_context
def cli(ctx, config_path, verbose):
    """Manage an OpenStack Swift cluster's rings and storage nodes.

    Every change works on all rings at once, can be simulated first (--dry-run),
    asks before it writes (--yes to skip), and is recorded (ringmgr history).
    """
    app = ctx.ensure_object(App)
    app.config_path = config_path
    app.verbose = verbose
    app.setup_logging(ctx)




def main():
    cli.main()
