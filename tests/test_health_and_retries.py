"""Balancing and health: backends leaving and rejoining the rotation, the
transition log lines, retries on another backend (and when not to retry),
the retry budget, and weighted strategies.

Each test uses short intervals and windows so the file runs in well under a
minute. Log lines checked (ekilibri's stderr, RUST_LOG=info):

    backend ADDR out of rotation: N failures in Ws (last: REASON)
    backend ADDR back in rotation
    backend ADDR: connect refused          (one per failed connection attempt)
"""

from __future__ import annotations

import json
import socket
import re
import time
from collections import Counter
from typing import Callable

import pytest

import harness
from rawhttp import ConnectionClosed, HttpConnection, request_once
from test_admin import admin_addr

# ------------------------------------------------------------------ helpers


def assert_complete_error(resp, status, what):
    assert resp.status == status, f"{what}: expected {status}, got {resp!r}"
    cl = resp.header("Content-Length")
    assert cl is not None, f"{what}: {status} without Content-Length: {resp!r}"
    assert resp.framing == "length" and int(cl) == len(resp.body), f"{what}: {resp!r}"


def out_lines(lb, addr: str) -> list[tuple[int, int, str]]:
    """(failures, window seconds, reason) of each `out of rotation` line for addr."""
    pat = re.compile(
        rf"backend {re.escape(addr)} out of rotation: (\d+) failures in (\d+)s \(last: ([^)\n]*)\)"
    )
    return [(int(n), int(w), why) for n, w, why in pat.findall(lb.log())]


def back_lines(lb, addr: str) -> int:
    return len(re.findall(rf"backend {re.escape(addr)} back in rotation\b", lb.log()))


def connect_refused_lines(lb, addr: str) -> int:
    return len(re.findall(rf"backend {re.escape(addr)}: connect refused\b", lb.log()))


