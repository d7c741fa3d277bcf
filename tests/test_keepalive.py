"""Client connections: keep-alive, HTTP/1.0, Connection: close, HEAD,
pipelining, and backends that close pooled connections."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from rawhttp import HttpConnection


def assert_hello(resp, names, what=""):
    assert resp.status == 200, f"{what}: {resp!r}"
    name = resp.header("X-Backend")
    assert name in names, f"{what}: X-Backend {name!r} not one of {sorted(names)}: {resp!r}"
    assert resp.body == f"Hello from {name}\n".encode(), f"{what}: {resp!r}"
    return name


def test_thousand_sequential_requests_on_one_client_connection(three_backends):
    lb, backends = three_backends
    names = {b.name for b in backends}
    seen = Counter()
    with HttpConnection(lb.addr) as c:
        for i in range(1000):
            r = c.get("/")
            seen[assert_hello(r, names, f"request {i + 1} of 1000")] += 1
            assert not r.has_token("Connection", "close"), f"request {i + 1}: proxy closes keep-alive: {r!r}"
        # Still the same, open connection: nothing pending, no EOF.
        assert c.pending(0.1) == b"", "the proxy closed or wrote to an idle keep-alive connection"
    assert sum(seen.values()) == 1000


def test_http10_request_without_keepalive_gets_connection_closed(three_backends):
    lb, backends = three_backends
    with HttpConnection(lb.addr) as c:
        r = c.request("GET", "/", version="HTTP/1.0")
        assert_hello(r, {b.name for b in backends}, "HTTP/1.0 GET")
        assert c.wait_closed(3.0), "connection still open 3 s after answering an HTTP/1.0 request without keep-alive"


def test_connection_close_request_gets_connection_closed(three_backends):
    lb, backends = three_backends
    with HttpConnection(lb.addr) as c:
        r = c.get("/", headers=[("Connection", "close")])
        assert_hello(r, {b.name for b in backends}, "GET with Connection: close")
        assert c.wait_closed(3.0), "connection still open 3 s after answering a request with Connection: close"


@pytest.mark.parametrize("target", ["/", "/bytes/1000", "/bytes/1000?chunked=1"])
def test_head_has_headers_but_no_body_and_connection_stays_usable(three_backends, target):
    lb, backends = three_backends
    names = {b.name for b in backends}
    with HttpConnection(lb.addr) as c:
        for i in range(2):
            h = c.request("HEAD", target)
            assert h.status == 200, f"HEAD {target}: {h!r}"
            assert h.header("X-Backend") in names, f"HEAD {target}: {h!r}"
            extra = c.pending(0.2)
            assert extra == b"", f"HEAD {target}: bytes after the response head (a body?): {extra!r}"
            g = c.get(target)
            assert g.status == 200, f"GET {target} after HEAD: {g!r}"
            if h.header("Content-Length") is not None:
                assert h.header("Content-Length") == str(len(g.body)), (
                    f"HEAD Content-Length {h.header('Content-Length')} but GET body is {len(g.body)} bytes"
                )


def test_pipelined_requests_are_answered_in_order(three_backends):
    lb, backends = three_backends
    targets = ["/bytes/10", "/bytes/20000", "/status/404", "/bytes/30?chunked=1", "/health", "/"]
    with HttpConnection(lb.addr) as c:
        c.send(b"".join(bytes(c.build_head("GET", t)) for t in targets))
        for t in targets:
            r = c.read_response("GET")
            if t.startswith("/bytes/"):
                n = int(t.split("/")[2].split("?")[0])
                assert r.status == 200 and r.body == (b"abcdefghijklmnopqrstuvwxyz" * n)[:n], f"{t}: {r!r}"
            elif t == "/status/404":
                assert r.status == 404, f"{t}: {r!r}"
            elif t == "/health":
                assert r.status == 200 and r.body == b"ok\n", f"{t}: {r!r}"
            else:
                assert r.status == 200 and r.body.startswith(b"Hello from "), f"{t}: {r!r}"
        assert c.pending(0.1) == b""


@pytest.mark.parametrize(
    "mode",
    ["backend-closes-after-each-response", "backend-closes-idle-connections"],
)
def test_backend_closing_pooled_connections_causes_no_client_errors(raw_backend_factory, ekilibri_factory, mode):
    if mode == "backend-closes-after-each-response":
        # Answers one request, then closes without announcing it: every
        # pooled connection is stale by the time it is reused.
        rb = raw_backend_factory("closer", requests_per_conn=1)
        pause = 0.02
    else:
        # Closes connections idle for 100 ms; the client waits longer.
        rb = raw_backend_factory("idler", idle_close=0.1)
        pause = 0.25
    lb = ekilibri_factory([rb])
    n = 12
    with HttpConnection(lb.addr) as c:
        for i in range(n):
            target = f"/pooled/{i}"
            r = c.get(target)
            assert r.status == 200, f"request {i + 1} of {n} ({target}): {r!r}"
            assert r.body == f"{rb.name} GET {target}\n".encode(), f"request {i + 1}: {r!r}"
            time.sleep(pause)
    for i in range(n):
        assert rb.requests_for(f"/pooled/{i}"), f"backend never got /pooled/{i}"
    # The scenario really happened: the backend closed connections and the
    # proxy had to open new ones.
    assert rb.closed_by_backend >= n // 2, f"backend closed only {rb.closed_by_backend} connections"
    assert rb.connections >= n // 2, f"proxy opened only {rb.connections} backend connections"


def test_requests_on_pooled_connections_closed_in_the_race_are_retried_even_with_no_budget(
    scripted_backend_factory, ekilibri_factory
):
    """The backend reads a request that arrives on a reused connection and
    closes without answering (the idle-close race, made certain). That says
    nothing about the backend's health, so the GET is retried on a fresh
    connection even with the retry budget at zero."""
    from harness import ok_response

    def script(bc):
        first = True
        while True:
            req = bc.read_request()
            if req is None:
                return
            if not first:
                bc.close()
                return
            first = False
            body = f"got {req.target}".encode()
            bc.send(ok_response(body))

    sb = scripted_backend_factory("racer", script)
    lb = ekilibri_factory([sb], retry_budget_percent=0, retry_budget_min_per_sec=0, max_fails=1_000_000)
    with HttpConnection(lb.addr) as c:
        for i in range(8):
            r = c.get(f"/r{i}")
            assert r.status == 200 and r.body == f"got /r{i}".encode(), f"request {i + 1}: {r!r}"
    # The race really happened: requests reached a reused connection first.
    reused = sum(1 for raw in sb.raw_by_conn() if raw.count(b"GET /r") >= 2)
    assert reused >= 4, f"only {reused} connections got a second request"
