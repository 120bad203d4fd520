"""The published JSON Schemas (docs/schema/) and the click command tree, for the tests
that check every command's --json report against its schema."""

from __future__ import annotations

import json
from pathlib import Path

import click

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"


def schema_name(path: tuple[str, ...]) -> str:
    """("compute", "evacuate") -> "compute-evacuate" (the schema file's stem)."""
    return "-".join(path)


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[tuple, click.Command]:
    """Every command a user can run with --json: leaves, and groups that run on their own
    (``invoke_without_command``, e.g. history)."""
    out = {}
    for name in group.list_commands(None):
        cmd = group.get_command(None, name)
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            if cmd.invoke_without_command:
                out[path] = cmd
            out.update(leaf_commands(cmd, path))
        else:
            out[path] = cmd
    return out


def registry():
    from referencing import Registry, Resource

    resources = [(p.name, Resource.from_contents(json.loads(p.read_text())))
                 for p in sorted(SCHEMA_DIR.glob("*.json"))]
    return Registry().with_resources(resources)


def validator(name: str):
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    return Draft202012Validator(schema, registry=registry(), format_checker=FormatChecker())


def errors(name: str, doc) -> list[str]:
    """What is wrong with ``doc`` as the --json report of command ``name`` ([] if valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in validator(name).iter_errors(doc)]


def command_of(argv: list[str], cli) -> tuple[str, ...]:
    """The command path an argv ran (``ringmgr --config c history show 3`` -> history show)."""
    path: list[str] = []
    node = cli
    args = list(argv[1:])
    while args:
        a = args.pop(0)
        if a == "--config":
            args = args[1:]
            continue
        if a.startswith("-"):
            continue
        if isinstance(node, click.Group) and node.get_command(None, a) is not None:
            path.append(a)
            node = node.get_command(None, a)
            continue
        break
    return tuple(path)


def schema_for(path: tuple[str, ...], cli) -> str:
    """The schema a run of ``path`` must match: the command's, or the bare envelope for
    a group that cannot run on its own (``ringmgr compute --bogus``)."""
    node = cli
    for p in path:
        node = node.get_command(None, p)
    if not path or (isinstance(node, click.Group) and not node.invoke_without_command):
        return "envelope"
    return schema_name(path)
