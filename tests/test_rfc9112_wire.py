"""Self-tests of the strict request checker (wire.py) and of the scripted
backend's exact recording, which the test_rfc9112_* files rely on."""

from __future__ import annotations

import socket

import pytest

import wire
from harness import ScriptedBackend


def test_split_accepts_well_framed_requests():
    data = (
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nxyz\r\n0\r\nT: 1\r\n\r\n"
    )
    split = wire.split_requests(data)
    assert split.rest == b"" and [r.body for r in split.requests] == [b"", b"abc", b"xyz"]
    assert split.requests[2].trailers == [("T", "1")] and split.requests[2].chunk_exts == [b"e=1"]
    assert b"".join(r.raw for r in split.requests) == data


@pytest.mark.parametrize(
    "data",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\na\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n",  # incomplete
    ],
)
def test_split_flags_anything_else(data):
    split = wire.split_requests(data)
    assert split.requests == [] and split.rest == data and split.error


def test_scripted_backend_records_exact_bytes():
    sb = ScriptedBackend("self-test")
    try:
        host, port = sb.addr.rsplit(":", 1)
        raw = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;ext\r\nhi\r\n0\r\n\r\n"
        with socket.create_connection((host, int(port)), timeout=3) as s:
            s.sendall(raw[:10])
            s.sendall(raw[10:])
            got = s.recv(1000)
        assert got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"self-test POST /x 2\n"), got
        assert sb.wait_conns(1)
        sb.conns[0].finished.wait(3)
        assert sb.raw_by_conn() == [raw]
        assert [r.body for r in sb.requests()] == [b"hi"]
    finally:
        sb.stop()
