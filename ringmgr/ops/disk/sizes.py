"""Is the new disk big enough?  The old disk's size and the ring weights say.

Read-only facts (``peer_sizes``) and pure rules (``weight_suggested_sizes``,
``size_warnings``); replace-disk's swap step warns with them.
"""

from __future__ import annotations

from ringmgr.ops import facts

SIZE_TOLERANCE = 0.05  # disks sold as the same size differ by a few MB between vendors


def peer_sizes(ctx) -> dict[str, list[tuple[float, int]]]:
    """ring -> [(weight, size in bytes)] of NODE's other ring devices the node can see.

    Read-only: one ``realpath`` and one ``lsblk`` for all of them (lsblk skips the
    paths that do not exist and still prints the others).
    """
    from ringmgr.rings.devices import ring_devices

    by_dev = {d: rings for d, rings in ring_devices(ctx.config, ctx.node).items()
              if d != ctx.dev}
    if not by_dev:
        return {}
    names = sorted(by_dev)
    paths = [ctx.node.block_device(d) for d in names]
    r = ctx.q("realpath", "-m", "--", *paths)
    real = r.stdout.splitlines() if r.ok else []
    if len(real) != len(paths):
        real = paths
    r = ctx.q("lsblk", "-J", "-b", "-o", facts.LSBLK_COLUMNS, "--", *real)
    try:
        size_of = {b.path: b.size for b in facts.parse_lsblk(r.stdout)}
    except ValueError:
        return {}
    out: dict[str, list[tuple[float, int]]] = {}
    for name, path in zip(names, real):
        if size_of.get(path):
            for ring, d in by_dev[name].items():
                out.setdefault(ring, []).append((d["weight"], size_of[path]))
    return out


def weight_suggested_sizes(own: dict[str, float], peers: dict[str, list[tuple[float, int]]],
                           old_size: int | None = None) -> dict[str, int]:
    """ring -> the size in bytes DEV's weight suggests, where weights follow sizes.

    Pure.  Weights are commonly the size in GB or TB (or any unit per byte), but not
    always (some clusters give every disk 100).  So a ring's weight says something
    about the size only when the node's other devices in that ring (and the old disk,
    when its size is known) show one weight-per-byte ratio, within SIZE_TOLERANCE.
    Rings where DEV's weight is 0 or no other device's size is known are left out.

    >>> TB = 10**12
    >>> weight_suggested_sizes({"object": 4000.0}, {"object": [(4000.0, 4 * TB)]})
    {'object': 4000000000000}
    >>> weight_suggested_sizes({"object": 100.0}, {"object": [(100.0, 4 * TB), (100.0, 8 * TB)]})
    {}
    """
    out = {}
    for ring, weight in own.items():
        points = [(w, size) for w, size in peers.get(ring, []) if w > 0 and size > 0]
        if weight <= 0 or not points:
            continue
        if old_size:
            points.append((weight, old_size))
        ratios = [w / size for w, size in points]
        mean = sum(ratios) / len(ratios)
        if any(abs(r - mean) > mean * SIZE_TOLERANCE for r in ratios):
            continue
        out[ring] = round(weight / mean)
    return out


def size_warnings(new_size: int, old_size: int | None, expected: dict[str, int]) -> list[str]:
    """Pure: the warnings about a new disk smaller than the old one or than its weight."""
    out = []
    if old_size and new_size < old_size:
        out.append(f"the new disk ({new_size / 1e9:.1f} GB) is smaller than the one it "
                   f"replaces ({old_size / 1e9:.1f} GB); lower its ring weight to match "
                   f"(`ringmgr set-weight`)")
    short = {r: e for r, e in sorted(expected.items()) if new_size < e * (1 - SIZE_TOLERANCE)}
    if short:
        what = ", ".join(f"{r} ~{e / 1e9:.1f} GB" for r, e in short.items())
        out.append(f"the new disk ({new_size / 1e9:.1f} GB) is smaller than its ring weight "
                   f"suggests ({what}, going by the weights and sizes of the node's other "
                   f"disks); lower its weight to match (`ringmgr set-weight`), or it fills "
                   f"up before the others")
    return out
