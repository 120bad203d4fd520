"""Has a proxy loaded the new ring?  Ask swift's ``list_endpoints`` middleware.

Storage servers load no ring; a proxy re-reads a changed ring.gz at most
``reload_time`` after it changed, and nothing on disk says whether it did (recon's
ringmd5 is the md5 of the *file*).  The proxy's ``GET /endpoints/v2/<a>[/<c>[/<o>]]``
answers from the ring it has loaded.  So: pick a partition the change moved (the new
ring against the ring the proxy had before the push, found in ``backups/`` by its md5),
make up a name that hashes into it (swift's ``hash_path`` with the cluster's
``[swift-hash]`` prefix and suffix from swift.conf), and compare the proxy's answer with
the new ring's primaries for that partition.

Covered rings: account, container and object (policy 0: a name in a container that
does not exist is placed by policy 0), and each object-N ring named in
``[cluster].canary_containers``: list_endpoints takes an object's policy from its
container (the proxy's container info), so the probe names an object in an existing
container of policy N, and the answer's ``X-Backend-Storage-Policy-Index`` must be N.
Other object rings are confirmed by their md5.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MAX_TRIES = 4_000_000
PROBE = "ringmgr-canary"
CHECKED_RINGS = ("account", "container", "object")


def hash_conf(swift_conf: Path | None) -> tuple[bytes, bytes] | None:
    """swift.conf's ``[swift-hash]`` (prefix, suffix); None when it has neither."""
    if swift_conf is None:
        return None
    cp = configparser.RawConfigParser()
    try:
        cp.read_string(Path(swift_conf).read_text())
    except (OSError, configparser.Error):
        return None
    prefix = cp.get("swift-hash", "swift_hash_path_prefix", fallback="")
    suffix = cp.get("swift-hash", "swift_hash_path_suffix", fallback="")
    if not prefix and not suffix:
        return None
    return prefix.encode(), suffix.encode()


def partition_of(hashes: tuple[bytes, bytes], part_shift: int, *names: str) -> int:
    """swift's ``Ring.get_part``: md5(prefix + '/' + '/'.join(names) + suffix)."""
    prefix, suffix = hashes
    digest = hashlib.md5(prefix + b"/" + "/".join(names).encode() + suffix,
                         usedforsecurity=False).digest()
    return struct.unpack_from(">I", digest)[0] >> part_shift


def checked_rings(config) -> tuple[str, ...]:
    """The rings a canary proxy can be asked about (see the module docstring)."""
    return CHECKED_RINGS + tuple(sorted(config.cluster.canary_containers))


def policy_index(ring: str) -> int | None:
    """object -> 0, object-N -> N; None for account and container."""
    if ring == "object":
        return 0
    if ring.startswith("object-"):
        return int(ring.split("-", 1)[1])
    return None


def probe_names(ring: str, i: int, container: str | None = None) -> tuple[str, ...]:
    """The i-th made-up name for ``ring``: an account, a container or an object (in
    ``container``, ACCOUNT/CONTAINER, when given: object-N rings)."""
    if container is not None:
        account, cont = container.split("/", 1)
        return (account, cont, f"{PROBE}-o{i}")
    if ring == "account":
        return (f"{PROBE}-{i}",)
    if ring == "container":
        return (PROBE, f"c{i}")
    return (PROBE, PROBE, f"o{i}")


def find_probe(ring: str, part_shift: int, targets: set[int], hashes,
               limit: int = MAX_TRIES, container: str | None = None
               ) -> tuple[tuple[str, ...], int] | None:
    """A made-up name whose partition is in ``targets`` (and that partition)."""
    for i in range(limit):
        names = probe_names(ring, i, container)
        part = partition_of(hashes, part_shift, *names)
        if part in targets:
            return names, part
    return None


def primaries(ring, part: int) -> set[tuple[str, int, str]]:
    """(ip, port, device) of every primary of ``part`` in a swift RingData."""
    out = set()
    for row in ring._replica2part2dev_id:
        if part < len(row):
            d = ring.devs[row[part]]
            out.add((d["ip"], int(d["port"]), d["device"]))
    return out


