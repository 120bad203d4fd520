"""The HTTP/1.1 GETs of a recon sweep, on asyncio streams (the standard library only).

Recon answers are small JSON documents; what costs is per request (a general HTTP
client's machinery and its import) and per connection (a TCP handshake, a green
thread in the server).  So: each server gets at most ``PER_SERVER`` connections, kept
alive and reused for all of its checks in turn; the sweep as a whole keeps at most
``[recon].concurrency`` requests in flight.

An answer is ``(status, body)``; a failure is a ``ReconHTTPError`` whose text is the
one line the report shows, prefixed ``unreachable: `` when no connection was made.
"""

from __future__ import annotations

import asyncio

PER_SERVER = 2          # connections to one server (its checks share them)
MAX_BODY = 16 << 20     # a recon answer larger than this is not recon
NO_ANSWER = "unreachable: "


class ReconHTTPError(Exception):
    """One line: why a request got no HTTP answer."""


class _Stale(Exception):
    """A kept-alive connection the server had closed before the request was read."""


class Connection:
    """One kept-alive connection to ``host:port`` (opened on first use)."""

    def __init__(self, host: str, port: int, *, ssl_context=None, connect_timeout: float,
                 timeout: float):
        self.host, self.port = host, port
        self.ssl = ssl_context
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self.reader = self.writer = None
        self.host_header = (f"[{host}]" if ":" in host else host) + f":{port}"

    async def get(self, path: str) -> tuple[int, bytes]:
        reused = self.writer is not None
        if not reused:
            await self._connect()
        try:
            return await self._exchange(path, reused)
        except _Stale:
            self.close()
            await self._connect()
            return await self._exchange(path, False)

    async def _connect(self) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                self.reader, self.writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, limit=1 << 16,
                    server_hostname=self.host if self.ssl else None)
        except TimeoutError:
            raise ReconHTTPError(f"{NO_ANSWER}no connection within "
                                 f"{self.connect_timeout:g} s") from None
        except ConnectionRefusedError:
            raise ReconHTTPError(f"{NO_ANSWER}connection refused") from None
        except OSError as e:
            raise ReconHTTPError(NO_ANSWER + _os_reason(e)) from None

    async def _exchange(self, path: str, reused: bool) -> tuple[int, bytes]:
        request = (f"GET {path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
                   f"User-Agent: ringmgr\r\nAccept: application/json\r\n\r\n").encode()
        got_bytes = False
        try:
            async with asyncio.timeout(self.timeout):
                self.writer.write(request)
                await self.writer.drain()
                try:
                    head = await self.reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as e:
                    if reused and not e.partial:
                        raise _Stale() from None
                    raise ReconHTTPError("the server closed the connection mid-answer")
                got_bytes = True
                status, keep, body = await self._answer(head)
        except _Stale:
            raise
        except TimeoutError:
            self.close()
            raise ReconHTTPError(f"no answer within {self.timeout:g} s") from None
        except (ConnectionResetError, BrokenPipeError) as e:
            self.close()
            if reused and not got_bytes:
                raise _Stale() from None
            raise ReconHTTPError(f"connection lost: {_os_reason(e)}") from None
        except asyncio.LimitOverrunError:
            self.close()
            raise ReconHTTPError("bad HTTP answer: headers over 64 KiB") from None
        except ReconHTTPError:
            self.close()
            raise
        except OSError as e:
            self.close()
            raise ReconHTTPError(f"connection lost: {_os_reason(e)}") from None
        if not keep:
            self.close()
        return status, body

    async def _answer(self, head: bytes) -> tuple[int, bool, bytes]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ReconHTTPError(f"bad HTTP answer: {lines[0][:60]!r}")
        version, status = parts[0], int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        conn = headers.get("connection", "").lower()
        keep = (version == "HTTP/1.1" and "close" not in conn) or "keep-alive" in conn
        reader = self.reader
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                chunks, total = [], 0
                while True:
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while await reader.readuntil(b"\r\n") != b"\r\n":
                            pass    # trailers
                        break
                    total += size
                    if total > MAX_BODY:
                        raise ReconHTTPError("bad HTTP answer: body over 16 MiB")
                    chunks.append(await reader.readexactly(size))
                    await reader.readexactly(2)
                body = b"".join(chunks)
            elif "content-length" in headers:
                length = int(headers["content-length"])
                if length > MAX_BODY:
                    raise ReconHTTPError("bad HTTP answer: body over 16 MiB")
                body = await reader.readexactly(length)
            else:                   # the body runs to the end of the connection
                body = await reader.read(MAX_BODY)
                keep = False
        except ValueError:
            raise ReconHTTPError("bad HTTP answer: a broken length or chunk size") from None
        except asyncio.IncompleteReadError:
            raise ReconHTTPError("the server closed the connection mid-answer") from None
        return status, keep, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _os_reason(e: OSError) -> str:
    return (e.strerror or str(e) or type(e).__name__).lower()


def ssl_context(scheme: str):
    """None for http; for https the standard library's default (the system's CA
    store, host names and addresses checked)."""
    if scheme != "https":
        return None
    import ssl

    return ssl.create_default_context()
