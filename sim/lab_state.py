"""The lab's state directory: ``lab.json`` (the :class:`~sim.lab_configs.Lab` it runs),
the node lookup, and the progress line every lab command writes to stderr."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sim import lab_configs as cfg
from sim.lab_procs import LabError

DEFAULT_STATE = "/tmp/ringmgr-lab"


def say(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def save_lab(lab: cfg.Lab) -> None:
    tmp = Path(lab.state, ".lab.json.tmp")
    tmp.write_text(lab.to_json())
    os.replace(tmp, Path(lab.state, "lab.json"))


def load_lab(state: str) -> cfg.Lab:
    try:
        return cfg.Lab.from_json(Path(state, "lab.json").read_text())
    except FileNotFoundError:
        raise LabError(f"no lab in {state} (sim/lab up --state {state})")


def find_node(lab: cfg.Lab, name: str) -> cfg.LabNode:
    for node in lab.nodes:
        if node.name == name:
            return node
    raise LabError(f"no node {name!r} in the lab (nodes: "
                   f"{', '.join(n.name for n in lab.nodes)})")
