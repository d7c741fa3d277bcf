"""Limits: request line, header section size and count, header read timeout,
keep-alive idle timeout, max_connections."""

from __future__ import annotations

import select
import socket
import time

from rfc9112_support import assert_rejected, backend_requests, connect, start

KIB = 1024


def test_long_request_line_under_8k_is_forwarded_exactly(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    target = "/" + "a" * (8 * KIB - len("GET / HTTP/1.1") - 10)
    with connect(lb) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == 200, r
    assert [x.target for x in backend_requests(sb)] == [target]


def test_request_line_over_8k_gets_414(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    raw = b"GET /" + b"a" * (8 * KIB + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert_rejected(lb, sb, raw, (414,))


def test_request_line_over_8k_without_end_gets_414(scripted_backend_factory, ekilibri_factory):
    """The 414 comes as soon as 8 KiB arrived without a line end."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    assert_rejected(lb, sb, b"GET /" + b"a" * (9 * KIB), (414,))


def fields(n: int, value_len: int) -> bytes:
    return b"".join(b"X-F%d: %s\r\n" % (i, b"v" * value_len) for i in range(n))


def test_header_section_under_32k_is_forwarded(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    block = fields(30, 1000)  # ~30.3 KiB
    with connect(lb) as c:
        c.send(b"GET /big HTTP/1.1\r\nHost: x\r\n" + block + b"\r\n")
        r = c.read_response()
        assert r.status == 200, r
    got = backend_requests(sb)
    assert len(got) == 1 and len(got[0].headers) >= 31
    assert all(got[0].header(f"X-F{i}") == "v" * 1000 for i in range(30))


def test_header_section_over_32k_gets_431(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    assert_rejected(lb, sb, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields(34, 1000) + b"\r\n", (431,))


def test_endless_header_section_gets_431(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    assert_rejected(lb, sb, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields(70, 1000), (431,))


def test_100_fields_are_accepted(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    with connect(lb) as c:
        c.send(b"GET /100 HTTP/1.1\r\nHost: x\r\n" + fields(99, 4) + b"\r\n")
        r = c.read_response()
        assert r.status == 200, r
    assert len(backend_requests(sb)) == 1


def test_101_fields_get_431(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    assert_rejected(lb, sb, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields(100, 4) + b"\r\n", (431,))


def test_head_request_that_times_out_gets_408_without_a_body(scripted_backend_factory, ekilibri_factory):
    """The 408 answering an unfinished HEAD request is a head alone, as
    every answer to HEAD is (RFC 9110 §9.3.2)."""
    lb, _ = start(scripted_backend_factory, ekilibri_factory, client_header_timeout=300)
    with socket.create_connection((lb.host, lb.port), timeout=5) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n")
        got = b""
        while piece := s.recv(65536):
            got += piece
    assert got.startswith(b"HTTP/1.1 408 ") and got.endswith(b"\r\n\r\n"), got


def test_trickled_head_gets_408_after_client_header_timeout(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory, client_header_timeout=500)
    raw = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100 + b"\r\n\r\n"
    s = socket.create_connection((lb.host, lb.port), timeout=5)
    try:
        start_t = time.monotonic()
        got = b""
        for b in raw:
            if time.monotonic() - start_t > 3.0:
                break
            try:
                s.sendall(bytes([b]))
            except OSError:
                break
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                got = s.recv(65536)
                break
        elapsed = time.monotonic() - start_t
        assert got.startswith(b"HTTP/1.1 408 "), f"after {elapsed:.2f} s: {got!r}"
        assert 0.4 <= elapsed <= 1.5, f"408 after {elapsed:.2f} s with client_header_timeout = 500 ms"
        assert b"connection: close" in got.lower(), got
        s.settimeout(3)
        rest = got
        while True:
            try:
                piece = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                piece = b""
            if not piece:
                break
            rest += piece
        assert rest.count(b"HTTP/1.1") == 1, rest
    finally:
        s.close()
    assert backend_requests(sb) == []


def test_idle_keepalive_connection_is_closed_after_keepalive_timeout(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory, keepalive_timeout=500)
    with connect(lb) as c:
        for _ in range(3):  # activity keeps it open
            c.send(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.read_response().status == 200
            time.sleep(0.3)
        t0 = time.monotonic()
        assert c.wait_closed(2.5), "idle connection not closed within 2.5 s (keepalive_timeout = 500 ms)"
        assert time.monotonic() - t0 <= 1.0
    with connect(lb) as c:  # never sent anything
        t0 = time.monotonic()
        assert c.wait_closed(2.5), "silent connection not closed"
        assert 0.3 <= time.monotonic() - t0 <= 1.5


def test_max_connections_stops_accepting_until_below(scripted_backend_factory, ekilibri_factory):
    limit = 5
    lb, sb = start(scripted_backend_factory, ekilibri_factory, max_connections=limit)
    first = [connect(lb, timeout=3) for _ in range(limit)]
    for i, c in enumerate(first):
        c.send(b"GET /first%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        assert c.read_response().status == 200
    extra = [connect(lb, timeout=3) for _ in range(5)]  # the kernel completes these handshakes
    for i, c in enumerate(extra):
        c.send(b"GET /extra%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
    time.sleep(0.3)
    for i, c in enumerate(extra):
        assert c.pending(0.05) == b"", f"extra connection {i} was served above max_connections = {limit}"
    # The operator is told why clients wait (nginx: "worker_connections are
    # not enough"), once, not once per waiting client.
    warned = lb.log().count(f"max_connections ({limit}) clients open")
    assert warned == 1, lb.log_tail()
    for c in first:  # still served while at the limit
        c.send(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
    for c in first:
        c.close()
    for i, c in enumerate(extra):
        r = c.read_response()
        assert r.status == 200 and r.body == b"origin GET /extra%d 0\n" % i, r
        c.close()
    assert lb.alive()
    with connect(lb) as c:
        c.send(b"GET /end HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200


def test_stalled_request_body_is_timed_out(scripted_backend_factory, ekilibri_factory):
    """A client that sends a head announcing 10 body bytes, 3 of them, and
    then nothing, must not hold a client and a backend connection forever:
    with every timeout at 500 ms the connection is answered (408/400/504) or
    closed within 3 s."""
    lb, sb = start(
        scripted_backend_factory,
        ekilibri_factory,
        client_header_timeout=500,
        keepalive_timeout=500,
        read_timeout=500,
        write_timeout=500,
    )
    with connect(lb) as c:
        c.send(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        t0 = time.monotonic()
        got = b""
        while time.monotonic() - t0 < 3.0:
            piece = c.pending(0.1)
            if piece is None:
                break
            got += piece
        else:
            raise AssertionError(
                f"connection with a stalled request body still open after 3 s (got {got!r}); "
                f"the backend holds {sb.raw_by_conn()!r}"
            )
    assert got == b"" or got.split(b" ")[1] in (b"408", b"400", b"504"), got
