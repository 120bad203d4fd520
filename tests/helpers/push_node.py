"""push's node script driven in-process: a swift_dir with old rings and new rings on
the admin side (``node``), the request the admin would send for them (``request``), and
``serve`` (the node's ``serve_apply`` on that directory's descriptor)."""

from __future__ import annotations

import hashlib
import os

import pytest

from ringmgr.ops import push_node
from tests.integration.test_push import make_rings


@pytest.fixture
def node(tmp_path):
    """A swift_dir with old rings, and new rings on the 'admin' side."""
    d = tmp_path / "swift"
    make_rings(d, changes=0)
    new = tmp_path / "admin"
    make_rings(new, changes=1)
    return d, new


def request(d, new, names=("object",), token="t0ken"):
    files, data = [], b""
    for n in names:
        raw = (new / f"{n}.ring.gz").read_bytes()
        files.append({"name": f"{n}.ring.gz", "tmp": f".{n}.ring.gz.ringmgr-{token}.tmp",
                      "md5": hashlib.md5(raw).hexdigest(), "size": len(raw),
                      "version": push_node.ring_bytes_info(raw)["version"], "force": False})
        data += raw
    return {"dir": str(d), "owner": "root:root", "files": files, "stream": True}, data


def serve(d, req, stream):
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return push_node.serve_apply(dfd, req, stream)
    finally:
        os.close(dfd)
