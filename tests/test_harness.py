"""The test client and helpers themselves, against canned peers (no
ekilibri needed): a framing bug here would hide bugs in the proxy."""

from __future__ import annotations

import socket
import threading
import time
import tomllib

import pytest

import harness
from rawhttp import ConnectionClosed, HttpConnection, ProtocolError


class Canned:
    """Accepts one connection and, per request head received, sends the next
    canned reply; closes after the last if `close` is set."""

    def __init__(self, replies: list[bytes], close: bool = True):
        self.replies = replies
        self.close = close
        self.heads: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        conn, _ = self.sock.accept()
        buf = b""
        for reply in self.replies:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            self.heads.append(head)
            conn.sendall(reply)
        if self.close:
            conn.close()
        else:
            self.conn = conn

    def stop(self):
        self.sock.close()


@pytest.fixture
def canned():
    servers = []

    def make(replies, close=True):
        s = Canned(replies, close)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def test_reads_length_chunked_head_and_close_framed_responses(canned):
    s = canned(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Backend: c\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n1\r\nd\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        ]
    )
    with HttpConnection(s.addr) as c:
        r = c.get("/a")
        assert (r.status, r.body, r.framing, r.header("x-backend")) == (200, b"hello", "length", "c")
        r = c.get("/b")
        assert (r.body, r.framing, r.chunk_count, r.trailers) == (b"abcd", "chunked", 2, [("X-Trailer", "t")])
        r = c.get("/c")
        assert (r.status, r.body, r.framing) == (204, b"", "none")
        r = c.request("HEAD", "/d")
        assert (r.status, r.body, r.header("Content-Length")) == (200, b"", "99")
        r = c.request("GET", "/e", version="HTTP/1.0")
        assert (r.body, r.framing) == (b"until close", "close")
        assert c.wait_closed(1)
    assert s.heads[0] == f"GET /a HTTP/1.1\r\nHost: {s.addr}".encode()
    assert s.heads[4].startswith(b"GET /e HTTP/1.0\r\n")


@pytest.mark.parametrize(
    "reply, error",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", ConnectionClosed),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ProtocolError),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", ProtocolError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", ProtocolError),
        (b"garbage\r\n\r\n", ProtocolError),
        (b"", ConnectionClosed),
    ],
)
def test_rejects_badly_framed_responses(canned, reply, error):
    s = canned([reply])
    with HttpConnection(s.addr, timeout=2) as c:
        with pytest.raises(error):
            c.get("/")


def test_pending_sees_extra_bytes_and_keepalive(canned):
    s = canned([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"], close=False)
    with HttpConnection(s.addr) as c:
        assert c.get("/").body == b"ok"
        assert c.pending(0.2) == b"EXTRA"
        assert c.pending(0.1) == b""
        with pytest.raises(ProtocolError):
            s.conn.sendall(b"more")
            c.wait_closed(0.5)


def test_streamed_chunked_upload_reaches_a_recording_backend():
    rb = harness.RawBackend(name="rec")
    try:
        with HttpConnection(rb.addr) as c:
            r = c.request("POST", "/up", body=iter([b"a" * 5, b"", b"b" * 70000]), chunked=True)
            assert r.status == 200 and r.body == b"rec POST /up\n"
            r = c.request("POST", "/cl", body=iter([b"xy", b"z"]), content_length=3)
            assert r.status == 200
        assert rb.requests_for("/up")[0].body == b"a" * 5 + b"b" * 70000
        assert rb.requests_for("/cl")[0].body == b"xyz"
        assert rb.requests_for("/up")[0].header("Transfer-Encoding") == "chunked"
    finally:
        rb.stop()


def test_config_text_is_toml_with_every_key():
    cfg = tomllib.loads(harness.config_text(["127.0.0.1:1"], read_timeout=300, pool_size=None))
    assert cfg["servers"] == ["127.0.0.1:1"]
    assert cfg["listen"] == "127.0.0.1:0"
    assert cfg["read_timeout"] == 300
    assert "pool_size" not in cfg
    assert set(harness.DEFAULT_CONFIG) - {"pool_size"} <= set(cfg)


def test_dead_address_refuses_connections():
    host, port = harness.dead_address().rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2)


def test_weighted_servers_are_toml_inline_tables():
    cfg = tomllib.loads(
        harness.config_text([harness.server_entry(harness.weighted("127.0.0.1:1", 2)), "127.0.0.1:3"])
    )
    assert cfg["servers"] == [{"address": "127.0.0.1:1", "weight": 2}, "127.0.0.1:3"]


def test_raw_backend_hangs_answers_status_and_drops_as_told():
    status_for = {"/sick": 503}
    rb = harness.RawBackend(name="opt", hang_path="/slow", hang_seconds=0.5, status_for=status_for)
    dropper = harness.RawBackend(name="drop", drop_after_request="reset")
    try:
        with HttpConnection(rb.addr) as c:
            assert c.get("/sick").status == 503
            status_for.pop("/sick")
            assert c.get("/sick").status == 200
            t0 = time.monotonic()
            assert c.get("/slow").status == 200
            assert time.monotonic() - t0 >= 0.45
        with HttpConnection(dropper.addr) as c:
            c.send_request("POST", "/p", body=b"abc")
            with pytest.raises(ConnectionClosed):
                c.read_response()
        assert [r.body for r in dropper.requests_for("/p")] == [b"abc"]
    finally:
        rb.stop()
        dropper.stop()
