"""``run_cli``: ringmgr in-process through click's CliRunner, the one way CLI tests run
a command without a subprocess (the JSON-schema check in tests/conftest.py sees every
``--json`` report it produces)."""

from __future__ import annotations

import os

from click.testing import CliRunner, Result


def run_cli(config, *args: str, **kw) -> Result:
    """``ringmgr --config CONFIG ARGS...``; ``config`` is a Cluster (its ``.config``), a
    path, or None for no ``--config``.  ``kw`` goes to ``CliRunner.invoke`` (``input``,
    ``env``, ``prog_name``...)."""
    from ringmgr.cli.main import cli

    if config is None:
        argv = list(args)
    else:
        path = getattr(config, "config", config)
        argv = ["--config", os.fspath(path), *args]
    return CliRunner().invoke(cli, argv, **kw)
