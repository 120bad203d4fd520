"""The recon client: one concurrent sweep of swift's recon middleware on many servers.

``swift-recon`` makes one sweep per option (``-r``, ``-d``, ``-u``, ``--md5`` each
visit every server again) and takes its hosts from one ring.  Here a sweep is a list
of ``(Server, check)`` pairs over the servers of *every* ring, run at once under one
bound (``[recon].concurrency`` requests in flight) with connect and read timeouts
(``[recon].connect_timeout``, ``[recon].timeout``), over one connection pool (httpx).

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

import asyncio
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

    def unreachable(self) -> dict[Server, str]:
        """Servers none of whose requests got an HTTP answer, with the first error."""
        out = {}
        for server in self.servers():
            replies = [r for (s, _), r in self.replies.items() if s == server]
            if replies and all(r.error and r.error.startswith(_NO_ANSWER) for r in replies):
                out[server] = replies[0].error.removeprefix(_NO_ANSWER)
        return out


_NO_ANSWER = "unreachable: "


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


class ReconClient:
    """Runs sweeps; ``transport`` is for httpx's own test transports only."""

    def __init__(self, recon_config, *, clock=time.time, transport=None):
        self.cfg = recon_config
        self.clock = clock
        self.transport = transport

    def url(self, server: Server, check: str) -> str:
        host = f"[{server.ip}]" if ":" in server.ip else server.ip
        return f"{self.cfg.scheme}://{host}:{server.port}/recon/{check}"

    def sweep(self, pairs) -> Sweep:
        """Ask every (server, check) in ``pairs`` at once; never raises for a server."""
        return asyncio.run(self._sweep(list(pairs)))

    async def _sweep(self, pairs) -> Sweep:
        import httpx

        cfg = self.cfg
        timeout = httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout)
        limits = httpx.Limits(max_connections=cfg.concurrency,
                              max_keepalive_connections=cfg.concurrency)
        sem = asyncio.Semaphore(cfg.concurrency)
        out = Sweep(started=self.clock())
        kwargs = {"transport": self.transport} if self.transport else {}
        async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False,
                                     **kwargs) as client:
            async def one(server, check):
                async with sem:
                    reply = await self._get(client, server, check)
                out.replies[(server, check)] = reply

            await asyncio.gather(*(one(s, c) for s, c in pairs))
        out.finished = self.clock()
        return out

    async def _get(self, client, server: Server, check: str) -> Reply:
        import httpx

        reply = Reply(server, check, sent=self.clock())
        try:
            r = await client.get(self.url(server, check))
        except httpx.ConnectTimeout:
            reply.error = f"{_NO_ANSWER}no connection within {self.cfg.connect_timeout:g} s"
        except httpx.ConnectError as e:
            reply.error = _NO_ANSWER + _connect_reason(e)
        except httpx.TimeoutException:
            reply.error = f"no answer within {self.cfg.timeout:g} s"
        except httpx.HTTPError as e:
            reply.error = f"{type(e).__name__}: {e}"
        else:
            reply.error, reply.value = decode(check, r.status_code, r.content)
        reply.received = self.clock()
        return reply


def _connect_reason(e) -> str:
    """'connection refused', 'no route to host', ...: the OS error under httpx's."""
    seen = e
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        for inner in getattr(seen, "exceptions", ()):  # an ExceptionGroup of attempts
            if isinstance(inner, OSError) and inner.strerror:
                return inner.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return str(e) or type(e).__name__


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
