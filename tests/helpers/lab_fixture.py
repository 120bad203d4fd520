"""pytest fixture ``lab_cluster``: a real local Swift cluster from ``sim/lab``.

Each test gets its own lab (``sim/lab up`` as a subprocess, ~3 s), so a test may change
rings, disks and data freely; ``sim/lab down`` runs in a finally, also when the test or
``up`` fails.  Size it with a marker::

    @pytest.mark.lab(nodes=3, disks=1, xfs=True, part_power=6)
    def test_something(lab_cluster):
        lab_cluster.put("c", "o", b"data")
        ringmgr(..., env=lab_cluster.env)
        lab_cluster.replicate()
        lab_cluster.reconstruct()              # ec=True labs: the EC fragments move
        new = lab_cluster.add_node()           # servers up, in ringmgr.toml, in no ring
        lab_cluster.stop_node("s02")           # a failed node; start_node("s02") again
        lab_cluster.swap_disk("s01", "sdb")    # xfs labs: the physical disk swap
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "sim" / "lab"


@dataclass
class LabNode:
    name: str
    ip: str
    zone: int
    devices: list[str]
    swift_dir: str
    mount_root: str
    block_devices: dict[str, str] = field(default_factory=dict)


@dataclass
class LabCluster:
    state: Path
    config_path: Path
    auth_url: str
    user: str
    key: str
    nodes: list[LabNode]
    proxy_url: str
    proxy_swift_dir: str
    builder_dir: str
    _token: tuple[str, str] | None = None

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus the four variables ``sim/lab up`` exports, and ringmgr's run
        journals and audit log inside the lab (they are keyed by node and device only, so
        a shared ~/.local/state would mix up labs and tests)."""
        return {**os.environ, "RINGMGR_CONFIG": str(self.config_path), "ST_AUTH": self.auth_url,
                "ST_USER": self.user, "ST_KEY": self.key,
                "RINGMGR_STATE_DIR": str(self.state / "ringmgr" / "runs"),
                "RINGMGR_LOG": str(self.state / "ringmgr" / "ringmgr.log")}

    def node(self, name: str) -> LabNode:
        return next(n for n in self.nodes if n.name == name)

    def replicate(self, timeout: float = 120) -> None:
        """Every replicator once on every node (``sim/lab replicate``)."""
        self._lab("replicate", timeout=timeout)

    def reconstruct(self, timeout: float = 120) -> None:
        """The object reconstructor once on every node (``sim/lab reconstruct``, ``ec=True``
        labs): erasure-coded fragments move only with it."""
        self._lab("reconstruct", timeout=timeout)

    def add_node(self, disks: int | None = None, zone: int | None = None) -> LabNode:
        """``sim/lab add-node``: one more node with running servers, in the config, in no
        ring; returns it (``self.nodes`` is refreshed)."""
        args = (["--disks", str(disks)] if disks else []) + (["--zone", str(zone)] if zone else [])
        self._lab("add-node", *args)
        self.nodes = _nodes(self.state)
        return self.nodes[-1]

    def swap_disk(self, node: str, dev: str) -> None:
        """``sim/lab swap-disk`` (``xfs=True`` labs): an unmounted disk is replaced by a
        blank one under the same /dev/loopN."""
        self._lab("swap-disk", node, dev)
        self.nodes = _nodes(self.state)

    def stop_node(self, name: str) -> None:
        """``sim/lab stop-node``: the node's servers and rsync stop (a failed node)."""
        self._lab("stop-node", name)

    def start_node(self, name: str) -> None:
        self._lab("start-node", name)

    def status(self) -> dict:
        """``sim/lab status --json``: per node, the daemons running and stopped, and
        (xfs labs) which devices are mounted."""
        return json.loads(self._lab("status", "--json"))

    def _lab(self, *args: str, timeout: float = 120) -> str:
        r = subprocess.run([str(LAB), args[0], "--state", str(self.state), *args[1:]],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"sim/lab {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    # --- plain HTTP against the proxy (tempauth) --------------------------------------
    def token(self, fresh: bool = False) -> tuple[str, str]:
        """(storage url, auth token) from tempauth."""
        if self._token is None or fresh:
            req = urllib.request.Request(self.auth_url, headers={
                "X-Auth-User": self.user, "X-Auth-Key": self.key})
            with urllib.request.urlopen(req, timeout=10) as r:
                self._token = (r.headers["X-Storage-Url"], r.headers["X-Auth-Token"])
        return self._token

    def request(self, method: str, path: str = "", body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        """``method`` on <storage url>/<path>; (status, headers, body), errors included."""
        url, token = self.token()
        req = urllib.request.Request(f"{url}/{path}" if path else url, data=body,
                                     method=method,
                                     headers={"X-Auth-Token": token, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def put(self, container: str, obj: str | None = None, data: bytes = b"",
            policy: str | None = None) -> int:
        headers = {"X-Storage-Policy": policy} if policy and obj is None else {}
        path = container if obj is None else f"{container}/{obj}"
        return self.request("PUT", path, data, headers)[0]

    def get(self, container: str, obj: str) -> tuple[int, bytes]:
        status, _, body = self.request("GET", f"{container}/{obj}")
        return status, body


def lab_up(state: Path, *, nodes: int = 4, disks: int = 2, xfs: bool = False,
           part_power: int = 8, zones: int | None = None, ssh: bool = True,
           min_part_hours: int = 0, proxy_ring_reload: float | None = None,
           ec: bool = False) -> LabCluster:
    argv = [str(LAB), "up", "--state", str(state), "--nodes", str(nodes), "--disks",
            str(disks), "--part-power", str(part_power), "--min-part-hours", str(min_part_hours)]
    if ec:
        argv.append("--ec")
    if xfs:
        argv.append("--xfs")
    if zones:
        argv += ["--zones", str(zones)]
    if not ssh:
        argv.append("--no-ssh")
    if proxy_ring_reload is not None:
        argv += ["--proxy-ring-reload", str(proxy_ring_reload)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"sim/lab up failed ({r.returncode}):\n{r.stderr}")
    exports = dict(line.removeprefix("export ").split("=", 1) for line in r.stdout.splitlines())
    lab_nodes = _nodes(state)
    auth_url = exports["ST_AUTH"]
    return LabCluster(state=state, config_path=Path(exports["RINGMGR_CONFIG"]),
                      auth_url=auth_url, user=exports["ST_USER"], key=exports["ST_KEY"],
                      nodes=lab_nodes, proxy_url=auth_url.removesuffix("/auth/v1.0"),
                      proxy_swift_dir=f"{state}/proxy/etc/swift",
                      builder_dir=f"{state}/admin")


def _nodes(state: Path) -> list[LabNode]:
    lab = json.loads((state / "lab.json").read_text())
    return [LabNode(name=n["name"], ip=n["ip"], zone=n["zone"], devices=n["devices"],
                    swift_dir=f"{n['root']}/etc/swift", mount_root=f"{n['root']}/srv/node",
                    block_devices=lab["block_devices"].get(n["name"], {}))
            for n in lab["nodes"]]


def lab_down(state: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LAB), "down", "--state", str(state)], capture_output=True,
                          text=True, timeout=120)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "lab(nodes=4, disks=2, xfs=False, part_power=8, zones=None, ssh=True, "
        "min_part_hours=0, proxy_ring_reload=None, ec=False): "
        "size of the lab_cluster fixture's lab")


@pytest.fixture
def lab_cluster(request, tmp_path):
    """A running lab (see the module docstring); torn down after the test."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    marker = request.node.get_closest_marker("lab")
    kwargs = dict(marker.kwargs) if marker else {}
    state = tmp_path / "lab"
    try:
        yield lab_up(state, **kwargs)
    finally:
        r = lab_down(state)
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            raise RuntimeError(f"sim/lab down failed: {r.stderr.strip()}")
