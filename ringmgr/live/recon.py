"""The recon client: one concurrent sweep of swift's recon middleware on many servers.

``swift-recon`` makes one sweep per option (``-r``, ``-d``, ``-u``, ``--md5`` each
visit every server again) and takes its hosts from one ring.  Here a sweep is a list
of ``(Server, check)`` pairs over the servers of *every* ring, run at once under one
bound (``[recon].concurrency`` requests in flight, a pool of threads) with connect
and read timeouts (``[recon].connect_timeout``, ``[recon].timeout``), over kept-alive
connections (``recon_http``: at most two per server, reused for its checks).

A failure on one server is collected, never raised: each answer is a ``Reply`` with
either a parsed ``value`` or a one-line ``error`` ("connection refused", "no answer
within 5 s", "HTTP 503", "not JSON: '<html>...'", or the parser's complaint).  The
clock is injected (``clock``), so skew against the admin host is measured at the
midpoint of each ``/recon/time`` request.

Servers come from the ring devices: every distinct (ip, port) of the account,
container and object rings (object-N rings are served by the object server), named
by the config node whose ``ip`` matches; ``[recon].ports`` overrides a server type's
port (recon on a separate port) and ``[recon].scheme`` the scheme.
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.live.recon_parse import PARSERS, ReconParseError

SERVER_TYPES = ("account", "container", "object")

# What a full health sweep asks each kind of server (the recon cache is per node, so
# the node-wide facts are read once, from its object server).
CHECKS = {
    "object": ("replication/object", "reconstruction/object", "diskusage", "unmounted",
               "async", "quarantined", "ringmd5", "swiftconfmd5", "relinker", "time",
               "driveaudit"),
    "container": ("replication/container",),
    "account": ("replication/account",),
}
# What the other servers of the same type on the same address are asked: the rest is
# about the host (its clock, disks, swift.conf, drive audit, recon cache) and recon
# answers it the same on every port of the host (one ``devices``, one recon cache and
# one swift.conf, as with ``servers_per_port``).
PER_PORT_CHECKS = {
    "object": ("replication/object", "reconstruction/object", "ringmd5"),
    "container": ("replication/container",),
    "account": ("replication/account",),
}
REPLICATION_CHECKS = {
    "object": ("replication/object", "reconstruction/object", "unmounted", "time"),
    "container": ("replication/container",),
    "account": ("replication/account",),
}


def server_type(ring: str) -> str:
    """account, container or object (for object and object-N rings)."""
    return "object" if ring.startswith("object") else ring


@dataclass(frozen=True, order=True)
class Server:
    """One storage server's recon endpoint."""

    node: str      # config node name, or the ip when no node has it
    kind: str      # account, container, object
    ip: str
    port: int

    @property
    def label(self) -> str:
        return f"{self.node} {self.kind} ({self.ip}:{self.port})"


@dataclass
class Reply:
    server: Server
    check: str
    value: object = None
    error: str | None = None
    sent: float = 0.0       # admin clock when the request went out
    received: float = 0.0   # and when its answer was in

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Sweep:
    """Every reply of one sweep, by (server, check)."""

    replies: dict[tuple[Server, str], Reply] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0

    def get(self, server: Server, check: str) -> Reply | None:
        return self.replies.get((server, check))

    def servers(self) -> list[Server]:
        return sorted({s for s, _ in self.replies})

    def by_server(self) -> dict[Server, list[Reply]]:
        """Each server's replies, in the order they were asked for."""
        out: dict[Server, list[Reply]] = {}
        for (s, _), r in self.replies.items():
            out.setdefault(s, []).append(r)
        return out

    def unreachable(self) -> dict[Server, str]:
        """Servers none of whose requests got an HTTP answer, with the first error."""
        out = {}
        for server, replies in sorted(self.by_server().items()):
            if replies and all(r.error and r.error.startswith(_NO_ANSWER) for r in replies):
                out[server] = replies[0].error.removeprefix(_NO_ANSWER)
        return out


_NO_ANSWER = "unreachable: "   # recon_http.NO_ANSWER


def ring_devices(builder_dir: Path, rings=None) -> dict[str, list[dict]]:
    """Ring name -> its devices (dicts with ip, port, device, ...) from the builders in
    ``builder_dir``, read as the plain pickles they are (no swift import: a health
    sweep should not pay for swift's ring module)."""
    out = {}
    names = rings or sorted(p.name.removesuffix(".builder")
                            for p in Path(builder_dir).glob("*.builder"))
    for ring in names:
        path = Path(builder_dir) / f"{ring}.builder"
        with open(path, "rb") as f:
            data = pickle.load(f)
        devs = data["devs"] if isinstance(data, dict) else data.devs
        out[ring] = [d for d in devs if d is not None]
    return out


def servers_from_devices(devices_by_ring: dict[str, list[dict]], config,
                         nodes=None) -> list[Server]:
    """Every distinct recon endpoint the rings name (``nodes``: only those config node
    names)."""
    by_ip = {n.ip: name for name, n in config.nodes.items() if n.ip}
    overrides = config.recon.ports
    out = set()
    for ring, devs in devices_by_ring.items():
        kind = server_type(ring)
        for d in devs:
            node = by_ip.get(d["ip"], d["ip"])
            if nodes is not None and node not in nodes:
                continue
            out.add(Server(node, kind, d["ip"], overrides.get(kind, d["port"])))
    return sorted(out)


def plan_checks(servers, checks=CHECKS) -> list[tuple[Server, str]]:
    """(server, check) pairs for a sweep: ``checks[kind]`` for each server (node-wide
    facts such as diskusage are in the object server's list only)."""
    return [(s, c) for s in servers for c in checks.get(s.kind, ())]


