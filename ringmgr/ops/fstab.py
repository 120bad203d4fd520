"""Pure fstab editing: exactly one entry for a mount point, every other line untouched.

Why: an fstab entry by an unstable /dev name mounts the wrong disk after the next
failure renames the others; two entries for one mount point make ``mount -a`` mount
one disk over another.  ``set_entry`` replaces every entry for the mount point (a stale
``/dev/sdb`` line, an old ``UUID=`` line) with one line by LABEL or UUID, at the place
of the first one, and keeps every other byte as it was.  ``write_commands`` turns the
result into the commands that write it atomically on the node with a backup, so the
same plan runs locally, over SSH, or dry.
"""

from __future__ import annotations

import re

from ringmgr.errors import Refused
from ringmgr.ops.facts import unescape_octal

DEFAULT_OPTIONS = "noatime,nofail"


def _escape(path: str) -> str:
    return (path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")
            .replace("\n", "\\012"))


def entry_line(spec: str, mount_point: str, fstype: str = "xfs",
               options: str = DEFAULT_OPTIONS, dump: int = 0, passno: int = 0) -> str:
    for what, value in (("source", spec), ("type", fstype), ("options", options)):
        if not value or re.search(r"[\s#]", value):
            raise Refused(f"fstab {what} {value!r} is empty or has whitespace or '#': it "
                          f"would break (or add) fstab lines; fix mount_options")
    if "nobarrier" in options.split(","):
        raise Refused("mount option nobarrier is refused: mounts fail on kernels >= 4.19; "
                      "remove it from mount_options")
    return f"{spec} {_escape(mount_point)} {fstype} {options} {dump} {passno}"


def spec_for(by: str, label: str, uuid: str) -> str:
    """``LABEL=sdb`` or ``UUID=...``: never a /dev name."""
    if by == "uuid":
        return f"UUID={uuid}"
    if by == "label":
        return f"LABEL={label}"
    raise ValueError(f"fstab_by must be label or uuid, not {by!r}")


def _lines(text: str) -> list[str]:
    """Lines with their newline, split on "\\n" only (as mount(8) reads fstab; Python's
    splitlines would also split on form feeds and other separators)."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _fields(line: str) -> list[str] | None:
    body = line.strip(" \t\n")
    if not body or body.startswith("#"):
        return None
    parts = body.split()
    return parts if len(parts) >= 2 else None


def entries_for(text: str, mount_point: str) -> list[str]:
    """The entry lines (without newline) whose mount point is ``mount_point``."""
    out = []
    for line in _lines(text):
        f = _fields(line)
        if f and unescape_octal(f[1]).rstrip("/") == mount_point.rstrip("/"):
            out.append(line.rstrip("\n"))
    return out


def set_entry(text: str, mount_point: str, line: str) -> tuple[str, bool]:
    """``text`` with exactly one entry for ``mount_point``: ``line``.  -> (new, changed).

    >>> set_entry("/dev/sda1 / ext4 defaults 0 1\\n/dev/sdb /srv/node/sdb xfs noatime 0 0\\n",
    ...           "/srv/node/sdb", "LABEL=sdb /srv/node/sdb xfs noatime,nofail 0 0")[0]
    '/dev/sda1 / ext4 defaults 0 1\\nLABEL=sdb /srv/node/sdb xfs noatime,nofail 0 0\\n'

    Refuses when another mount point's entry uses the same source (``LABEL=sdb`` twice
    would make one of them mount the wrong disk).
    """
    spec = line.split()[0]
    lines = _lines(text)
    out: list[str] = []
    placed = False
    for raw in lines:
        f = _fields(raw)
        if f and unescape_octal(f[1]).rstrip("/") == mount_point.rstrip("/"):
            if not placed:
                newline = "\n" if raw.endswith("\n") else ""
                out.append(line + newline)
                placed = True
            continue
        if f and f[0] == spec:
            raise Refused(f"fstab already mounts {spec} on {unescape_octal(f[1])}: two mount "
                          f"points for one source; fix that line first (or choose "
                          f"another label with --label, or fstab_by = \"uuid\")")
        out.append(raw)
    if not placed:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(line + "\n")
    new = "".join(out)
    return new, new != text


def write_commands(path: str, tag: str) -> list[tuple[str, ...]]:
    """The argv lists that write new fstab contents atomically on the node.

    The new text goes to the third command's stdin.  ``tag`` names the backup and the
    temp file (journaled, so a dry run shows the very names the real run uses):
    ``cp -p`` keeps a backup with the original's mode, the temp file is written next to
    the original, flushed to disk, and renamed over it.
    """
    backup = f"{path}.ringmgr-{tag}.bak"
    tmp = f"{path}.ringmgr-{tag}.tmp"
    return [
        ("cp", "-p", "--", path, backup),
        ("cp", "-p", "--", path, tmp),
        ("dd", f"of={tmp}", "conv=fsync", "status=none"),
        ("mv", "-f", "--", tmp, path),
    ]