def wait_until(pred: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> float:
    """Polls `pred` until true; returns the seconds it took, fails after `timeout`."""
    t0 = time.monotonic()
    while not pred():
        elapsed = time.monotonic() - t0
        assert elapsed < timeout, f"{what}: not within {timeout:.2f} s"
        time.sleep(step)
    return time.monotonic() - t0


def get_many(addr: str, n: int, target: str = "/") -> list:
    """n sequential GETs on one keep-alive connection (reopened if the proxy
    closes it after an error response)."""
    out = []
    c = HttpConnection(addr)
    try:
        for _ in range(n):
            try:
                r = c.get(target)
            except ConnectionClosed:
                c.close()
                c = HttpConnection(addr)
                r = c.get(target)
            out.append(r)
            if r.has_token("Connection", "close"):
                c.close()
                c = HttpConnection(addr)
    finally:
        c.close()
    return out


def describe_statuses(resps) -> str:
    return str(Counter((r.status, r.header("X-Backend")) for r in resps))


# ----------------------------------------------------- backends going down


def test_killed_backend_gives_clients_only_200s(backend_factory, ekilibri_factory):
    """One of three backends is terminated: from that moment on, 300
    sequential requests all get 200 (retries cover the requests sent to it
    before the proxy notices), and it leaves rotation with one log line."""
    b1, b2, b3 = backend_factory(3)
    lb = ekilibri_factory([b1, b2, b3], max_fails=2, fail_window=10, health_check_interval=200)
    with HttpConnection(lb.addr) as c:
        warm = [c.get("/") for _ in range(30)]  # leaves pooled connections to all three
        assert {r.header("X-Backend") for r in warm} == {"b1", "b2", "b3"}, describe_statuses(warm)
        b3.stop()
        resps = [c.get("/") for _ in range(300)]
    bad = [(i + 1, r) for i, r in enumerate(resps) if r.status != 200]
    assert not bad, f"{len(bad)} of 300 requests failed after b3 was killed; first: {bad[:3]}"
    assert {r.header("X-Backend") for r in resps} == {"b1", "b2"}, describe_statuses(resps)
    wait_until(lambda: out_lines(lb, b3.addr), 3.0, "no 'out of rotation' line for the killed b3")
    assert len(out_lines(lb, b3.addr)) == 1, out_lines(lb, b3.addr)


def test_a_retried_http10_request_without_host_names_the_backend_it_reaches(
    scripted_backend_factory, ekilibri_factory
):
    """An HTTP/1.0 request without Host is given `Host: <backend address>`.
    When the first backend refuses the connection and the request is sent
    to another, the Host must name that one, not the dead one."""
    live = scripted_backend_factory("live")
    dead = harness.dead_address()
    lb = ekilibri_factory(
        [dead, live], max_fails=1_000_000, health_check_interval=60_000,
        retries=2, retry_budget_percent=100,
    )
    # A GET (its head still held by the proxy) and a POST with a body (its
    # head already gone out with the body).
    for request in [b"GET /x HTTP/1.0\r\n\r\n"] * 2 + [b"POST /x HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"] * 2:
        with socket.create_connection((lb.host, lb.port), timeout=5) as s:
            s.sendall(request)
            got = b""
            while piece := s.recv(65536):
                got += piece
        assert got.startswith(b"HTTP/1.1 200 "), got
    got = [(r.method, r.header_all("host"), r.body) for r in live.requests() if r.target == "/x"]
    assert sorted(got) == [("GET", [live.addr], b"")] * 2 + [("POST", [live.addr], b"hello")] * 2, (got, dead)


def test_rejected_requests_do_not_buy_retries(backend_factory, ekilibri_factory):
    """The retry budget is a share of the requests sent to backends: 400s
    (rejected by the proxy) do not count. With retry_budget_percent 10 and
    no floor, ten rejected requests and then two GETs (one of them first
    sent to a dead backend) allow no retry: that GET gets its 502."""
    (live,) = backend_factory(1)
    lb = ekilibri_factory(
        [harness.dead_address(), live], strategy="RoundRobin", max_fails=1_000_000,
        health_check_interval=60_000, retries=2, retry_budget_percent=10, retry_budget_min_per_sec=0,
    )
    for _ in range(10):
        assert request_once(lb.addr, "GET", "/a b").status == 400
    statuses = sorted(request_once(lb.addr, "GET", "/").status for _ in range(2))
    assert statuses == [200, 502], statuses


def test_retries_hide_a_dead_backend_before_health_checks_notice(backend_factory, ekilibri_factory):
    """With the dead backend kept in rotation (no probes yet, max_fails huge),
    every request sent to it first is retried on another backend: 300 x 200."""
    b1, b2, b3 = backend_factory(3)
    lb = ekilibri_factory(
        [b1, b2, b3],
        max_fails=1_000_000,
        health_check_interval=60_000,
        retries=2,
        retry_budget_percent=100,
    )
    warm = get_many(lb.addr, 6)
    assert all(r.status == 200 for r in warm), describe_statuses(warm)
    b3.stop()
    resps = get_many(lb.addr, 300)
    bad = [(i + 1, r) for i, r in enumerate(resps) if r.status != 200]
    assert not bad, f"{len(bad)} of 300 requests failed with b3 dead and in rotation; first: {bad[:3]}"
    assert {r.header("X-Backend") for r in resps} == {"b1", "b2"}, describe_statuses(resps)
    # The requests did go to b3 first (else this test proves nothing).
    time.sleep(0.1)
    tried = connect_refused_lines(lb, b3.addr)
    assert tried >= 50, f"only {tried} refused connects to b3 logged for 300 requests over 3 backends"
    assert not out_lines(lb, b3.addr), "b3 left rotation although max_fails is 1000000"


def test_every_backend_killed_gives_502_at_once(backend_factory, ekilibri_factory):
    backends = backend_factory(3)
    lb = ekilibri_factory(backends, max_fails=2, fail_window=10, health_check_interval=100)
    warm = get_many(lb.addr, 6)
    assert all(r.status == 200 for r in warm), describe_statuses(warm)
    for b in backends:
        b.stop()

    def fast_502s(n, when):
        for i in range(n):
            t0 = time.monotonic()
            r = request_once(lb.addr, "GET", "/")
            elapsed = time.monotonic() - t0
            assert_complete_error(r, 502, f"{when}, request {i + 1}")
            assert elapsed < 0.2, f"{when}, request {i + 1}: 502 took {elapsed * 1000:.0f} ms"

    fast_502s(20, "just after all backends were killed")
    wait_until(
        lambda: all(out_lines(lb, b.addr) for b in backends), 3.0, "not every killed backend left rotation"
    )
    fast_502s(20, "with no backend in rotation")
    with HttpConnection(lb.addr) as c:
        for i in range(5):
            t0 = time.monotonic()
            r = c.get("/")
            assert_complete_error(r, 502, f"keep-alive request {i + 1} with no backend in rotation")
            assert time.monotonic() - t0 < 0.2
            if r.has_token("Connection", "close"):
                break


def test_all_killed_then_restarted_one_by_one_serve_again(backend_factory, ekilibri_factory):
    """Every backend dies, then they come back one at a time on their old
    ports: the same ekilibri process serves 200s again, from the live ones."""
    backends = backend_factory(3)
    addrs = {b.name: b.addr for b in backends}
    lb = ekilibri_factory(backends, max_fails=2, fail_window=60, health_check_interval=100)
    assert {r.header("X-Backend") for r in get_many(lb.addr, 6)} == set(addrs)
    for b in backends:
        b.stop()
    wait_until(
        lambda: all(out_lines(lb, a) for a in addrs.values()), 3.0, "not every killed backend left rotation"
    )
    assert_complete_error(request_once(lb.addr, "GET", "/"), 502, "with every backend down")

    up: set[str] = set()
    limit = 5.0  # two probes take 0.2 s; the 60 s window is not waited for
    for name in ["b1", "b2", "b3"]:
        backend_factory.start(name, listen=addrs[name])
        up.add(name)
        t0 = time.monotonic()
        history = []
        while True:
            r = request_once(lb.addr, "GET", "/")
            history.append((r.status, r.header("X-Backend")))
            if r.status == 200:
                assert r.header("X-Backend") in up, f"200 from a backend that is down: {history}"
                if r.header("X-Backend") == name:
                    break
            elif name == "b1":  # before anything is up, a 502 is the right answer
                assert_complete_error(r, 502, f"waiting for {name}")
            else:
                pytest.fail(f"{r.status} while {sorted(up - {name})} were back in rotation: {history}")
            assert time.monotonic() - t0 < limit, (
                f"{name} restarted on {addrs[name]} but got no request within {limit:.1f} s: {history[-20:]}"
            )
            time.sleep(0.02)
    assert lb.alive(), "ekilibri died"
    resps = get_many(lb.addr, 30)
    assert all(r.status == 200 for r in resps), describe_statuses(resps)
    assert {r.header("X-Backend") for r in resps} == set(addrs), describe_statuses(resps)
    for name, a in addrs.items():
        assert len(out_lines(lb, a)) == 1, f"{name}: {out_lines(lb, a)}"
        assert back_lines(lb, a) == 1, f"{name}: {back_lines(lb, a)} 'back in rotation' lines"


def test_backends_down_at_startup_join_when_they_come_up(backend_factory, ekilibri_factory):
    """Recovery takes two successful probes, not the end of fail_window
    (60 s here): backends that come up serve within a few probe intervals."""
    addrs = [harness.dead_address() for _ in range(3)]
    lb = ekilibri_factory(addrs, max_fails=2, fail_window=60, health_check_interval=100)
    wait_until(lambda: all(out_lines(lb, a) for a in addrs), 3.0, "dead backends not taken out of rotation")
    t0 = time.monotonic()
    assert_complete_error(request_once(lb.addr, "GET", "/"), 502, "with every backend down")
    assert time.monotonic() - t0 < 0.2, "a 502 with no backend in rotation should be immediate"

    for i, a in enumerate(addrs):
        backend_factory.start(f"b{i + 1}", listen=a)
    t0 = time.monotonic()
    limit = 5.0  # two probes take 0.2 s; the window would take 60
    seen: set[str] = set()
    history = []
    while seen != {"b1", "b2", "b3"}:
        assert time.monotonic() - t0 < limit, (
            f"backends up on their configured ports, but within {limit:.1f} s only {sorted(seen)} "
            f"served: {history[-20:]}"
        )
        r = request_once(lb.addr, "GET", "/")
        history.append((r.status, r.header("X-Backend")))
        if r.status == 200:
            seen.add(r.header("X-Backend"))
        elif not seen:
            assert_complete_error(r, 502, "before any backend is back")
        else:
            pytest.fail(f"{r.status} after {sorted(seen)} came back: {history}")
        time.sleep(0.02)
    resps = get_many(lb.addr, 30)
    assert all(r.status == 200 for r in resps), describe_statuses(resps)
    for a in addrs:
        assert back_lines(lb, a) == 1, f"{a}: {back_lines(lb, a)} 'back in rotation' lines"


# ------------------------------------------------------------ health probes


def test_hanging_health_check_takes_backend_out(backend_factory, ekilibri_factory, raw_backend_factory):
    """A backend that serves requests but whose /health hangs longer than
    read_timeout leaves rotation after max_fails probes; then only the
    healthy backends get requests."""
    b1, b2 = backend_factory(2)
    rb = raw_backend_factory("hang", hang_path="/health", hang_seconds=3.0)
    max_fails, interval, read_timeout = 3, 0.2, 0.2
    t0 = time.monotonic()
    lb = ekilibri_factory(
        [b1, b2, rb], max_fails=max_fails, fail_window=10, health_check_interval=200, read_timeout=200
    )
    limit = max_fails * (interval + read_timeout) + 1.0
    wait_until(lambda: out_lines(lb, rb.addr), limit - (time.monotonic() - t0),
               "backend with a hanging /health not out of rotation")
    lines = out_lines(lb, rb.addr)
    assert len(lines) == 1, lines
    n, window, reason = lines[0]
    assert n >= max_fails and window == 10, lines
    assert reason.strip() and reason != "unknown", f"no reason given: {lines}"
    assert len(rb.requests_for("/health")) >= max_fails, "the probes never reached the raw backend"

    proxied_before = len([r for r in rb.requests if r.target != "/health"])
    resps = get_many(lb.addr, 60)
    assert all(r.status == 200 for r in resps), describe_statuses(resps)
    assert {r.header("X-Backend") for r in resps} == {"b1", "b2"}, describe_statuses(resps)
    proxied_after = len([r for r in rb.requests if r.target != "/health"])
    assert proxied_after == proxied_before, "requests went to a backend out of rotation"


def test_a_hanging_probe_does_not_delay_the_next(backend_factory, ekilibri_factory, raw_backend_factory):
    """Probes start every health_check_interval even while an earlier one
    waits for its (here 30 s) read timeout, so a hanging backend is noticed
    after one timeout plus max_fails - 1 intervals, not max_fails timeouts.
    At most four probes per backend are in flight."""
    (b1,) = backend_factory(1)
    rb = raw_backend_factory("hang", hang_path="/health", hang_seconds=60.0)
    ekilibri_factory([b1, rb], max_fails=3, fail_window=60, health_check_interval=100, read_timeout=30000)
    wait_until(lambda: len(rb.requests_for("/health")) >= 4, 10.0,
               "probes waited for the hanging one instead of starting every interval")
    time.sleep(0.5)  # five more intervals: the cap holds
    assert len(rb.requests_for("/health")) == 4, rb.requests_for("/health")


def test_non_200_health_check_takes_backend_out_and_200_brings_it_back(
    backend_factory, ekilibri_factory, raw_backend_factory
):
    (b1,) = backend_factory(1)
    status_for = {"/health": 503}
    rb = raw_backend_factory("sick", status_for=status_for)
    interval = 0.1
    lb = ekilibri_factory([b1, rb], max_fails=2, fail_window=60, health_check_interval=100)
    wait_until(lambda: out_lines(lb, rb.addr), 2 * interval + 1.5, "backend answering 503 to /health still in rotation")
    proxied_before = len([r for r in rb.requests if r.target != "/health"])
    resps = get_many(lb.addr, 20)
    assert all(r.status == 200 and r.header("X-Backend") == "b1" for r in resps), describe_statuses(resps)
    assert len([r for r in rb.requests if r.target != "/health"]) == proxied_before

    status_for.pop("/health")  # healthy again
    # Two successful probes bring it back; the 60 s window is not waited for.
    wait_until(lambda: back_lines(lb, rb.addr) > 0, 5.0, "backend answering 200 again not back in rotation")
    resps = get_many(lb.addr, 10)
    assert all(r.status == 200 for r in resps), describe_statuses(resps)
    assert {r.header("X-Backend") for r in resps} == {"b1", "sick"}, describe_statuses(resps)
    assert len(out_lines(lb, rb.addr)) == 1 and back_lines(lb, rb.addr) == 1


@pytest.mark.parametrize("status,healthy", [(204, True), (302, True), (404, False)])
def test_health_check_status_classes(backend_factory, ekilibri_factory, raw_backend_factory, status, healthy):
    """Any 2xx or 3xx answer to the health check is healthy, as with
    HAProxy's httpchk and nginx's health checks; a 4xx is not."""
    (b1,) = backend_factory(1)
    rb = raw_backend_factory("probed", status_for={"/health": status})
    lb = ekilibri_factory([b1, rb], max_fails=2, fail_window=60, health_check_interval=100)
    if healthy:
        wait_until(lambda: len([r for r in rb.requests if r.target == "/health"]) >= 4, 3.0, "fewer than 4 probes")
        assert out_lines(lb, rb.addr) == [], f"a {status} health check took the backend out"
        resps = get_many(lb.addr, 10)
        assert {r.header("X-Backend") for r in resps} == {"b1", "probed"}, describe_statuses(resps)
    else:
        wait_until(lambda: out_lines(lb, rb.addr), 2.0, f"backend answering {status} to /health still in rotation")


def answers_health_with(answer: bytes):
    """A script that serves requests as the default one does, but answers
    /health with `answer` and then sends nothing more."""

    def script(bc) -> None:
        while True:
            req = bc.read_request(timeout=30)
            if req is None:
                return
            if req.target == "/health":
                bc.send(answer)
                bc.wait_closed(timeout=30)
                return
            bc.send(harness.ok_response(b"ok", f"X-Backend: {bc.owner.name}\r\n"))

    return script


def in_rotation(admin: str) -> dict[str, bool]:
    status = json.loads(request_once(admin, "GET", "/status.json").body)
    return {b["address"]: b["in_rotation"] for b in status["backends"]}


def test_health_answer_that_stalls_after_the_status_line_takes_backend_out(
    backend_factory, ekilibri_factory, scripted_backend_factory
):
    """A 200 status line is not a healthy answer until the head is complete:
    a /health that stalls after `HTTP/1.1 200 OK\\r\\nContent-Len` fails
    each probe by read_timeout, and the backend leaves rotation."""
    (b1,) = backend_factory(1)
    sb = scripted_backend_factory("stalls", answers_health_with(b"HTTP/1.1 200 OK\r\nContent-Len"))
    lb = ekilibri_factory(
        [b1, sb], admin_listen="127.0.0.1:0", max_fails=2, fail_window=60,
        health_check_interval=100, read_timeout=200,
    )
    admin = admin_addr(lb)
    wait_until(lambda: in_rotation(admin) == {b1.addr: True, sb.addr: False}, 5.0,
               "backend whose /health stalls after the status line still in rotation")
    (n, _, reason), = out_lines(lb, sb.addr)
    assert n >= 2 and reason == "read timeout", out_lines(lb, sb.addr)
    resps = get_many(lb.addr, 10)
    assert {r.header("X-Backend") for r in resps} == {"b1"}, describe_statuses(resps)


def test_health_answer_with_a_large_head_is_healthy(backend_factory, ekilibri_factory, scripted_backend_factory):
    """A probe reads heads as large as a proxied response's may be: a
    /health answer with 20 KiB of fields keeps its backend in rotation."""
    (b1,) = backend_factory(1)
    answer = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 20_000 + b"\r\nContent-Length: 0\r\n\r\n"
    sb = scripted_backend_factory("big", answers_health_with(answer))
    lb = ekilibri_factory([b1, sb], max_fails=2, fail_window=60, health_check_interval=100)
    wait_until(lambda: len([r for r in sb.requests() if r.target == "/health"]) >= 4, 3.0, "fewer than 4 probes")
    assert out_lines(lb, sb.addr) == [], "a /health answer with a 20 KiB head took the backend out"
    resps = get_many(lb.addr, 10)
    assert {r.header("X-Backend") for r in resps} == {"b1", "big"}, describe_statuses(resps)


def test_health_answer_followed_by_a_reset_is_healthy(backend_factory, ekilibri_factory, scripted_backend_factory):
    """A server that answers /health and closes with SO_LINGER 0 (or with
    the request unread) resets the connection right after its answer: the
    complete healthy head that came first still counts."""

    def script(bc) -> None:
        while (req := bc.read_request(timeout=30)) is not None:
            if req.target == "/health":
                bc.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                bc.close(reset=True)
                return
            bc.send(harness.ok_response(b"ok", f"X-Backend: {bc.owner.name}\r\n"))

    (b1,) = backend_factory(1)
    sb = scripted_backend_factory("resets", script)
    lb = ekilibri_factory([b1, sb], max_fails=2, fail_window=60, health_check_interval=50)
    wait_until(lambda: len([r for r in sb.requests() if r.target == "/health"]) >= 20, 5.0, "fewer than 20 probes")
    assert out_lines(lb, sb.addr) == [], "healthy answers followed by a reset took the backend out"


def test_transition_logged_once_while_state_holds(backend_factory, ekilibri_factory):
    """A backend down for 3 s (30 failed probes) gets one 'out of rotation'
    line, and one 'back in rotation' line when it returns."""
    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1, b2], max_fails=2, fail_window=1, health_check_interval=100)
    addr2 = b2.addr
    b2.stop()
    wait_until(lambda: out_lines(lb, addr2), 2.0, "killed b2 not out of rotation")
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        r = request_once(lb.addr, "GET", "/")
        assert r.status == 200 and r.header("X-Backend") == "b1", r
        time.sleep(0.1)
    assert len(out_lines(lb, addr2)) == 1, f"'out of rotation' logged again while b2 stayed down: {out_lines(lb, addr2)}"
    assert back_lines(lb, addr2) == 0
    n, window, reason = out_lines(lb, addr2)[0]
    assert n >= 2 and window == 1, out_lines(lb, addr2)

    backend_factory.start("b2", listen=addr2)
    wait_until(lambda: back_lines(lb, addr2) > 0, 1 + 0.5 + 1.0, "restarted b2 not back in rotation")
    time.sleep(0.5)  # several more successful probes
    assert back_lines(lb, addr2) == 1
    assert len(out_lines(lb, addr2)) == 1


