"""Facts about a storage node's disks: the command that reads each, and a pure parser.

Each parser takes the raw text a command printed and returns plain data; each
docstring carries a sample of that text.  Nothing here runs anything: the
``*_ARGV`` constants are what the step builders pass to an executor (read-only,
``mutates=False``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

MOUNTINFO_ARGV = ("cat", "/proc/self/mountinfo")
LSBLK_COLUMNS = "NAME,KNAME,PATH,TYPE,SIZE,MAJ:MIN,FSTYPE,LABEL,UUID,MOUNTPOINTS,PKNAME"


def lsblk_argv(path: str) -> tuple[str, ...]:
    return ("lsblk", "-J", "-b", "-o", LSBLK_COLUMNS, "--", path)


def blkid_argv(path: str) -> tuple[str, ...]:
    # -p probes the device itself: the blkid cache may still describe the old disk
    return ("blkid", "-p", "-o", "export", "--", path)


# -- /proc/self/mountinfo -----------------------------------------------------
@dataclass(frozen=True)
class Mount:
    mount_id: int
    parent_id: int
    major_minor: str
    root: str
    mount_point: str
    options: str
    fstype: str
    source: str
    super_options: str


def unescape_octal(field_: str) -> str:
    """The one octal unescape: mountinfo, /proc/mounts and fstab write space, tab,
    newline and backslash as \\ooo (``/srv/my\\040disk`` is ``/srv/my disk``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse /proc/self/mountinfo (proc(5)).

    Sample::

        22 27 0:21 / /proc rw,relatime - proc proc rw
        27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
        301 27 7:3 / /srv/node/sdb rw,noatime shared:150 - xfs /dev/loop3 rw,attr2,inode64
        302 27 7:4 / /srv/my\\040disk rw - xfs /dev/loop4 rw

    Optional fields (``shared:1``) come before the lone ``-`` separator.
    """
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 7 or "-" not in parts[6:]:
            continue
        sep = parts.index("-", 6)
        post = parts[sep + 1:]
        if len(post) < 2:
            continue
        mounts.append(Mount(
            mount_id=int(parts[0]), parent_id=int(parts[1]), major_minor=parts[2],
            root=unescape_octal(parts[3]), mount_point=unescape_octal(parts[4]),
            options=parts[5],
            fstype=post[0], source=unescape_octal(post[1]),
            super_options=post[2] if len(post) > 2 else ""))
    return mounts


def mounts_at(mounts: list[Mount], mount_point: str) -> list[Mount]:
    return [m for m in mounts if m.mount_point == mount_point]


def mounts_of(mounts: list[Mount], *, major_minors=(), paths=()) -> list[Mount]:
    """Mounts whose device is one of ``major_minors`` (``7:3``) or ``paths``."""
    mm, ps = set(major_minors), set(paths)
    return [m for m in mounts if m.major_minor in mm or m.source in ps]


# -- lsblk -J -------------------------------------------------------------------
@dataclass(frozen=True)
class BlockDev:
    name: str
    kname: str
    path: str
    type: str
    size: int
    major_minor: str
    fstype: str | None
    label: str | None
    uuid: str | None
    mount_points: tuple[str, ...]
    children: tuple["BlockDev", ...] = field(default=())

    def walk(self):
        """This device and every device stacked on it (partitions, dm, md)."""
        yield self
        for c in self.children:
            yield from c.walk()


def parse_lsblk(text: str) -> list[BlockDev]:
    """Parse ``lsblk -J -b -o NAME,KNAME,PATH,TYPE,SIZE,MAJ:MIN,FSTYPE,LABEL,UUID,MOUNTPOINTS,PKNAME``.

    Sample (util-linux 2.38; older versions print ``mountpoint`` as a string)::

        {"blockdevices": [
          {"name": "loop3", "kname": "loop3", "path": "/dev/loop3", "type": "loop",
           "size": 314572800, "maj:min": "7:3", "fstype": "xfs", "label": "sdb",
           "uuid": "0b5e...", "mountpoints": ["/srv/node/sdb"], "pkname": null},
          {"name": "vda", "kname": "vda", "path": "/dev/vda", "type": "disk",
           "size": 274877906944, "maj:min": "254:0", "fstype": null, "label": null,
           "uuid": null, "mountpoints": [null], "pkname": null,
           "children": [{"name": "vda1", "type": "part", "mountpoints": ["/boot"], ...}]}
        ]}
    """
    return [_blockdev(d) for d in json.loads(text).get("blockdevices", [])]


def _blockdev(d: dict) -> BlockDev:
    mps = d.get("mountpoints")
    if mps is None:
        mps = [d.get("mountpoint")]
    size = d.get("size") or 0
    return BlockDev(
        name=d.get("name", ""), kname=d.get("kname") or d.get("name", ""),
        path=d.get("path") or f"/dev/{d.get('name', '')}", type=d.get("type", ""),
        size=int(size), major_minor=d.get("maj:min", ""), fstype=d.get("fstype"),
        label=d.get("label"), uuid=d.get("uuid"),
        mount_points=tuple(m for m in mps if m),
        children=tuple(_blockdev(c) for c in d.get("children", [])))


# -- blkid -p -o export ---------------------------------------------------------------
def parse_blkid_export(text: str) -> dict[str, str]:
    """Parse ``blkid -p -o export DEV`` (KEY=value lines; empty when nothing found).

    Sample::

        DEVNAME=/dev/loop3
        UUID=0b5e4c6e-8d7a-4a57-9d6b-3f0f1d2c5a11
        BLOCK_SIZE=512
        TYPE=xfs
        LABEL=sdb
        USAGE=filesystem
    """
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


# -- /sys/block/<dev>/holders ------------------------------------------------------------
def holders_argv(kname: str, parent: str | None = None) -> tuple[str, ...]:
    base = f"/sys/block/{parent}/{kname}" if parent else f"/sys/block/{kname}"
    return ("ls", "-1", f"{base}/holders")


def parse_holders(text: str) -> list[str]:
    """Parse ``ls -1 /sys/block/loop3/holders``: one holder per line (dm-0, md127).

    Sample::

        dm-0
        dm-1
    """
    return [line.strip() for line in text.splitlines() if line.strip()]


# -- fuser -m / ps ---------------------------------------------------------------------
def parse_fuser_pids(stdout: str) -> list[int]:
    """Parse the stdout of ``fuser -m /srv/node/sdb``: the pids using the filesystem.

    fuser prints the pids on stdout and everything else (the file name, the access
    letters with ``-v``, permission warnings) on stderr.  Sample stdout, with and
    without a terminal::

        kernel  4242  4300
         4242c  4300

    ("kernel" stands for the mount itself, not a process.)
    """
    return [int(m) for m in re.findall(r"(?<![\w])(\d+)[a-zA-Z]*(?![\w])", stdout)]


def fuser_argv(mount_point: str) -> tuple[str, ...]:
    # psmisc's fuser takes no "--"; the mount point is an absolute path
    return ("fuser", "-m", mount_point)


@dataclass(frozen=True)
class Process:
    pid: int
    user: str
    command: str          # comm (the name) or args (the command line), as asked

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid}, {self.user})"


def ps_argv(pids: list[int] | None = None, what: str = "comm") -> tuple[str, ...]:
    """``ps`` for the processes ``pids`` (None: every process); ``what`` is the
    command column: ``comm`` (the name) or ``args`` (the whole command line)."""
    select = ("-p", ",".join(map(str, pids))) if pids is not None else ("-e",)
    return ("ps", "-o", f"pid=,user=,{what}=", *select)


def parse_ps(text: str) -> list[Process]:
    """Parse ``ps -o pid=,user=,comm= -p 4242,4300`` (or ``args=``, ``-e``).

    Sample::

           4242 swift    swift-object-se
           4300 root     /usr/bin/python3 /usr/bin/nova-compute --config-file x
    """
    out = []
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].isdigit():
            out.append(Process(int(parts[0]), parts[1], parts[2].strip()))
    return out


def processes_matching(procs: list[Process], pattern: str) -> list[str]:
    """Command lines containing ``pattern``, like the guide's ``ps aux | grep nova-``
    without matching the grep (or the ps) itself."""
    return [p.command for p in procs
            if pattern in p.command and not p.command.startswith(("grep ", "ps "))]


# -- kernel log -----------------------------------------------------------------------
# sd*, vd*, xvd*, nvme*n*, dm-*, loop*, optionally followed by a partition number
_DEV = r"(?P<dev>(?:nvme\d+n\d+|dm-\d+|loop\d+|x?vd[a-z]{1,3}|sd[a-z]{1,3})(?:p?\d+)?)"
_ERROR_PATTERNS = [
    ("buffer-io-error", re.compile(r"Buffer I/O error on dev(?:ice)? " + _DEV + r"\b")),
    ("io-error", re.compile(r"\b(?:I/O|critical medium|critical target|timeout|"
                            r"critical nexus|critical space allocation|"
                            r"recoverable transport) error,? (?:on )?dev " + _DEV + r"\b")),
    ("fs-error", re.compile(r"\bXFS \(" + _DEV + r"\): (?:metadata I/O error|"
                            r"(?i:log I/O error)|Corruption|writeback error|"
                            r".*Filesystem has been shut down|"
                            r".*I/O Error Detected)")),
    ("fs-error", re.compile(r"\bEXT4-fs (?:error|warning) \(device " + _DEV + r"\)")),
    ("nvme-error", re.compile(r"\b" + _DEV + r": I/O Cmd\(0x[0-9a-f]+\) @ LBA \d+.*"
                              r"I/O Error")),
    ("scsi-error", re.compile(r"\[" + _DEV + r"\] (?:tag#\d+ )?(?:.*\b(?:Medium Error|"
                              r"Unrecovered read error|Hardware Error|FAILED Result)|"
                              r"Sense Key : (?:Medium|Hardware) Error)")),
]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours, when a tool thinks it has a terminal
_TIMESTAMP = re.compile(r"^\[\s*(\d+\.\d+)\]|^(\w{3} [ \d]\d \d\d:\d\d:\d\d)|^(\d{4}-\d\d-\d\dT\S+)")


@dataclass(frozen=True)
class DiskError:
    device: str      # the whole disk: sdb for sdb1, nvme0n1 for nvme0n1p2
    partition: str   # the name in the line (sdb1), or the disk itself
    kind: str        # io-error, buffer-io-error, fs-error, nvme-error, scsi-error
    when: str        # the line's timestamp as printed, or ""
    line: str


def whole_disk(name: str) -> str:
    """sdb1 -> sdb, nvme0n1p2 -> nvme0n1, vda3 -> vda, dm-3 -> dm-3, loop4p1 -> loop4."""
    m = re.fullmatch(r"(nvme\d+n\d+|loop\d+)p\d+", name)
    if m:
        return m.group(1)
    if re.fullmatch(r"(nvme\d+n\d+|dm-\d+|loop\d+)", name):
        return name
    m = re.fullmatch(r"(x?vd[a-z]+|sd[a-z]+)\d+", name)
    return m.group(1) if m else name


def parse_kernel_log(text: str) -> list[DiskError]:
    """Find disk I/O errors in kernel log text (dmesg, ``journalctl -k``, kern.log).

    Samples, one of each kind recognised::

        [  812.311] blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x0
        [  812.312] I/O error, dev vdc, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2
        [  812.313] critical medium error, dev sdc, sector 8 op 0x0:(READ) flags 0x80700
        [  812.314] Buffer I/O error on dev dm-3, logical block 0, async page read
        [  812.315] XFS (sdd1): metadata I/O error in "xfs_da_read_buf+0x8c" at daddr 0x48 len 8 error 5
        [ 1072.391] XFS (loop0): Log I/O Error (0x6) detected at xfs_fs_goingdown+0x63/0xb0
        [  812.316] nvme0n1: I/O Cmd(0x2) @ LBA 2048, 8 blocks, I/O Error (sct 0x2 / sc 0x81) DNR
        [  812.317] sd 2:0:0:0: [sde] tag#3 Sense Key : Medium Error [current]
        Nov 24 22:00:01 s02 kernel: print_req_error: I/O error, dev nvme1n1, sector 4096

    swift-drive-audit's patterns only know ``sd[a-z]``; these also cover vd*, xvd*,
    nvme*n*, dm-* and loop*.  One line gives at most one error.  Colour escapes (dmesg
    on a terminal) are ignored.
    """
    errors = []
    for line in _ANSI.sub("", text).splitlines():
        for kind, pattern in _ERROR_PATTERNS:
            m = pattern.search(line)
            if m:
                name = m.group("dev")
                ts = _TIMESTAMP.match(line.strip())
                when = next((g for g in ts.groups() if g), "") if ts else ""
                errors.append(DiskError(whole_disk(name), name, kind, when, line.strip()))
                break
    return errors


def errors_by_device(errors: list[DiskError]) -> dict[str, list[DiskError]]:
    out: dict[str, list[DiskError]] = {}
    for e in errors:
        out.setdefault(e.device, []).append(e)
    return out


_AMQP_OK = re.compile(r"(Re)?[Cc]onnected to AMQP server")
_AMQP_BAD = re.compile(r"AMQP server .* (is )?unreachable|AMQP.*(ERROR|Connection refused)")


def amqp_state(log_text: str) -> tuple[bool | None, str]:
    """The last AMQP event in a nova-compute log: (connected?, that line).

    Sample (the guide's, and oslo.messaging's newer wording)::

        2013-02-26 09:51:31 12427 INFO nova.openstack.common.rpc.common [-] Connected to AMQP server on 199.116.232.36:5672
        ... ERROR oslo.messaging._drivers.impl_rabbit [-] AMQP server on 10.0.0.2:5672 is unreachable: ...
        ... INFO oslo.messaging._drivers.impl_rabbit [-] Reconnected to AMQP server on 10.0.0.2:5672 via [amqp] client ...

    ``None`` when the log has no AMQP line at all.
    """
    state, last = None, ""
    for line in log_text.splitlines():
        if _AMQP_OK.search(line):
            state, last = True, line.strip()
        elif _AMQP_BAD.search(line):
            state, last = False, line.strip()
    return state, last
