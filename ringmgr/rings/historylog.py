"""``.ringmgr/history.jsonl``: one change record per line, never a line skipped silently.

The file is replaced atomically on every append (read, add the line, write a new
file, rename), so a crash leaves the old history or the new one, never a torn line.
A line that is not a change record (not JSON, no id, an id seen twice, cut short) is
damage: it is reported with its line number, and ids and rollback refuse to work
past it (they could reuse an id or restore the wrong state) until ``repair`` sets the
damaged lines aside.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ringmgr.errors import BuilderError
from ringmgr.rings.files import atomic_write, read_regular

MAX_HISTORY_BYTES = 1 << 28


class HistoryDamaged(BuilderError):
    """history.jsonl has lines that are not change records: ids and rollback refuse."""


class HistoryLog:
    def __init__(self, path: Path, set_aside_dir: Path, clock=time.time):
        self.path = Path(path)
        self.set_aside_dir = Path(set_aside_dir)
        self.clock = clock

    def _raw_lines(self) -> tuple[list[bytes], bool]:
        """(lines, complete): complete is False when the last line has no newline."""
        raw = read_regular(self.path, what="history file", limit=MAX_HISTORY_BYTES)
        lines = raw.split(b"\n")
        complete = not lines or lines[-1] == b""
        if lines and lines[-1] == b"":
            lines.pop()
        return lines, complete

    def read(self) -> tuple[list[dict], list[tuple[int, str]]]:
        """(records, damage): damage lists (line number, why)."""
        try:
            lines, complete = self._raw_lines()
        except FileNotFoundError:
            return [], []
        records: list[dict] = []
        damage: list[tuple[int, str]] = []
        seen: set[int] = set()
        for n, line in enumerate(lines, 1):
            if not complete and n == len(lines):
                damage.append((n, "the last line is incomplete (no newline)"))
                continue
            if not line.strip():
                continue
            why = record_problem(line, seen)
            if why:
                damage.append((n, why))
            else:
                rec = json.loads(line)
                seen.add(rec["id"])
                records.append(rec)
        return records, damage

    def records(self) -> list[dict]:
        """Every change record; HistoryDamaged when a line is not one."""
        records, damage = self.read()
        if damage:
            raise HistoryDamaged(self.damage_message(damage))
        return records

    def damage_message(self, damage: list[tuple[int, str]]) -> str:
        where = ", ".join(f"line {n} ({why})" for n, why in damage[:3])
        more = f" and {len(damage) - 3} more" if len(damage) > 3 else ""
        return (f"{self.path} is damaged: {where}{more}; rollback and new changes refuse "
                f"until it is repaired: `ringmgr history --repair` sets the damaged lines "
                f"aside")

    def repair(self) -> list[tuple[int, str]]:
        """Move damaged lines to ``<set-aside>/<time>.history-damaged``; keep the rest.
        Call locked.  Returns what was set aside."""
        _, damage = self.read()
        if not damage:
            return []
        lines, _ = self._raw_lines()
        bad = {n for n, _ in damage}
        keep = [ln for n, ln in enumerate(lines, 1) if n not in bad and ln.strip()]
        gone = [f"line {n}: ".encode() + lines[n - 1] for n in sorted(bad)]
        self.set_aside_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.set_aside_dir / f"{int(self.clock())}.history-damaged",
                     b"\n".join(gone) + b"\n", replace=False)
        atomic_write(self.path, b"".join(ln + b"\n" for ln in keep))
        return damage

    def next_id(self) -> int:
        return max((r["id"] for r in self.records()), default=0) + 1

    def append(self, record: dict) -> None:
        """Add ``record``: the whole file is replaced atomically."""
        try:
            old = read_regular(self.path, what="history file", limit=MAX_HISTORY_BYTES)
        except FileNotFoundError:
            old = b""
        if old and not old.endswith(b"\n"):
            raise HistoryDamaged(self.damage_message(
                [(old.count(b"\n") + 1, "the last line is incomplete (no newline)")]))
        line = json.dumps(record, sort_keys=True) + "\n"
        atomic_write(self.path, old + line.encode())


def record_problem(line: bytes, seen: set[int]) -> str | None:
    """Why ``line`` is not a change record (None when it is one)."""
    try:
        rec = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return "not valid JSON"
    if not isinstance(rec, dict):
        return "not a change record"
    rid = rec.get("id")
    if not isinstance(rid, int) or isinstance(rid, bool) or rid < 1:
        return "no change id"
    if rid in seen:
        return f"change id {rid} appears twice"
    if not isinstance(rec.get("time"), (int, float)) or not isinstance(rec.get("rings"), dict):
        return f"change #{rid} lacks its time or rings"
    return None
