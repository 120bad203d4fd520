"""A history entry's replay (``ringmgr history --json``: each ring's ``replay``) run by
the real swift-ring-builder on a copy of the builder it started from."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def replay_with_swift(cluster, entry: dict, tmp_path: Path) -> dict[str, Path]:
    """Replay every ring of ``entry`` in tmp_path/replay-RING/ (each command exits 0, or
    1 for swift's warnings) and check the ring.gz swift wrote there is the cluster's to
    the byte.  Returns ring -> the replayed builder, for the caller to compare."""
    out = {}
    for ring, rec in entry["rings"].items():
        replay = rec["replay"]
        work = tmp_path / f"replay-{ring}"
        work.mkdir()
        copy = work / f"{ring}.builder"
        shutil.copy(cluster.builder_dir / replay["from"], copy)
        for argv in replay["commands"]:
            p = subprocess.run([str(copy) if a == "{builder}" else a for a in argv],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
            assert p.returncode in (0, 1), (argv, p.stdout, p.stderr)
        assert (work / f"{ring}.ring.gz").read_bytes() == \
            (cluster.builder_dir / f"{ring}.ring.gz").read_bytes(), ring
        out[ring] = copy
    return out
