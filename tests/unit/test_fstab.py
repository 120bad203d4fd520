"""fstab edits: one entry for the mount point, every other byte kept, atomic write."""

import doctest
import os
import subprocess

import pytest
from hypothesis import given, strategies as st

from ringmgr.errors import Refused
from ringmgr.exec.local import LocalExecutor
from ringmgr.ops import fstab

LINE = "LABEL=sdb /srv/node/sdb xfs noatime,nofail 0 0"
BASE = ("# /etc/fstab: static file system information.\n"
        "UUID=1111 /               ext4    errors=remount-ro 0       1\n"
        "\t# indented comment with /srv/node/sdb in it\n"
        "LABEL=sdc /srv/node/sdc xfs noatime,nofail 0 0\n")


@pytest.mark.parametrize("before,after,changed", [
    # appended when absent
    (BASE, BASE + LINE + "\n", True),
    # stale entry by /dev name replaced in place
    (BASE.replace("LABEL=sdc", "/dev/sdb /srv/node/sdb xfs noatime 0 0\nLABEL=sdc"),
     BASE.replace("LABEL=sdc", LINE + "\nLABEL=sdc"), True),
    # two entries for the mount point (one with a trailing slash) become one
    ("/dev/sdb /srv/node/sdb/ xfs defaults 0 0\nx /y ext4 d 0 0\nUUID=9 /srv/node/sdb xfs d 0 0\n",
     LINE + "\nx /y ext4 d 0 0\n", True),
    # already exactly right: no change
    (BASE + LINE + "\n", BASE + LINE + "\n", False),
    # empty file, and a last line without newline
    ("", LINE + "\n", True),
    ("x /y ext4 d 0 0", "x /y ext4 d 0 0\n" + LINE + "\n", True),
    # similar mount points are not touched
    ("LABEL=x /srv/node/sdb1 xfs d 0 0\n", "LABEL=x /srv/node/sdb1 xfs d 0 0\n" + LINE + "\n",
     True),
])
def test_set_entry(before, after, changed):
    assert fstab.set_entry(before, "/srv/node/sdb", LINE) == (after, changed)


def test_same_source_on_other_mount_point_refused():
    with pytest.raises(Refused, match="two mount points"):
        fstab.set_entry("LABEL=sdb /srv/node/old xfs d 0 0\n", "/srv/node/sdb", LINE)


def test_entry_line_escapes_and_refuses_nobarrier():
    assert fstab.entry_line("UUID=u", "/srv/my disk") == "UUID=u /srv/my\\040disk xfs noatime,nofail 0 0"
    assert fstab.entries_for("UUID=u /srv/my\\040disk xfs d 0 0\n", "/srv/my disk")
    with pytest.raises(Refused, match="nobarrier"):
        fstab.entry_line("LABEL=a", "/srv/node/a", options="noatime,nobarrier")


def test_spec_for():
    assert fstab.spec_for("label", "sdb", "u") == "LABEL=sdb"
    assert fstab.spec_for("uuid", "sdb", "u") == "UUID=u"


def test_doctest():
    assert doctest.testmod(fstab).failed == 0


_line = st.text(alphabet=st.characters(blacklist_characters="\n", codec="utf-8"), max_size=40)


@given(st.lists(_line, max_size=8), st.booleans())
def test_every_other_line_kept_byte_for_byte(lines, final_newline):
    lines = [l for l in lines if not fstab.entries_for(l, "/srv/node/sdb")
             and not l.strip().startswith("LABEL=sdb")]
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    new, changed = fstab.set_entry(text, "/srv/node/sdb", LINE)
    assert changed
    before = (text[:-1].split("\n") if text.endswith("\n") else text.split("\n")) if text else []
    assert new.split("\n") == before + [LINE, ""]
    assert new.endswith("\n")


def test_write_commands_replace_file_atomically_with_backup(tmp_path):
    path = tmp_path / "fstab"
    path.write_text(BASE)
    os.chmod(path, 0o640)
    new, _ = fstab.set_entry(BASE, "/srv/node/sdb", LINE)
    ex = LocalExecutor()
    cmds = fstab.write_commands(str(path), "t1")
    for argv in cmds:
        ex.run(argv, input=new if argv[0] == "dd" else None)
    assert path.read_text() == new
    assert (tmp_path / "fstab.ringmgr-t1.bak").read_text() == BASE
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fstab", "fstab.ringmgr-t1.bak"]
