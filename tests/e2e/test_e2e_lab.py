"""End to end on a real local Swift cluster (sim/lab): ring changes pushed over real
SSH to the nodes, replication run, and the data still there."""

import json
import subprocess

import pytest

pytestmark = pytest.mark.slow

OBJECTS = {f"o{i}": f"payload {i}".encode() * 50 for i in range(20)}


def ringmgr(lab, *args):
    return subprocess.run(["ringmgr", *args], capture_output=True, text=True, env=lab.env,
                          timeout=300)


def fill(lab) -> None:
    assert lab.put("e2e") in (201, 202)
    for name, body in OBJECTS.items():
        assert lab.put("e2e", name, body) == 201


def pushed_and_replicated(lab, r) -> None:
    """A ring change written and pushed: every node agrees, and after a replication
    pass every object still reads back."""
    assert r.returncode in (0, 1), r.stderr
    assert json.loads(r.stdout)["written"] is True
    assert ringmgr(lab, "verify").returncode == 0
    lab.replicate()
    assert all_readable(lab)


def all_readable(lab) -> bool:
    return all(lab.get("e2e", name) == (200, body) for name, body in OBJECTS.items())


@pytest.mark.lab(nodes=4, disks=1)
def test_remove_push_replicate_rejoin(lab_cluster):
    lab = lab_cluster
    fill(lab)
    r = ringmgr(lab, "verify")
    assert r.returncode == 0, r.stdout + r.stderr

    # object-1 keeps 2 replicas: by swift's own quorum (1 of 2, the default) writes
    # still succeed with s04 stopped; by the stricter majority rule (2 of 2) no node may
    r = ringmgr(lab, "ok-to-stop", "s04")
    assert r.returncode == 0, r.stdout + r.stderr
    r = ringmgr(lab, "ok-to-stop", "s04", "--quorum", "majority")
    assert r.returncode == 1 and "object-1" in r.stdout and "NOT SAFE" in r.stdout

    pushed_and_replicated(lab, ringmgr(lab, "--json", "remove-node", "s04", "--yes", "--push"))
    pushed_and_replicated(lab, ringmgr(lab, "--json", "rejoin-node", "s04", "--yes", "--push"))
    hist = json.loads(ringmgr(lab, "--json", "history").stdout)["history"]
    assert [e["description"].split()[0] for e in hist][-2:] == ["remove", "rejoin"]


def count_files(path) -> int:
    import os

    return sum(len(files) for _, _, files in os.walk(path))


