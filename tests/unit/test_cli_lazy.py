"""The command modules are imported on demand: the name map in ringmgr.cli.main is
what the modules register, and a run imports only its own command's module."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import click

from ringmgr.cli.main import COMMAND_MODULES, COMMANDS, cli

REPO = Path(__file__).resolve().parents[2]


def test_the_name_map_is_what_each_module_registers():
    for module in COMMAND_MODULES:
        g = click.Group("x")
        importlib.import_module(module).register(g)
        assert sorted(g.commands) == sorted(n for n, m in COMMANDS.items() if m == module)
    assert set(COMMANDS.values()) == set(COMMAND_MODULES)
    assert cli.list_commands(None) == sorted(COMMANDS)
    assert cli.get_command(None, "nosuch") is None


def test_a_run_imports_only_its_commands_module():
    code = ("import sys\nfrom ringmgr.cli.main import cli\n"
            "try:\n    cli.main(['health', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('ringmgr.cli.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True)
    loaded = eval(r.stdout.strip().splitlines()[-1])
    commands = {m for m in loaded if m in COMMAND_MODULES}
    assert commands == {"ringmgr.cli.health"}, loaded


def test_completion_reaches_lazily_loaded_commands():
    param = next(p for p in cli.get_command(None, "drain-node").params if p.name == "node")
    assert getattr(param, "_custom_shell_complete", None) is not None
