"""rings/store.py in-process on small real builders (swift's RingBuilder): discovery,
loading, the ring checks, the interrupted-change state, preflight refusals, push records.

The transaction itself (txn.py) is driven through the CLI tests and SIGKILLed by the
random-fault run (test_random_faults.py); these pin the store's own decisions and
messages (the mutation score, docs/testing.md).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from swift.common.ring import RingBuilder

from ringmgr.errors import BuilderError, Refused
from ringmgr.rings import store as store_mod
from ringmgr.rings.store import RingStore, _append_line, _read_jsonl, _ring_order, pending_change
from tests.helpers.ringfactory import lock_held


@pytest.fixture
def cluster_options():
    return {"rings": ("account", "object", "object-1", "container"), "nodes": 3, "disks": 1,
            "part_power": 4}


def test_paths(tmp_path):
    s = RingStore(tmp_path)
    assert (s.state_dir, s.txn_dir, s.history_path, s.backup_dir) == (
        tmp_path / ".ringmgr", tmp_path / ".ringmgr" / "txn",
        tmp_path / ".ringmgr" / "history.jsonl", tmp_path / "backups")
    f = s.files("object-1")
    assert (f.name, f.builder, f.ring) == ("object-1", tmp_path / "object-1.builder",
                                           tmp_path / "object-1.ring.gz")


def test_from_config(cluster):
    from ringmgr.config import load_config

    s = RingStore.from_config(load_config(cluster.config))
    assert (s.dir, s.only, s.lock_timeout) == (cluster.builder_dir, None, 1.5)


def test_require_dir(tmp_path):
    with pytest.raises(BuilderError) as e:
        RingStore(tmp_path / "missing").require_dir()
    assert str(e.value) == f"builder_dir {tmp_path / 'missing'} does not exist or is not a directory"
    (tmp_path / ".ringmgr").write_text("x")
    with pytest.raises(BuilderError) as e:
        RingStore(tmp_path).require_dir()
    assert str(e.value) == (f"{tmp_path / '.ringmgr'} is not a directory (ringmgr keeps its "
                            f"history and transactions there): move it away")
    os.unlink(tmp_path / ".ringmgr")
    os.symlink(tmp_path, tmp_path / ".ringmgr")         # a symlink is no directory here
    with pytest.raises(BuilderError):
        RingStore(tmp_path).require_dir()


def test_discover_orders_and_filters(cluster):
    (cluster.builder_dir / "old.builder").write_bytes(b"x")      # not a ring name
    (cluster.builder_dir / "old.ring.gz").write_bytes(b"x")
    assert RingStore(cluster.builder_dir).discover() == ["account", "container", "object",
                                                         "object-1"]
    assert _ring_order("object-12") == (2, 12)
    assert sorted(["object-10", "object-2", "object", "container", "account"],
                  key=_ring_order) == ["account", "container", "object", "object-2",
                                       "object-10"]


def test_discover_with_configured_rings(cluster):
    assert RingStore(cluster.builder_dir, rings=("object", "account")).discover() == \
        ["account", "object"]
    with pytest.raises(BuilderError) as e:
        RingStore(cluster.builder_dir, rings=("objects",)).discover()
    assert str(e.value) == ("cluster.rings: 'objects' is not a ring name (account, "
                            "container, object, object-N)")
    with pytest.raises(BuilderError) as e:
        RingStore(cluster.builder_dir, rings=("object-7",)).discover()
    assert str(e.value) == (f"{cluster.builder_dir / 'object-7.builder'} is missing "
                            f"(listed in cluster.rings)")
    os.symlink("nowhere", cluster.builder_dir / "object-8.builder")   # lexists: listed
    assert RingStore(cluster.builder_dir, rings=("object-8",)).discover() == ["object-8"]
    with pytest.raises(BuilderError) as e:
        RingStore(cluster.builder_dir, rings=()).discover()
    assert str(e.value) == f"no *.builder files in {cluster.builder_dir}"


def test_discover_refuses_a_ring_without_its_builder(cluster, tmp_path):
    os.unlink(cluster.builder_dir / "object-1.builder")
    with pytest.raises(BuilderError) as e:
        RingStore(cluster.builder_dir).discover()
    assert str(e.value) == (f"{cluster.builder_dir / 'object-1.builder'} is missing but "
                            f"object-1.ring.gz exists: restore the builder from "
                            f"{cluster.builder_dir / 'backups'} (rebuilding one from a ring "
                            f"is lossy)")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BuilderError) as e:
        RingStore(empty).discover()
    assert str(e.value) == f"no *.builder files in {empty}"


def test_load_keeps_the_md5_of_the_bytes_read(cluster):
    import hashlib

    s = RingStore(cluster.builder_dir)
    b = s.load("object")
    raw = (cluster.builder_dir / "object.builder").read_bytes()
    assert isinstance(b, RingBuilder) and b.part_power == 4
    assert s.loaded == {"object": hashlib.md5(raw).hexdigest()}
    assert s._loaded_bytes == {"object": raw}
    with pytest.raises(BuilderError) as e:
        s.load("object-5")
    assert str(e.value) == f"{cluster.builder_dir / 'object-5.builder'} is missing"
    assert set(s.load_all()) == {"account", "container", "object", "object-1"}


def test_ring_checks_full_and_as_written(cluster):
    s = RingStore(cluster.builder_dir)
    b = s.load("object")
    assert s.ring_state("object", b) == "up to date"
    checks = s.ring_checks(["object", "account"])
    assert {n: c.state for n, c in checks.items()} == {"object": "up to date",
                                                       "account": "up to date"}
    assert checks["object"].detail != "as ringmgr wrote it"      # no history: full check
    b.set_dev_weight(0, 42.0)
    b.rebalance(seed=3)
    b.save(str(cluster.builder_dir / "object.builder"))
    assert s.ring_checks(["object"])["object"].state == "stale"
    assert s.ring_check("object", b).state == "stale"


def recorded_as_they_are(s, monkeypatch) -> dict:
    """The history answers one change that recorded the object builder and ring as they
    are now; that record (to edit)."""
    from ringmgr.rings.files import md5_file

    f = s.files("object")
    rec = {"rings": {"object": {"builder_md5_after": md5_file(f.builder),
                                "ring_md5_after": md5_file(f.ring)}}}
    monkeypatch.setattr(RingStore, "history", lambda self: [rec])
    return rec


def test_ring_checks_trust_what_the_history_recorded(cluster, monkeypatch):
    s = RingStore(cluster.builder_dir)
    rec = recorded_as_they_are(s, monkeypatch)
    full = []
    monkeypatch.setattr(RingStore, "ring_check", lambda self, n, b: full.append(n) or
                        store_mod.RingCheck("stale", "checked"))
    out = s.ring_checks(["object"])
    assert (out["object"].state, out["object"].detail, full) == ("up to date",
                                                                 "as ringmgr wrote it", [])
    # the ring md5 given by the caller (push's own read) is the one compared
    out = s.ring_checks(["object"], ring_md5s={"object": "0" * 32})
    assert (out["object"].state, full) == ("stale", ["object"])
    # a builder that is no longer the recorded one gets the full check
    (cluster.builder_dir / "object.builder").write_bytes(
        (cluster.builder_dir / "account.builder").read_bytes())
    assert s.ring_checks(["object"])["object"].detail == "checked"
    # no ring md5 recorded: full check
    rec["rings"]["object"]["ring_md5_after"] = None
    assert s.ring_checks(["object"])["object"].detail == "checked"


def test_ring_checks_fall_back_when_history_is_damaged(cluster, monkeypatch):
    def damaged(self):
        raise store_mod.HistoryDamaged([(1, "bad")])

    monkeypatch.setattr(RingStore, "history", damaged)
    s = RingStore(cluster.builder_dir)
    assert s.ring_checks(["object"])["object"].state == "up to date"


def test_ring_checks_symlinked_builder_gets_the_full_check(cluster, monkeypatch):
    s = RingStore(cluster.builder_dir)
    f = s.files("object")
    recorded_as_they_are(s, monkeypatch)
    os.rename(f.builder, cluster.builder_dir / "real.builder.bak")
    os.symlink(cluster.builder_dir / "real.builder.bak", f.builder)
    with pytest.raises(BuilderError):                   # the full check reads it: refused
        s.ring_checks(["object"])


def test_check_rings_readable(cluster):
    s = RingStore(cluster.builder_dir)
    builders = s.load_all()
    s.check_rings_readable(builders)
    os.unlink(cluster.builder_dir / "container.ring.gz")
    with pytest.raises(BuilderError) as e:
        s.check_rings_readable(builders)
    assert str(e.value).startswith(f"{cluster.builder_dir / 'container.ring.gz'} is missing (")
    assert str(e.value).endswith(f"); write it from the builder with `ringmgr write-rings` "
                                 f"(or restore it from {cluster.builder_dir / 'backups'})")
    # a builder never rebalanced has no ring to be missing
    fresh = RingBuilder(4, 3, 1)
    s.check_rings_readable({"container": fresh})
    (cluster.builder_dir / "account.ring.gz").write_bytes(b"garbage")
    with pytest.raises(BuilderError) as e:
        s.check_rings_readable({"account": builders["account"]})
    assert " is corrupt (" in str(e.value)


def test_refuse_unchangeable_during_a_part_power_increase(cluster):
    s = RingStore(cluster.builder_dir)
    b = s.load("object")
    s.refuse_unchangeable({"object": b})
    b.next_part_power = 5
    with pytest.raises(Refused) as e:
        s.refuse_unchangeable({"account": s.load("account"), "object": b})
    assert str(e.value) == ("object: a partition-power increase is in progress "
                            "(next_part_power=5); continue it with `ringmgr "
                            "increase-part-power` (or cancel it with --cancel) before "
                            "changing this ring")


def test_pending_states(cluster):
    s = RingStore(cluster.builder_dir)
    assert s.pending() is None and pending_change(cluster.builder_dir) is None
    s.refuse_if_pending()
    s.txn_dir.mkdir(parents=True)
    assert s.pending() == {"id": None, "committed": False, "description": "", "rings": [],
                           "running": False}
    with pytest.raises(Refused) as e:
        s.refuse_if_pending()
    assert str(e.value) == (f"an interrupted ring change (not committed) is pending in "
                            f"{s.txn_dir}: run `ringmgr resume` to undo it first")
    (s.txn_dir / "journal.json").write_text(json.dumps(
        {"record": {"id": 4, "description": "remove s03", "rings": {"object": {},
                                                                   "account": {}}}}))
    assert s.pending() == {"id": 4, "committed": True, "description": "remove s03",
                           "rings": ["account", "object"], "running": False}
    assert pending_change(cluster.builder_dir)["id"] == 4
    with pytest.raises(Refused) as e:
        s.refuse_if_pending(held=True)
    assert str(e.value) == (f"an interrupted ring change (committed, not yet finished) is "
                            f"pending in {s.txn_dir}: run `ringmgr resume` to finish it first")
    (s.txn_dir / "journal.json").write_text(json.dumps({"record": {"id": 5, "rings": {}}}))
    assert s.pending()["description"] == ""
    for bad in ("{", json.dumps({"record": {}}), json.dumps([1])):
        (s.txn_dir / "journal.json").write_text(bad)
        with pytest.raises(BuilderError) as e:
            s.pending()
        assert str(e.value) == (f"{s.txn_dir / 'journal.json'} is unreadable; inspect "
                                f"{s.txn_dir} by hand")


def test_pending_while_another_process_writes(cluster):
    s = RingStore(cluster.builder_dir)
    s.txn_dir.mkdir(parents=True)
    with lock_held(cluster.builder_dir, by="ringmgr") as holder:
        assert s.pending()["running"] is True
        assert s.pending(held=True)["running"] is False
        with pytest.raises(Refused) as e:
            s.refuse_if_pending()
        assert str(e.value).startswith("a ring change is being written right now by ")
        assert str(holder.pid) in str(e.value)
        assert str(e.value).endswith("; let it finish, then run the command again")


def test_lock_requires_the_directory_and_tells_who_holds_it(cluster, tmp_path):
    with pytest.raises(BuilderError):
        RingStore(tmp_path / "missing").lock()
    told = []
    s = RingStore(cluster.builder_dir, lock_timeout=0.3)
    with lock_held(cluster.builder_dir, by="ringmgr"):
        lk = s.lock(on_wait=told.append)
        with pytest.raises(Exception):
            with lk:
                pass
    assert told and "pid" in told[0]
    with s.lock():
        pass


def test_preflight_refusals(cluster):
    s = RingStore(cluster.builder_dir)
    s.preflight(["object"])
    os.rename(cluster.builder_dir / "object.ring.gz", cluster.builder_dir / "o.bak")
    os.symlink(cluster.builder_dir / "o.bak", cluster.builder_dir / "object.ring.gz")
    with pytest.raises(Refused) as e:
        s.preflight(["object"])
    assert str(e.value).startswith(f"ring file {cluster.builder_dir / 'object.ring.gz'} is a symlink")
    s.preflight(["account"])
    os.unlink(cluster.builder_dir / "object.ring.gz")
    os.symlink(cluster.builder_dir / "o.bak", cluster.builder_dir / "object.builder.x")
    os.rename(cluster.builder_dir / "object.builder", cluster.builder_dir / "b.bak")
    os.symlink(cluster.builder_dir / "b.bak", cluster.builder_dir / "object.builder")
    with pytest.raises(Refused) as e:
        s.preflight(["object"])
    assert str(e.value).startswith(f"builder {cluster.builder_dir / 'object.builder'} is a symlink")
    p = cluster.builder_dir / "backups"
    p.write_text("x")
    with pytest.raises(Refused) as e:
        s.preflight(["account"])
    assert str(e.value) == f"{p} is not a directory: move it away; nothing was changed"
    p.unlink()
    (cluster.builder_dir / ".ringmgr").write_text("x")
    with pytest.raises(BuilderError):                   # require_dir's refusal, first
        s.preflight(["account"])
    (cluster.builder_dir / ".ringmgr").unlink()
    (cluster.builder_dir / ".ringmgr").mkdir()
    (cluster.builder_dir / ".ringmgr" / "history.jsonl").mkdir()
    with pytest.raises(Refused) as e:
        s.preflight(["account"])
    assert str(e.value) == (f"{s.history_path} is not a regular file: move it away; "
                            f"nothing was changed")
    os.rmdir(s.history_path)
    s.preflight(["account"])


def test_preflight_refuses_an_immutable_state_dir(cluster):
    s = RingStore(cluster.builder_dir)
    s.backup_dir.mkdir()
    r = subprocess.run(["chattr", "+i", str(s.backup_dir)], capture_output=True)
    if r.returncode:
        pytest.skip("chattr +i not supported here")
    try:
        with pytest.raises(Refused) as e:
            s.preflight(["account"])
        assert "is immutable" in str(e.value) and str(s.backup_dir) in str(e.value)
    finally:
        subprocess.run(["chattr", "-i", str(s.backup_dir)])
    with pytest.raises(BuilderError):
        RingStore(cluster.builder_dir / "missing").preflight([])


def test_push_records_and_jsonl(cluster, tmp_path):
    s = RingStore(cluster.builder_dir, clock=lambda: 1234.5)
    assert s.pushes() == []
    s.record_push({"change_id": 1, "ok": True})
    s.record_push({"change_id": 2, "ok": False, "user": "someone"})
    got = s.pushes()
    assert [p["change_id"] for p in got] == [1, 2]
    assert got[0]["time"] == 1234.5 and got[0]["user"] == store_mod.txn.user_name()
    assert got[1]["user"] == "someone"
    raw = (s.state_dir / "pushes.jsonl").read_text()
    assert raw.endswith("\n") and raw.count("\n") == 2
    assert raw.splitlines()[0] == json.dumps({"change_id": 1, "ok": True, "time": 1234.5,
                                              "user": store_mod.txn.user_name()},
                                             sort_keys=True)
    with pytest.raises(BuilderError):
        RingStore(tmp_path / "missing").pushes()

    p = tmp_path / "x.jsonl"
    assert _read_jsonl(p) == []
    p.write_text('{"a": 1}\n{"b": 2')              # torn last line, no newline
    _append_line(p, '{"c": 3}')
    assert p.read_text() == '{"a": 1}\n{"b": 2\n{"c": 3}\n'
    assert _read_jsonl(p) == [{"a": 1}, {"c": 3}]
    _append_line(p, '{"d": 4}')
    assert p.read_text().endswith('{"c": 3}\n{"d": 4}\n')
    t = tmp_path / "one.jsonl"
    t.write_text("{")                               # a torn line of one byte
    _append_line(t, "{}")
    assert t.read_text() == "{\n{}\n"
    q = tmp_path / "new.jsonl"
    _append_line(q, "{}")
    assert q.read_text() == "{}\n"


def test_history_of_an_empty_store_and_next_id(cluster, tmp_path):
    s = RingStore(cluster.builder_dir)
    assert s.history() == [] and s.read_history() == ([], [])
    assert s.next_id() == 1
    for call in (RingStore(tmp_path / "missing").history,
                 RingStore(tmp_path / "missing").read_history):
        with pytest.raises(BuilderError):
            call()


def test_lstat(tmp_path):
    assert store_mod._lstat(tmp_path / "missing") is None
    os.symlink("nowhere", tmp_path / "l")
    assert store_mod._lstat(tmp_path / "l") is not None


def test_damaged_history_is_reported_with_its_lines(cluster):
    s = RingStore(cluster.builder_dir)
    s.state_dir.mkdir()
    s.history_path.write_text("not json\n")
    records, damage = s.read_history()
    assert records == [] and [n for n, _ in damage] == [1]
    msg = s.damage_message(damage)
    assert msg.startswith(f"{s.history_path} is damaged: line 1 (")
    assert msg.endswith("rollback and new changes refuse until it is repaired: "
                        "`ringmgr history --repair` sets the damaged lines aside")
    with pytest.raises(store_mod.HistoryDamaged):
        s.history()
    with pytest.raises(store_mod.HistoryDamaged):
        s.next_id()
    s.repair_history()
    assert s.history() == [] and s.read_history() == ([], [])


def test_recover_undoes_drops_or_forces_as_asked(cluster, monkeypatch):
    """resume's three ways out of an interrupted change, through the store."""
    s = RingStore(cluster.builder_dir)
    assert s.recover() is None                          # nothing pending
    s.txn_dir.mkdir(parents=True)
    assert s.recover() == ("undid an interrupted change that had not been committed; "
                           "the old rings stand")
    s.txn_dir.mkdir()
    assert s.recover(discard=True).startswith("dropped the pending change #None")
    assert not s.txn_dir.exists()
    # committed (journal written), then the builder edited by another tool
    b = s.load("object")
    b.set_dev_weight(0, b.devs[0]["weight"] / 2)
    b.rebalance(seed=1)
    monkeypatch.setenv("RINGMGR_TEST_FAULT", "txn:committed")
    monkeypatch.setenv("RINGMGR_TEST_FAULT_ERRNO", "EIO")
    with pytest.raises(OSError):
        s.commit({"object": b}, {"description": "half weight"})
    monkeypatch.delenv("RINGMGR_TEST_FAULT")
    assert s.pending(held=True)["committed"] is True
    builder = s.files("object").builder
    edited = builder.read_bytes() + b"\0"
    builder.write_bytes(edited)
    with pytest.raises(Refused) as e:
        s.recover()
    assert "object.builder changed while change" in str(e.value)
    assert builder.read_bytes() == edited
    assert s.recover(force=True).startswith("finished interrupted change")
    assert builder.read_bytes() != edited and s.pending() is None
