"""The node side of ``ringmgr push``: runs on each storage node and proxy.

Shipped as source over the SSH channel (see ``push.py``) and run by the node's
python3 with the standard library only (a node need not import swift).  It parses
ring formats 1 and 2 (``swift.common.ring.io``): "R1NG", a 2-byte format version,
then a 4-byte (v1) or 8-byte (v2) length and the JSON metadata holding "version".
The admin side imports the same functions for its own ring files, so one parser
of ring headers serves both ends.

``main()`` handles one run: ``session`` answers the inspect request from argv,
then waits on stdin for one apply request (or EOF); ``inspect``/``apply`` alone
answer once.
"""
import grp, gzip, hashlib, json, os, pwd, stat, struct, sys, time, zlib

MARK = ".ringmgr-"

def ring_info(path):
    with open(path, "rb") as f:
        return ring_bytes_info(f.read())

def ring_bytes_info(data):
    info = {"md5": hashlib.md5(data).hexdigest(), "size": len(data),
            "version": None, "error": None}
    try:
        raw = gzip.decompress(data)
        magic, fmt = struct.unpack("!4sH", raw[:6])
        if magic != b"R1NG":
            raise ValueError("no R1NG magic")
        if fmt == 1:
            n, = struct.unpack("!I", raw[6:10]); meta = json.loads(raw[10:10 + n])
        elif fmt == 2:
            n, = struct.unpack("!Q", raw[6:14]); meta = json.loads(raw[14:14 + n])
        else:
            raise ValueError("unknown ring format %d" % fmt)
        info["version"] = meta.get("version")
    except (OSError, EOFError, ValueError, struct.error, zlib.error) as e:
        info["error"] = "corrupt: %s" % (str(e) or type(e).__name__)
    return info

def inspect(a):
    d = a["dir"]
    out = {"dir": d, "exists": os.path.isdir(d), "rings": {}, "removed_tmp": [],
           "writable": False, "free": None}
    if not out["exists"]:
        return out
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if MARK in name and name.endswith(".tmp") and name.startswith("."):
            if a.get("cleanup"):
                try:
                    os.unlink(p); out["removed_tmp"].append(name)
                except OSError:
                    pass
        elif name.endswith(".ring.gz") and os.path.isfile(p):
            try:
                out["rings"][name] = ring_info(p)
            except OSError as e:
                out["rings"][name] = {"md5": None, "size": None, "version": None,
                                      "error": "unreadable: %s" % e.strerror}
    out["writable"] = os.access(d, os.W_OK)
    st = os.statvfs(d)
    out["free"] = st.f_bavail * st.f_frsize
    return out

def owner_ids(owner):
    user, _, group = owner.partition(":")
    uid = pwd.getpwnam(user).pw_uid
    gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(user).pw_gid
    return uid, gid

def check_one(d, f, owner):
    """Everything but the rename: md5, version, fsync, owner and mode."""
    tmp = os.path.join(d, f["tmp"]); target = os.path.join(d, f["name"])
    with open(tmp, "rb") as fh:
        data = fh.read()
        if len(data) != f["size"]:
            raise ValueError("uploaded copy is incomplete (%d of %d bytes)"
                             % (len(data), f["size"]))
        md5 = hashlib.md5(data).hexdigest()
        if md5 != f["md5"]:
            raise ValueError("uploaded copy has md5 %s, expected %s" % (md5, f["md5"]))
        os.fsync(fh.fileno())
    if os.path.exists(target):
        cur = ring_info(target)
        if (not f["force"] and cur["error"] is None and cur["version"] is not None
                and f["version"] is not None and cur["version"] > f["version"]):
            raise ValueError("node has a newer ring (version %s > %s)"
                             % (cur["version"], f["version"]))
        st = os.stat(target)
        uid, gid, mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
    else:
        try:
            uid, gid = owner_ids(owner)
        except KeyError:
            raise ValueError("owner %s does not exist on the node" % owner)
        mode = 0o644
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)

def receive(d, files, stream):
    """Write each file's bytes, streamed on stdin after the request, to its temp name."""
    errors = {}
    for f in files:
        left, out = f["size"], None
        try:
            out = open(os.path.join(d, f["tmp"]), "xb")
        except OSError as e:
            errors[f["name"]] = e
        while left > 0:
            chunk = stream.read(min(left, 1 << 20))
            if not chunk:
                if out is not None:
                    out.close()
                raise EOFError("the admin host went away mid-transfer")
            left -= len(chunk)
            if out is not None and f["name"] not in errors:
                try:
                    out.write(chunk)
                except OSError as e:
                    errors[f["name"]] = e
        if out is not None:
            try:
                out.close()
            except OSError as e:
                errors.setdefault(f["name"], e)
    return errors

def describe(e):
    if isinstance(e, OSError):
        return e.strerror + (": %s" % e.filename if e.filename else "")
    return str(e)

def apply(a, received=None):
    """All or nothing per node: every file is checked before any is renamed."""
    d = a["dir"]; res = {}
    for f in a["files"]:
        try:
            if received and f["name"] in received:
                raise received[f["name"]]
            check_one(d, f, a["owner"])
            res[f["name"]] = {"ok": True, "error": None}
        except (OSError, ValueError) as e:
            res[f["name"]] = {"ok": False, "error": describe(e)}
    failed = [n for n, r in res.items() if not r["ok"]]
    for f in a["files"]:
        tmp = os.path.join(d, f["tmp"])
        if failed:
            if res[f["name"]]["ok"]:
                res[f["name"]] = {"ok": False, "error": None, "skipped": True}
            try:
                os.unlink(tmp)
            except OSError:
                pass
        else:
            os.rename(tmp, os.path.join(d, f["name"]))
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"files": res}


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    op, arg = sys.argv[1], json.loads(sys.argv[2])
    if op == "session":
        send(inspect(arg))
        stdin = sys.stdin.buffer
        line = stdin.readline()           # EOF (admin gone or nothing to do): exit, no change
        if line.strip():
            req = json.loads(line)
            t0 = time.monotonic()
            try:
                received = receive(req["dir"], req["files"], stdin) if req.get("stream") else {}
            except EOFError:
                for f in req["files"]:
                    try:
                        os.unlink(os.path.join(req["dir"], f["tmp"]))
                    except OSError:
                        pass
                sys.exit(3)
            t1 = time.monotonic()
            out = apply(req, received)
            out["seconds"] = {"receive": t1 - t0, "apply": time.monotonic() - t1}
            send(out)
    else:
        send({"inspect": inspect, "apply": apply}[op](arg))


if __name__ == "__main__":
    main()
