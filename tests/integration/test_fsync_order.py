"""The order of fsync and rename calls of a real ringmgr process, read with strace.

A SIGKILL cannot tell a write that was fsynced from one that was not (the page cache
survives it), so the fault tests cannot see a dropped fsync.  Power loss can: a
rename that reaches the disk before its file's data leaves an empty builder, and a
rename whose directory is never fsynced may be undone.  This test runs ``ringmgr
remove-node`` under ``strace -f -y`` (every descriptor printed with its path) and
checks, for the changed builder:

1. the atomic writer (``rings/files.py``): ``fsync(temp file)``, then
   ``rename(temp file, txn/object.builder)``, then ``fsync(txn/)`` before any other
   file is fsynced, renamed or linked;
2. the journal naming the staged files is in place (renamed, ``txn/`` fsynced) before
   the first rename into builder_dir;
3. the commit (``rings/txn.py``): ``rename(txn/object.builder, object.builder)``, then
   ``fsync(builder_dir)`` before the history is written.

Dropping any one of these calls, or swapping two, fails it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.ringfactory import make_cluster

SYSCALLS = "fsync,fdatasync,rename,renameat,renameat2,link,linkat"
LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<call>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+)")
FD_PATH = re.compile(r"^\d+<(?P<path>.*)>$")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Call:
    pid: int
    call: str            # fsync | rename | link (the *at variants folded in)
    paths: tuple[str, ...]


def parse_strace(text: str) -> list[Call]:
    """Successful calls from ``strace -f -y`` output, e.g.
    ``21483 fsync(5</tmp/r/.ringmgr/txn/.ringmgr-tmp.object.builder.3vw2>) = 0`` and
    ``21483 rename("/tmp/r/.ringmgr/txn/object.builder", "/tmp/r/object.builder") = 0``
    (``renameat(AT_FDCWD</cwd>, "a", AT_FDCWD</cwd>, "b")`` gives the same Call)."""
    calls = []
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or m["ret"] != "0":
            continue
        name, args = m["call"], m["args"]
        if name in ("fsync", "fdatasync"):
            fd = FD_PATH.match(args.strip())
            if fd:
                calls.append(Call(int(m["pid"]), "fsync", (fd["path"],)))
        elif name.startswith(("rename", "link")):
            quoted = QUOTED.findall(args)
            if len(quoted) >= 2:
                kind = "rename" if name.startswith("rename") else "link"
                calls.append(Call(int(m["pid"]), kind, tuple(quoted[-2:])))
    return calls


def test_parse_strace_reads_the_three_kinds():
    text = ('7 fsync(5</r/.ringmgr-tmp.x>) = 0\n'
            '7 renameat2(AT_FDCWD</r>, "/r/.t", AT_FDCWD</r>, "/r/x", RENAME_NOREPLACE) = 0\n'
            '7 rename("/r/a", "/r/b") = -1 ENOENT (No such file or directory)\n'
            '8 linkat(AT_FDCWD</r>, "/r/.t", AT_FDCWD</r>, "/r/y", 0) = 0\n')
    assert parse_strace(text) == [Call(7, "fsync", ("/r/.ringmgr-tmp.x",)),
                                  Call(7, "rename", ("/r/.t", "/r/x")),
                                  Call(8, "link", ("/r/.t", "/r/y"))]


def traced_remove_node(tmp_path: Path) -> tuple[list[Call], Path]:
    if shutil.which("strace") is None:
        pytest.fail("this test needs strace (scripts/apt-packages.txt)")
    c = make_cluster(tmp_path, rings=("object",), min_part_hours=0)
    out = tmp_path / "strace.txt"
    env = dict(os.environ, RINGMGR_LOG=str(tmp_path / "audit.log"))
    env.pop("RINGMGR_TEST_FAULT", None)
    p = subprocess.run(["strace", "-f", "-qq", "-y", "-e", f"trace={SYSCALLS}",
                        "-e", "signal=none", "-o", str(out),
                        "ringmgr", "--config", str(c.config), "remove-node", "s03", "--yes"],
                       capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert p.returncode in (0, 1), p.stderr          # 1: written, with a warning
    assert "written: change #1" in p.stderr, p.stderr
    return parse_strace(out.read_text()), c.builder_dir


def index(calls, call, *paths, start=0):
    for i in range(start, len(calls)):
        if calls[i].call == call and calls[i].paths == paths:
            return i
    raise AssertionError(f"no {call}{paths} after call {start} in:\n" + "\n".join(
        f"  {k}: {c.call} {' '.join(c.paths)}" for k, c in enumerate(calls)))


def test_builder_write_fsyncs_file_then_renames_then_fsyncs_directory(tmp_path):
    calls, bdir = traced_remove_node(tmp_path)
    pids = {c.pid for c in calls
            if c.call == "rename" and c.paths[1] == str(bdir / "object.builder")}
    assert len(pids) == 1, calls                         # one process commits
    calls = [c for c in calls if c.pid in pids]
    txn = bdir / ".ringmgr" / "txn"
    staged = str(txn / "object.builder")

    # 1. the atomic writer: fsync(temp) -> rename(temp, staged) -> fsync(txn/) next
    stage = index(calls, "rename", *next(c.paths for c in calls
                                         if c.call == "rename" and c.paths[1] == staged))
    tmp = calls[stage].paths[0]
    assert Path(tmp).name.startswith(".ringmgr-tmp.object.builder."), tmp
    assert index(calls, "fsync", tmp) < stage, "the temp file is not fsynced before its rename"
    assert calls[stage + 1] == Call(calls[stage].pid, "fsync", (str(txn),)), \
        f"the next call after the rename is {calls[stage + 1]}, not fsync({txn})"

    # 2. the journal is durable before anything in builder_dir is replaced
    commit = index(calls, "rename", staged, str(bdir / "object.builder"), start=stage)
    journal = [i for i, c in enumerate(calls[:commit])
               if c.call == "rename" and c.paths[1] == str(txn / "journal.json")]
    assert journal, "no journal renamed into txn/ before the commit"
    assert index(calls, "fsync", str(txn), start=journal[-1]) < commit

    # 3. the commit: rename into builder_dir -> fsync(builder_dir) before the history
    synced = index(calls, "fsync", str(bdir), start=commit)
    history = [i for i, c in enumerate(calls) if c.call == "rename"
               and c.paths[1] == str(bdir / ".ringmgr" / "history.jsonl")]
    assert history and synced < history[0], "builder_dir not fsynced before the history"