def test_read_timeouts_do_not_take_backend_out(backend_factory, ekilibri_factory):
    """Ten 504s in a row (the backend is slow, not down) count as no failure."""
    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1], max_fails=3, fail_window=10, health_check_interval=100, read_timeout=150)
    for i in range(10):
        r = request_once(lb.addr, "GET", "/sleep?ms=600")
        assert_complete_error(r, 504, f"slow request {i + 1} with read_timeout 150 ms")
    r = request_once(lb.addr, "GET", "/")
    assert r.status == 200 and r.header("X-Backend") == "b1", f"after ten 504s: {r!r}"
    time.sleep(0.3)  # a few probes more
    r = request_once(lb.addr, "GET", "/")
    assert r.status == 200 and r.header("X-Backend") == "b1", f"after ten 504s: {r!r}"
    assert "out of rotation" not in lb.log(), "read timeouts took the backend out of rotation"


# ------------------------------------------------------------------ retries


@pytest.mark.parametrize("how", ["close", "reset"])
def test_post_that_reached_a_backend_is_not_retried(backend_factory, ekilibri_factory, raw_backend_factory, how):
    """A backend reads the whole POST, then closes (or resets) without
    answering: the client gets a 502 and the POST was sent exactly once."""
    (b1,) = backend_factory(1)
    rb = raw_backend_factory("dropper", drop_after_request=how)
    lb = ekilibri_factory([rb, b1], max_fails=1_000_000, health_check_interval=60_000)
    dropped = served = 0
    for i in range(8):
        target = f"/echo?n={i}"
        body = f"payment {i}\n".encode() * 20
        r = request_once(lb.addr, "POST", target, body=body)
        hits = rb.requests_for(target)
        if hits:
            dropped += 1
            assert len(hits) == 1, f"POST {target} sent {len(hits)} times to the backend that dropped it"
            assert hits[0].body == body
            assert_complete_error(r, 502, f"POST {target} that the backend read and then dropped ({how})")
        else:
            served += 1
            assert r.status == 200 and r.body == body and r.header("X-Backend") == "b1", f"POST {target}: {r!r}"
    assert dropped >= 2 and served >= 2, f"round robin over 2 backends: {dropped} dropped, {served} served"


