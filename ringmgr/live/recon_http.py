"""The HTTP/1.1 GETs of a recon sweep, over the standard library's ``http.client``.

Recon answers are small JSON documents; what costs is per request (a general HTTP
client's machinery, an event loop, and their imports) and per connection (a TCP
handshake, a green thread in the server).  So each server's checks go over at most
``PER_SERVER`` connections, kept alive and reused for its checks in turn, from a pool
of threads no larger than ``[recon].concurrency`` (the requests in flight).

An answer is ``(status, body)``; a failure is a ``ReconHTTPError`` whose text is the
one line the report shows, prefixed ``unreachable: `` when no connection was made.
"""

from __future__ import annotations

import http.client

PER_SERVER = 2          # connections to one server (its checks share them)
MAX_BODY = 16 << 20     # a recon answer larger than this is not recon
NO_ANSWER = "unreachable: "
TIMED_OUT = "no answer within"
_OVER = "bad HTTP answer: body over 16 MiB"
_MID = "the server closed the connection mid-answer"
# What a kept-alive connection the server had closed gives on the next request (it
# is asked again once, on a new connection: a GET can be repeated).
_STALE = (http.client.BadStatusLine, ConnectionResetError, BrokenPipeError)


class ReconHTTPError(Exception):
    """One line: why a request got no HTTP answer."""


class _Stale(Exception):
    """A kept-alive connection the server had closed before it answered."""


class Connection:
    """One kept-alive connection to ``host:port`` (opened on first use); the
    connect timeout bounds the TCP (and TLS) handshake, the timeout each answer."""

    def __init__(self, host: str, port: int, *, ssl_context=None, connect_timeout: float,
                 timeout: float):
        self.host, self.port = host, port
        self.ssl = ssl_context
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self.headers = {"Host": (f"[{host}]" if ":" in host else host) + f":{port}",
                        "User-Agent": "ringmgr", "Accept": "application/json"}
        if ssl_context is None:
            self.http = http.client.HTTPConnection(host, port, timeout=connect_timeout)
        else:
            self.http = http.client.HTTPSConnection(host, port, timeout=connect_timeout,
                                                    context=ssl_context)

    def get(self, path: str) -> tuple[int, bytes]:
        reused = self.http.sock is not None
        if not reused:
            self._connect()
        try:
            return self._exchange(path, reused)
        except _Stale:
            self._connect()
            return self._exchange(path, False)

    def _connect(self) -> None:
        self.close()
        try:
            self.http.connect()
        except TimeoutError:
            self.close()
            raise ReconHTTPError(f"{NO_ANSWER}no connection within "
                                 f"{self.connect_timeout:g} s") from None
        except ConnectionRefusedError:
            self.close()
            raise ReconHTTPError(f"{NO_ANSWER}connection refused") from None
        except OSError as e:
            self.close()
            raise ReconHTTPError(NO_ANSWER + _os_reason(e)) from None
        self.http.sock.settimeout(self.timeout)

    def _exchange(self, path: str, reused: bool) -> tuple[int, bytes]:
        try:
            try:
                self.http.request("GET", path, headers=self.headers)
                resp = self.http.getresponse()
            except _STALE:
                if not reused:
                    raise
                self.close()
                raise _Stale() from None
            return resp.status, self._body(resp)
        except _Stale:
            raise
        except TimeoutError:
            self.close()
            raise ReconHTTPError(f"{TIMED_OUT} {self.timeout:g} s") from None
        except http.client.RemoteDisconnected:
            self.close()
            raise ReconHTTPError("the server closed the connection without an answer"
                                 ) from None
        except http.client.IncompleteRead:      # also a broken chunk size
            self.close()
            raise ReconHTTPError(_MID) from None
        except http.client.BadStatusLine as e:
            self.close()
            line = str(e.args[0] if e.args else "").rstrip("\r\n")
            raise ReconHTTPError(f"bad HTTP answer: {line[:60]!r}") from None
        except http.client.HTTPException as e:  # a line over 64 KiB, 100 headers, ...
            self.close()
            raise ReconHTTPError(f"bad HTTP answer: {str(e)[:80] or type(e).__name__}"
                                 ) from None
        except ReconHTTPError:
            self.close()
            raise
        except OSError as e:
            self.close()
            raise ReconHTTPError(f"connection lost: {_os_reason(e)}") from None

    @staticmethod
    def _body(resp: http.client.HTTPResponse) -> bytes:
        """The whole body, at most MAX_BODY bytes (the connection is then free for the
        next request, or closed by http.client if the answer said so)."""
        if resp.length is not None and resp.length > MAX_BODY:
            raise ReconHTTPError(_OVER)
        body = resp.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise ReconHTTPError(_OVER)
        if resp.length:         # a Content-Length the server did not send in full
            raise ReconHTTPError(_MID)
        resp.close()
        return body

    def close(self) -> None:
        try:
            self.http.close()
        except OSError:
            pass


def _os_reason(e: OSError) -> str:
    return (e.strerror or str(e) or type(e).__name__).lower()


def ssl_context(scheme: str):
    """None for http; for https the standard library's default (the system's CA
    store, host names and addresses checked)."""
    if scheme != "https":
        return None
    import ssl

    return ssl.create_default_context()
