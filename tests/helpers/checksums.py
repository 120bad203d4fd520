"""Checksums that prove a refused or dry-run command changed nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def md5_of(path) -> str:
    """md5 of one file's bytes."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def checksums(directory: Path) -> dict[str, str]:
    """md5 of every file below ``directory``, except swift's empty ``.lock`` file (taking
    the directory lock creates it; it holds no data) and the plan key (the first
    --plan-out creates it; tests/cli/test_plan_security.py checks it)."""
    return {str(p.relative_to(directory)): md5_of(p)
            for p in sorted(Path(directory).rglob("*"))
            if p.is_file() and p.name not in (".lock", "plan.key")}


def flat_checksums(directory) -> dict[str, str]:
    """name -> md5 of every file directly in ``directory`` (hidden temp files included,
    nothing excluded): what a node's swift_dir holds after a push."""
    return {p: md5_of(os.path.join(directory, p)) for p in sorted(os.listdir(directory))
            if os.path.isfile(os.path.join(directory, p))}
