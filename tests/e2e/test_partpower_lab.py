"""``ringmgr increase-part-power`` on the real rehearsal lab: swift's servers, recon,
swift-object-relinker on every node over SSH, XFS loop disks, a replicated and an
erasure-coded policy, while a bounded loop keeps PUTting and GETting through the proxy.

What is proven on disk, not from ringmgr's own report: every object readable with its
content; every object's files at its partition at the new power on each primary; after
cleanup every file sits at the partition its hash gives (at the ring's power) and has
one link only; a SIGKILLed ringmgr resumed gives the same end, with one relinker start
per node and step."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RINGMGR = [sys.executable, "-c", "from ringmgr.cli.main import main; main()"]
POLICIES = {"gold": ("object", "objects"), "silver": ("object-1", "objects-1"),
            "ec42": ("object-2", "objects-2")}


def ringmgr(lab, *args, check=True, timeout=600):
    r = subprocess.run([*RINGMGR, *args],
                       env={**lab.env, "PYTHONPATH": str(REPO)}, capture_output=True,
                       text=True, timeout=timeout, cwd=REPO)
    if check is not None and check is not False:
        want = 0 if check is True else check
        assert r.returncode == want, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    if "--json" in args:   # the report matches its published schema
        from tests.helpers import json_schema as js

        name = "status" if args[0] == "status" else "increase-part-power"
        problems = js.errors(name, json.loads(r.stdout))
        assert not problems, problems
    return r


def spawn(lab, *args):
    return subprocess.Popen([*RINGMGR, *args],
                            env={**lab.env, "PYTHONPATH": str(REPO)}, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal(lab) -> dict:
    try:
        return json.loads((lab.state / "ringmgr" / "runs" / "increase-part-power.json")
                          .read_text())
    except (OSError, ValueError):
        return {}


def wait_for(cond, timeout=180, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def upload(lab, policies, n):
    objects = {}
    for pol in policies:
        assert lab.put(f"c-{pol}", policy=pol) in (201, 202)
        for i in range(n):
            body = f"{pol} object {i} ".encode() * (1 + i % 7)
            assert lab.put(f"c-{pol}", f"o{i:04d}", body) == 201
            objects[(f"c-{pol}", f"o{i:04d}")] = body
    return objects


class Load(threading.Thread):
    """A bounded PUT/GET loop through the proxy while the operation runs."""

    def __init__(self, lab, policies, limit=3000):
        super().__init__(daemon=True)
        self.lab, self.policies, self.limit = lab, policies, limit
        self.stop = threading.Event()
        self.written: dict = {}
        self.errors: list = []

    def run(self):
        i = 0
        while not self.stop.is_set() and i < self.limit:
            pol = self.policies[i % len(self.policies)]
            key, body = (f"c-{pol}", f"load{i:05d}"), f"load {i}".encode()
            status = self.lab.put(*key, body)
            if status >= 500:
                self.errors.append(("PUT", key, status))
            elif status == 201:
                self.written[key] = body
            if self.written:
                k = next(reversed(self.written))
                got, data = self.lab.get(*k)
                if got >= 500 or (got == 200 and data != self.written[k]):
                    self.errors.append(("GET", k, got))
            i += 1
            time.sleep(0.02)


def lab_hash_settings(lab):
    import configparser

    cp = configparser.ConfigParser()
    cp.read(Path(lab.builder_dir) / "swift.conf")
    return (cp.get("swift-hash", "swift_hash_path_prefix").encode(),
            cp.get("swift-hash", "swift_hash_path_suffix").encode())


@pytest.fixture
def lab_hash(lab_cluster, monkeypatch):
    import swift.common.utils as u

    prefix, suffix = lab_hash_settings(lab_cluster)
    monkeypatch.setattr(u, "HASH_PATH_PREFIX", prefix)
    monkeypatch.setattr(u, "HASH_PATH_SUFFIX", suffix)


def check_disk(lab, objects, part_power, *, policies):
    """Every object at its partition on each of its primaries, every file on any device
    at the partition its hash gives, and one link per file."""
    from swift.common.ring import Ring
    from swift.common.utils import hash_path

    mounts = {n.ip: n.mount_root for n in lab.nodes}
    problems = []
    for pol in policies:
        ring_name, datadir = POLICIES[pol]
        ring = Ring(lab.builder_dir, ring_name=ring_name)
        assert ring.part_power == part_power
        for (c, o) in [k for k in objects if k[0] == f"c-{pol}"]:
            part, nodes = ring.get_nodes("AUTH_test", c, o)
            h = hash_path("AUTH_test", c, o)
            for nd in nodes:
                d = Path(mounts[nd["ip"]], nd["device"], datadir, str(part), h[-3:], h)
                if not any(f.suffix in (".data", ".ts") for f in d.glob("*")):
                    problems.append(f"{pol} {c}/{o}: nothing at {d}")
        for node in lab.nodes:
            for dev in node.devices:
                root = Path(node.mount_root, dev, datadir)
                for f in root.glob("*/*/*/*"):
                    part_dir, h = f.parent.parent.parent.name, f.parent.name
                    if int(part_dir) != int(h[:8], 16) >> (32 - part_power):
                        problems.append(f"{f}: at partition {part_dir}, not the one its "
                                        f"hash gives at power {part_power}")
                    if f.stat().st_nlink != 1:
                        problems.append(f"{f}: {f.stat().st_nlink} links")
    assert not problems, "\n".join(problems[:20])


def starts(lab, step) -> dict:
    """Per node, how many times the wrapper started the relinker for ``step``."""
    op = journal(lab).get("params", {}).get("op_id")
    out = {}
    for n in lab.nodes:
        log = Path(n.mount_root).parent.parent / "var/lib/ringmgr" / str(op) / f"{step}.log"
        out[n.name] = log.read_text().count("ringmgr: started") if log.exists() else 0
    return out


def read_all(lab, objects):
    bad = []
    for (c, o), body in objects.items():
        status, data = lab.get(c, o)
        if status != 200 or data != body:
            bad.append(f"{c}/{o}: {status}")
    assert not bad, bad[:20]


@pytest.mark.lab(nodes=4, disks=2, xfs=True, part_power=6, ec=True)
def test_increase_with_load_sigkill_in_relink_and_cleanup_and_resume(lab_cluster, lab_hash,
                                                                     figures):
    lab = lab_cluster
    policies = ["gold", "silver", "ec42"]
    objects = upload(lab, policies, 100)
    dry = json.loads(ringmgr(lab, "increase-part-power", "--dry-run", "--json").stdout)
    assert [s["phase"] for s in dry["plan"]][:3] == ["precheck", "prepare", "relink"]
    load = Load(lab, policies)
    load.start()
    t0 = time.monotonic()
    try:
        r = ringmgr(lab, "increase-part-power", "--yes", "--json", check=1)
        assert json.loads(r.stdout)["phase"] == "prepare"
        # run everything, slowed down so that the kill lands inside the relink ...
        args = ("increase-part-power", "--yes", "--all-phases", "--wait", "--poll", "0.5",
                "--files-per-second", "15")
        p = spawn(lab, *args)
        wait_for(lambda: any(r.get("pid") for r in journal(lab).get("params", {})
                             .get("runs", {}).get("relink", {}).values()),
                 what="relinkers started")
        p.send_signal(signal.SIGKILL)
        p.wait()
        pids = {n: r.get("pid") for n, r in journal(lab)["params"]["runs"]["relink"].items()}
        # ... resumed, and killed again inside the cleanup
        p = spawn(lab, *args)
        wait_for(lambda: any(r.get("pid") for r in journal(lab).get("params", {})
                             .get("runs", {}).get("cleanup", {}).values()),
                 what="cleanup started")
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert starts(lab, "relink") == {n.name: 1 for n in lab.nodes}
        final = ringmgr(lab, *args, "--json")
    finally:
        load.stop.set()
        load.join()
    took = time.monotonic() - t0
    doc = json.loads(final.stdout)
    assert doc["phase"] is None and doc["exit_code"] == 0
    assert journal(lab) == {} or journal(lab).get("finished")
    for ring in ("object", "object-1", "object-2"):
        assert doc["rings"][ring] == {**doc["rings"][ring], "part_power": 7,
                                      "next_part_power": None}
    assert starts(lab, "relink") == {n.name: 1 for n in lab.nodes}, "never two relinkers"
    assert starts(lab, "cleanup") == {n.name: 1 for n in lab.nodes}
    assert all(pids.values())
    assert {n: r["pid"] for n, r in journal(lab)["params"]["runs"]["relink"].items()} == pids
    assert not load.errors, load.errors[:10]
    all_objects = {**objects, **load.written}
    read_all(lab, all_objects)
    check_disk(lab, all_objects, 7, policies=policies)
    # the nodes have the finished ring
    from swift.common.ring import Ring

    for n in lab.nodes:
        ring = Ring(n.swift_dir, ring_name="object-2")
        assert (ring.part_power, ring.next_part_power) == (7, None)
    figures("part power 6 -> 7, 4 nodes x 2 XFS disks, 3 policies, "
            f"{len(objects)} objects + {len(load.written)} written meanwhile "
            f"(relinker at 15 files/s, two SIGKILLs)", f"{took:.1f} s")


@pytest.mark.lab(nodes=3, disks=1, xfs=True, part_power=6)
def test_cancel_after_relink_removes_the_new_links(lab_cluster, lab_hash):
    lab = lab_cluster
    objects = upload(lab, ["gold", "silver"], 60)
    ringmgr(lab, "increase-part-power", "--yes", check=1)      # precheck
    # SIGKILL inside prepare, as soon as its ring change is written
    history = Path(lab.builder_dir, ".ringmgr", "history.jsonl")
    p = spawn(lab, "increase-part-power", "--yes", "--all-phases", "--wait", "--poll", "0.5")
    wait_for(lambda: history.exists() and "increase-part-power prepare" in history.read_text(),
             what="prepare written")
    p.send_signal(signal.SIGKILL)
    p.wait()
    for _ in range(3):   # the rest of prepare (the push), then the relink
        if journal(lab)["steps"].get("relink", {}).get("state") == "done":
            break
        ringmgr(lab, "increase-part-power", "--yes", "--wait", "--poll", "0.5", check=1)
    assert journal(lab)["steps"]["relink"]["state"] == "done"
    assert history.read_text().count("increase-part-power prepare") == 1
    # relinked: the new links exist next to the old ones
    f = next(Path(lab.nodes[0].mount_root).glob("sdb/objects/*/*/*/*.data"))
    assert f.stat().st_nlink == 2
    r = ringmgr(lab, "increase-part-power", "--cancel", "--yes", "--all-phases", "--wait",
                "--poll", "0.5", "--json")
    doc = json.loads(r.stdout)
    assert doc["phase"] is None
    assert [p["name"] for p in doc["phases"]] == ["precheck", "prepare", "relink", "cancel",
                                                  "cleanup", "finish"]
    assert doc["rings"]["object"]["part_power"] == 6
    assert doc["rings"]["object"]["next_part_power"] is None
    read_all(lab, objects)
    check_disk(lab, objects, 6, policies=["gold", "silver"])
    lab.replicate()    # replication runs again (the replicators no longer skip the policy)
    again = ringmgr(lab, "increase-part-power", "--json")
    assert json.loads(again.stdout)["reason"] == "nothing_to_do"


def ssh_answers(lab, node) -> bool:
    import socket
    import tomllib

    port = tomllib.loads(Path(lab.config_path).read_text())["ssh"]["port"]
    try:
        socket.create_connection((node.ip, port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.lab(nodes=3, disks=1, xfs=True, part_power=6)
def test_refusals_and_a_node_unreachable_at_relink(lab_cluster, lab_hash):
    from tests.helpers.ringfactory import checksums

    lab = lab_cluster
    objects = upload(lab, ["gold", "silver"], 40)
    # reclaim_age too short for the expected relink+cleanup: refused, nothing changed
    conf = Path(lab.nodes[0].swift_dir, "object-server.conf")
    original = conf.read_text()
    conf.write_text(original.replace("[object-replicator]\n",
                                     "[object-replicator]\nreclaim_age = 5\n"))
    before = checksums(Path(lab.builder_dir))
    r = ringmgr(lab, "increase-part-power", "--yes", "--files-per-second", "1", check=2)
    assert "reclaim_age 5 s is shorter" in r.stderr
    assert checksums(Path(lab.builder_dir)) == before
    conf.write_text(original)
    # an account ring: swift's reason
    r = ringmgr(lab, "increase-part-power", "account", "--yes", check=2)
    assert "only supported for object rings" in r.stderr
    assert checksums(Path(lab.builder_dir)) == before

    ringmgr(lab, "increase-part-power", "--yes", check=1)      # precheck
    ringmgr(lab, "increase-part-power", "--yes", check=1)      # prepare
    s02 = lab.node("s02")
    # the lab's rehearsed reboot, detached as ringmgr's reboot_command starts it
    subprocess.run(["setsid", "--fork", sys.executable, str(REPO / "sim" / "lab"), "reboot",
                    "s02", "--state", str(lab.state), "--down-for", "40"], check=True,
                   capture_output=True, timeout=60)
    wait_for(lambda: not ssh_answers(lab, s02), timeout=30, what="s02 down")
    r = ringmgr(lab, "increase-part-power", "--yes", "--wait", "--poll", "0.5", "--json",
                check=2)
    assert "s02" in r.stderr and "relink did not complete" in r.stderr
    status = json.loads(ringmgr(lab, "status", "--json", check=None).stdout)
    assert any("increase-part-power --status" in n["command"] for n in status["next"])
    st = json.loads(ringmgr(lab, "increase-part-power", "--status", "--json").stdout)
    assert st["phase"] == "relink", "the increase does not come while a node is missing"
    assert st["nodes"]["relink"]["s02"]["state"] == "unreachable"
    assert st["nodes"]["relink"]["s01"]["done"] is True
    wait_for(lambda: ssh_answers(lab, s02), timeout=120, what="s02 back")
    r = ringmgr(lab, "increase-part-power", "--yes", "--wait", "--poll", "0.5", "--json",
                check=1)
    assert json.loads(r.stdout)["phase"] == "increase"
    assert starts(lab, "relink") == {"s01": 1, "s02": 1, "s03": 1}
    ringmgr(lab, "increase-part-power", "--yes", "--all-phases", "--wait", "--poll", "0.5")
    read_all(lab, objects)
    check_disk(lab, objects, 7, policies=["gold", "silver"])
