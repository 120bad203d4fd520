"""The man page: generated from the click commands, shipped in the package, current."""

import shutil
import subprocess
import sys

import pytest

from ringmgr.cli import manpage
from ringmgr.cli.main import cli
from tests.helpers.json_schema import leaf_commands

ROOT = manpage.PAGE.parents[2]


def test_the_shipped_page_is_what_the_generator_makes():
    assert manpage.PAGE.read_text() == manpage.generate(), (
        "ringmgr/man/ringmgr.1 is out of date: python3 -m ringmgr.cli.manpage --write")


def test_the_page_lists_every_command_with_its_options():
    text = manpage.PAGE.read_text()
    headings = [line for line in text.splitlines() if line.startswith(".SS ")]
    for path in leaf_commands(cli):
        name = "ringmgr " + " ".join(path)
        assert any(h.startswith(f'.SS "{name.replace("-", chr(92) + "-")} ') for h in
                   headings), name
    assert "\\-\\-max\\-move" in text and "\\-\\-brief" in text and "_RINGMGR_COMPLETE" in text


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff not installed")
def test_groff_renders_it_without_warnings():
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(manpage.PAGE)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.slow
def test_the_installed_package_contains_the_page(tmp_path):
    """pip installs the page with the package (package-data), as it ships."""
    src = tmp_path / "src"  # a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", ".hypothesis", "__pycache__", "tests", "benchmarks"))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-compile", "--target", str(tmp_path / "site"), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    installed = tmp_path / "site" / "ringmgr" / "man" / "ringmgr.1"
    assert installed.read_text() == manpage.PAGE.read_text()
