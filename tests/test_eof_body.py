"""A backend that sends a whole response and closes while the client is
still reading slowly: the tail of the body may be buffered in the proxy
when the backend's EOF arrives, and must still reach the client.

The fuzzer's `response` target found that `BodyRelay::on_eof` dropped that
tail (close-delimited) or called the body truncated (Content-Length,
chunked); the deterministic regression tests are in src/http/body.rs and
src/http/harness/tests.rs. Whether this end-to-end test hits the same
moment depends on kernel buffering, so it checks the outcome only."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

SIZE = 2 << 20
PATTERN = bytes(range(256)) * (SIZE // 256)


class ClosingBackend:
    """Answers `/len` with a Content-Length body and `/eof` with a
    close-delimited one, closing the connection right after either; any
    other target (health probes) gets a small keep-alive-less 200."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.sent = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        # Room for the whole body on the backend's side: it writes it all
        # and closes before the client has read much of it.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        with conn:
            conn.settimeout(10)
            buf = b""
            try:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                target = buf.split(b" ", 2)[1]
                if target == b"/len":
                    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % SIZE
                elif target in (b"/eof", b"/rst"):
                    head = b"HTTP/1.0 200 OK\r\n\r\n"
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    return
                conn.sendall(head + PATTERN)
                if target == b"/rst":
                    # An abortive close: a reset, and whatever the kernel
                    # had not sent yet is dropped.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.sent.set()
            except OSError:
                return

    def stop(self):
        self._stop.set()
        self.sock.close()


def slow_recv(sock: socket.socket) -> bytes:
    """A reader slower than the backend: the proxy's buffers stay full."""
    time.sleep(0.0005)
    return sock.recv(2048)


def read_exactly(sock: socket.socket, buf: bytearray, n: int) -> None:
    while len(buf) < n:
        data = slow_recv(sock)
        if not data:
            raise AssertionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += data


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        pos = end + 2
        if size == 0:
            assert data[pos:pos + 2] == b"\r\n"
            return bytes(out)
        out += data[pos:pos + size]
        assert data[pos + size:pos + size + 2] == b"\r\n"
        pos += size + 2


@pytest.mark.parametrize("target", ["/len", "/eof"])
def test_body_tail_buffered_at_backend_eof_reaches_a_slow_client(ekilibri_factory, target):
    backend = ClosingBackend()
    try:
        lb = ekilibri_factory([backend])
        host, port = lb.host, lb.port
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive window keeps the proxy's client buffer full.
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.settimeout(20)
        c.connect((host, port))
        c.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        # The backend has written everything and closed before the client
        # reads: the proxy sees its EOF with the body's tail still queued.
        assert backend.sent.wait(10)
        time.sleep(0.3)
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            data = c.recv(65536)
            assert data, "no response"
            buf += data
        head_end = buf.index(b"\r\n\r\n") + 4
        head = bytes(buf[:head_end]).lower()
        assert head.startswith(b"http/1.1 200")
        if target == "/len":
            read_exactly(c, buf, head_end + SIZE)
            body = bytes(buf[head_end:head_end + SIZE])
        else:
            assert b"transfer-encoding: chunked" in head
            while not buf.endswith(b"\r\n0\r\n\r\n"):
                data = slow_recv(c)
                assert data, f"connection closed after {len(buf) - head_end} body bytes"
                buf += data
            body = dechunk(bytes(buf[head_end:]))
        assert len(body) == SIZE
        assert body == PATTERN
        c.close()
    finally:
        backend.stop()


def test_a_reset_after_a_close_delimited_body_is_not_passed_off_as_its_end(ekilibri_factory):
    """RFC 9112 §8: a message cut by the connection's end must not look
    complete. A close-delimited body ends with the backend's orderly close;
    a reset ends nothing (and the backend's kernel dropped what it had not
    sent). The client must not get the last chunk that says "complete"."""
    backend = ClosingBackend()
    try:
        lb = ekilibri_factory([backend])
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.settimeout(20)
        c.connect((lb.host, lb.port))
        c.sendall(b"GET /rst HTTP/1.1\r\nHost: x\r\n\r\n")
        # The reset arrives while the proxy still holds body bytes.
        assert backend.sent.wait(10)
        time.sleep(0.3)
        buf = bytearray()
        while True:
            try:
                data = c.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            buf += data
        c.close()
        head_end = buf.index(b"\r\n\r\n") + 4
        assert bytes(buf[:head_end]).lower().startswith(b"http/1.1 200")
        assert not buf.endswith(b"\r\n0\r\n\r\n"), "a reset was relayed as the end of the body"
        # What did arrive is the body's beginning, intact.
        body = dechunk(bytes(buf[head_end:]) + b"0\r\n\r\n") if buf.endswith(b"\r\n") else None
        if body is not None:
            assert PATTERN.startswith(body)
    finally:
        backend.stop()


def test_a_cut_body_reaches_an_http10_client_as_a_reset_not_an_end(scripted_backend_factory, ekilibri_factory):
    """An HTTP/1.0 client reads a body until the connection closes: if the
    backend's chunked body is cut, an orderly close would make the part that
    arrived look complete (RFC 9112 §8). The client must see a reset; an
    HTTP/1.1 client sees the missing last chunk and a close."""

    def script(bc):
        if bc.read_head() is not None:
            bc.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello")

    sb = scripted_backend_factory("cut", script)
    lb = ekilibri_factory([sb], health_check_interval=3_600_000)
    for version, reset in ((b"HTTP/1.0", True), (b"HTTP/1.1", False)):
        with socket.create_connection((lb.host, lb.port), timeout=5) as c:
            c.sendall(b"GET /cut " + version + b"\r\nHost: x\r\n\r\n")
            got, was_reset = b"", False
            while True:
                try:
                    data = c.recv(65536)
                except ConnectionResetError:
                    was_reset = True
                    break
                if not data:
                    break
                got += data
            assert was_reset == reset, (version, got)
            assert not got.endswith(b"0\r\n\r\n"), got


def test_a_cut_body_to_an_http10_client_that_stopped_reading_still_ends_in_a_reset(scripted_backend_factory, ekilibri_factory):
    """The same cut, with a client that stops reading: the connection is
    closed by its send timeout (keepalive_timeout), and that close must be
    a reset too, not a FIN after what the kernel still holds."""

    def script(bc):
        if bc.read_head() is not None:
            bc.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % 4_000_000 + b"x" * 3_000_000)

    sb = scripted_backend_factory("cut", script)
    lb = ekilibri_factory([sb], health_check_interval=3_600_000, keepalive_timeout=500)
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.settimeout(5)
    c.connect((lb.host, lb.port))
    c.sendall(b"GET /cut HTTP/1.0\r\n\r\n")
    time.sleep(2.5)  # past the send timeout (and its one retry)
    was_reset = False
    try:
        while c.recv(65536):
            pass
    except ConnectionResetError:
        was_reset = True
    c.close()
    assert was_reset
