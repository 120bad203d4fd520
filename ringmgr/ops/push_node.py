"""The node side of ``ringmgr push``: runs on each storage node and proxy.

Shipped as source over the SSH channel (see ``push.py``) and run by the node's
python3 with the standard library only (a node need not import swift).  It parses
ring formats 1 and 2 (``swift.common.ring.io``): "R1NG", a 2-byte format version,
then a 4-byte (v1) or 8-byte (v2) length and the JSON metadata holding "version".
The admin side imports the same functions for its own ring files, so one parser
of ring headers serves both ends.

It runs as root in a directory that the configured owner (swift) may write, so
everything goes through descriptors: swift_dir is opened once and every name is
resolved relative to it (a swapped parent directory changes nothing); the temp file
is created ``O_EXCL|O_NOFOLLOW`` and checked, fsynced, chowned and chmodded through
the descriptor that created it; an old ring is opened ``O_NOFOLLOW|O_NONBLOCK`` and
must be a regular file (a symlink or FIFO in its place is refused, never followed);
modes are masked to 0644.  A swift_dir that anyone but root and the configured owner
can write is refused.  Files are read in chunks with size caps: a gzip bomb or a
huge file is reported, never inflated in memory.

``main()`` handles one run: ``session`` answers the inspect request from argv,
then waits on stdin for one apply request (or EOF); ``inspect`` alone answers once.
"""
import errno, grp, hashlib, json, os, pwd, signal, stat, struct, sys, time, zlib

MARK = ".ringmgr-"
CHUNK = 1 << 20
MAX_FILE = 1 << 30        # a ring.gz larger than this is not read (a part power 24 ring is ~100 MB)
MAX_INFLATED = 4 << 30    # nor inflated past this (streamed, never held)
MAX_META = 64 << 20       # the JSON header is held in memory: this much at most
STOP_SIGNALS = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGPIPE}
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class NotRegular(ValueError):
    """A name in swift_dir is not a regular file (symlink, FIFO, directory, ...)."""


def ring_bytes_info(data):
    import io
    return ring_stream_info(io.BytesIO(data), len(data))


def ring_stream_info(f, size=None):
    """md5, size, version and validity of a ring.gz read from ``f`` in chunks.

    The gzip stream is inflated chunk by chunk (at most CHUNK at a time, bombs
    included) and checked to its CRC; only the ring header is kept."""
    info = {"md5": None, "size": size, "version": None, "error": None}
    if size is not None and size > MAX_FILE:
        info["error"] = "too big: %d bytes (more than %d); not read" % (size, MAX_FILE)
        return info
    md5, total, head, inflated = hashlib.md5(), 0, b"", 0
    d, err, meta = zlib.decompressobj(16 + zlib.MAX_WBITS), None, None
    try:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_FILE:
                info.update(md5=None, size=total, error="too big: more than %d bytes; "
                            "not read further" % MAX_FILE)
                return info
            md5.update(chunk)
            while chunk and err is None:
                if d.eof:                       # another gzip member follows
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                try:
                    out = d.decompress(chunk, CHUNK)
                except zlib.error as e:         # read on: the md5 is still wanted
                    err = str(e) or "zlib error"
                    break
                chunk = d.unused_data if d.eof else d.unconsumed_tail
                inflated += len(out)
                if inflated > MAX_INFLATED:
                    err = "inflates to more than %d bytes" % MAX_INFLATED
                elif meta is None:
                    head += out
                    meta, err = _header(head)
                    if meta is not None:
                        head = b""
        if err is None and not d.eof:
            err = "truncated (gzip stream ends early)"
        if err is None and meta is None:
            err = _header(head, final=True)[1] or "no ring header"
    except MemoryError:
        err = "too big to check"
    info["md5"], info["size"] = md5.hexdigest(), total
    if err is None:
        info["version"] = meta.get("version") if isinstance(meta, dict) else None
    else:
        info["error"] = "corrupt: %s" % err
    return info


