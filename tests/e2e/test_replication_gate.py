"""The replication gate of gradual steps, on the real lab: refused after a push until a
replication pass started after push + ring reload, allowed after `sim/lab replicate`;
recon unreachable or a skewed clock refuses (nothing written) unless
--no-replication-check (recorded in the history); --wait waits for the pass."""

from __future__ import annotations

import json
import threading

import pytest

from ringmgr.config import load_config
from ringmgr.live.recon import Server, Sweep, Reply
from ringmgr.live.recon_parse import Pass
from ringmgr.live.repl_gate import Push, evaluate, last_pushes
from tests.e2e.test_health import Relay, ringmgr, tree_sums

DRAIN = ("drain-node", "s04", "--max-move", "15", "--yes")


def history(lab):
    return json.loads(ringmgr("--json", "history", env=lab.env).stdout)["history"]


@pytest.mark.lab(nodes=4, disks=1, part_power=6)
def test_drain_steps_wait_for_replication(lab_cluster, tmp_path):
    lab = lab_cluster
    assert lab.put("c") in (201, 202) and lab.put("c", "o", b"x" * 100) == 201
    lab.replicate()   # a pass, but before the push
    r = ringmgr("--json", *DRAIN, "--push", env=lab.env, check=1)
    first = json.loads(r.stdout)
    assert first["reason"] == "replication_pending" and first["written"]
    # no pass since the push: refused, naming the nodes and the times
    before = tree_sums(lab.builder_dir)
    r = ringmgr("--json", *DRAIN, "--push", env=lab.env, check=1)
    doc = json.loads(r.stdout)
    assert doc["reason"] == "replication_wait" and not doc["written"]
    gate = doc["replication_gate"]
    assert gate["open"] is False and not gate["errors"]
    text = "\n".join(gate["pending"])
    for node in ("s01", "s02", "s03", "s04"):     # the draining node too
        assert f"object replication on {node} last started " in text
        assert f"container replication on {node} last started " in text
    assert " push of object + 1 s ring reload (" in text
    assert len(gate["pending"]) == 12  # 4 nodes x 3 server types, each named once
    assert "replication has not caught up with the last push" in doc["message"]
    assert tree_sums(lab.builder_dir) == before
    assert len(history(lab)) == 1

    lab.replicate()
    r = ringmgr("--json", *DRAIN, "--push", env=lab.env)
    doc = json.loads(r.stdout)
    assert r.exit_code in (0, 1) and doc["written"], r.stdout
    assert doc["replication_gate"]["open"] is True
    assert len(history(lab)) == 2

    # --wait: the pass comes while it waits
    timer = threading.Timer(2.0, lab.replicate)
    timer.start()
    try:
        r = ringmgr("--json", *DRAIN, "--push", "--wait", "--timeout", "120", env=lab.env)
    finally:
        timer.join()
    doc = json.loads(r.stdout)
    assert doc["written"] and r.exit_code in (0, 1), (r.stdout, r.stderr)
    assert "waiting for replication" in r.stderr
    assert len(history(lab)) == 3


@pytest.mark.lab(nodes=4, disks=1, part_power=6)
def test_gate_refuses_when_recon_cannot_tell(lab_cluster, tmp_path):
    lab = lab_cluster
    ringmgr(*DRAIN, "--push", env=lab.env, check=1)
    lab.replicate()
    before = tree_sums(lab.builder_dir)

    lab.stop_node("s02")
    r = ringmgr("--json", *DRAIN, env=lab.env, check=2)
    doc = json.loads(r.stdout)
    assert doc["reason"] == "refused" and not doc["written"]
    assert "cannot tell whether replication finished" in doc["message"]
    assert "s02: recon 127." in doc["message"] and "connection refused" in doc["message"]
    assert "s01" not in doc["message"]
    assert tree_sums(lab.builder_dir) == before

    # a skewed clock (through a relay in front of the real recon)
    lab.start_node("s02")
    ips = [n.ip for n in lab.nodes]
    relay = Relay(ips, 16200, {ips[2]: "skew"})
    try:
        cfg = tmp_path / "relayed.toml"
        cfg.write_text(lab.config_path.read_text().replace(
            "[recon]", f"[recon]\nports = {{ object = {relay.port} }}"))
        r = ringmgr("--config", str(cfg), *DRAIN, env=lab.env, check=2)
        assert "s03: clock is +360" in r.stderr and "cannot be compared" in r.stderr
        assert tree_sums(lab.builder_dir) == before
    finally:
        relay.close()

    # the override: loud, and in the history
    lab.stop_node("s02")
    r = ringmgr("--json", *DRAIN, "--no-replication-check", env=lab.env)
    doc = json.loads(r.stdout)
    assert doc["written"] and any("--no-replication-check" in w for w in doc["warnings"])
    last = history(lab)[-1]
    assert "--no-replication-check" in last["argv"]
    assert "replication check skipped" in last["description"]


