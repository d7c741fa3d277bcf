"""What reaches the backend and what comes back: balancing, the request as
sent, and backend responses passed through unchanged."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from rawhttp import HttpConnection, request_once


def test_responses_name_the_backend_and_round_robin_spreads(three_backends):
    lb, backends = three_backends
    names = [b.name for b in backends]
    order = []
    for i in range(30):
        # A plain client, a new connection each time.
        r = requests.get(f"http://{lb.addr}/", timeout=10)
        assert r.status_code == 200, f"request {i + 1}: {r.status_code} {r.text!r}"
        name = r.headers.get("X-Backend")
        assert name in names, f"request {i + 1}: X-Backend {name!r}"
        assert r.text == f"Hello from {name}\n"
        order.append(name)
    assert Counter(order) == {n: 10 for n in names}, f"round robin over 3 backends: {order}"
    assert all(order[i] == order[i + 3] for i in range(len(order) - 3)), f"not a rotation: {order}"


@pytest.mark.parametrize("strategy", ["LeastConnections", "Random"])
def test_other_strategies_use_every_backend(backend_factory, ekilibri_factory, strategy):
    backends = backend_factory(3)
    lb = ekilibri_factory(backends, strategy=strategy)
    seen = Counter()
    for i in range(60):
        r = request_once(lb.addr, "GET", "/")
        assert r.status == 200, f"{strategy} request {i + 1}: {r!r}"
        seen[r.header("X-Backend")] += 1
    assert set(seen) == {b.name for b in backends}, f"{strategy}: {dict(seen)}"


def test_least_connections_avoids_the_busy_backend(backend_factory, ekilibri_factory):
    backends = backend_factory(3)
    lb = ekilibri_factory(backends, strategy="LeastConnections")
    slow = {}

    def slow_request():
        slow["resp"] = request_once(lb.addr, "GET", "/sleep?ms=1500")
        slow["done"] = time.monotonic()

    t = threading.Thread(target=slow_request)
    t.start()
    time.sleep(0.3)  # the slow request is now in flight on one backend
    quick = []
    for i in range(12):
        r = request_once(lb.addr, "GET", "/")
        assert r.status == 200, r
        quick.append(r.header("X-Backend"))
    quick_done = time.monotonic()
    t.join(10)
    assert slow["resp"].status == 200, slow["resp"]
    assert quick_done < slow["done"], "the quick requests did not overlap the slow one"
    busy = slow["resp"].header("X-Backend")
    assert busy not in quick, f"a quick request went to {busy}, busy with the slow one: {quick}"
    assert set(quick) == {b.name for b in backends} - {busy}, f"ties should rotate: {quick}"


def test_request_line_and_headers_reach_the_backend_unchanged(raw_backend_factory, ekilibri_factory):
    rb = raw_backend_factory("recorder")
    lb = ekilibri_factory([rb])
    target = "/host-check/a%20b?x=1&y=%2F&z"
    with HttpConnection(lb.addr) as c:
        r = c.get(target, headers=[("Host", "app.example.test:8443"), ("X-Custom", "kept as is")])
        assert r.status == 200, r
        assert r.body == f"recorder GET {target}\n".encode(), r
        assert r.header("X-Backend") == "recorder", r
    got = rb.requests_for(target)
    assert len(got) == 1, f"backend saw the request {len(got)} times: {[x.target for x in rb.requests]}"
    req = got[0]
    assert req.header_all("Host") == ["app.example.test:8443"], f"Host not preserved: {req.raw_head!r}"
    assert req.header("X-Custom") == "kept as is", f"custom header lost: {req.raw_head!r}"


def test_post_body_and_content_type_reach_the_backend(raw_backend_factory, ekilibri_factory):
    rb = raw_backend_factory("recorder")
    lb = ekilibri_factory([rb])
    body = bytes(range(256)) * 40
    with HttpConnection(lb.addr) as c:
        r1 = c.request("POST", "/upload/cl", body=body, headers=[("Content-Type", "application/x-thing")])
        r2 = c.request("POST", "/upload/chunked", body=[body[:1000], body[1000:]], chunked=True)
    assert r1.status == 200 and r2.status == 200, (r1, r2)
    (cl,) = rb.requests_for("/upload/cl")
    (ch,) = rb.requests_for("/upload/chunked")
    assert cl.body == body and ch.body == body
    assert cl.header("Content-Type") == "application/x-thing", cl.raw_head


def test_backend_statuses_pass_through(three_backends):
    lb, backends = three_backends
    names = {b.name for b in backends}
    with HttpConnection(lb.addr) as c:
        for status in (404, 418, 500, 503):
            r = c.get(f"/status/{status}")
            assert r.status == status, f"/status/{status}: {r!r}"
            # It is the backend's response, not one the proxy made up.
            assert r.header("X-Backend") in names, f"/status/{status}: {r!r}"
        r = c.get("/status/204")
        assert r.status == 204 and r.header("X-Backend") in names, r
        assert c.pending(0.2) == b"", "bytes after a 204 response"
        r = c.get("/no/such/route")
        assert r.status == 404 and r.body == b"" and r.header("X-Backend") in names, r
        r = c.get("/health")
        assert r.status == 200 and r.body == b"ok\n", r
