"""The marker of a [converge] config edit in flight (``config_sync.ConfigSync`` writes
it right before the builders are committed and removes it after): ``status`` names an
interrupted edit, ``resume`` repairs it with the ring change it belonged to.
"""

from __future__ import annotations

from pathlib import Path

MARKER = "config-sync.json"


def marker_path(config) -> Path:
    from ringmgr.rings.store import RingStore

    return RingStore.from_config(config).state_dir / MARKER


def md5_text(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode("utf-8")).hexdigest()


def mark(config, path, old: str, new: str) -> None:
    """Record that ``path`` is about to say ``new`` (it said ``old``) for the change the
    builder store commits next."""
    import json
    import time

    from ringmgr.rings.files import atomic_write
    from ringmgr.rings.store import RingStore

    store = RingStore.from_config(config)
    store.state_dir.mkdir(mode=0o700, exist_ok=True)
    atomic_write(marker_path(config), json.dumps({
        "path": str(path), "old": old, "new_md5": md5_text(new),
        "change_id": store.next_id(), "time": time.time()}).encode(), mode=0o600)


def interrupted_sync(config) -> dict | None:
    """A config edit whose ring change was interrupted (the marker ``write_before_commit``
    leaves until the builders are committed): path, change_id, time and ``state``:
    ``ahead`` (the config says a change the builders do not have), ``done`` (the change
    was committed: only the marker is left), ``not_written`` (the config was never
    changed), ``edited`` (the config was edited by hand since)."""
    import json

    from ringmgr.rings.store import RingStore

    path = marker_path(config)
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
        target, old, new_md5 = Path(marker["path"]), marker["old"], marker["new_md5"]
        change_id = int(marker["change_id"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as e:
        return {"marker": str(path), "state": "damaged", "detail": str(e)}
    history, _ = RingStore.from_config(config).read_history()
    try:
        text = target.read_text(encoding="utf-8")
    except OSError:
        text = None
    if any(r.get("id") == change_id for r in history):
        state = "done"
    elif text is not None and md5_text(text) == new_md5:
        state = "ahead"
    elif text == old:
        state = "not_written"
    else:
        state = "edited"
    return {"marker": str(path), "path": str(target), "change_id": change_id,
            "time": marker.get("time"), "state": state, "old": old}


def sync_problem(info: dict) -> str:
    """The one line ``status`` prints for an interrupted config edit."""
    if info["state"] == "ahead":
        return (f"{info['path']} was updated for change #{info['change_id']}, whose ring "
                f"change was interrupted before it was committed: `ringmgr resume` puts "
                f"the previous {Path(info['path']).name} back")
    if info["state"] == "damaged":
        return f"{info['marker']} is unreadable ({info['detail']}): inspect and remove it"
    return (f"an interrupted config update for change #{info['change_id']} left "
            f"{info['marker']}: `ringmgr resume` removes it")


def recover_sync(config) -> str | None:
    """After the ring store's own recovery (call locked): the config of an uncommitted
    change goes back to its previous text; a committed one keeps its new text.  A config
    edited by hand since is never overwritten."""
    info = interrupted_sync(config)
    if info is None:
        return None
    marker = Path(info["marker"])
    if info["state"] == "damaged":
        from ringmgr.errors import BuilderError

        raise BuilderError(sync_problem(info))
    msg = None
    if info["state"] == "ahead":
        write_config(info["path"], info["old"])
        msg = (f"{info['path']}: put back as it was before change #{info['change_id']} "
               f"(its ring change was not committed)")
    elif info["state"] == "edited":
        msg = (f"{info['path']} was edited since change #{info['change_id']} was "
               f"interrupted: left as it is; `ringmgr plan` shows what differs")
    marker.unlink()
    return msg


def write_config(path, text: str) -> None:
    """Replace ``path`` atomically, keeping its mode (the project's one atomic writer:
    a random exclusive temp name, fsync, rename, fsync of the directory)."""
    from ringmgr.rings.files import atomic_write

    path = Path(path)
    atomic_write(path, text.encode("utf-8"), mode=path.stat().st_mode & 0o7777)
