"""The node side of replace-disk and drive-audit: what must not follow a symlink.

Runs on the storage node as root (locally or over SSH) with the node's python3 and
the standard library only, shipped as source on stdin (see ``safety.node_argv``).
Everything here works on file descriptors, so a path that an unprivileged account
can change (``mount_root`` belongs to swift in swift's default layout) is resolved
exactly once, without following a symlink at the last component:

``guard ROOT DEV``
    make ``ROOT/DEV`` if missing, open it ``O_DIRECTORY|O_NOFOLLOW`` relative to
    ROOT, refuse a symlink, a non-directory, or a directory that is still a mount
    point; then ``fchown`` root:root and ``fchmod`` 0755 on that descriptor.
``own ROOT DEV MAJ:MIN OWNER``
    the same open; the directory must be the root of the filesystem on MAJ:MIN (the
    new disk), then ``fchown`` to OWNER (``user[:group]``, names or ids, resolved here).
``check ROOT DEV MAJ:MIN``
    on that filesystem: create a file with a random name ``O_CREAT|O_EXCL|O_NOFOLLOW``,
    write, fsync, set/get/remove a user xattr (where swift keeps object metadata),
    unlink it.
``inuse BLOCK``
    who uses the block device besides mounts (read-only): loop devices backed by it,
    processes holding it (or a partition of it) open (a VM's raw disk, qemu-nbd, a
    userspace iSCSI target), and whether an ``O_EXCL`` open succeeds (it fails while
    the kernel has it claimed: mounted, also in another mount namespace, md, an
    in-kernel iSCSI target); the descriptor is closed at once.
``clock``
    the node's real-time and monotonic clocks, read together, to convert ``dmesg``
    times (seconds since boot) to wall-clock times.

Each operation prints one JSON object.  A refusal exits 3 with ``{"refused": why}``.
Written for python3 >= 3.5 (no f-strings): storage nodes run old distributions.
"""
import errno, grp, json, os, pwd, stat, sys, time


class Refusal(Exception):
    pass


def open_mount_point(root, dev, create=False):
    """(root_fd, fd): ROOT opened as given, DEV inside it without following a symlink
    (made first, 0755, when ``create`` and missing)."""
    if "/" in dev or dev in ("", ".", ".."):
        raise Refusal("bad device name %r" % dev)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if create:
            try:
                os.mkdir(dev, 0o755, dir_fd=root_fd)
            except FileExistsError:
                pass
        fd = os.open(dev, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root_fd)
    except OSError as e:
        os.close(root_fd)
        path = os.path.join(root, dev)
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            try:
                st = os.lstat(path)
                what = ("a symlink to %s" % os.readlink(path) if stat.S_ISLNK(st.st_mode)
                        else "not a directory")
                owner = " (owned by uid %d)" % st.st_uid
            except OSError:
                what, owner = "not a directory", ""
            raise Refusal("%s is %s%s: something replaced the mount point; remove it "
                          "and re-run (never follow it as root)" % (path, what, owner))
        raise
    return root_fd, fd


def guard(root, dev):
    path = os.path.join(root, dev)
    root_fd, fd = open_mount_point(root, dev, create=True)
    try:
        if os.fstat(fd).st_dev != os.fstat(root_fd).st_dev:
            raise Refusal("%s is still a mount point (something is mounted there again): "
                          "unmount it and re-run" % path)
        os.fchown(fd, 0, 0)
        os.fchmod(fd, 0o755)
        st = os.fstat(fd)
        return {"path": path, "uid": st.st_uid, "gid": st.st_gid,
                "mode": "%o" % stat.S_IMODE(st.st_mode), "entries": len(os.listdir(fd))}
    finally:
        os.close(fd)
        os.close(root_fd)


def _device(majmin):
    major, minor = majmin.split(":")
    return os.makedev(int(major), int(minor))


def _on_device(root, dev, majmin):
    root_fd, fd = open_mount_point(root, dev)
    os.close(root_fd)
    if os.fstat(fd).st_dev != _device(majmin):
        os.close(fd)
        raise Refusal("%s is not the root of the filesystem on %s (the new disk): is it "
                      "mounted?" % (os.path.join(root, dev), majmin))
    return fd


def owner_ids(owner):
    user, _, group = owner.partition(":")
    try:
        uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
        if group:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        else:
            gid = pwd.getpwuid(uid).pw_gid
    except KeyError:
        raise Refusal("owner %s does not exist on this node" % owner)
    return uid, gid


