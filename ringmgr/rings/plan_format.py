"""What makes a plan file safe to read: builders as data, and a keyed seal.

Builders in builder_dir are pickles by swift's design (``RingBuilder.save``); a plan
file travels (a ticket, a review, a colleague's home directory), so it holds no
pickle.  A builder's ``to_dict()`` is written as JSON, with what JSON lacks tagged:
``{"$t": "array", "typecode", "itemsize", "byteorder", "data": base64}`` for the
assignment arrays, ``{"$t": "tuple", "v": [...]}`` and ``{"$t": "dict", "items":
[[k, v], ...]}`` for the dispersion graph's tuple keys.  Decoding builds only plain
values, lists, dicts, tuples and arrays of the typecodes swift uses, and checks the
result has a builder's shape.

The plan is sealed with HMAC-SHA256 under a secret kept in builder_dir
(``.ringmgr/plan.key``: 32 random bytes, mode 0600, created new on first use, never
through an existing name).  ``key_id`` (a hash of the key) tells a plan made for
another cluster from one edited after saving.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import json
import os
import stat
import sys
import tempfile
from array import array
from pathlib import Path

KEY_FILE = "plan.key"
TYPECODES = frozenset("BHIL")
BUILDER_KEYS = {"part_power", "next_part_power", "replicas", "min_part_hours", "parts",
                "devs", "devs_changed", "dev_id_bytes", "version", "overload",
                "_replica2part2dev", "_last_part_moves_epoch", "_last_part_moves",
                "_last_part_gather_start", "_dispersion_graph", "dispersion",
                "_remove_devs", "id"}
REQUIRED = {"part_power", "replicas", "min_part_hours", "parts", "devs", "devs_changed",
            "version", "_replica2part2dev", "_last_part_moves_epoch", "_last_part_moves",
            "_last_part_gather_start", "_remove_devs"}


class BadData(ValueError):
    """Not a builder's data (the caller names the ring and the file)."""


# -- builders as data -------------------------------------------------------------

def encode(o):
    """A builder's ``to_dict()`` (or any part of it) as JSON-able data."""
    if o is None or isinstance(o, (bool, int, float, str)):
        return o
    if isinstance(o, list):
        return [encode(x) for x in o]
    if isinstance(o, tuple):
        return {"$t": "tuple", "v": [encode(x) for x in o]}
    if isinstance(o, array):
        return {"$t": "array", "typecode": o.typecode, "itemsize": o.itemsize,
                "byteorder": sys.byteorder, "data": base64.b64encode(o.tobytes()).decode()}
    if isinstance(o, dict):
        if all(isinstance(k, str) for k in o) and "$t" not in o:
            return {k: encode(v) for k, v in o.items()}
        return {"$t": "dict", "items": [[encode(k), encode(v)] for k, v in o.items()]}
    raise BadData(f"a builder holds a {type(o).__name__}, which a plan cannot carry")


def decode(o):
    """The inverse of ``encode``; BadData for anything it would not have written."""
    if o is None or isinstance(o, (bool, int, float, str)):
        return o
    if isinstance(o, list):
        return [decode(x) for x in o]
    if not isinstance(o, dict):
        raise BadData(f"unexpected {type(o).__name__}")
    tag = o.get("$t")
    if tag is None:
        return {k: decode(v) for k, v in o.items()}
    if tag == "tuple" and isinstance(o.get("v"), list):
        return tuple(decode(x) for x in o["v"])
    if tag == "dict" and isinstance(o.get("items"), list):
        out = {}
        for item in o["items"]:
            if not (isinstance(item, list) and len(item) == 2):
                raise BadData("bad dict item")
            key = decode(item[0])
            try:
                out[key] = decode(item[1])
            except TypeError:
                raise BadData("unhashable dict key") from None
        return out
    if tag == "array":
        return _decode_array(o)
    raise BadData(f"unknown tag {str(tag)[:20]!r}")


