"""``ringmgr increase-part-power`` on the real rehearsal lab, phase by phase: ringmgr
SIGKILLed inside every phase and resumed; ``--cancel`` while the relinkers run; the
precheck's refusals on real XFS disks (too few inodes, too little space, reclaim_age too
short for the expected relink); the proxy's ``list_endpoints`` after the increase.

A phase is made to hold still by a real cause, not a sleep: a node whose SSH hangs (its
sshd and every session under it SIGSTOPped) keeps a ring phase in its push and the
precheck in its SSH round; the relinker phases are slowed with --files-per-second.
ringmgr is killed when the journal or the ring history shows it inside the phase."""

import json
import os
import re
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.test_partpower_lab import (check_disk, journal, lab_hash,  # noqa: F401
                                          ringmgr, spawn, starts, upload, wait_for)
from tests.helpers.refusal import one_line_error
from tests.helpers.ringfactory import checksums


def read_all(lab, objects):
    bad = [f"{c}/{o}: {s}" for (c, o), body in objects.items()
           for s, data in [lab.get(c, o)] if s != 200 or data != body]
    assert not bad, bad[:20]


# -- a node whose SSH hangs ------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True,
                         text=True).stdout
    pairs = [tuple(map(int, ln.split())) for ln in out.splitlines() if ln.strip()]
    tree, grew = {pid}, True
    while grew:
        grew = False
        for p, pp in pairs:
            if pp in tree and p not in tree:
                tree.add(p)
                grew = True
    return sorted(tree)


@contextmanager
def ssh_hangs(lab, node: str):
    """The node's sshd and every session under it stopped: connections are accepted by
    the kernel and never answered, commands in flight never end; continued on exit."""
    procs = json.loads((lab.state / "procs.json").read_text())
    sshd = next(p["pid"] for p in procs if p["name"] == f"{node}-sshd")
    frozen = _children(sshd)
    for p in frozen:
        os.kill(p, signal.SIGSTOP)
    try:
        yield
    finally:
        for p in _children(sshd) + frozen:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass


def history(lab) -> str:
    path = Path(lab.builder_dir, ".ringmgr", "history.jsonl")
    return path.read_text() if path.exists() else ""


def killed_inside(lab, args, inside, what):
    """Start ``ringmgr args``, SIGKILL it (by its pid) once ``inside()`` holds."""
    p = spawn(lab, *args)
    try:
        wait_for(lambda: inside() or p.poll() is not None, what=what)
        assert p.poll() is None, f"ringmgr ended before {what}: {p.communicate()}"
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()


def half_state(lab) -> tuple[str, str]:
    """What ``ringmgr status`` and ``ringmgr resume`` say about the increase."""
    st = ringmgr(lab, "status", check=None)
    res = ringmgr(lab, "resume")
    return st.stderr, res.stdout


def phase_info(lab, phase) -> dict:
    return journal(lab).get("params", {}).get("phases", {}).get(phase, {})


def relinkers_running(lab) -> list[str]:
    """Processes of the lab's relinkers (their command line names the lab's nodes)."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        line = " ".join(a.decode(errors="replace") for a in argv)
        if state != "Z" and "swift-object-relinker" in line and str(lab.state) in line:
            out.append(f"{proc.name} {line}")
    return out


def endpoints(lab, c, o) -> tuple[set, dict]:
    """The proxy's list_endpoints answer: {(ip, port, device, partition)}, headers."""
    url = f"{lab.proxy_url}/endpoints/v2/AUTH_test/{c}/{o}"
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.loads(r.read())
    out = set()
    for e in doc["endpoints"]:
        host, dev, part = e.split("/")[2], e.split("/")[3], int(e.split("/")[4])
        ip, port = host.rsplit(":", 1)
        out.add((ip, int(port), dev, part))
    return out, doc.get("headers", {})


