"""Small real clusters for tests: builders and rings made by swift's RingBuilder, plus
a ringmgr.toml that describes their nodes."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.checksums import checksums

PORTS = {"account": 6202, "container": 6201, "object": 6200}


@dataclass
class Cluster:
    root: Path
    builder_dir: Path
    config: Path
    nodes: dict[str, tuple[str, int]]  # name -> (ip, zone)

    def checksums(self) -> dict[str, str]:
        """md5 of every file under builder_dir (to prove nothing changed)."""
        return checksums(self.builder_dir)


def make_cluster(tmp_path: Path, *, nodes: int = 6, zones: int = 3, disks: int = 2,
                 rings=("account", "container", "object", "object-1"), part_power: int = 6,
                 replicas: float = 3, min_part_hours: int = 1, weight: float = 100.0,
                 extra_nodes: int = 1, gate_open: bool = True, seed: int = 7,
                 extra_config: str = "") -> Cluster:
    """``nodes`` nodes in the rings plus ``extra_nodes`` in the config only (to add)."""
    from swift.common.ring import RingBuilder

    builder_dir = tmp_path / "rings"
    builder_dir.mkdir(parents=True)
    all_nodes = {f"s{i:02d}": (f"127.0.9.{i}", (i - 1) % zones + 1)
                 for i in range(1, nodes + extra_nodes + 1)}
    in_ring = dict(list(all_nodes.items())[:nodes])
    for ring in rings:
        port = PORTS.get(ring, 6200)
        b = RingBuilder(part_power, replicas, min_part_hours)
        for name, (ip, zone) in in_ring.items():
            for d in range(disks):
                b.add_dev({"region": 1, "zone": zone, "ip": ip, "port": port,
                           "replication_ip": ip, "replication_port": port,
                           "device": f"sd{chr(ord('b') + d)}", "weight": weight, "meta": ""})
        b.rebalance(seed=seed)
        if gate_open:
            b._last_part_moves_epoch -= (min_part_hours + 1) * 3600
        b.save(str(builder_dir / f"{ring}.builder"))
        b.get_ring().save(str(builder_dir / f"{ring}.ring.gz"))
    lines = [
        "[cluster]",
        f'builder_dir = "{builder_dir}"',
        "lock_timeout = 1.5",
        "",
    ]
    for name, (ip, zone) in all_nodes.items():
        devs = ", ".join(f"sd{chr(ord('b') + d)} = {weight}" for d in range(disks))
        lines += [f"[nodes.{name}]", f'ip = "{ip}"', f"zone = {zone}",
                  f"devices = {{ {devs} }}", ""]
    config = tmp_path / "ringmgr.toml"
    config.write_text("\n".join(lines) + "\n" + extra_config)
    return Cluster(tmp_path, builder_dir, config, all_nodes)


@contextmanager
def lock_held(directory: Path, *, by: str = "swift"):
    """Another process holding ``directory``'s lock for the duration: ``by="swift"``
    takes it with swift's ``lock_parent_directory`` (as ``swift-ring-builder-safe``
    does), ``by="ringmgr"`` with ringmgr's own ``directory_lock``.  Yields the holder's
    Popen (its pid is what error messages must name); killed by pid afterwards."""
    import subprocess
    import sys

    if by == "swift":
        body = ("from swift.common.utils import lock_parent_directory\n"
                f"ctx = lock_parent_directory({str(Path(directory) / 'x')!r}, 15)\n")
    else:
        body = ("from pathlib import Path\nfrom ringmgr.rings.lock import directory_lock\n"
                f"ctx = directory_lock(Path({str(directory)!r}), 15)\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\n" + body +
         "with ctx:\n    print('locked', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def swift_ring_builder_safe(directory: Path) -> Path:
    """An executable ``swift-ring-builder-safe`` in ``directory``: swift's own CLI, run
    by this interpreter under a name ending in ``-safe`` (so it takes the builder
    directory's lock, as the PyPI package's missing -safe script would).  A script, not
    a symlink: a symlink to a pyenv shim would look for a command of the link's name."""
    import sys

    path = Path(directory) / "swift-ring-builder-safe"
    if not path.exists():
        path.write_text(f"#!{sys.executable}\nimport sys\n"
                        "from swift.cli.ringbuilder import error_handling_main\n"
                        "sys.exit(error_handling_main())\n")
        path.chmod(0o755)
    return path
