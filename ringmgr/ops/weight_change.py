"""A weight change a host operation makes, then its push: the host side's after-write.

The ring core (``rings.node_weight``) only writes; a host operation that changes a
weight (drive-audit --act; replace-disk --weight-zero with ``push=False``, which
pushes through its own steps) distributes the rings here, right after the write.
"""

from __future__ import annotations

from ringmgr.rings.node_weight import set_weight_all_rings as _set_weight
from ringmgr.rings.service import ChangeResult


def set_weight_all_rings(config, node, dev: str | None, weight: float, *, yes: bool,
                         seed: int | None = None, dry_run: bool = False,
                         confirm=None, show=None, argv=None,
                         push: bool | None = None, transport=None) -> ChangeResult:
    """``rings.node_weight.set_weight_all_rings``, then, after a written change, the
    push when ``push`` (default ``[cluster].push``).  A failed push is reported through
    ``show``, not raised: the ring change itself stands and `ringmgr push` retries.
    ``transport``: how the push reaches the hosts (the CLI's; None: the configured)."""
    show = show or (lambda text: None)
    result = _set_weight(config, node, dev, weight, yes=yes, seed=seed, dry_run=dry_run,
                         confirm=confirm, show=show, argv=argv)
    if result.written and (config.cluster.push if push is None else push):
        from ringmgr.ops.push import push_rings

        report = push_rings(config, transport=transport)
        show(report.render_table())
        if not report.ok:
            show(f"warning: the push failed on {', '.join(report.failed)}: run "
                 f"`{report.retry_command()}`")
    return result
