"""recon_http's one-line errors and body handling, against raw socket servers that
answer what a broken or odd recon endpoint could send."""

from __future__ import annotations

import socket
import threading

import pytest

from ringmgr.live import recon_http
from ringmgr.live.recon_http import Connection, ReconHTTPError


class _Raw:
    """A loopback server that hands each connection to ``serve(sock)``."""

    def __init__(self, serve):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._loop, args=(serve,), daemon=True)
        self.thread.start()

    def _loop(self, serve):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with c:
                try:
                    serve(c)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def _request(c: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        got = c.recv(4096)
        if not got:
            break
        data += got
    return data


def _get(serve, path="/recon/time", times=1):
    srv = _Raw(serve)
    conn = Connection("127.0.0.1", srv.port, connect_timeout=1.0, timeout=1.0)
    try:
        return [conn.get(path) for _ in range(times)], srv
    finally:
        conn.close()
        srv.close()


def _error(serve) -> str:
    with pytest.raises(ReconHTTPError) as e:
        _get(serve)
    return str(e.value)


def test_the_request_names_host_port_and_json():
    seen = []

    def serve(c):
        seen.append(_request(c))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n42")

    (answer,), _ = _get(serve)
    assert answer == (200, b"42")
    head = seen[0].decode().lower()
    assert head.startswith("get /recon/time http/1.1\r\n")
    assert f"host: 127.0.0.1:" in head and "accept: application/json" in head


def test_an_http10_answer_without_length_runs_to_the_close():
    def serve(c):
        _request(c)
        c.sendall(b"HTTP/1.0 200 OK\r\n\r\n[1, 2, 3]")

    answers, srv = _get(serve, times=2)
    assert answers == [(200, b"[1, 2, 3]")] * 2
    assert srv.connections == 2     # not kept alive: a new connection for the second


def test_a_body_cut_short_is_one_line():
    def serve(c):
        _request(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":")

    assert _error(serve) == "the server closed the connection mid-answer"


def test_a_chunked_body_cut_short_is_one_line():
    def serve(c):
        _request(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":")

    assert _error(serve) == "the server closed the connection mid-answer"


def test_no_answer_at_all_is_one_line():
    def serve(c):
        _request(c)

    assert _error(serve) == "the server closed the connection without an answer"


def test_not_http_is_one_line():
    def serve(c):
        _request(c)
        c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    assert _error(serve) == "bad HTTP answer: 'SSH-2.0-OpenSSH_9.6'"


def test_bodies_over_the_cap_are_refused(monkeypatch):
    monkeypatch.setattr(recon_http, "MAX_BODY", 10)
    for head in (b"Content-Length: 11\r\n", b"Transfer-Encoding: chunked\r\n", b""):
        def serve(c, head=head):
            _request(c)
            body = b"[" + b"1," * 10 + b"1]"
            if b"chunked" in head:
                body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            elif head:
                body = body[:11]
            c.sendall(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n" + body)

        assert _error(serve) == "bad HTTP answer: body over 16 MiB", head


def test_a_refused_connection_is_unreachable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conn = Connection("127.0.0.1", port, connect_timeout=1.0, timeout=1.0)
    with pytest.raises(ReconHTTPError, match="^unreachable: connection refused$"):
        conn.get("/recon/time")