def moved_partitions(old, new) -> set[int]:
    """Partitions whose primaries (ip, port, device) differ between two RingData."""
    import numpy as np

    def table(ring):
        keys = {}
        ids = np.array([keys.setdefault((d["ip"], d["port"], d["device"]), len(keys))
                        if d else -1 for d in ring.devs], dtype=np.int64)
        rows = [ids[np.frombuffer(r, dtype=r.typecode).astype(np.int64)]
                for r in ring._replica2part2dev_id]
        return keys, rows

    if old._part_shift != new._part_shift:
        return set(range(2 ** (32 - new._part_shift)))
    okeys, orows = table(old)
    nkeys, nrows = table(new)
    names = {v: k for k, v in okeys.items()}
    remap = np.array([nkeys.get(names[i], -2 - i) for i in range(len(okeys))] or [0],
                     dtype=np.int64)
    parts = 2 ** (32 - new._part_shift)
    moved = np.zeros(parts, dtype=bool)
    o = np.full((len(orows), parts), -1, dtype=np.int64)
    n = np.full((len(nrows), parts), -1, dtype=np.int64)
    for i, r in enumerate(orows):
        o[i, :len(r)] = remap[r]
    for i, r in enumerate(nrows):
        n[i, :len(r)] = r
    o.sort(axis=0)
    n.sort(axis=0)
    if o.shape == n.shape:
        moved |= (o != n).any(axis=0)
    else:
        moved[:] = True
    return set(np.flatnonzero(moved).tolist())


def parse_endpoints(body: bytes) -> set[tuple[str, int, str, int]]:
    """A v2 answer -> {(ip, port, device, partition)}.

    Sample: ``{"endpoints": ["http://127.0.5.3:16200/sdb/27/AUTH_test/c/o"],
    "headers": {"X-Backend-Storage-Policy-Index": "0"}}``.
    """
    return parse_answer(body)[0]


def parse_answer(body: bytes) -> tuple[set[tuple[str, int, str, int]], int | None]:
    """A v2 answer -> (endpoints as ``parse_endpoints``, the storage policy index of an
    object's answer; None for accounts and containers)."""
    from urllib.parse import urlsplit

    doc = json.loads(body)
    out = set()
    for url in doc["endpoints"]:
        u = urlsplit(url)
        dev, part = u.path.lstrip("/").split("/")[:2]
        out.add((u.hostname, int(u.port), dev, int(part)))
    index = (doc.get("headers") or {}).get("X-Backend-Storage-Policy-Index")
    return out, None if index is None else int(index)


@dataclass
class EndpointCheck:
    proxy: str
    ring: str
    ok: bool
    path: str = ""
    partition: int | None = None
    moved: bool = False            # the partition is one the change moved
    expected: list = field(default_factory=list)
    answered: list = field(default_factory=list)
    detail: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


def ask(endpoints_url: str, names: tuple[str, ...], timeout: float) -> bytes:
    from urllib.parse import quote

    url = endpoints_url.rstrip("/") + "/v2/" + "/".join(quote(n, safe="") for n in names)
    req = urllib.request.Request(url, headers={"User-Agent": "ringmgr push --canary"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def check_proxy(proxy_name: str, endpoints_url: str, ring: str, new, old, hashes,
                timeout: float = 10.0, container: str | None = None) -> EndpointCheck:
    """Does the proxy place a name of a partition the change moved as ``new`` does?
    (object-N rings: a name in ``container``, which must be of policy N.)"""
    targets = moved_partitions(old, new) if old is not None else set()
    moved = bool(targets)
    if not targets:
        targets = set(range(2 ** (32 - new._part_shift)))
    found = find_probe(ring, new._part_shift, targets, hashes, container=container)
    if found is None:
        return EndpointCheck(proxy_name, ring, False, detail="no probe name found")
    names, part = found
    want = {(ip, port, dev, part) for ip, port, dev in primaries(new, part)}
    path = "/".join(names)
    check = EndpointCheck(proxy_name, ring, False, path, part, moved,
                          expected=sorted(f"{i}:{p}/{d}" for i, p, d, _ in want))
    try:
        got, index = parse_answer(ask(endpoints_url, names, timeout))
    except urllib.error.HTTPError as e:
        check.detail = f"{endpoints_url} answered {e.code} (is list_endpoints in its pipeline?)"
        return check
    except (OSError, ValueError, KeyError, IndexError) as e:
        check.detail = f"{endpoints_url}: {getattr(e, 'reason', None) or e}"
        return check
    check.answered = sorted(f"{i}:{p}/{d}" + ("" if pt == part else f" (partition {pt})")
                            for i, p, d, pt in got)
    want_index = policy_index(ring)
    if want_index and index != want_index:
        check.detail = (f"the proxy places objects of {container} by storage policy "
                        f"{index}, not {want_index} (the {ring} ring): is {container} a "
                        f"container of policy {want_index}? (create it with "
                        f"X-Storage-Policy, or fix [cluster].canary_containers)")
        return check
    check.ok = got == want
    if not check.ok:
        check.detail = (f"the proxy places {path} on {', '.join(check.answered)}; the new "
                        f"ring on {', '.join(check.expected)}: it still routes by the old "
                        f"ring")
    return check
