"""``[converge]`` of ringmgr.toml: the config is the desired state of the rings.

``max_move`` caps every step (percent of any ring's replica assignments), ``window``
says when converge may write (``"Mon-Fri 09:00-17:00"``, the admin host's time zone),
``pause_file`` stops it while the file exists, ``max_steps_per_day`` caps the steps in
any 24 hours.  Used by ``config.parse_config``; the window grammar is in
``ringmgr.rings.window``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONVERGE_KEYS = {"max_move": "number", "window": "string", "pause_file": "path",
                 "max_steps_per_day": "integer"}
DEFAULT_MAX_MOVE = 10.0


@dataclass(frozen=True)
class ConvergeConfig:
    max_move: float = DEFAULT_MAX_MOVE
    window: str | None = None
    pause_file: Path | None = None
    max_steps_per_day: int | None = None


def parse_converge(v, table) -> ConvergeConfig | None:
    """``[converge]`` -> ConvergeConfig, or None when the section is absent (then the
    imperative ring commands leave ringmgr.toml alone)."""
    if table is None:
        return None
    from ringmgr.rings.window import parse_window

    mm = table.get("max_move", DEFAULT_MAX_MOVE)
    if not 0 < mm <= 100:
        v.fail("converge.max_move", f"must be a percentage above 0 and at most 100, not {mm}")
    window = table.get("window")
    if window is not None:
        try:
            parse_window(window)
        except ValueError as e:
            v.fail("converge.window", str(e))
    steps = table.get("max_steps_per_day")
    if steps is not None and steps < 1:
        v.fail("converge.max_steps_per_day", f"must be at least 1, not {steps}")
    pause = v.path(table["pause_file"]) if "pause_file" in table else None
    return ConvergeConfig(float(mm), window, pause, steps)
