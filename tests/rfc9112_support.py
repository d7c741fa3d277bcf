"""Shared helpers of the tests/test_rfc9112_*.py files.

Requests go to ekilibri as raw bytes over a socket (never through a client
library that would normalise them); the backend is a harness.ScriptedBackend
that records the exact bytes it received, so each test checks both sides.
"""

from __future__ import annotations

import time
from typing import Iterable

import harness
import wire
from rawhttp import ConnectionClosed, HttpConnection, ProtocolError, Response

# Probes would add requests to what the recording backend sees: push the
# first one an hour away. Failures never take the only backend out.
LB = dict(health_check_interval=3_600_000, max_fails=1000, read_timeout=2000)

SYNC_TARGET = "/__sync"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def start(scripted_backend_factory, ekilibri_factory, script=None, name="origin", **config):
    """One scripted backend behind one ekilibri; returns (lb, backend)."""
    sb = scripted_backend_factory(name, script)
    lb = ekilibri_factory([sb], **{**LB, **config})
    return lb, sb


def connect(lb, timeout: float = 5.0) -> HttpConnection:
    return HttpConnection(lb.addr, timeout=timeout)


def sync(lb) -> None:
    """A plain request through the proxy, answered before we look at what
    the backend got: whatever an earlier request made ekilibri forward has
    reached the backend by then (one event loop, one backend)."""
    with connect(lb) as c:
        c.send(f"GET {SYNC_TARGET} HTTP/1.1\r\nHost: sync\r\nConnection: close\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == 200, f"ekilibri no longer serves after the test request: {r!r}"
    time.sleep(0.05)


def backend_requests(sb, include_sync: bool = False) -> list[wire.Request]:
    """Every request the backend received, checked to be well framed: each
    connection's bytes must cut into complete, valid requests, nothing more.
    A connection that carried something else fails the test here."""
    out = []
    for i, raw in enumerate(sb.raw_by_conn()):
        split = wire.split_requests(raw)
        assert not split.rest, (
            f"backend connection {i + 1} received bytes that are not a well-framed request "
            f"({split.error}): {split.rest[:400]!r}\nall bytes of that connection: {raw[:1500]!r}"
        )
        out += [r for r in split.requests if include_sync or r.target != SYNC_TARGET]
    return out


def assert_forwarded_at_most(sb, n: int) -> list[wire.Request]:
    reqs = backend_requests(sb)
    assert len(reqs) <= n, f"backend received {len(reqs)} requests, at most {n} allowed: {reqs!r}"
    assert not any(r.target == "/smuggled" for r in reqs), f"a smuggled request reached the backend: {reqs!r}"
    return reqs


def assert_rejected(lb, sb, raw: bytes, statuses: Iterable[int], close: bool = True) -> Response:
    """Sends `raw` on a fresh connection; the answer must be one complete
    response with a status in `statuses`, then (with `close`) the connection
    must close with nothing more sent; the backend must get nothing."""
    statuses = tuple(statuses)
    with connect(lb) as c:
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: the response is what counts
        try:
            r = c.read_response()
        except ConnectionClosed as e:
            raise AssertionError(f"no response to {raw[:200]!r}: {e}") from None
        shown = "/".join(map(str, statuses)) if len(statuses) < 6 else f"{statuses[0]}..{statuses[-1]}"
        assert r.status in statuses, f"expected {shown} for {raw[:300]!r}, got {r!r}"
        if close:
            assert r.has_token("connection", "close"), f"rejection without Connection: close: {r!r}"
            assert c.wait_closed(3.0), f"connection still open 3 s after the {r.status} for {raw[:200]!r}"
    sync(lb)
    reqs = backend_requests(sb)
    assert reqs == [], f"{raw[:200]!r} was rejected with {r.status} but the backend received {reqs!r}"
    return r


def expect_bad_gateway(c: HttpConnection, method: str = "GET") -> str:
    """After an invalid backend reply the client gets a complete 502, or,
    if part of the response had been sent already, the connection closes
    before the response is complete. Returns "502" or "closed"."""
    try:
        r = c.read_response(method)
    except ConnectionClosed:
        return "closed"
    except ProtocolError as e:
        raise AssertionError(f"the client got a badly framed response: {e}") from None
    assert r.status == 502, f"an invalid backend reply reached the client as a complete response: {r!r}"
    return "502"


def read_all(c: HttpConnection, timeout: float = 3.0) -> bytes:
    """Every byte until the peer closes (or `timeout`)."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = c.pending(0.1)
        if got is None:
            break
        out += got
    return bytes(out)


def header_names(headers) -> set[str]:
    return {k.lower() for k, _ in headers}


def get(path: str = "/", host: str = "x", extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return f"GET {path} {version}\r\nHost: {host}\r\n{extra}\r\n".encode("latin-1")


def post(head_fields: str, body: bytes, path: str = "/p") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n{head_fields}\r\n".encode("latin-1") + body


def reply_then_serve(reply: bytes):
    """Backend script: the first request on the first connection gets
    `reply`; everything else is served normally (reuse is allowed)."""

    def script(bc):
        if bc.index == 1:
            if bc.read_request() is None:
                return
            bc.send(reply)
        harness.serve_default(bc)

    return script