def own(root, dev, majmin, owner):
    uid, gid = owner_ids(owner)
    fd = _on_device(root, dev, majmin)
    try:
        os.fchown(fd, uid, gid)
        st = os.fstat(fd)
        return {"path": os.path.join(root, dev), "uid": st.st_uid, "gid": st.st_gid}
    finally:
        os.close(fd)


def check(root, dev, majmin):
    dfd = _on_device(root, dev, majmin)
    name = ".ringmgr-check-" + os.urandom(8).hex()
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                     dir_fd=dfd)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
            os.setxattr(fd, "user.ringmgr", b"ok")
            if os.getxattr(fd, "user.ringmgr") != b"ok":
                raise Refusal("user xattrs do not read back on %s" % os.path.join(root, dev))
            os.removexattr(fd, "user.ringmgr")
        finally:
            os.close(fd)
            os.unlink(name, dir_fd=dfd)
    finally:
        os.close(dfd)
    return {"path": os.path.join(root, dev), "writable": True, "xattrs": True}


def _devices_of(block):
    """st_rdev of BLOCK and of its partitions (from sysfs)."""
    st = os.stat(block)
    if not stat.S_ISBLK(st.st_mode):
        raise Refusal("%s is not a block device" % block)
    devs = {st.st_rdev}
    sysdir = "/sys/dev/block/%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    try:
        for name in os.listdir(sysdir):
            sub = os.path.join(sysdir, name)
            if os.path.exists(os.path.join(sub, "partition")):
                with open(os.path.join(sub, "dev")) as f:
                    devs.add(_device(f.read().strip()))
    except OSError:
        pass
    return devs


def _majmin(rdev):
    return "%d:%d" % (os.major(rdev), os.minor(rdev))


def _comm(pid):
    try:
        with open("/proc/%s/comm" % pid) as f:
            comm = f.read().strip()
        uid = os.stat("/proc/%s" % pid).st_uid
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        return comm, user
    except OSError:
        return "?", "?"


def inuse(block):
    devs = _devices_of(block)
    out = {"block": block, "devices": sorted(_majmin(d) for d in devs), "loops": [],
           "open_by": [], "exclusive": None, "mounted_elsewhere": []}
    try:
        loops = sorted(os.listdir("/sys/block"))
    except OSError:
        loops = []
    for name in loops:
        try:
            with open("/sys/block/%s/loop/backing_file" % name) as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing.endswith(" (deleted)"):
            continue
        try:
            st = os.stat(backing)
        except OSError:
            continue
        if (stat.S_ISBLK(st.st_mode) and st.st_rdev in devs) or st.st_dev in devs:
            out["loops"].append({"loop": "/dev/" + name, "backing_file": backing})
    me = str(os.getpid())
    for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        if pid == me:
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            if stat.S_ISBLK(st.st_mode) and st.st_rdev in devs:
                comm, user = _comm(pid)
                out["open_by"].append({"pid": int(pid), "comm": comm, "user": user,
                                       "device": _majmin(st.st_rdev)})
                break
    try:
        fd = os.open(block, os.O_RDONLY | os.O_EXCL)
        os.close(fd)
        out["exclusive"] = True
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise
        out["exclusive"] = False
        out["mounted_elsewhere"] = _namespace_mounts(devs)
    return out


def _namespace_mounts(devs):
    """Mounts of DEVS in other mount namespaces (one pid per namespace)."""
    wanted = {_majmin(d) for d in devs}
    try:
        mine = os.readlink("/proc/self/ns/mnt")
    except OSError:
        mine = None
    seen, found = {mine}, []
    for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        try:
            ns = os.readlink("/proc/%s/ns/mnt" % pid)
            if ns in seen:
                continue
            seen.add(ns)
            with open("/proc/%s/mountinfo" % pid) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) > 4 and parts[2] in wanted:
                        comm, _ = _comm(pid)
                        found.append({"pid": int(pid), "comm": comm,
                                      "mount_point": parts[4]})
        except OSError:
            continue
    return found


def clock():
    out = {"realtime": time.time(), "monotonic": time.monotonic()}
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        out["boottime"] = time.clock_gettime(boottime)
    return out


OPS = {"guard": guard, "own": own, "check": check, "inuse": inuse, "clock": clock}


def main(argv):
    op, args = argv[0], argv[1:]
    try:
        result = OPS[op](*args)
    except Refusal as e:
        sys.stdout.write(json.dumps({"refused": str(e)}) + "\n")
        sys.exit(3)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