@pytest.mark.lab(nodes=3, disks=2, xfs=True)
def test_replace_disk_refills_from_replicas(lab_cluster):
    """The operations guide's "Replacing a Swift Disk" on a real XFS disk of a running
    Swift node: take it out, swap it, format and mount it, let replication refill it."""
    import os

    lab = lab_cluster
    node = lab.node("s01")
    dev = node.devices[0]
    mount_point = os.path.join(node.mount_root, dev)
    label = subprocess.run(["blkid", "-s", "LABEL", "-o", "value", node.block_devices[dev]],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert label
    fill(lab)
    lab.replicate()
    assert count_files(os.path.join(mount_point, "objects")) > 0

    r = ringmgr(lab, "replace-disk", "s01", dev, "--label", label, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.ismount(mount_point)
    st = os.stat(mount_point)
    assert (st.st_uid, oct(st.st_mode & 0o777)) == (0, "0o755")  # guarded while out
    assert all_readable(lab)  # the other replicas serve meanwhile

    lab.swap_disk("s01", dev)
    r = ringmgr(lab, "replace-disk", "s01", dev, "--replaced", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.ismount(mount_point)
    assert count_files(os.path.join(mount_point, "objects")) == 0  # a blank filesystem
    lab.replicate()
    assert count_files(os.path.join(mount_point, "objects")) > 0   # refilled
    assert all_readable(lab)


@pytest.mark.lab(nodes=4, disks=1)
def test_drain_node_step_by_step_keeps_the_data(lab_cluster):
    """The gradual way out on a running cluster: each `drain-node` run performs the next
    weight step (pushed, then replicated), the last one removes the node."""
    lab = lab_cluster
    fill(lab)
    plan = ringmgr(lab, "--json", "drain-node", "s04", "--max-move", "15", "--dry-run")
    assert plan.returncode in (0, 1), plan.stderr
    steps = json.loads(plan.stdout)["steps"]
    assert len(steps) >= 2
    for _ in range(len(steps) + 2):
        r = ringmgr(lab, "--json", "drain-node", "s04", "--max-move", "15", "--yes", "--push")
        report = json.loads(r.stdout)
        if r.returncode == 0 and report.get("already_removed"):
            assert "already drained and removed (change #" in report["message"]
            assert report["reason"] == "nothing_to_do"
            break  # drained and removed: nothing left to do
        pushed_and_replicated(lab, r)
        if report["reason"] == "replication_pending":  # pushed already: next is the step
            assert len(report["next"]) == 1, report["next"]
            assert "drain-node s04 --max-move 15" in report["next"][0]["command"]
    else:
        pytest.fail("the drain did not finish")
    hist = json.loads(ringmgr(lab, "--json", "history").stdout)["history"]
    assert len(hist) >= 2
    assert [e["change"]["info"]["gradual"]["step"] for e in hist] == \
        list(range(1, len(hist) + 1))
    status = json.loads(ringmgr(lab, "--json", "status").stdout)
    assert all("s04" not in r["nodes"] for r in status["rings"].values())
    # back at the weights it had before the drain, not at weight 0
    r = ringmgr(lab, "--json", "rejoin-node", "s04", "--yes", "--push")
    assert json.loads(r.stdout)["weights"]["object"] == {"sdb": 100.0}, r.stderr
    pushed_and_replicated(lab, r)


def lab_procs(lab) -> dict:
    return {p["name"]: p["pid"] for p in json.loads((lab.state / "procs.json").read_text())}


@pytest.mark.lab(nodes=3, disks=1, xfs=True)
def test_reboot_node_in_the_lab_goes_down_comes_back_and_the_host_stays_up(lab_cluster):
    """The operations guide's "Rebooting a Storage Node", rehearsed: the lab's
    reboot_command takes the node's servers, disks and SSH down and brings them back
    (its own sshd, so only that node goes away); ringmgr sees it unreachable, then
    back, checks disks and rings; the machine itself never reboots."""
    import urllib.request
    from pathlib import Path

    lab = lab_cluster
    fill(lab)
    host_boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    before = lab_procs(lab)
    assert {"proxy-sshd", "s01-sshd", "s02-sshd", "s03-sshd"} <= set(before)
    r = ringmgr(lab, "--json", "reboot-node", "s02", "--yes", "--timeout", "120")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "safe to stop s02" in r.stderr
    assert "s02 is down" in r.stderr and "s02 is back" in r.stderr
    data = json.loads(r.stdout)
    assert data["boot_id_before"] == data["boot_id_after"] == host_boot
    assert data["seconds_down"] > 0 and data["unmounted"] == []
    assert data["rings"] and set(data["rings"].values()) == {"ok"}
    after = lab_procs(lab)
    for name in ("s02-object-server", "s02-container-server", "s02-account-server",
                 "s02-rsyncd", "s02-sshd"):
        assert after[name] != before[name], name      # s02 really went down and came up
    for name in ("s01-object-server", "s03-sshd", "proxy-server"):
        assert after[name] == before[name], name      # nothing else did
    st = {n["name"]: n for n in lab.status()["nodes"]}
    assert st["s02"]["stopped"] == [] and st["s02"]["devices"] == {"sdb": True}
    ip = lab.node("s02").ip
    with urllib.request.urlopen(f"http://{ip}:16200/recon/diskusage", timeout=10) as resp:
        assert json.loads(resp.read())[0]["mounted"] is True   # its servers answer again
    assert all_readable(lab)
    assert lab.put("e2e", "after-reboot", b"still writable") == 201
    assert Path("/proc/sys/kernel/random/boot_id").read_text().strip() == host_boot
