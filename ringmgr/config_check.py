"""Checking ringmgr.toml values: the kinds a key may have, and the validator that
raises a ConfigError naming the file and the dotted key (``nodes.s01.mount_root: ...``)
for every unknown key, wrong kind or unsafe value."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from ringmgr.errors import ConfigError

STR = "string"
INT = "integer"
NUM = "number"
BOOL = "boolean"
PATH = "path"
STRLIST = "list of strings"
WEIGHTS = "table of device = weight"
DEVICES = "table of device = weight (or {weight = ..., ...})"
STRMAP = "table of name = string"
INTMAP = "table of name = integer"
NUMMAP = "table of name = number"

# What may reach a node's commands and its fstab (see check_node_values): no whitespace,
# quotes, "#" or shell characters, so nothing can add an fstab line or an option.
_PATH_RE = re.compile(r"^/[A-Za-z0-9._+@:,=/-]*$")
NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_ID = r"(?:[A-Za-z_][A-Za-z0-9._-]*\$?|[0-9]+)"
_OWNER_RE = re.compile(rf"^{_ID}(?::{_ID})?$")
_OPTION = r"[A-Za-z0-9._=:/+@-]+"
MOUNT_OPTIONS_RE = re.compile(rf"^{_OPTION}(?:,{_OPTION})*$")
MKFS_OPTION_RE = re.compile(r"^[A-Za-z0-9._=:/+@,-]+$")


class Validator:
    def __init__(self, path: Path):
        self.file = path

    def fail(self, key: str, why: str):
        raise ConfigError(f"{self.file}: {key}: {why}")

    def keys(self, key: str, table, allowed: dict[str, str]) -> None:
        """``table`` is a table whose keys are all in ``allowed``, each of its kind."""
        self.table(key, table)
        for k, val in table.items():
            if k not in allowed:
                self.fail(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(allowed))})")
            self.check(f"{key}.{k}", val, allowed[k])

    def table(self, key: str, value):
        if not isinstance(value, dict):
            self.fail(key, f"must be a table, not {tname(value)}")

    def port(self, key: str, value) -> None:
        if value is not None and not 1 <= value <= 65535:
            self.fail(key, f"must be a TCP port (1-65535), not {value}")

    def node_path(self, key: str, value: str) -> None:
        """An absolute, normalised path on a node, of plain characters only."""
        if not value.startswith("/"):
            self.fail(key, f"must be an absolute path (it is a path on the node), "
                           f"not {value!r}")
        if not _PATH_RE.fullmatch(value):
            self.fail(key, f"{value!r} has characters outside [A-Za-z0-9._+@:,=/-] (no "
                           f"spaces, newlines, quotes or '#')")
        if any(part in (".", "..") for part in value.split("/")) or "//" in value:
            self.fail(key, f"{value!r} is not normalised (no '.', '..' or '//')")

    def owner(self, key: str, value: str) -> None:
        if not _OWNER_RE.fullmatch(value):
            self.fail(key, f"must be user or user:group (names or numeric ids), "
                           f"not {value!r}")

    def path(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.file.parent / p).resolve()

    def check(self, key: str, value, kind: str):
        ok = {
            STR: lambda x: isinstance(x, str),
            PATH: lambda x: isinstance(x, str) and x != "",
            INT: lambda x: isinstance(x, int) and not isinstance(x, bool),
            NUM: is_number,
            BOOL: lambda x: isinstance(x, bool),
            STRLIST: lambda x: isinstance(x, list) and all(isinstance(i, str) for i in x),
            STRMAP: lambda x: isinstance(x, dict) and all(isinstance(i, str) for i in x.values()),
            INTMAP: lambda x: isinstance(x, dict) and all(
                isinstance(i, int) and not isinstance(i, bool) for i in x.values()),
            NUMMAP: lambda x: isinstance(x, dict) and all(is_number(i) for i in x.values()),
        }.get(kind)
        if kind == WEIGHTS:
            if not isinstance(value, dict):
                self.fail(key, f"must be {article(kind)}, not {tname(value)}")
            for dev, w in value.items():
                if not is_number(w):
                    self.fail(f"{key}.{dev}", f"weight must be a finite number, not {w!r}"
                              if isinstance(w, float) else
                              f"weight must be a number, not {tname(w)}")
                if w < 0:
                    self.fail(f"{key}.{dev}", f"weight must not be negative ({w})")
            return
        if kind.startswith(("table of ring", "table of device = weight (")):
            self.table(key, value)  # config_rings checks the entries
            return
        if ok is not None and not ok(value):
            if kind == NUM and isinstance(value, float):
                self.fail(key, f"must be a finite number, not {value!r}")
            if kind == PATH and value == "":
                self.fail(key, "must be a path, not an empty string")
            self.fail(key, f"must be {article(kind)}, not {tname(value)}")
        if kind in (INT, NUM) and value < 0:
            self.fail(key, f"must not be negative ({value})")


def is_number(x) -> bool:
    """An int or a finite float (TOML allows inf and nan; 1e309 parses as inf)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def article(kind: str) -> str:
    """'an integer', 'a string': the kind with its article."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def tname(value) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