def direct_head(ip, port, dev, part, c, o, headers) -> int:
    req = urllib.request.Request(f"http://{ip}:{port}/{dev}/{part}/AUTH_test/{c}/{o}",
                                 method="HEAD", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


# -- SIGKILL in every phase, then the proxy's endpoints ---------------------------------

@pytest.mark.lab(nodes=3, disks=1, xfs=True, part_power=6)
def test_sigkill_in_every_phase_resumes_and_the_proxy_answers_by_the_new_ring(
        lab_cluster, lab_hash):
    from swift.common.ring import Ring
    from swift.common.utils import hash_path

    lab = lab_cluster
    objects = upload(lab, ["gold", "silver"], 40)
    probe = [("c-gold", "o0007"), ("c-silver", "o0011"), ("c-gold", "o0033")]
    for c, o in probe:    # before: the proxy answers at power 6
        got, _ = endpoints(lab, c, o)
        assert {p for *_, p in got} == {int(hash_path("AUTH_test", c, o)[:8], 16) >> 26}
    step = ("increase-part-power", "--yes", "--wait", "--poll", "0.5")

    # precheck: s03's SSH hangs, so the precheck waits on it; killed there
    with ssh_hangs(lab, "s03"):
        killed_inside(lab, step, lambda: phase_info(lab, "precheck").get("started"),
                      "the precheck under way")
    status, resume = half_state(lab)
    assert "precheck started, not finished" in status
    assert "next step: precheck started, not finished" in resume
    ringmgr(lab, *step, check=1)                                 # precheck again: passes
    assert "precheck" in journal(lab)["steps"]

    # prepare, increase and finish: killed inside the push, after the ring was written
    def ring_phase_killed(phase):
        before = history(lab).count(f"increase-part-power {phase}")
        with ssh_hangs(lab, "s03"):
            killed_inside(lab, step, lambda: history(lab).count(
                f"increase-part-power {phase}") > before, f"{phase} written, pushing")
        assert not phase_info(lab, phase).get("pushed_at")
        status, resume = half_state(lab)
        assert f"{phase} started, not finished" in status, status
        assert f"next step: {phase} started, not finished" in resume, resume
        r = ringmgr(lab, *step, "--json", check=None)            # resumed: the push only
        assert r.returncode in (0, 1), r.stderr
        assert history(lab).count(f"increase-part-power {phase}") == before + 1, \
            "the ring call is not made twice"
        assert journal(lab).get("finished") or \
            journal(lab)["steps"][phase]["state"] == "done"
        return json.loads(r.stdout)

    ring_phase_killed("prepare")
    # relink and cleanup: killed while the relinkers run (slowed), found running again
    slow = (*step, "--files-per-second", "10")
    for relinker_phase, step_name, after in (("relink", "relink", "increase"),
                                             ("cleanup", "cleanup", "finish")):
        if relinker_phase == "cleanup":
            ring_phase_killed("increase")
            for c, o in probe:    # the increase is pushed: the proxy answers at power 7
                got, _ = endpoints(lab, c, o)
                want = int(hash_path("AUTH_test", c, o)[:8], 16) >> 25
                assert {p for *_, p in got} == {want}
        killed_inside(lab, slow, lambda: any(
            r.get("pid") for r in journal(lab).get("params", {}).get("runs", {})
            .get(step_name, {}).values()), f"{step_name} started")
        assert relinkers_running(lab), "the relinkers outlive the killed ringmgr"
        status, resume = half_state(lab)
        assert f"{relinker_phase} started, not finished" in status, status
        r = ringmgr(lab, *slow, "--json", check=1)
        assert json.loads(r.stdout)["phase"] == after
        assert starts(lab, step_name) == {n.name: 1 for n in lab.nodes}, \
            "never two relinkers"
    doc = ring_phase_killed("finish")
    assert doc["phase"] is None and doc["exit_code"] == 0
    assert not relinkers_running(lab)
    status, resume = half_state(lab)
    assert "partition-power increase" not in status and "increase-part-power" not in resume
    for ring in ("object", "object-1"):
        assert doc["rings"][ring]["part_power"] == 7
        assert doc["rings"][ring]["next_part_power"] is None
        for n in lab.nodes:
            r = Ring(n.swift_dir, ring_name=ring)
            assert (r.part_power, r.next_part_power) == (7, None)
    read_all(lab, objects)
    check_disk(lab, objects, 7, policies=["gold", "silver"])

    # the proxy answers by the new ring, and the object is on those nodes at that partition
    for (c, o) in list(objects)[::7]:
        policy = "object" if c == "c-gold" else "object-1"
        ring = Ring(lab.builder_dir, ring_name=policy)
        part, nodes = ring.get_nodes("AUTH_test", c, o)
        got, headers = endpoints(lab, c, o)
        assert got == {(n["ip"], n["port"], n["device"], part) for n in nodes}, (c, o)
        assert part == int(hash_path("AUTH_test", c, o)[:8], 16) >> 25
        for ip, port, dev, p in got:
            assert direct_head(ip, port, dev, p, c, o, headers) == 200, (c, o, ip, dev, p)


# -- --cancel while relinking -----------------------------------------------------------

@pytest.mark.lab(nodes=3, disks=1, xfs=True, part_power=6)
def test_cancel_while_relinking_stops_the_relinkers_and_backs_out(lab_cluster, lab_hash):
    lab = lab_cluster
    objects = upload(lab, ["gold", "silver"], 60)
    ringmgr(lab, "increase-part-power", "--yes", check=1)      # precheck
    ringmgr(lab, "increase-part-power", "--yes", check=1)      # prepare
    # relink, slow, not waited for: the relinkers run on the nodes
    r = ringmgr(lab, "increase-part-power", "--yes", "--files-per-second", "2", "--json",
                check=1)
    assert json.loads(r.stdout)["phase"] == "relink"
    pids = {n: rec["pid"] for n, rec in journal(lab)["params"]["runs"]["relink"].items()}
    assert sorted(pids) == ["s01", "s02", "s03"] and all(pids.values())
    wait_for(lambda: len(relinkers_running(lab)) >= 3, what="a relinker on every node")
    assert all(Path(f"/proc/{p}").exists() for p in pids.values())
    wait_for(lambda: any(f.stat().st_nlink == 2 for n in lab.nodes
                         for f in Path(n.mount_root).glob("sdb/objects*/*/*/*/*.data")),
             what="some objects relinked")

    r = ringmgr(lab, "increase-part-power", "--cancel", "--yes", "--all-phases", "--wait",
                "--poll", "0.5", "--json")
    doc = json.loads(r.stdout)
    # no relinker left: the recorded wrappers and every relinker process are gone
    gone = [p for p in pids.values() if Path(f"/proc/{p}").exists()
            and Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"]
    assert not gone, gone
    assert not relinkers_running(lab)
    assert {n: rec["state"] for n, rec in doc["nodes"]["relink"].items()} == \
        {n: "stopped" for n in pids}
    # swift's cancel: cancel, push, cleanup on every node, finish
    assert doc["phase"] is None and doc["exit_code"] == 0
    assert [p["name"] for p in doc["phases"]] == ["precheck", "prepare", "relink", "cancel",
                                                  "cleanup", "finish"]
    assert [p["state"] for p in doc["phases"]][3:] == ["done"] * 3
    assert starts(lab, "cleanup") == {n.name: 1 for n in lab.nodes}
    for ring in ("object", "object-1"):
        assert doc["rings"][ring]["part_power"] == 6
        assert doc["rings"][ring]["next_part_power"] is None
    read_all(lab, objects)
    check_disk(lab, objects, 6, policies=["gold", "silver"])   # the new links are gone
    status = ringmgr(lab, "status", check=None)
    assert "partition-power increase" not in status.stderr
    again = ringmgr(lab, "increase-part-power", "--json")
    assert json.loads(again.stdout)["reason"] == "nothing_to_do"


# -- the precheck's refusals on real XFS disks ---------------------------------------------

def df(path: str) -> dict:
    st = os.statvfs(path)
    return {"used": st.f_files - st.f_ffree, "free": st.f_ffree,
            "avail_kib": st.f_bavail * st.f_frsize // 1024}


def near(a: int, b: int) -> bool:
    """ringmgr's df and the test's, a moment apart (the servers may add a file)."""
    return abs(a - b) <= max(8, b // 20)


def refused(lab, *args) -> str:
    before = checksums(Path(lab.builder_dir))
    node_rings = {n.name: checksums(Path(n.swift_dir)) for n in lab.nodes}
    r = ringmgr(lab, "increase-part-power", "--yes", *args, check=2)
    assert checksums(Path(lab.builder_dir)) == before, "nothing written"
    assert {n.name: checksums(Path(n.swift_dir)) for n in lab.nodes} == node_rings
    assert not journal(lab).get("steps", {}).get("precheck")
    return one_line_error(r.stderr)


@pytest.mark.lab(nodes=3, disks=1, xfs=True, part_power=6)
def test_precheck_refuses_few_inodes_little_space_and_a_short_reclaim_age(lab_cluster):
    lab = lab_cluster
    upload(lab, ["gold"], 30)

    # too few inodes: s01's sdb made again with inodes capped at 1% of the disk
    # (mkfs.xfs -i maxpct=1), then filled with files until fewer are free than used
    s01 = lab.node("s01")
    mnt, loop = f"{s01.mount_root}/sdb", s01.block_devices["sdb"]
    label = subprocess.run(["blkid", "-o", "value", "-s", "LABEL", loop],
                           capture_output=True, text=True).stdout.strip()
    subprocess.run(["umount", mnt], check=True)
    subprocess.run(["mkfs.xfs", "-q", "-f", "-i", "maxpct=1", "-L", label, loop],
                   check=True)
    subprocess.run(["mount", "-t", "xfs", "-o", "noatime", loop, mnt], check=True)
    filler = Path(mnt, "filler")
    filler.mkdir()
    i = 0
    while df(mnt)["free"] >= df(mnt)["used"]:
        for _ in range(200):
            (filler / f"f{i}").touch()
            i += 1
        assert i < 100_000, df(mnt)
    fig = df(mnt)
    line = refused(lab)
    m = re.search(r"s01: sdb: (\d+) inodes free, (\d+) in use: the relink needs about "
                  r"as many again", line)
    assert m, line
    free, used = map(int, m.groups())
    assert free < used and near(free, fig["free"]) and near(used, fig["used"]), (m, fig)
    assert "s02" not in line and "s03" not in line
    subprocess.run(["rm", "-rf", str(filler)], check=True)

    # too little space: s02's sdb filled (fallocate) until less than 1 KiB per inode
    # in use is free
    s02 = lab.node("s02")
    mnt2 = f"{s02.mount_root}/sdb"
    need = df(mnt2)["used"]
    assert need > 20
    with open(Path(mnt2, "ballast"), "wb") as f:
        os.posix_fallocate(f.fileno(), 0, (df(mnt2)["avail_kib"] - need // 2) * 1024)
    fig = df(mnt2)
    assert 0 < fig["avail_kib"] < fig["used"], fig
    line = refused(lab)
    m = re.search(r"s02: sdb: (\d+) KiB free, the relink of (\d+) inodes needs about "
                  r"(\d+) KiB \(new inodes and directories\): free space first", line)
    assert m, line
    avail, used, need = map(int, m.groups())
    assert avail < need == used and near(avail, fig["avail_kib"]) and \
        near(used, fig["used"]), (m, fig)
    assert "s01" not in line and "s03" not in line
    Path(mnt2, "ballast").unlink()

    # reclaim_age too short for the expected relink+cleanup (2 x inodes in use / rate)
    conf = Path(lab.node("s03").swift_dir, "object-server.conf")
    original = conf.read_text()
    conf.write_text(original.replace("[object-replicator]\n",
                                     "[object-replicator]\nreclaim_age = 60\n"))
    used = max(df(f"{n.mount_root}/sdb")["used"] for n in lab.nodes)
    assert 2 * used / 2 > 60
    line = refused(lab, "--files-per-second", "2")
    m = re.search(r"reclaim_age 60 s is shorter than the expected relink and cleanup "
                  r"\((\d+) s at --files-per-second 2\) on s03: raise reclaim_age "
                  r"\(\[object-replicator\] in the object-server config\) above (\d+) s "
                  r"on every node first, or relink faster", line)
    assert m, line
    assert near(int(m.group(1)), used) and m.group(1) == m.group(2)
    # the same reclaim_age passes at a rate that relinks in time
    assert 2 * used / 1000 < 60
    ringmgr(lab, "increase-part-power", "--yes", "--files-per-second", "1000", check=1)
    assert journal(lab)["steps"]["precheck"]["state"] == "done"
    conf.write_text(original)


# -- the increase waits for a slow proxy ------------------------------------------------

@pytest.mark.lab(nodes=3, disks=1, xfs=True, part_power=6, proxy_ring_reload=15)
def test_the_increase_waits_until_a_slow_proxy_answers_by_the_new_ring(lab_cluster,
                                                                      lab_hash):
    """The proxy re-reads its rings only every 15 s ([cluster].ring_reload says 1 s): the
    increase phase ends only once the proxy's list_endpoints places names by the
    increased ring, so that no cleanup removes links the proxy still reads."""
    from swift.common.utils import hash_path

    lab = lab_cluster
    objects = upload(lab, ["gold"], 20)
    step = ("increase-part-power", "--yes", "--wait", "--poll", "0.5")
    for _ in range(3):                                  # precheck, prepare, relink
        ringmgr(lab, *step, check=1)
    assert journal(lab)["steps"]["relink"]["state"] == "done"
    # traffic on the proxy, as on a real one: it looks for a new ring at a request,
    # at most every 15 s, so after the push it routes by the old ring for up to 15 s
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                endpoints(lab, "c-gold", "o0000")
            except OSError:
                pass
            stop.wait(0.3)

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        r = ringmgr(lab, *step, "--json", check=1)      # increase
    finally:
        stop.set()
        t.join()
    assert json.loads(r.stdout)["phase"] == "cleanup"
    for (c, o) in list(objects)[:10]:                   # at once, no waiting here
        got, _ = endpoints(lab, c, o)
        assert {p for *_, p in got} == {int(hash_path("AUTH_test", c, o)[:8], 16) >> 25}
    assert "answers by the increased ring" in r.stderr + r.stdout
    ringmgr(lab, "increase-part-power", "--yes", "--all-phases", "--wait", "--poll", "0.5")
    read_all(lab, objects)
    check_disk(lab, objects, 7, policies=["gold"])
