"""Node side of safe-to-destroy: what a device still holds (standard library only).

Shipped as source over SSH (like ``push_node.py``) and run with the node's python3.
It only lists directories; it reads no file and changes nothing.

Argument: ``{"root": "/srv/node", "devices": ["sdb"]}``.  Prints one JSON line::

    {"devices": {"sdb": {"exists": true, "mount": true, "entries": 5,
      "objects": {"objects": {"17": ["9e9"]}, "objects-1": {}},
      "dbs": {"accounts": {"27": ["6d78...25e9"]}, "containers": {}},
      "async_pending": {"async_pending": 0}, "error": null}}}
"""

import json
import os
import re
import sys

_SUFFIX = re.compile(r"^[0-9a-f]{3}$")
_HASH = re.compile(r"^[0-9a-f]{32}$")


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _is_dir(path):
    return os.path.isdir(path) and not os.path.islink(path)


def _parts(datadir):
    return [p for p in _listdir(datadir) if p.isdigit() and _is_dir(os.path.join(datadir, p))]


def objects(datadir):
    """partition -> suffix directories (each holds object hash directories)."""
    out = {}
    for part in _parts(datadir):
        pdir = os.path.join(datadir, part)
        out[part] = [s for s in _listdir(pdir)
                     if _SUFFIX.match(s) and _is_dir(os.path.join(pdir, s))]
    return out


def dbs(datadir):
    """partition -> database hashes (``<part>/<suffix>/<hash>/<hash>.db``)."""
    out = {}
    for part in _parts(datadir):
        pdir = os.path.join(datadir, part)
        found = []
        for suffix in _listdir(pdir):
            sdir = os.path.join(pdir, suffix)
            if not _is_dir(sdir):
                continue
            for h in _listdir(sdir):
                if _HASH.match(h) and os.path.exists(os.path.join(sdir, h, h + ".db")):
                    found.append(h)
        out[part] = found
    return out


def count_files(path):
    n = 0
    for _dirpath, _dirs, files in os.walk(path):
        n += len(files)
    return n


def device(root, name):
    path = os.path.join(root, name)
    d = {"exists": _is_dir(path), "mount": os.path.ismount(path), "entries": 0,
         "objects": {}, "dbs": {}, "async_pending": {}, "error": None}
    if not d["exists"]:
        return d
    try:
        names = _listdir(path)
        d["entries"] = len(names)
        for n in names:
            full = os.path.join(path, n)
            if not _is_dir(full):
                continue
            if n == "objects" or n.startswith("objects-"):
                d["objects"][n] = objects(full)
            elif n in ("accounts", "containers"):
                d["dbs"][n] = dbs(full)
            elif n == "async_pending" or n.startswith("async_pending-"):
                d["async_pending"][n] = count_files(full)
    except OSError as e:
        d["error"] = "%s: %s" % (getattr(e, "filename", path), e.strerror)
    return d


def main():
    a = json.loads(sys.argv[1])
    out = {"devices": {name: device(a["root"], name) for name in a["devices"]}}
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