# --- evaluate(), pure ----------------------------------------------------------------
def _config(tmp_path, mount_check=True):
    p = tmp_path / "ringmgr.toml"
    p.write_text(f'[cluster]\nbuilder_dir = "{tmp_path}"\nring_reload = 10\n'
                 f'[nodes.s01]\nip = "10.0.0.1"\nmount_check = {str(mount_check).lower()}\n')
    return load_config(p)


def _sweep(start, *, skew=0.0, unmounted=(), now=1000.0):
    s = Server("s01", "object", "10.0.0.1", 6200)
    sw = Sweep()
    sw.replies[(s, "replication/object")] = Reply(s, "replication/object",
                                                  Pass(start, start and start + 5, 5.0))
    sw.replies[(s, "time")] = Reply(s, "time", now + skew, sent=now, received=now)
    sw.replies[(s, "unmounted")] = Reply(s, "unmounted", list(unmounted))
    return sw, {"object": {s: ["sdb", "sdc"]}}


@pytest.mark.parametrize("start,skew,unmounted,mount_check,pending", [
    (911.0, 0.0, (), True, ""),              # started after push 900 + 10: open
    (909.0, 0.0, (), True, "last started"),  # before push + reload
    (None, 0.0, (), True, "has not reported a finished pass"),
    (913.0, 4.0, (), True, "last started"),  # 913 on a clock 4 s fast = 909
    (911.0, 0.0, ("sdc",), True, "sdc unmounted"),
    (911.0, 0.0, ("sdc",), False, ""),       # mount_check false: a plain directory
    (911.0, 0.0, ("sdx",), True, ""),        # not a device of this ring
])
def test_evaluate(tmp_path, start, skew, unmounted, mount_check, pending):
    sw, servers = _sweep(start, skew=skew, unmounted=unmounted)
    res = evaluate(sw, servers, {"object": Push("object", 900.0, None)},
                   _config(tmp_path, mount_check))
    assert not res.errors
    assert ("\n".join(res.pending) == "") if not pending else pending in res.pending[0]
    assert res.open == (not pending)
    assert res.required == {"object": 910.0}


def test_evaluate_cannot_tell(tmp_path):
    sw, servers = _sweep(911.0, skew=60.0)
    res = evaluate(sw, servers, {"object": Push("object", 900.0, None)}, _config(tmp_path))
    assert res.errors == ["s01: clock is +60.0 s off the admin host's (more than "
                          "[recon].max_clock_skew, 5 s): its pass times cannot be compared "
                          "with the push time"]
    s = next(iter(servers["object"]))
    sw.replies[(s, "replication/object")] = Reply(s, "replication/object",
                                                  error="HTTP 503: 'x'")
    res = evaluate(sw, servers, {"object": Push("object", 900.0, None)}, _config(tmp_path))
    assert "s01: recon 10.0.0.1:6200 /recon/replication/object: HTTP 503: 'x'" in res.errors


def test_unpushed_change_and_no_push(tmp_path):
    pushes = last_pushes(["object", "account"],
                         [{"id": 3, "time": 950.0, "rings": {"object": {}}}],
                         [{"time": 900.0, "rings": {"object": "m", "account": "a"}}])
    assert pushes["object"].unpushed_change["id"] == 3 and pushes["account"].unpushed_change is None
    sw, servers = _sweep(911.0)
    res = evaluate(sw, servers, pushes, _config(tmp_path))
    assert "change #3" in res.pending[0] and "has not been pushed" in res.pending[0]
    res = evaluate(sw, servers, {"object": Push("object", None, None)}, _config(tmp_path))
    assert res.open and "no push of this ring is recorded" in res.notes[0]


def test_without_swift_conf_object_n_rings_are_taken_as_replicated_with_a_note(tmp_path):
    from ringmgr.live.repl_gate import replication_gate
    from tests.helpers.ringfactory import make_cluster

    c = make_cluster(tmp_path / "a")            # no swift_conf; no push recorded
    res = replication_gate(load_config(c.config), ["object", "object-1"])
    assert res.open and any(n.startswith("no [cluster].swift_conf: object-1 taken as "
                                         "replicated") for n in res.notes), res.notes
    conf = tmp_path / "swift.conf"
    conf.write_text("[storage-policy:0]\nname = gold\ndefault = yes\n"
                    "[storage-policy:1]\nname = silver\n")
    cfg = c.config.read_text().replace("[cluster]\n", f'[cluster]\nswift_conf = "{conf}"\n', 1)
    c.config.write_text(cfg)
    res = replication_gate(load_config(c.config), ["object", "object-1"])
    assert not any("swift_conf" in n for n in res.notes), res.notes
