"""Table tests for the pure parsers in ringmgr.ops.facts (samples of real output)."""

import json

import pytest

from ringmgr.ops import facts

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
301 27 7:3 / /srv/node/sdb rw,noatime shared:150 master:3 - xfs /dev/loop3 rw,attr2,inode64,logbufs=8
302 27 7:4 / /srv/my\\040disk rw - xfs /dev/loop4 rw
garbage line
"""


def test_mountinfo():
    ms = facts.parse_mountinfo(MOUNTINFO)
    assert [m.mount_point for m in ms] == ["/proc", "/", "/srv/node/sdb", "/srv/my disk"]
    sdb = ms[2]
    assert (sdb.major_minor, sdb.fstype, sdb.source, sdb.options) == (
        "7:3", "xfs", "/dev/loop3", "rw,noatime")
    assert facts.mounts_at(ms, "/srv/node/sdb") == [sdb]
    assert facts.mounts_of(ms, major_minors=["7:4"]) == [ms[3]]
    assert facts.mounts_of(ms, paths=["/dev/vda"]) == [ms[1]]


def test_mountinfo_of_this_machine_parses():
    text = open("/proc/self/mountinfo").read()
    ms = facts.parse_mountinfo(text)
    assert any(m.mount_point == "/" for m in ms)
    assert len(ms) == len(text.splitlines())


LSBLK = json.dumps({"blockdevices": [
    {"name": "loop3", "kname": "loop3", "path": "/dev/loop3", "type": "loop",
     "size": 314572800, "maj:min": "7:3", "fstype": "xfs", "label": "sdb",
     "uuid": "0b5e4c6e-8d7a-4a57-9d6b-3f0f1d2c5a11", "mountpoints": ["/srv/node/sdb"],
     "pkname": None},
    {"name": "vda", "kname": "vda", "path": "/dev/vda", "type": "disk",
     "size": 274877906944, "maj:min": "254:0", "fstype": None, "label": None, "uuid": None,
     "mountpoints": [None], "pkname": None,
     "children": [{"name": "vda1", "kname": "vda1", "path": "/dev/vda1", "type": "part",
                   "size": 1000, "maj:min": "254:1", "mountpoints": ["/boot"],
                   "pkname": "vda"}]},
    {"name": "sdc", "type": "disk", "size": "4000", "mountpoint": None},
]})


def test_lsblk():
    loop, vda, old = facts.parse_lsblk(LSBLK)
    assert loop.mount_points == ("/srv/node/sdb",) and loop.label == "sdb"
    assert loop.size == 314572800 and loop.major_minor == "7:3"
    assert vda.mount_points == ()
    assert [d.name for d in vda.walk()] == ["vda", "vda1"]
    assert vda.children[0].mount_points == ("/boot",)
    assert (old.path, old.size, old.mount_points) == ("/dev/sdc", 4000, ())


def test_blkid_export():
    text = "DEVNAME=/dev/loop3\nUUID=0b5e\nBLOCK_SIZE=512\nTYPE=xfs\nLABEL=sdb\n"
    assert facts.parse_blkid_export(text) == {
        "DEVNAME": "/dev/loop3", "UUID": "0b5e", "BLOCK_SIZE": "512", "TYPE": "xfs",
        "LABEL": "sdb"}
    assert facts.parse_blkid_export("") == {}


def test_holders():
    assert facts.parse_holders("dm-0\ndm-1\n\n") == ["dm-0", "dm-1"]
    assert facts.parse_holders("") == []
    assert facts.holders_argv("sdb1", "sdb") == ("ls", "-1", "/sys/block/sdb/sdb1/holders")


@pytest.mark.parametrize("stdout,pids", [
    ("kernel  4242  4300", [4242, 4300]),
    (" 4242c  4300ce", [4242, 4300]),
    ("", []),
])
def test_fuser_pids(stdout, pids):
    assert facts.parse_fuser_pids(stdout) == pids


def test_ps():
    text = "   4242 swift    swift-object-se\n   4300 root     python3 -c x\n"
    assert [p.describe() for p in facts.parse_ps(text)] == [
        "swift-object-se (pid 4242, swift)", "python3 -c x (pid 4300, root)"]
    assert facts.ps_argv([1, 2]) == ("ps", "-o", "pid=,user=,comm=", "-p", "1,2")
    assert facts.ps_argv(what="args") == ("ps", "-o", "pid=,user=,args=", "-e")
    procs = facts.parse_ps("  7 root grep nova-\n  8 root ps -e\n  9 nova /usr/bin/nova-api\n\n")
    assert facts.processes_matching(procs, "nova-") == ["/usr/bin/nova-api"]


@pytest.mark.parametrize("line,device,partition,kind,when", [
    ("[  812.311] blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x0",
     "sdb", "sdb", "io-error", "812.311"),
    ("[  812.312] I/O error, dev vdc, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2",
     "vdc", "vdc", "io-error", "812.312"),
    ("[  812.313] critical medium error, dev sdc, sector 8 op 0x0:(READ) flags 0x80700",
     "sdc", "sdc", "io-error", "812.313"),
    ("[  812.314] Buffer I/O error on dev dm-3, logical block 0, async page read",
     "dm-3", "dm-3", "buffer-io-error", "812.314"),
    ('[  812.315] XFS (sdd1): metadata I/O error in "xfs_da_read_buf+0x8c" at daddr 0x48 '
     'len 8 error 5', "sdd", "sdd1", "fs-error", "812.315"),
    ("[  812.316] nvme0n1: I/O Cmd(0x2) @ LBA 2048, 8 blocks, I/O Error (sct 0x2 / sc 0x81) DNR",
     "nvme0n1", "nvme0n1", "nvme-error", "812.316"),
    ("[  812.317] sd 2:0:0:0: [sde] tag#3 Sense Key : Medium Error [current]",
     "sde", "sde", "scsi-error", "812.317"),
    ("Nov 24 22:00:01 s02 kernel: print_req_error: I/O error, dev nvme1n1p2, sector 4096",
     "nvme1n1", "nvme1n1p2", "io-error", "Nov 24 22:00:01"),
    ("2026-11-24T22:00:01.123456+00:00 s02 kernel: end_request: I/O error, dev xvdf, sector 9",
     "xvdf", "xvdf", "io-error", "2026-11-24T22:00:01.123456+00:00"),
    ("[ 5.1] Buffer I/O error on dev loop7p1, logical block 3, lost async page write",
     "loop7", "loop7p1", "buffer-io-error", "5.1"),
    ("[ 1072.391022] XFS (loop0): Log I/O Error (0x6) detected at xfs_fs_goingdown+0x63/0xb0 "
     "(fs/xfs/xfs_fsops.c:475).  Shutting down filesystem.",
     "loop0", "loop0", "fs-error", "1072.391022"),
    ("[ 9.9] XFS (dm-2): Filesystem has been shut down due to log error (0x2).",
     "dm-2", "dm-2", "fs-error", "9.9"),
    ("[ 9.9] EXT4-fs error (device vdb1): ext4_find_entry:1455: reading directory lblock 0",
     "vdb", "vdb1", "fs-error", "9.9"),
    # a coloured dmesg line: its escape sequences are passed over
    ("\x1b[32m[ 1107.085823] \x1b[0m\x1b[33mXFS (loop0): \x1b[0m\x1b[7m\x1b[31mLog I/O "
     "Error (0x6) detected at xfs_fs_goingdown+0x63/0xb0\x1b[0m",
     "loop0", "loop0", "fs-error", "1107.085823"),
])
def test_kernel_log_error_lines(line, device, partition, kind, when):
    (err,) = facts.parse_kernel_log(line)
    assert (err.device, err.partition, err.kind, err.when) == (device, partition, kind, when)


@pytest.mark.parametrize("line", [
    "[    1.342786] EXT4-fs (vda): mounted filesystem r/w without journal.",
    "[    2.0] sd 2:0:0:0: [sdb] 7814037168 512-byte logical blocks: (4.00 TB/3.64 TiB)",
    "[    2.1] XFS (sdb): Mounting V5 Filesystem",
    "[    2.2] XFS (sdb): Ending clean mount",
    "[ 1072.390247] XFS (loop0): User initiated shutdown received.",
    "[ 1072.394225] XFS (loop0): Please unmount the filesystem and rectify the problem(s)",
    "[    2.3] nvme nvme0: 8/0/0 default/read/poll queues",
    "[    2.4] loop3: detected capacity change from 0 to 614400",
    "error: something about sdb that is not the kernel's I/O error format",
])
def test_kernel_log_harmless_lines(line):
    assert facts.parse_kernel_log(line) == []


def test_errors_grouped_by_whole_disk():
    text = ("[1.0] I/O error, dev sdb, sector 1 op 0x0:(READ)\n"
            "[1.1] Buffer I/O error on dev sdb1, logical block 0, async page read\n"
            "[1.2] I/O error, dev sdc, sector 1 op 0x0:(READ)\n")
    grouped = facts.errors_by_device(facts.parse_kernel_log(text))
    assert {k: len(v) for k, v in grouped.items()} == {"sdb": 2, "sdc": 1}


@pytest.mark.parametrize("name,disk", [
    ("sdb1", "sdb"), ("sdaa12", "sdaa"), ("nvme0n1p2", "nvme0n1"), ("nvme0n1", "nvme0n1"),
    ("vda3", "vda"), ("dm-3", "dm-3"), ("loop4p1", "loop4"), ("loop4", "loop4"),
    ("xvdf1", "xvdf"),
])
def test_whole_disk(name, disk):
    assert facts.whole_disk(name) == disk

