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
