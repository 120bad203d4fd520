"""``ok-to-stop --max``: the largest subset of candidate nodes that can stop together
without any partition of any ring falling below its write quorum or becoming
unreadable (the rule of ``ringmgr.rings.risk``).

Per partition and candidate, ``count[p, c]`` is the number of the partition's
reachable, distinct primaries on candidate ``c``; ``spare[p]`` how many it can lose
(reachable minus the quorum, and minus what a read needs).  A subset S is safe when
``sum(count[p, c] for c in S) <= spare[p]`` for every partition.  Partitions that
touch the same candidates the same way are one constraint (the tightest spare
kept), so a ring of millions of partitions gives a few hundred constraints.

- up to ``EXACT_MAX`` (16) candidates: every subset is checked (a bitmask per
  subset, all constraints at once with numpy), so the answer is a largest safe set;
- beyond: greedy, as Ceph's ``ok-to-stop --max``: candidates in the given order,
  each added when the set stays safe.

Tie-break (exact search): among the largest safe subsets, the one with the most
replicas left to spare (the largest minimum of ``spare - used`` over the touched
partitions), then the earliest in the given order (lexicographic on positions).
A partition already short before anything stops forbids stopping any candidate
that holds it.
"""

from __future__ import annotations

from ringmgr.rings.policies import policy_for_ring
from ringmgr.rings.report import replica_rows
from ringmgr.rings.risk import DownSet, _shortfall, down_mask

EXACT_MAX = 16


PER_WORD = 16   # candidates per 64-bit key word: 4 bits each (up to 15 primaries)


def constraints(builders: dict, policies: dict, candidates: list[str], down: DownSet,
                quorum: str = "swift"):
    """(matrix[u, k], spare[u]): one row per distinct way a partition touches the
    candidate ips (``candidates``, in order).

    A partition's key holds, 4 bits per candidate, how many of its reachable, distinct
    primaries are on that candidate; 16 candidates fill a 64-bit word, more take more
    words.  The key is summed row by row from a per-device table (0 for a device that
    is down or not on a candidate), one gather per replica row."""
    import numpy as np

    k = len(candidates)
    words = max(1, -(-k // PER_WORD))
    index = {ip: i for i, ip in enumerate(candidates)}
    keys_all, spares = [], []
    for ring, builder in builders.items():
        policy = policy_for_ring(policies, ring)
        nrep, up, units, q, _, _, _ = _shortfall(builder, policy, down, quorum)
        spare = np.minimum(up - q, units - policy.read_minimum()).astype(np.int64)
        spare = np.maximum(spare, 0)
        mask = down_mask(builder, down)
        size = len(mask)
        # by device id, plus one slot (``size``) for entries naming no device
        val = np.zeros((words, size + 1), dtype=np.uint64)
        for i, dev in enumerate(builder.devs):
            if dev is not None and dev["ip"] in index and not mask[i]:
                c = index[dev["ip"]]
                val[c // PER_WORD, i] = np.uint64(1) << np.uint64(4 * (c % PER_WORD))
        key = np.zeros((words, builder.parts), dtype=np.uint64)
        rows = replica_rows(builder)
        for r, row in enumerate(rows):
            add = val[:, np.minimum(row, size)]
            for prev in rows[:r]:   # a device twice in one partition counts once
                n = min(len(row), len(prev))
                add[:, :n][:, row[:n] == prev[:n]] = 0
            key[:, :len(row)] += add
        touched = (key != 0).any(axis=0)
        if not touched.any():
            continue
        keys, sp = key[:, touched], spare[touched]
        order = np.argsort(keys[0]) if words == 1 else np.lexsort(keys[::-1])
        keys, sp = keys[:, order], sp[order]
        starts = np.flatnonzero(np.r_[True, (keys[:, 1:] != keys[:, :-1]).any(axis=0)])
        keys_all.append(keys[:, starts])
        spares.append(np.minimum.reduceat(sp, starts))
    if not keys_all:
        return np.zeros((0, k), dtype=np.int64), np.zeros(0, dtype=np.int64)
    keys = np.concatenate(keys_all, axis=1)
    spare = np.concatenate(spares)
    pos = np.arange(k)
    shifts = (4 * (pos % PER_WORD)).astype(np.uint64)
    matrix = ((keys[pos // PER_WORD].T >> shifts[None, :]) & np.uint64(15)).astype(np.int64)
    return matrix, spare


def _feasible(subset_masks, matrix, spare, k):
    """(feasible bool[n], margin int[n]) for each subset bitmask."""
    import numpy as np

    bits = ((subset_masks[:, None] >> np.arange(k)[None, :]) & 1).astype(np.int64)
    used = bits @ matrix.T                       # subsets x constraints
    left = spare[None, :] - used
    ok = (left >= 0).all(axis=1)
    touched = used > 0
    big = np.iinfo(np.int64).max
    margin = np.where(touched, left, big).min(axis=1) if matrix.shape[0] else \
        np.full(len(subset_masks), big)
    return ok, margin


def largest_subset(matrix, spare, k: int) -> tuple[list[int], str]:
    """Candidate positions of a largest safe subset, and the method used."""
    import numpy as np

    if k == 0:
        return [], "exact"
    if k > EXACT_MAX:
        chosen: list[int] = []
        used = np.zeros(len(spare), dtype=np.int64)
        for c in range(k):
            if (used + matrix[:, c] <= spare).all():
                chosen.append(c)
                used += matrix[:, c]
        return chosen, "greedy"
    best = None  # ((size, margin, earliness), mask)
    total = 1 << k
    chunk = 1 << 12
    for lo in range(0, total, chunk):
        masks = np.arange(lo, min(total, lo + chunk), dtype=np.int64)
        ok, margin = _feasible(masks, matrix, spare, k)
        if not ok.any():
            continue
        m, mg = masks[ok], margin[ok]
        bits = (m[:, None] >> np.arange(k)[None, :]) & 1
        size = bits.sum(axis=1)
        # earliness: bit c weighs 2**(k-1-c), so among equal sizes the subset with the
        # earliest candidates (lexicographically first positions) is largest
        early = (bits << (k - 1 - np.arange(k))[None, :]).sum(axis=1)
        i = np.lexsort((early, mg, size))[-1]
        cand = (int(size[i]), int(mg[i]), int(early[i]))
        if best is None or cand > best[0]:
            best = (cand, int(m[i]))
    if best is None:
        return [], "exact"
    return [c for c in range(k) if best[1] >> c & 1], "exact"


def max_stop(builders: dict, policies: dict, candidates: list[str], down: DownSet,
             quorum: str = "swift") -> dict:
    """The largest safe subset of ``candidates`` (ips, in the order given)."""
    matrix, spare = constraints(builders, policies, candidates, down, quorum)
    chosen, method = largest_subset(matrix, spare, len(candidates))
    return {"stop": [candidates[i] for i in chosen], "method": method,
            "constraints": int(len(spare)),
            "tie_break": ("most replicas left to spare, then the earliest candidates in "
                          "the order given" if method == "exact" else
                          "candidates taken in the order given, each kept if still safe")}