def _header(raw, final=False):
    """(metadata, None) once the header is complete, (None, None) while more is needed,
    (None, reason) when it is not a ring."""
    if len(raw) < 6:
        return None, ("no R1NG magic" if final else None)
    magic, fmt = struct.unpack("!4sH", raw[:6])
    if magic != b"R1NG":
        return None, "no R1NG magic"
    if fmt not in (1, 2):
        return None, "unknown ring format %d" % fmt
    start = 10 if fmt == 1 else 14
    if len(raw) < start:
        return None, ("truncated ring header" if final else None)
    n, = struct.unpack("!I" if fmt == 1 else "!Q", raw[6:start])
    if n > MAX_META:
        return None, "ring header claims %d bytes (more than %d)" % (n, MAX_META)
    if len(raw) < start + n:
        return None, ("truncated ring header" if final else None)
    try:
        return json.loads(raw[start:start + n]), None
    except (ValueError, UnicodeDecodeError) as e:
        return None, "bad ring header (%s)" % (str(e) or type(e).__name__)


# -- names in swift_dir, through its descriptor ----------------------------------------

def _user(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


KINDS = ((stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISDIR, "directory"),
         (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
         (stat.S_ISBLK, "block device"))


def not_regular(path, st):
    kind = next((k for test, k in KINDS if test(st.st_mode)), "special file")
    return NotRegular("%s is not a regular file (a %s, owner %s): ringmgr replaces only "
                      "regular files; remove it on the node, then push again"
                      % (path, kind, _user(st.st_uid)))


def open_regular(dfd, name, path):
    """A descriptor of an existing regular file ``name`` in swift_dir (never following
    a symlink, never blocking on a FIFO), its stat; None when there is none."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise not_regular(path, os.stat(name, dir_fd=dfd, follow_symlinks=False))
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise not_regular(path, st)
    return fd, st


def fd_ring_info(fd, st):
    with os.fdopen(os.dup(fd), "rb") as f:
        return ring_stream_info(f, st.st_size)


def owner_ids(owner):
    user, _, group = owner.partition(":")
    uid = pwd.getpwnam(user).pw_uid
    gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(user).pw_gid
    return uid, gid


def unsafe_dir(path, st, owner):
    """Why root must not write in swift_dir (its stat ``st``), or None.

    Only root and the configured owner may own or write it: anyone else could plant
    names there between ringmgr's steps."""
    uids, gids = {0}, {0}
    try:
        uid, gid = owner_ids(owner or "root")
        uids.add(uid)
        gids.add(gid)
    except (KeyError, ValueError):
        pass
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid not in uids:
        who, fix = "its owner %s" % _user(st.st_uid), "chown root %s" % path
    elif mode & stat.S_IWGRP and st.st_gid not in gids:
        who, fix = "group %s" % _group(st.st_gid), "chmod g-w %s" % path
    elif mode & stat.S_IWOTH:
        who, fix = "everyone", "chmod o-w %s" % path
    else:
        return None
    return ("swift_dir %s (owner %s:%s, mode %04o) is writable by %s, not only by root "
            "and the configured owner %s: nothing was changed; fix it (%s), then push "
            "again" % (path, _user(st.st_uid), _group(st.st_gid), mode, who,
                       owner or "root", fix))


def open_dir(path):
    """swift_dir's descriptor, or None when it does not exist."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None


def is_tmp(name):
    return name.startswith(".") and MARK in name and name.endswith(".tmp") and "/" not in name


# -- inspect -------------------------------------------------------------------------

def inspect(a, dfd=None):
    d = a["dir"]
    out = {"dir": d, "exists": False, "rings": {}, "removed_tmp": [],
           "writable": False, "free": None, "unsafe": None}
    own = dfd is None
    if own:
        dfd = open_dir(d)
    if dfd is None:
        return out
    try:
        out["exists"] = True
        out["unsafe"] = unsafe_dir(d, os.fstat(dfd), a.get("owner"))
        for name in sorted(os.listdir(dfd)):
            if is_tmp(name):
                if a.get("cleanup") and not out["unsafe"]:
                    try:
                        os.unlink(name, dir_fd=dfd)      # never follows a symlink
                        out["removed_tmp"].append(name)
                    except OSError:
                        pass
            elif name.endswith(".ring.gz"):
                out["rings"][name] = inspect_ring(dfd, name, os.path.join(d, name))
        out["writable"] = os.access(".", os.W_OK, dir_fd=dfd)
        st = os.statvfs(dfd)
        out["free"] = st.f_bavail * st.f_frsize
    finally:
        if own:
            os.close(dfd)
    return out


def inspect_ring(dfd, name, path):
    try:
        fd, st = open_regular(dfd, name, path)
    except NotRegular as e:
        return {"md5": None, "size": None, "version": None, "error": str(e),
                "regular": False}
    except OSError as e:
        return {"md5": None, "size": None, "version": None,
                "error": "unreadable: %s" % e.strerror}
    if fd is None:                        # gone since listdir
        return {"md5": None, "size": None, "version": None, "error": "vanished"}
    try:
        return fd_ring_info(fd, st)
    except OSError as e:
        return {"md5": None, "size": None, "version": None,
                "error": "unreadable: %s" % e.strerror}
    finally:
        os.close(fd)


# -- receive and apply -----------------------------------------------------------------

def check_request(files):
    for f in files:
        name, tmp, size = f.get("name"), f.get("tmp"), f.get("size")
        if not (isinstance(name, str) and name.endswith(".ring.gz") and "/" not in name
                and not name.startswith(".")):
            raise ValueError("bad ring name %r" % (name,))
        if not (isinstance(tmp, str) and is_tmp(tmp)):
            raise ValueError("bad temp name %r" % (tmp,))
        if not (isinstance(size, int) and 0 <= size <= MAX_FILE):
            raise ValueError("bad size %r for %s" % (size, name))


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def receive(dfd, files, stream):
    """Write each file's bytes, streamed after the request, to a new temp file.

    Returns name -> descriptor (or the error that file met).  EOFError when the
    stream ends early: every temp file made is removed first."""
    got = {}
    for f in files:
        left, fd = f["size"], None
        try:
            fd = os.open(f["tmp"], os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            got[f["name"]] = fd
        except OSError as e:
            got[f["name"]] = e
        while left > 0:
            chunk = stream.read(min(left, CHUNK))
            if not chunk:
                discard(dfd, files, got)
                raise EOFError("the admin host went away mid-transfer")
            left -= len(chunk)
            if isinstance(got[f["name"]], int):
                try:
                    _write_all(fd, chunk)
                except OSError as e:
                    got[f["name"]] = e
                    _unlink_ours(dfd, f["tmp"], fd)
                    os.close(fd)
    return got


def _unlink_ours(dfd, tmp, fd):
    """Remove the temp name if it still is the file behind ``fd``."""
    try:
        if same_file(dfd, tmp, os.fstat(fd)):
            os.unlink(tmp, dir_fd=dfd)
    except OSError:
        pass


def same_file(dfd, name, st):
    try:
        now = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def discard(dfd, files, got):
    for f in files:
        fd = got.get(f["name"])
        if isinstance(fd, int):
            _unlink_ours(dfd, f["tmp"], fd)
            os.close(fd)
            got[f["name"]] = None


def fd_md5(fd):
    h, off = hashlib.md5(), 0
    while True:
        chunk = os.pread(fd, CHUNK, off)
        if not chunk:
            return h.hexdigest()
        h.update(chunk)
        off += len(chunk)


def check_one(dfd, d, f, fd, owner):
    """Everything but the rename, on the descriptor ringmgr created: size, md5,
    version, fsync, owner and mode."""
    st = os.fstat(fd)
    if st.st_size != f["size"]:
        raise ValueError("uploaded copy is incomplete (%d of %d bytes)"
                         % (st.st_size, f["size"]))
    md5 = fd_md5(fd)
    if md5 != f["md5"]:
        raise ValueError("uploaded copy has md5 %s, expected %s" % (md5, f["md5"]))
    os.fsync(fd)
    old, ost = open_regular(dfd, f["name"], os.path.join(d, f["name"]))
    if old is not None:
        try:
            cur = fd_ring_info(old, ost)
        finally:
            os.close(old)
        if (not f["force"] and cur["error"] is None and cur["version"] is not None
                and f["version"] is not None and cur["version"] > f["version"]):
            raise ValueError("node has a newer ring (version %s > %s)"
                             % (cur["version"], f["version"]))
        uid, gid, mode = ost.st_uid, ost.st_gid, stat.S_IMODE(ost.st_mode) & 0o644
    else:
        try:
            uid, gid = owner_ids(owner)
        except KeyError:
            raise ValueError("owner %s does not exist on the node" % owner)
        mode = 0o644
    os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)
    if not same_file(dfd, f["tmp"], st):
        raise ValueError("the temp file %s was replaced by someone else during the push"
                         % os.path.join(d, f["tmp"]))


def describe(e):
    if isinstance(e, OSError):
        return e.strerror + (": %s" % e.filename if e.filename else "")
    return str(e)


def apply(dfd, a, received):
    """All or nothing per node: every file is checked before any is renamed."""
    d = a["dir"]; res = {}
    unsafe = unsafe_dir(d, os.fstat(dfd), a.get("owner"))
    try:
        for f in a["files"]:
            try:
                fd = received.get(f["name"])
                if unsafe:
                    raise ValueError(unsafe)
                if isinstance(fd, Exception):
                    raise fd
                if fd is None:
                    raise ValueError("not received")
                check_one(dfd, d, f, fd, a["owner"])
                res[f["name"]] = {"ok": True, "error": None}
            except (OSError, ValueError) as e:
                res[f["name"]] = {"ok": False, "error": describe(e)}
            except MemoryError:
                res[f["name"]] = {"ok": False, "error": "out of memory checking it"}
        failed = [n for n, r in res.items() if not r["ok"]]
        if failed:
            for f in a["files"]:
                if res[f["name"]]["ok"]:
                    res[f["name"]] = {"ok": False, "error": None, "skipped": True}
            discard(dfd, a["files"], received)
        else:                 # a TERM from the admin side waits until all are renamed
            held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                for f in a["files"]:
                    os.rename(f["tmp"], f["name"], src_dir_fd=dfd, dst_dir_fd=dfd)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
        os.fsync(dfd)
    finally:
        for fd in received.values():
            if isinstance(fd, int):
                os.close(fd)
    return {"files": res}


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve_apply(dfd, req, stream):
    """One apply request: receive the streamed files, then apply.  EOFError (every
    temp file removed) when the stream ends early."""
    t0 = time.monotonic()
    try:
        check_request(req["files"])
    except ValueError as e:
        return {"files": {f.get("name", "?"): {"ok": False, "error": "bad request: %s" % e}
                          for f in req["files"]}, "seconds": {"receive": 0, "apply": 0}}
    received = receive(dfd, req["files"], stream) if req.get("stream") else {}
    t1 = time.monotonic()
    out = apply(dfd, req, received)
    out["seconds"] = {"receive": t1 - t0, "apply": time.monotonic() - t1}
    return out


def main():
    op, arg = sys.argv[1], json.loads(sys.argv[2])
    if op != "session":
        send(inspect(arg))
        return
    dfd = open_dir(arg["dir"])
    ident = None
    try:                              # not held while waiting: the admin may never answer
        if dfd is not None:
            st = os.fstat(dfd)
            ident = (st.st_dev, st.st_ino)
        send(inspect(arg, dfd))
    finally:
        if dfd is not None:
            os.close(dfd)
    line = sys.stdin.buffer.readline()   # EOF (admin gone or nothing to do): exit, no change
    if not line.strip():
        return
    dfd = open_dir(arg["dir"])
    try:
        st = os.fstat(dfd) if dfd is not None else None
        if st is None or (st.st_dev, st.st_ino) != ident:
            req = json.loads(line)
            why = "swift_dir %s was replaced since it was inspected" % arg["dir"]
            send({"files": {f.get("name", "?"): {"ok": False, "error": why}
                            for f in req.get("files", [])},
                  "seconds": {"receive": 0, "apply": 0}})
            return
        send(serve_apply(dfd, json.loads(line), sys.stdin.buffer))
    except EOFError:
        sys.exit(3)
    finally:
        if dfd is not None:
            os.close(dfd)


if __name__ == "__main__":
    main()
