"""The transaction that changes several rings all or nothing, and its recovery.

See ``store.py`` for the steps.  These functions take the ``RingStore`` whose
directory they change; ``RingStore.commit`` and ``RingStore.recover`` call them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ringmgr.errors import Refused, RingmgrError
from ringmgr.rings.builderfile import builder_pickle, describe_difference
from ringmgr.rings.files import (
    atomic_write, fault_point, fsync_dir, md5_file, os_error_message, read_regular,
    sweep_temp_files,
)
from ringmgr.rings.historylog import HistoryDamaged

JOURNAL = "journal.json"
SET_ASIDE = "set-aside"


def user_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


class PartlyInstalled(RingmgrError):
    """A committed change could not be installed completely (exit 2, but written)."""

    written = True
    reason = "partly_installed"


def recover(store, *, discard: bool = False, force: bool = False) -> str | None:
    """Finish a committed interrupted change or undo an uncommitted one (call locked).

    A file that changed while the change was pending (an edit by swift-ring-builder)
    is never overwritten: resume refuses and says so, ``discard`` drops the pending
    change instead (its files are set aside in ``.ringmgr/set-aside/``), ``force``
    backs the edited file up and installs the change over it."""
    p = store.pending(held=True)
    if p is None:
        sweep_temp_files(store.dir)
        sweep_temp_files(store.backup_dir)
        sweep_temp_files(store.state_dir)
        return None
    if p["committed"] and not discard:
        journal = json.loads((store.txn_dir / JOURNAL).read_text())
        edited = _edited_meanwhile(store, journal)
        if edited and not force:
            raise Refused(
                f"{', '.join(edited)} changed while change #{p['id']} was pending "
                f"(edited by another tool?): resume overwrote nothing. Keep that edit "
                f"and drop change #{p['id']}: `ringmgr resume --discard`; or back it up "
                f"and install change #{p['id']} over it: `ringmgr resume --force`")
        if edited:
            _backup_files(store, [store.dir / f for f in edited], f"edited.{p['id']}")
        _install(store, journal, check=not force)
        msg = f"finished interrupted change #{p['id']} ({p['description']})"
    elif discard:
        aside = _set_aside(store, store.txn_dir, f"discarded-{p['id'] or 'uncommitted'}")
        msg = (f"dropped the pending change #{p['id']} ({p['description']}); the files "
               f"on disk stand, its staged files are in {aside}")
    else:
        shutil.rmtree(store.txn_dir)
        fsync_dir(store.state_dir)
        msg = "undid an interrupted change that had not been committed; the old rings stand"
    sweep_temp_files(store.dir)
    sweep_temp_files(store.backup_dir)
    sweep_temp_files(store.state_dir)
    return msg


def _edited_meanwhile(store, journal: dict) -> list[str]:
    """Final files that are neither the state before the change nor its result."""
    edited = []
    rings = journal["record"].get("rings", {})
    for fname in journal["files"]:
        ring, kind = _split_name(fname)
        entry = rings.get(ring, {})
        now = md5_file(store.dir / fname)
        allowed = {entry.get(f"{kind}_md5_before"), entry.get(f"{kind}_md5_after")}
        if now not in allowed:
            edited.append(fname)
    return edited


def commit(store, new_builders: dict, record: dict, *,
           expected_md5: dict | None = None) -> dict:
    """Write ``new_builders`` (name -> RingBuilder) all or nothing; call locked.

    ``record`` is the history entry (description, argv, seed, ...); this fills in
    id, time, user and per ring the versions, md5s and backups, and returns it.
    ``expected_md5`` (default: what this store loaded) is the md5 each builder file
    must still have: if another tool changed one meanwhile, nothing is written.
    """
    store.refuse_if_pending(held=True)
    store.preflight(new_builders)
    expected = dict(store.loaded)
    expected.update(expected_md5 or {})
    current = _compare_and_swap(store, new_builders, expected)
    record = dict(record)
    record.setdefault("id", store.next_id())
    record.setdefault("time", store.clock())
    record.setdefault("user", user_name())
    record.setdefault("rings", {})
    written: list[Path] = []
    try:
        journal = _stage(store, new_builders, record, current, written)
    except OSError as e:
        _undo_staging(store, written)
        raise RingmgrError(os_error_message(e, "the change could not be staged")
                           + "; nothing was changed") from None
    fault_point("txn:committed")
    try:
        _install(store, journal)
    except HistoryDamaged as e:
        raise PartlyInstalled(f"installed, but not recorded: {e}; then run `ringmgr "
                              f"resume` to record change #{record['id']}") from None
    except OSError as e:
        raise PartlyInstalled(
            f"partly installed: {os_error_message(e, 'installing the new files failed')};"
            f" change #{record['id']} is committed: fix that, then run `ringmgr resume` "
            f"to finish it (`ringmgr status` shows it)") from None
    return record


def _compare_and_swap(store, new_builders: dict, expected: dict) -> dict[str, bytes | None]:
    """The current bytes of each target builder, refused if not the expected ones."""
    current = {}
    for name, new in new_builders.items():
        path = store.files(name).builder
        try:
            data = read_regular(path, what="builder")
        except FileNotFoundError:
            data = None
        md5 = hashlib.md5(data).hexdigest() if data is not None else None
        want = expected.get(name, md5)
        if md5 != want:
            aside = _keep_rejected(store, name, new)
            what = describe_difference(store._loaded_bytes.get(name), data, path)
            raise Refused(f"{path} changed while this change was being computed "
                          f"({what}): nothing was written; "
                          f"the edit on disk stands, this change's result is kept in "
                          f"{aside}. Run the command again to plan on the new builder")
        current[name] = data
    return current


def _keep_rejected(store, name: str, builder) -> Path:
    stamp = int(store.clock())
    d = store.state_dir / SET_ASIDE
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{stamp}.{name}.builder"
    atomic_write(path, builder_pickle(builder))
    return path


def _stage(store, new_builders: dict, record: dict, current: dict,
           written: list[Path]) -> dict:
    store.state_dir.mkdir(exist_ok=True)
    store.txn_dir.mkdir()
    written.append(store.txn_dir)
    fsync_dir(store.state_dir)
    fault_point("txn:begin")
    store.backup_dir.mkdir(exist_ok=True)
    stamp = int(record["time"])
    staged = []
    for name, builder in new_builders.items():
        f = store.files(name)
        entry = record["rings"].setdefault(name, {})
        old_builder = current.get(name)
        entry.update({
            "builder_md5_before": (hashlib.md5(old_builder).hexdigest()
                                   if old_builder is not None else None),
            "ring_md5_before": md5_file(f.ring),
        })
        for kind, src, data in (("builder", f.builder, old_builder),
                                ("ring", f.ring, None)):
            if data is None and src.exists():
                data = read_regular(src, what=f"{kind} file")
            if data is not None:
                dest = _free_name(store.backup_dir / f"{stamp}.{record['id']}.{src.name}")
                atomic_write(dest, data, replace=False)
                written.append(dest)
                entry["backup_" + kind] = str(dest.relative_to(store.dir))
        if isinstance(entry.get("replay"), dict) and "backup_builder" in entry:
            entry["replay"]["from"] = entry["backup_builder"]  # the replay starts there
        data = builder_pickle(builder)
        atomic_write(store.txn_dir / f.builder.name, data)
        staged.append(f.builder.name)
        entry["builder_md5_after"] = hashlib.md5(data).hexdigest()
        entry["version_after"] = builder.version
        entry["id"] = builder.id
        if builder._replica2part2dev:
            fault_point(f"write:{f.ring.name}")
            kw = {} if store.format_version is None else {"format_version": store.format_version}
            builder.get_ring().save(str(store.txn_dir / f.ring.name), **kw)
            staged.append(f.ring.name)
            entry["ring_md5_after"] = md5_file(store.txn_dir / f.ring.name)
        else:
            entry["ring_md5_after"] = entry["ring_md5_before"]
    fsync_dir(store.txn_dir)
    fault_point("txn:staged")
    journal = {"record": record, "files": staged}
    atomic_write(store.txn_dir / "journal.json", json.dumps(journal).encode())
    return journal


def _undo_staging(store, written: list[Path]) -> None:
    """Remove what a failed staging created (its backups and txn/), best effort."""
    for p in reversed(written):
        try:
            if p == store.txn_dir:
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            pass
    if os.path.lexists(store.txn_dir):
        raise RingmgrError(f"the change could not be staged and {store.txn_dir} could "
                           f"not be removed: fix the cause, then run `ringmgr resume`")


def _install(store, journal: dict, *, check: bool = True) -> None:
    if check:
        edited = _edited_meanwhile(store, journal)
        if edited:
            raise Refused(f"{', '.join(edited)} changed after the change was committed: "
                          f"nothing more was installed; run `ringmgr resume` to see "
                          f"the choices")
    for fname in journal["files"]:
        src = store.txn_dir / fname
        if src.exists():
            fault_point(f"install:{fname}")
            os.rename(src, store.dir / fname)
    fsync_dir(store.dir)
    fault_point("txn:installed")
    record = journal["record"]
    if not any(r.get("id") == record["id"] for r in store.history()):
        store.log.append(record)
    fault_point("txn:recorded")
    shutil.rmtree(store.txn_dir)
    fsync_dir(store.state_dir)


def _backup_files(store, paths: list[Path], tag: str) -> None:
    store.backup_dir.mkdir(exist_ok=True)
    stamp = int(store.clock())
    for p in paths:
        if p.exists():
            atomic_write(store.backup_dir / f"{stamp}.{tag}.{p.name}",
                         read_regular(p, what="file"), replace=False)


def _set_aside(store, src: Path, tag: str) -> Path:
    d = store.state_dir / SET_ASIDE
    d.mkdir(parents=True, exist_ok=True)
    dest = d / f"{int(store.clock())}.{tag}"
    os.rename(src, dest)
    fsync_dir(store.state_dir)
    return dest


def _free_name(path: Path) -> Path:
    """``path``, or ``path.2``, ``path.3``, ... if taken (a killed attempt's backup)."""
    n = 1
    candidate = path
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate



def _split_name(fname: str) -> tuple[str, str]:
    if fname.endswith(".builder"):
        return fname[: -len(".builder")], "builder"
    return fname[: -len(".ring.gz")], "ring"


