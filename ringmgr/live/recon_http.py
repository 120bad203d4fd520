"""The HTTP/1.1 GETs of a recon sweep, on plain sockets (the standard library only).

Recon answers are small JSON documents; what costs is per request (a general HTTP
client's machinery, an event loop, and their imports) and per connection (a TCP
handshake, a green thread in the server).  So each server's checks go over at most
``PER_SERVER`` connections, kept alive and reused for its checks in turn, from a pool
of threads no larger than ``[recon].concurrency`` (the requests in flight).

An answer is ``(status, body)``; a failure is a ``ReconHTTPError`` whose text is the
one line the report shows, prefixed ``unreachable: `` when no connection was made.
(The standard library's ``http.client`` was measured in its place: slower to import
and per answer; docs/performance.md, health section.)
"""

from __future__ import annotations

import socket

PER_SERVER = 2          # connections to one server (its checks share them)
MAX_BODY = 16 << 20     # a recon answer larger than this is not recon
MAX_HEAD = 64 << 10     # nor one whose status line and headers are larger
NO_ANSWER = "unreachable: "
TIMED_OUT = "no answer within"


class ReconHTTPError(Exception):
    """One line: why a request got no HTTP answer."""


class _Stale(Exception):
    """A kept-alive connection the server had closed before it read the request."""


class Connection:
    """One kept-alive connection to ``host:port`` (opened on first use)."""

    def __init__(self, host: str, port: int, *, ssl_context=None, connect_timeout: float,
                 timeout: float):
        self.host, self.port = host, port
        self.ssl = ssl_context
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self.sock = self.file = None
        self.host_header = (f"[{host}]" if ":" in host else host) + f":{port}"

    def get(self, path: str) -> tuple[int, bytes]:
        reused = self.sock is not None
        if not reused:
            self._connect()
        try:
            return self._exchange(path, reused)
        except _Stale:
            self.close()
            self._connect()
            return self._exchange(path, False)

    def _connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port),
                                            timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl is not None:
                sock = self.ssl.wrap_socket(sock, server_hostname=self.host)
        except TimeoutError:
            raise ReconHTTPError(f"{NO_ANSWER}no connection within "
                                 f"{self.connect_timeout:g} s") from None
        except ConnectionRefusedError:
            raise ReconHTTPError(f"{NO_ANSWER}connection refused") from None
        except OSError as e:
            raise ReconHTTPError(NO_ANSWER + _os_reason(e)) from None
        sock.settimeout(self.timeout)
        self.sock, self.file = sock, sock.makefile("rb")

    def _exchange(self, path: str, reused: bool) -> tuple[int, bytes]:
        request = (f"GET {path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
                   f"User-Agent: ringmgr\r\nAccept: application/json\r\n\r\n").encode()
        got = False
        try:
            self.sock.sendall(request)
            status_line = self.file.readline(MAX_HEAD)
            if not status_line:
                if reused:
                    raise _Stale()
                raise ReconHTTPError("the server closed the connection without an answer")
            got = True
            status, keep, body = self._answer(status_line)
        except _Stale:
            raise
        except TimeoutError:
            self.close()
            raise ReconHTTPError(f"{TIMED_OUT} {self.timeout:g} s") from None
        except (ConnectionResetError, BrokenPipeError) as e:
            self.close()
            if reused and not got:
                raise _Stale() from None
            raise ReconHTTPError(f"connection lost: {_os_reason(e)}") from None
        except ReconHTTPError:
            self.close()
            raise
        except OSError as e:
            self.close()
            raise ReconHTTPError(f"connection lost: {_os_reason(e)}") from None
        if not keep:
            self.close()
        return status, body

    def _answer(self, status_line: bytes) -> tuple[int, bool, bytes]:
        first = status_line.decode("latin-1").rstrip("\r\n")
        parts = first.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ReconHTTPError(f"bad HTTP answer: {first[:60]!r}")
        version, status = parts[0], int(parts[1])
        headers, size = {}, len(status_line)
        while True:
            line = self.file.readline(MAX_HEAD)
            size += len(line)
            if size > MAX_HEAD:
                raise ReconHTTPError("bad HTTP answer: headers over 64 KiB")
            if not line:
                raise ReconHTTPError("the server closed the connection mid-answer")
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        conn = headers.get("connection", "").lower()
        keep = (version == "HTTP/1.1" and "close" not in conn) or "keep-alive" in conn
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = self._chunked()
            elif "content-length" in headers:
                length = int(headers["content-length"])
                if length > MAX_BODY:
                    raise ReconHTTPError("bad HTTP answer: body over 16 MiB")
                body = self._exactly(length)
            else:                   # the body runs to the end of the connection
                body = self.file.read(MAX_BODY + 1)
                if len(body) > MAX_BODY:
                    raise ReconHTTPError("bad HTTP answer: body over 16 MiB")
                keep = False
        except ValueError:
            raise ReconHTTPError("bad HTTP answer: a broken length or chunk size") from None
        return status, keep, body

    def _chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            line = self.file.readline(1024)
            if not line:
                raise ReconHTTPError("the server closed the connection mid-answer")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while self.file.readline(MAX_HEAD) not in (b"\r\n", b"\n", b""):
                    pass            # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise ReconHTTPError("bad HTTP answer: body over 16 MiB")
            chunks.append(self._exactly(size))
            self.file.readline(1024)

    def _exactly(self, n: int) -> bytes:
        data = self.file.read(n)
        if len(data) != n:
            raise ReconHTTPError("the server closed the connection mid-answer")
        return data

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.file.close()
                self.sock.close()
            except OSError:
                pass
        self.sock = self.file = None


def _os_reason(e: OSError) -> str:
    return (e.strerror or str(e) or type(e).__name__).lower()


def ssl_context(scheme: str):
    """None for http; for https the standard library's default (the system's CA
    store, host names and addresses checked)."""
    if scheme != "https":
        return None
    import ssl

    return ssl.create_default_context()
