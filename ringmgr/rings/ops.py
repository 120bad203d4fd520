"""Ring changes other operations call (replace-disk --weight-zero, drive-audit --act).

Thin wrappers over ``service.run_change`` so that every ring change, whoever asks for
it, is simulated, confirmed, locked, journaled and recorded the same way.
"""

from __future__ import annotations

from ringmgr.rings.engine import plan_set_weight
from ringmgr.rings.service import ChangeResult, run_change


def set_weight_all_rings(config, node, dev: str | None, weight: float, *, yes: bool,
                         seed: int | None = None, dry_run: bool = False,
                         confirm=None, show=None, argv=None) -> ChangeResult:
    """Set ``node``'s device ``dev`` (or all its devices) to ``weight`` in every ring.

    ``node`` is a config Node or a node name.  Without ``confirm`` and without ``yes``
    the change is refused (there is nobody to ask).
    """
    from ringmgr.errors import Refused

    if isinstance(node, str):
        node = config.node(node)

    def _confirm(question: str) -> None:
        if yes:
            return
        if confirm is None:
            raise Refused(f"{question} needs confirmation: re-run with --yes")
        confirm(question)

    return run_change(config, lambda b: plan_set_weight(b, node, dev, weight),
                      argv=argv or ["ringmgr", "set-weight", f"{node.name}/{dev or ''}",
                                    str(weight)],
                      seed=seed, dry_run=dry_run, confirm=_confirm,
                      show=show or (lambda text: None))
