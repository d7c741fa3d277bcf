"""Error responses: 502 when no backend answers, 504 on timeouts, and
backends leaving and rejoining the rotation."""

from __future__ import annotations

import time

import pytest

import harness
from rawhttp import HttpConnection, request_once


def assert_complete_error(resp, status, what):
    assert resp.status == status, f"{what}: expected {status}, got {resp!r}"
    cl = resp.header("Content-Length")
    assert cl is not None, f"{what}: {status} without Content-Length: {resp!r}"
    assert resp.framing == "length" and int(cl) == len(resp.body), f"{what}: {resp!r}"


def test_every_backend_down_gives_complete_502(ekilibri_factory):
    lb = ekilibri_factory([harness.dead_address(), harness.dead_address()])
    for attempt in range(3):
        t0 = time.monotonic()
        r = request_once(lb.addr, "GET", "/")
        assert_complete_error(r, 502, f"fresh connection {attempt + 1}")
        assert time.monotonic() - t0 < 3, "a refused backend should fail fast"
    with HttpConnection(lb.addr) as c:
        r = c.get("/")
        assert_complete_error(r, 502, "keep-alive request 1")
        if not r.has_token("Connection", "close"):
            assert_complete_error(c.get("/"), 502, "keep-alive request 2 on the same connection")


def test_killed_backend_gives_502(backend_factory, ekilibri_factory):
    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1])
    with HttpConnection(lb.addr) as c:
        assert c.get("/").status == 200  # leaves an idle pooled connection to b1, probably
    b1.kill()
    for attempt in range(2):
        assert_complete_error(request_once(lb.addr, "GET", "/"), 502, f"after the backend died, attempt {attempt + 1}")


def test_read_timeout_gives_504(backend_factory, ekilibri_factory):
    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1], read_timeout=300)
    t0 = time.monotonic()
    r = request_once(lb.addr, "GET", "/sleep?ms=2000")
    elapsed = time.monotonic() - t0
    assert_complete_error(r, 504, "GET /sleep?ms=2000 with read_timeout 300")
    assert 0.25 <= elapsed < 1.5, f"504 after {elapsed:.2f} s with read_timeout 300 ms"
    # The proxy, and the backend, still serve fast requests.
    r = request_once(lb.addr, "GET", "/")
    assert r.status == 200 and r.body == b"Hello from b1\n", r


def test_connect_timeout_gives_504(raw_backend_factory, ekilibri_factory):
    # A backend that answers at first (so it is in rotation and healthy),
    # then stops accepting with a full accept queue: SYNs are dropped.
    # It says Connection: close, so no pooled connection spares the connect.
    rb = raw_backend_factory("stalling", announce_close=True, backlog=0)
    lb = ekilibri_factory([rb], connection_timeout=500, health_check_interval=60_000, max_fails=100)
    r = request_once(lb.addr, "GET", "/first")
    assert r.status == 200, r
    if not rb.blackhole():
        pytest.skip("this kernel does not drop SYNs on a full accept queue")
    t0 = time.monotonic()
    r = request_once(lb.addr, "GET", "/second")
    elapsed = time.monotonic() - t0
    assert_complete_error(r, 504, "GET with the backend not accepting, connection_timeout 500")
    assert 0.4 <= elapsed < 3, f"504 after {elapsed:.2f} s with connection_timeout 500 ms"


def wait_for_steady_200s(lb, names, consecutive=10, timeout=5.0):
    """Sends requests until `consecutive` in a row are 200s from `names`.
    Until then a request may fail, but only with a complete 502."""
    deadline = time.monotonic() + timeout
    streak = 0
    history = []
    while streak < consecutive:
        assert time.monotonic() < deadline, f"no {consecutive} good requests in a row within {timeout} s: {history}"
        r = request_once(lb.addr, "GET", "/")
        history.append((r.status, r.header("X-Backend")))
        if r.status == 200 and r.header("X-Backend") in names:
            streak += 1
        else:
            assert_complete_error(r, 502, f"request {len(history)} while a backend is down")
            streak = 0
            time.sleep(0.05)


def test_dead_backend_is_taken_out_of_rotation(backend_factory, ekilibri_factory):
    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1, harness.dead_address(), b2], max_fails=1, health_check_interval=200)
    # While the proxy finds out, a request may fail with a 502; then none does.
    wait_for_steady_200s(lb, {"b1", "b2"})
    seen = set()
    for i in range(30):
        r = request_once(lb.addr, "GET", "/")
        assert r.status == 200, f"request {i + 1} after the dead backend should be out of rotation: {r!r}"
        seen.add(r.header("X-Backend"))
    assert seen == {"b1", "b2"}


