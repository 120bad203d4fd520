"""ringmgr.toml's ``transport`` key through the CLI: a name no transport has is bad
input (one line, exit 2, reason ``config``), refused before anything is read or
written; a known one is accepted."""

import json

import pytest

from tests.helpers.checksums import checksums
from tests.helpers.cli import run_cli
from tests.helpers.refusal import one_line_error


def set_transport(cluster, where: str, name: str) -> None:
    text = cluster.config.read_text()
    section = f"[{where}]\n"
    if section in text:
        text = text.replace(section, f'{section}transport = "{name}"\n', 1)
    else:
        text += f'\n{section}transport = "{name}"\n'
    cluster.config.write_text(text)


@pytest.mark.parametrize("where, key", [("nodes.s02", "nodes.s02.transport"),
                                        ("defaults", "defaults.transport")])
@pytest.mark.parametrize("argv", [("status",), ("set-weight", "s01/sdb", "50", "--yes"),
                                  ("push", "--dry-run")])
def test_unknown_transport_is_refused_in_one_line_and_changes_nothing(cluster, where, key,
                                                                      argv):
    set_transport(cluster, where, "kubctl")
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster, *argv)
    assert r.exit_code == 2, r.output
    one_line_error(r.output, f"{key}: unknown transport 'kubctl'", "known: local, ssh",
                   str(cluster.config))
    assert checksums(cluster.builder_dir) == before
    r = run_cli(cluster, "--json", *argv)
    assert r.exit_code == 2
    assert json.loads(r.stdout)["reason"] == "config"
    assert checksums(cluster.builder_dir) == before


def test_a_known_transport_is_accepted(cluster):
    set_transport(cluster, "nodes.s02", "ssh")
    r = run_cli(cluster, "status")
    assert r.exit_code == 0, r.output