@pytest.mark.parametrize("how", ["close", "reset"])
def test_get_that_got_no_response_is_sent_to_another_backend(
    backend_factory, ekilibri_factory, raw_backend_factory, how
):
    """A backend accepts, reads a GET, and closes (or resets) without a
    byte of response. A bodiless idempotent request may be repeated (RFC
    9110 §9.2.2): the client gets the other backend's answer, as with
    nginx's default proxy_next_upstream, and each such close counts as a
    failure of the backend, so it leaves rotation after max_fails."""
    (b1,) = backend_factory(1)
    rb = raw_backend_factory("dropper", drop_after_request=how)
    lb = ekilibri_factory([rb, b1], max_fails=3, fail_window=60, health_check_interval=60_000)
    for i in range(8):
        r = request_once(lb.addr, "GET", f"/?n={i}")
        assert r.status == 200 and r.header("X-Backend") == "b1", f"GET {i + 1}: {r!r}"
    dropped = sum(1 for i in range(8) if rb.requests_for(f"/?n={i}"))
    assert dropped == 3, f"the dropping backend got {dropped} GETs; max_fails = 3 should have taken it out after 3"
    log = lb.log()
    assert "closed without a response" in log and "out of rotation" in log, log[-2000:]


def test_post_to_refusing_backend_is_retried_elsewhere(backend_factory, ekilibri_factory):
    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1, b2], max_fails=1_000_000, health_check_interval=60_000, retry_budget_percent=100)
    b2.stop()  # before any request: no pooled connection to it
    for i in range(8):
        body = f"order {i}\n".encode() * 20
        r = request_once(lb.addr, "POST", f"/echo?n={i}", body=body)
        assert r.status == 200 and r.body == body and r.header("X-Backend") == "b1", (
            f"POST {i + 1} with b2 refusing connections: {r!r}"
        )
    time.sleep(0.1)
    assert connect_refused_lines(lb, b2.addr) >= 2, "no POST was sent to the dead b2 first: the test proved nothing"


