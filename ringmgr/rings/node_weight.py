"""A node's weight in every ring: the ring change host operations ask for
(replace-disk --weight-zero, drive-audit --act).

A thin wrapper over ``service.run_change`` so that every ring change, whoever asks for
it, is simulated, confirmed, locked, journaled and recorded the same way.  The ring
core writes builders and rings only: distributing them is the caller's (the ring
commands' after-write path, ``ops.weight_change`` for host operations).
"""

from __future__ import annotations

from ringmgr.rings.devices import node_devs
from ringmgr.rings.engine import plan_set_weight
from ringmgr.rings.service import ChangeResult, run_change
from ringmgr.rings.store import RingStore


def set_weight_all_rings(config, node, dev: str | None, weight: float, *, yes: bool,
                         seed: int | None = None, dry_run: bool = False,
                         confirm=None, show=None, argv=None) -> ChangeResult:
    """Set ``node``'s device ``dev`` (or all its devices) to ``weight`` in every ring.

    Idempotent: when every matching device already has ``weight``, nothing is written
    (a resumed operation may call it twice).  ``node`` is a config Node or a name.
    Without ``confirm`` and without ``yes`` the change is refused (nobody to ask).
    Nothing is pushed here.
    """
    from ringmgr.errors import Refused

    if isinstance(node, str):
        node = config.node(node)
    show = show or (lambda text: None)
    builders = RingStore.from_config(config).load_all()
    devs = [d for b in builders.values() for d in node_devs(b, node.ip, dev)]
    if devs and all(d["weight"] == weight for d in devs):
        show(f"{node.name}/{dev or '*'} already has weight {weight:g} in every ring")
        return ChangeResult(False, 0, {}, [f"already at weight {weight:g}"])

    def _confirm(question: str) -> None:
        if yes:
            return
        if confirm is None:
            raise Refused(f"{question} needs confirmation: re-run with --yes")
        confirm(question)

    return run_change(config, lambda b: plan_set_weight(b, node, dev, weight),
                      argv=argv or ["ringmgr", "set-weight", f"{node.name}/{dev or ''}",
                                    str(weight)],
                      seed=seed, dry_run=dry_run, confirm=_confirm, show=show)