def _decode_array(o) -> array:
    code = o.get("typecode")
    if code not in TYPECODES or not isinstance(o.get("data"), str):
        raise BadData(f"array of typecode {str(code)[:5]!r}")
    a = array(code)
    if o.get("itemsize") != a.itemsize or o.get("byteorder") not in ("little", "big"):
        raise BadData(f"array of {o.get('itemsize')!r}-byte items ({o.get('byteorder')!r})")
    try:
        raw = base64.b64decode(o["data"], validate=True)
    except ValueError:
        raise BadData("array data is not base64") from None
    if len(raw) % a.itemsize:
        raise BadData("array data is not a whole number of items")
    a.frombytes(raw)
    if o["byteorder"] != sys.byteorder:
        a.byteswap()
    return a


def builder_dict(data) -> dict:
    """Decode one builder and check it has a builder's shape."""
    d = decode(data)
    if not isinstance(d, dict) or not REQUIRED <= set(d) or not set(d) <= BUILDER_KEYS:
        raise BadData("not a builder's fields")
    ints = ("part_power", "min_part_hours", "parts", "version", "_last_part_moves_epoch")
    if not all(isinstance(d[k], int) and not isinstance(d[k], bool) for k in ints):
        raise BadData("non-integer builder field")
    if not (isinstance(d["replicas"], (int, float)) and isinstance(d["devs"], list)
            and all(x is None or isinstance(x, dict) for x in d["devs"])
            and isinstance(d["_replica2part2dev"], list)
            and all(isinstance(x, array) for x in d["_replica2part2dev"])
            and isinstance(d["_last_part_moves"], (array, type(None)))
            and isinstance(d["_remove_devs"], list)):
        raise BadData("builder fields of the wrong type")
    return d


# -- the seal ---------------------------------------------------------------------

class PlanKeyError(ValueError):
    """The plan key cannot be used (the message says why and what to do)."""


def plan_key(state_dir, create: bool = False) -> bytes:
    """builder_dir's plan key (``state_dir`` is builder_dir/.ringmgr); made on first
    use when ``create``."""
    path = Path(state_dir) / KEY_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        if not create:
            raise PlanKeyError(f"{path} does not exist: no plan was ever made for this "
                               f"cluster's builder_dir") from None
        return _make_key(path)
    except OSError as e:
        why = "not a regular file (a symlink)" if e.errno == errno.ELOOP else e.strerror
        raise PlanKeyError(f"cannot read the plan key {path}: {why}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PlanKeyError(f"the plan key {path} is not a regular file; move it away")
        if st.st_mode & 0o077 or st.st_uid not in (0, os.geteuid()):
            raise PlanKeyError(f"the plan key {path} (mode {stat.S_IMODE(st.st_mode):04o}, "
                               f"uid {st.st_uid}) can be read by others, so plans could be "
                               f"forged: chmod 600 {path} (and chown it to the ring "
                               f"admin), then make the plan again")
        key = os.read(fd, 4096)
    finally:
        os.close(fd)
    if len(key) < 32:
        raise PlanKeyError(f"the plan key {path} is too short ({len(key)} bytes); move "
                           f"it away (a new one is made with the next --plan-out)")
    return key


def _make_key(path: Path) -> bytes:
    """32 random bytes, 0600, in place at once: written to a new temp file (O_EXCL,
    O_NOFOLLOW), then linked to its name (link never replaces or follows)."""
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{KEY_FILE}.", dir=path.parent)
    except OSError as e:
        raise PlanKeyError(f"cannot create the plan key {path}: {e.strerror}") from None
    key = os.urandom(32)
    try:
        os.write(fd, key)
        os.fsync(fd)
        os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:            # made meanwhile by another ringmgr
            return plan_key(path.parent)
    finally:
        os.unlink(tmp)
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"ringmgr plan key id\0" + key).hexdigest()[:16]


def canonical(body) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def seal(body, key: bytes) -> dict:
    """The fields a plan document carries to prove it was made here, unchanged."""
    return {"key_id": key_id(key),
            "hmac": hmac.new(key, canonical(body), hashlib.sha256).hexdigest()}


def check_seal(doc: dict, key: bytes) -> str | None:
    """None when ``doc`` was sealed with ``key`` and not changed since; else
    ``"other-key"`` or ``"changed"``."""
    if doc.get("key_id") != key_id(key):
        return "other-key"
    want = hmac.new(key, canonical(doc.get("body")), hashlib.sha256).hexdigest()
    got = doc.get("hmac")
    if not isinstance(got, str) or not hmac.compare_digest(want, got):
        return "changed"
    return None
