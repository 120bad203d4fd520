"""The ringmgr(1) man page, generated from the click commands (their help texts and
options), so that it cannot drift from ``--help``.

The page is shipped in the package (``ringmgr/man/ringmgr.1``); regenerate it after a
change to any command with ``python3 -m ringmgr.cli.manpage --write``.  A test checks
the shipped page is what this generator makes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

PAGE = Path(__file__).resolve().parent.parent / "man" / "ringmgr.1"

_SECTIONS = """\
.SH EXIT STATUS
Exit codes follow swift\\-ring\\-builder.
.TP
.B 0
done; nothing left to note (also: nothing to do, e.g. every ring.gz already current).
.TP
.B 1
a warning: the change was written but something remains (balance not yet good, a further
step due at a stated time), or nothing could be done yet (the min_part_hours gate), or a
check found something (rings differ, failing disks, not safe to stop).
.TP
.B 2
an error: bad input, refused, or a failed step; nothing was left half\\-changed; the message
says what to do.
.SH JSON
With
.BR \\-\\-json ,
stdout carries one JSON document: the envelope
.RB ( written ", " exit_code ", " reason ", " message ", " warnings ", " errors ", " next )
and then the command's own keys; stderr carries only progress, prompts, warnings and
errors.  The
.B reason
codes and the JSON Schema files are described in the project's docs/json.md and
docs/schema/.
.SH ENVIRONMENT
.TP
.B RINGMGR_CONFIG
the ringmgr.toml to use when \\-\\-config is not given.
.TP
.B RINGMGR_LOG
the audit log (default ~/.local/state/ringmgr/ringmgr.log): every invocation and every
command ringmgr runs.
.TP
.B RINGMGR_DEBUG
set to 1 for the traceback of an internal error.
.TP
.B _RINGMGR_COMPLETE
shell completion (click's):
.B eval \\(dq$(_RINGMGR_COMPLETE=bash_source ringmgr)\\(dq
in ~/.bashrc (zsh_source, fish_source for the other shells).  Node and device names
complete from the config.
.SH FILES
.TP
.I ./ringmgr.toml, /etc/ringmgr/ringmgr.toml
the configuration, when neither \\-\\-config nor RINGMGR_CONFIG names one.
.TP
.I <builder_dir>/.ringmgr/history.jsonl, pushes.jsonl
the history of changes, and where each was pushed
.RB ( "ringmgr history" ).
.SH SEE ALSO
.BR swift\\-ring\\-builder (1)
"""


def _esc(text: str) -> str:
    """roff-safe text: backslashes, and a leading dot or quote on a line."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line
                     for line in text.split("\n"))


def _paragraphs(help_text: str) -> list[str]:
    paras = [p.strip() for p in (help_text or "").split("\n\n")]
    return [" ".join(p.split()) for p in paras if p]


def _options(cmd: click.Command, ctx: click.Context) -> list[str]:
    out = []
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        opts, help_ = record
        out += [".TP", f".B {_esc(opts)}", _esc(" ".join(help_.split()) or " ")]
    return out


def _commands(group: click.Group, parent: click.Context, prefix=()):
    for name in sorted(group.list_commands(parent)):
        cmd = group.get_command(parent, name)
        if cmd is None or cmd.hidden:
            continue
        ctx = click.Context(cmd, info_name=name, parent=parent, **cmd.context_settings)
        path = (*prefix, name)
        if not isinstance(cmd, click.Group) or cmd.invoke_without_command:
            yield path, cmd, ctx
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, ctx, path)


def render(cli: click.Group, version: str) -> str:
    root = click.Context(cli, info_name="ringmgr", **cli.context_settings)
    lines = [f'.TH RINGMGR 1 "" "ringmgr {version}" "User Commands"',
             ".SH NAME", "ringmgr \\- run an OpenStack Swift cluster's rings and storage nodes",
             ".SH SYNOPSIS",
             ".B ringmgr",
             "[\\-\\-config PATH] [\\-v] [\\-\\-json] COMMAND [ARGS]...",
             ".SH DESCRIPTION"]
    for p in _paragraphs(cli.help):
        lines += [_esc(p), ".PP"]
    lines += [".SH GLOBAL OPTIONS", *_options(cli, root), ".SH COMMANDS"]
    for path, cmd, ctx in _commands(cli, root):
        usage = " ".join(cmd.collect_usage_pieces(ctx))
        lines += [f'.SS "ringmgr {_esc(" ".join(path))} {_esc(usage)}"']
        for i, p in enumerate(_paragraphs(cmd.help)):
            lines += ([".PP"] if i else []) + [_esc(p)]
        lines += _options(cmd, ctx)
    return "\n".join(lines) + "\n" + _SECTIONS


def _version() -> str:
    """The version in the source tree's pyproject.toml (where the page is generated),
    else the installed package's."""
    pyproject = PAGE.parents[2] / "pyproject.toml"
    if pyproject.exists():
        import tomllib

        return tomllib.loads(pyproject.read_text())["project"]["version"]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ringmgr")
    except PackageNotFoundError:
        return "unknown"


def generate() -> str:
    from ringmgr.cli.main import cli

    return render(cli, _version())


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = generate()
    if argv == ["--write"]:
        PAGE.parent.mkdir(exist_ok=True)
        PAGE.write_text(text)
        print(f"wrote {PAGE}")
    elif argv:
        print("usage: python3 -m ringmgr.cli.manpage [--write]", file=sys.stderr)
        return 2
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