def plan_health(servers) -> list[tuple[Server, str]]:
    """The (server, check) pairs of a health sweep: ``CHECKS`` for the first server of
    each type on each address, ``PER_PORT_CHECKS`` for the others there."""
    seen = set()
    out = []
    for s in sorted(servers):
        first = (s.ip, s.kind) not in seen
        seen.add((s.ip, s.kind))
        out += [(s, c) for c in (CHECKS if first else PER_PORT_CHECKS).get(s.kind, ())]
    return out


class ReconClient:
    """Runs sweeps; ``transport`` (tests only) is a function ``(server, path) ->
    (status, body)`` standing in for the network."""

    def __init__(self, recon_config, *, clock=time.time, transport=None):
        self.cfg = recon_config
        self.clock = clock
        self.transport = transport

    def url(self, server: Server, check: str) -> str:
        host = f"[{server.ip}]" if ":" in server.ip else server.ip
        return f"{self.cfg.scheme}://{host}:{server.port}/recon/{check}"

    def sweep(self, pairs) -> Sweep:
        """Ask every (server, check) in ``pairs`` at once; never raises for a server.

        Threads (at most ``[recon].concurrency``) take jobs: a server's first check
        alone (a server that cannot be reached is not tried again for each check:
        they all get that error), then its other checks split over at most
        ``recon_http.PER_SERVER`` kept-alive connections.  A check that times out
        sends the server's remaining checks out one per connection, so a hung server
        costs about two timeouts, not one per check."""
        import queue
        import threading

        from ringmgr.live import recon_http

        pairs = list(pairs)
        cfg = self.cfg
        ssl = recon_http.ssl_context(cfg.scheme)
        out = Sweep(started=self.clock())
        by_server: dict[Server, list[str]] = {}
        for s, c in pairs:
            by_server.setdefault(s, []).append(c)
        jobs: queue.Queue = queue.Queue()

        def ask(conn, server, check) -> Reply:
            reply = self._get(conn, server, check)
            out.replies[(server, check)] = reply
            return reply

        def run(server, checks, first):
            conn = recon_http.Connection(server.ip, server.port, ssl_context=ssl,
                                         connect_timeout=cfg.connect_timeout,
                                         timeout=cfg.timeout)
            try:
                if first:
                    reply = ask(conn, server, checks[0])
                    checks = checks[1:]
                    if reply.error and reply.error.startswith(_NO_ANSWER):
                        for check in checks:
                            out.replies[(server, check)] = Reply(
                                server, check, error=reply.error, sent=reply.sent,
                                received=reply.received)
                        return
                    if reply.error and reply.error.startswith(recon_http.TIMED_OUT):
                        for check in checks:
                            jobs.put((server, [check], False))
                        return
                    n = min(recon_http.PER_SERVER, len(checks))
                    parts = [checks[i::n] for i in range(n)]
                    for part in parts[1:]:
                        jobs.put((server, part, False))
                    checks = parts[0] if parts else []
                checks = list(checks)
                while checks:
                    reply = ask(conn, server, checks.pop(0))
                    if reply.error and reply.error.startswith(recon_http.TIMED_OUT):
                        for check in checks:
                            jobs.put((server, [check], False))
                        return
            finally:
                conn.close()

        def worker():
            while True:
                job = jobs.get()
                if job is None:
                    return
                try:
                    run(*job)
                except Exception as e:  # noqa: BLE001  (never lose a server's answer)
                    server, checks, _ = job
                    for check in checks:
                        out.replies.setdefault((server, check), Reply(
                            server, check, error=f"{type(e).__name__}: {e}"))
                finally:
                    jobs.task_done()

        for server, checks in by_server.items():
            jobs.put((server, checks, True))
        n = min(cfg.concurrency, len(pairs))   # a hung server's checks fan out
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
        for t in threads:
            t.start()
        jobs.join()
        for t in threads:
            jobs.put(None)
        for t in threads:
            t.join()
        out.replies = {k: out.replies[k] for k in pairs if k in out.replies}
        out.finished = self.clock()
        return out

    def _get(self, conn, server: Server, check: str) -> Reply:
        from ringmgr.live.recon_http import ReconHTTPError

        reply = Reply(server, check, sent=self.clock())
        path = f"/recon/{check}"
        try:
            if self.transport is not None:
                status, body = self.transport(server, path)
            else:
                status, body = conn.get(path)
        except ReconHTTPError as e:
            reply.error = str(e)
        else:
            reply.error, reply.value = decode(check, status, body)
        reply.received = self.clock()
        return reply


def decode(check: str, status: int, body: bytes) -> tuple[str | None, object]:
    """(error, value) for one HTTP answer: a non-200 status, a body that is not JSON
    (an HTML error page from a load balancer, say) or one the check's parser refuses
    are errors of one line."""
    if status != 200:
        return f"HTTP {status}: {_snippet(body)}", None
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return f"not JSON: {_snippet(body)}", None
    parser = PARSERS.get(check)
    if parser is None:
        return None, obj
    try:
        return None, parser(obj)
    except ReconParseError as e:
        return f"unexpected answer: {e}", None
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        return f"unexpected answer: {type(e).__name__}: {e}", None


def _snippet(body: bytes, n: int = 60) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ").replace("\r", "")
    return repr(text[:n] + ("..." if len(text) > n else ""))


def clock_skew(reply: Reply) -> float | None:
    """The server's clock minus the admin host's, from a ``time`` reply (measured at
    the request's midpoint, so the round trip does not count as skew)."""
    if not reply.ok or reply.value is None:
        return None
    return reply.value - (reply.sent + reply.received) / 2.0
