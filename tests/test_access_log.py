"""Access log: one line per request in each format."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from rawhttp import request_once


def read_lines(path, n: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= n:
                return lines
        time.sleep(0.02)
    raise AssertionError(f"expected {n} lines in {path}: {path.read_text() if path.exists() else 'missing'}")


@pytest.mark.parametrize("fmt", ["common", "combined", "json"])
def test_one_line_per_request(fmt, backend_factory, ekilibri_factory, tmp_path):
    (b1,) = backend_factory(1)
    log = tmp_path / f"access-{fmt}.log"
    lb = ekilibri_factory([b1], access_log=str(log), access_log_format=fmt)
    assert request_once(lb.addr, "GET", "/bytes/123?x=1", headers=[("User-Agent", "ua/1")]).status == 200
    assert request_once(lb.addr, "POST", "/echo", body=b"hello").status == 200
    assert request_once(lb.addr, "GET", "/missing").status == 404
    lines = read_lines(log, 3)
    assert len(lines) == 3
    if fmt == "json":
        recs = [json.loads(line) for line in lines]
        assert [r["status"] for r in recs] == [200, 200, 404]
        assert recs[0]["method"] == "GET" and recs[0]["target"] == "/bytes/123?x=1"
        assert recs[0]["bytes"] == 123 and recs[0]["backend"] == b1.addr
        assert recs[0]["client"] == "127.0.0.1"
    else:
        first = lines[0]
        assert first.startswith("127.0.0.1 - - [")
        assert '"GET /bytes/123?x=1 HTTP/1.1" 200 123' in first
        assert f"backend={b1.addr}" in first and "upstream_time=" in first and "total_time=" in first
        assert ('"ua/1"' in first) == (fmt == "combined")
        assert re.search(r'"POST /echo HTTP/1.1" 200 5', lines[1])
        assert '" 404 ' in lines[2]


def test_response_cut_off_by_the_backend_is_logged_as_status_0(scripted_backend_factory, ekilibri_factory, tmp_path):
    """The client got the head and 50 of 100 body bytes, then a close: the
    line must not read as a complete 200 (status 0, bytes 50)."""

    def script(bc):
        if bc.read_head() is not None:
            bc.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 50)

    sb = scripted_backend_factory("cut", script)
    log = tmp_path / "access.log"
    lb = ekilibri_factory([sb], access_log=str(log), access_log_format="json", health_check_interval=3_600_000)
    with socket.create_connection((lb.host, lb.port), timeout=5) as c:
        c.sendall(b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while True:
            data = c.recv(65536)
            if not data:
                break
            got += data
    assert got.endswith(b"\r\n\r\n" + b"x" * 50), got
    (line,) = read_lines(log, 1)
    rec = json.loads(line)
    assert (rec["status"], rec["bytes"]) == (0, 50), rec


def test_answers_given_without_a_backend_are_logged(backend_factory, ekilibri_factory, tmp_path):
    """As nginx does, every request gets a line, including the ones
    ekilibri answers itself: refused requests and last-hop TRACE/OPTIONS.
    Their `backend` is null."""
    (b1,) = backend_factory(1)
    log = tmp_path / "access.log"
    lb = ekilibri_factory([b1], access_log=str(log), access_log_format="json")
    sent = [
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "GET", "/", "-"),
        (b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400, None, None, None),
        (b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", 431, "GET", "/big", "HTTP/1.1"),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n\r\n", 200, "OPTIONS", "*", "HTTP/1.1"),
    ]
    for raw, status, *_ in sent:
        with socket.create_connection((lb.host, lb.port), timeout=5) as c:
            c.sendall(raw)
            assert c.recv(65536).startswith(b"HTTP/1.1 %d " % status)
    recs = [json.loads(line) for line in read_lines(log, len(sent))]
    for rec, (_, status, method, target, version) in zip(recs, sent):
        assert rec["status"] == status and rec["backend"] is None and rec["bytes"] == 0, rec
        if method is not None:
            assert (rec["method"], rec["target"], rec["version"]) == (method, target, version), rec
    assert request_once(lb.addr, "GET", "/").status == 200  # still serving


def _reset(c: socket.socket) -> None:
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()


def test_a_client_that_leaves_is_logged(backend_factory, ekilibri_factory, tmp_path):
    """A client that resets its connection while its request waits for the
    backend is logged as nginx's 499; one that leaves in the middle of a
    body, with the response's status and the bytes relayed so far."""
    (b1,) = backend_factory(1)
    log = tmp_path / "access.log"
    lb = ekilibri_factory([b1], access_log=str(log), access_log_format="json")
    c = socket.create_connection((lb.host, lb.port), timeout=5)
    c.sendall(b"GET /sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    _reset(c)
    (line,) = read_lines(log, 1)
    rec = json.loads(line)
    assert (rec["status"], rec["bytes"], rec["target"]) == (499, 0, "/sleep?ms=300"), rec
    size = 50_000_000
    c = socket.create_connection((lb.host, lb.port), timeout=5)
    c.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
    got = 0
    while got < 1_000_000:
        got += len(c.recv(65536))
    _reset(c)
    rec = json.loads(read_lines(log, 2)[1])
    assert rec["status"] == 200 and 0 < rec["bytes"] < size, rec
    assert request_once(lb.addr, "GET", "/").status == 200


def test_lines_of_partial_heads_slow_heads_and_tunnels(scripted_backend_factory, ekilibri_factory, tmp_path):
    """A head the client cuts short is a 400 (as nginx logs it); an answer
    given here times the head from its first byte; a tunnel the client ends
    is logged as 101, with the bytes it relayed to the client."""

    def script(bc):
        if bc.read_head() is not None:
            bc.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello")
            bc.recv_some(3.0)

    sb = scripted_backend_factory("ws", script)
    log = tmp_path / "access.log"
    lb = ekilibri_factory([sb], access_log=str(log), access_log_format="json", health_check_interval=3_600_000)
    c = socket.create_connection((lb.host, lb.port), timeout=5)
    c.sendall(b"GET /partial HTTP/1.1\r\nHos")
    time.sleep(0.1)
    _reset(c)
    rec = json.loads(read_lines(log, 1)[0])
    assert (rec["status"], rec["target"], rec["backend"]) == (400, "/partial", None), rec
    with socket.create_connection((lb.host, lb.port), timeout=5) as c:
        c.sendall(b"OPTIONS * HTTP/1.1\r\n")
        time.sleep(0.3)
        c.sendall(b"Host: x\r\nMax-Forwards: 0\r\n\r\n")
        assert c.recv(65536).startswith(b"HTTP/1.1 200 ")
    rec = json.loads(read_lines(log, 2)[1])
    assert rec["status"] == 200 and rec["total_time"] >= 0.25, rec
    with socket.create_connection((lb.host, lb.port), timeout=5) as c:
        c.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        got = b""
        while not got.endswith(b"hello"):
            got += c.recv(65536)
        assert got.startswith(b"HTTP/1.1 101 "), got
    rec = json.loads(read_lines(log, 3)[2])
    assert (rec["status"], rec["target"], rec["bytes"]) == (101, "/ws", 5), rec