def test_retry_budget_caps_connection_attempts_in_total_outage(ekilibri_factory):
    addrs = [harness.dead_address() for _ in range(3)]
    lb = ekilibri_factory(
        addrs,
        max_fails=1_000_000,  # all stay in rotation
        health_check_interval=60_000,  # no probe in this test
        retries=2,
        retry_budget_percent=20,
        retry_budget_min_per_sec=3,
    )
    n = 300
    t0 = time.monotonic()
    resps = get_many(lb.addr, n)
    elapsed = time.monotonic() - t0
    for i, r in enumerate(resps):
        assert_complete_error(r, 502, f"request {i + 1} in a total outage")
    time.sleep(0.2)
    attempts = sum(connect_refused_lines(lb, a) for a in addrs)
    cap = n + 0.2 * n + 3 * 10 + 10
    assert attempts > n, f"{attempts} connection attempts for {n} requests: nothing was retried"
    assert attempts <= cap, (
        f"{attempts} connection attempts for {n} requests in {elapsed:.1f} s; the retry budget allows "
        f"at most {cap:.0f} (without a budget it would be {3 * n})"
    )


# ------------------------------------------------------------ weights


STRATEGIES = ["RoundRobin", "Random", "LeastConnections", "PowerOfTwoChoices", "LatencyAware"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_weighted_backends(backend_factory, ekilibri_factory, strategy):
    b1, b2, b3 = backend_factory(3)
    weights = {"b1": 1, "b2": 2, "b3": 3}
    lb = ekilibri_factory(
        [harness.weighted(b1, 1), harness.weighted(b2, 2), harness.weighted(b3, 3)], strategy=strategy
    )
    n = 3000
    seen: Counter = Counter()
    with HttpConnection(lb.addr) as c:
        for i in range(n):
            r = c.get("/")
            assert r.status == 200, f"{strategy}: request {i + 1}: {r!r}"
            seen[r.header("X-Backend")] += 1
    assert sum(seen.values()) == n
    assert set(seen) == set(weights), f"{strategy} left a backend unused: {dict(seen)}"
    if strategy in ("RoundRobin", "Random"):
        total = sum(weights.values())
        for name, w in weights.items():
            share = seen[name] / n
            assert abs(share - w / total) <= 0.03, (
                f"{strategy}: {name} (weight {w}) got {share:.1%} of requests, expected "
                f"{w / total:.1%} +/- 3 points: {dict(seen)}"
            )
