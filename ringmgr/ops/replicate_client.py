"""The REPLICATE requests swift's own replicators make, as a small client.

Object servers answer ``REPLICATE /<dev>/<part>`` with a pickled dict of suffix hashes
(``swift/obj/server.py``, ``swift/obj/diskfile.py`` ``get_hashes``): suffix -> md5 of
the files kept there (replicated policies), or suffix -> {fragment index: md5, None:
md5 of the durable state} (erasure coded).  ``REPLICATE /<dev>/<part>/<s1>-<s2>`` only
marks those suffixes dirty (swift >= 2.34 answers nothing then); the next plain request
rehashes them.  Rehashing what the cache says is exact: a file removed behind swift's
back (no ``hashes.invalid`` entry) is seen.

Account and container servers answer ``REPLICATE /<dev>/<part>/<hash>`` with a JSON body
``["sync", point, hash, id, created_at, put_timestamp, delete_timestamp, metadata]``
(``swift/common/db_replicator.py``, ``ReplicatorRpc.sync``) with their replication info
and ``point``, their incoming sync point for ``id``.  The arguments sent here are chosen
so that the answer changes nothing on the server: no metadata, a sync point of -1 (no
sync table entry is merged) and timestamps that ``merge_timestamps`` (SQL MIN/MAX)
leaves as they are.

Plain ``http.client``, as swift's ``bufferedhttp`` is: one connection per request.
"""

from __future__ import annotations

import http.client
import io
import json
import pickle
import socket
from dataclasses import dataclass
from urllib.parse import quote

TIMEOUT = 10.0
MAX_SUFFIXES_PER_REQUEST = 400   # ~1,600 characters of path
# merge_timestamps keeps MIN(created_at) and MAX(put/delete): these leave them alone
_NO_CHANGE_TIMESTAMPS = ("9999999999.99999", "0", "0")


class ReplicateError(Exception):
    """The server could not answer: unreachable, timed out, 507 or an error page."""

    def __init__(self, target: str, why: str):
        super().__init__(f"{target}: {why}")
        self.target = target
        self.why = why


@dataclass(frozen=True)
class Target:
    """Where to send REPLICATE for one device: its replication address."""

    ip: str
    port: int
    device: str
    label: str = ""          # node/device, for messages

    def __str__(self) -> str:
        return f"{self.label or self.device} ({self.ip}:{self.port})"


class _DataOnly(pickle.Unpickler):
    """Suffix hashes are dicts of str/int/None: refuse every global (a pickle from the
    network must not run code)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the answer")


def parse_hashes(body: bytes) -> dict:
    """Unpickle an object server's REPLICATE answer (data only).

    Sample (replicated): ``{'9e9': 'd41d8cd98f00b204e9800998ecf8427e'}``; (EC):
    ``{'9e9': {None: 'aa..', 2: 'bb..'}}``.
    """
    hashes = _DataOnly(io.BytesIO(body)).load()
    if not isinstance(hashes, dict):
        raise ValueError(f"not a dict of suffix hashes: {type(hashes).__name__}")
    return hashes


def _request(target: Target, path: str, *, body: bytes = b"", headers: dict | None = None,
             timeout: float = TIMEOUT) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(target.ip, target.port, timeout=timeout)
    try:
        conn.request("REPLICATE", quote(path), body=body,
                     headers={"User-Agent": "ringmgr safe-to-destroy", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except socket.timeout:
        raise ReplicateError(str(target), f"no answer within {timeout:g}s") from None
    except (OSError, http.client.HTTPException) as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise ReplicateError(str(target), f"unreachable ({why})") from None
    finally:
        conn.close()


def unreachable(target: Target, timeout: float = TIMEOUT) -> str | None:
    """Why a TCP connection to ``target``'s server fails (None: it accepts one)."""
    try:
        socket.create_connection((target.ip, target.port), timeout=timeout).close()
    except socket.timeout:
        return f"no connection within {timeout:g}s"
    except OSError as e:
        return e.strerror or str(e) or type(e).__name__
    return None


def own_server_down(node: str, kind: str, local: Target, timeout: float,
                    seen: dict) -> str | None:
    """Why a device's own ``kind`` server cannot be asked (None: it can), for
    safe-to-destroy; each address is tried once per run (``seen``)."""
    key = (local.ip, local.port)
    if key not in seen:
        why = unreachable(local, timeout)
        seen[key] = why and (f"{node}'s {kind} server {local.ip}:{local.port} does not "
                             f"answer ({why}): what its devices hold cannot be compared "
                             f"with their primaries while the node's servers are down "
                             f"(start them and check again)")
    return seen[key]


def _check(target: Target, status: int, body: bytes, what: str) -> None:
    if status == 507:
        raise ReplicateError(str(target), f"device {target.device} is not mounted (507)")
    if not 200 <= status < 300:
        text = body[:120].decode("utf-8", "replace").strip().replace("\n", " ")
        raise ReplicateError(str(target), f"{what} answered {status}: {text!r}")


def object_hashes(target: Target, part: int, policy_index: int,
                  rehash: list[str] = (), timeout: float = TIMEOUT) -> dict:
    """The suffix hashes of ``part`` on ``target``, the suffixes in ``rehash`` freshly
    computed (marked dirty first, then read)."""
    headers = {"X-Backend-Storage-Policy-Index": str(policy_index)}
    base = f"/{target.device}/{part}"
    rehash = sorted(rehash)
    for i in range(0, len(rehash), MAX_SUFFIXES_PER_REQUEST):
        chunk = "-".join(rehash[i:i + MAX_SUFFIXES_PER_REQUEST])
        status, body = _request(target, f"{base}/{chunk}", headers=headers, timeout=timeout)
        _check(target, status, body, "REPLICATE (invalidate)")
    status, body = _request(target, base, headers=headers, timeout=timeout)
    _check(target, status, body, "REPLICATE")
    try:
        return parse_hashes(body)
    except (pickle.UnpicklingError, ValueError, EOFError, TypeError) as e:
        raise ReplicateError(str(target), f"REPLICATE answer is not suffix hashes: {e}") \
            from None


def db_info(target: Target, part: int, db_hash: str, local_id: str,
            timeout: float = TIMEOUT) -> dict | None:
    """The replication info of database ``db_hash`` in ``part`` on ``target`` (None: it
    has no such database), with ``point``: its incoming sync point for ``local_id``.

    Sample answer: ``{"hash": "5a1..", "max_row": 3, "point": 3, "id": "4f0..",
    "created_at": "1796192863.31971", "put_timestamp": "...", "delete_timestamp": "0",
    "metadata": "", ...}``.
    """
    args = ["sync", -1, "", local_id, *_NO_CHANGE_TIMESTAMPS, ""]
    status, body = _request(target, f"/{target.device}/{part}/{db_hash}",
                            body=json.dumps(args).encode(),
                            headers={"Content-Type": "application/json"}, timeout=timeout)
    if status == 404:
        return None
    _check(target, status, body, "REPLICATE sync")
    try:
        info = json.loads(body)
        if not isinstance(info, dict) or "hash" not in info or "max_row" not in info:
            raise ValueError("no hash or max_row")
        return info
    except ValueError as e:
        raise ReplicateError(str(target), f"REPLICATE sync answer is not replication "
                                          f"info: {e}") from None
