"""End to end: the rehearsal lab (sim/lab) is a real Swift cluster and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.lab_fixture import LAB, lab_down, lab_up

pytestmark = [pytest.mark.slow, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]


def _procs_mentioning(*needles: str) -> list[str]:
    """Live (non-zombie) processes whose command line contains one of ``needles``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in "ZX" and any(n in cmd for n in needles):
            found.append(f"{d.name}: {cmd}")
    return found


def _loops_of(state: Path) -> list[str]:
    out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True,
                         text=True).stdout
    return [line for line in out.splitlines() if str(state) in line]


def _loop_pairs() -> list[tuple[str, str]]:
    out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True,
                         text=True).stdout
    return [tuple(line.split(None, 1)) for line in out.splitlines() if len(line.split()) >= 2]


def _mounts_under(state: Path) -> list[str]:
    return [line for line in Path("/proc/self/mounts").read_text().splitlines()
            if str(state) in line]


def _gone_soon(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while check() and time.monotonic() < deadline:
        time.sleep(0.1)
    return check()


def _replica_paths(lab, ring_name: str, account: str, container: str, obj: str | None):
    """Where the lab's ring puts the replicas: (partition, [(node, device)]).

    Computed as swift's Ring.get_nodes does (md5 of prefix/a/c/o/suffix, top bits), from
    the lab's own swift.conf and ring.gz, without touching swift's process-wide
    hash-path settings in this test process.
    """
    import configparser
    import struct
    from hashlib import md5

    from swift.common.ring import RingData

    conf = configparser.ConfigParser()
    conf.read(f"{lab.builder_dir}/swift.conf")
    prefix = conf.get("swift-hash", "swift_hash_path_prefix").encode()
    suffix = conf.get("swift-hash", "swift_hash_path_suffix").encode()
    ring = RingData.load(f"{lab.builder_dir}/{ring_name}.ring.gz")
    path = "/".join(x for x in (account, container, obj) if x is not None).encode()
    key = md5(prefix + b"/" + path + suffix).digest()
    part = struct.unpack_from(">I", key)[0] >> ring._part_shift
    by_ip = {n.ip: n for n in lab.nodes}
    devs = [ring.devs[r2p2d[part]] for r2p2d in ring._replica2part2dev_id]
    return part, [(by_ip[d["ip"]], d["device"]) for d in devs]


def test_lab_is_a_working_cluster_and_down_leaves_nothing(tmp_path):
    state = tmp_path / "lab"
    t0 = time.monotonic()
    lab = None
    try:
        lab = lab_up(state, nodes=3, disks=2, xfs=True, part_power=6)  # may fail half-up
        assert time.monotonic() - t0 < 30, "lab up should take under 30 s"
        # Every ring device belongs to a configured node, by ip (what ringmgr relies on).
        from ringmgr.config import load_config
        from swift.common.ring import RingBuilder

        config = load_config(lab.config_path)
        assert set(config.nodes) == {"s01", "s02", "s03"}
        for ring in ("account", "container", "object", "object-1"):
            b = RingBuilder.load(f"{lab.builder_dir}/{ring}.builder")
            for dev in b.devs:
                node = config.node_by_ip(dev["ip"])
                assert node is not None and dev["device"] in node.devices
        # Real XFS loop disks, mounted where the config says.
        mounts = _mounts_under(state)
        assert len(mounts) == 6 and all(" xfs " in m for m in mounts)
        assert all(n.block_devices.keys() == {"sdb", "sdc"} for n in lab.nodes)

        # Objects in both storage policies go in and come back through the proxy.
        assert lab.put("gold") in (201, 202)
        assert lab.put("silver", policy="silver") in (201, 202)
        payloads = {f"obj-{i}": os.urandom(1000 + i) for i in range(5)}
        for name, data in payloads.items():
            assert lab.put("gold", name, data) == 201
            assert lab.put("silver", name, data) == 201
        for name, data in payloads.items():
            assert lab.get("gold", name) == (200, data)
            assert lab.get("silver", name) == (200, data)
        status, headers, _ = lab.request("HEAD", "silver")
        assert status == 204 and headers["X-Storage-Policy"] == "silver"

        # The replicas are where swift's ring puts them: 3 for policy 0, 2 for policy 1.
        account = lab.token()[0].rsplit("/", 1)[1]
        part, where = _replica_paths(lab, "object", account, "gold", "obj-0")
        assert len(where) == 3
        datas = [list(Path(n.mount_root, dev, "objects", str(part)).rglob("*.data"))
                 for n, dev in where]
        assert all(len(d) >= 1 for d in datas)
        part1, where1 = _replica_paths(lab, "object-1", account, "silver", "obj-0")
        assert len(where1) == 2
        assert all(list(Path(n.mount_root, dev, "objects-1", str(part1)).rglob("*.data"))
                   for n, dev in where1)

        # Lose one object replica (and its hash cache) and one container replica:
        # one replication pass (ssync for objects, rsync for containers) brings both back.
        node, dev = where[0]
        part_dir = Path(node.mount_root, dev, "objects", str(part))
        lost = [p for p in part_dir.rglob("*.data")]
        for p in lost:
            p.unlink()
        for name in ("hashes.pkl", "hashes.invalid"):
            (part_dir / name).unlink(missing_ok=True)
        cpart, cwhere = _replica_paths(lab, "container", account, "gold", None)
        cnode, cdev = cwhere[0]
        cdir = Path(cnode.mount_root, cdev, "containers", str(cpart))
        assert list(cdir.rglob("*.db"))
        shutil.rmtree(cdir)
        lab.replicate()
        assert all(p.exists() for p in lost), "the object replicator did not restore the replica"
        assert list(cdir.rglob("*.db")), "the container replicator did not restore the db"

        # The physical swap of a disk: refused while mounted; then a blank disk appears
        # under the same device name, and the old image is gone.
        s03 = lab.node("s03")
        loop = s03.block_devices["sdc"]
        r = subprocess.run([str(LAB), "swap-disk", "--state", str(state), "s03", "sdc"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "is mounted" in r.stderr
        assert Path(state, "disks", "s03-sdc.img").exists()
        subprocess.run(["umount", f"{s03.mount_root}/sdc"], check=True)
        lab.swap_disk("s03", "sdc")
        assert lab.node("s03").block_devices["sdc"] == loop
        assert not Path(state, "disks", "s03-sdc.img").exists()
        blkid = subprocess.run(["blkid", "-p", loop], capture_output=True, text=True)
        assert blkid.returncode == 2 and blkid.stdout == "", "the new disk is not blank"
        assert dict(_loop_pairs()).get(loop, "").endswith("/disks/s03-sdc.1.img")

        # ringmgr reaches every node and the proxy over the lab's sshd hosts.
        r = subprocess.run(["ringmgr", "verify"], env=lab.env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        r = lab_down(state)
    assert lab is not None and r.returncode == 0, r.stderr
    net_prefix = lab.auth_url.split("//")[1].rsplit(".", 1)[0] + "."
    assert not state.exists()
    assert not _mounts_under(state)
    assert not _loops_of(state)
    assert not _gone_soon(lambda: _procs_mentioning(str(state), f"-l {net_prefix}1 "))
    assert not Path(f"/run/ringmgr-lab/{net_prefix.rstrip('.')}").is_symlink()


def _free_nets() -> list[int]:
    """Unclaimed 127.0.N from the top of the range (labs claim from 5 up), shuffled so
    that two runs of this test at once rarely pick the same."""
    import random

    nets = [n for n in range(200, 250) if not Path(f"/run/ringmgr-lab/127.0.{n}").is_symlink()]
    random.shuffle(nets)
    return nets


def test_failed_up_removes_everything_it_started(tmp_path):
    """A port already taken on node s02: up fails with exit 2 and leaves nothing."""
    state = tmp_path / "lab"
    for net in _free_nets()[:5]:
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind((f"127.0.{net}.3", 16200))  # s02's object server port
            squatter.listen()
            r = subprocess.run([str(LAB), "up", "--state", str(state), "--nodes", "3",
                                "--disks", "1", "--xfs", "--net", str(net), "--timeout", "30"],
                               capture_output=True, text=True, timeout=120)
        if "no free 127.0.N" not in r.stderr:  # else another lab took it meanwhile
            break
    else:
        pytest.skip("no free 127.0.N")
    try:
        assert r.returncode == 2, r.stderr
        assert r.stdout == ""
        assert "lab: error:" in r.stderr and "s02-object-server" in r.stderr
        assert "Traceback" not in r.stderr.split("lab: error:")[-1]
        assert not state.exists()
        assert not _mounts_under(state)
        assert not _loops_of(state)
        assert not _gone_soon(lambda: _procs_mentioning(str(state), f"-l 127.0.{net}.1 "))
        assert not Path(f"/run/ringmgr-lab/127.0.{net}").is_symlink()
    finally:
        if state.exists():
            lab_down(state)


@pytest.mark.parametrize("args, message", [
    (["--nodes", "0"], "--nodes must be between"),
    (["--disks", "0"], "--disks must be between"),
    (["--zones", "9", "--nodes", "3"], "--zones must be between"),
    (["--part-power", "30"], "--part-power must be between"),
])
def test_bad_arguments_exit_2_and_create_nothing(tmp_path, args, message):
    state = tmp_path / "lab"
    claims_before = sorted(os.listdir("/run/ringmgr-lab")) if os.path.isdir(
        "/run/ringmgr-lab") else []
    r = subprocess.run([str(LAB), "up", "--state", str(state), *args], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and message in r.stderr
    assert r.stdout == ""
    assert not state.exists()
    claims_after = sorted(os.listdir("/run/ringmgr-lab")) if os.path.isdir(
        "/run/ringmgr-lab") else []
    assert [c for c in claims_after if c not in claims_before] == []


def test_up_refuses_a_state_dir_in_use(tmp_path):
    state = tmp_path / "lab"
    state.mkdir()
    (state / "keep.txt").write_text("operator's file")
    r = subprocess.run([str(LAB), "up", "--state", str(state)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "not empty" in r.stderr
    assert sorted(os.listdir(state)) == ["keep.txt"]
    assert (state / "keep.txt").read_text() == "operator's file"


def test_down_and_replicate_without_a_lab(tmp_path):
    state = tmp_path / "nolab"
    r = subprocess.run([str(LAB), "down", "--state", str(state)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "nothing to do" in r.stderr
    r = subprocess.run([str(LAB), "replicate", "--state", str(state)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "no lab in" in r.stderr


def _listening(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((ip, port)) == 0


@pytest.mark.lab(nodes=3, disks=1, part_power=6)
def test_lab_cluster_fixture_and_node_lifecycle(lab_cluster):
    """The fixture others use: config, credentials, nodes, HTTP helpers, replicate(),
    and the lab's node commands: a failed node, a node back, a new node."""
    from ringmgr.config import load_config
    from swift.common.ring import RingBuilder

    assert lab_cluster.config_path.exists()
    assert [n.name for n in lab_cluster.nodes] == ["s01", "s02", "s03"]
    assert len({n.ip for n in lab_cluster.nodes}) == 3
    assert lab_cluster.put("c") in (201, 202)
    assert lab_cluster.put("c", "o", b"payload") == 201
    assert lab_cluster.get("c", "o") == (200, b"payload")
    assert lab_cluster.get("c", "missing")[0] == 404

    with pytest.raises(RuntimeError, match="needs loop disks"):
        lab_cluster.swap_disk("s01", "sdb")  # plain directories have no disk to swap

    # A failed node: its servers stop, the cluster still serves (2 of 3 replicas).
    s02 = lab_cluster.node("s02")
    lab_cluster.stop_node("s02")
    assert not _listening(s02.ip, 16200) and not _listening(s02.ip, 16202)
    st = {n["name"]: n for n in lab_cluster.status()["nodes"]}
    assert st["s02"]["running"] == [] and len(st["s02"]["stopped"]) == 4
    assert st["s01"]["stopped"] == [] and len(st["s01"]["running"]) == 4
    assert lab_cluster.get("c", "o") == (200, b"payload")
    assert lab_cluster.put("c", "o2", b"while s02 is down") == 201
    lab_cluster.start_node("s02")
    assert _listening(s02.ip, 16200) and _listening(s02.ip, 16201)
    assert all(n["stopped"] == [] for n in lab_cluster.status()["nodes"])

    # A new node: servers listening on the next address, in ringmgr.toml, in no ring.
    new = lab_cluster.add_node(disks=2)
    assert (new.name, new.ip) == ("s04", lab_cluster.nodes[-1].ip)
    assert all(_listening(new.ip, p) for p in (16200, 16201, 16202))
    config = load_config(lab_cluster.config_path)
    assert config.nodes["s04"].ip == new.ip and set(config.nodes["s04"].devices) == {"sdb", "sdc"}
    builder = RingBuilder.load(f"{lab_cluster.builder_dir}/object.builder")
    assert new.ip not in {d["ip"] for d in builder.devs if d}
    assert sorted(p.name for p in Path(new.swift_dir).glob("*.ring.gz")) == [
        "account.ring.gz", "container.ring.gz", "object-1.ring.gz", "object.ring.gz"]
    lab_cluster.replicate()
    assert lab_cluster.get("c", "o2") == (200, b"while s02 is down")

    # Put s04 into every ring (swift's RingBuilder, as an admin would) and copy the
    # rings out: the running proxy picks them up within seconds (--ring-reload), and one
    # replication pass moves existing data onto s04.
    _add_to_rings(lab_cluster, new)
    account = lab_cluster.token()[0].rsplit("/", 1)[1]
    _wait_until_proxy_writes_to(lab_cluster, account, "s04")
    names = [f"n{i}" for i in range(12)]
    for name in names:
        assert lab_cluster.put("c", name, name.encode()) == 201
    on_s04 = [n for n in names if any(
        node.name == "s04" for node, _ in _replica_paths(lab_cluster, "object", account, "c", n)[1])]
    assert on_s04, "no object of 12 maps to s04: the ring change did nothing"
    for name in on_s04:
        part, where = _replica_paths(lab_cluster, "object", account, "c", name)
        for node, dev in where:
            if node.name == "s04":
                assert list(Path(node.mount_root, dev, "objects", str(part)).rglob("*.data")), \
                    f"the proxy did not write {name} to s04 with the new ring"
    old_part, old_where = _replica_paths(lab_cluster, "object", account, "c", "o2")
    lab_cluster.replicate()
    for node, dev in old_where:
        assert list(Path(node.mount_root, dev, "objects", str(old_part)).rglob("*.data"))
    assert lab_cluster.get("c", "o2") == (200, b"while s02 is down")


def _wait_until_proxy_writes_to(lab, account: str, node_name: str, timeout=30.0) -> None:
    """Poll, instead of sleeping a guess, until the proxy has reloaded the rings: PUT
    probe objects that the new ring places on ``node_name`` until one lands there."""
    deadline = time.monotonic() + timeout
    for i in range(10_000):
        name = f"probe-{i}"
        part, where = _replica_paths(lab, "object", account, "c", name)
        mine = [dev for node, dev in where if node.name == node_name]
        if not mine:
            continue
        assert lab.put("c", name, b"probe") == 201
        node = lab.node(node_name)
        if list(Path(node.mount_root, mine[0], "objects", str(part)).rglob("*.data")):
            return
        assert time.monotonic() < deadline, \
            f"the proxy did not write to {node_name} within {timeout} s of the ring change"
        time.sleep(0.2)
    raise AssertionError(f"no probe name maps to {node_name}")


def _add_to_rings(lab, node) -> None:
    from swift.common.ring import RingBuilder

    for ring in ("account", "container", "object", "object-1"):
        builder = RingBuilder.load(f"{lab.builder_dir}/{ring}.builder")
        port = {"account": 16202, "container": 16201}.get(ring, 16200)
        for dev in node.devices:
            builder.add_dev({"region": 1, "zone": node.zone, "ip": node.ip, "port": port,
                             "replication_ip": node.ip, "replication_port": port,
                             "device": dev, "weight": 100.0, "meta": ""})
        builder.rebalance(seed=2)
        builder.save(f"{lab.builder_dir}/{ring}.builder")
        builder.get_ring().save(f"{lab.builder_dir}/{ring}.ring.gz")
        for dest in [n.swift_dir for n in lab.nodes] + [lab.proxy_swift_dir]:
            shutil.copy(f"{lab.builder_dir}/{ring}.ring.gz", dest)
