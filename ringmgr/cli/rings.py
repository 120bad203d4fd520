"""Ring commands: status, remove-node, remove-device, set-weight, add-node, rebalance."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    pass
