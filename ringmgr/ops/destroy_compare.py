"""Pure comparisons for safe-to-destroy: is what a device holds also on its primaries?

The same comparisons swift's replicators make (``swift/obj/replicator.py`` for suffix
hashes, ``swift/obj/reconstructor.py`` for fragments, ``swift/common/db_replicator.py``
``_in_sync`` for databases), applied strictly: anything that differs counts.
"""

from __future__ import annotations

import json


def differing_suffixes(local: dict, remote: dict) -> list[str]:
    """Suffixes of a replicated partition whose hash on the primary differs.

    >>> differing_suffixes({"9e9": "a", "0af": "b"}, {"9e9": "a"})
    ['0af']

    A suffix whose local hash is None (an empty directory) holds nothing to lose.
    """
    return sorted(s for s, h in local.items() if h is not None and remote.get(s) != h)


def ec_differences(local: dict, remote: dict, frag_index: int) -> tuple[bool, list[str]]:
    """For the primary meant to hold ``frag_index``: (was anything compared, suffixes
    that differ).  Suffixes holding that fragment compare it and the durable state;
    suffixes holding no fragment at all (tombstones, metadata only) compare the durable
    state with every primary; suffixes holding only other fragments are not this
    primary's business.

    >>> ec_differences({"9e9": {None: "t"}}, {"9e9": {None: "t"}}, 3)
    (True, [])
    """
    compared, out = False, []
    for suffix, sub in local.items():
        if not isinstance(sub, dict):
            continue
        fis = {fi for fi in sub if fi is not None}
        theirs = remote.get(suffix)
        theirs = theirs if isinstance(theirs, dict) else {}
        if frag_index in fis:
            compared = True
            if theirs.get(frag_index) != sub[frag_index] or theirs.get(None) != sub.get(None):
                out.append(suffix)
        elif not fis:
            compared = True
            if theirs.get(None) != sub.get(None):
                out.append(suffix)
    return compared, sorted(out)


def _metadata(raw) -> dict:
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def db_differences(local: dict, remote: dict | None) -> list[str]:
    """Why the primary's copy of a database is not (yet) a superset of the local one;
    empty when it is.

    Rows: the primary has merged every local row (its sync point for the local id
    reached the local max_row) or holds the same rows (equal hash), as ``_in_sync``
    decides.  Timestamps and metadata: the primary's are at least as new.
    """
    if remote is None:
        return ["missing on the primary"]
    why = []
    if not (remote.get("point", -1) >= local.get("max_row", -1)
            or remote.get("hash") == local.get("hash")):
        why.append(f"rows not merged (primary's sync point {remote.get('point', -1)}, local "
                   f"max row {local.get('max_row')})")
    for ts in ("put_timestamp", "delete_timestamp"):
        if str(remote.get(ts, "0")) < str(local.get(ts, "0")):
            why.append(f"older {ts} ({remote.get(ts)} < {local.get(ts)})")
    theirs = _metadata(remote.get("metadata"))
    for key, value in _metadata(local.get("metadata")).items():
        mine_ts = value[1] if isinstance(value, list) and len(value) > 1 else ""
        other = theirs.get(key)
        other_ts = other[1] if isinstance(other, list) and len(other) > 1 else None
        if other_ts is None or str(other_ts) < str(mine_ts):
            why.append(f"metadata {key} older or missing")
    return why