def test_backend_back_up_rejoins_rotation(backend_factory, ekilibri_factory):
    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1, b2], max_fails=1, fail_window=1, health_check_interval=200)
    addr2 = b2.addr
    b2.kill()
    wait_for_steady_200s(lb, {"b1"})
    backend_factory.start("b2", listen=addr2)
    deadline = time.monotonic() + 5
    seen = set()
    while time.monotonic() < deadline and "b2" not in seen:
        r = request_once(lb.addr, "GET", "/")
        assert r.status == 200, r
        seen.add(r.header("X-Backend"))
        time.sleep(0.05)
    assert "b2" in seen, "b2 came back on its address but got no request within 5 s"


def _http_date_near_now(value: str | None, what: str) -> None:
    from email.utils import parsedate_to_datetime
    import datetime

    assert value is not None, f"{what}: no Date"
    assert value.endswith(" GMT") and len(value) == 29, f"{what}: not an IMF-fixdate: {value!r}"
    when = parsedate_to_datetime(value)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) < 5, f"{what}: Date {value!r} is not now ({now})"


def test_responses_carry_date_backend_ones_and_the_proxys_own(scripted_backend_factory, ekilibri_factory):
    """RFC 9110 §6.6.1: a response forwarded without a Date gets one from
    the recipient with a clock; the proxy's own answers carry one too. A
    backend's Date is kept as it is."""
    sb = scripted_backend_factory("nodate")  # answers without Date
    lb = ekilibri_factory([sb])
    r = request_once(lb.addr, "GET", "/")
    assert r.status == 200
    assert len(r.header_all("Date")) == 1, r
    _http_date_near_now(r.header("Date"), "forwarded 200")

    def dated(bc):
        while bc.read_request(timeout=30) is not None:
            bc.send(b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n")

    lb2 = ekilibri_factory([scripted_backend_factory("dated", dated)])
    r = request_once(lb2.addr, "GET", "/")
    assert r.header_all("Date") == ["Sun, 06 Nov 1994 08:49:37 GMT"], r
    down = ekilibri_factory([harness.dead_address()])
    r = request_once(down.addr, "GET", "/")
    assert r.status == 502
    _http_date_near_now(r.header("Date"), "the proxy's 502")


def test_http10_keepalive_client_is_told_an_error_keeps_the_connection(ekilibri_factory):
    """An HTTP/1.0 client that asked for keep-alive takes a response without
    `Connection: keep-alive` as the last one, and waits for the close: a 502
    on a connection that stays open must say so (nginx does)."""
    import socket

    lb = ekilibri_factory([harness.dead_address()])
    with socket.create_connection((lb.host, lb.port), timeout=5) as s:
        for attempt in range(2):
            s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                assert chunk, f"closed before response {attempt + 1}"
                head += chunk
            text, _, body = head.partition(b"\r\n\r\n")
            lines = text.decode().split("\r\n")
            assert lines[0].startswith("HTTP/1.1 502 "), lines
            fields = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
            assert fields.get("connection", "").lower() == "keep-alive", lines
            length = int(fields["content-length"])
            while len(body) < length:
                body += s.recv(4096)


@pytest.mark.parametrize("failure", ["garbage", "down"])
def test_proxys_own_error_to_head_has_no_body(scripted_backend_factory, ekilibri_factory, failure):
    """A response to HEAD ends at its blank line (RFC 9112 §6.3): the proxy's
    own 502 must not carry its text body, or a client reads that body as
    the start of the next response on the connection."""

    def garbage(bc):
        while (req := bc.read_request(timeout=30)) is not None:
            if req.target == "/bad":
                bc.send(b"XXXX\r\n\r\n")
                bc.close()
                return
            bc.send(harness.ok_response(b"ok"))

    if failure == "garbage":
        lb = ekilibri_factory([scripted_backend_factory("garbage", garbage)], retries=0)
    else:
        lb = ekilibri_factory([harness.dead_address()])
    with HttpConnection(lb.addr) as c:
        c.send(b"HEAD /bad HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        first = c.read_response(method="HEAD")
        assert first.status == 502 and first.body == b"", first
        assert not first.has_token("Connection", "close"), first
        second = c.read_response()
    assert second.status == (200 if failure == "garbage" else 502), second
    assert second.body == (b"ok" if failure == "garbage" else b"Bad Gateway\n"), second
