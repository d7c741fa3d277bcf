"""Many clients at once."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from rawhttp import HttpConnection

CLIENTS = 100
REQUESTS_PER_CLIENT = 10


def test_hundred_concurrent_clients(three_backends):
    lb, backends = three_backends
    names = {b.name for b in backends}
    barrier = threading.Barrier(CLIENTS)

    def client(i: int) -> Counter:
        seen = Counter()
        with HttpConnection(lb.addr, timeout=30) as c:
            # All 100 connections are open before anyone sends.
            barrier.wait(timeout=30)
            for j in range(REQUESTS_PER_CLIENT):
                what = f"client {i} request {j}"
                if j % 2:
                    body = f"{what}\n".encode() * (1 + 37 * i)
                    r = c.request("POST", "/echo", body=body, headers=[("Content-Type", "application/x-test")])
                    assert r.status == 200, f"{what}: {r!r}"
                    assert r.body == body, f"{what}: echo differs ({len(r.body)} bytes back, {len(body)} sent)"
                    assert r.header("Content-Type") == "application/x-test", f"{what}: {r!r}"
                else:
                    r = c.get("/")
                    assert r.status == 200, f"{what}: {r!r}"
                    assert r.body == f"Hello from {r.header('X-Backend')}\n".encode(), f"{what}: {r!r}"
                assert r.header("X-Backend") in names, f"{what}: {r!r}"
                seen[r.header("X-Backend")] += 1
        return seen

    with ThreadPoolExecutor(max_workers=CLIENTS) as ex:
        results = list(ex.map(client, range(CLIENTS)))
    total = sum(results, Counter())
    assert sum(total.values()) == CLIENTS * REQUESTS_PER_CLIENT
    # Round robin: no backend is left idle or takes most of the load.
    for name in names:
        assert total[name] >= CLIENTS * REQUESTS_PER_CLIENT // 6, f"uneven spread: {dict(total)}"


def test_out_of_descriptors_does_not_take_healthy_backends_out(backend_factory, started_procs, tmp_path):
    """With `ulimit -n 64` and more idle clients than descriptors, ekilibri
    must keep descriptors for backend connections and probes, and must not
    blame the backends for its own shortage: once the clients leave, the
    next request is served (no 'out of rotation', no 502)."""
    import shutil
    import socket
    import time

    import harness
    import pytest
    from rawhttp import request_once

    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    b1, b2 = backend_factory(2)
    cfg = tmp_path / "fd.toml"
    cfg.write_text(
        harness.config_text(
            [harness.server_entry(b) for b in (b1, b2)], health_check_interval=200, max_fails=2, fail_window=10
        )
    )
    lb = harness.spawn("ekilibri", ["prlimit", "--nofile=64:64", harness.ekilibri_bin(), "-f", cfg], tmp_path)
    started_procs.append(lb)
    lb.wait_listening()
    assert request_once(lb.addr, "GET", "/").status == 200
    host, port = lb.addr.rsplit(":", 1)
    idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(100)]
    try:
        # Several probe rounds (every 200 ms) while the process is at its
        # limit, the clients it could not take waiting in the backlog.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            time.sleep(0.1)
        assert lb.alive()
    finally:
        for s in idle:
            s.close()
    r = request_once(lb.addr, "GET", "/", timeout=10)
    assert r.status == 200, r
    log = lb.log()
    assert "out of rotation" not in log, log[-3000:]
    assert "panicked" not in log


def test_a_burst_under_a_descriptor_limit_waits_instead_of_failing(backend_factory, started_procs, tmp_path):
    """Under `ulimit -n 128`, 150 clients arrive at once and each waits
    300 ms on its backend. Every accepted client needs a backend connection
    too, so ekilibri must stop accepting while it can still open them: the
    others wait in the listen backlog and are served later, none gets 503."""
    import shutil
    import socket

    import harness
    import pytest

    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    b1, b2 = backend_factory(2)
    cfg = tmp_path / "burst.toml"
    cfg.write_text(harness.config_text([harness.server_entry(b) for b in (b1, b2)], read_timeout=20_000))
    lb = harness.spawn("ekilibri", ["prlimit", "--nofile=128:128", harness.ekilibri_bin(), "-f", cfg], tmp_path)
    started_procs.append(lb)
    lb.wait_listening()
    host, port = lb.addr.rsplit(":", 1)
    socks = []
    try:
        for _ in range(150):
            s = socket.create_connection((host, int(port)), timeout=30)
            s.sendall(b"GET /sleep?ms=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            socks.append(s)
        statuses = []
        for s in socks:
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
            statuses.append(answer.split(b" ", 2)[1] if answer else b"none")
    finally:
        for s in socks:
            s.close()
    assert statuses == [b"200"] * 150, dict(Counter(statuses))


def test_memory_of_a_burst_is_given_back_once_it_is_over(backend_factory, ekilibri_factory):
    """300 concurrent requests take about 19 MiB of 16 KiB buffers (client
    and backend side, in and out). Once the burst is over and the clients
    sit idle, a second later the buffers no request needed are freed and
    handed back to the system: idle connections cost their slots, not the
    burst's buffers."""
    import socket
    import time

    def rss_kib(pid: int) -> int:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1, b2], read_timeout=20_000, keepalive_timeout=60_000)
    host, port = lb.addr.rsplit(":", 1)
    before = rss_kib(lb.pid)
    socks = [socket.create_connection((host, int(port)), timeout=20) for _ in range(300)]
    try:
        for s in socks:
            s.sendall(b"GET /sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in socks:
            answer = b""
            while not answer.endswith(b"slept 300 ms\n"):
                chunk = s.recv(65536)
                assert chunk, answer
                answer += chunk
        peak = rss_kib(lb.pid)
        deadline = time.monotonic() + 5
        while rss_kib(lb.pid) - before > 6 * 1024 and time.monotonic() < deadline:
            time.sleep(0.1)
        after = rss_kib(lb.pid)
        assert after - before <= 6 * 1024, f"RSS {before} KiB before, {peak} at the peak, {after} idle after"
    finally:
        for s in socks:
            s.close()


def test_buffers_of_large_transfers_are_given_back_without_other_timers(backend_factory, ekilibri_factory):
    """100 clients start 8 MiB downloads and stop reading, so each exchange
    holds its buffers (widened to 64 KiB for the large body). They close,
    and nothing else happens: no traffic, and health probes a minute apart.
    The loop must still wake to trim the pool, and the memory goes back."""
    import socket
    import time

    def rss_kib(pid: int) -> int:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1], health_check_interval=60_000, keepalive_timeout=60_000)
    host, port = lb.addr.rsplit(":", 1)
    before = rss_kib(lb.pid)
    socks = []
    try:
        for _ in range(100):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(20)
            s.connect((host, int(port)))
            s.sendall(b"GET /bytes/8388608 HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        for s in socks:
            assert s.recv(64).startswith(b"HTTP/1.1 200 "), "no response"
        # Wait until the proxy holds the stalled transfers' buffers.
        deadline = time.monotonic() + 10
        while rss_kib(lb.pid) - before < 8 * 1024 and time.monotonic() < deadline:
            time.sleep(0.1)
        peak = rss_kib(lb.pid)
        assert peak - before >= 8 * 1024, f"the stalled transfers hold no buffers? {before} -> {peak} KiB"
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 6
    while rss_kib(lb.pid) - before > 4 * 1024 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = rss_kib(lb.pid)
    assert after - before <= 4 * 1024, f"RSS {before} KiB before, {peak} with the stalled transfers, {after} after"
